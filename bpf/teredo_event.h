/* SPDX-License-Identifier: MIT */
/*
 * The one record that the kernel side writes into the ring buffer (and the
 * start-up iterator writes into its seq_file), and that userspace reads.
 * Shared by bpf/ and user/: keep it free of anything but fixed-size types.
 */
#ifndef TEREDO_EVENT_H
#define TEREDO_EVENT_H

#ifdef __bpf__
#include "kernel_types.h"
#else
#include <linux/types.h>
#endif

#define TEREDO_COMM_LEN 16
#define TEREDO_MAX_COMMS 8
#define TEREDO_MAX_USERS 8
/* A cgroup path to match: up to 8 levels below the root, names under 63 bytes. */
#define TEREDO_MAX_CGROUP_LEVELS 8
#define TEREDO_CGROUP_NAME_LEN 64
/* Processes sharing one attached set, each with its ring (kernel_source.c). */
#define TEREDO_MAX_CONSUMERS 16
/* RFC 4380: the client listens on 3544 for multicast; never its service port. */
#define TEREDO_WELL_KNOWN_PORT 3544

enum teredo_event_kind {
	TEREDO_EVENT_BOUND = 1,	   /* a Teredo socket holds a local port */
	TEREDO_EVENT_RELEASED = 2, /* its last reference is gone */
};

struct teredo_event {
	__u64 ktime_ns; /* CLOCK_MONOTONIC, bpf_ktime_get_ns() */
	__u64 cookie;	/* socket identity: SO_COOKIE */
	__u32 netns;	/* network namespace inode, as in /proc/PID/ns/net */
	__u32 pid;	/* tgid of the process that caused the event */
	__u16 port;	/* local UDP port, host byte order */
	__u16 family;	/* AF_INET or AF_INET6 */
	__u8 kind;	/* enum teredo_event_kind */
	__u8 reserved[3];
	char comm[TEREDO_COMM_LEN];
};

/*
 * Beside each consumer slot: who holds it, so that a dead holder's slot is
 * taken again. Its proof of life is the kernel's: a map only the owner
 * holds, gone with its death or exec in any namespace; without one, the
 * pid and its start time say what they can.
 */
struct teredo_slot_owner {
	__u32 pid;	   /* 0: free */
	__u32 pid_ns;	   /* the namespace pid is a number in (its inode) */
	__u64 start_time;  /* /proc/PID/stat's starttime: the pid, not a later one's */
	__u32 time_ns;	   /* the time namespace it was read in: /proc shifts it by the reader's */
	__u32 proof_id;	   /* the owner's proof map's id; 0: none */
	__u64 proof_nonce; /* its value: that map, not a later one given its id */
};

#endif
