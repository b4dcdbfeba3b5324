/* SPDX-License-Identifier: MIT */
/* The one-line message behind teredo_observer_last_error(), kept per thread. */
#ifndef TEREDO_LAST_ERROR_H
#define TEREDO_LAST_ERROR_H

/* Record a message for this thread and return err unchanged (a negative errno). */
int set_last_error(int err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
