# teredo-observer: see README.md. `make` builds, `make test` tests, `make run` runs.
# One fragment per component, beside its sources:
#   bpf/bpf.mk                the BPF program and its skeleton
#   user/lib/lib.mk           libteredo_observer, installed with include/
#   user/service/service.mk   teredo-observer serve (Varlink)
#   user/firewall/firewalld.mk the firewalld backend of the command
#   user/command/command.mk   the teredo-observer command
#   tests/tests.mk            the suites that span components, the kernel matrix
CC         ?= cc
CLANG      ?= clang
BPFTOOL    ?= bpftool
PKG_CONFIG ?= pkg-config
OBJCOPY    ?= objcopy
PREFIX     ?= /usr/local

BUILD := build
ARCH  := $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
MULTIARCH := $(shell $(CC) -print-multiarch 2>/dev/null)

LIBBPF_CFLAGS := $(shell $(PKG_CONFIG) --cflags libbpf 2>/dev/null)
LIBBPF_LIBS   := $(shell $(PKG_CONFIG) --libs libbpf 2>/dev/null)
# json-c for Varlink (the service and the library's service client)
JSONC_CFLAGS  := $(shell $(PKG_CONFIG) --cflags json-c 2>/dev/null)
JSONC_LIBS    := $(or $(shell $(PKG_CONFIG) --libs json-c 2>/dev/null),-ljson-c)

CFLAGS   ?= -O2 -g
SANITIZE ?=
# Link-time optimisation: the event's path runs through cold code across the
# library's files; an LTO build measured 0.4-4% faster in process and 0.3-2%
# through the service (tbench --only latency --variant, each build first once). Appended
# (not the ?= default), so that it stays when dpkg-buildflags' CFLAGS replace
# -O2 -g; every link line carries CFLAGS, so the links run it too. Fat objects
# keep real code beside the LTO bytecode (a non-LTO link of the in-tree .a
# works). `make LTO=` builds without it.
LTO      ?= -flto=auto -ffat-lto-objects
CFLAGS   += -std=gnu11 -Wall -Wextra -fPIC $(LIBBPF_CFLAGS) $(JSONC_CFLAGS) $(SANITIZE) $(LTO)
# What a client of the library sees: include/ alone. Components add their own.
CPPFLAGS += -Iinclude
LDLIBS   += $(LIBBPF_LIBS) -lelf -lz -lpthread $(JSONC_LIBS)
# rtnetlink for the unicast address table
LDLIBS   += $(or $(shell $(PKG_CONFIG) --libs libmnl 2>/dev/null),-lmnl)

.PHONY: all deps test-deps mounts run test check install format clean

# A quiet build prints one line per step ("  CC      build/lib/port/observer.o");
# V=1 prints the commands themselves. A recipe line starts with
# $(call quiet,WHAT,TARGET) and goes on with the command.
V ?= 0
ifeq ($(V),1)
quiet =
else
quiet = @printf '  %-7s %s\n' '$(1)' '$(2)';
endif
# Every object depends on the headers it includes (gcc and clang write the
# list beside it, build/.../x.d); the fragments include those lists.
DEPFLAGS = -MMD -MP

# The default goal; what it builds is named below, once the components are read.
all:

# A failed recipe (bpftool gen skeleton > $@) leaves no stale target behind.
.DELETE_ON_ERROR:
# Keep the BPF object and skeleton between builds.
.SECONDARY:

# What building and running need (make deps, for make run), and what only the
# tests need on top (make test-deps, for make test): make run brings no Miredo.
# QEMU, busybox-static and kmod boot the kernel matrix (tests/kernels/run).
# A fresh minimal Debian has neither man (man-db, to read the man pages) nor
# pgrep (procps, for the e2e suite); the fuzz target links libFuzzer from
# libclang-rt-14-dev, which clang only recommends.
BUILD_DEPS := clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev pkg-config make gcc libmnl-dev libjson-c-dev \
	      libsystemd-dev libnftables-dev
RUN_DEPS   := man-db
# What make deb builds the packages with (dpkg-buildpackage refuses to start
# without build-essential, which a fresh Debian lacks); make deb-test then
# makes a Debian root with mmdebstrap and boots it with systemd-nspawn
# (systemd-container).
DEB_TOOLS  := build-essential debhelper lintian dpkg-dev
TEST_DEPS  := libcriterion-dev iproute2 miredo miredo-server nftables libcap2-bin python3 \
	      systemd man-db procps libclang-rt-14-dev qemu-system-x86 busybox-static kmod firewalld dbus \
	      $(DEB_TOOLS) mmdebstrap systemd-container

deps:
	@./scripts/install-deps $(BUILD_DEPS) $(RUN_DEPS)

test-deps:
	@./scripts/install-deps $(BUILD_DEPS) $(RUN_DEPS) -- $(TEST_DEPS)

mounts:
	@./scripts/ensure-mounts

# The command, by name: the service's and the kernel matrix's tests run it.
CMD := $(BUILD)/teredo-observer

include bpf/bpf.mk user/lib/lib.mk tests/tests.mk user/firewall/firewalld.mk user/service/service.mk \
	user/command/command.mk

all: $(CMD) $(LIB_A) $(LIB_PUBLIC_A) $(LIB_SO)

# The two commands of README.md work from a fresh clone: they bring what is missing.
run: deps mounts
	@$(MAKE) --no-print-directory $(CMD)
	./$(CMD)

# make check runs every suite of CHECK_SUITES (tests/tests.mk), each to its end
# even when one fails, and ends with one table of them all (tests/run-suites);
# it installs nothing. make test brings the test dependencies first.
# CHECK_SUITES="unit-test command-test" make check runs those alone.
check:
	@MAKE='$(MAKE)' LOG_DIR=$(BUILD)/check ./tests/run-suites $(CHECK_SUITES)

test: test-deps
	@$(MAKE) --no-print-directory check

# --- install: make install PREFIX=DIR ---
# The library (DIR/include, DIR/lib, DIR/lib/pkgconfig, DIR/share/man/man3)
# and the command (user/command/command.mk).
install: all install-lib install-command

# --- bench: the benchmarks of BENCHMARKS.md (bench/) ---
# sudo make bench: the benchmarks of BENCHMARKS.md, in a network namespace of
# their own (bench/main.c), the send hook's own cost (bench/hook-cost), the real
# Miredo relaying through its tunnel (bench/miredo-relay), the firewall job,
# then the service soak (bench-soak, 10 minutes).
# About 13 minutes; prints the tables and the targets.
BENCH_DIR    := $(BUILD)/bench
BENCH        := $(BENCH_DIR)/tbench
BENCH_CLIENT := $(BENCH_DIR)/tbench-client
BENCH_SKEL   := $(BENCH_DIR)/floor.bpf.skel.h
BENCH_SRCS   := bench/main.c bench/util.c bench/consumers.c bench/rounds.c bench/latency.c \
		bench/alone.c bench/idle.c bench/storm.c bench/cost.c bench/startup.c bench/poller.c \
		bench/polling.c \
		bench/bpftrace.c

$(BENCH_DIR)/floor.bpf.o: bench/floor.bpf.c bench/floor_event.h bpf/kernel_types.h
	@mkdir -p $(@D)
	$(call quiet,CLANG,$@)$(CLANG) $(BPF_CFLAGS) -Ibench -c $< -o $@

$(BENCH_SKEL): $(BENCH_DIR)/floor.bpf.o
	$(call quiet,GEN,$@)$(BPFTOOL) gen skeleton $< name floor_bpf > $@

# The bench attaches its floor where the library does: cgroup2_root_fd(), internal.
$(BENCH): $(BENCH_SRCS) bench/bench.h bench/floor_event.h $(BENCH_SKEL) $(LIB_A)
	$(call quiet,CC,$@)$(CC) $(CPPFLAGS) -I$(BENCH_DIR) -Ibench $(LIB_INTERNAL_CPPFLAGS) -Ibpf $(CFLAGS) \
		-DTBENCH_CLIENT=\"$(abspath $(BENCH_CLIENT))\" \
		-DTBENCH_OBSERVER=\"$(abspath $(CMD))\" \
		-o $@ $(BENCH_SRCS) $(LIB_A) $(LDLIBS) -lm

$(BENCH_CLIENT): bench/client.c bench/bench.h
	@mkdir -p $(@D)
	$(call quiet,CC,$@)$(CC) $(CFLAGS) -Ibench -o $@ $<

# The firewall job's client and clock: nftables' notifications, stamped as they come.
BENCH_FW := $(BENCH_DIR)/tbench-fw
$(BENCH_FW): bench/fw_latency.c
	@mkdir -p $(@D)
	$(call quiet,CC,$@)$(CC) $(CFLAGS) -o $@ $<

.PHONY: bench bench-compare bench-deps bench-firewall bench-soak
# bpftrace and ss are what bench-compare measures us against; Miredo, its
# server and python3 run bench/miredo-relay (test-only: their services kept off).
bench-deps:
	@./scripts/install-deps $(BUILD_DEPS) bpftrace iproute2 -- miredo miredo-server python3

# What our changes move: our own jobs. bench-compare re-measures the tools we
# are compared with (polling /proc and ss, a bpftrace one-liner), which do
# not change when we do.
BENCH_JOBS         := cost,latency,alone,idle,storm,startup
BENCH_COMPARE_JOBS := polling,bpftrace

bench: bench-deps
	@./scripts/ensure-mounts --tracefs
	@$(MAKE) --no-print-directory $(BENCH) $(BENCH_CLIENT) $(CMD)
	./$(BENCH) --only $(BENCH_JOBS)
	./bench/hook-cost current=$(abspath $(CMD))
	./bench/miredo-relay $(abspath $(CMD))
	@$(MAKE) --no-print-directory bench-firewall
	@$(MAKE) --no-print-directory bench-soak

# The firewall job alone: bind() -> the set (or firewalld's rule) holds the
# port, for --nft-set, --exec teredo-nft-update and --firewalld-zone, each
# twice (A/A), in namespaces of their own (bench/firewall-latency); then the
# ruleset loaded again -> the port back in the set (bench/nft-reload-repair).
bench-firewall: mounts $(CMD) $(BENCH_FW)
	./bench/firewall-latency $(or $(ROUNDS),100) $(CMD) $(BENCH_FW)
	./bench/nft-reload-repair $(or $(ROUNDS),100) $(CMD)

# The service against user nobody's mixed attacks, 100 honest consumers and a
# client restarting every second: SOAK_SECONDS (600) of it, then a table.
bench-soak: mounts $(CMD) $(UDP_ACTOR) $(SERVICE_CONSUMER)
	./bench/service-soak $(CMD) $(UDP_ACTOR) $(SERVICE_CONSUMER)

bench-compare: bench-deps
	@./scripts/ensure-mounts --tracefs
	@$(MAKE) --no-print-directory $(BENCH) $(BENCH_CLIENT) $(CMD)
	./$(BENCH) --only $(BENCH_COMPARE_JOBS)

# --- deb: the Debian packages (debian/), built from a clean copy of the tree
# into build/deb/, then checked by lintian (no error, no warning). The debug
# symbols' packages go on to build/deb/dbgsym/, so that build/deb/*.deb is
# exactly the packages of debian/control: `apt install ./build/deb/*.deb`. ---
.PHONY: deb
DEB_DIR := $(BUILD)/deb
deb:
	@./scripts/install-deps $(BUILD_DEPS) $(DEB_TOOLS)
	rm -rf $(DEB_DIR) && mkdir -p $(DEB_DIR)/src
	tar -c --exclude=./$(BUILD) --exclude=./.git . | tar -x -C $(DEB_DIR)/src
	cd $(DEB_DIR)/src && dpkg-buildpackage -us -uc -b
	lintian --fail-on error,warning $(DEB_DIR)/*.changes
	mkdir -p $(DEB_DIR)/dbgsym && mv $(DEB_DIR)/*-dbgsym_*.deb $(DEB_DIR)/dbgsym/
	@ls $(DEB_DIR)/*.deb

format:
	clang-format -i bpf/*.c bpf/*.h user/*/*.c user/*/*.h user/lib/*/*.c user/lib/*/*.h user/*/tests/*.c user/*/tests/*/*.c \
		include/*.h tests/*/*.c examples/*.c bench/*.c bench/*.h

clean:
	rm -rf $(BUILD)
