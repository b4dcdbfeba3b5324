/* SPDX-License-Identifier: MIT */
/* The Windows-compatible face's failure reporting, shared by its sources. */
#ifndef TEREDO_WINDOWS_API_H
#define TEREDO_WINDOWS_API_H

#include "teredo_netioapi.h"

/* A Windows value's name is its identifier: one case of a name switch. */
#define NAME_CASE(value) \
	case value:      \
		return #value

/* Pass code and message to the diagnostic hook (or TEREDO_OBSERVER_DEBUG=1's stderr); returns code.
 */
DWORD windows_diagnose(const char *function, DWORD code, const char *message);

/* The Windows code of a negative errno, diagnosed with teredo_observer_last_error(). */
DWORD windows_fail(const char *function, int err);

#endif
