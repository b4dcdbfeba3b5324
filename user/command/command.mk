# --- command: teredo-observer (user/command), a client of the library ---
# Built against include/, the service's serve.h and user/lib/private/ (what
# the command uses of the library beyond the API, not exported) alone.
# Installs with its unit (systemd/), man page, the nftables ruleset
# (share/teredo-observer/teredo.nft) and the --exec example.
COMMAND_DIR  := user/command
COMMAND_CPPFLAGS := -I$(SERVICE_DIR) -I$(FIREWALL_DIR) $(LIB_PRIVATE_CPPFLAGS)
COMMAND_SRCS := $(COMMAND_DIR)/command.c $(COMMAND_DIR)/event_exec.c $(COMMAND_DIR)/sd_notify.c
COMMAND_OBJS := $(COMMAND_SRCS:$(COMMAND_DIR)/%.c=$(BUILD)/command/%.o)

$(BUILD)/command/%.o: $(COMMAND_DIR)/%.c
	@mkdir -p $(@D)
	$(call quiet,CC,$@)$(CC) $(CPPFLAGS) $(COMMAND_CPPFLAGS) $(CFLAGS) $(DEPFLAGS) -c $< -o $@

-include $(COMMAND_OBJS:.o=.d)

$(CMD): $(COMMAND_OBJS) $(SERVICE_OBJS) $(FIREWALLD_OBJS) $(LIB_A)
	$(call quiet,LD,$@)$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS) $(FIREWALLD_LIBS)

# Where things go: $(DESTDIR)$(PREFIX)/{sbin,lib/systemd/system,share/man/man8,share/teredo-observer}
SBINDIR     ?= $(PREFIX)/sbin
UNITDIR     ?= $(PREFIX)/lib/systemd/system
MAN8DIR     ?= $(PREFIX)/share/man/man8
DATADIR     ?= $(PREFIX)/share/teredo-observer

.PHONY: install-command uninstall-command command-test demo

# The unit is written at install time, so that ExecStart names SBINDIR as given now.
install-command: $(CMD)
	install -D -m 0755 $(CMD) $(DESTDIR)$(SBINDIR)/teredo-observer
	install -d $(DESTDIR)$(UNITDIR)
	sed 's|@SBINDIR@|$(SBINDIR)|g' systemd/teredo-observer.service.in \
		> $(DESTDIR)$(UNITDIR)/teredo-observer.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/teredo-observer.service
	install -m 0644 systemd/teredo-observer.socket $(DESTDIR)$(UNITDIR)/teredo-observer.socket
	install -D -m 0644 $(COMMAND_DIR)/teredo-observer.8 $(DESTDIR)$(MAN8DIR)/teredo-observer.8
	install -D -m 0755 examples/nftables/teredo-nft-update $(DESTDIR)$(DATADIR)/teredo-nft-update
	install -D -m 0644 share/teredo-observer/teredo.nft $(DESTDIR)$(DATADIR)/teredo.nft

uninstall-command:
	rm -f $(DESTDIR)$(SBINDIR)/teredo-observer \
		$(DESTDIR)$(UNITDIR)/teredo-observer.service $(DESTDIR)$(UNITDIR)/teredo-observer.socket \
		$(DESTDIR)$(MAN8DIR)/teredo-observer.8 \
		$(DESTDIR)$(DATADIR)/teredo-nft-update $(DESTDIR)$(DATADIR)/teredo.nft

# Its tests (tests/run-tests): needs root; every observer and client runs in
# network namespaces of its own.
command-test: mounts $(CMD) $(UDP_ACTOR)
	./$(COMMAND_DIR)/tests/run-tests $(CMD) $(UDP_ACTOR)

# Miredo and its server in two throwaway network namespaces, watched live.
demo: mounts $(CMD)
	./scripts/demo $(CMD)
