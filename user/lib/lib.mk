# --- lib: libteredo_observer (user/lib), the public API of include/ ---
# Sources and private headers here; the BPF record and skeleton from bpf/ and
# $(BUILD). Only what is marked _public_ and libteredo_observer.map names is
# exported; tests/abi/run checks that this is the API of include/ exactly.
# Three parts, a folder each, on shared helpers:
#   port/            the port observer: BPF loader, state machine, native API, callbacks
#   service_client/  the same events read from teredo-observer serve (Varlink, json-c)
#   unicast/         the unicast address table over rtnetlink (libmnl)
#   windows/         the Windows faces over the native API
#   util/            growing arrays, the last error
LIB_DIR   := user/lib
LIB_PARTS := port service_client unicast windows util
# Private headers are found by name in every part (what the unit tests and the service see too);
# private/ holds what the command uses beyond include/ (not in the ABI).
LIB_PRIVATE_CPPFLAGS  := -I$(LIB_DIR)/private
LIB_INTERNAL_CPPFLAGS := $(addprefix -I$(LIB_DIR)/,$(LIB_PARTS)) $(LIB_PRIVATE_CPPFLAGS)
LIB_CPPFLAGS := $(LIB_INTERNAL_CPPFLAGS) -Ibpf -I$(BUILD)
LIB_SRCS  := $(foreach part,$(LIB_PARTS),$(wildcard $(LIB_DIR)/$(part)/*.c))
LIB_HDRS  := $(foreach part,$(LIB_PARTS),$(wildcard $(LIB_DIR)/$(part)/*.h)) \
	     $(wildcard include/*.h) bpf/teredo_event.h
LIB_OBJS  := $(LIB_SRCS:$(LIB_DIR)/%.c=$(BUILD)/lib/%.o)
# The in-tree archive, whose internal names the command, the service and the
# tests link against; and the archive that is installed, the same objects as
# one whose internal names are local: a program linking it sees the API alone.
LIB_A     := $(BUILD)/libteredo_observer.a
LIB_PUBLIC_A := $(BUILD)/public/libteredo_observer.a
LIB_SO    := $(BUILD)/libteredo_observer.so
LIB_MAP   := $(LIB_DIR)/libteredo_observer.map
# One SONAME per incompatible ABI: .so.1 since the selection became opaque
# (struct teredo_options gone); the symbols are versioned (the map).
SONAME    := libteredo_observer.so.1
VERSION   := $(shell sed -n 's/^\#define TEREDO_OBSERVER_VERSION "\(.*\)"/\1/p' include/teredo_observer.h)
MAN3      := $(wildcard $(LIB_DIR)/man/*.3)

# Each object depends on what it includes (its .d); the skeleton is made
# before any object compiles, and rebuilds only those that include it.
# Hidden by default: only what says _public_ (util/public.h) is exported.
$(BUILD)/lib/%.o: $(LIB_DIR)/%.c | $(SKEL)
	@mkdir -p $(@D)
	$(call quiet,CC,$@)$(CC) $(CPPFLAGS) $(LIB_CPPFLAGS) $(CFLAGS) -fvisibility=hidden $(DEPFLAGS) \
		-c $< -o $@

-include $(LIB_OBJS:.o=.d)

# Made afresh: an object whose source is gone must not linger in it.
$(LIB_A): $(LIB_OBJS)
	@rm -f $@
	$(call quiet,AR,$@)$(AR) rcs $@ $^

# One relocatable object of them all (a partial link, -r), its hidden names
# made local. The link is done by the compiler with nolto-rel: LTO objects come
# out as the library optimised as a whole, in machine code alone. LTO bytecode
# left in (ld -r keeps it) would carry the internal names as globals past
# --localize-hidden, to any linker that reads it.
$(BUILD)/public/libteredo_observer.o: $(LIB_OBJS)
	@mkdir -p $(@D)
	$(call quiet,LD,$@)$(CC) $(CFLAGS) -nostdlib -r -flinker-output=nolto-rel -o $@ $^
	$(call quiet,OBJCOPY,$@)$(OBJCOPY) --localize-hidden $@

$(LIB_PUBLIC_A): $(BUILD)/public/libteredo_observer.o
	@rm -f $@
	$(call quiet,AR,$@)$(AR) rcs $@ $^

$(LIB_SO): $(LIB_OBJS) $(LIB_MAP)
	$(call quiet,LD,$@)$(CC) $(CFLAGS) -shared -Wl,-soname,$(SONAME) \
		-Wl,--version-script=$(LIB_MAP) -Wl,--no-undefined-version $(LDFLAGS) -o $@ $(LIB_OBJS) $(LDLIBS)

# The dynamic linker finds libraries under /usr and /usr/local (Debian's
# ld.so.conf, /usr/local through ldconfig's cache). Under any other prefix,
# programs built through pkg-config carry the path to the library (an rpath),
# so that they run without LD_LIBRARY_PATH, which sudo drops.
comma := ,
SYSTEM_PREFIXES := /usr /usr/local
PC_RPATH := $(if $(filter $(SYSTEM_PREFIXES),$(PREFIX)),, -Wl$(comma)-rpath$(comma)$${libdir})

# DIR/include, DIR/lib, DIR/lib/pkgconfig, DIR/share/man/man3 for PREFIX=DIR;
# LIBDIR=/usr/lib/x86_64-linux-gnu puts the library where Debian's multiarch
# layout wants it (debian/rules does).
LIBDIR ?= $(PREFIX)/lib
.PHONY: install-lib
install-lib: $(LIB_PUBLIC_A) $(LIB_SO)
	install -d $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(LIBDIR)/pkgconfig \
		$(DESTDIR)$(PREFIX)/share/man/man3
	install -m 644 $(wildcard include/*.h) $(DESTDIR)$(PREFIX)/include/
	install -m 644 $(LIB_PUBLIC_A) $(DESTDIR)$(LIBDIR)/
	install -m 644 $(LIB_SO) $(DESTDIR)$(LIBDIR)/$(SONAME)
	ln -sf $(SONAME) $(DESTDIR)$(LIBDIR)/libteredo_observer.so
	# Written now, so that prefix names PREFIX as given to this install.
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' -e 's|@VERSION@|$(VERSION)|' \
		-e 's|@RPATH@|$(PC_RPATH)|' \
		$(LIB_DIR)/teredo-observer.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/teredo-observer.pc
	install -m 644 $(MAN3) $(DESTDIR)$(PREFIX)/share/man/man3/
	# A new library under /usr/local is found once ldconfig has cached it.
	$(if $(DESTDIR)$(PC_RPATH),,ldconfig)
