/* SPDX-License-Identifier: MIT */
/*
 * The few kernel types the BPF programs read, declared by hand instead of a
 * generated vmlinux.h so that the build never depends on the build machine's
 * kernel. preserve_access_index makes every field access a CO-RE relocation:
 * libbpf moves each offset to the running kernel's layout at load time, using
 * its BTF (/sys/kernel/btf/vmlinux). Only names and types matter here, not
 * order or completeness; anonymous unions in the real types are matched too.
 */
#ifndef TEREDO_KERNEL_TYPES_H
#define TEREDO_KERNEL_TYPES_H

#include <linux/types.h>
#include <linux/bpf.h>
#include <stdbool.h>
#include <stddef.h>

#define AF_INET 2
#define AF_INET6 10
#define IPPROTO_UDP 17
#define SOCK_DGRAM 2
#define CLOCK_MONOTONIC 1

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

struct ns_common {
	unsigned int inum;
};

struct net {
	struct ns_common ns;
};

typedef struct {
	struct net *net;
} possible_net_t;

struct sock_common {
	__be16 skc_dport;
	__u16 skc_num;
	unsigned short skc_family;
	possible_net_t skc_net;
	struct {
		__s64 counter;
	} skc_cookie;
};

struct cgroup;

/* Since 5.15 the cgroup v2 a socket was made in, whatever v1 controllers do. */
struct sock_cgroup_data {
	struct cgroup *cgroup;
};

struct sock {
	struct sock_common __sk_common;
	__u16 sk_type;
	__u16 sk_protocol;
	struct sock_cgroup_data sk_cgrp_data;
};

struct socket {
	struct sock *sk;
};

struct file;

struct nsproxy {
	struct net *net_ns;
};

struct kernfs_node {
	const char *name;
	__u64 id; /* what a file handle of the cgroup's directory holds */
};

struct cgroup;

/* Every cgroup embeds one as `self`; its parent is the parent cgroup's. */
struct cgroup_subsys_state {
	struct cgroup *cgroup;
	struct cgroup_subsys_state *parent;
};

struct cgroup {
	struct cgroup_subsys_state self;
	int level;
	struct kernfs_node *kn;
};

typedef struct {
	__u32 val;
} kuid_t;

struct cred {
	kuid_t uid;
};

struct css_set {
	struct cgroup *dfl_cgrp;
};

struct task_struct {
	int tgid;
	char comm[16];
	struct task_struct *real_parent;
	const struct cred *real_cred;
	struct nsproxy *nsproxy;
	struct css_set *cgroups;
};

struct seq_file;

struct bpf_iter_meta {
	struct seq_file *seq;
	__u64 session_id;
	__u64 seq_num;
};

struct bpf_iter__task_file {
	union {
		struct bpf_iter_meta *meta;
	};
	union {
		struct task_struct *task;
	};
	__u32 fd;
	union {
		struct file *file;
	};
};

#pragma clang attribute pop

#endif
