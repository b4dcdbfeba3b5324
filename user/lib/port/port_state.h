/* SPDX-License-Identifier: MIT */
/*
 * The one state machine: from the kernel's records about individual sockets
 * to the Teredo port as a whole, and the notifications its changes make.
 *
 * Each network namespace is its own computer with its own Teredo client: its
 * Teredo port is the port of its most recently bound Teredo socket still
 * open. Notifications follow that port, not the sockets: a second socket on
 * the same port, or its release while another holds the port, says nothing.
 *   none -> P    TEREDO_PORT_ADDED    port P, old_port 0
 *   P -> Q       TEREDO_PORT_CHANGED  port Q, old_port P
 *   P -> none    TEREDO_PORT_DELETED  port 0, old_port P
 * With one namespace watched (the default) that is simply "the" Teredo port.
 * Pure logic: no kernel, no threads.
 */
#ifndef TEREDO_PORT_STATE_H
#define TEREDO_PORT_STATE_H

#include <stddef.h>
#include <stdint.h>

#include "teredo_event.h"
#include "teredo_observer.h"

struct port_holder {
	struct teredo_event bound; /* the record that told us of it */
	uint64_t order;		   /* larger: bound more recently */
};

struct port_state {
	struct port_holder *holders;
	size_t n, cap;
	uint64_t next_order;
	/* Calls that may have changed it, counted: what shows it is made again when this moves. */
	uint64_t changes;
};

void port_state_init(struct port_state *st);
void port_state_fini(struct port_state *st);

/* Takes a notification; a negative return is passed on. */
typedef int (*note_sink)(void *ctx, const struct teredo_port_event *note);

/* The most recently bound socket still open, in any namespace, or NULL. */
const struct port_holder *port_state_current(const struct port_state *st);

/* Its port, 0 when there is none. */
uint16_t port_state_current_port(const struct port_state *st);

/* Apply one record; a change of its namespace's port goes to sink. 0 or -ENOMEM. */
int port_state_apply(struct port_state *st, const struct teredo_event *ev, note_sink sink,
		     void *ctx);

/*
 * Replace the set of sockets with a snapshot (after lost records), keeping
 * the order of sockets that survive; each namespace whose port changed gives
 * one notification to sink. 0 or -ENOMEM.
 */
int port_state_replace(struct port_state *st, const struct teredo_event *snap, size_t n,
		       note_sink sink, void *ctx);

/* The TEREDO_PORT_INITIAL event for the current state. */
void port_state_initial(const struct port_state *st, struct teredo_port_event *note);

/*
 * Each namespace's port now: one TEREDO_PORT_INITIAL note to sink per
 * namespace that has one, about its most recent holder (the initial event
 * above names only the most recent of all). A negative return is passed on.
 */
int port_state_each_netns(const struct port_state *st, note_sink sink, void *ctx);

#endif
