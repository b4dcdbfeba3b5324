/* SPDX-License-Identifier: MIT */
/*
 * The one state machine: from the kernel's records about individual sockets
 * to the Teredo port as a whole, and the notifications its changes make.
 *
 * The Teredo port is the port of the most recently bound Teredo socket still
 * open. Notifications follow the port, not the sockets: a second socket on
 * the same port, or its release while another holds the port, says nothing.
 *   none -> P    TEREDO_PORT_ADDED    port P, old_port 0
 *   P -> Q       TEREDO_PORT_CHANGED  port Q, old_port P
 *   P -> none    TEREDO_PORT_DELETED  port 0, old_port P
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
};

void port_state_init(struct port_state *st);
void port_state_fini(struct port_state *st);

/* The socket whose port is the Teredo port, or NULL. */
const struct port_holder *port_state_current(const struct port_state *st);

/*
 * Apply one record. Returns 1 and fills *note when the Teredo port changed,
 * 0 when it did not, -ENOMEM.
 */
int port_state_apply(struct port_state *st, const struct teredo_event *ev,
		     struct teredo_port_event *note);

/*
 * Replace the set of sockets with a snapshot (after lost records), keeping
 * the order of sockets that survive. Same returns as port_state_apply().
 */
int port_state_replace(struct port_state *st, const struct teredo_event *snap, size_t n,
		       struct teredo_port_event *note);

/* The TEREDO_PORT_INITIAL event for the current state. */
void port_state_initial(const struct port_state *st, struct teredo_port_event *note);

#endif
