/* SPDX-License-Identifier: MIT */
/* What the observer offers the library's other faces beyond the public API. */
#ifndef TEREDO_OBSERVER_INTERNAL_H
#define TEREDO_OBSERVER_INTERNAL_H

#include <stdint.h>

#include "teredo_observer.h"

/*
 * The current Teredo port from one look at the kernel (0 when none): only the
 * snapshot iterator is loaded, nothing is attached to the machine's hooks.
 * 0 or a negative errno.
 */
int observer_port_once(const struct teredo_options *opts, uint16_t *port);

#endif
