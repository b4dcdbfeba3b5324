// SPDX-License-Identifier: MIT
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "actor.h"
#include "observe.h"

void move_into_cgroup(const char *dir, pid_t pid)
{
	char procs[PATH_MAX + 32];
	FILE *f;

	snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
	f = fopen(procs, "w");
	cr_assert(f && fprintf(f, "%d\n", pid) > 0 && fclose(f) == 0, "cannot move %d into %s", pid,
		  dir);
}

void need_root(void)
{
	if (geteuid() != 0)
		cr_skip_test("needs root (CAP_BPF, CAP_PERFMON, CAP_NET_ADMIN): run as root");
}

static struct teredo_observer *open_observer(const struct teredo_selection *sel,
					     struct teredo_port_event *initial)
{
	struct teredo_observer *obs;
	int err;

	need_root();
	err = teredo_observer_new(sel, &obs);
	if (err == -EPERM || err == -EOPNOTSUPP)
		cr_skip_test("%s", teredo_observer_last_error());
	cr_assert_eq(err, 0, "teredo_observer_new: %s", teredo_observer_last_error());
	cr_assert(next_event(obs, initial, EVENT_TIMEOUT_MS), "no initial event");
	cr_assert_eq(initial->type, TEREDO_PORT_INITIAL, "first event is %s, not initial",
		     teredo_port_event_type_name(initial->type));
	return obs;
}

struct teredo_observer *observe(const struct teredo_selection *sel, uint16_t initial_port)
{
	struct teredo_port_event ev;
	struct teredo_observer *obs = open_observer(sel, &ev);

	cr_assert_eq(ev.port, initial_port, "initial port %u, expected %u", ev.port, initial_port);
	return obs;
}

struct teredo_observer *observe_any_initial(const struct teredo_selection *sel)
{
	struct teredo_port_event ev;

	return open_observer(sel, &ev);
}

static long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool next_event(struct teredo_observer *obs, struct teredo_port_event *ev, int timeout_ms)
{
	long deadline = now_ms() + timeout_ms;
	struct pollfd pfd = { .fd = teredo_observer_get_fd(obs), .events = POLLIN };

	for (;;) {
		int n = teredo_observer_receive(obs, ev);
		long left = deadline - now_ms();

		cr_assert_geq(n, 0, "receive: %s", teredo_observer_last_error());
		if (n == 1)
			return true;
		if (left <= 0)
			return false;
		poll(&pfd, 1, (int)left);
	}
}

void expect_event(struct teredo_observer *obs, enum teredo_port_event_type type, uint16_t port,
		  struct teredo_port_event *out)
{
	struct teredo_port_event ev;

	cr_assert(next_event(obs, &ev, EVENT_TIMEOUT_MS), "expected %s port %u, got nothing",
		  teredo_port_event_type_name(type), port);
	cr_assert(ev.type == type && ev.port == port, "expected %s port %u, got %s port %u",
		  teredo_port_event_type_name(type), port, teredo_port_event_type_name(ev.type),
		  ev.port);
	if (out)
		*out = ev;
}

void expect_quiet(struct teredo_observer *obs, int ms)
{
	struct teredo_port_event ev;

	cr_assert_not(next_event(obs, &ev, ms), "unexpected %s port %u (pid %d comm %s)",
		      teredo_port_event_type_name(ev.type), ev.port, ev.pid, ev.comm);
}

uint32_t own_netns(void)
{
	struct stat st;

	cr_assert_eq(stat("/proc/self/ns/net", &st), 0);
	return (uint32_t)st.st_ino;
}

struct teredo_observer *obs;
struct actor *client, *other;
static struct teredo_selection *selections[8];

struct teredo_selection *new_selection(void)
{
	struct teredo_selection *sel = teredo_selection_new();
	size_t i = 0;

	cr_assert_not_null(sel, "%s", teredo_observer_last_error());
	while (i < sizeof(selections) / sizeof(selections[0]) && selections[i])
		i++;
	cr_assert_lt(i, sizeof(selections) / sizeof(selections[0]), "more selections than kept");
	selections[i] = sel;
	return sel;
}

void fixture_teardown(void)
{
	for (size_t i = 0; i < sizeof(selections) / sizeof(selections[0]); i++) {
		teredo_selection_free(selections[i]);
		selections[i] = NULL;
	}
	actor_kill(client);
	actor_kill(other);
	client = other = NULL;
	teredo_observer_free(obs);
	obs = NULL;
}
