// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "grow.h"
#include "port_state.h"
#include "public.h"
#include "teredo_observer.h"

void port_state_init(struct port_state *st)
{
	memset(st, 0, sizeof(*st));
}

void port_state_fini(struct port_state *st)
{
	free(st->holders);
	memset(st, 0, sizeof(*st));
}

/* The most recent holder, in one namespace or (any_netns) in all. */
static const struct port_holder *latest(const struct port_state *st, bool any_netns, uint32_t netns)
{
	const struct port_holder *best = NULL;

	for (size_t i = 0; i < st->n; i++) {
		const struct port_holder *h = &st->holders[i];

		if ((any_netns || h->bound.netns == netns) && (!best || h->order > best->order))
			best = h;
	}
	return best;
}

const struct port_holder *port_state_current(const struct port_state *st)
{
	return latest(st, true, 0);
}

uint16_t port_state_current_port(const struct port_state *st)
{
	const struct port_holder *h = port_state_current(st);

	return h ? h->bound.port : 0;
}

static uint16_t port_in(const struct port_state *st, uint32_t netns)
{
	const struct port_holder *h = latest(st, false, netns);

	return h ? h->bound.port : 0;
}

static struct port_holder *find(struct port_state *st, uint64_t cookie)
{
	for (size_t i = 0; i < st->n; i++)
		if (st->holders[i].bound.cookie == cookie)
			return &st->holders[i];
	return NULL;
}

static int add_holder(struct port_state *st, const struct teredo_event *ev)
{
	if (grow_array(&st->holders, &st->cap, st->n + 1, sizeof(*st->holders)))
		return -ENOMEM;
	st->holders[st->n].bound = *ev;
	st->holders[st->n].order = st->next_order++;
	st->n++;
	return 0;
}

static void remove_holder(struct port_state *st, struct port_holder *h)
{
	*h = st->holders[--st->n];
}

static void fill_note(struct teredo_port_event *note, enum teredo_port_event_type type,
		      uint16_t port, uint16_t old_port, const struct teredo_event *detail)
{
	memset(note, 0, sizeof(*note));
	note->type = type;
	note->port = port;
	note->old_port = old_port;
	if (!detail)
		return;
	note->family = detail->family;
	note->pid = detail->pid;
	memcpy(note->comm, detail->comm, sizeof(note->comm));
	note->comm[sizeof(note->comm) - 1] = '\0';
	note->netns = detail->netns;
	note->ktime_ns = detail->ktime_ns;
	note->cookie = detail->cookie;
}

/*
 * Compare a namespace's port before and after a change and say what
 * happened; gone tells of the socket whose release emptied it.
 */
static int describe_change(const struct port_state *st, uint32_t netns, uint16_t before,
			   const struct teredo_event *gone, note_sink sink, void *ctx)
{
	const struct port_holder *now = latest(st, false, netns);
	uint16_t after = now ? now->bound.port : 0;
	struct teredo_port_event note;

	if (after == before)
		return 0;
	if (!after)
		fill_note(&note, TEREDO_PORT_DELETED, 0, before, gone);
	else
		fill_note(&note, before ? TEREDO_PORT_CHANGED : TEREDO_PORT_ADDED, after, before,
			  &now->bound);
	return sink(ctx, &note);
}

static int apply_bound(struct port_state *st, const struct teredo_event *ev)
{
	struct port_holder *h = find(st, ev->cookie);

	if (!h)
		return add_holder(st, ev);
	/* The same socket again (snapshot and ring overlap) changes nothing. */
	if (h->bound.port != ev->port) {
		h->bound = *ev;
		h->order = st->next_order++;
	}
	return 0;
}

/* A release names its socket by cookie only; the rest is what we knew of it. */
static int apply_released(struct port_state *st, const struct teredo_event *ev, note_sink sink,
			  void *ctx)
{
	struct port_holder *h = find(st, ev->cookie);
	struct teredo_event gone;
	uint16_t before;

	if (!h)
		return 0;
	/* Who let it go and when, about the socket as it was bound. */
	gone = h->bound;
	gone.pid = ev->pid;
	gone.ktime_ns = ev->ktime_ns;
	memcpy(gone.comm, ev->comm, sizeof(gone.comm));
	before = port_in(st, gone.netns);
	remove_holder(st, h);
	return describe_change(st, gone.netns, before, &gone, sink, ctx);
}

int port_state_apply(struct port_state *st, const struct teredo_event *ev, note_sink sink,
		     void *ctx)
{
	uint16_t before;
	int err;

	st->changes++;
	switch (ev->kind) {
	case TEREDO_EVENT_BOUND:
		before = port_in(st, ev->netns);
		err = apply_bound(st, ev);
		return err ? err : describe_change(st, ev->netns, before, ev, sink, ctx);
	case TEREDO_EVENT_RELEASED:
		return apply_released(st, ev, sink, ctx);
	}
	return 0;
}

/* What a namespace looked like before a snapshot replaced the state. */
struct netns_before {
	uint32_t netns;
	uint16_t port;
	struct teredo_event gone; /* the last of its sockets the snapshot lacks */
};

static struct netns_before *before_of(struct netns_before *list, size_t *n,
				      const struct port_state *st, uint32_t netns)
{
	for (size_t i = 0; i < *n; i++)
		if (list[i].netns == netns)
			return &list[i];
	list[*n] = (struct netns_before){ .netns = netns, .port = port_in(st, netns) };
	return &list[(*n)++];
}

static bool in_snapshot(const struct teredo_event *snap, size_t n, uint64_t cookie)
{
	for (size_t i = 0; i < n; i++)
		if (snap[i].cookie == cookie)
			return true;
	return false;
}

int port_state_replace(struct port_state *st, const struct teredo_event *snap, size_t n,
		       note_sink sink, void *ctx)
{
	struct netns_before *seen = calloc(st->n + n + 1, sizeof(*seen));
	size_t n_seen = 0, i = 0;
	int err = 0;

	if (!seen)
		return -ENOMEM;
	st->changes++;
	for (size_t k = 0; k < st->n; k++)
		before_of(seen, &n_seen, st, st->holders[k].bound.netns);
	for (size_t k = 0; k < n; k++)
		before_of(seen, &n_seen, st, snap[k].netns);
	while (i < st->n) {
		if (in_snapshot(snap, n, st->holders[i].bound.cookie)) {
			i++;
			continue;
		}
		before_of(seen, &n_seen, st, st->holders[i].bound.netns)->gone =
			st->holders[i].bound;
		remove_holder(st, &st->holders[i]);
	}
	for (size_t k = 0; k < n && !err; k++)
		err = apply_bound(st, &snap[k]);
	for (size_t k = 0; k < n_seen && !err; k++)
		err = describe_change(st, seen[k].netns, seen[k].port, &seen[k].gone, sink, ctx);
	free(seen);
	return err;
}

void port_state_initial(const struct port_state *st, struct teredo_port_event *note)
{
	const struct port_holder *h = port_state_current(st);

	fill_note(note, TEREDO_PORT_INITIAL, h ? h->bound.port : 0, 0, h ? &h->bound : NULL);
}

_public_ const char *teredo_port_event_type_name(enum teredo_port_event_type type)
{
	switch (type) {
	case TEREDO_PORT_INITIAL:
		return "initial";
	case TEREDO_PORT_ADDED:
		return "add";
	case TEREDO_PORT_CHANGED:
		return "change";
	case TEREDO_PORT_DELETED:
		return "delete";
	}
	return "unknown";
}

/* True when a holder before i is in the same namespace: i's was already told. */
static bool netns_seen_before(const struct port_state *st, size_t i)
{
	for (size_t k = 0; k < i; k++)
		if (st->holders[k].bound.netns == st->holders[i].bound.netns)
			return true;
	return false;
}

int port_state_each_netns(const struct port_state *st, note_sink sink, void *ctx)
{
	struct teredo_port_event note;
	int err;

	for (size_t i = 0; i < st->n; i++) {
		const struct port_holder *h;

		if (netns_seen_before(st, i))
			continue;
		h = latest(st, false, st->holders[i].bound.netns);
		fill_note(&note, TEREDO_PORT_INITIAL, h->bound.port, 0, &h->bound);
		err = sink(ctx, &note);
		if (err < 0)
			return err;
	}
	return 0;
}
