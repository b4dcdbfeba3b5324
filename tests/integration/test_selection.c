// SPDX-License-Identifier: MIT
/* The other ways to say what the Teredo client is: names, pid, cgroup, traffic. */
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

static void bystander_binds(void)
{
	other = actor_start("bystander");
	actor_new_bound(other, "socket4");
}

Test(selection, other_names)
{
	struct teredo_options o;
	long port;

	teredo_options_init(&o);
	o.n_comms = 0;
	cr_assert_eq(teredo_options_add_comm(&o, "teredo-client"), 0);
	obs = observe(&o, 0);
	other = actor_start("miredo");
	actor_new_bound(other, "socket4");
	client = actor_start("teredo-client");
	port = actor_new_bound(client, "socket4");
	expect_only_client(port);
}

Test(selection, by_pid_and_its_children)
{
	struct teredo_options o;
	long port;

	client = actor_start("anyname");
	teredo_options_init(&o);
	o.n_comms = 0;
	o.pid = client->pid;
	obs = observe(&o, 0);
	bystander_binds();
	port = actor_new_bound(client, "socket4");
	expect_only_client(port);
	actor_do(client, "close");
	expect_event(obs, TEREDO_PORT_DELETED, 0, NULL);
}

/* miredo's pidfile names the parent; the worker, its child, owns the socket. */
Test(selection, by_pid_covers_its_children)
{
	struct teredo_options o;
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
		prctl(PR_SET_NAME, "some-parent");
		/* Wait for the observer, then let a child bind. */
		if (read(0, &port, 0) < 0 || kill(getpid(), SIGSTOP))
			_exit(1);
		if (fork() == 0) {
			struct sockaddr_in a = { .sin_family = AF_INET };
			socklen_t len = sizeof(a);
			int fd = socket(AF_INET, SOCK_DGRAM, 0);

			prctl(PR_SET_PDEATHSIG, SIGKILL);
			prctl(PR_SET_NAME, "some-worker");
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
	teredo_options_init(&o);
	o.n_comms = 0;
	o.pid = parent;
	obs = observe(&o, 0);
	waitpid(parent, NULL, WUNTRACED);
	kill(parent, SIGCONT);
	cr_assert_eq(read(ports[0], &port, sizeof(port)), (ssize_t)sizeof(port));
	expect_event(obs, TEREDO_PORT_ADDED, port, NULL);
	kill(-parent, SIGKILL);
	kill(parent, SIGKILL);
	waitpid(parent, NULL, 0);
}

Test(selection, by_cgroup)
{
	struct teredo_options o;
	char root[PATH_MAX - 64], procs[PATH_MAX + 32];
	long port;
	FILE *f;

	need_root();
	cr_assert_eq(cgroup2_mount_point(root, sizeof(root)), 0, "%s",
		     teredo_observer_last_error());
	snprintf(cgroup_dir, sizeof(cgroup_dir), "%s/teredo-test-%d", root, getpid());
	cr_assert_eq(mkdir(cgroup_dir, 0755), 0, "mkdir %s: %s", cgroup_dir, strerror(errno));
	client = actor_start("anyname");
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", cgroup_dir);
	f = fopen(procs, "w");
	cr_assert(f && fprintf(f, "%d\n", client->pid) > 0 && fclose(f) == 0,
		  "cannot move the actor into %s", cgroup_dir);
	teredo_options_init(&o);
	o.n_comms = 0;
	o.cgroup = cgroup_dir;
	obs = observe(&o, 0);
	bystander_binds();
	port = actor_new_bound(client, "socket6");
	expect_only_client(port);
	actor_kill(client);
	client = NULL;
	expect_event(obs, TEREDO_PORT_DELETED, 0, NULL);
}

Test(selection, bad_cgroup_is_one_clear_error)
{
	struct teredo_options o;
	struct teredo_observer *o2 = NULL;

	need_root();
	teredo_options_init(&o);
	o.cgroup = "/no/such/cgroup";
	cr_assert_lt(teredo_observer_new(&o, &o2), 0);
	cr_assert_null(o2);
	cr_assert(strstr(teredo_observer_last_error(), "/no/such/cgroup"), "%s",
		  teredo_observer_last_error());
}

Test(selection, by_traffic_to_port_3544)
{
	struct teredo_options o;
	long port;

	teredo_options_init(&o);
	o.n_comms = 0;
	o.match_traffic = true;
	obs = observe(&o, 0);
	bystander_binds();
	actor_do(other, "sendto 3545");
	client = actor_start("anyname");
	actor_do(client, "socket4");
	/* Loopback only: nothing listens on 127.0.0.1:3544 and nothing leaves the host. */
	port = actor_do(client, "sendto 3544");
	expect_only_client(port);
	actor_do(client, "close");
	expect_event(obs, TEREDO_PORT_DELETED, 0, NULL);
}

Test(selection, by_traffic_after_explicit_bind)
{
	struct teredo_options o;
	long port;

	teredo_options_init(&o);
	o.n_comms = 0;
	o.match_traffic = true;
	obs = observe(&o, 0);
	client = actor_start("anyname");
	port = actor_new_bound(client, "socket6");
	actor_do(client, "sendto 3544");
	expect_event(obs, TEREDO_PORT_ADDED, (uint16_t)port, NULL);
}
