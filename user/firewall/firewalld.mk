# --- firewall: the firewall job (user/firewall/firewall_job.c) of the command and
# the service, over the firewalld backend (firewalld.c) ---
# sd-bus (libsystemd) speaks firewalld's D-Bus API; the command links it.
FIREWALL_DIR    := user/firewall
# libnftables (the library nft uses) keeps the nftables set; with --all-netns
# (nft_netns.c) each namespace's, asking the library (its private part) for
# each one's port at start.
FIREWALLD_LIBS  := $(or $(shell $(PKG_CONFIG) --libs libsystemd 2>/dev/null),-lsystemd) \
		   $(or $(shell $(PKG_CONFIG) --libs libnftables 2>/dev/null),-lnftables)
FIREWALLD_OBJS  := $(BUILD)/firewall/firewall_job.o $(BUILD)/firewall/firewalld.o \
		   $(BUILD)/firewall/nft_set.o $(BUILD)/firewall/nft_netns.o

$(BUILD)/firewall/%.o: $(FIREWALL_DIR)/%.c
	@mkdir -p $(@D)
	$(call quiet,CC,$@)$(CC) $(CPPFLAGS) $(LIB_PRIVATE_CPPFLAGS) $(CFLAGS) $(DEPFLAGS) -c $< -o $@

-include $(FIREWALLD_OBJS:.o=.d)

.PHONY: firewalld-test

# Its tests (tests/run-firewalld): needs root; each test runs a firewalld of
# its own, in a network namespace of its own, on a D-Bus system bus of its own.
firewalld-test: mounts $(CMD) $(UDP_ACTOR)
	./$(FIREWALL_DIR)/tests/run-firewalld $(CMD) $(UDP_ACTOR)

.PHONY: bench-firewalld
# sudo make bench-firewalld: bind() -> firewalld's rule, and a change's
# instant with neither port open (bench/firewalld-latency; BENCHMARKS.md).
# VARIANT=path/to/teredo-observer measures another build beside this one.
bench-firewalld: mounts $(CMD)
	./bench/firewalld-latency $(or $(ROUNDS),100) $(CMD) $(VARIANT)

.PHONY: nft-test
# --nft-set against the real nftables, in network namespaces of its own (tests/run-nft).
nft-test: mounts $(CMD) $(UDP_ACTOR)
	./$(FIREWALL_DIR)/tests/run-nft $(CMD) $(UDP_ACTOR)
