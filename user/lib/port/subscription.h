/* SPDX-License-Identifier: MIT */
/* Callback subscriptions, shared by the native callback API and the Windows layer. */
#ifndef TEREDO_SUBSCRIPTION_H
#define TEREDO_SUBSCRIPTION_H

#include <stdbool.h>
#include <stdint.h>

#include "teredo_observer.h"

/*
 * As teredo_subscribe(), and release(ctx) runs once no call for this
 * subscription can start or is still running (NULL: nothing to release).
 */
int subscribe_with_release(const struct teredo_selection *sel, teredo_port_callback cb, void *ctx,
			   void (*release)(void *ctx), bool initial,
			   struct teredo_subscription **out);

/*
 * The one table of handles the library gives out, whatever their kind:
 * ids never reused, looked up before use. A kind is its cancel function.
 */
struct notify_handle {
	uintptr_t id;
	/* End what the handle stands for; called once, out of the table, no lock held. */
	int (*cancel)(struct notify_handle *handle);
};

/* Give handle a fresh id and enter it: 0, or -ENOMEM with last_error set. */
int notify_handle_add(struct notify_handle *handle, int (*cancel)(struct notify_handle *handle));

/*
 * Take the handle whose id is id, of that kind (NULL: any), out of the table
 * and cancel it. -EINVAL for NULL, -EBADF for no such live handle.
 */
int notify_handle_cancel(void *id, int (*kind)(struct notify_handle *handle));

/* Whether id names a live handle of that kind, which stays in the table. */
bool notify_handle_is_live(void *id, int (*kind)(struct notify_handle *handle));

#endif
