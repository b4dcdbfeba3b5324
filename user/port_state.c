// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "port_state.h"

void port_state_init(struct port_state *st)
{
	memset(st, 0, sizeof(*st));
}

void port_state_fini(struct port_state *st)
{
	free(st->holders);
	memset(st, 0, sizeof(*st));
}

const struct port_holder *port_state_current(const struct port_state *st)
{
	const struct port_holder *best = NULL;

	for (size_t i = 0; i < st->n; i++)
		if (!best || st->holders[i].order > best->order)
			best = &st->holders[i];
	return best;
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
	if (st->n == st->cap) {
		size_t cap = st->cap ? st->cap * 2 : 4;
		struct port_holder *grown = realloc(st->holders, cap * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		st->holders = grown;
		st->cap = cap;
	}
	st->holders[st->n].bound = *ev;
	st->holders[st->n].order = st->next_order++;
	st->n++;
	return 0;
}

static void remove_holder(struct port_state *st, struct port_holder *h)
{
	*h = st->holders[--st->n];
}

static int note_from_detail(struct teredo_port_event *note, enum teredo_port_event_type type,
			    uint16_t port, uint16_t old_port, const struct teredo_event *detail)
{
	memset(note, 0, sizeof(*note));
	note->type = type;
	note->port = port;
	note->old_port = old_port;
	if (detail) {
		note->family = detail->family;
		note->pid = detail->pid;
		memcpy(note->comm, detail->comm, sizeof(note->comm));
		note->comm[sizeof(note->comm) - 1] = '\0';
		note->netns = detail->netns;
		note->ktime_ns = detail->ktime_ns;
		note->cookie = detail->cookie;
	}
	return 1;
}

/* Compare the Teredo port before and after a change and say what happened. */
static int describe_change(const struct port_state *st, uint16_t before,
			   const struct teredo_event *cause, struct teredo_port_event *note)
{
	const struct port_holder *now = port_state_current(st);
	uint16_t after = now ? now->bound.port : 0;

	if (after == before)
		return 0;
	if (!after)
		return note_from_detail(note, TEREDO_PORT_DELETED, 0, before, cause);
	if (!before)
		return note_from_detail(note, TEREDO_PORT_ADDED, after, 0, &now->bound);
	return note_from_detail(note, TEREDO_PORT_CHANGED, after, before, &now->bound);
}

static uint16_t current_port(const struct port_state *st)
{
	const struct port_holder *h = port_state_current(st);

	return h ? h->bound.port : 0;
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

int port_state_apply(struct port_state *st, const struct teredo_event *ev,
		     struct teredo_port_event *note)
{
	uint16_t before = current_port(st);
	struct port_holder *h;
	int err;

	switch (ev->kind) {
	case TEREDO_EVENT_BOUND:
		err = apply_bound(st, ev);
		if (err)
			return err;
		break;
	case TEREDO_EVENT_RELEASED:
		h = find(st, ev->cookie);
		if (!h)
			return 0;
		remove_holder(st, h);
		break;
	default:
		return 0;
	}
	return describe_change(st, before, ev, note);
}

static const struct teredo_event *find_in(const struct teredo_event *snap, size_t n,
					  uint64_t cookie)
{
	for (size_t i = 0; i < n; i++)
		if (snap[i].cookie == cookie)
			return &snap[i];
	return NULL;
}

int port_state_replace(struct port_state *st, const struct teredo_event *snap, size_t n,
		       struct teredo_port_event *note)
{
	uint16_t before = current_port(st);
	struct teredo_event gone = { 0 };
	size_t i = 0;
	int err;

	while (i < st->n) {
		if (find_in(snap, n, st->holders[i].bound.cookie)) {
			i++;
			continue;
		}
		gone = st->holders[i].bound;
		remove_holder(st, &st->holders[i]);
	}
	for (i = 0; i < n; i++) {
		err = apply_bound(st, &snap[i]);
		if (err)
			return err;
	}
	return describe_change(st, before, &gone, note);
}

void port_state_initial(const struct port_state *st, struct teredo_port_event *note)
{
	const struct port_holder *h = port_state_current(st);

	note_from_detail(note, TEREDO_PORT_INITIAL, h ? h->bound.port : 0, 0,
			 h ? &h->bound : NULL);
}
