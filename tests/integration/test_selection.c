// SPDX-License-Identifier: MIT
/*
 * The other ways to say what the Teredo client is: names, pid, cgroup,
 * traffic. Each narrows: every criterion given must hold, so a bystander
 * that meets all but one (named miredo, run by root) is never reported.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include "actor.h"
#include "cgroup2.h"
#include "observe.h"

static char cgroup_dir[PATH_MAX];

static void teardown(void)
{
	fixture_teardown();
	if (cgroup_dir[0])
		rmdir(cgroup_dir);
	cgroup_dir[0] = '\0';
}

TestSuite(selection, .fini = teardown, .timeout = 60);

static void expect_only_client(long port)
{
	/* The bystander acted first: anything of its would come before this. */
	expect_event(obs, TEREDO_PORT_ADDED, (uint16_t)port, NULL);
}

/* Named miredo and run by root: only the criterion under test keeps it out. */
static void bystander_binds(void)
{
	other = actor_start("miredo");
	actor_new_bound(other, "socket4");
}

Test(selection, other_names)
{
	struct teredo_selection *o;
	long port;

	o = new_selection();
	cr_assert_eq(teredo_selection_add_comm(o, "teredo-client"), 0);
	obs = observe(o, 0);
	other = actor_start("miredo");
	actor_new_bound(other, "socket4");
	client = actor_start("teredo-client");
	port = actor_new_bound(client, "socket4");
	expect_only_client(port);
}

Test(selection, by_pid_and_its_children)
{
	struct teredo_selection *o;
	long port;

	client = actor_start("miredo");
	o = new_selection();
	cr_assert_eq(teredo_selection_set_pid(o, client->pid), 0);
	obs = observe(o, 0);
	bystander_binds();
	port = actor_new_bound(client, "socket4");
	expect_only_client(port);
	actor_do(client, "close");
	expect_event(obs, TEREDO_PORT_DELETED, 0, NULL);
}

/* miredo's pidfile names the parent; the worker, its child, owns the socket. */
Test(selection, by_pid_covers_its_children)
{
	struct teredo_selection *o;
	int ports[2];
	pid_t parent;
	uint16_t port;

	cr_assert_eq(pipe(ports), 0);
	parent = fork();
	cr_assert_geq(parent, 0);
	if (parent == 0) {
		/* Its own process group, so that the test can end it and its child at once. */
		setpgid(0, 0);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		prctl(PR_SET_NAME, "miredo");
		/* Wait for the observer, then let a child bind. */
		if (read(0, &port, 0) < 0 || kill(getpid(), SIGSTOP))
			_exit(1);
		if (fork() == 0) {
			struct sockaddr_in a = { .sin_family = AF_INET };
			socklen_t len = sizeof(a);
			int fd = socket(AF_INET, SOCK_DGRAM, 0);

			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
			    getsockname(fd, (struct sockaddr *)&a, &len))
				_exit(1);
			port = ntohs(a.sin_port);
			if (write(ports[1], &port, sizeof(port)) != sizeof(port))
				_exit(1);
			pause();
		}
		pause();
	}
	o = new_selection();
	cr_assert_eq(teredo_selection_set_pid(o, parent), 0);
	obs = observe(o, 0);
	waitpid(parent, NULL, WUNTRACED);
	kill(parent, SIGCONT);
	cr_assert_eq(read(ports[0], &port, sizeof(port)), (ssize_t)sizeof(port));
	expect_event(obs, TEREDO_PORT_ADDED, port, NULL);
	kill(-parent, SIGKILL);
	kill(parent, SIGKILL);
	waitpid(parent, NULL, 0);
}

/* A cgroup below the root, by its path from the root (it need not exist). */
static const char *test_cgroup(void)
{
	static char path[64];

	snprintf(path, sizeof(path), "/teredo-test-%d", getpid());
	return path;
}

static void make_test_cgroup(void)
{
	char root[PATH_MAX - 64];

	cr_assert_eq(cgroup2_mount_point(root, sizeof(root)), 0, "%s",
		     teredo_observer_last_error());
	snprintf(cgroup_dir, sizeof(cgroup_dir), "%s%s", root, test_cgroup());
	cr_assert_eq(mkdir(cgroup_dir, 0755), 0, "mkdir %s: %s", cgroup_dir, strerror(errno));
}

static void observe_test_cgroup(void)
{
	struct teredo_selection *o;

	o = new_selection();
	cr_assert_eq(teredo_selection_set_cgroup(o, test_cgroup()), 0, "%s",
		     teredo_observer_last_error());
	obs = observe(o, 0);
}

Test(selection, by_cgroup)
{
	long port;

	need_root();
	make_test_cgroup();
	client = actor_start("miredo");
	move_into_cgroup(cgroup_dir, client->pid);
	observe_test_cgroup();
	bystander_binds();
	port = actor_new_bound(client, "socket6");
	expect_only_client(port);
	actor_kill(client);
	client = NULL;
	expect_event(obs, TEREDO_PORT_DELETED, 0, NULL);
}

/* At boot the observer starts before miredo.service has its cgroup. */
Test(selection, cgroup_made_after_start)
{
	long port;

	need_root();
	observe_test_cgroup();
	make_test_cgroup();
	bystander_binds();
	client = actor_start("miredo");
	move_into_cgroup(cgroup_dir, client->pid);
	port = actor_new_bound(client, "socket4");
	expect_only_client(port);
}

/* `systemctl restart miredo` removes the cgroup and makes it again: a new id, the same path. */
Test(selection, cgroup_removed_and_made_again)
{
	long port;

	need_root();
	make_test_cgroup();
	observe_test_cgroup();
	for (int cycle = 0; cycle < 3; cycle++) {
		client = actor_start("miredo");
		move_into_cgroup(cgroup_dir, client->pid);
		port = actor_new_bound(client, "socket4");
		expect_event(obs, TEREDO_PORT_ADDED, (uint16_t)port, NULL);
		actor_kill(client);
		client = NULL;
		expect_event(obs, TEREDO_PORT_DELETED, 0, NULL);
		cr_assert_eq(rmdir(cgroup_dir), 0, "rmdir %s: %s", cgroup_dir, strerror(errno));
		cr_assert_eq(mkdir(cgroup_dir, 0755), 0, "mkdir %s: %s", cgroup_dir,
			     strerror(errno));
	}
	bystander_binds();
	expect_quiet(obs, 200);
}

Test(selection, bad_cgroup_path_is_one_clear_error)
{
	struct teredo_selection *o;
	struct teredo_observer *o2 = NULL;

	o = new_selection();
	cr_assert_eq(teredo_selection_set_cgroup(o, "/system.slice/../x"), -EINVAL);
	cr_assert(strstr(teredo_observer_last_error(), "/system.slice/../x"), "%s",
		  teredo_observer_last_error());
	cr_assert_eq(teredo_selection_set_cgroup(o, "/"), -EINVAL);
	cr_assert(strstr(teredo_observer_last_error(), "root"), "%s", teredo_observer_last_error());
	/* Through the environment, refused by teredo_observer_new before loading. */
	cr_assert_eq(setenv("TEREDO_OBSERVER_CGROUP", "/system.slice/../x", 1), 0);
	cr_assert_eq(teredo_observer_new(NULL, &o2), -EINVAL);
	unsetenv("TEREDO_OBSERVER_CGROUP");
	cr_assert_null(o2);
	cr_assert(strstr(teredo_observer_last_error(), "/system.slice/../x"), "%s",
		  teredo_observer_last_error());
}

static void observe_traffic(void)
{
	struct teredo_selection *o;

	o = new_selection();
	teredo_selection_set_match_traffic(o, true);
	obs = observe(o, 0);
}

Test(selection, by_traffic_to_port_3544)
{
	long port;

	observe_traffic();
	bystander_binds();
	actor_do(other, "sendto 3545");
	client = actor_start("miredo");
	actor_do(client, "socket4");
	/* Loopback only: nothing listens on 127.0.0.1:3544 and nothing leaves the host. */
	port = actor_do(client, "sendto 3544");
	expect_only_client(port);
	actor_do(client, "close");
	expect_event(obs, TEREDO_PORT_DELETED, 0, NULL);
}

Test(selection, by_traffic_after_explicit_bind)
{
	long port;

	observe_traffic();
	client = actor_start("miredo");
	port = actor_new_bound(client, "socket6");
	expect_quiet(obs, 200); /* bound, but no traffic yet */
	actor_do(client, "sendto 3544");
	expect_event(obs, TEREDO_PORT_ADDED, (uint16_t)port, NULL);
}

Test(selection, by_traffic_and_connect)
{
	long port;

	observe_traffic();
	client = actor_start("miredo");
	actor_do(client, "socket4");
	port = actor_do(client, "connect 3544");
	expect_event(obs, TEREDO_PORT_ADDED, (uint16_t)port, NULL);
}

/* Traffic alone is not an identity: a process of another name sending to 3544. */
Test(selection, traffic_narrows_the_name)
{
	observe_traffic();
	other = actor_start("not-miredo");
	actor_do(other, "socket4");
	actor_do(other, "sendto 3544");
	expect_quiet(obs, 300);
}

/* Every pair of selectors: meeting one but not the other is not enough. */
Test(selection, pid_and_cgroup_both_must_hold)
{
	struct teredo_selection *o;
	long port;

	need_root();
	make_test_cgroup();
	client = actor_start("miredo");
	other = actor_start("miredo");
	move_into_cgroup(cgroup_dir, other->pid); /* in the cgroup, but not the pid */
	o = new_selection();
	cr_assert_eq(teredo_selection_set_pid(o, client->pid),
		     0); /* the pid, but not in the cgroup */
	cr_assert_eq(teredo_selection_set_cgroup(o, test_cgroup()), 0, "%s",
		     teredo_observer_last_error());
	obs = observe(o, 0);
	actor_new_bound(client, "socket4");
	actor_new_bound(other, "socket4");
	expect_quiet(obs, 300);
	move_into_cgroup(cgroup_dir, client->pid);
	port = actor_new_bound(client, "socket4");
	expect_event(obs, TEREDO_PORT_ADDED, (uint16_t)port, NULL);
}

Test(selection, name_and_pid_both_must_hold)
{
	struct teredo_selection *o;

	client = actor_start("not-miredo");
	o = new_selection();
	cr_assert_eq(teredo_selection_set_pid(o, client->pid), 0);
	obs = observe(o, 0);
	actor_new_bound(client, "socket4");
	expect_quiet(obs, 300);
}

Test(selection, traffic_and_pid_both_must_hold)
{
	struct teredo_selection *o;
	long port;

	client = actor_start("miredo");
	other = actor_start("miredo");
	o = new_selection();
	cr_assert_eq(teredo_selection_set_pid(o, client->pid), 0);
	teredo_selection_set_match_traffic(o, true);
	obs = observe(o, 0);
	actor_do(other, "socket4");
	actor_do(other, "sendto 3544");	    /* traffic, not the pid */
	actor_new_bound(client, "socket4"); /* the pid, no traffic */
	expect_quiet(obs, 300);
	port = actor_do(client, "sendto 3544");
	expect_event(obs, TEREDO_PORT_ADDED, (uint16_t)port, NULL);
}
