/* SPDX-License-Identifier: MIT */
/*
 * teredo-observer --exec: run a shell command for one event, with the event
 * in its environment, and wait for it within a time limit. Commands run one
 * at a time, so the caller runs them in the order the events came.
 */
#ifndef TEREDO_EVENT_EXEC_H
#define TEREDO_EVENT_EXEC_H

#include <signal.h>

#include "teredo_observer.h"

#define EVENT_EXEC_DEFAULT_TIMEOUT 10 /* seconds */
#define EVENT_EXEC_MAX_TIMEOUT 86400

struct event_exec {
	const char *command;	/* given to /bin/sh -c; NULL: --exec not used */
	unsigned int timeout_s; /* then its process group is killed */
	/* Set by the caller's SIGINT/SIGTERM handler: the command is asked to end. */
	const volatile sig_atomic_t *stop;
	/* The signal mask to wait with (the caller's own, those signals unblocked). */
	const sigset_t *wait_mask;
};

/*
 * Whether the command can run at all, checked once at start: a command whose
 * program is missing would otherwise fail at every event. 0, or -1 with the
 * reason and its fix, one line, in why.
 */
int event_exec_check(const char *command, char *why, size_t len);

/* Parse --exec-timeout: whole seconds, 1 to EVENT_EXEC_MAX_TIMEOUT. 0 or -EINVAL. */
int event_exec_parse_timeout(const char *text, unsigned int *seconds);

/*
 * Run the command for ev and wait until it ends or its time is up. Whatever
 * goes wrong (it cannot start, fails, is killed, hangs) is reported on stderr
 * and returned as -1; it is never a reason to stop observing. 0: it exited 0.
 */
int event_exec_run(const struct event_exec *x, const struct teredo_port_event *ev);

#endif
