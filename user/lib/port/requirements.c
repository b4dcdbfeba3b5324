// SPDX-License-Identifier: MIT
#include <errno.h>
#include <linux/capability.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "last_error.h"
#include "requirements.h"

#ifndef CAP_PERFMON
#define CAP_PERFMON 38
#endif
#ifndef CAP_BPF
#define CAP_BPF 39
#endif

static bool has_capability(const struct __user_cap_data_struct caps[2], int cap)
{
	return caps[cap / 32].effective & (1u << (cap % 32));
}

int check_privileges(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct caps[2] = {};
	static const struct {
		int cap;
		const char *name;
	} needed[] = { { CAP_BPF, "CAP_BPF" },
		       { CAP_PERFMON, "CAP_PERFMON" },
		       { CAP_NET_ADMIN, "CAP_NET_ADMIN" } };
	char missing[64] = "";

	if (syscall(SYS_capget, &hdr, caps))
		return set_last_error(-errno, "cannot read capabilities: %s", strerror(errno));
	for (size_t i = 0; i < sizeof(needed) / sizeof(needed[0]); i++) {
		if (has_capability(caps, needed[i].cap))
			continue;
		if (missing[0])
			strcat(missing, ", ");
		strcat(missing, needed[i].name);
	}
	if (missing[0])
		return set_last_error(-EPERM,
				      "needs CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN (missing %s): "
				      "run as root",
				      missing);
	return 0;
}

static int check_map_type(enum bpf_map_type type, const char *what, const char *since)
{
	if (libbpf_probe_bpf_map_type(type, NULL) != 1)
		return set_last_error(-EOPNOTSUPP, "kernel lacks %s: needs Linux %s or later", what,
				      since);
	return 0;
}

/* bpf_timer arrived in 5.15 with struct bpf_timer in the kernel's BTF: the floor. */
static int check_timers(const struct btf *vmlinux)
{
	if (btf__find_by_name_kind(vmlinux, "bpf_timer", BTF_KIND_STRUCT) < 0)
		return set_last_error(-EOPNOTSUPP,
				      "kernel lacks BPF timers: needs Linux 5.15 or later");
	return 0;
}

int check_kernel_features(void)
{
	struct btf *vmlinux;
	int err;

	if (access("/sys/kernel/btf/vmlinux", R_OK))
		return set_last_error(
			-EOPNOTSUPP, "kernel has no BTF (/sys/kernel/btf/vmlinux missing): needs a "
				     "kernel built with CONFIG_DEBUG_INFO_BTF=y");
	vmlinux = btf__load_vmlinux_btf();
	if (!vmlinux)
		return set_last_error(-EOPNOTSUPP, "cannot read the kernel's BTF: %s",
				      strerror(errno));
	err = check_timers(vmlinux);
	btf__free(vmlinux);
	if (!err)
		err = check_map_type(BPF_MAP_TYPE_RINGBUF, "BPF ring buffers", "5.8");
	return err;
}
