// SPDX-License-Identifier: MIT
/*
 * Issue 20 item 3: the root consumers of a host share one attached copy of
 * the programs (user/lib/port/shared_set.h). Each consumer here is a
 * process of its own, forked, with its own observer; the client is a real
 * udp-actor whose binds they must all see. What is attached at the root is
 * read from the kernel (bpf_prog_query), ours told from others' by the
 * test's own client name in the programs' .rodata.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <linux/capability.h>

#include "actor.h"
#include "cgroup2.h"
#include "observe.h"
#include "shared_set.h"

#define MAX_CONSUMERS 20

struct consumer {
	pid_t pid;
	int from; /* its lines: "ready PORT", "port PORT", "error ..." */
	int stop; /* closed: it frees its observer and exits */
	FILE *err;
};

static struct consumer consumers[MAX_CONSUMERS];
static size_t n_consumers;
/* Run in the next consumer's process before its observer opens, if set. */
static void (*prepare_consumer)(void);
/*
 * What the next consumer does once its observers are open: EXEC, once
 * ready, execs sleep (the same pid and start time, no consumer); KEEPER
 * forks a child that keeps what it inherited (the observers, unfreed)
 * until every write end of keeper_stop is closed.
 */
static enum { CONSUME, EXEC, KEEPER } then;
static int keeper_stop[2] = { -1, -1 };

static void end_consumer(struct consumer *c, int sig)
{
	if (c->pid <= 0)
		return;
	if (sig)
		kill(c->pid, sig);
	else
		close(c->stop);
	waitpid(c->pid, NULL, 0);
	if (sig)
		close(c->stop);
	close(c->from);
	c->pid = c->from = c->stop = -1;
}

static void teardown(void)
{
	for (size_t i = 0; i < n_consumers; i++)
		end_consumer(&consumers[i], SIGKILL);
	n_consumers = 0;
	for (int i = 0; i < 2; i++) {
		if (keeper_stop[i] >= 0)
			close(keeper_stop[i]); /* the last write end: a keeper exits */
		keeper_stop[i] = -1;
	}
	fixture_teardown();
}

TestSuite(shared_set, .fini = teardown, .timeout = 120);

static void say(int fd, const char *fmt, unsigned int v)
{
	char line[64];
	int n = snprintf(line, sizeof(line), fmt, v);

	if (write(fd, line, n) != n)
		_exit(1);
}

/* The consumer process: an observer of comm, its current port after each event. */
static void consume(const char *comm, int out, int stop, int n_observers)
{
	struct teredo_selection *sel = teredo_selection_new();
	struct teredo_observer *o[MAX_CONSUMERS] = { 0 };
	struct teredo_port_event ev;

	if (!sel || teredo_selection_add_comm(sel, comm))
		_exit(1);
	for (int i = 0; i < n_observers; i++) {
		if (teredo_observer_new(sel, &o[i])) {
			dprintf(out, "error %s\n", teredo_observer_last_error());
			_exit(1);
		}
		while (teredo_observer_receive(o[i], &ev) > 0)
			; /* the initial event */
	}
	if (then == KEEPER && !fork()) {
		char c;

		close(keeper_stop[1]);
		if (read(keeper_stop[0], &c, 1) < 0)
			_exit(1);
		_exit(0);
	}
	say(out, "ready %u\n", teredo_observer_current_port(o[0]));
	if (then == EXEC) {
		execl("/bin/sleep", "sleep", "600", (char *)NULL);
		_exit(1);
	}
	for (;;) {
		struct pollfd p[2] = { { .fd = teredo_observer_get_fd(o[0]), .events = POLLIN },
				       { .fd = stop, .events = POLLIN } };

		if (poll(p, 2, -1) < 0 || p[1].revents)
			break;
		while (teredo_observer_receive(o[0], &ev) > 0)
			say(out, "port %u\n", teredo_observer_current_port(o[0]));
	}
	for (int i = 0; i < n_observers; i++)
		teredo_observer_free(o[i]);
	teredo_selection_free(sel);
	_exit(0);
}

/* One line from the consumer within ms, or "" when none came. */
static void read_line(struct consumer *c, char *buf, size_t len, int ms)
{
	struct pollfd p = { .fd = c->from, .events = POLLIN };
	size_t n = 0;

	buf[0] = '\0';
	while (n + 1 < len && poll(&p, 1, ms) == 1) {
		if (read(c->from, buf + n, 1) != 1)
			break;
		if (buf[n++] == '\n')
			break;
	}
	buf[n] = '\0';
}

/* A consumer of comm (n_observers in one process), started; its stderr to err_fd. */
static struct consumer *spawn_consumer(const char *comm, int n_observers, int err_fd)
{
	struct consumer *c = &consumers[n_consumers];
	int out[2], stop[2];

	cr_assert_lt(n_consumers, MAX_CONSUMERS);
	cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(stop, O_CLOEXEC), 0);
	c->pid = fork();
	cr_assert_geq(c->pid, 0, "fork: %s", strerror(errno));
	if (!c->pid) {
		/* Forked, not exec'd: the others' pipes would keep their stop from closing. */
		for (size_t i = 0; i < n_consumers; i++) {
			if (consumers[i].pid > 0) {
				close(consumers[i].stop);
				close(consumers[i].from);
			}
		}
		if (err_fd >= 0)
			dup2(err_fd, STDERR_FILENO);
		if (prepare_consumer)
			prepare_consumer();
		close(out[0]);
		close(stop[1]);
		consume(comm, out[1], stop[0], n_observers);
	}
	close(out[1]);
	close(stop[0]);
	c->from = out[0];
	c->stop = stop[1];
	n_consumers++;
	return c;
}

static void await_ready(struct consumer *c, const char *comm)
{
	char line[512];

	read_line(c, line, sizeof(line), 30000);
	cr_assert_eq(strncmp(line, "ready ", 6), 0, "consumer %d of %s: \"%s\"", c->pid, comm,
		     line);
}

/* The same, and ready. */
static struct consumer *start_consumer_with(const char *comm, int n_observers, int err_fd)
{
	struct consumer *c = spawn_consumer(comm, n_observers, err_fd);

	await_ready(c, comm);
	return c;
}

static struct consumer *start_consumer(const char *comm)
{
	return start_consumer_with(comm, 1, -1);
}

/* Every consumer given sees the client's current port become port. */
static void expect_port_seen(struct consumer **cs, size_t n, long port)
{
	char want[32], line[128];

	snprintf(want, sizeof(want), "port %ld\n", port);
	for (size_t i = 0; i < n; i++) {
		bool seen = false;

		for (int tries = 0; tries < 10 && !seen; tries++) {
			read_line(cs[i], line, sizeof(line), EVENT_TIMEOUT_MS);
			seen = !strcmp(line, want);
		}
		cr_assert(seen, "consumer %d never saw port %ld (last: \"%s\")", cs[i]->pid, port,
			  line);
	}
}

/* Does the program read settings that name the client comm (its .rodata)? */
static bool program_selects(uint32_t prog_id, const char *comm)
{
	struct bpf_prog_info info = {};
	uint32_t len = sizeof(info), map_ids[8], zero = 0;
	int fd = bpf_prog_get_fd_by_id(prog_id);
	bool found = false;

	if (fd < 0)
		return false;
	info.nr_map_ids = 8;
	info.map_ids = (uint64_t)(uintptr_t)map_ids;
	if (bpf_obj_get_info_by_fd(fd, &info, &len) || strncmp(info.name, "teredo_", 7))
		info.nr_map_ids = 0;
	close(fd);
	for (uint32_t i = 0; i < info.nr_map_ids && i < 8 && !found; i++) {
		struct bpf_map_info m = {};
		uint32_t mlen = sizeof(m);
		int mfd = bpf_map_get_fd_by_id(map_ids[i]);
		char *value;

		if (mfd < 0)
			continue;
		if (!bpf_obj_get_info_by_fd(mfd, &m, &mlen) && strstr(m.name, ".rodata") &&
		    (value = calloc(1, m.value_size))) {
			found = !bpf_map_lookup_elem(mfd, &zero, value) &&
				memmem(value, m.value_size, comm, strlen(comm) + 1);
			free(value);
		}
		close(mfd);
	}
	return found;
}

/*
 * How many copies of our programs for the client comm are attached at the
 * root cgroup: as many of each hook, or -1. sock_release reads no setting,
 * so the six others tell the copies.
 */
static int copies_attached(const char *comm)
{
	static const enum bpf_attach_type types[] = {
		BPF_CGROUP_INET4_POST_BIND, BPF_CGROUP_INET6_POST_BIND, BPF_CGROUP_UDP4_SENDMSG,
		BPF_CGROUP_UDP6_SENDMSG,    BPF_CGROUP_INET4_CONNECT,	BPF_CGROUP_INET6_CONNECT,
	};
	int root = cgroup2_root_fd(), per_type[6] = { 0 };

	cr_assert_geq(root, 0, "%s", teredo_observer_last_error());
	for (size_t t = 0; t < 6; t++) {
		uint32_t ids[512], n = 512;

		cr_assert_eq(bpf_prog_query(root, types[t], 0, NULL, ids, &n), 0, "query: %s",
			     strerror(errno));
		for (uint32_t i = 0; i < n; i++)
			per_type[t] += program_selects(ids[i], comm);
	}
	close(root);
	for (size_t t = 1; t < 6; t++)
		if (per_type[t] != per_type[0])
			return -1; /* not whole: one going, or a broken copy */
	return per_type[0];
}

/* A link's release may trail its last holder's exit a moment. */
/* A forked child frees the observer it inherited and exits: what it takes with it. */
static void child_frees_its_copy(struct teredo_observer *obs)
{
	pid_t child = fork();
	int status;

	cr_assert_geq(child, 0, "fork: %s", strerror(errno));
	if (!child) {
		teredo_observer_free(obs);
		_exit(0);
	}
	cr_assert_eq(waitpid(child, &status, 0), child);
	cr_assert(WIFEXITED(status) && !WEXITSTATUS(status));
}

static void expect_copies(const char *comm, int want)
{
	int n = -1;

	for (int i = 0; i < 200 && (n = copies_attached(comm)) != want; i++)
		usleep(10000);
	cr_assert_eq(n, want, "%d copies of the programs for %s attached at the root, not %d", n,
		     comm, want);
}

/* One copy at the root, and each of the n consumers sees the client's port. */
static void expect_one_copy_seen_by(const char *comm, struct consumer **cs, size_t n)
{
	long port;

	expect_copies(comm, 1);
	client = actor_start(comm);
	port = actor_new_bound(client, "socket4");
	expect_port_seen(cs, n, port);
}

static void unique_comm(char *buf, size_t len, char tag)
{
	snprintf(buf, len, "shr%c%d", tag, getpid() % 1000000);
}

/*
 * What sharing adds that a user could reach: the join lock alone (the
 * rest is the kernel's ids, root's). Root's and 0600 in a /run only root
 * writes, so that user nobody can't hold it (every root consumer would
 * wait, then load a copy of its own), nor replace it.
 */
Test(shared_set, the_join_lock_is_roots_alone)
{
	struct stat st;
	char comm[16];

	need_root();
	unique_comm(comm, sizeof(comm), 'l');
	start_consumer(comm);
	cr_assert_eq(lstat(SHARED_LOCK_PATH, &st), 0, "%s: %s", SHARED_LOCK_PATH, strerror(errno));
	cr_assert(S_ISREG(st.st_mode), "%s is no regular file", SHARED_LOCK_PATH);
	cr_assert_eq(st.st_uid, 0, "%s belongs to uid %u", SHARED_LOCK_PATH, st.st_uid);
	cr_assert_eq(st.st_mode & 077, 0, "%s has mode %o", SHARED_LOCK_PATH, st.st_mode & 0777);
	cr_assert_eq(stat("/run", &st), 0);
	cr_assert_eq(st.st_mode & 022, 0, "/run is writable by others (mode %o)",
		     st.st_mode & 0777);
}

Test(shared_set, three_root_consumers_run_one_copy_and_the_last_takes_it_away)
{
	struct consumer *cs[3];
	char comm[16];
	long port;

	need_root();
	unique_comm(comm, sizeof(comm), 'a');
	for (int i = 0; i < 3; i++)
		cs[i] = start_consumer(comm);
	expect_copies(comm, 1);
	client = actor_start(comm);
	port = actor_new_bound(client, "socket4");
	expect_port_seen(cs, 3, port);

	/* The one that attached them goes first, killed: the others keep them. */
	end_consumer(cs[0], SIGKILL);
	expect_copies(comm, 1);
	actor_do(client, "close");
	port = actor_new_bound(client, "socket6");
	expect_port_seen(cs + 1, 2, port);

	end_consumer(cs[1], 0);
	end_consumer(cs[2], SIGKILL);
	expect_copies(comm, 0);
}

/*
 * The first gone (freeing its observer, as a clean exit does: its links
 * closed, not detached), a newcomer still joins what the other holds, in
 * the slot it gave back, and both see the client.
 */
Test(shared_set, a_newcomer_joins_after_the_first_is_gone)
{
	struct consumer *cs[2];
	char comm[16];

	need_root();
	unique_comm(comm, sizeof(comm), 'b');
	cs[0] = start_consumer(comm);
	cs[1] = start_consumer(comm);
	end_consumer(cs[0], 0);
	expect_copies(comm, 1);
	cs[0] = start_consumer(comm);
	expect_one_copy_seen_by(comm, cs, 2);
}

/*
 * A slot whose owner was killed (its ring still in the set's rings) is
 * taken by the next consumer when no other is free: with the first
 * killed and the other fifteen slots held, a newcomer still joins, and
 * sees the client through the ring it put there.
 */
Test(shared_set, a_killed_consumers_slot_is_taken_again)
{
	struct consumer *first, *rest, *newcomer;
	char comm[16];
	long port;

	need_root();
	unique_comm(comm, sizeof(comm), 'f');
	first = start_consumer(comm);
	rest = start_consumer_with(comm, TEREDO_MAX_CONSUMERS - 1, -1);
	end_consumer(first, SIGKILL);
	newcomer = start_consumer(comm);
	expect_copies(comm, 1);
	client = actor_start(comm);
	port = actor_new_bound(client, "socket4");
	expect_port_seen(&newcomer, 1, port);
	expect_port_seen(&rest, 1, port);
}

/*
 * Another selection never shares: its own copy, and what it selects
 * neither reaches nor changes what the first consumer sees.
 */
Test(shared_set, different_selections_run_separate_copies)
{
	struct consumer *mine, *theirs;
	char comm[16], other_comm[16], line[128];
	long port;

	need_root();
	unique_comm(comm, sizeof(comm), 'c');
	unique_comm(other_comm, sizeof(other_comm), 'd');
	mine = start_consumer(comm);
	theirs = start_consumer(other_comm);
	expect_copies(comm, 1);
	expect_copies(other_comm, 1);
	client = actor_start(other_comm);
	port = actor_new_bound(client, "socket4");
	expect_port_seen(&theirs, 1, port);
	read_line(mine, line, sizeof(line), 500);
	cr_assert_str_eq(line, "", "the other selection's client reached the first: %s", line);
}

/*
 * With every slot held, one more consumer loads a copy of its own, and
 * says so once on stderr; consumers that share say nothing.
 */
Test(shared_set, every_place_taken_loads_its_own_copy_and_says_so)
{
	char comm[16], out[4096] = "";
	struct consumer *c;
	int err[2];
	ssize_t n;

	need_root();
	unique_comm(comm, sizeof(comm), 'e');
	cr_assert_eq(pipe2(err, O_CLOEXEC | O_NONBLOCK), 0);
	c = start_consumer_with(comm, TEREDO_MAX_CONSUMERS, err[1]);
	expect_copies(comm, 1);
	n = read(err[0], out, sizeof(out) - 1);
	cr_assert_leq(n, 0, "consumers that share were told: %s", out);
	start_consumer_with(comm, 2, err[1]);
	expect_copies(comm, 2);
	close(err[1]);
	n = read(err[0], out, sizeof(out) - 1);
	out[n > 0 ? n : 0] = '\0';
	close(err[0]);
	cr_assert_not_null(strstr(out, "loads its own copy of the BPF programs (all 16 places"),
			   "no notice: \"%s\"", out);
	cr_assert_eq(strchr(out, '\n'), out + strlen(out) - 1, "not one line: %s", out);
	(void)c;
}

/*
 * A process that waits for the host's join lock like any consumer and
 * holds it hold_ms (a slow join, as under QEMU/TCG), then exits; hold_ms
 * < 0: until it is killed. When wait_held, not before it has it. On the
 * list of the test's children, so that teardown kills it whatever happens.
 */
static struct consumer *hold_the_lock_for(int hold_ms, bool wait_held)
{
	struct consumer *c = &consumers[n_consumers];
	int out[2], stop[2];
	char line[64];

	cr_assert_lt(n_consumers, MAX_CONSUMERS);
	cr_assert_eq(pipe2(out, O_CLOEXEC), 0);
	cr_assert_eq(pipe2(stop, O_CLOEXEC), 0);
	c->pid = fork();
	cr_assert_geq(c->pid, 0, "fork: %s", strerror(errno));
	if (!c->pid) {
		int fd = open(SHARED_LOCK_PATH, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

		if (fd < 0 || flock(fd, LOCK_EX))
			_exit(1);
		say(out[1], "held %u\n", 1);
		if (hold_ms >= 0)
			usleep((useconds_t)hold_ms * 1000);
		else
			for (;;)
				pause();
		_exit(0);
	}
	close(out[1]);
	close(stop[0]);
	c->from = out[0];
	c->stop = stop[1];
	n_consumers++;
	if (wait_held) {
		read_line(c, line, sizeof(line), 5000);
		cr_assert_str_eq(line, "held 1\n", "the lock holder did not take %s",
				 SHARED_LOCK_PATH);
	}
	return c;
}

/* A holder stopped (SIGSTOP, as a debugger or a ^Z leaves it) with the lock held. */
static struct consumer *hold_the_lock_stopped(void)
{
	struct consumer *c = hold_the_lock_for(-1, true);

	cr_assert_eq(kill(c->pid, SIGSTOP), 0);
	return c;
}

static double seconds_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/*
 * Consumers starting at once wait their turns for the join lock; each turn
 * may be slow (a join under QEMU/TCG takes about 0.5 s, fifteen of them
 * more than the bound on one holder). A queue that moves is waited for,
 * however long in all: two holders of 3 s each, then the newcomer joins
 * the copy there is, with no notice.
 */
Test(shared_set, a_queue_for_the_lock_is_waited_for_however_long)
{
	char comm[16], out[4096] = "";
	struct consumer *cs[2];
	struct timespec t0;
	int err[2];
	long port;
	ssize_t n;

	need_root();
	unique_comm(comm, sizeof(comm), 'q');
	cs[0] = start_consumer(comm);
	hold_the_lock_for(3000, true);
	hold_the_lock_for(3000, false); /* next in the queue: it blocks in flock() */
	cr_assert_eq(pipe2(err, O_CLOEXEC | O_NONBLOCK), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cs[1] = start_consumer_with(comm, 1, err[1]);
	close(err[1]);
	cr_log_info("started after %.2f s behind two holders of 3 s", seconds_since(&t0));
	expect_copies(comm, 1);
	n = read(err[0], out, sizeof(out) - 1);
	close(err[0]);
	out[n > 0 ? n : 0] = '\0';
	cr_assert_str_eq(out, "", "a notice behind a queue that moved: %s", out);
	client = actor_start(comm);
	port = actor_new_bound(client, "socket4");
	expect_port_seen(cs, 2, port);
}

/*
 * A stopped lock holder costs a consumer a bounded wait, then a copy of
 * its own, said once; once the holder is gone, a newcomer joins that copy
 * and both see the client.
 */
Test(shared_set, a_stopped_lock_holder_costs_a_wait_then_a_copy_of_ones_own)
{
	char comm[16], out[4096] = "";
	struct consumer *holder, *cs[2];
	struct timespec t0;
	int err[2];
	long port;
	ssize_t n;

	need_root();
	unique_comm(comm, sizeof(comm), 'f');
	holder = hold_the_lock_stopped();
	cr_assert_eq(pipe2(err, O_CLOEXEC | O_NONBLOCK), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cs[0] = start_consumer_with(comm, 1, err[1]);
	cr_log_info("started after %.2f s beside a stopped lock holder", seconds_since(&t0));
	expect_copies(comm, 1);
	n = read(err[0], out, sizeof(out) - 1);
	out[n > 0 ? n : 0] = '\0';
	cr_assert_not_null(strstr(out, "loads its own copy of the BPF programs ("),
			   "no notice: \"%s\"", out);
	cr_assert_not_null(strstr(out, SHARED_LOCK_PATH), "the notice names no lock: %s", out);
	cr_assert_eq(strchr(out, '\n'), out + strlen(out) - 1, "not one line: %s", out);

	end_consumer(holder, SIGKILL);
	cs[1] = start_consumer_with(comm, 1, err[1]);
	close(err[1]);
	expect_copies(comm, 1);
	n = read(err[0], out, sizeof(out) - 1);
	close(err[0]);
	cr_assert_leq(n, 0, "the newcomer, which shares, was told: %.*s", (int)n, out);
	client = actor_start(comm);
	port = actor_new_bound(client, "socket4");
	expect_port_seen(cs, 2, port);
}

/* In a consumer: /run read-only, as a unit's ProtectSystem=strict leaves it. */
static void run_read_only(void)
{
	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
	    mount("/run", "/run", NULL, MS_BIND, NULL) ||
	    mount(NULL, "/run", NULL, MS_REMOUNT | MS_BIND | MS_RDONLY, NULL))
		_exit(1);
}

/*
 * Where /run is read-only (a unit's ProtectSystem=strict), the lock file
 * one consumer made is still the lock: the next one joins its copy, says
 * nothing, and sees the client.
 */
Test(shared_set, a_read_only_run_still_locks_the_file_made_before_and_joins)
{
	char comm[16], out[4096];
	struct consumer *cs[2];
	int err[2];
	ssize_t n;

	need_root();
	unique_comm(comm, sizeof(comm), 'g');
	cs[0] = start_consumer(comm);
	cr_assert_eq(pipe2(err, O_CLOEXEC | O_NONBLOCK), 0);
	prepare_consumer = run_read_only;
	cs[1] = start_consumer_with(comm, 1, err[1]);
	prepare_consumer = NULL;
	close(err[1]);
	n = read(err[0], out, sizeof(out) - 1);
	close(err[0]);
	cr_assert_leq(n, 0, "with /run read-only: %.*s", (int)n, out);
	expect_one_copy_seen_by(comm, cs, 2);
}

/* In a consumer: root without CAP_SYS_ADMIN, with what loading needs (CAP_BPF and the rest). */
static void without_sys_admin(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct caps[2];

	if (syscall(SYS_capget, &hdr, caps))
		_exit(1);
	caps[CAP_TO_INDEX(CAP_SYS_ADMIN)].effective &= ~CAP_TO_MASK(CAP_SYS_ADMIN);
	caps[CAP_TO_INDEX(CAP_SYS_ADMIN)].permitted &= ~CAP_TO_MASK(CAP_SYS_ADMIN);
	if (syscall(SYS_capset, &hdr, caps))
		_exit(1);
}

/*
 * Only CAP_SYS_ADMIN turns the kernel's ids into fds: a consumer without
 * it cannot look for a set to share, loads its own copy, and says so once,
 * and why, rather than take itself for the first.
 */
Test(shared_set, no_cap_sys_admin_loads_its_own_copy_and_says_why)
{
	char comm[16], out[4096];
	int err[2];
	ssize_t n;

	need_root();
	unique_comm(comm, sizeof(comm), 'h');
	start_consumer(comm);
	cr_assert_eq(pipe2(err, O_CLOEXEC | O_NONBLOCK), 0);
	prepare_consumer = without_sys_admin;
	start_consumer_with(comm, 1, err[1]);
	prepare_consumer = NULL;
	close(err[1]);
	n = read(err[0], out, sizeof(out) - 1);
	out[n > 0 ? n : 0] = '\0';
	close(err[0]);
	expect_copies(comm, 2);
	cr_assert_not_null(strstr(out, "loads its own copy of the BPF programs ("),
			   "no notice: \"%s\"", out);
	cr_assert_not_null(strstr(out, "CAP_SYS_ADMIN"), "the notice says not why: %s", out);
	cr_assert_eq(strchr(out, '\n'), out + strlen(out) - 1, "not one line: %s", out);
}

/*
 * One consumer that does not read (stopped, or busy) fills its own ring:
 * it alone loses records and rescans when it reads again; another sharing
 * the set loses none. Two observers in this process, one ring each (their
 * ring sizes differ, so no hub makes them one), at one set's two slots.
 */
Test(shared_set, a_consumer_that_does_not_read_loses_alone_and_rescans)
{
	struct teredo_selection *slow_sel = new_selection(), *fast_sel = new_selection();
	struct teredo_observer *fast;
	struct teredo_port_event ev;
	char comm[16];
	long survivor;
	int events = 0;

	unique_comm(comm, sizeof(comm), 'i');
	cr_assert_eq(teredo_selection_add_comm(slow_sel, comm), 0);
	cr_assert_eq(teredo_selection_add_comm(fast_sel, comm), 0);
	cr_assert_eq(teredo_selection_set_ring_bytes(slow_sel, 4096), 0); /* about 70 records */
	obs = observe(slow_sel, 0);
	fast = observe(fast_sel, 0);
	expect_copies(comm, 1);
	client = actor_start(comm);
	actor_do(client, "socket4");
	/* 500 binds and 499 closes, about 1000 records: 4 KiB overflow, 256 KiB do not. */
	survivor = actor_do(client, "storm 500");
	while (next_event(fast, &ev, 500))
		events++;
	cr_assert_eq(teredo_observer_resyncs(fast), 0, "the reading consumer lost records");
	cr_assert_eq(teredo_observer_current_port(fast), survivor);
	cr_log_info("the reading consumer: %d events", events);
	teredo_observer_free(fast);
	while (next_event(obs, &ev, 500))
		;
	cr_assert_gt(teredo_observer_resyncs(obs), 0,
		     "the consumer that did not read rescanned not");
	cr_assert_eq(teredo_observer_current_port(obs), survivor,
		     "after its rescan it says %u, the kernel %ld",
		     teredo_observer_current_port(obs), survivor);
}

static int go[2] = { -1, -1 };

/* In a consumer: wait for the test's word (every write end closed), so that all start at once. */
static void wait_for_go(void)
{
	char c;

	close(go[1]);
	if (read(go[0], &c, 1) != 0)
		_exit(1);
}

/*
 * Consumers starting at the same instant make one copy between them (the
 * join lock orders them: one loads, the others join) and all see the client.
 */
Test(shared_set, consumers_starting_at_once_make_one_copy)
{
	struct consumer *cs[6];
	char comm[16];

	need_root();
	unique_comm(comm, sizeof(comm), 'j');
	cr_assert_eq(pipe2(go, O_CLOEXEC), 0);
	prepare_consumer = wait_for_go;
	for (int i = 0; i < 6; i++)
		cs[i] = spawn_consumer(comm, 1, -1);
	prepare_consumer = NULL;
	close(go[0]);
	close(go[1]); /* every one reads its end of file now */
	for (int i = 0; i < 6; i++)
		await_ready(cs[i], comm);
	expect_one_copy_seen_by(comm, cs, 6);
}

/* A pid the host has no process for, near the top of the range. */
static pid_t free_host_pid(void)
{
	char path[64];
	long max = 32768;
	FILE *f = fopen("/proc/sys/kernel/pid_max", "r");

	if (f && fscanf(f, "%ld", &max) != 1)
		max = 32768;
	if (f)
		fclose(f);
	for (pid_t pid = (pid_t)max - 10; pid > 300; pid--) {
		snprintf(path, sizeof(path), "/proc/%d", pid);
		if (access(path, F_OK))
			return pid;
	}
	return 0;
}

/* Wait for child, then go as it went. */
static void follow_child(pid_t child)
{
	int status = 1;

	if (child < 0)
		_exit(1);
	while (waitpid(child, &status, 0) < 0 && errno == EINTR)
		;
	_exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
}

/*
 * In a consumer: a pid namespace of its own without a /proc of its own
 * (`unshare -p -f`, no --mount-proc), at a pid the host's /proc shows no
 * process for. The namespace's init goes with the process the test holds
 * (SIGKILL at teardown), and every process in it with the init.
 */
static void pid_namespace_without_its_proc(void)
{
	pid_t pid = free_host_pid(), child;
	char last[32];
	int fd, len;

	if (!pid || unshare(CLONE_NEWPID))
		_exit(1);
	child = fork(); /* the namespace's init */
	if (child)
		follow_child(child);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	fd = open("/proc/sys/kernel/ns_last_pid", O_WRONLY | O_CLOEXEC);
	len = snprintf(last, sizeof(last), "%d", pid - 1);
	if (fd < 0 || write(fd, last, len) != len)
		_exit(1);
	close(fd);
	child = fork(); /* the consumer, at pid in the namespace */
	if (child)
		follow_child(child);
}

/*
 * A root consumer in such a namespace starts and shares: its own pid means
 * nothing in the host's /proc, which it neither reads for itself nor
 * trusts for another's slot in its namespace.
 */
Test(shared_set, a_consumer_in_a_pid_namespace_without_its_proc_starts_and_shares)
{
	struct consumer *cs[2];
	char comm[16];

	need_root();
	unique_comm(comm, sizeof(comm), 'k');
	cs[0] = start_consumer(comm);
	prepare_consumer = pid_namespace_without_its_proc;
	cs[1] = start_consumer(comm);
	prepare_consumer = NULL;
	expect_one_copy_seen_by(comm, cs, 2);
}

/*
 * In a consumer: a time namespace of its own whose boot time is 1000 s
 * ahead (`unshare -T --boottime 1000`), its pid namespace the host's. The
 * process the test holds waits for it; it dies with that one.
 */
static void time_namespace_ahead(void)
{
	static const char offsets[] = "boottime 1000 0";
	pid_t child;
	int fd;

	if (unshare(CLONE_NEWTIME))
		_exit(1);
	fd = open("/proc/self/timens_offsets", O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, offsets, sizeof(offsets) - 1) != sizeof(offsets) - 1)
		_exit(1);
	close(fd);
	child = fork(); /* the consumer, in that namespace */
	if (child)
		follow_child(child);
	prctl(PR_SET_PDEATHSIG, SIGKILL);
}

/*
 * A start time read through /proc is shifted by the reader's time
 * namespace: a consumer in another must not take a live owner's slot for
 * a dead one's. Both see the client.
 */
Test(shared_set, an_owner_in_another_time_namespace_keeps_its_slot)
{
	struct consumer *cs[2];
	char comm[16];
	long port;

	need_root();
	if (access("/proc/self/ns/time", F_OK))
		cr_skip_test("no time namespaces (Linux < 5.6)");
	unique_comm(comm, sizeof(comm), 'm');
	prepare_consumer = time_namespace_ahead;
	cs[0] = start_consumer(comm);
	prepare_consumer = NULL;
	cs[1] = start_consumer(comm);
	expect_copies(comm, 1);
	client = actor_start(comm);
	port = actor_new_bound(client, "socket4");
	expect_port_seen(cs, 2, port);
}

/*
 * teredo_observer(3): an observer is not shared with a child, which frees
 * it there. The child's free gives back nothing of the parent's: the
 * parent's ring stays in its slot, and it still sees the client.
 */
Test(shared_set, a_child_freeing_the_observer_it_inherited_takes_nothing_from_the_parent)
{
	struct teredo_selection *sel = new_selection();
	struct teredo_port_event ev;
	char comm[16];
	long port;

	unique_comm(comm, sizeof(comm), 'n');
	cr_assert_eq(teredo_selection_add_comm(sel, comm), 0);
	obs = observe(sel, 0);
	expect_copies(comm, 1);
	child_frees_its_copy(obs);
	client = actor_start(comm);
	port = actor_new_bound(client, "socket4");
	expect_event(obs, TEREDO_PORT_ADDED, (uint16_t)port, &ev);
}

/*
 * The 16th slot's owner started (prepare in its process, what_then once
 * its observer is open) beside one consumer holding the 15 others, then
 * made to leave its slot without freeing it: a newcomer takes that slot,
 * so one copy, and both the newcomer and the fifteen see the client.
 */
static void expect_slot_taken_again(char tag, void (*prepare)(void), int what_then,
				    void (*leave)(struct consumer *))
{
	struct consumer *rest, *owner, *newcomer;
	char comm[16];
	long port;

	need_root();
	unique_comm(comm, sizeof(comm), tag);
	rest = start_consumer_with(comm, TEREDO_MAX_CONSUMERS - 1, -1);
	prepare_consumer = prepare;
	then = what_then;
	owner = start_consumer(comm);
	prepare_consumer = NULL;
	then = CONSUME;
	leave(owner);
	newcomer = start_consumer(comm);
	expect_copies(comm, 1);
	client = actor_start(comm);
	port = actor_new_bound(client, "socket4");
	expect_port_seen(&newcomer, 1, port);
	expect_port_seen(&rest, 1, port);
}

/*
 * The consumer has exec'd: its pipe closed with the exec (O_CLOEXEC), the
 * same pid now sleep, asleep in it (so back from the exec, whose closes
 * are done by then).
 */
static void await_exec(struct consumer *c)
{
	char line[64], path[64], stat[256] = "";
	bool asleep = false;

	read_line(c, line, sizeof(line), 5000);
	cr_assert_str_eq(line, "", "consumer %d said more: %s", c->pid, line);
	snprintf(path, sizeof(path), "/proc/%d/stat", c->pid);
	for (int i = 0; i < 500 && !asleep; i++) {
		FILE *f = fopen(path, "re");

		if (f && fgets(stat, sizeof(stat), f))
			asleep = strstr(stat, " (sleep) S ") != NULL;
		if (f)
			fclose(f);
		if (!asleep)
			usleep(10000);
	}
	cr_assert(asleep, "consumer %d never became sleep: %s", c->pid, stat);
}

/*
 * An owner that execs keeps its pid and start time, but the new program
 * reads no ring: its slot is taken again (its proof went with the exec).
 */
Test(shared_set, an_execd_consumers_slot_is_taken_again)
{
	expect_slot_taken_again('x', NULL, EXEC, await_exec);
}

/* The same with /run read-only (a unit's ProtectSystem=strict): the proof needs no file. */
Test(shared_set, an_execd_consumers_slot_is_taken_again_under_a_read_only_run)
{
	expect_slot_taken_again('y', run_read_only, EXEC, await_exec);
}

static int host_pid_said[2] = { -1, -1 };

/* In a consumer: the same namespace, and its pid in the host's /proc (still /proc) said. */
static void pid_namespace_saying_its_host_pid(void)
{
	char self[32];
	ssize_t len;

	pid_namespace_without_its_proc();
	len = readlink("/proc/self", self, sizeof(self) - 1);
	if (len <= 0 || write(host_pid_said[1], self, len) != len)
		_exit(1);
}

/*
 * SIGKILL for the consumer itself in its pid namespace, and the test's
 * process (its namespace's init's parent) waited for: gone with it.
 */
static void kill_in_its_namespace(struct consumer *c)
{
	char said[32] = "";
	pid_t pid;

	cr_assert_gt(read(host_pid_said[0], said, sizeof(said) - 1), 0);
	pid = (pid_t)strtol(said, NULL, 10);
	cr_assert_gt(pid, 1, "consumer %d said its host pid is \"%s\"", c->pid, said);
	cr_assert_eq(kill(pid, SIGKILL), 0, "kill %d: %s", pid, strerror(errno));
	end_consumer(c, 0);
}

/*
 * An owner killed in another pid namespace, whose pid the newcomer cannot
 * check: its slot is taken again (its proof went with its death).
 */
Test(shared_set, a_consumer_killed_in_another_pid_namespace_gives_its_slot_back)
{
	cr_assert_eq(pipe2(host_pid_said, O_CLOEXEC), 0);
	expect_slot_taken_again('p', pid_namespace_saying_its_host_pid, CONSUME,
				kill_in_its_namespace);
	close(host_pid_said[0]);
	close(host_pid_said[1]);
}

/* In a consumer: a /run of its own (a tmpfs in a mount namespace of its own). */
static void run_of_its_own(void)
{
	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
	    mount("tmpfs", "/run", "tmpfs", 0, "mode=0755"))
		_exit(1);
}

/*
 * Nor does it depend on what the owner's mount namespace shows: an owner
 * behind a /run of its own (another join lock) that execs gives its slot
 * back too.
 */
Test(shared_set, an_execd_consumers_slot_is_taken_again_behind_another_run)
{
	expect_slot_taken_again('r', run_of_its_own, EXEC, await_exec);
}

/*
 * teredo_observer(3): an observer is not shared with a child, which frees
 * it there. That free closes the child's copy of the proof and leaves the
 * parent's slot held: with the 15 others held a newcomer loads a copy of
 * its own, and the parent still sees the client.
 */
Test(shared_set, a_child_freeing_the_observer_it_inherited_leaves_the_parents_slot_held)
{
	struct teredo_selection *sel = new_selection();
	struct teredo_port_event ev;
	char comm[16], out[4096] = "";
	int err[2];
	ssize_t n;
	long port;

	unique_comm(comm, sizeof(comm), 'o');
	cr_assert_eq(teredo_selection_add_comm(sel, comm), 0);
	start_consumer_with(comm, TEREDO_MAX_CONSUMERS - 1, -1);
	obs = observe(sel, 0);
	expect_copies(comm, 1);
	child_frees_its_copy(obs);
	cr_assert_eq(pipe2(err, O_CLOEXEC | O_NONBLOCK), 0);
	start_consumer_with(comm, 1, err[1]);
	close(err[1]);
	n = read(err[0], out, sizeof(out) - 1);
	out[n > 0 ? n : 0] = '\0';
	close(err[0]);
	expect_copies(comm, 2);
	cr_assert_not_null(strstr(out, "(all 16 places"), "the newcomer said: \"%s\"", out);
	client = actor_start(comm);
	port = actor_new_bound(client, "socket4");
	expect_event(obs, TEREDO_PORT_ADDED, (uint16_t)port, &ev);
}

/* Which lock file the next consumer finds in its /run of its own. */
static enum { NOBODYS, WRITABLE_BY_ALL, A_LINK } bad_lock;

/* In a consumer: a lock file made first by another than root, or left open to others. */
static void run_with_a_lock_file_not_roots(void)
{
	int fd;

	run_of_its_own();
	if (bad_lock == A_LINK) {
		fd = open("/run/elsewhere", O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
		if (fd < 0 || symlink("/run/elsewhere", SHARED_LOCK_PATH))
			_exit(1);
		close(fd);
		return;
	}
	fd = open(SHARED_LOCK_PATH, O_CREAT | O_EXCL | O_WRONLY | O_CLOEXEC, 0600);
	if (fd < 0 || (bad_lock == NOBODYS && fchown(fd, 65534, 65534)) ||
	    (bad_lock == WRITABLE_BY_ALL && fchmod(fd, 0666)))
		_exit(1);
	close(fd);
}

/*
 * A lock file that is not root's alone (a process with CAP_DAC_OVERRIDE
 * and another uid made it first, or its mode lets others write, or it is
 * a link) is not locked: the consumer loads a copy of its own beside the
 * one it could have joined, and says why once, naming the file and what
 * to do.
 */
Test(shared_set, a_lock_file_not_roots_alone_is_refused_and_said_once)
{
	static const char *const why[] = { "not root's alone (a file of uid 65534",
					   "uid 0, mode 0666", "symbolic link" };
	char comm[16], out[4096];
	struct consumer *c;
	int err[2];
	ssize_t n;

	need_root();
	unique_comm(comm, sizeof(comm), 's');
	start_consumer(comm);
	for (int kind = NOBODYS; kind <= A_LINK; kind++) {
		bad_lock = kind;
		cr_assert_eq(pipe2(err, O_CLOEXEC | O_NONBLOCK), 0);
		prepare_consumer = run_with_a_lock_file_not_roots;
		c = start_consumer_with(comm, 1, err[1]);
		prepare_consumer = NULL;
		close(err[1]);
		expect_copies(comm, 2);
		n = read(err[0], out, sizeof(out) - 1);
		out[n > 0 ? n : 0] = '\0';
		close(err[0]);
		cr_assert_not_null(strstr(out, "loads its own copy of the BPF programs ("),
				   "lock file %d: no notice: \"%s\"", kind, out);
		cr_assert_not_null(strstr(out, why[kind]), "lock file %d: says not why: %s", kind,
				   out);
		cr_assert_not_null(strstr(out, "remove it"), "nor what to do: %s", out);
		cr_assert_eq(strchr(out, '\n'), out + strlen(out) - 1, "not one line: %s", out);
		end_consumer(c, 0);
		expect_copies(comm, 1);
	}
}

static void kill_it(struct consumer *c)
{
	end_consumer(c, SIGKILL);
}

/*
 * The owner killed while a child it forked keeps the observer (unfreed,
 * so the proof of life too): the owner's pid, which this namespace can
 * check, says it is dead, and its slot is taken again.
 */
Test(shared_set, a_killed_consumers_slot_is_taken_again_while_a_child_keeps_its_observer)
{
	cr_assert_eq(pipe2(keeper_stop, O_CLOEXEC), 0);
	expect_slot_taken_again('t', NULL, KEEPER, kill_it);
}
