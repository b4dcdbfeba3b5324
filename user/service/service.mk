# --- service: teredo-observer serve (user/service), the host's one observer over Varlink ---
# It taps the observer's records, so it sees the library's private headers;
# the command reaches it through serve.h alone. Linked into the command.
SERVICE_DIR  := user/service
SERVICE_CPPFLAGS := $(LIB_INTERNAL_CPPFLAGS) -Ibpf -I$(FIREWALL_DIR)
SERVICE_SRCS := $(SERVICE_DIR)/serve.c $(SERVICE_DIR)/varlink_server.c
SERVICE_OBJS := $(SERVICE_SRCS:$(SERVICE_DIR)/%.c=$(BUILD)/service/%.o)

$(BUILD)/service/%.o: $(SERVICE_DIR)/%.c | $(SKEL)
	@mkdir -p $(@D)
	$(call quiet,CC,$@)$(CC) $(CPPFLAGS) $(SERVICE_CPPFLAGS) $(CFLAGS) $(DEPFLAGS) -c $< -o $@

-include $(SERVICE_OBJS:.o=.d)

# Its tests: serve, its clients and its protocol, in network namespaces of
# their own (tests/run-tests); the Varlink message handling under libFuzzer
# for a bounded time (tests/fuzz).
.PHONY: service-test fuzz-test
SERVICE_CONSUMER := $(BUILD)/tests/service-consumer
FUZZ_VARLINK     := $(BUILD)/tests/fuzz-varlink
FUZZ_SECONDS     ?= 20

$(SERVICE_CONSUMER): $(SERVICE_DIR)/tests/consumer.c $(LIB_A)
	@mkdir -p $(@D)
	$(call quiet,CC,$@)$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(LIB_A) $(LDLIBS)

# Only the protocol: no kernel, no observer, so it runs anywhere (selection.c
# knows the BPF program's configuration too: the skeleton and libbpf come along,
# nothing is loaded).
FUZZ_SRCS := $(SERVICE_DIR)/tests/fuzz/fuzz_varlink.c $(SERVICE_DIR)/varlink_server.c \
	     $(addprefix $(LIB_DIR)/,service_client/varlink.c port/port_state.c util/grow.c \
	     port/selection.c port/event_json.c port/cgroup2.c util/last_error.c)

$(FUZZ_VARLINK): $(FUZZ_SRCS) $(LIB_HDRS) $(wildcard $(SERVICE_DIR)/*.h) | $(SKEL)
	@mkdir -p $(@D)
	$(call quiet,CLANG,$@)$(CLANG) -g -O1 -fsanitize=fuzzer,address,undefined $(CPPFLAGS) $(TEST_INTERNAL_CPPFLAGS) \
		-I$(BUILD) -I$(SERVICE_DIR) $(JSONC_CFLAGS) -o $@ $(FUZZ_SRCS) $(JSONC_LIBS) $(LIBBPF_LIBS)

service-test: mounts $(CMD) $(UDP_ACTOR) $(SERVICE_CONSUMER)
	./$(SERVICE_DIR)/tests/run-tests $(CMD) $(UDP_ACTOR) $(SERVICE_CONSUMER)

# A copy of the seeds as the working corpus: the tree stays as committed.
fuzz-test: $(FUZZ_VARLINK)
	rm -rf $(BUILD)/fuzz-corpus && mkdir -p $(BUILD)/fuzz-corpus
	cp $(SERVICE_DIR)/tests/fuzz/corpus/* $(BUILD)/fuzz-corpus/
	$(FUZZ_VARLINK) -max_total_time=$(FUZZ_SECONDS) -max_len=20000 -timeout=10 \
		$(BUILD)/fuzz-corpus
