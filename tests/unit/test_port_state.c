// SPDX-License-Identifier: MIT
/* The state machine, fed hand-made records: pure logic, no kernel. */
#include <criterion/criterion.h>
#include <string.h>

#include "port_state.h"

static struct port_state st;

/* What the state machine said, in order. */
static struct teredo_port_event notes[256];
static int n_notes;

static int collect(void *ctx, const struct teredo_port_event *note)
{
	(void)ctx;
	cr_assert_lt(n_notes, 256);
	notes[n_notes++] = *note;
	return 0;
}

static void setup(void)
{
	port_state_init(&st);
	n_notes = 0;
}

static void teardown(void)
{
	port_state_fini(&st);
}

TestSuite(port_state, .init = setup, .fini = teardown);

static struct teredo_event rec_in(int kind, uint64_t cookie, uint16_t port, uint32_t netns)
{
	struct teredo_event ev = {
		.kind = kind, .cookie = cookie, .port = port, .family = 2, .netns = netns
	};

	ev.pid = 100 + (uint32_t)cookie;
	strcpy(ev.comm, "miredo");
	return ev;
}

static struct teredo_event rec(int kind, uint64_t cookie, uint16_t port)
{
	return rec_in(kind, cookie, port, 7);
}

/* Apply a record; 1 and the note when it made one, 0 when it made none. */
static int feed_in(int kind, uint64_t cookie, uint16_t port, uint32_t netns,
		   struct teredo_port_event *note)
{
	struct teredo_event ev = rec_in(kind, cookie, port, netns);
	int before = n_notes;

	cr_assert_eq(port_state_apply(&st, &ev, collect, NULL), 0);
	cr_assert_leq(n_notes - before, 1, "one record, at most one notification");
	if (n_notes == before)
		return 0;
	*note = notes[n_notes - 1];
	return 1;
}

static int feed(int kind, uint64_t cookie, uint16_t port, struct teredo_port_event *note)
{
	return feed_in(kind, cookie, port, 7, note);
}

static int replace(const struct teredo_event *snap, size_t n, struct teredo_port_event *note)
{
	int before = n_notes;

	cr_assert_eq(port_state_replace(&st, snap, n, collect, NULL), 0);
	if (n_notes == before)
		return 0;
	*note = notes[n_notes - 1];
	return n_notes - before;
}

Test(port_state, starts_empty)
{
	struct teredo_port_event note;

	port_state_initial(&st, &note);
	cr_assert_eq(note.type, TEREDO_PORT_INITIAL);
	cr_assert_eq(note.port, 0);
	cr_assert_null(port_state_current(&st));
}

Test(port_state, first_bind_adds)
{
	struct teredo_port_event note;

	cr_assert_eq(feed(TEREDO_EVENT_BOUND, 1, 40000, &note), 1);
	cr_assert_eq(note.type, TEREDO_PORT_ADDED);
	cr_assert_eq(note.port, 40000);
	cr_assert_eq(note.old_port, 0);
	cr_assert_eq(note.pid, 101);
	cr_assert_str_eq(note.comm, "miredo");
}

Test(port_state, release_of_last_deletes)
{
	struct teredo_port_event note;

	feed(TEREDO_EVENT_BOUND, 1, 40000, &note);
	cr_assert_eq(feed(TEREDO_EVENT_RELEASED, 1, 40000, &note), 1);
	cr_assert_eq(note.type, TEREDO_PORT_DELETED);
	cr_assert_eq(note.port, 0);
	cr_assert_eq(note.old_port, 40000);
}

Test(port_state, newer_socket_changes_port)
{
	struct teredo_port_event note;

	feed(TEREDO_EVENT_BOUND, 1, 40000, &note);
	cr_assert_eq(feed(TEREDO_EVENT_BOUND, 2, 41000, &note), 1);
	cr_assert_eq(note.type, TEREDO_PORT_CHANGED);
	cr_assert_eq(note.port, 41000);
	cr_assert_eq(note.old_port, 40000);
	/* The old one going away changes nothing: the new one is current. */
	cr_assert_eq(feed(TEREDO_EVENT_RELEASED, 1, 40000, &note), 0);
	cr_assert_eq(port_state_current(&st)->bound.port, 41000);
}

Test(port_state, release_of_current_falls_back_to_older)
{
	struct teredo_port_event note;

	feed(TEREDO_EVENT_BOUND, 1, 40000, &note);
	feed(TEREDO_EVENT_BOUND, 2, 41000, &note);
	cr_assert_eq(feed(TEREDO_EVENT_RELEASED, 2, 41000, &note), 1);
	cr_assert_eq(note.type, TEREDO_PORT_CHANGED);
	cr_assert_eq(note.port, 40000);
	cr_assert_eq(note.old_port, 41000);
}

Test(port_state, same_port_twice_is_one_port)
{
	struct teredo_port_event note;

	feed(TEREDO_EVENT_BOUND, 1, 40000, &note);
	cr_assert_eq(feed(TEREDO_EVENT_BOUND, 2, 40000, &note), 0, "v4 and v6 on one port");
	cr_assert_eq(feed(TEREDO_EVENT_RELEASED, 2, 40000, &note), 0);
	cr_assert_eq(feed(TEREDO_EVENT_RELEASED, 1, 40000, &note), 1);
	cr_assert_eq(note.type, TEREDO_PORT_DELETED);
}

Test(port_state, duplicate_record_is_idempotent)
{
	struct teredo_port_event note;

	feed(TEREDO_EVENT_BOUND, 1, 40000, &note);
	cr_assert_eq(feed(TEREDO_EVENT_BOUND, 1, 40000, &note), 0);
	cr_assert_eq(st.n, 1);
}

Test(port_state, same_socket_on_new_port_changes)
{
	struct teredo_port_event note;

	feed(TEREDO_EVENT_BOUND, 1, 40000, &note);
	cr_assert_eq(feed(TEREDO_EVENT_BOUND, 1, 42000, &note), 1);
	cr_assert_eq(note.type, TEREDO_PORT_CHANGED);
	cr_assert_eq(note.port, 42000);
	cr_assert_eq(st.n, 1);
}

/* The service's cached GetState reply is made again when this moves. */
Test(port_state, every_change_is_counted)
{
	struct teredo_port_event note;
	uint64_t seen = st.changes;

	feed(TEREDO_EVENT_BOUND, 1, 40000, &note);
	cr_assert_gt(st.changes, seen, "a bind");
	seen = st.changes;
	feed(TEREDO_EVENT_BOUND, 1, 42000, &note);
	cr_assert_gt(st.changes, seen, "the same socket on a new port");
	seen = st.changes;
	feed(TEREDO_EVENT_RELEASED, 1, 42000, &note);
	cr_assert_gt(st.changes, seen, "a release");
	seen = st.changes;
	replace(NULL, 0, &note);
	cr_assert_gt(st.changes, seen, "a snapshot");
}

Test(port_state, unknown_release_is_ignored)
{
	struct teredo_port_event note;

	cr_assert_eq(feed(TEREDO_EVENT_RELEASED, 9, 40000, &note), 0);
	cr_assert_eq(feed(99, 9, 40000, &note), 0, "unknown kinds are ignored");
}

Test(port_state, replace_removes_missing_and_adds_new)
{
	struct teredo_port_event note;
	struct teredo_event snap[2] = { rec(TEREDO_EVENT_BOUND, 2, 41000),
					rec(TEREDO_EVENT_BOUND, 3, 43000) };

	feed(TEREDO_EVENT_BOUND, 1, 40000, &note);
	cr_assert_eq(replace(snap, 2, &note), 1);
	cr_assert_eq(note.type, TEREDO_PORT_CHANGED);
	cr_assert_eq(note.old_port, 40000);
	cr_assert_eq(st.n, 2);
	cr_assert_eq(port_state_current(&st)->bound.port, note.port);
}

Test(port_state, replace_with_nothing_deletes)
{
	struct teredo_port_event note;

	feed(TEREDO_EVENT_BOUND, 1, 40000, &note);
	cr_assert_eq(replace(NULL, 0, &note), 1);
	cr_assert_eq(note.type, TEREDO_PORT_DELETED);
	cr_assert_eq(note.old_port, 40000);
	cr_assert_eq(note.cookie, 1);
}

Test(port_state, replace_keeps_order_of_survivors)
{
	struct teredo_port_event note;
	struct teredo_event snap[2] = { rec(TEREDO_EVENT_BOUND, 2, 41000),
					rec(TEREDO_EVENT_BOUND, 1, 40000) };

	feed(TEREDO_EVENT_BOUND, 1, 40000, &note);
	feed(TEREDO_EVENT_BOUND, 2, 41000, &note);
	cr_assert_eq(replace(snap, 2, &note), 0);
	cr_assert_eq(port_state_current(&st)->bound.port, 41000);
}

Test(port_state, many_sockets_grow)
{
	struct teredo_port_event note;

	for (uint64_t i = 1; i <= 100; i++)
		feed(TEREDO_EVENT_BOUND, i, (uint16_t)(20000 + i), &note);
	cr_assert_eq(st.n, 100);
	cr_assert_eq(port_state_current(&st)->bound.port, 20100);
	for (uint64_t i = 100; i >= 2; i--)
		feed(TEREDO_EVENT_RELEASED, i, 0, &note);
	cr_assert_eq(port_state_current(&st)->bound.port, 20001);
}

Test(port_state, namespaces_are_separate_computers)
{
	struct teredo_port_event note;

	cr_assert_eq(feed_in(TEREDO_EVENT_BOUND, 1, 40000, 100, &note), 1);
	cr_assert_eq(note.type, TEREDO_PORT_ADDED);
	cr_assert_eq(note.netns, 100);
	/* Another namespace's client appearing is an add there, not a change here. */
	cr_assert_eq(feed_in(TEREDO_EVENT_BOUND, 2, 41000, 200, &note), 1);
	cr_assert_eq(note.type, TEREDO_PORT_ADDED);
	cr_assert_eq(note.netns, 200);
	cr_assert_eq(note.old_port, 0);
	/* And the first one stopping is a delete there, whatever runs elsewhere. */
	cr_assert_eq(feed_in(TEREDO_EVENT_RELEASED, 1, 40000, 100, &note), 1);
	cr_assert_eq(note.type, TEREDO_PORT_DELETED);
	cr_assert_eq(note.netns, 100);
	cr_assert_eq(note.old_port, 40000);
	cr_assert_eq(port_state_current(&st)->bound.port, 41000);
}

Test(port_state, replace_reports_each_namespace)
{
	struct teredo_port_event note;
	struct teredo_event snap[1] = { rec_in(TEREDO_EVENT_BOUND, 3, 43000, 200) };

	feed_in(TEREDO_EVENT_BOUND, 1, 40000, 100, &note);
	feed_in(TEREDO_EVENT_BOUND, 2, 41000, 200, &note);
	n_notes = 0;
	cr_assert_eq(replace(snap, 1, &note), 2);
	cr_assert_eq(notes[0].type, TEREDO_PORT_DELETED);
	cr_assert_eq(notes[0].netns, 100);
	cr_assert_eq(notes[0].old_port, 40000);
	cr_assert_eq(notes[1].type, TEREDO_PORT_CHANGED);
	cr_assert_eq(notes[1].netns, 200);
	cr_assert_eq(notes[1].port, 43000);
	cr_assert_eq(notes[1].old_port, 41000);
}

Test(port_state, release_is_known_by_cookie_alone)
{
	struct teredo_port_event note;

	feed_in(TEREDO_EVENT_BOUND, 1, 40000, 100, &note);
	/* The kernel may not know the namespace at release (connect autobind). */
	cr_assert_eq(feed_in(TEREDO_EVENT_RELEASED, 1, 0, 0, &note), 1);
	cr_assert_eq(note.type, TEREDO_PORT_DELETED);
	cr_assert_eq(note.old_port, 40000);
	cr_assert_eq(note.netns, 100, "the namespace is the socket's, as it was bound");
}

/* --all-netns at start: every namespace's port, not just the most recent one. */
Test(port_state, each_netns_tells_every_namespace_once)
{
	struct teredo_port_event note;

	feed_in(TEREDO_EVENT_BOUND, 1, 40000, 100, &note);
	feed_in(TEREDO_EVENT_BOUND, 2, 41000, 200, &note);
	feed_in(TEREDO_EVENT_BOUND, 3, 42000, 100, &note);
	n_notes = 0;
	cr_assert_eq(port_state_each_netns(&st, collect, NULL), 0);
	cr_assert_eq(n_notes, 2, "two namespaces, one note each");
	for (int i = 0; i < 2; i++) {
		cr_assert_eq(notes[i].type, TEREDO_PORT_INITIAL);
		cr_assert_eq(notes[i].port, notes[i].netns == 100 ? 42000 : 41000,
			     "namespace %u: its most recent holder's port", notes[i].netns);
		cr_assert_eq(notes[i].pid, notes[i].netns == 100 ? 103 : 102);
	}
	cr_assert_neq(notes[0].netns, notes[1].netns);
	port_state_fini(&st);
	port_state_init(&st);
	n_notes = 0;
	cr_assert_eq(port_state_each_netns(&st, collect, NULL), 0);
	cr_assert_eq(n_notes, 0, "no namespace has a port");
}
