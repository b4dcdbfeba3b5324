# --- bpf: the kernel side (bpf/teredo_observer.bpf.c, its record teredo_event.h) ---
# Compiled for the BPF target and turned into a skeleton that the library embeds.
BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Wall -Werror -Ibpf \
	      $(if $(MULTIARCH),-I/usr/include/$(MULTIARCH))
SKEL := $(BUILD)/teredo_observer.bpf.skel.h

$(BUILD)/%.bpf.o: bpf/%.bpf.c
	@mkdir -p $(@D)
	$(call quiet,CLANG,$@)$(CLANG) $(BPF_CFLAGS) $(DEPFLAGS) -c $< -o $@

$(BUILD)/%.bpf.skel.h: $(BUILD)/%.bpf.o
	$(call quiet,GEN,$@)$(BPFTOOL) gen skeleton $< name $(subst .,_,$*)_bpf > $@

-include $(SKEL:.skel.h=.d)
