/* SPDX-License-Identifier: MIT */
/* What the observer offers the library's other faces beyond the public API. */
#ifndef TEREDO_OBSERVER_INTERNAL_H
#define TEREDO_OBSERVER_INTERNAL_H

#include <stdint.h>

#include "event_source.h"
#include "port_state.h"
#include "teredo_observer.h"

/*
 * The current Teredo port from one look at the kernel (0 when none): only the
 * snapshot iterator is loaded, nothing is attached to the machine's hooks.
 * 0 or a negative errno.
 */
int observer_port_once(const struct teredo_selection *sel, uint16_t *port);

/* teredo_observer_new() with the source chosen by the caller, not the environment. */
int observer_new(const struct teredo_selection *sel, enum source_choice choice,
		 struct teredo_observer **out);

/*
 * For the service, which passes on what its observer applies: each record
 * once the state machine has taken it, and each time a snapshot replaced
 * the whole state. Called from inside teredo_observer_receive/_update.
 */
struct observer_tap {
	void (*record)(void *ctx, const struct teredo_event *ev);
	void (*replaced)(void *ctx);
	void *ctx;
};

void observer_set_tap(struct teredo_observer *obs, const struct observer_tap *tap);

/*
 * fd readable makes the observer's fd readable too, in the same epoll set (a
 * hub's thread waits there for news or for its wake-up, with no set
 * nested in another). The set's own members have data.u64 set to their
 * fd's number: the service adds its fds to it too, with pointers as data.
 * 0 or a negative errno.
 */
int observer_wake_too(struct teredo_observer *obs, int fd);

/* Notifications queued: teredo_observer_receive returns them without reading the source. */
bool observer_has_queued(const struct teredo_observer *obs);

/* The socket set behind the port, as the state machine holds it. */
const struct port_state *observer_state(const struct teredo_observer *obs);

#endif
