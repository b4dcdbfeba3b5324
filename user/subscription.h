/* SPDX-License-Identifier: MIT */
/* Callback subscriptions, shared by the native callback API and the Windows layer. */
#ifndef TEREDO_SUBSCRIPTION_H
#define TEREDO_SUBSCRIPTION_H

#include "options.h"
#include "teredo_observer.h"

/*
 * As teredo_subscribe(), and release(ctx) runs once no call for this
 * subscription can start or is still running (NULL: nothing to release).
 */
int subscribe_with_release(const struct teredo_options *opts, teredo_port_callback cb, void *ctx,
			   void (*release)(void *ctx), bool initial,
			   struct teredo_subscription **out);

#endif
