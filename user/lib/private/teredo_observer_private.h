/* SPDX-License-Identifier: MIT */
/*
 * What the project's own command uses of the library beyond include/: not
 * part of the ABI (neither exported by the .so nor global in the installed
 * .a; tests/abi/run), so that it may change with the command. The command
 * links the in-tree archive, where these are hidden but linkable.
 */
#ifndef TEREDO_OBSERVER_PRIVATE_H
#define TEREDO_OBSERVER_PRIVATE_H

#include <stdbool.h>
#include <sys/types.h>

struct teredo_observer;
struct teredo_port_event;
struct teredo_selection;

/*
 * The event as one line of JSON (--json), ending in a newline: the fields
 * and encoder of the service's Watch replies (event_json.c), spaced for
 * people, with "time" when it is not NULL. malloc'd; NULL: no memory.
 */
char *teredo_event_json_line(const struct teredo_port_event *ev, const char *time);

/* Whether sel watches every network namespace (the command's firewall is this one's). */
bool teredo_selection_all_netns(const struct teredo_selection *sel);

/* Parse a positive process id from text: 0 or -EINVAL with a message. */
int teredo_parse_pid(const char *text, pid_t *pid);

/*
 * Ask the scheduler for a short slice for the calling thread, so that when an
 * event wakes it while CPU-bound work fills the cores it runs within about
 * 0.1 ms instead of after the running task's whole slice. For a thread that
 * waits on teredo_observer_get_fd(): the command's, and the library's own
 * callback thread. EEVDF (Linux 6.12+) honours it without privilege; older
 * kernels ignore it for normal threads. Best effort: failure changes nothing.
 * Never called on a thread of the host program: it changes that thread's
 * scheduling.
 */
void teredo_ask_short_slice(void);

/*
 * The library's notice that a process loads its own copy of the BPF programs
 * (once, on stderr, when no service was there to share) is for the programs
 * that link it; the command, run as the host's observer on purpose (its
 * firewall job, a watch), keeps its stderr for its own messages.
 */
void teredo_observer_no_own_copy_notice(void);

/*
 * With all_netns, each network namespace's Teredo port as obs knows it now,
 * events not yet received counted: fn once per namespace that has one, with
 * a TEREDO_PORT_INITIAL event about its most recent holder (pid, netns).
 * The initial event names only the most recent namespace of all; the
 * command's firewall job needs each one's at start. 0, or fn's negative
 * return.
 */
int teredo_observer_each_netns(const struct teredo_observer *obs,
			       int (*fn)(void *ctx, const struct teredo_port_event *ev), void *ctx);

#endif
