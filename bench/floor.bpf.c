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
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_core_read.h>
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

/*
 * For the latency diagnosis: the floor with the observer's kernel work on a
 * client's bind added (UDP and port tests, the real uid and the network
 * namespace through CO-RE, the socket cookie, the name read again into the
 * record, a hash map update after the submit), so that the time that work
 * adds is measured apart from the library's userspace path.
 */
struct heavy_socket {
	__u64 cookie;
	__u32 netns;
	__u16 port;
	__u16 family;
	__u32 state;
	__u32 unused;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, struct heavy_socket);
} heavy_clients SEC(".maps");

/* Not a uid any client has: the comparison runs, as the observer's does. */
const volatile __u32 heavy_uid = 0xfffffffe;
/* Cleared to measure the heavy floor without its map update after the submit. */
const volatile bool heavy_update = true;

SEC("cgroup/post_bind4")
int floor_heavy_bind4(struct bpf_sock *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u64 comm[2] = {}, key = (__u64)ctx;
	struct heavy_socket c = {};
	struct floor_event *e;
	__u32 uid;

	if (ctx->protocol != IPPROTO_UDP || ctx->type != SOCK_DGRAM || !ctx->src_port ||
	    ctx->src_port == 3544)
		return 1;
	bpf_get_current_comm(comm, sizeof(comm));
	if (comm[0] != comm_words[0] || comm[1] != comm_words[1])
		return 1;
	uid = BPF_CORE_READ(task, real_cred, uid.val);
	if (uid == heavy_uid)
		return 1;
	c.netns = BPF_CORE_READ(task, nsproxy, net_ns, ns.inum);
	c.cookie = bpf_get_socket_cookie(ctx);
	c.port = ctx->src_port;
	c.family = ctx->family;
	e = bpf_ringbuf_reserve(&floor_events, sizeof(*e), 0);
	if (!e)
		return 1;
	e->ktime_ns = bpf_ktime_get_ns();
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->port = c.port;
	e->spare = (__u16)c.netns;
	bpf_get_current_comm(comm, sizeof(comm));
	bpf_ringbuf_submit(e, 0);
	if (heavy_update)
		bpf_map_update_elem(&heavy_clients, &key, &c, BPF_ANY);
	return 1;
}

SEC("tp/syscalls/sys_enter_connect")
int floor_connect_enter(void *ctx)
{
	return 0;
}

/*
 * Also for the cost job: the send hook of teredo-observer 0.1.0, as it was
 * on the path of an unrelated send (UDP test, socket storage lookup, peer
 * test, name compare), so that its replacement, the cgroup/sendmsg4/6 hooks,
 * is measured beside it in the same run. 0.1.0 itself no longer loads on
 * every kernel, which is why it is reproduced here.
 */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u64);
} old_marks SEC(".maps");

SEC("tp_btf/sock_send_length")
int BPF_PROG(floor_old_send, struct sock *sk, int ret, int flags)
{
	char comm[16] __attribute__((aligned(8)));
	const __u64 *words = (const __u64 *)comm;
	__be16 dport;

	if (sk->sk_protocol != IPPROTO_UDP || sk->sk_type != SOCK_DGRAM)
		return 0;
	if (bpf_sk_storage_get(&old_marks, sk, 0, 0))
		return 0;
	dport = sk->__sk_common.skc_dport;
	if (dport && dport != bpf_htons(3544))
		return 0;
	bpf_get_current_comm(comm, sizeof(comm));
	if (words[0] != comm_words[0] || words[1] != comm_words[1])
		return 0;
	bpf_sk_storage_get(&old_marks, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	return 0;
}

/*
 * Also for the cost job: programs that do nothing, of the seven types the
 * observer attaches, for the row that attaches them at Miredo's cgroup while
 * the work runs elsewhere. What that row costs is the kernel's own price of
 * any program of these types being attached anywhere (each hook's static
 * key, and for a send the socket lock taken around the empty run), which no
 * observer attaching there can get below.
 */
#define EMPTY_HOOK(name, section, ctx_type) \
	SEC(section)                        \
	int name(ctx_type *ctx)             \
	{                                   \
		return 1;                   \
	}
EMPTY_HOOK(floor_empty_bind4, "cgroup/post_bind4", struct bpf_sock)
EMPTY_HOOK(floor_empty_bind6, "cgroup/post_bind6", struct bpf_sock)
EMPTY_HOOK(floor_empty_release, "cgroup/sock_release", struct bpf_sock)
EMPTY_HOOK(floor_empty_send4, "cgroup/sendmsg4", struct bpf_sock_addr)
EMPTY_HOOK(floor_empty_send6, "cgroup/sendmsg6", struct bpf_sock_addr)
EMPTY_HOOK(floor_empty_connect4, "cgroup/connect4", struct bpf_sock_addr)
EMPTY_HOOK(floor_empty_connect6, "cgroup/connect6", struct bpf_sock_addr)
