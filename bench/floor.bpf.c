// SPDX-License-Identifier: GPL-2.0
/*
 * The latency floor: the least any eBPF bind watcher can do. One
 * cgroup/post_bind4 program that compares the process name and writes the
 * bind into a ring buffer; no socket storage, no namespace or protocol test.
 * The benchmark reads it with a thread blocked in epoll and times it exactly
 * as it times the observer's faces.
 *
 * Also here, loaded only by the cost job: an empty syscall tracepoint, to
 * show on its own what enabling any syscall tracepoint costs every system call
 * of every process (the observer uses two, for connect()).
 */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include "floor_event.h"

char LICENSE[] SEC("license") = "GPL";

/* The client's name, NUL-padded, as bpf_get_current_comm() writes it. */
const volatile __u64 comm_words[2] = {};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} floor_events SEC(".maps");

SEC("cgroup/post_bind4")
int floor_post_bind4(struct bpf_sock *ctx)
{
	char comm[16] __attribute__((aligned(8)));
	const __u64 *words = (const __u64 *)comm;
	struct floor_event *e;

	bpf_get_current_comm(comm, sizeof(comm));
	if (words[0] != comm_words[0] || words[1] != comm_words[1])
		return 1;
	e = bpf_ringbuf_reserve(&floor_events, sizeof(*e), 0);
	if (!e)
		return 1;
	e->ktime_ns = bpf_ktime_get_ns();
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->port = ctx->src_port;
	e->spare = 0;
	bpf_ringbuf_submit(e, 0);
	return 1;
}

SEC("tp/syscalls/sys_enter_connect")
int floor_connect_enter(void *ctx)
{
	return 0;
}
