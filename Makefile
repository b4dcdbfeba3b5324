# teredo-observer: see README.md. `make` builds, `make test` tests, `make run` runs.
CC         ?= cc
CLANG      ?= clang
BPFTOOL    ?= bpftool
PKG_CONFIG ?= pkg-config
PREFIX     ?= /usr/local

BUILD := build
ARCH  := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
MULTIARCH := $(shell $(CC) -print-multiarch 2>/dev/null)

LIBBPF_CFLAGS := $(shell $(PKG_CONFIG) --cflags libbpf 2>/dev/null)
LIBBPF_LIBS   := $(shell $(PKG_CONFIG) --libs libbpf 2>/dev/null)

CFLAGS   ?= -O2 -g
SANITIZE ?=
CFLAGS   += -std=gnu11 -Wall -Wextra -fPIC $(LIBBPF_CFLAGS) $(SANITIZE)
CPPFLAGS += -Iinclude -Iuser -I$(BUILD)
LDLIBS   += $(LIBBPF_LIBS) -lelf -lz -lpthread
# rtnetlink for the unicast address table (issue 12)
LDLIBS   += $(or $(shell $(PKG_CONFIG) --libs libmnl 2>/dev/null),-lmnl)

BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Iinclude -Ibpf \
	      $(if $(MULTIARCH),-I/usr/include/$(MULTIARCH))

LIB_SRCS := user/last_error.c user/cgroup2.c user/requirements.c user/kernel_source.c \
	    user/port_state.c user/note_queue.c user/options.c user/observer.c \
	    user/subscription.c user/windows_api.c user/sched_hint.c user/grow.c
LIB_SRCS += user/address_view.c user/address_source.c user/unicast_address.c
# --- service (issue 11): the library's service client, json-c for Varlink ---
LIB_SRCS += user/varlink.c user/service_source.c user/source_choice.c
JSONC_CFLAGS := $(shell $(PKG_CONFIG) --cflags json-c 2>/dev/null)
JSONC_LIBS   := $(or $(shell $(PKG_CONFIG) --libs json-c 2>/dev/null),-ljson-c)
CFLAGS   += $(JSONC_CFLAGS)
LDLIBS   += $(JSONC_LIBS)
# --- end service ---
LIB_OBJS := $(LIB_SRCS:user/%.c=$(BUILD)/lib/%.o)
SKEL     := $(BUILD)/teredo_observer.bpf.skel.h
LIB_A    := $(BUILD)/libteredo_observer.a
LIB_SO   := $(BUILD)/libteredo_observer.so
SONAME   := libteredo_observer.so.0
VERSION  := $(shell sed -n 's/^\#define TEREDO_OBSERVER_VERSION "\(.*\)"/\1/p' include/teredo_observer.h)
CMD      := $(BUILD)/teredo-observer

UNIT_SRCS  := $(wildcard tests/unit/*.c)
INTEG_SRCS := $(wildcard tests/integration/*.c)
UNIT_BIN   := $(BUILD)/tests/unit
INTEG_BIN  := $(BUILD)/tests/integration
UDP_ACTOR  := $(BUILD)/tests/udp-actor
STRESS     := $(BUILD)/tests/subscription-stress

.PHONY: all deps test-deps mounts run test unit-test integration-test tsan-test asan-test install \
	example-test clean format

all: $(CMD) $(LIB_A) $(LIB_SO)

# What building and running need (make deps, for make run), and what only the
# tests need on top (make test-deps, for make test): make run brings no Miredo.
# QEMU, busybox-static and kmod boot the kernel matrix (tests/kernels/run).
BUILD_DEPS := clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev pkg-config make gcc libmnl-dev libjson-c-dev
TEST_DEPS  := libcriterion-dev iproute2 miredo miredo-server nftables libcap2-bin python3 \
	      systemd man-db qemu-system-x86 busybox-static kmod

deps:
	@./scripts/install-deps $(BUILD_DEPS)

test-deps:
	@./scripts/install-deps $(BUILD_DEPS) -- $(TEST_DEPS)

mounts:
	@./scripts/ensure-mounts

$(BUILD)/%.bpf.o: bpf/%.bpf.c bpf/kernel_types.h include/teredo_event.h
	@mkdir -p $(@D)
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/%.bpf.skel.h: $(BUILD)/%.bpf.o
	$(BPFTOOL) gen skeleton $< name $(subst .,_,$*)_bpf > $@

$(BUILD)/lib/%.o: user/%.c $(SKEL) $(wildcard user/*.h include/*.h)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(LIB_A): $(LIB_OBJS)
	$(AR) rcs $@ $^

$(LIB_SO): $(LIB_OBJS) user/libteredo_observer.map
	$(CC) $(CFLAGS) -shared -Wl,-soname,$(SONAME) \
		-Wl,--version-script=user/libteredo_observer.map -o $@ $(LIB_OBJS) $(LDLIBS)


CMD_SRCS := user/command.c user/event_exec.c user/sd_notify.c
CMD_SRCS += user/serve.c user/varlink_server.c
CMD_OBJS := $(CMD_SRCS:user/%.c=$(BUILD)/lib/%.o)

$(CMD): $(CMD_OBJS) $(LIB_A)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(UDP_ACTOR): tests/helpers/udp_actor.c
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -o $@ $<

$(UNIT_BIN): $(UNIT_SRCS) $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $(UNIT_SRCS) $(LIB_A) $(LDLIBS) -lcriterion

# Test programs that watch the kernel run in a network namespace of their own.
OWN_NETNS := tests/helpers/own_netns.c

$(STRESS): tests/stress/subscription_stress.c $(OWN_NETNS) $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(OWN_NETNS) $(LIB_A) $(LDLIBS)

$(INTEG_BIN): $(INTEG_SRCS) $(OWN_NETNS) $(wildcard tests/integration/*.h) $(LIB_A) $(UDP_ACTOR) \
	      $(STRESS)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -DUDP_ACTOR=\"$(abspath $(UDP_ACTOR))\" \
		-DSUBSCRIPTION_STRESS=\"$(abspath $(STRESS))\" -o $@ \
		$(INTEG_SRCS) $(OWN_NETNS) $(LIB_A) $(LDLIBS) -lcriterion

# The two commands of README.md work from a fresh clone: they bring what is missing.
run: deps mounts
	@$(MAKE) --no-print-directory $(CMD)
	./$(CMD)

unit-test: $(UNIT_BIN)
	./tests/run-criterion $(UNIT_BIN)

# Needs root and BPF. Where they are missing the suite skips, and says why;
# with CI=true a skip fails the run.
integration-test: mounts $(INTEG_BIN)
	./tests/run-criterion $(INTEG_BIN) --jobs 1

test: test-deps
	@$(MAKE) --no-print-directory unit-test integration-test command-test e2e-test example-test \
		service-test fuzz-test
	@$(MAKE) --no-print-directory tsan-test asan-test
	@$(MAKE) --no-print-directory kernel-matrix

# The library and its tests again under ThreadSanitizer and AddressSanitizer.
# Criterion's allocator cannot live with ThreadSanitizer's memory layout, so
# under TSan the concurrency scenarios run as the stress program alone.
tsan-test: mounts
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/tsan SANITIZE=-fsanitize=thread \
		$(BUILD)/tsan/tests/subscription-stress
	TSAN_OPTIONS=halt_on_error=1 $(BUILD)/tsan/tests/subscription-stress

asan-test:
	@$(MAKE) --no-print-directory BUILD=$(BUILD)/asan \
		SANITIZE="-fsanitize=address,undefined -fno-omit-frame-pointer" \
		unit-test integration-test

# The dynamic linker finds libraries under /usr and /usr/local (Debian's
# ld.so.conf, /usr/local through ldconfig's cache). Under any other prefix,
# programs built through pkg-config carry the path to the library (an rpath),
# so that they run without LD_LIBRARY_PATH, which sudo drops.
comma := ,
SYSTEM_PREFIXES := /usr /usr/local
PC_RPATH := $(if $(filter $(SYSTEM_PREFIXES),$(PREFIX)),, -Wl$(comma)-rpath$(comma)$${libdir})

MAN3 := man/NotifyTeredoPortChange.3 man/GetTeredoPort.3 man/CancelMibChangeNotify2.3 \
	man/teredo_observer.3
MAN3 += man/NotifyStableUnicastIpAddressTable.3 man/GetUnicastIpAddressTable.3 man/FreeMibTable.3

# make install PREFIX=DIR: DIR/include, DIR/lib, DIR/lib/pkgconfig, DIR/share/man.
install: all install-command
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/lib/pkgconfig \
		$(DESTDIR)$(PREFIX)/share/man/man3
	install -m 644 include/teredo_observer.h include/teredo_netioapi.h \
		include/teredo_netioapi_unicast.h \
		$(DESTDIR)$(PREFIX)/include/
	install -m 644 $(LIB_A) $(DESTDIR)$(PREFIX)/lib/
	install -m 755 $(LIB_SO) $(DESTDIR)$(PREFIX)/lib/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(PREFIX)/lib/libteredo_observer.so
	# Written now, so that prefix names PREFIX as given to this install.
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@VERSION@|$(VERSION)|' -e 's|@RPATH@|$(PC_RPATH)|' \
		user/teredo-observer.pc.in > $(DESTDIR)$(PREFIX)/lib/pkgconfig/teredo-observer.pc
	install -m 644 $(MAN3) $(DESTDIR)$(PREFIX)/share/man/man3/
	# A new library under /usr/local is found once ldconfig has cached it.
	$(if $(DESTDIR)$(PC_RPATH),,ldconfig)

# The example builds against an installed copy, found through pkg-config.
example-test: all
	./tests/install/run

format:
	clang-format -i bpf/*.c bpf/*.h user/*.c user/*.h include/*.h tests/*/*.c examples/*.c \
		bench/*.c bench/*.h

clean:
	rm -rf $(BUILD)

# Keep the BPF object and skeleton between builds.
.SECONDARY:

# --- e2e (issue 5) ---
# The real Teredo client and server in network namespaces (tests/e2e/run).
WIN_PORT_CLIENT := $(BUILD)/tests/win_port_client

$(WIN_PORT_CLIENT): tests/e2e/win_port_client.c include/teredo_netioapi.h $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(LIB_A) $(LDLIBS)

# NotifyStableUnicastIpAddressTable against Miredo's qualification (issue 12).
STABLE_CLIENT := $(BUILD)/tests/stable_table_client

$(STABLE_CLIENT): tests/e2e/stable_table_client.c $(wildcard include/*.h) $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(LIB_A) $(LDLIBS)

.PHONY: e2e-test
e2e-test: mounts $(CMD) $(LIB_A) $(WIN_PORT_CLIENT) $(STABLE_CLIENT)
	./tests/e2e/run

# --- command (issue 4) ---
# The command's install, its test suite and a live demo. Where things go:
# $(DESTDIR)$(PREFIX)/{sbin,lib/systemd/system,share/man/man8,share/teredo-observer}
SBINDIR     ?= $(PREFIX)/sbin
UNITDIR     ?= $(PREFIX)/lib/systemd/system
MAN8DIR     ?= $(PREFIX)/share/man/man8
EXAMPLESDIR ?= $(PREFIX)/share/teredo-observer

.PHONY: install install-command uninstall-command command-test demo


# The unit is written at install time, so that ExecStart names SBINDIR as given now.
install-command: $(CMD)
	install -D -m 0755 $(CMD) $(DESTDIR)$(SBINDIR)/teredo-observer
	install -d $(DESTDIR)$(UNITDIR)
	sed 's|@SBINDIR@|$(SBINDIR)|g' systemd/teredo-observer.service.in \
		> $(DESTDIR)$(UNITDIR)/teredo-observer.service
	chmod 0644 $(DESTDIR)$(UNITDIR)/teredo-observer.service
	install -D -m 0644 man/teredo-observer.8 $(DESTDIR)$(MAN8DIR)/teredo-observer.8
	install -D -m 0755 examples/nftables/teredo-nft-update \
		$(DESTDIR)$(EXAMPLESDIR)/teredo-nft-update
	install -D -m 0644 examples/nftables/teredo.nft $(DESTDIR)$(EXAMPLESDIR)/teredo.nft

uninstall-command:
	rm -f $(DESTDIR)$(SBINDIR)/teredo-observer \
		$(DESTDIR)$(UNITDIR)/teredo-observer.service \
		$(DESTDIR)$(MAN8DIR)/teredo-observer.8 \
		$(DESTDIR)$(EXAMPLESDIR)/teredo-nft-update $(DESTDIR)$(EXAMPLESDIR)/teredo.nft

# Needs root; every observer and client runs in network namespaces of its own.
command-test: mounts $(CMD) $(UDP_ACTOR)
	./tests/command/run-tests $(CMD) $(UDP_ACTOR)

# Miredo and its server in two throwaway network namespaces, watched live.
demo: mounts $(CMD)
	./scripts/demo $(CMD)

# --- bench (issue 6) ---
# sudo make bench: the benchmarks of BENCHMARKS.md, in a network namespace of
# their own (bench/main.c). About 2.5 minutes; prints the tables and the targets.
BENCH_DIR    := $(BUILD)/bench
BENCH        := $(BENCH_DIR)/tbench
BENCH_CLIENT := $(BENCH_DIR)/tbench-client
BENCH_SKEL   := $(BENCH_DIR)/floor.bpf.skel.h
BENCH_SRCS   := bench/main.c bench/util.c bench/consumers.c bench/rounds.c bench/latency.c \
		bench/alone.c bench/idle.c bench/storm.c bench/cost.c bench/startup.c bench/polling.c \
		bench/bpftrace.c

$(BENCH_DIR)/floor.bpf.o: bench/floor.bpf.c bench/floor_event.h bpf/kernel_types.h
	@mkdir -p $(@D)
	$(CLANG) $(BPF_CFLAGS) -Ibench -c $< -o $@

$(BENCH_SKEL): $(BENCH_DIR)/floor.bpf.o
	$(BPFTOOL) gen skeleton $< name floor_bpf > $@

$(BENCH): $(BENCH_SRCS) bench/bench.h bench/floor_event.h $(BENCH_SKEL) $(LIB_A)
	$(CC) $(CPPFLAGS) -I$(BENCH_DIR) -Ibench $(CFLAGS) \
		-DTBENCH_CLIENT=\"$(abspath $(BENCH_CLIENT))\" \
		-DTBENCH_OBSERVER=\"$(abspath $(CMD))\" \
		-o $@ $(BENCH_SRCS) $(LIB_A) $(LDLIBS) -lm

$(BENCH_CLIENT): bench/client.c bench/bench.h
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -Ibench -o $@ $<

.PHONY: bench bench-deps
# bpftrace and ss are what the benchmarks compare against.
bench-deps:
	@./scripts/install-deps $(BUILD_DEPS) bpftrace iproute2

bench: bench-deps
	@./scripts/ensure-mounts --tracefs
	@$(MAKE) --no-print-directory $(BENCH) $(BENCH_CLIENT) $(CMD)
	./$(BENCH)

# --- kernel matrix ---
# The integration, command and e2e suites again on Debian 12's 6.1 and 6.12
# kernels, each booted under QEMU (tests/kernels/run; a few minutes each).
# KERNELS=6.12 runs one. The downloaded kernels stay in KERNEL_CACHE
# (/var/cache/teredo-observer/kernels), outside build/: make clean keeps them.
KERNELS ?=
.PHONY: kernel-matrix
kernel-matrix: $(CMD) $(INTEG_BIN) $(UDP_ACTOR) $(WIN_PORT_CLIENT)
	./tests/kernels/run $(KERNELS)

# --- service (issue 11) ---
# teredo-observer serve, its clients and its protocol, in network namespaces
# of their own (tests/service/run-tests); the Varlink message handling under
# libFuzzer for a bounded time (tests/fuzz).
SERVICE_CONSUMER := $(BUILD)/tests/service-consumer
FUZZ_VARLINK     := $(BUILD)/tests/fuzz-varlink
FUZZ_SECONDS     ?= 20

$(SERVICE_CONSUMER): tests/service/consumer.c $(LIB_A)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ $< $(LIB_A) $(LDLIBS)

# Only the protocol: no kernel, no observer, so it runs anywhere.
$(FUZZ_VARLINK): tests/fuzz/fuzz_varlink.c user/varlink.c user/varlink_server.c user/port_state.c \
		 user/grow.c user/options.c user/cgroup2.c user/last_error.c $(wildcard user/*.h include/*.h)
	@mkdir -p $(@D)
	$(CLANG) -g -O1 -fsanitize=fuzzer,address,undefined $(CPPFLAGS) $(JSONC_CFLAGS) -o $@ \
		tests/fuzz/fuzz_varlink.c user/varlink.c user/varlink_server.c user/port_state.c \
		user/grow.c user/options.c user/cgroup2.c user/last_error.c $(JSONC_LIBS)

.PHONY: service-test fuzz-test
service-test: mounts $(CMD) $(UDP_ACTOR) $(SERVICE_CONSUMER)
	./tests/service/run-tests $(CMD) $(UDP_ACTOR) $(SERVICE_CONSUMER)

# A copy of the seeds as the working corpus: the tree stays as committed.
fuzz-test: $(FUZZ_VARLINK)
	rm -rf $(BUILD)/fuzz-corpus && mkdir -p $(BUILD)/fuzz-corpus
	cp tests/fuzz/corpus/* $(BUILD)/fuzz-corpus/
	$(FUZZ_VARLINK) -max_total_time=$(FUZZ_SECONDS) -max_len=20000 -timeout=10 \
		$(BUILD)/fuzz-corpus
# --- end service ---
