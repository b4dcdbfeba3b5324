// SPDX-License-Identifier: GPL-2.0
/*
 * The kernel half of teredo-observer: decide, at the moment a UDP socket gets
 * or loses its local port, whether it belongs to the Teredo client, and if so
 * tell userspace through a ring buffer. Everything unrelated is rejected here,
 * on the kernel's hot path, with as few loads as possible.
 *
 * Where a port is assigned, and the hook that sees it:
 *   bind() to any port           cgroup/post_bind4, cgroup/post_bind6
 *   autobind by a send           tp_btf/sock_send_length (every send path)
 *   autobind by connect()        cgroup/connect4, cgroup/connect6, and a BPF
 *                                timer that reads the port once it is there
 *   already bound at start       iter/task_file (a snapshot, also after loss)
 * and where it goes: cgroup/sock_release, run once the last reference to the
 * socket (fd, fork, SCM_RIGHTS) is gone.
 *
 * A socket found to be the Teredo client's is marked in socket-local storage,
 * so later sends cost one lookup and its release is recognised in O(1).
 */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "teredo_event.h"

char LICENSE[] SEC("license") = "GPL";

/* Settings, written by userspace between open and load. */
const volatile __u32 target_netns = 0; /* 0: every network namespace */
const volatile __u32 n_comms = 0;      /* how many entries of comm_words are used */
const volatile __u64 comm_words[TEREDO_MAX_COMMS][2] = {};
const volatile __u32 target_pid = 0;	   /* this process and its children */
const volatile __u64 target_cgroup_id = 0; /* this cgroup v2 and below it */
const volatile __u32 target_cgroup_level = 0;
const volatile bool match_traffic = false; /* sockets that talk to port 3544 */

/* Events the ring buffer had no room for; userspace rescans when it grows. */
__u64 lost_events = 0;

#define MARK_CLIENT 1	/* the socket is the Teredo client's */
#define MARK_REPORTED 2 /* userspace has been told its current port */

struct socket_mark {
	__u64 cookie;
	__u32 netns;
	__u16 port;
	__u16 family;
	__u32 state;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct socket_mark);
} marks SEC(".maps");

/*
 * A connect() about to autobind a Teredo client's socket. The cgroup hook
 * runs before the kernel picks the port and no hook with the socket follows,
 * so a timer looks again a few microseconds later. Syscall tracepoints would
 * do it too, but they put every system call on the machine on the slow path.
 */
struct autobind_watch {
	struct bpf_timer timer;
	__u64 sk; /* the kernel's struct sock *, trusted only if its cookie still matches */
	__u64 cookie;
	__u32 netns;
	__u32 pid;
	__u32 tries;
	__u32 released; /* set by sock_release: the port must not be reported after it */
	char comm[TEREDO_COMM_LEN];
};

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 256);
	__type(key, __u64);
	__type(value, struct autobind_watch);
} autobind_watches SEC(".maps");

static __always_inline bool comm_listed(const char comm[TEREDO_COMM_LEN])
{
	const __u64 *words = (const __u64 *)comm;

#pragma unroll
	for (int i = 0; i < TEREDO_MAX_COMMS; i++) {
		if (i >= n_comms)
			return false;
		if (words[0] == comm_words[i][0] && words[1] == comm_words[i][1])
			return true;
	}
	return false;
}

/* The pid option names miredo's pidfile pid: the parent, whose worker owns the socket. */
static __always_inline bool pid_listed(struct task_struct *task)
{
	return BPF_CORE_READ(task, tgid) == target_pid ||
	       BPF_CORE_READ(task, real_parent, tgid) == target_pid;
}

static __always_inline bool task_cgroup_listed(struct task_struct *task)
{
	struct cgroup *cgrp = BPF_CORE_READ(task, cgroups, dfl_cgrp);
	struct cgroup *ancestor;

	if (!cgrp || BPF_CORE_READ(cgrp, level) < (int)target_cgroup_level)
		return false;
	ancestor = BPF_CORE_READ(cgrp, ancestors[target_cgroup_level]);
	return ancestor && BPF_CORE_READ(ancestor, kn, id) == target_cgroup_id;
}

static __always_inline bool current_is_client(void)
{
	char comm[TEREDO_COMM_LEN] __attribute__((aligned(8)));

	bpf_get_current_comm(comm, sizeof(comm));
	if (comm_listed(comm))
		return true;
	if (target_pid && pid_listed((struct task_struct *)bpf_get_current_task()))
		return true;
	if (target_cgroup_id &&
	    bpf_get_current_ancestor_cgroup_id(target_cgroup_level) == target_cgroup_id)
		return true;
	return false;
}

static __always_inline bool task_is_client(struct task_struct *task)
{
	char comm[TEREDO_COMM_LEN] __attribute__((aligned(8)));

	BPF_CORE_READ_INTO(&comm, task, comm);
	if (comm_listed(comm))
		return true;
	if (target_pid && pid_listed(task))
		return true;
	return target_cgroup_id && task_cgroup_listed(task);
}

static __always_inline bool netns_in_scope(__u32 netns)
{
	return !target_netns || netns == target_netns;
}

static __always_inline bool port_can_be_teredo(__u16 port)
{
	return port != 0 && port != TEREDO_WELL_KNOWN_PORT;
}

/*
 * A socket connected to anything but a Teredo server (a DNS query, say) is
 * not the Teredo client's service socket, which talks to many peers.
 */
static __always_inline bool talks_to_one_peer(__be16 dport)
{
	return dport && dport != bpf_htons(TEREDO_WELL_KNOWN_PORT);
}

static __always_inline bool is_udp(__u16 type, __u16 protocol)
{
	return protocol == IPPROTO_UDP && type == SOCK_DGRAM; /* not a raw socket */
}

static __always_inline __u32 current_netns(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	return BPF_CORE_READ(task, nsproxy, net_ns, ns.inum);
}

static __always_inline void fill_event(struct teredo_event *e, __u8 kind,
				       const struct socket_mark *mark)
{
	e->ktime_ns = bpf_ktime_get_ns();
	e->cookie = mark->cookie;
	e->netns = mark->netns;
	e->port = mark->port;
	e->family = mark->family;
	e->kind = kind;
	e->reserved[0] = 0;
	e->reserved[1] = 0;
	e->reserved[2] = 0;
}

static __always_inline struct teredo_event *reserve_event(__u8 kind, const struct socket_mark *mark)
{
	struct teredo_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		__sync_fetch_and_add(&lost_events, 1);
		return NULL;
	}
	fill_event(e, kind, mark);
	return e;
}

/* An event caused by the current task. */
static __always_inline void emit(__u8 kind, const struct socket_mark *mark)
{
	struct teredo_event *e = reserve_event(kind, mark);

	if (!e)
		return;
	e->pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
}

static __always_inline void record_port(struct socket_mark *mark, __u64 cookie, __u32 netns,
					__u16 port, __u16 family)
{
	mark->cookie = cookie;
	mark->netns = netns;
	mark->port = port;
	mark->family = family;
	mark->state |= MARK_CLIENT | MARK_REPORTED;
}

static int on_post_bind(struct bpf_sock *ctx)
{
	struct socket_mark *mark, fresh = {};
	__u16 port = ctx->src_port;
	__u32 netns;

	if (!is_udp(ctx->type, ctx->protocol) || !port_can_be_teredo(port))
		return 1;
	if (!current_is_client())
		return 1;
	netns = current_netns();
	if (!netns_in_scope(netns))
		return 1;
	/* Wake the consumer first; the socket storage is allocated after. */
	record_port(&fresh, bpf_get_socket_cookie(ctx), netns, port, ctx->family);
	emit(TEREDO_EVENT_BOUND, &fresh);
	mark = bpf_sk_storage_get(&marks, ctx, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!mark) {
		__sync_fetch_and_add(&lost_events, 1);
		return 1;
	}
	record_port(mark, fresh.cookie, netns, port, ctx->family);
	return 1;
}

SEC("cgroup/post_bind4")
int teredo_post_bind4(struct bpf_sock *ctx)
{
	return on_post_bind(ctx);
}

SEC("cgroup/post_bind6")
int teredo_post_bind6(struct bpf_sock *ctx)
{
	return on_post_bind(ctx);
}

SEC("cgroup/sock_release")
int teredo_sock_release(struct bpf_sock *ctx)
{
	struct socket_mark *mark = bpf_sk_storage_get(&marks, ctx, 0, 0);
	struct autobind_watch *w;

	if (!mark || !(mark->state & MARK_CLIENT))
		return 1;
	/* Before our record: a timer that reserves after it sees this and stays silent. */
	w = bpf_map_lookup_elem(&autobind_watches, &mark->cookie);
	if (w)
		__sync_fetch_and_add(&w->released, 1); /* atomic, and ordered before the emit */
	emit(TEREDO_EVENT_RELEASED, mark);
	return 1;
}

/*
 * Runs after every send on the machine, so the order of the tests matters:
 * non-UDP sockets leave after one load, sockets already reported after one
 * storage lookup, and only then is the sending process looked at.
 */
SEC("tp_btf/sock_send_length")
int BPF_PROG(teredo_sock_send, struct sock *sk, int ret, int flags)
{
	struct socket_mark *mark, fresh = {};
	__u16 port, family;
	__u32 netns;

	if (!is_udp(sk->sk_type, sk->sk_protocol))
		return 0;
	port = sk->__sk_common.skc_num;
	mark = bpf_sk_storage_get(&marks, sk, 0, 0);
	if (mark) {
		/* A disconnected autobound socket can come back on a new port. */
		if ((mark->state & MARK_REPORTED) && mark->port == port)
			return 0;
	} else if (talks_to_one_peer(sk->__sk_common.skc_dport) || !current_is_client()) {
		return 0;
	}
	family = sk->__sk_common.skc_family;
	if (!port_can_be_teredo(port) || (family != AF_INET && family != AF_INET6))
		return 0;
	netns = sk->__sk_common.skc_net.net->ns.inum;
	if (!netns_in_scope(netns))
		return 0;
	/* As in post_bind: the record first, the storage after. */
	record_port(&fresh, bpf_get_socket_cookie(sk), netns, port, family);
	emit(TEREDO_EVENT_BOUND, &fresh);
	if (!mark)
		mark = bpf_sk_storage_get(&marks, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!mark) {
		__sync_fetch_and_add(&lost_events, 1);
		return 0;
	}
	record_port(mark, fresh.cookie, netns, port, family);
	return 0;
}

#define AUTOBIND_FIRST_LOOK_NS 10000 /* connect() assigns the port within microseconds */
#define AUTOBIND_MAX_LOOKS 10	     /* doubling each time: about 10 ms in all */

static int look_for_autobind(void *map, __u64 *cookie, struct autobind_watch *w)
{
	struct sock *sk = (struct sock *)w->sk;
	struct socket_mark mark = { .cookie = w->cookie, .netns = w->netns };
	struct teredo_event *e;

	/* Read through a plain pointer: a socket freed meanwhile fails this check. */
	if (BPF_CORE_READ(sk, __sk_common.skc_cookie.counter) != w->cookie)
		goto done;
	mark.port = BPF_CORE_READ(sk, __sk_common.skc_num);
	if (!mark.port) {
		if (++w->tries < AUTOBIND_MAX_LOOKS) {
			bpf_timer_start(&w->timer, AUTOBIND_FIRST_LOOK_NS << w->tries, 0);
			return 0;
		}
		goto done; /* the connect() failed, or the socket went elsewhere */
	}
	mark.family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (!port_can_be_teredo(mark.port))
		goto done;
	/*
	 * sock_release runs before the kernel clears the port, so the port read
	 * above can be a closing socket's. The ring buffer's lock orders the
	 * two records: reserved after the release's, this one sees its flag.
	 */
	e = reserve_event(TEREDO_EVENT_BOUND, &mark);
	if (!e)
		goto done;
	if (*(volatile __u32 *)&w->released) {
		bpf_ringbuf_discard(e, 0);
		goto done;
	}
	/* A timer runs in softirq: the process is the one that called connect(). */
	e->pid = w->pid;
	__builtin_memcpy(e->comm, w->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
done:
	bpf_map_delete_elem(map, cookie);
	return 0;
}

static __always_inline void watch_autobind(struct bpf_sock *sk, __u64 cookie, __u32 netns)
{
	struct autobind_watch fresh = { .sk = (__u64)sk, .cookie = cookie, .netns = netns };
	struct autobind_watch *w;

	fresh.pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(fresh.comm, sizeof(fresh.comm));
	if (bpf_map_update_elem(&autobind_watches, &cookie, &fresh, BPF_ANY))
		return;
	w = bpf_map_lookup_elem(&autobind_watches, &cookie);
	if (!w || bpf_timer_init(&w->timer, &autobind_watches, CLOCK_MONOTONIC) ||
	    bpf_timer_set_callback(&w->timer, look_for_autobind))
		return;
	bpf_timer_start(&w->timer, AUTOBIND_FIRST_LOOK_NS, 0);
}

/*
 * A Teredo client's socket connecting to a Teredo server (port 3544), or with
 * traffic matching any socket doing so, is marked (so that its release and
 * sends are recognised), and if connect() is about to autobind it, watched.
 */
static int on_connect(struct bpf_sock_addr *ctx)
{
	struct bpf_sock *sk = ctx->sk;
	struct socket_mark *mark;
	__u32 netns;

	if (!sk || !is_udp(ctx->type, ctx->protocol))
		return 1;
	/* Connected elsewhere, even a client's socket is not its Teredo socket. */
	if (ctx->user_port != bpf_htons(TEREDO_WELL_KNOWN_PORT))
		return 1;
	if (!match_traffic && !current_is_client())
		return 1;
	netns = current_netns();
	if (!netns_in_scope(netns))
		return 1;
	mark = bpf_sk_storage_get(&marks, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (!mark)
		return 1;
	mark->cookie = bpf_get_socket_cookie(ctx);
	mark->netns = netns;
	mark->state |= MARK_CLIENT;
	if (!sk->src_port)
		watch_autobind(sk, mark->cookie, netns);
	return 1;
}

SEC("cgroup/connect4")
int teredo_connect4(struct bpf_sock_addr *ctx)
{
	return on_connect(ctx);
}

SEC("cgroup/connect6")
int teredo_connect6(struct bpf_sock_addr *ctx)
{
	return on_connect(ctx);
}

/* Traffic matching: a UDP socket sending to a Teredo server's port is the client. */
static int on_sendmsg(struct bpf_sock_addr *ctx)
{
	struct socket_mark *mark;

	if (!ctx->sk || ctx->user_port != bpf_htons(TEREDO_WELL_KNOWN_PORT))
		return 1;
	mark = bpf_sk_storage_get(&marks, ctx->sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (mark)
		mark->state |= MARK_CLIENT;
	return 1;
}

SEC("cgroup/sendmsg4")
int teredo_sendmsg4(struct bpf_sock_addr *ctx)
{
	return on_sendmsg(ctx);
}

SEC("cgroup/sendmsg6")
int teredo_sendmsg6(struct bpf_sock_addr *ctx)
{
	return on_sendmsg(ctx);
}

/*
 * The snapshot: every UDP socket of a Teredo client open right now, written
 * to the iterator's output (userspace reads it with read()). Marks what it
 * finds so that the later release is seen. Run at start and after any loss.
 */
SEC("iter/task_file")
int teredo_scan(struct bpf_iter__task_file *ctx)
{
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;
	struct socket_mark *mark, fresh = {};
	struct teredo_event e = {};
	struct socket *sock;
	struct sock *sk;
	__u16 port, family;
	__u32 netns;
	bool client;

	if (!task || !file)
		return 0;
	sock = bpf_sock_from_file(file);
	if (!sock)
		return 0;
	sk = sock->sk;
	if (!sk || !is_udp(sk->sk_type, sk->sk_protocol) ||
	    talks_to_one_peer(sk->__sk_common.skc_dport))
		return 0;
	port = sk->__sk_common.skc_num;
	family = sk->__sk_common.skc_family;
	netns = sk->__sk_common.skc_net.net->ns.inum;
	if (!port_can_be_teredo(port) || (family != AF_INET && family != AF_INET6) ||
	    !netns_in_scope(netns))
		return 0;
	mark = bpf_sk_storage_get(&marks, sk, 0, 0);
	client = (mark && (mark->state & MARK_CLIENT)) || task_is_client(task) ||
		 (match_traffic && sk->__sk_common.skc_dport == bpf_htons(TEREDO_WELL_KNOWN_PORT));
	if (!client)
		return 0;
	record_port(&fresh, bpf_get_socket_cookie(sk), netns, port, family);
	fill_event(&e, TEREDO_EVENT_BOUND, &fresh);
	if (!mark)
		mark = bpf_sk_storage_get(&marks, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
	if (mark)
		record_port(mark, fresh.cookie, netns, port, family);
	else /* unmarked, its release would go unseen: a loss, to scan again */
		__sync_fetch_and_add(&lost_events, 1);
	e.pid = task->tgid;
	BPF_CORE_READ_INTO(&e.comm, task, comm);
	bpf_seq_write(ctx->meta->seq, &e, sizeof(e));
	return 0;
}
