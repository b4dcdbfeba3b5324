/* SPDX-License-Identifier: MIT */
/* Open a real observer for a test, and wait for what it reports. */
#ifndef TEREDO_TEST_OBSERVE_H
#define TEREDO_TEST_OBSERVE_H

#include <stdbool.h>
#include <sys/types.h>

#include "teredo_observer.h"

/* How long any expected event may take; generous for a loaded CI machine. */
#define EVENT_TIMEOUT_MS 5000

/* Skip the test, saying why, unless running as root (CI counts a skip as a failure). */
void need_root(void);

/*
 * Open an observer, skipping the test (with the reason) where root or BPF
 * is missing, and take its initial event, which must carry initial_port.
 */
struct teredo_observer *observe(const struct teredo_selection *sel, uint16_t initial_port);
/*
 * The same, whatever the initial port: with all namespaces watched, a
 * Teredo client running on the host is part of it.
 */
struct teredo_observer *observe_any_initial(const struct teredo_selection *sel);
/* The next event within timeout_ms, or false. */
bool next_event(struct teredo_observer *obs, struct teredo_port_event *ev, int timeout_ms);
/* The next event must be of this type and port. */
void expect_event(struct teredo_observer *obs, enum teredo_port_event_type type, uint16_t port,
		  struct teredo_port_event *out);
/* No event may come within ms. */
void expect_quiet(struct teredo_observer *obs, int ms);
/* Move pid into the cgroup at dir (its path in cgroupfs), or fail the test. */
void move_into_cgroup(const char *dir, pid_t pid);
/* The caller's network namespace inode. */
uint32_t own_netns(void);

/*
 * What a test may leave behind, ended by fixture_teardown() (every suite's
 * .fini) even when an assertion cut the test short.
 */
struct actor;
extern struct teredo_observer *obs;
extern struct actor *client, *other;
void fixture_teardown(void);
/* The defaults (teredo_selection_new), freed by fixture_teardown(). */
struct teredo_selection *new_selection(void);

#endif
