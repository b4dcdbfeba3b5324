// SPDX-License-Identifier: MIT
/*
 * The kernel event source: opens, configures, loads and attaches the BPF
 * programs, and reads what they report through the ring buffer (live) and
 * the task_file iterator (snapshot).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "cgroup2.h"
#include "cgroup_follow.h"
#include "event_source.h"
#include "last_error.h"
#include "libbpf_print.h"
#include "requirements.h"
#include "selection.h"
#include "shared_set.h"
#include "teredo_observer.bpf.skel.h"

/* The cgroup programs, attached at one cgroup. */
struct attachment {
	struct bpf_link *links[16];
	size_t n_links;
	int cgroup_fd; /* where: kept to compare, and to tell once it is removed */
};

struct kernel_source {
	struct event_source base;
	struct teredo_observer_bpf *skel;
	struct ring_buffer *ring;
	int ring_fd;		 /* this consumer's own ring buffer map */
	struct shared_slot slot; /* where it is in the set's rings, and who claimed it */
	bool slot_claimed, in_slot;
	struct shared_set shared; /* joined: the links of the set another consumer attached */
	struct attachment hooks;
	struct bpf_link *scan_link;
	/* With a cgroup path: where the hooks go as it comes and goes; else the root for good. */
	struct cgroup_follow *follow;
	int epoll_fd;			/* with follow: the ring and follow's fd, as one */
	unsigned int drains_unfollowed; /* drains with records since the path was last read */
	bool rescan; /* the hooks left a removed cgroup late: a bind may have gone unseen */
	bool move_failed;
	uint64_t lost_seen;
	event_sink sink;
	void *sink_ctx;
	bool verbose; /* libbpf's messages about this source to stderr (libbpf_print.h) */
};

static int own_netns(uint32_t *ino)
{
	struct stat st;

	if (stat("/proc/self/ns/net", &st))
		return set_last_error(-errno, "cannot read /proc/self/ns/net: %s", strerror(errno));
	*ino = st.st_ino;
	return 0;
}

/*
 * For the race tests only: TEREDO_OBSERVER_TEST_HOLD_BIND=PORT:MS makes a
 * client's bind() to PORT wait up to MS ms (at most 2000) in the kernel,
 * its port assigned and not yet registered (see hold_bind_for_test). Not
 * honoured in a set-user-ID program; loading BPF needs root anyway.
 */
static void configure_test_hold(struct teredo_observer_bpf__rodata *cfg)
{
	const char *v = secure_getenv("TEREDO_OBSERVER_TEST_HOLD_BIND");
	unsigned int port, ms;

	if (!v || sscanf(v, "%u:%u", &port, &ms) != 2 || !port || port > 65535 || ms > 2000)
		return;
	cfg->test_hold_bind_port = (__u16)port;
	cfg->test_hold_bind_ms = ms;
}

/* FNV-1a of the object's ELF bytes: the build, as the .rodata carries it. */
static uint64_t build_hash(void)
{
	size_t len = 0;
	const unsigned char *elf = teredo_observer_bpf__elf_bytes(&len);
	uint64_t h = 0xcbf29ce484222325ULL;

	for (size_t i = 0; i < len; i++)
		h = (h ^ elf[i]) * 0x100000001b3ULL;
	return h;
}

/* The selection's part is selection.c's; the test hook and the build are the loader's own. */
static int configure(struct teredo_observer_bpf *skel, const struct teredo_selection *sel)
{
	uint32_t netns = 0;
	int err = own_netns(&netns);

	if (err)
		return err;
	configure_test_hold(skel->rodata);
	skel->rodata->build_hash = build_hash();
	return selection_configure_bpf(sel, skel, netns);
}

static int keep_link(struct attachment *at, struct bpf_link *link, const char *what)
{
	if (!link) {
		int err = -errno;

		return set_last_error(err, "cannot attach %s: %s", what, strerror(-err));
	}
	if (at->n_links == sizeof(at->links) / sizeof(at->links[0])) {
		bpf_link__destroy(link);
		return set_last_error(-E2BIG, "more BPF programs than links to hold them");
	}
	at->links[at->n_links++] = link;
	return 0;
}

static void detach(struct attachment *at)
{
	for (size_t i = 0; i < at->n_links; i++)
		bpf_link__destroy(at->links[i]);
	at->n_links = 0;
	if (at->cgroup_fd >= 0)
		close(at->cgroup_fd);
	at->cgroup_fd = -1;
}

static bool is_cgroup_hook(struct bpf_program *prog)
{
	return bpf_program__type(prog) == BPF_PROG_TYPE_CGROUP_SOCK ||
	       bpf_program__type(prog) == BPF_PROG_TYPE_CGROUP_SOCK_ADDR;
}

/*
 * The hooks where ports come and go, at one cgroup (which takes cgroup_fd):
 * they run for every process in it and below. Links, so that attaching a
 * second set elsewhere adds to the first (BPF_F_ALLOW_MULTI's semantics).
 */
static int attach_hooks(struct teredo_observer_bpf *skel, int cgroup_fd, struct attachment *at)
{
	struct bpf_program *prog;
	int err = 0;

	*at = (struct attachment){ .cgroup_fd = cgroup_fd };
	bpf_object__for_each_program(prog, skel->obj)
	{
		if (!bpf_program__autoload(prog) || prog == skel->progs.teredo_scan)
			continue;
		if (is_cgroup_hook(prog))
			err = keep_link(at, bpf_program__attach_cgroup(prog, cgroup_fd),
					bpf_program__name(prog));
		else
			err = keep_link(at, bpf_program__attach(prog), bpf_program__name(prog));
		if (err)
			break;
	}
	if (err)
		detach(at); /* closes cgroup_fd: it is the attachment's either way */
	return err;
}

static bool same_cgroup(int a, int b)
{
	struct stat sa, sb;

	return !fstat(a, &sa) && !fstat(b, &sb) && sa.st_ino == sb.st_ino && sa.st_dev == sb.st_dev;
}

/* A removed cgroup's directory holds nothing, not even cgroup.procs (which the root has too). */
static bool cgroup_removed(int fd)
{
	int procs = openat(fd, "cgroup.procs", O_RDONLY | O_CLOEXEC);

	if (procs >= 0)
		close(procs);
	return procs < 0 && errno == ENOENT;
}

/*
 * Attach at the new place before detaching from the old, so that no bind
 * runs between the two without our programs: while both hold, a process
 * under both runs each program twice, which reports the same socket twice
 * (the state machine takes the second as nothing new) and releases it once.
 * Leaving a removed cgroup means its successor may have been made and used
 * while the programs were still there: a snapshot finds what it holds.
 */
static int move_hooks(struct kernel_source *ks, int cgroup_fd)
{
	struct attachment moved;
	int err;

	if (same_cgroup(cgroup_fd, ks->hooks.cgroup_fd)) {
		close(cgroup_fd);
		return 0;
	}
	err = attach_hooks(ks->skel, cgroup_fd, &moved);
	if (err)
		return err; /* still where they were: better than nowhere */
	if (cgroup_removed(ks->hooks.cgroup_fd))
		ks->rescan = true;
	detach(&ks->hooks);
	ks->hooks = moved;
	return 0;
}

/* Where the hooks go first: the root, or the path's place now. */
static int first_place(struct kernel_source *ks, int *cgroup_fd)
{
	if (!ks->follow) {
		*cgroup_fd = cgroup2_root_fd();
		return *cgroup_fd < 0 ? *cgroup_fd : 0;
	}
	return cgroup_follow_place(ks->follow, cgroup_fd);
}

static int attach_first(struct kernel_source *ks)
{
	int cgroup_fd, err;

	err = first_place(ks, &cgroup_fd);
	return err ? err : attach_hooks(ks->skel, cgroup_fd, &ks->hooks);
}

/* What the path's inotify fd says: the hooks follow it (a failure is tried again next time). */
static int follow_cgroup(struct kernel_source *ks)
{
	int cgroup_fd, err;

	if (!ks->follow || (!cgroup_follow_changed(ks->follow) && !ks->move_failed))
		return 0;
	err = cgroup_follow_place(ks->follow, &cgroup_fd);
	if (!err)
		err = move_hooks(ks, cgroup_fd);
	ks->move_failed = err != 0;
	return err;
}

static int attach_scan(struct kernel_source *ks)
{
	ks->scan_link = bpf_program__attach_iter(ks->skel->progs.teredo_scan, NULL);
	if (!ks->scan_link)
		return set_last_error(-errno, "cannot attach the socket iterator: %s",
				      strerror(errno));
	return 0;
}

/* For one look at the state: the iterator alone, nothing on the machine's hooks. */
static void load_only_the_scan(struct teredo_observer_bpf *skel)
{
	struct bpf_program *prog;

	bpf_object__for_each_program(prog, skel->obj)
		bpf_program__set_autoload(prog, prog == skel->progs.teredo_scan);
}

/*
 * The slot given back: no record goes to this ring any more. Only by the
 * process that claimed it: a child freeing the observer it inherited
 * (teredo_observer(3): free it there) would take the parent's ring out of
 * the set's and give its slot to the next comer, the parent still reading.
 */
static void leave_slot(struct kernel_source *ks)
{
	if (ks->in_slot && shared_slot_is_mine(&ks->slot))
		bpf_map_delete_elem(bpf_map__fd(ks->skel->maps.rings), &ks->slot.index);
	if (ks->slot_claimed)
		shared_free_slot(ks->skel->bss, &ks->slot); /* in a child: its copy closed */
	ks->in_slot = ks->slot_claimed = false;
	if (ks->ring_fd >= 0)
		close(ks->ring_fd);
	ks->ring_fd = -1;
}

static uint64_t lost_count(const struct kernel_source *ks);

static int on_ring_record(void *ctx, void *data, size_t size)
{
	struct kernel_source *ks = ctx;

	if (size < sizeof(struct teredo_event))
		return 0;
	return ks->sink(ks->sink_ctx, data);
}

static int kernel_fd(const struct event_source *src)
{
	const struct kernel_source *ks = (const struct kernel_source *)src;

	/*
	 * The ring buffer map itself polls: no epoll of libbpf's nested in ours;
	 * following a cgroup, one epoll set of it and the path's inotify fd,
	 * which the observer takes as its own (shared_epoll).
	 */
	return ks->follow ? ks->epoll_fd : ks->ring_fd;
}

/*
 * Following a cgroup, the path's inotify fd is read by a drain that found
 * the ring empty (woken by the path alone), not by one that carries a record
 * to its callback: that read is a system call on every port's way, and
 * almost never finds anything. Nothing is missed: epoll is level-triggered,
 * so an event left unread wakes the next wait at once, and the hooks move a
 * wake-up later (their old place, an ancestor, still sees every bind; after
 * a removed cgroup, the rescan finds what a late move missed). Every
 * FOLLOW_AT_LEAST_EVERY-th drain reads it whatever the ring held, so that a
 * stream of records cannot keep the hooks from following.
 */
#define FOLLOW_AT_LEAST_EVERY 16

static bool follow_now(struct kernel_source *ks, int records)
{
	if (records && ++ks->drains_unfollowed < FOLLOW_AT_LEAST_EVERY)
		return false;
	ks->drains_unfollowed = 0;
	return true;
}

static int kernel_drain(struct event_source *src, event_sink sink, void *ctx)
{
	struct kernel_source *ks = (struct kernel_source *)src;
	int n, err = 0;

	if (!ks->ring)
		return 0; /* a snapshot-only source has no live records */
	ks->sink = sink;
	ks->sink_ctx = ctx;
	/* Attaching elsewhere is libbpf's work too: what it says is ours (libbpf_print.h). */
	libbpf_print_enter(ks->verbose);
	n = ring_buffer__consume(ks->ring);
	if (n >= 0 && ks->follow && follow_now(ks, n))
		err = follow_cgroup(ks);
	libbpf_print_leave();
	if (n < 0)
		return set_last_error(n, "reading the ring buffer: %s", strerror(-n));
	return err ? err : n;
}

static bool kernel_lost_records(struct event_source *src)
{
	struct kernel_source *ks = (struct kernel_source *)src;
	uint64_t lost = lost_count(ks);

	if (ks->rescan) {
		ks->rescan = false;
		ks->lost_seen = lost;
		return true;
	}
	if (lost == ks->lost_seen)
		return false;
	ks->lost_seen = lost;
	return true;
}

static int kernel_snapshot(struct event_source *src, event_sink sink, void *ctx)
{
	struct kernel_source *ks = (struct kernel_source *)src;
	struct teredo_event ev;
	int fd, err = 0;
	ssize_t n;

	fd = bpf_iter_create(bpf_link__fd(ks->scan_link));
	if (fd < 0)
		return set_last_error(-errno, "cannot start the socket iterator: %s",
				      strerror(errno));
	while ((n = read(fd, &ev, sizeof(ev))) == sizeof(ev)) {
		err = sink(ctx, &ev);
		if (err < 0)
			break;
	}
	if (n < 0 && !err)
		err = set_last_error(-errno, "reading the socket iterator: %s", strerror(errno));
	close(fd);
	return err;
}

static void kernel_destroy(struct event_source *src)
{
	struct kernel_source *ks = (struct kernel_source *)src;

	if (!ks)
		return;
	libbpf_print_enter(ks->verbose);
	ring_buffer__free(ks->ring);
	leave_slot(ks);
	bpf_link__destroy(ks->scan_link);
	detach(&ks->hooks);
	shared_set_release(&ks->shared);
	teredo_observer_bpf__destroy(ks->skel);
	cgroup_follow_free(ks->follow);
	if (ks->epoll_fd >= 0)
		close(ks->epoll_fd);
	libbpf_print_leave();
	free(ks);
}

static const struct event_source_ops kernel_ops = {
	.fd = kernel_fd,
	.drain = kernel_drain,
	.lost_records = kernel_lost_records,
	.snapshot = kernel_snapshot,
	.destroy = kernel_destroy,
};

/*
 * The capabilities were checked before loading, so EPERM here is a policy
 * (lockdown, an LSM, a token) and EACCES is the verifier saying no.
 */
static int load_failed(int err)
{
	if (err == -EPERM)
		return set_last_error(-EPERM,
				      "the kernel refused to load the BPF programs (%s): "
				      "needs CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN: "
				      "run as root",
				      strerror(-err));
	return set_last_error(-EOPNOTSUPP,
			      "the kernel refused the BPF programs (%s): run with --verbose "
			      "(TEREDO_OBSERVER_VERBOSE=1) for the verifier's log",
			      strerror(-err));
}

/*
 * This consumer's own ring buffer, in its slot of the set's rings: from
 * now on every record reaches it (the snapshot, taken after, covers what
 * came before).
 */
static int open_ring(struct kernel_source *ks, size_t bytes)
{
	int rings = bpf_map__fd(ks->skel->maps.rings);

	ks->ring_fd = bpf_map_create(BPF_MAP_TYPE_RINGBUF, "teredo_ring", 0, 0, bytes, NULL);
	if (ks->ring_fd < 0)
		return set_last_error(-errno, "cannot create a ring buffer of %zu bytes: %s", bytes,
				      strerror(errno));
	if (bpf_map_update_elem(rings, &ks->slot.index, &ks->ring_fd, BPF_ANY))
		return set_last_error(-errno, "cannot put the ring buffer in slot %u: %s",
				      ks->slot.index, strerror(errno));
	ks->in_slot = true;
	/* What the slot lost before is not ours; the snapshot, taken after, covers the rest. */
	ks->lost_seen = lost_count(ks);
	ks->ring = ring_buffer__new(ks->ring_fd, on_ring_record, ks, NULL);
	if (!ks->ring)
		return set_last_error(-errno, "cannot open the ring buffer: %s", strerror(errno));
	return 0;
}

/* One fd for the ring and the path's watches, which drain both reads. */
static int poll_both(struct kernel_source *ks)
{
	int fds[2] = { ks->ring_fd, cgroup_follow_fd(ks->follow) };
	struct epoll_event ev = { .events = EPOLLIN };

	ks->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (ks->epoll_fd < 0)
		return set_last_error(-errno, "cannot create an epoll set: %s", strerror(errno));
	for (int i = 0; i < 2; i++) {
		ev.data.fd = fds[i];
		if (epoll_ctl(ks->epoll_fd, EPOLL_CTL_ADD, fds[i], &ev))
			return set_last_error(-errno, "epoll_ctl: %s", strerror(errno));
	}
	return 0;
}

static int load(struct kernel_source *ks)
{
	int err = teredo_observer_bpf__load(ks->skel);

	return err ? load_failed(err) : 0;
}

static uint64_t lost_count(const struct kernel_source *ks)
{
	/* What every consumer lost (the registry's), and what this one's ring did. */
	return __atomic_load_n(&ks->skel->bss->lost_events, __ATOMIC_ACQUIRE) +
	       __atomic_load_n(&ks->skel->bss->ring_lost[ks->slot.index], __ATOMIC_ACQUIRE);
}

/* A slot of the set's rings for ours. */
static int take_slot(struct kernel_source *ks)
{
	int err = shared_claim_slot(ks->skel->bss, &ks->slot);

	if (err)
		return err;
	ks->slot_claimed = true;
	return 0;
}

/*
 * A copy of its own: every program loaded, its ring in the first slot of
 * its own rings, then the hooks at the root or where the cgroup path says.
 * At the root, later consumers with the same settings join it: the slot is
 * taken before the hooks can be found, since one that could not take the
 * join lock loads this without it, and a joiner must not take that slot.
 */
static int load_own_copy(struct kernel_source *ks, const struct teredo_selection *sel)
{
	int err = 0;

	if (selection_cgroup(sel))
		err = cgroup_follow_new(selection_cgroup(sel), &ks->follow);
	if (!err)
		err = load(ks);
	if (!err)
		err = take_slot(ks);
	if (!err)
		err = open_ring(ks, selection_ring_bytes(sel));
	if (!err)
		err = attach_first(ks);
	if (!err && ks->follow)
		err = poll_both(ks);
	/* The observer waits on that set itself, not on it nested in a set of its own. */
	ks->base.shared_epoll = ks->follow != NULL;
	return err;
}

/*
 * Another consumer's set with our very settings, at the root: its links
 * held, its maps ours, and of our programs only the iterator loaded (over
 * those maps, so that our snapshot registers what its hooks release).
 */
static int join_set(struct kernel_source *ks, const struct teredo_selection *sel)
{
	int root = cgroup2_root_fd(), err;

	if (root < 0)
		return root;
	err = shared_set_find(ks->skel, root, &ks->shared);
	close(root);
	if (err)
		return err;
	load_only_the_scan(ks->skel);
	err = load(ks);
	if (!err)
		err = take_slot(ks);
	if (!err)
		err = open_ring(ks, selection_ring_bytes(sel));
	return err;
}

static int open_skeleton(struct kernel_source *ks, const struct teredo_selection *sel)
{
	ks->skel = teredo_observer_bpf__open();
	if (!ks->skel)
		return set_last_error(-errno, "cannot open the BPF object: %s", strerror(errno));
	return configure(ks->skel, sel);
}

/* A join that failed once the skeleton took the set's maps: a skeleton of our own again. */
static int start_afresh(struct kernel_source *ks, const struct teredo_selection *sel)
{
	leave_slot(ks);
	shared_set_release(&ks->shared);
	teredo_observer_bpf__destroy(ks->skel);
	ks->skel = NULL;
	return open_skeleton(ks, sel);
}

static void own_copy_reason(int err, char *why, size_t len)
{
	if (err == -ENOSPC)
		snprintf(why, len, "all %d places beside the programs already attached are taken",
			 TEREDO_MAX_CONSUMERS);
	else
		snprintf(why, len, "cannot share one copy with the host's other consumers: %s",
			 teredo_observer_last_error());
}

/*
 * At the root, where every bind and send of the host runs the hooks, the
 * root consumers share one set (shared_set.h), found or made under the
 * host's lock so that two starting at once make one. Following a cgroup,
 * unrelated work runs nothing of ours: a follower keeps a copy of its own.
 * Where no set can be shared, a copy of one's own, said once.
 */
static int open_live(struct kernel_source *ks, const struct teredo_selection *sel)
{
	char why[400];
	int lock, err;

	if (selection_cgroup(sel))
		return load_own_copy(ks, sel);
	lock = shared_lock();
	if (lock < 0) {
		snprintf(why, sizeof(why), "%s", teredo_observer_last_error());
		err = load_own_copy(ks, sel);
		if (!err)
			say_own_copy(why);
		return err;
	}
	err = join_set(ks, sel);
	if (err == -ENOENT) {
		err = load_own_copy(ks, sel); /* the first: the next ones join it */
	} else if (err) {
		own_copy_reason(err, why, sizeof(why));
		err = start_afresh(ks, sel);
		if (!err)
			err = load_own_copy(ks, sel);
		if (!err)
			say_own_copy(why);
	}
	shared_unlock(lock);
	return err;
}

static int open_source(const struct teredo_selection *sel, bool live, struct event_source **out)
{
	struct kernel_source *ks;
	int err;

	*out = NULL;
	err = check_privileges();
	if (!err)
		err = check_kernel_features();
	if (err)
		return err;
	ks = calloc(1, sizeof(*ks));
	if (!ks)
		return set_last_error(-ENOMEM, "out of memory");
	ks->base.ops = &kernel_ops;
	ks->verbose = selection_verbose(sel);
	ks->hooks.cgroup_fd = ks->epoll_fd = ks->ring_fd = -1;
	err = open_skeleton(ks, sel);
	if (!err && live) {
		err = open_live(ks, sel);
	} else if (!err) {
		load_only_the_scan(ks->skel);
		err = load(ks);
	}
	if (!err)
		err = attach_scan(ks);
	if (err)
		goto cleanup;
	*out = &ks->base;
	return 0;
cleanup:
	kernel_destroy(&ks->base);
	return err;
}

/* What libbpf says while we open, load and attach is ours (libbpf_print.h). */
static int open_source_printing(const struct teredo_selection *sel, bool live,
				struct event_source **out)
{
	int err;

	libbpf_print_enter(selection_verbose(sel));
	err = open_source(sel, live, out);
	libbpf_print_leave();
	return err;
}

int kernel_source_open(const struct teredo_selection *sel, struct event_source **out)
{
	return open_source_printing(sel, true, out);
}

int kernel_snapshot_open(const struct teredo_selection *sel, struct event_source **out)
{
	return open_source_printing(sel, false, out);
}
