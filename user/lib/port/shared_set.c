// SPDX-License-Identifier: MIT
/*
 * Finding the set of programs another root consumer attached, by the
 * kernel's ids: link -> program (its name, attach type and maps) -> map.
 * Only root may turn an id into an fd, which is also who may share: a set
 * is one process's selection made into programs, and another process joins
 * it only when its own selection and build give the very same .rodata.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "cgroup2.h"
#include "last_error.h"
#include "shared_set.h"

#define MAX_CANDIDATES 256 /* our programs' links at the cgroup: 7 per set */
#define MAX_PROG_MAPS 8

/* A program of ours that a set attaches at the cgroup: one link each. */
struct hook {
	char name[BPF_OBJ_NAME_LEN]; /* as the kernel keeps it: 15 bytes at most */
	enum bpf_attach_type type;
};

struct hooks {
	struct hook h[SHARED_MAX_LINKS];
	size_t n;
};

/* A link at the cgroup to one of our hooks, and the set it belongs to. */
struct candidate {
	uint32_t link_id;
	size_t hook;
	uint32_t clients_id; /* the set's registry: one per set, so it names the set */
	uint32_t rodata_id;  /* 0: the program reads no setting */
	uint32_t map_ids[MAX_PROG_MAPS];
	uint32_t n_maps;
};

/*
 * How long a consumer waits for the join lock while one holder keeps it. A
 * holder finds or loads one set (0.1-0.2 s on the host, about 0.5 s under
 * QEMU/TCG), so many consumers starting at once wait their turns, each turn
 * a new holder: the wait starts again with each. One holder stopped with
 * it held (SIGSTOP, a debugger) or hung must not keep every other consumer
 * from starting: after this, a copy of one's own.
 */
#define LOCK_WAIT_MS 5000
#define LOCK_POLL_MS 5

/*
 * Only a lock file that root alone could have made or changed is trusted:
 * one made first by a process that is not root's uid (CAP_DAC_OVERRIDE
 * is enough to write /run), or left writable by others, would let its
 * owner hold every consumer's join.
 */
static int trusted_lock_file(int fd)
{
	struct stat st;
	int err;

	if (fstat(fd, &st)) {
		err = -errno;
		close(fd);
		return set_last_error(err, "cannot stat %s: %s", SHARED_LOCK_PATH, strerror(-err));
	}
	if (S_ISREG(st.st_mode) && st.st_uid == 0 && !(st.st_mode & (S_IWGRP | S_IWOTH)))
		return fd;
	close(fd);
	return set_last_error(-EPERM,
			      "%s is not root's alone (%s of uid %u, mode %04o; it must be a "
			      "regular file of uid 0 that no group or other may write): remove "
			      "it, and root makes it again",
			      SHARED_LOCK_PATH, S_ISREG(st.st_mode) ? "a file" : "no regular file",
			      (unsigned int)st.st_uid, (unsigned int)(st.st_mode & 07777));
}

/*
 * The lock file, made if need be, never through a link. Where /run is
 * read-only (a unit's ProtectSystem=strict), one made before is locked
 * through a read-only fd, which flock() takes as well (O_NONBLOCK: were
 * it a FIFO, that open would wait for a writer).
 */
static int open_lock_file(void)
{
	int flags = O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC;
	int fd = open(SHARED_LOCK_PATH, O_RDWR | O_CREAT | flags, 0600);
	int err = -errno;

	if (fd < 0 && err == -EROFS) {
		fd = open(SHARED_LOCK_PATH, O_RDONLY | flags);
		err = -errno;
	}
	if (fd < 0 && err == -ELOOP)
		return set_last_error(err,
				      "%s is a symbolic link: remove it, and root makes it again",
				      SHARED_LOCK_PATH);
	if (fd < 0)
		return set_last_error(err, "cannot open %s: %s", SHARED_LOCK_PATH, strerror(-err));
	return trusted_lock_file(fd);
}

static int64_t monotonic_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/*
 * Who holds the flock on fd's file now, as /proc/locks says (in our pid
 * namespace); 0 when it does not say (no /proc, a holder we cannot see).
 */
static pid_t lock_holder(int fd)
{
	unsigned int major_, minor_;
	unsigned long ino;
	char line[256], kind[16];
	struct stat st;
	pid_t pid = 0;
	FILE *f;
	int id, holder;

	if (fstat(fd, &st) || !(f = fopen("/proc/locks", "re")))
		return 0;
	while (!pid && fgets(line, sizeof(line), f))
		if (sscanf(line, "%d: %15s %*s %*s %d %x:%x:%lu", &id, kind, &holder, &major_,
			   &minor_, &ino) == 6 &&
		    !strcmp(kind, "FLOCK") && ino == st.st_ino && major_ == major(st.st_dev) &&
		    minor_ == minor(st.st_dev))
			pid = holder;
	fclose(f);
	return pid;
}

int shared_lock(void)
{
	const struct timespec poll = { .tv_nsec = LOCK_POLL_MS * 1000000L };
	int fd = open_lock_file(), err;
	int64_t deadline = monotonic_ms() + LOCK_WAIT_MS;
	pid_t holder = 0, now;

	if (fd < 0)
		return fd;
	while (flock(fd, LOCK_EX | LOCK_NB)) {
		err = -errno;
		if (err == -EINTR)
			continue;
		if (err == -EWOULDBLOCK && (now = lock_holder(fd)) != holder) {
			holder = now; /* another's turn: the queue moves */
			deadline = monotonic_ms() + LOCK_WAIT_MS;
		}
		if (err == -EWOULDBLOCK && monotonic_ms() < deadline) {
			nanosleep(&poll, NULL);
			continue;
		}
		close(fd);
		if (err == -EWOULDBLOCK)
			return set_last_error(
				-ETIMEDOUT,
				"%s held by process %d for %d s (stopped or hung?): not "
				"waiting longer",
				SHARED_LOCK_PATH, (int)holder, LOCK_WAIT_MS / 1000);
		return set_last_error(err, "cannot lock %s: %s", SHARED_LOCK_PATH, strerror(-err));
	}
	return fd;
}

void shared_unlock(int fd)
{
	if (fd >= 0)
		close(fd); /* the lock goes with the last fd of its open file */
}

static void kernel_name(char dst[BPF_OBJ_NAME_LEN], const char *name)
{
	snprintf(dst, BPF_OBJ_NAME_LEN, "%s", name);
}

static bool is_cgroup_hook(const struct bpf_program *prog)
{
	return bpf_program__type(prog) == BPF_PROG_TYPE_CGROUP_SOCK ||
	       bpf_program__type(prog) == BPF_PROG_TYPE_CGROUP_SOCK_ADDR;
}

static void expected_hooks(struct teredo_observer_bpf *skel, struct hooks *hooks)
{
	struct bpf_program *prog;

	hooks->n = 0;
	bpf_object__for_each_program(prog, skel->obj)
	{
		if (!is_cgroup_hook(prog) || hooks->n == SHARED_MAX_LINKS)
			continue;
		kernel_name(hooks->h[hooks->n].name, bpf_program__name(prog));
		hooks->h[hooks->n++].type = bpf_program__expected_attach_type(prog);
	}
}

static int map_info(uint32_t id, struct bpf_map_info *info)
{
	uint32_t len = sizeof(*info);
	int fd = bpf_map_get_fd_by_id(id), err;

	if (fd < 0)
		return -errno;
	memset(info, 0, sizeof(*info));
	err = bpf_obj_get_info_by_fd(fd, info, &len) ? -errno : 0;
	close(fd);
	return err;
}

static bool names_map(const struct bpf_map_info *info, const struct bpf_map *map)
{
	char name[BPF_OBJ_NAME_LEN];

	kernel_name(name, bpf_map__name(map));
	return !strcmp(info->name, name) && info->type == bpf_map__type(map) &&
	       info->key_size == bpf_map__key_size(map) &&
	       info->value_size == bpf_map__value_size(map);
}

/* Which of the program's maps are the set's registry and its settings. */
static void name_the_set(struct teredo_observer_bpf *skel, struct candidate *c)
{
	struct bpf_map_info info;

	for (uint32_t i = 0; i < c->n_maps; i++) {
		if (map_info(c->map_ids[i], &info))
			continue;
		if (names_map(&info, skel->maps.clients))
			c->clients_id = c->map_ids[i];
		else if (names_map(&info, skel->maps.rodata))
			c->rodata_id = c->map_ids[i];
	}
}

static bool find_hook(const struct hooks *hooks, const char *name, uint32_t type, size_t *k)
{
	for (size_t i = 0; i < hooks->n; i++) {
		if (hooks->h[i].type == type && !strcmp(hooks->h[i].name, name)) {
			*k = i;
			return true;
		}
	}
	return false;
}

/* The program behind a link at the cgroup: one of our hooks, with its maps? */
static bool read_program(struct teredo_observer_bpf *skel, const struct hooks *hooks,
			 uint32_t prog_id, uint32_t type, struct candidate *c)
{
	struct bpf_prog_info info = {};
	uint32_t len = sizeof(info);
	int fd = bpf_prog_get_fd_by_id(prog_id);
	bool ours;

	if (fd < 0)
		return false;
	info.nr_map_ids = MAX_PROG_MAPS;
	info.map_ids = (uint64_t)(uintptr_t)c->map_ids;
	ours = !bpf_obj_get_info_by_fd(fd, &info, &len) && info.nr_map_ids <= MAX_PROG_MAPS &&
	       find_hook(hooks, info.name, type, &c->hook);
	close(fd);
	if (!ours)
		return false;
	c->n_maps = info.nr_map_ids;
	name_the_set(skel, c);
	return c->clients_id != 0;
}

static bool read_candidate(struct teredo_observer_bpf *skel, const struct hooks *hooks,
			   uint64_t cgroup, uint32_t link_id, struct candidate *c)
{
	struct bpf_link_info info = {};
	uint32_t len = sizeof(info);
	int fd = bpf_link_get_fd_by_id(link_id);
	bool at_cgroup;

	if (fd < 0)
		return false; /* gone meanwhile */
	at_cgroup = !bpf_obj_get_info_by_fd(fd, &info, &len) && info.type == BPF_LINK_TYPE_CGROUP &&
		    info.cgroup.cgroup_id == cgroup;
	close(fd);
	*c = (struct candidate){ .link_id = link_id };
	return at_cgroup && read_program(skel, hooks, info.prog_id, info.cgroup.attach_type, c);
}

/*
 * Our links at the cgroup, into cands. Listing the kernel's links takes
 * CAP_SYS_ADMIN: without it a consumer cannot tell whether a set exists,
 * and must not take itself for the first.
 */
static int scan_links(struct teredo_observer_bpf *skel, const struct hooks *hooks, uint64_t cgroup,
		      struct candidate *cands, size_t *n)
{
	uint32_t id = 0;

	*n = 0;
	while (*n < MAX_CANDIDATES) {
		if (bpf_link_get_next_id(id, &id)) {
			if (errno == ENOENT)
				return 0; /* the last one */
			return set_last_error(-errno,
					      "cannot list the kernel's BPF links (%s): sharing "
					      "needs CAP_SYS_ADMIN",
					      strerror(errno));
		}
		if (read_candidate(skel, hooks, cgroup, id, &cands[*n]))
			(*n)++;
	}
	return 0;
}

/* The set's settings, read from its .rodata: the very bytes this process would load? */
static bool same_settings(struct teredo_observer_bpf *skel, uint32_t rodata_id)
{
	size_t size = 0;
	const void *mine = bpf_map__initial_value(skel->maps.rodata, &size);
	int fd = bpf_map_get_fd_by_id(rodata_id);
	uint32_t zero = 0;
	void *theirs;
	bool same;

	if (fd < 0)
		return false;
	theirs = calloc(1, size);
	same = mine && theirs && !bpf_map_lookup_elem(fd, &zero, theirs) &&
	       !memcmp(mine, theirs, size);
	free(theirs);
	close(fd);
	return same;
}

/*
 * The candidates of one set (by its registry), one per hook in pick[]:
 * every hook there, and every setting they read the same one, equal to ours.
 */
static bool whole_set(struct teredo_observer_bpf *skel, const struct hooks *hooks,
		      const struct candidate *cands, size_t n, uint32_t set, size_t pick[])
{
	uint32_t rodata = 0;
	size_t found = 0;

	for (size_t k = 0; k < hooks->n; k++)
		pick[k] = n;
	for (size_t i = 0; i < n; i++) {
		if (cands[i].clients_id != set)
			continue;
		if (cands[i].rodata_id && rodata && cands[i].rodata_id != rodata)
			return false;
		if (cands[i].rodata_id)
			rodata = cands[i].rodata_id;
		if (pick[cands[i].hook] == n) {
			pick[cands[i].hook] = i;
			found++;
		}
	}
	return found == hooks->n && rodata && same_settings(skel, rodata);
}

void shared_set_release(struct shared_set *set)
{
	for (size_t i = 0; i < set->n_links; i++)
		close(set->link_fds[i]);
	set->n_links = 0;
}

/* Fds of the set's links: from now on it stays attached while this process lives. */
static int hold_links(const struct hooks *hooks, const struct candidate *cands, const size_t pick[],
		      struct shared_set *set)
{
	set->n_links = 0;
	for (size_t k = 0; k < hooks->n; k++) {
		int fd = bpf_link_get_fd_by_id(cands[pick[k]].link_id);

		if (fd < 0) {
			shared_set_release(set); /* its last holder left meanwhile */
			return -ENOENT;
		}
		set->link_fds[set->n_links++] = fd;
	}
	return 0;
}

/* The set's map that is skel's map, among every map its programs use: an fd, or -ENOENT. */
static int set_map_fd(const struct candidate *cands, size_t n, uint32_t set,
		      const struct bpf_map *map)
{
	struct bpf_map_info info;

	for (size_t i = 0; i < n; i++) {
		if (cands[i].clients_id != set)
			continue;
		for (uint32_t m = 0; m < cands[i].n_maps; m++)
			if (!map_info(cands[i].map_ids[m], &info) && names_map(&info, map))
				return bpf_map_get_fd_by_id(cands[i].map_ids[m]);
	}
	return -ENOENT;
}

/*
 * Every map but the settings (each process's own, equal by now): the
 * registry, the connect() watches, the rings, the counters and the slots'
 * owners, so that this process's iterator sees and keeps the same state.
 */
static int reuse_maps(struct teredo_observer_bpf *skel, const struct candidate *cands, size_t n,
		      uint32_t set)
{
	struct bpf_map *map;
	int fds[SHARED_MAX_LINKS], n_fds = 0, err = 0;

	bpf_object__for_each_map(map, skel->obj)
	{
		if (map == skel->maps.rodata)
			continue;
		if (n_fds == SHARED_MAX_LINKS ||
		    (fds[n_fds] = set_map_fd(cands, n, set, map)) < 0) {
			err = -ENOENT;
			break;
		}
		n_fds++;
	}
	n_fds = 0;
	bpf_object__for_each_map(map, skel->obj)
	{
		if (map == skel->maps.rodata)
			continue;
		if (!err)
			err = bpf_map__reuse_fd(map, fds[n_fds]);
		close(fds[n_fds++]);
	}
	return err ? set_last_error(err, "cannot share the maps of the attached programs: %s",
				    strerror(-err))
		   : 0;
}

/* /proc/WHO/stat's starttime (field 22): a pid's process, not a later one with its number. */
static int start_time(const char *who, uint64_t *start)
{
	char path[64], buf[1024];
	unsigned long long t;
	const char *p;
	ssize_t len;
	int fd;

	snprintf(path, sizeof(path), "/proc/%s/stat", who);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	len = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (len <= 0)
		return -EIO;
	buf[len] = '\0';
	p = strrchr(buf, ')'); /* the name may hold anything but ends before the last ')' */
	if (!p || sscanf(p + 1,
			 " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d "
			 "%*d %*d %llu",
			 &t) != 1)
		return -EIO;
	*start = t;
	return 0;
}

static uint32_t namespace_of_self(const char *kind)
{
	char path[32];
	struct stat st;

	snprintf(path, sizeof(path), "/proc/self/ns/%s", kind);
	return stat(path, &st) ? 0 : (uint32_t)st.st_ino;
}

/*
 * Whether /proc names processes by this namespace's pids: not so after
 * `unshare -p -f` without a /proc of its own, where /proc/self is this
 * process under the host's number and /proc/PID another process.
 */
static bool proc_is_ours(void)
{
	char link[32];
	ssize_t len = readlink("/proc/self", link, sizeof(link) - 1);

	if (len <= 0)
		return false;
	link[len] = '\0';
	return strtol(link, NULL, 10) == getpid();
}

/* How this process sees another's pid and start time through /proc. */
struct viewer {
	uint32_t pid_ns;
	uint32_t time_ns; /* /proc shifts a start time by the reader's boot time offset */
	bool proc_ours;
};

static struct viewer this_viewer(void)
{
	return (struct viewer){ .pid_ns = namespace_of_self("pid"),
				.time_ns = namespace_of_self("time"),
				.proc_ours = proc_is_ours() };
}

/*
 * Whether the owner's proof of life is gone: a map of its own that nothing
 * else holds, so the kernel frees it, and its id, with the owner's last
 * fd of it (death, or exec: BPF fds are O_CLOEXEC), in whatever pid, time
 * or mount namespace. Its value is the record's nonce: a later map given
 * the same id (after the ids wrap) is no proof. Where the id cannot be
 * turned into an fd (no CAP_SYS_ADMIN) it is not known gone.
 */
static bool proof_gone(const struct teredo_slot_owner *o)
{
	int fd = bpf_map_get_fd_by_id(o->proof_id);
	uint64_t nonce = 0;
	uint32_t zero = 0;
	bool same;

	if (fd < 0)
		return errno == ENOENT;
	same = !bpf_map_lookup_elem(fd, &zero, &nonce) && nonce == o->proof_nonce;
	close(fd);
	return !same;
}

/*
 * Whether the slot's owner may still read its ring. A proof gone says it
 * died or exec'd, in whatever namespace (proof_gone). A proof held may be
 * a forked child's copy, the owner dead: where its pid and start time mean
 * here what they meant to it, they say. Where they mean something else
 * (another pid namespace, ours while /proc is not ours, another time
 * namespace), the owner is taken to live, never taken from a live one.
 */
static bool owner_lives(const struct teredo_slot_owner *o, const struct viewer *me)
{
	char pid[16];
	uint64_t t;

	if (!o->pid || (o->proof_id && proof_gone(o)))
		return false;
	if (o->pid_ns != me->pid_ns || o->time_ns != me->time_ns || !me->proc_ours)
		return true;
	snprintf(pid, sizeof(pid), "%u", o->pid);
	return !start_time(pid, &t) && t == o->start_time;
}

/* Room for one more ring: a slot free, or one whose owner is gone (the claim, under the lock,
 * follows). */
static bool set_has_room(const struct candidate *cands, size_t n, uint32_t set,
			 const struct bpf_map *bss_map)
{
	struct teredo_observer_bpf__bss *bss = calloc(1, sizeof(*bss));
	int fd = set_map_fd(cands, n, set, bss_map);
	struct viewer me = this_viewer();
	uint32_t zero = 0;
	bool room = false;

	if (bss && fd >= 0 && !bpf_map_lookup_elem(fd, &zero, bss))
		for (uint32_t i = 0; i < TEREDO_MAX_CONSUMERS && !room; i++)
			room = !owner_lives(&bss->slot_owners[i], &me);
	if (fd >= 0)
		close(fd);
	free(bss);
	return room;
}

/*
 * The first set with our settings that has room and could be held whole;
 * -ENOSPC when every such set is full, -ENOENT for none.
 */
static int join_first(struct teredo_observer_bpf *skel, const struct hooks *hooks,
		      const struct candidate *cands, size_t n, struct shared_set *set)
{
	size_t pick[SHARED_MAX_LINKS];
	bool full = false;

	for (size_t i = 0; i < n; i++) {
		uint32_t id = cands[i].clients_id;
		bool tried = false;

		for (size_t j = 0; j < i && !tried; j++)
			tried = cands[j].clients_id == id;
		if (tried || !whole_set(skel, hooks, cands, n, id, pick))
			continue;
		if (!set_has_room(cands, n, id, skel->maps.bss)) {
			full = true;
			continue;
		}
		if (hold_links(hooks, cands, pick, set))
			continue;
		if (reuse_maps(skel, cands, n, id)) {
			shared_set_release(set);
			return -EIO;
		}
		return 0;
	}
	return full ? -ENOSPC : -ENOENT;
}

int shared_set_find(struct teredo_observer_bpf *skel, int cgroup_fd, struct shared_set *set)
{
	struct candidate *cands;
	struct hooks hooks;
	uint64_t cgroup = 0;
	size_t n;
	int err;

	set->n_links = 0;
	err = cgroup2_id(cgroup_fd, &cgroup);
	if (err)
		return err;
	expected_hooks(skel, &hooks);
	cands = calloc(MAX_CANDIDATES, sizeof(*cands));
	if (!cands)
		return set_last_error(-ENOMEM, "out of memory");
	err = scan_links(skel, &hooks, cgroup, cands, &n);
	if (!err)
		err = join_first(skel, &hooks, cands, n, set);
	free(cands);
	return err;
}

/*
 * This process's proof of life for its slot (proof_gone): a one-entry
 * map holding a random nonce, its fd this process's alone (a child forked
 * with it holds a copy). Without one the record's pid alone tells.
 */
static int make_proof(struct teredo_slot_owner *o)
{
	struct bpf_map_info info = {};
	uint32_t len = sizeof(info), zero = 0;
	uint64_t nonce = 0;
	int fd;

	o->proof_id = 0;
	if (getrandom(&nonce, sizeof(nonce), GRND_NONBLOCK) != sizeof(nonce))
		nonce = (uint64_t)monotonic_ms() ^ ((uint64_t)getpid() << 32);
	fd = bpf_map_create(BPF_MAP_TYPE_ARRAY, "teredo_alive", sizeof(zero), sizeof(nonce), 1,
			    NULL);
	if (fd < 0)
		return -1;
	if (bpf_map_update_elem(fd, &zero, &nonce, BPF_ANY) ||
	    bpf_obj_get_info_by_fd(fd, &info, &len)) {
		close(fd);
		return -1;
	}
	o->proof_nonce = nonce;
	o->proof_id = info.id;
	return fd;
}

int shared_claim_slot(struct teredo_observer_bpf__bss *bss, struct shared_slot *slot)
{
	struct viewer me = this_viewer();
	uint32_t pid = (uint32_t)getpid();
	uint64_t t = 0;

	slot->proof_fd = -1;
	/* Its own through /proc/self, which is this process whichever pids /proc shows. */
	if (start_time("self", &t))
		return set_last_error(-EIO, "cannot read /proc/self/stat: is /proc mounted?");
	for (uint32_t i = 0; i < TEREDO_MAX_CONSUMERS; i++) {
		struct teredo_slot_owner *o = &bss->slot_owners[i];

		if (owner_lives(o, &me))
			continue;
		/* The proof before the pid: no reader takes the new owner for the dead one. */
		slot->proof_fd = make_proof(o);
		o->pid_ns = me.pid_ns;
		o->time_ns = me.time_ns;
		o->start_time = t;
		__atomic_store_n(&o->pid, pid, __ATOMIC_RELEASE);
		slot->index = i;
		slot->claimer = (pid_t)pid;
		return 0;
	}
	return -ENOSPC;
}

/*
 * Only the claimer gives the slot back. A child forked with it frees its
 * inherited copy: the proof's fd closed, which ends the proof only once
 * the claimer's is closed too.
 */
void shared_free_slot(struct teredo_observer_bpf__bss *bss, struct shared_slot *slot)
{
	if (shared_slot_is_mine(slot))
		__atomic_store_n(&bss->slot_owners[slot->index].pid, 0, __ATOMIC_RELEASE);
	if (slot->proof_fd >= 0)
		close(slot->proof_fd);
	slot->proof_fd = -1;
}
