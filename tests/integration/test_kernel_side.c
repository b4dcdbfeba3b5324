// SPDX-License-Identifier: MIT
/*
 * The kernel side against the running kernel: real BPF programs, real
 * sockets in real processes (udp-actor), every way a Teredo port is taken
 * and let go, and nothing else leaking in. Run one test at a time (-j1):
 * every observer sees every process named miredo in its namespace.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <poll.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "actor.h"
#include "observe.h"

#define TEREDO_SERVER_PORT 3544

TestSuite(kernel, .fini = fixture_teardown, .timeout = 60);

static struct teredo_observer *observe_default(uint16_t initial)
{
	struct teredo_selection *o;

	o = new_selection();
	return observe(o, initial);
}

/* A port nobody holds right now, for the fixed-port cases. */
static uint16_t free_port(void)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_DGRAM, 0);

	cr_assert(fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
	cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	close(fd);
	return ntohs(a.sin_port);
}

static void bind_then_close(const char *socket_cmd, long port_asked)
{
	struct teredo_port_event ev;
	long port;

	obs = observe_default(0);
	client = actor_start("miredo");
	actor_do(client, "%s", socket_cmd);
	port = actor_do(client, "bind %ld", port_asked);
	cr_assert(port > 0);
	if (port_asked)
		cr_assert_eq(port, port_asked);
	expect_event(obs, TEREDO_PORT_ADDED, (uint16_t)port, &ev);
	cr_assert_eq(ev.pid, client->pid);
	cr_assert_str_eq(ev.comm, "miredo");
	cr_assert_eq(ev.netns, own_netns());
	cr_assert_eq(ev.family, socket_cmd[6] == '6' ? AF_INET6 : AF_INET);
	cr_assert_neq(ev.ktime_ns, 0);
	cr_assert_eq(ev.cookie, (uint64_t)actor_do(client, "cookie"),
		     "socket identity is SO_COOKIE");
	actor_do(client, "close");
	expect_event(obs, TEREDO_PORT_DELETED, 0, &ev);
	cr_assert_eq(ev.old_port, port);
}

Test(kernel, bind_ephemeral_ipv4)
{
	bind_then_close("socket4", 0);
}

Test(kernel, bind_fixed_ipv4)
{
	bind_then_close("socket4", free_port());
}

Test(kernel, bind_ephemeral_ipv6_dual_stack)
{
	bind_then_close("socket6", 0);
}

Test(kernel, bind_fixed_ipv6_only)
{
	obs = observe_default(0);
	client = actor_start("miredo");
	actor_do(client, "socket6");
	actor_do(client, "v6only 1");
	uint16_t port = free_port();
	cr_assert_eq(actor_do(client, "bind %u", port), port);
	expect_event(obs, TEREDO_PORT_ADDED, port, NULL);
}

/* to_port: a loopback port nobody listens on, so the datagram is simply dropped. */
static void autobind(const char *socket_cmd, const char *how, unsigned int to_port)
{
	struct teredo_port_event ev;
	long port;

	obs = observe_default(0);
	client = actor_start("miredo");
	actor_do(client, "%s", socket_cmd);
	port = actor_do(client, "%s %u", how, to_port);
	cr_assert(port > 0);
	expect_event(obs, TEREDO_PORT_ADDED, (uint16_t)port, &ev);
	cr_assert_eq(ev.pid, client->pid);
	actor_do(client, "close");
	expect_event(obs, TEREDO_PORT_DELETED, 0, NULL);
}

Test(kernel, autobind_sendto_ipv4)
{
	autobind("socket4", "sendto", free_port());
}

Test(kernel, autobind_sendmsg_ipv6)
{
	autobind("socket6", "sendmsg", free_port());
}

Test(kernel, autobind_connect_ipv4)
{
	/* connect() to a Teredo server: 127.0.0.1:3544, where nothing listens. */
	autobind("socket4", "connect", TEREDO_SERVER_PORT);
}

Test(kernel, autobind_connect_ipv6)
{
	autobind("socket6", "connect", TEREDO_SERVER_PORT);
}

/*
 * glibc's resolver connect()s a UDP socket to the DNS server: in a process
 * named miredo that is not the Teredo port, nor a send on it.
 */
Test(kernel, client_socket_connected_elsewhere_is_not_teredo)
{
	long port;

	obs = observe_default(0);
	client = actor_start("miredo");
	actor_do(client, "socket4");
	actor_do(client, "connect %u", free_port());
	actor_do(client, "send");
	actor_do(client, "socket6");
	actor_do(client, "connect %u", free_port());
	actor_do(client, "close");
	port = actor_new_bound(client, "socket4");
	/* Had either connected socket come through, it would come first. */
	expect_event(obs, TEREDO_PORT_ADDED, (uint16_t)port, NULL);
}

Test(kernel, later_sends_report_nothing_more)
{
	long port;

	obs = observe_default(0);
	client = actor_start("miredo");
	port = actor_new_bound(client, "socket4");
	expect_event(obs, TEREDO_PORT_ADDED, (uint16_t)port, NULL);
	for (int i = 0; i < 20; i++)
		cr_assert_eq(actor_do(client, "sendto %u", free_port()), port);
	actor_do(client, "close");
	expect_event(obs, TEREDO_PORT_DELETED, 0, NULL);
}

Test(kernel, closed_then_new_socket)
{
	long first, second;

	obs = observe_default(0);
	client = actor_start("miredo");
	first = actor_new_bound(client, "socket4");
	expect_event(obs, TEREDO_PORT_ADDED, (uint16_t)first, NULL);
	actor_do(client, "close");
	expect_event(obs, TEREDO_PORT_DELETED, 0, NULL);
	second = actor_new_bound(client, "socket6");
	expect_event(obs, TEREDO_PORT_ADDED, (uint16_t)second, NULL);
}

Test(kernel, new_socket_while_old_open_changes_port)
{
	struct teredo_port_event ev;
	long first, second;

	obs = observe_default(0);
	client = actor_start("miredo");
	other = actor_start("miredo");
	first = actor_new_bound(client, "socket4");
	expect_event(obs, TEREDO_PORT_ADDED, (uint16_t)first, NULL);
	second = actor_new_bound(other, "socket4");
	expect_event(obs, TEREDO_PORT_CHANGED, (uint16_t)second, &ev);
	cr_assert_eq(ev.old_port, first);
}

static void released_by_death(bool by_exit)
{
	long port;

	obs = observe_default(0);
	client = actor_start("miredo");
	port = actor_new_bound(client, "socket4");
	expect_event(obs, TEREDO_PORT_ADDED, (uint16_t)port, NULL);
	if (by_exit)
		actor_exit(client);
	else
		actor_kill(client);
	client = NULL;
	expect_event(obs, TEREDO_PORT_DELETED, 0, NULL);
}

Test(kernel, released_on_exit)
{
	released_by_death(true);
}

Test(kernel, released_on_sigkill)
{
	released_by_death(false);
}

/*
 * The socket P is held elsewhere after the client's close. A marker socket Q
 * shows no delete came (CHANGED to Q, not DELETED first); closing Q shows P is
 * still tracked (CHANGED back to P); killing the holder finally deletes.
 */
static void held_elsewhere(const char *share_cmd)
{
	long port, marker, holder;

	obs = observe_default(0);
	client = actor_start("miredo");
	other = actor_start("miredo");
	port = actor_new_bound(client, "socket4");
	expect_event(obs, TEREDO_PORT_ADDED, (uint16_t)port, NULL);
	holder = actor_do(client, "%s", share_cmd);
	actor_do(client, "close");
	marker = actor_new_bound(other, "socket4");
	expect_event(obs, TEREDO_PORT_CHANGED, (uint16_t)marker, NULL);
	actor_do(other, "close");
	expect_event(obs, TEREDO_PORT_CHANGED, (uint16_t)port, NULL);
	kill_and_wait((pid_t)holder);
	expect_event(obs, TEREDO_PORT_DELETED, 0, NULL);
}

Test(kernel, shared_by_fork_lives_until_last_reference)
{
	held_elsewhere("fork");
}

Test(kernel, passed_by_scm_rights_lives_until_last_reference)
{
	held_elsewhere("pass");
}

Test(kernel, other_processes_ignored)
{
	long port;

	obs = observe_default(0);
	other = actor_start("bystander");
	actor_new_bound(other, "socket4");
	actor_do(other, "sendto %u", free_port());
	actor_do(other, "socket6");
	actor_do(other, "connect %u", free_port());
	actor_do(other, "close");
	client = actor_start("miredo");
	port = actor_new_bound(client, "socket4");
	/* Had anything of the bystander's come through, it would come first. */
	expect_event(obs, TEREDO_PORT_ADDED, (uint16_t)port, NULL);
}

Test(kernel, port_3544_is_never_the_teredo_port)
{
	long port;

	obs = observe_default(0);
	client = actor_start("miredo");
	actor_do(client, "socket4");
	if (actor_do(client, "bind 3544") != 3544)
		cr_assert_fail("could not bind 3544");
	port = actor_new_bound(client, "socket4");
	expect_event(obs, TEREDO_PORT_ADDED, (uint16_t)port, NULL);
}

Test(kernel, client_started_before_observer)
{
	struct teredo_port_event ev;
	long port;

	client = actor_start("miredo");
	port = actor_new_bound(client, "socket6");
	obs = observe_default((uint16_t)port);
	cr_assert_eq(teredo_observer_current_port(obs), port);
	actor_do(client, "close");
	expect_event(obs, TEREDO_PORT_DELETED, 0, &ev);
	cr_assert_eq(ev.old_port, port);
}

Test(kernel, other_netns_ignored_by_default)
{
	long port;

	obs = observe_default(0);
	other = actor_start("miredo");
	actor_do(other, "netns");
	actor_new_bound(other, "socket4");
	client = actor_start("miredo");
	port = actor_new_bound(client, "socket4");
	expect_event(obs, TEREDO_PORT_ADDED, (uint16_t)port, NULL);
}

Test(kernel, other_netns_seen_with_all_netns)
{
	struct teredo_selection *o;
	struct teredo_port_event ev;
	long port;

	o = new_selection();
	teredo_selection_set_all_netns(o, true);
	/*
	 * Every namespace includes those of a Teredo client the host may be
	 * running: only this test's children are its client.
	 */
	cr_assert_eq(teredo_selection_set_pid(o, getpid()), 0);
	obs = observe_any_initial(o);
	client = actor_start("miredo");
	actor_do(client, "netns");
	port = actor_new_bound(client, "socket4");
	expect_event(obs, TEREDO_PORT_ADDED, (uint16_t)port, &ev);
	cr_assert_neq(ev.netns, own_netns(), "the event names the client's namespace");
	cr_assert_neq(ev.netns, 0);
}

Test(kernel, ring_overflow_then_correct_state)
{
	struct teredo_selection *o;
	struct teredo_port_event ev;
	long survivor;

	o = new_selection();
	cr_assert_eq(teredo_selection_set_ring_bytes(o, 4096), 0); /* about 60 records */
	obs = observe(o, 0);
	client = actor_start("miredo");
	actor_do(client, "socket4");
	/* 2000 binds and 1999 closes while nobody reads: the ring must overflow. */
	survivor = actor_do(client, "storm 2000");
	while (next_event(obs, &ev, 500))
		;
	cr_assert_gt(teredo_observer_resyncs(obs), 0, "no loss was noticed");
	cr_assert_eq(teredo_observer_current_port(obs), survivor,
		     "after the storm the state says %u, the kernel %ld",
		     teredo_observer_current_port(obs), survivor);
	cr_assert_eq(ev.port, survivor, "the last event says %u, the kernel %ld", ev.port,
		     survivor);
	actor_do(client, "close");
	expect_event(obs, TEREDO_PORT_DELETED, 0, NULL);
}

/* Kernel time the process has used, in clock ticks (/proc/PID/stat, field 15). */
static long system_ticks(pid_t pid)
{
	char path[64];
	long stime = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	cr_assert_not_null(f);
	cr_assert_eq(
		fscanf(f, "%*d %*s %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %ld", &stime),
		1);
	fclose(f);
	return stime;
}

static bool port_taken(uint16_t port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	bool taken;

	cr_assert(fd >= 0);
	taken = bind(fd, (struct sockaddr *)&a, sizeof(a)) && errno == EADDRINUSE;
	close(fd);
	return taken;
}

/*
 * Until pid's bind() is held in the kernel with port assigned: it spends
 * 50 ms of kernel time there first (a probe bind before its own would take
 * the port from it), then the port is seen taken.
 */
static void wait_until_held(pid_t pid, uint16_t port)
{
	long start = system_ticks(pid);

	for (int i = 0; i < EVENT_TIMEOUT_MS && system_ticks(pid) < start + 5; i++)
		usleep(1000);
	cr_assert(port_taken(port), "port %u is not held by a bind in the kernel", port);
}

static bool answered(struct actor *a)
{
	struct pollfd p = { .fd = fileno(a->from), .events = POLLIN };

	return poll(&p, 1, 0) > 0;
}

/*
 * One try at the race: client binds port, held in the kernel, while a loss
 * forces a snapshot. False when the bind returned before the snapshot ran
 * (a loaded machine): nothing was forced, try again.
 */
static bool snapshot_inside_a_held_bind(uint16_t port)
{
	struct teredo_port_event ev;
	char line[64];
	bool forced;

	client = actor_start("miredo");
	other = actor_start("miredo");
	actor_do(client, "socket4");
	actor_do(other, "socket4");
	fprintf(client->to, "bind %u\n", port);
	fflush(client->to);
	wait_until_held(client->pid, port); /* between the port and the registry */
	actor_do(other, "storm 150");	    /* the ring overflows: the next read rescans */
	while (next_event(obs, &ev, 100))
		;
	forced = !answered(client);
	cr_assert(fgets(line, sizeof(line), client->from), "udp-actor gave no answer");
	cr_assert_eq(atoi(line + 5), port, "udp-actor said: %s", line);
	actor_exit(other);
	other = NULL;
	actor_do(client, "close");
	while (next_event(obs, &ev, 500))
		;
	actor_exit(client);
	client = NULL;
	return forced;
}

/*
 * Issue 16, item 6: a snapshot that runs while a client's bind() has its
 * port but has not reached the registry yet names the socket with a
 * synthetic cookie; the bind's own record must name it the same way, or
 * the one socket is two holders and its close leaves its port behind.
 */
Test(kernel, snapshot_during_a_bind_then_close_leaves_no_port)
{
	struct teredo_selection *o;
	uint16_t port = free_port();
	uint64_t resyncs = 0;
	char hold[32];
	bool forced = false;

	snprintf(hold, sizeof(hold), "%u:1500", port);
	cr_assert_eq(setenv("TEREDO_OBSERVER_TEST_HOLD_BIND", hold, 1), 0);
	o = new_selection();
	cr_assert_eq(teredo_selection_set_ring_bytes(o, 4096), 0); /* about 70 records */
	obs = observe(o, 0);
	unsetenv("TEREDO_OBSERVER_TEST_HOLD_BIND");
	for (int i = 0; i < 3 && !forced; i++) {
		forced = snapshot_inside_a_held_bind(port);
		cr_assert_gt(teredo_observer_resyncs(obs), resyncs, "no loss was noticed");
		resyncs = teredo_observer_resyncs(obs);
		cr_assert_eq(teredo_observer_current_port(obs), 0,
			     "the sockets are closed, the state still says port %u (the bound "
			     "port %u)",
			     teredo_observer_current_port(obs), port);
	}
	cr_assert(forced, "the bind always returned before the snapshot: no race forced");
}
