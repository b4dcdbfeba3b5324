// SPDX-License-Identifier: GPL-2.0
/*
 * The kernel half of teredo-observer: decide, at the moment a UDP socket gets
 * or loses its local port, whether it belongs to the Teredo client, and if so
 * tell userspace through a ring buffer. Everything unrelated is rejected here,
 * on the kernel's hot path, with as few loads as possible.
 *
 * Where a port is assigned, and the hook that sees it:
 *   bind() to any port           cgroup/post_bind4, cgroup/post_bind6
 *   autobind by a send           cgroup/sendmsg4, cgroup/sendmsg6 (the kernel
 *                                autobinds before this hook runs)
 *   autobind by connect()        cgroup/connect4, cgroup/connect6, and a BPF
 *                                timer that reads the port once it is there
 *   already bound at start       iter/task_file (a snapshot, also after loss)
 * and where it goes: cgroup/sock_release, run once the last reference to the
 * socket (fd, fork, SCM_RIGHTS) is gone.
 *
 * Only cgroup programs, an iterator and a timer: one hook set that every
 * kernel from 5.15 (bpf_timer) to the newest loads, with no tracepoint whose
 * arguments change between versions. Before 6.4 there is no
 * sock_send_length tracepoint, and kprobes or fentry are not always allowed.
 *
 * Who the Teredo client is (is_client) is decided in one function, the
 * same for every hook and for the snapshot, and every criterion in force
 * must hold: a listed process name, credentials an ordinary user cannot
 * take (a listed real uid), and where asked, a process id, a cgroup path,
 * and traffic to a Teredo server's port.
 *
 * Sockets found to be the Teredo client's are kept in the `clients` registry,
 * keyed by the kernel's socket address (it is the context pointer of every
 * hook, and the iterator, which may not use socket storage since 6.18, can
 * read it too). Their release deletes them, before the memory can be reused.
 */
#include "kernel_types.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include "teredo_event.h"

char LICENSE[] SEC("license") = "GPL";

#define CGROUP_NAME_WORDS (TEREDO_CGROUP_NAME_LEN / 8)

/* Settings, written by userspace between open and load. */
const volatile __u32 target_netns = 0; /* 0: every network namespace */
const volatile __u32 n_comms = 0;      /* how many entries of comm_words are used */
const volatile __u64 comm_words[TEREDO_MAX_COMMS][2] = {};
const volatile __u32 n_uids = 0; /* real uids the client may run as */
const volatile __u32 uids[TEREDO_MAX_USERS] = {};
const volatile __u32 target_pid = 0;	/* this process and its children */
const volatile __u32 cgroup_levels = 0; /* 0: any cgroup; else the path's depth */
/* The cgroup the path starts from: the root of the consumer's cgroup2 mount,
 * in a container the root of its cgroup namespace (its kernfs id); 0: the
 * host's root, level 0. */
const volatile __u64 cgroup_root_id = 0;
const volatile __u64 cgroup_names[TEREDO_MAX_CGROUP_LEVELS][CGROUP_NAME_WORDS] = {};
const volatile bool match_traffic = false; /* only sockets that talk to port 3544 */

/*
 * Set by userspace to a hash of this object's ELF bytes: two loaded copies
 * whose .rodata is byte-equal are one build with one selection, and only
 * those share one attached set (kernel_source.c, "sharing").
 */
const volatile __u64 build_hash = 0;

/*
 * Records the registry had no room for: every consumer rescans. A
 * consumer's own ring's losses are counted in its slot (ring_lost).
 */
__u64 lost_events = 0;
/* Cookies for sockets the snapshot finds without one (see teredo_scan). */
__u64 synthetic_cookies = 0;
/* Per consumer slot: records its ring had no room for; it alone rescans. */
__u64 ring_lost[TEREDO_MAX_CONSUMERS] = {};
/*
 * Who holds each slot, for userspace only (no program reads it): written
 * under the join lock, and a dead owner's slot is taken by the next joiner.
 */
struct teredo_slot_owner slot_owners[TEREDO_MAX_CONSUMERS] = {};

#define CLIENT_REPORTED 1 /* userspace has been told its current port */
#define CLIENT_TRAFFIC 2  /* it sent to, or connected to, port 3544 */

struct client_socket {
	__u64 cookie;
	__u32 netns;
	__u16 port;
	__u16 family;
	__u32 state;
	__u32 unused;
};

/* A Teredo client has a socket or two: the bound only guards memory. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64); /* the kernel's struct sock address */
	__type(value, struct client_socket);
} clients SEC(".maps");

/*
 * One ring buffer per consumer (test_ringbuf_multi.c's pattern): each
 * process observing through one attached set puts its own ring in a free
 * slot, so that one consumer's full ring costs it alone a rescan. The
 * template's size is only the inner maps' type: each ring has its own.
 */
struct consumer_ring {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, TEREDO_MAX_CONSUMERS);
	__type(key, __u32);
	__array(values, struct consumer_ring);
} rings SEC(".maps");

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

/* The name, NUL-padded to 16 bytes, compared as two words. */
static __always_inline bool comm_listed(const __u64 words[2])
{
#pragma unroll
	for (int i = 0; i < TEREDO_MAX_COMMS; i++) {
		if (i >= n_comms)
			return false;
		if (words[0] == comm_words[i][0] && words[1] == comm_words[i][1])
			return true;
	}
	return false;
}

/*
 * Anyone can name a process miredo; nobody unprivileged can take uid 0 or
 * the miredo system user's uid. The real uid, so that a set-user-ID program
 * run by an ordinary user (and renamed through a symlink) does not count.
 */
static __always_inline bool uid_listed(struct task_struct *task)
{
	__u32 uid = BPF_CORE_READ(task, real_cred, uid.val);

#pragma unroll
	for (int i = 0; i < TEREDO_MAX_USERS; i++) {
		if (i >= n_uids)
			return false;
		if (uid == uids[i])
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

static __always_inline bool cgroup_name_is(struct cgroup *cgrp, int level)
{
	__u64 name[CGROUP_NAME_WORDS] = {};
	/* A mask, not only a test, so that every verifier sees the index bounded. */
	__u32 idx = (__u32)(level - 1) & (TEREDO_MAX_CGROUP_LEVELS - 1);

	_Static_assert(!(TEREDO_MAX_CGROUP_LEVELS & (TEREDO_MAX_CGROUP_LEVELS - 1)),
		       "a power of two");
	if (level < 1 || level > TEREDO_MAX_CGROUP_LEVELS)
		return false;
	if (bpf_probe_read_kernel_str(name, sizeof(name), BPF_CORE_READ(cgrp, kn, name)) < 0)
		return false;
#pragma unroll
	for (int i = 0; i < CGROUP_NAME_WORDS; i++)
		if (name[i] != cgroup_names[idx][i])
			return false;
	return true;
}

static __always_inline struct cgroup *parent_cgroup(struct cgroup *cgrp)
{
	return BPF_CORE_READ(cgrp, self.parent, cgroup);
}

#define CGROUP_MAX_CLIMB 64 /* deeper tasks are not matched: no real hierarchy is */

/*
 * The level of the cgroup the path starts from, found among cgrp's
 * ancestors (or cgrp itself); -1 when cgrp is not below it. A container's
 * /system.slice/miredo.service is below its cgroup namespace's root, which
 * is levels below the host's.
 */
static __always_inline int root_level(struct cgroup *cgrp)
{
	if (!cgroup_root_id)
		return 0;
	for (int i = 0; i < CGROUP_MAX_CLIMB && cgrp; i++) {
		if (BPF_CORE_READ(cgrp, kn, id) == cgroup_root_id)
			return BPF_CORE_READ(cgrp, level);
		cgrp = parent_cgroup(cgrp);
	}
	return -1;
}

/* cgrp's ancestor (or itself) at the path's depth, or NULL for one above it. */
static __always_inline struct cgroup *at_path_depth(struct cgroup *cgrp)
{
	int level, depth;

	if (!cgrp)
		return NULL;
	depth = root_level(cgrp);
	if (depth < 0)
		return NULL;
	depth += (int)cgroup_levels;
	level = BPF_CORE_READ(cgrp, level);
	for (int i = 0; i < CGROUP_MAX_CLIMB && level > depth; i++, level--)
		cgrp = parent_cgroup(cgrp);
	return level == depth ? cgrp : NULL;
}

/*
 * The cgroup is matched by its path, name by name, not by its id: `systemctl
 * restart miredo` removes the service's cgroup and makes a new one at the
 * same path, and at boot the path does not exist yet. Walking self.parent
 * works the same on every kernel (5.15 has ancestor_ids[], later ones
 * ancestors[]; neither is needed).
 */
static __always_inline bool cgroup_listed(struct task_struct *task)
{
	struct cgroup *cgrp = at_path_depth(BPF_CORE_READ(task, cgroups, dfl_cgrp));
	int level = (int)cgroup_levels;

	if (!cgrp)
		return false;
	for (int i = 0; i < TEREDO_MAX_CGROUP_LEVELS && level > 0; i++, level--) {
		if (!cgroup_name_is(cgrp, level))
			return false;
		cgrp = parent_cgroup(cgrp);
	}
	return level == 0;
}

/*
 * The one decision, for the live hooks (the current task) and the snapshot
 * alike, in two steps: the name, which sets nearly every unrelated process
 * apart at once and costs no task read, then what a name cannot fake (the
 * credentials) and what the caller narrowed (pid, cgroup path).
 */
static __always_inline bool task_qualifies(struct task_struct *task)
{
	if (!uid_listed(task))
		return false;
	if (target_pid && !pid_listed(task))
		return false;
	return !cgroup_levels || cgroup_listed(task);
}

/*
 * Into a zeroed buffer: before 6.4, bpf_get_current_comm() left the tail of
 * its buffer unwritten, and a 16-byte comparison of garbage never matched.
 * The helper copies a word at a time, so every unrelated send pays less
 * than for a byte-wise read of the task's name.
 */
static __always_inline bool current_name_listed(void)
{
	__u64 comm[2] = {};

	bpf_get_current_comm(comm, sizeof(comm));
	return comm_listed(comm);
}

/* The task is read only once the name matched. */
static __always_inline bool current_is_client(void)
{
	return current_name_listed() &&
	       task_qualifies((struct task_struct *)bpf_get_current_task());
}

static __always_inline bool task_is_client(struct task_struct *task)
{
	__u64 comm[2] = {};

	BPF_CORE_READ_STR_INTO(&comm, task, comm);
	return comm_listed(comm) && task_qualifies(task);
}

static __always_inline bool netns_in_scope(__u32 netns)
{
	return !target_netns || netns == target_netns;
}

static __always_inline bool port_can_be_teredo(__u16 port)
{
	return port != 0 && port != TEREDO_WELL_KNOWN_PORT;
}

static __always_inline bool to_teredo_server(__u32 user_port)
{
	return user_port == bpf_htons(TEREDO_WELL_KNOWN_PORT);
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

/* The registry's key: the socket's address, the context of every hook. */
static __always_inline __u64 socket_key(const void *sk)
{
	return (__u64)sk;
}

static __always_inline void fill_event(struct teredo_event *e, __u8 kind,
				       const struct client_socket *c)
{
	e->ktime_ns = bpf_ktime_get_ns();
	e->cookie = c->cookie;
	e->netns = c->netns;
	e->port = c->port;
	e->family = c->family;
	e->kind = kind;
	e->reserved[0] = 0;
	e->reserved[1] = 0;
	e->reserved[2] = 0;
}

/* The cause of a record made by the current task. */
static __always_inline void by_current(struct teredo_event *e)
{
	e->pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
}

/*
 * One record to every consumer's ring. Only records pass here (rare, a
 * Teredo client's port changing): unrelated work never reaches the loop. A
 * full ring loses the record for its consumer alone, which rescans.
 */
static __always_inline void deliver(struct teredo_event *e)
{
	for (__u32 i = 0; i < TEREDO_MAX_CONSUMERS; i++) {
		__u32 slot = i;
		void *ring = bpf_map_lookup_elem(&rings, &slot);

		if (ring && bpf_ringbuf_output(ring, e, sizeof(*e), 0))
			__sync_fetch_and_add(&ring_lost[i], 1);
	}
}

static __always_inline void emit(__u8 kind, const struct client_socket *c)
{
	struct teredo_event e = {};

	fill_event(&e, kind, c);
	by_current(&e);
	deliver(&e);
}

/*
 * Register a socket, or update it, under the name it was first registered
 * with: the snapshot (a synthetic cookie) and a live hook (the real one) can
 * both find the socket unregistered at once, and two names for one socket
 * would make it two holders in userspace, one of which its release never
 * removes. The first insertion wins; the other adopts its cookie, so every
 * record about one registry entry carries one identity. Unregistered, its
 * release would go unseen: a loss, which a rescan repairs.
 */
static __always_inline void register_client(__u64 key, struct client_socket *c)
{
	struct client_socket *known;

	if (!bpf_map_update_elem(&clients, &key, c, BPF_NOEXIST))
		return;
	known = bpf_map_lookup_elem(&clients, &key);
	if (known)
		c->cookie = known->cookie;
	if (!known || bpf_map_update_elem(&clients, &key, c, BPF_EXIST))
		__sync_fetch_and_add(&lost_events, 1);
}

/*
 * The one way a live hook reports a port: the registry, which names the
 * socket, then the record. The hook runs inside a system call that holds
 * the socket, so its release (which the registry entry makes seen) cannot
 * run before the record is in every ring.
 */
static __always_inline void report_bound(__u64 key, struct client_socket *c)
{
	c->state |= CLIENT_REPORTED;
	register_client(key, c);
	emit(TEREDO_EVENT_BOUND, c); /* after: the name the registry keeps */
}

/*
 * Tests only (0 otherwise, and then the verifier drops the code): a bind to
 * this port waits here, its port assigned and not yet registered, for up to
 * test_hold_bind_ms, so that a test can run a snapshot inside the window.
 */
const volatile __u16 test_hold_bind_port = 0;
const volatile __u32 test_hold_bind_ms = 0;

static long keep_holding(__u64 index, void *deadline)
{
	(void)index;
	return bpf_ktime_get_ns() >= *(__u64 *)deadline;
}

static __always_inline void hold_bind_for_test(__u16 port)
{
	__u64 deadline;

	if (!test_hold_bind_port || port != test_hold_bind_port)
		return;
	deadline = bpf_ktime_get_ns() + (__u64)test_hold_bind_ms * 1000000;
	for (int i = 0; i < 64 && bpf_ktime_get_ns() < deadline; i++)
		bpf_loop(1 << 20, keep_holding, &deadline, 0);
}

static __always_inline int on_post_bind(struct bpf_sock *ctx)
{
	struct client_socket c = {};

	/* With traffic matching, the first send to a Teredo server reports it. */
	if (match_traffic || !is_udp(ctx->type, ctx->protocol) ||
	    !port_can_be_teredo(ctx->src_port))
		return 1;
	if (!current_is_client())
		return 1;
	hold_bind_for_test(ctx->src_port);
	c.netns = current_netns();
	if (!netns_in_scope(c.netns))
		return 1;
	c.cookie = bpf_get_socket_cookie(ctx);
	c.port = ctx->src_port;
	c.family = ctx->family;
	report_bound(socket_key(ctx), &c);
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
	__u64 key = socket_key(ctx);
	struct autobind_watch *w;
	struct client_socket *c;

	if (!is_udp(ctx->type, ctx->protocol))
		return 1;
	c = bpf_map_lookup_elem(&clients, &key);
	if (!c)
		return 1;
	/*
	 * A connect() watch on this socket is flagged before our record is
	 * reserved: its timer, if it reserves a record after ours, sees the
	 * flag and discards it, so no port is reported after its release.
	 */
	w = bpf_map_lookup_elem(&autobind_watches, &c->cookie);
	if (w)
		__sync_fetch_and_add(&w->released, 1); /* atomic, and ordered before the emit */
	emit(TEREDO_EVENT_RELEASED, c);
	bpf_map_delete_elem(&clients, &key);
	return 1;
}

/*
 * Runs for every UDP send that names its destination, in the cgroups it is
 * attached to, and for every packet the Teredo client relays. So the
 * cheapest tests come first: the process's name (an unrelated sender stops
 * there), then the registry: a socket already judged and reported on this
 * port costs the client one lookup, not the credential and cgroup walk.
 * The kernel has autobound the socket by now.
 */
static __always_inline int on_sendmsg(struct bpf_sock_addr *ctx)
{
	struct bpf_sock *sk = ctx->sk;
	struct client_socket *known, c = {};
	__u64 key;

	if (!sk || !is_udp(ctx->type, ctx->protocol))
		return 1;
	if (match_traffic && !to_teredo_server(ctx->user_port))
		return 1;
	if (!port_can_be_teredo(sk->src_port) || !current_name_listed())
		return 1;
	key = socket_key(sk);
	known = bpf_map_lookup_elem(&clients, &key);
	/* A disconnected autobound socket can come back on a new port: judged again. */
	if (known && (known->state & CLIENT_REPORTED) && known->port == sk->src_port)
		return 1;
	if (!task_qualifies((struct task_struct *)bpf_get_current_task()))
		return 1;
	c.netns = current_netns();
	if (!netns_in_scope(c.netns))
		return 1;
	c.cookie = known ? known->cookie : bpf_get_socket_cookie(ctx);
	c.port = sk->src_port;
	c.family = sk->family;
	c.state = (known ? known->state : 0) | (match_traffic ? CLIENT_TRAFFIC : 0);
	report_bound(key, &c);
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

#define AUTOBIND_FIRST_LOOK_NS 10000 /* connect() assigns the port within microseconds */
#define AUTOBIND_MAX_LOOKS 10	     /* doubling each time: about 10 ms in all */

/*
 * sock_release runs before the kernel clears the port, so the port a timer
 * read can be a closing socket's. In each ring the ring's lock orders the
 * two records: one reserved after the release's sees its flag, and is
 * discarded. Whether any ring took the record.
 */
static __always_inline bool report_unless_released(struct autobind_watch *w,
						   const struct client_socket *c)
{
	bool reported = false;

	for (__u32 i = 0; i < TEREDO_MAX_CONSUMERS; i++) {
		__u32 slot = i;
		void *ring = bpf_map_lookup_elem(&rings, &slot);
		struct teredo_event *e;

		if (!ring)
			continue;
		e = bpf_ringbuf_reserve(ring, sizeof(*e), 0);
		if (!e) {
			__sync_fetch_and_add(&ring_lost[i], 1);
			continue;
		}
		if (*(volatile __u32 *)&w->released) {
			bpf_ringbuf_discard(e, 0);
			break;
		}
		fill_event(e, TEREDO_EVENT_BOUND, c);
		/* A timer runs in softirq: the process is the one that called connect(). */
		e->pid = w->pid;
		__builtin_memcpy(e->comm, w->comm, sizeof(e->comm));
		bpf_ringbuf_submit(e, 0);
		reported = true;
	}
	return reported;
}

static int look_for_autobind(void *map, __u64 *cookie, struct autobind_watch *w)
{
	struct sock *sk = (struct sock *)w->sk;
	struct client_socket *c;
	__u16 port;

	/* Read through a plain pointer: a socket freed meanwhile fails this check. */
	if (BPF_CORE_READ(sk, __sk_common.skc_cookie.counter) != w->cookie)
		goto done;
	port = BPF_CORE_READ(sk, __sk_common.skc_num);
	if (!port) {
		if (++w->tries < AUTOBIND_MAX_LOOKS) {
			bpf_timer_start(&w->timer, AUTOBIND_FIRST_LOOK_NS << w->tries, 0);
			return 0;
		}
		goto done; /* the connect() failed, or the socket went elsewhere */
	}
	c = bpf_map_lookup_elem(&clients, &w->sk);
	if (!c || !port_can_be_teredo(port))
		goto done;
	c->port = port;
	c->family = BPF_CORE_READ(sk, __sk_common.skc_family);
	if (report_unless_released(w, c))
		c->state |= CLIENT_REPORTED;
done:
	bpf_map_delete_elem(map, cookie);
	return 0;
}

static __always_inline void watch_autobind(struct bpf_sock *sk, __u64 cookie, __u32 netns)
{
	struct autobind_watch fresh = { .sk = socket_key(sk), .cookie = cookie, .netns = netns };
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
 * A Teredo client's socket connecting to a Teredo server (port 3544): if it
 * has a port, that is reported now; if connect() is about to autobind it,
 * it is registered (so that its release is seen) and watched.
 */
static __always_inline int on_connect(struct bpf_sock_addr *ctx)
{
	struct bpf_sock *sk = ctx->sk;
	struct client_socket *known, c = {};
	__u64 key;

	if (!sk || !is_udp(ctx->type, ctx->protocol))
		return 1;
	/* Connected elsewhere, even a client's socket is not its Teredo socket. */
	if (!to_teredo_server(ctx->user_port) || !current_is_client())
		return 1;
	c.netns = current_netns();
	if (!netns_in_scope(c.netns))
		return 1;
	key = socket_key(sk);
	known = bpf_map_lookup_elem(&clients, &key);
	if (known)
		c = *known;
	else
		c.cookie = bpf_get_socket_cookie(ctx);
	c.state |= CLIENT_TRAFFIC;
	c.family = sk->family;
	if (sk->src_port) {
		if (!(c.state & CLIENT_REPORTED) || c.port != sk->src_port) {
			c.port = sk->src_port;
			report_bound(key, &c);
		}
		return 1;
	}
	register_client(key, &c);
	watch_autobind(sk, c.cookie, c.netns);
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

/*
 * With a cgroup path the live hooks run only for sockets made in that
 * cgroup (the kernel runs a socket's programs by the cgroup it was made in,
 * and ours are attached there): a socket made elsewhere and passed in
 * (SCM_RIGHTS) would have a bind they never see and a close they never see.
 * The snapshot leaves it out too, so that no port outlives its socket. The
 * task's cgroup matched the path already: the socket's must be that very
 * cgroup or below it, which a pointer comparison at the path's depth tells.
 */
static __always_inline bool made_in_task_cgroup(struct sock *sk, struct task_struct *task)
{
	struct cgroup *mine;

	if (!cgroup_levels)
		return true;
	mine = at_path_depth(BPF_CORE_READ(sk, sk_cgrp_data.cgroup));
	return mine && mine == at_path_depth(BPF_CORE_READ(task, cgroups, dfl_cgrp));
}

/*
 * A socket the client opened before we were watching has never been given a
 * cookie if nothing asked for one, and here none can be made (the socket is
 * untrusted in an iterator). A synthetic one, with the top bit set where a
 * real cookie (a counter from 1) never reaches, names it until it goes.
 */
static __always_inline __u64 snapshot_cookie(struct sock *sk)
{
	__u64 cookie = sk->__sk_common.skc_cookie.counter;

	return cookie ? cookie : (1ULL << 63) | __sync_fetch_and_add(&synthetic_cookies, 1);
}

/*
 * The snapshot: every UDP socket of a Teredo client open right now, written
 * to the iterator's output (userspace reads it with read()), and registered
 * so that its release is seen. Run at start and after any loss.
 */
SEC("iter/task_file")
int teredo_scan(struct bpf_iter__task_file *ctx)
{
	struct task_struct *task = ctx->task;
	struct client_socket *known, c = {};
	struct file *file = ctx->file;
	struct teredo_event e = {};
	struct socket *sock;
	struct sock *sk;
	__be16 dport;
	__u64 key;

	if (!task || !file)
		return 0;
	sock = bpf_sock_from_file(file);
	if (!sock)
		return 0;
	sk = sock->sk;
	if (!sk || !is_udp(sk->sk_type, sk->sk_protocol))
		return 0;
	c.port = sk->__sk_common.skc_num;
	c.family = sk->__sk_common.skc_family;
	c.netns = sk->__sk_common.skc_net.net->ns.inum;
	if (!port_can_be_teredo(c.port) || (c.family != AF_INET && c.family != AF_INET6) ||
	    !netns_in_scope(c.netns))
		return 0;
	key = socket_key(sk);
	/* Registered already: the client's, whichever process holds it now. */
	known = bpf_map_lookup_elem(&clients, &key);
	if (known) {
		c.cookie = known->cookie;
		c.state = known->state;
	} else {
		dport = sk->__sk_common.skc_dport;
		if (talks_to_one_peer(dport) || (match_traffic && !dport) ||
		    !task_is_client(task) || !made_in_task_cgroup(sk, task))
			return 0;
		c.cookie = snapshot_cookie(sk);
		c.state = match_traffic ? CLIENT_TRAFFIC : 0;
	}
	if (match_traffic && !(c.state & CLIENT_TRAFFIC))
		return 0;
	c.state |= CLIENT_REPORTED;
	register_client(key, &c);
	fill_event(&e, TEREDO_EVENT_BOUND, &c);
	e.pid = task->tgid;
	BPF_CORE_READ_INTO(&e.comm, task, comm);
	bpf_seq_write(ctx->meta->seq, &e, sizeof(e));
	return 0;
}
