# --- service: teredo-observer serve (user/service), the host's one observer over Varlink ---
# It taps the observer's records, so it sees the library's private headers;
# the command reaches it through serve.h alone. Linked into the command.
SERVICE_DIR  := user/service
SERVICE_CPPFLAGS := -I$(LIB_DIR) -Ibpf
SERVICE_SRCS := $(SERVICE_DIR)/serve.c $(SERVICE_DIR)/varlink_server.c
SERVICE_OBJS := $(SERVICE_SRCS:$(SERVICE_DIR)/%.c=$(BUILD)/service/%.o)

$(BUILD)/service/%.o: $(SERVICE_DIR)/%.c $(wildcard $(SERVICE_DIR)/*.h) $(LIB_HDRS)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(SERVICE_CPPFLAGS) $(CFLAGS) -c $< -o $@
