// SPDX-License-Identifier: MIT
/*
 * With a cgroup path the programs run only there: attached at the cgroup
 * while a process is in it, else at its deepest existing ancestor, moved as
 * it comes and goes without missing a bind, and nothing of ours runs for a
 * process outside. The path is two deep (PARENT/miredo.service), as the
 * shipped unit's is, so that "an ancestor" is not the root.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "actor.h"
#include "cgroup2.h"
#include "observe.h"

static char root_dir[PATH_MAX / 2], parent_dir[PATH_MAX], target_dir[PATH_MAX];
static char target_path[128]; /* from the root, as the observer takes it */
static pid_t passer = -1;     /* the SCM_RIGHTS test's child */

static void teardown(void)
{
	if (passer > 0) {
		kill(passer, SIGKILL);
		waitpid(passer, NULL, 0);
		passer = -1;
	}
	fixture_teardown();
	rmdir(target_dir);
	rmdir(parent_dir);
}

TestSuite(cgroup_attach, .fini = teardown, .timeout = 180);

static void name_cgroups(void)
{
	need_root();
	cr_assert_eq(cgroup2_mount_point(root_dir, sizeof(root_dir)), 0, "%s",
		     teredo_observer_last_error());
	snprintf(target_path, sizeof(target_path), "/teredo-attach-%d/miredo.service", getpid());
	snprintf(parent_dir, sizeof(parent_dir), "%s/teredo-attach-%d", root_dir, getpid());
	snprintf(target_dir, sizeof(target_dir), "%s%s", root_dir, target_path);
	cr_assert_eq(mkdir(parent_dir, 0755), 0, "mkdir %s: %s", parent_dir, strerror(errno));
}

static void make_target(void)
{
	cr_assert_eq(mkdir(target_dir, 0755), 0, "mkdir %s: %s", target_dir, strerror(errno));
}

/* A reaped process may leave its cgroup a moment later: EBUSY until it has. */
static void remove_target(void)
{
	for (int i = 0; i < 1000 && rmdir(target_dir) && errno == EBUSY; i++)
		usleep(1000);
	cr_assert_eq(access(target_dir, F_OK), -1, "cannot remove %s: %s", target_dir,
		     strerror(errno));
}

static void observe_target(void)
{
	struct teredo_selection *o;

	o = new_selection();
	cr_assert_eq(teredo_selection_set_cgroup(o, target_path), 0, "%s",
		     teredo_observer_last_error());
	obs = observe(o, 0);
}

/*
 * The post_bind4 programs attached at dir itself (not inherited). At the
 * root, other observers' too: a bench beside the tests attached 22 there.
 */
#define MAX_ATTACHED 256

static uint32_t attached_at(const char *dir, uint32_t ids[MAX_ATTACHED])
{
	uint32_t n = MAX_ATTACHED;
	int fd = open(dir, O_RDONLY | O_DIRECTORY);

	cr_assert_geq(fd, 0, "open %s: %s", dir, strerror(errno));
	cr_assert_eq(bpf_prog_query(fd, BPF_CGROUP_INET4_POST_BIND, 0, NULL, ids, &n), 0,
		     "query %s: %s", dir, strerror(errno));
	close(fd);
	return n;
}

static bool holds(const char *dir, uint32_t id)
{
	uint32_t ids[MAX_ATTACHED], n = attached_at(dir, ids);

	for (uint32_t i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

/*
 * Let the observer read its cgroupfs news until ours are at dir (where
 * nothing else is) and not at other (where another observer may be).
 */
static uint32_t wait_attached(const char *dir, const char *other)
{
	uint32_t ids[MAX_ATTACHED];

	for (int i = 0; i < 5000; i++) {
		cr_assert_eq(teredo_observer_update(obs), 0, "%s", teredo_observer_last_error());
		if (attached_at(dir, ids) == 1 && !holds(other, ids[0]))
			return ids[0];
		usleep(1000);
	}
	cr_assert_fail("the programs never moved to %s alone", dir);
	return 0;
}

/* Ours are nowhere above where they are. */
static void expect_none_above(uint32_t id, const char *where)
{
	cr_assert_not(holds(root_dir, id), "program %u is at the root, not only at %s", id, where);
	if (strcmp(where, parent_dir))
		cr_assert_not(holds(parent_dir, id), "program %u is at %s too", id, parent_dir);
}

static void expect_port(enum teredo_port_event_type type, long port)
{
	expect_event(obs, type, (uint16_t)port, NULL);
	cr_assert_eq(teredo_observer_current_port(obs), port, "port %u after a bind to %ld",
		     teredo_observer_current_port(obs), port);
}

static void expect_bound(long port)
{
	expect_port(TEREDO_PORT_ADDED, port);
}

/*
 * `systemctl restart miredo`, 100 times: the cgroup removed and made again,
 * a new client moved in and binding at once. Every other restart the
 * observer reads its news between the exit and the rmdir, as a running
 * observer does, and moves back up to the parent: the bind must then be
 * seen live, by the programs the new cgroup inherited. In the others it
 * reads nothing until after the bind (the worst a scheduler can do): the
 * programs are left at the removed cgroup, and moving off it rescans.
 */
Test(cgroup_attach, restarted_100_times)
{
	uint64_t resyncs;
	long port;

	name_cgroups();
	make_target();
	observe_target();
	wait_attached(parent_dir, target_dir);
	for (int cycle = 0; cycle < 100; cycle++) {
		struct actor *next = actor_start("miredo");
		bool live = cycle % 2 == 0;

		if (client) {
			actor_kill(client);
			client = NULL;
			if (live) {
				expect_event(obs, TEREDO_PORT_DELETED, 0, NULL);
				wait_attached(parent_dir, target_dir);
			}
			remove_target();
			make_target();
		}
		resyncs = teredo_observer_resyncs(obs);
		client = next;
		move_into_cgroup(target_dir, client->pid);
		port = actor_new_bound(client, "socket4");
		if (!live && cycle)
			expect_event(obs, TEREDO_PORT_DELETED, 0, NULL);
		expect_bound(port);
		if (live)
			cr_assert_eq(teredo_observer_resyncs(obs), resyncs,
				     "cycle %d: the bind was found by a rescan, not seen live",
				     cycle);
		expect_none_above(wait_attached(target_dir, parent_dir), target_dir);
	}
}

static uint64_t run_count(uint32_t id)
{
	struct bpf_prog_info info = { 0 };
	uint32_t len = sizeof(info);
	int fd = bpf_prog_get_fd_by_id(id);

	cr_assert_geq(fd, 0, "program %u: %s", id, strerror(errno));
	cr_assert_eq(bpf_obj_get_info_by_fd(fd, &info, &len), 0, "%s", strerror(errno));
	close(fd);
	return info.run_cnt;
}

/*
 * Binds outside the subtree must not run our post_bind4 at all; one inside
 * (the client's socket, reported as type) runs it once.
 */
static void expect_outside_runs_nothing(uint32_t id, enum teredo_port_event_type type)
{
	uint64_t before, after;

	before = run_count(id);
	if (!other)
		other = actor_start("miredo");
	actor_do(other, "socket4");
	actor_do(other, "storm 50");
	after = run_count(id);
	cr_assert_eq(after, before, "50 binds outside ran our program %llu times",
		     (unsigned long long)(after - before));
	expect_port(type, actor_new_bound(client, "socket4"));
	cr_assert_eq(run_count(id), after + 1, "a bind inside ran our program %llu times",
		     (unsigned long long)(run_count(id) - after));
}

/*
 * Before the cgroup exists the programs are at its parent, after at the
 * cgroup; a bystander named miredo and run by root, in the test's own
 * cgroup, runs none of them either way (the programs' run counts, from BPF
 * statistics).
 */
Test(cgroup_attach, outside_runs_nothing)
{
	int stats;
	uint32_t id;

	name_cgroups();
	stats = bpf_enable_stats(BPF_STATS_RUN_TIME);
	cr_assert_geq(stats, 0, "bpf_enable_stats: %s", strerror(errno));
	observe_target();
	id = wait_attached(parent_dir, root_dir);
	expect_none_above(id, parent_dir);
	other = actor_start("miredo");
	actor_do(other, "socket4");
	actor_do(other, "storm 50");
	cr_assert_eq(run_count(id), 0, "binds outside %s ran our program", parent_dir);
	make_target();
	client = actor_start("miredo");
	move_into_cgroup(target_dir, client->pid);
	expect_outside_runs_nothing(id, TEREDO_PORT_ADDED);
	id = wait_attached(target_dir, parent_dir);
	expect_none_above(id, target_dir);
	expect_outside_runs_nothing(id, TEREDO_PORT_CHANGED);
	close(stats);
}

/* Send fd over sock, one SCM_RIGHTS message. */
static int pass_fd(int sock, int fd)
{
	char byte = 0, cbuf[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf };
	struct cmsghdr *c;

	m.msg_controllen = sizeof(cbuf);
	c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(sock, &m, 0) == 1 ? 0 : -1;
}

static int take_fd(int sock)
{
	char byte, cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = cbuf };
	struct cmsghdr *c;
	int fd;

	m.msg_controllen = sizeof(cbuf);
	if (recvmsg(sock, &m, 0) != 1 || !(c = CMSG_FIRSTHDR(&m)) || c->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

static uint16_t bind_any(int fd)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);

	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    getsockname(fd, (struct sockaddr *)&a, &len))
		return 0;
	return ntohs(a.sin_port);
}

/*
 * The client (named miredo, root, in the cgroup): binds the socket it is
 * given and says its port; on each byte after, closes it, or binds a socket
 * of its own.
 */
static void passed_socket_client(int ctl)
{
	uint16_t port;
	char cmd;
	int fd;

	prctl(PR_SET_PDEATHSIG, SIGKILL);
	prctl(PR_SET_NAME, "miredo");
	fd = take_fd(ctl);
	port = fd < 0 ? 0 : bind_any(fd);
	if (write(ctl, &port, sizeof(port)) != sizeof(port))
		_exit(1);
	while (read(ctl, &cmd, 1) == 1) {
		if (cmd == 'c')
			port = close(fd) ? 0 : 1;
		else
			port = bind_any(socket(AF_INET, SOCK_DGRAM, 0));
		if (write(ctl, &port, sizeof(port)) != sizeof(port))
			_exit(1);
	}
	_exit(0);
}

static uint16_t ask(int ctl, char cmd)
{
	uint16_t port = 0;

	cr_assert_eq(write(ctl, &cmd, 1), 1);
	cr_assert_eq(read(ctl, &port, sizeof(port)), (ssize_t)sizeof(port));
	return port;
}

/*
 * What the subtree gives up: a socket made outside it (here by the test,
 * in its own cgroup) and passed in by SCM_RIGHTS. The kernel runs a
 * socket's cgroup programs by the cgroup it was made in, so neither its
 * bind nor its close inside runs ours. It is never reported: not live, and
 * not by a snapshot either (which checks the socket's cgroup too), so that
 * no port outlives a socket whose close nobody sees. A socket the client
 * makes itself is seen, live and by a snapshot.
 */
Test(cgroup_attach, socket_passed_in_from_outside)
{
	struct teredo_observer *fresh;
	struct teredo_selection *o;
	uint16_t port, own;
	int sv[2], fd;

	name_cgroups();
	make_target();
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	passer = fork();
	cr_assert_geq(passer, 0);
	if (passer == 0) {
		close(sv[0]);
		passed_socket_client(sv[1]);
	}
	close(sv[1]);
	move_into_cgroup(target_dir, passer);
	observe_target();
	wait_attached(target_dir, parent_dir);
	fd = socket(AF_INET, SOCK_DGRAM, 0);
	cr_assert_geq(fd, 0);
	cr_assert_eq(pass_fd(sv[0], fd), 0, "SCM_RIGHTS: %s", strerror(errno));
	close(fd);
	cr_assert_eq(read(sv[0], &port, sizeof(port)), (ssize_t)sizeof(port));
	cr_assert_neq(port, 0, "the client could not bind the passed socket");
	expect_quiet(obs, 300);
	cr_assert_eq(teredo_observer_current_port(obs), 0);

	o = new_selection();
	cr_assert_eq(teredo_selection_set_cgroup(o, target_path), 0, "%s",
		     teredo_observer_last_error());
	fresh = observe(o, 0); /* a snapshot leaves it out as well */
	teredo_observer_free(fresh);
	cr_assert_eq(ask(sv[0], 'c'), 1, "the client could not close it");
	expect_quiet(obs, 300);

	own = ask(sv[0], 'b');
	cr_assert_neq(own, 0);
	expect_bound(own);
	fresh = observe(o, own);
	teredo_observer_free(fresh);
	close(sv[0]);
}
