# --- tests: the suites of make test that span components, and their helpers ---
# The command's and the service's own suites are in their fragments, beside
# them. Unit tests (and the service's fuzz target) look inside the library;
# every other test program is a client built against include/ alone.
TEST_INTERNAL_CPPFLAGS := $(LIB_INTERNAL_CPPFLAGS) -Ibpf
UNIT_SRCS  := $(wildcard tests/unit/*.c)
INTEG_SRCS := $(wildcard tests/integration/*.c)
UNIT_BIN   := $(BUILD)/tests/unit
INTEG_BIN  := $(BUILD)/tests/integration
UDP_ACTOR  := $(BUILD)/tests/udp-actor
STRESS     := $(BUILD)/tests/subscription-stress
# The kernel matrix's check that its emulated guest survives live text patching.
TEXT_PATCHING := $(BUILD)/tests/text-patching
# Test programs that watch the kernel run in a network namespace of their own.
OWN_NETNS  := tests/helpers/own_netns.c

.PHONY: unit-test integration-test e2e-test example-test abi-test tsan-test asan-test deb-test \
	kernel-matrix

# Every suite, in the order make check (and make test) runs them; the
# command's, the service's and the firewall's are defined in their fragments.
CHECK_SUITES ?= unit-test integration-test command-test e2e-test example-test abi-test \
		service-test firewalld-test nft-test fuzz-test tsan-test asan-test deb-test kernel-matrix

$(UDP_ACTOR): tests/helpers/udp_actor.c
	@mkdir -p $(@D)
	$(call quiet,CC,$@)$(CC) $(CFLAGS) -o $@ $<

$(TEXT_PATCHING): tests/kernels/text_patching.c
	@mkdir -p $(@D)
	$(call quiet,CC,$@)$(CC) $(CFLAGS) -o $@ $< $(LIBBPF_LIBS)

# test_firewalld.c includes the firewalld backend's source (user/firewall/) for its static logic;
# test_selection.c opens the skeleton (never loads it) to read what a selection configures;
# test_event_json.c compares the command's --json line with the service's Watch reply
# (user/service/varlink_server.c, the protocol without I/O, as the fuzz target has it).
UNIT_SERVICE_SRCS := user/service/varlink_server.c
$(UNIT_BIN): $(UNIT_SRCS) $(UNIT_SERVICE_SRCS) $(LIB_A) $(SKEL) $(wildcard user/firewall/*.[ch]) \
	     $(wildcard user/service/*.h)
	@mkdir -p $(@D)
	$(call quiet,CC,$@)$(CC) $(CPPFLAGS) $(TEST_INTERNAL_CPPFLAGS) -I$(BUILD) -I$(FIREWALL_DIR) \
		-I$(SERVICE_DIR) $(CFLAGS) -o $@ $(UNIT_SRCS) $(UNIT_SERVICE_SRCS) $(LIB_A) $(LDLIBS) \
		$(FIREWALLD_LIBS) -lcriterion

$(STRESS): tests/stress/subscription_stress.c $(OWN_NETNS) $(LIB_A)
	@mkdir -p $(@D)
	$(call quiet,CC,$@)$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(OWN_NETNS) $(LIB_A) $(LDLIBS)

# test_selection checks the cgroup walk itself (cgroup2.h).
$(INTEG_BIN): $(INTEG_SRCS) $(OWN_NETNS) $(wildcard tests/integration/*.h) $(LIB_A) $(UDP_ACTOR) \
	      $(STRESS)
	@mkdir -p $(@D)
	$(call quiet,CC,$@)$(CC) $(CPPFLAGS) $(TEST_INTERNAL_CPPFLAGS) -I$(BUILD) $(CFLAGS) -DUDP_ACTOR=\"$(abspath $(UDP_ACTOR))\" \
		-DSUBSCRIPTION_STRESS=\"$(abspath $(STRESS))\" -o $@ \
		$(INTEG_SRCS) $(OWN_NETNS) $(LIB_A) $(LDLIBS) -lcriterion

unit-test: $(UNIT_BIN)
	./tests/run-criterion $(UNIT_BIN)

# Needs root and BPF. Where they are missing the suite skips, and says why;
# with CI=true a skip fails the run.
integration-test: mounts $(INTEG_BIN)
	./tests/run-criterion $(INTEG_BIN) --jobs 1

# The real Teredo client and server in network namespaces (tests/e2e/run):
# the command, the Windows API (win_port_client) and
# NotifyStableUnicastIpAddressTable against Miredo's qualification (stable_table_client).
WIN_PORT_CLIENT := $(BUILD)/tests/win_port_client
STABLE_CLIENT   := $(BUILD)/tests/stable_table_client

$(WIN_PORT_CLIENT) $(STABLE_CLIENT): $(BUILD)/tests/%: tests/e2e/%.c $(wildcard include/*.h) $(LIB_A)
	@mkdir -p $(@D)
	$(call quiet,CC,$@)$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(LIB_A) $(LDLIBS)

e2e-test: mounts $(CMD) $(LIB_A) $(WIN_PORT_CLIENT) $(STABLE_CLIENT)
	./tests/e2e/run

# The example builds against an installed copy, found through pkg-config.
example-test: all
	./tests/install/run

# The exported names of the .so and the installed .a against include/, the
# library as a guest in a host program (built on the .so, as one is), and
# what a change to the BPF program rebuilds (tests/abi/run).
ABI_GUEST := $(BUILD)/tests/abi-guest

# It runs on the .so in $(BUILD), found by its SONAME.
$(ABI_GUEST): tests/abi/guest.c $(OWN_NETNS) $(LIB_SO)
	@mkdir -p $(@D)
	@ln -sf $(notdir $(LIB_SO)) $(BUILD)/$(SONAME)
	$(call quiet,CC,$@)$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(OWN_NETNS) \
		-L$(BUILD) -Wl,-rpath,$(abspath $(BUILD)) -l:libteredo_observer.so $(LIBBPF_LIBS)

abi-test: mounts all $(ABI_GUEST)
	./tests/abi/run $(BUILD) $(ABI_GUEST)

# The library and its tests again under ThreadSanitizer and AddressSanitizer.
# Criterion's allocator cannot live with ThreadSanitizer's memory layout, so
# under TSan the concurrency scenarios run as the stress program alone.
# Without LTO (LTO=): they check what the code does, not how fast, and LTO
# nearly doubled the ASan build (18 s -> 33 s on 2 cores).
tsan-test: mounts
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/tsan SANITIZE=-fsanitize=thread LTO= \
		$(BUILD)/tsan/tests/subscription-stress
	TSAN_OPTIONS=halt_on_error=1 $(BUILD)/tsan/tests/subscription-stress

asan-test:
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/asan LTO= \
		SANITIZE="-fsanitize=address,undefined -fno-omit-frame-pointer" \
		unit-test integration-test

# The Debian packages as a user installs them: make deb (lintian included),
# then apt in a fresh minimal Debian 12 root, cached in
# /var/cache/teredo-observer/deb-test and booted with systemd under
# systemd-nspawn: the socket, the service it starts for an unprivileged
# program, README's C example, systemd-analyze verify, dpkg --purge
# (tests/deb/run).
deb-test: $(UDP_ACTOR)
	./tests/deb/run

# --- kernel matrix ---
# The integration, command and e2e suites again on Debian 12's 6.1 and 6.12
# kernels and the newest in Debian's archive (trixie-backports), each booted
# under QEMU (tests/kernels/run; a few minutes each). KERNELS=6.12 runs one. The downloaded kernels stay in KERNEL_CACHE
# (/var/cache/teredo-observer/kernels), outside build/: make clean keeps them.
KERNELS ?=
kernel-matrix: $(CMD) $(INTEG_BIN) $(UDP_ACTOR) $(WIN_PORT_CLIENT) $(STABLE_CLIENT) $(TEXT_PATCHING)
	./tests/kernels/run $(KERNELS)
