/* SPDX-License-Identifier: MIT */
/*
 * teredo-observer: which UDP port the Teredo client (Miredo) uses, now and
 * whenever it changes, learnt from the kernel through eBPF.
 *
 * Native API, in the manner of libudev's monitor: an observer gives a file
 * descriptor to poll and a call that receives one event at a time, so that
 * programs with their own event loop (epoll, glib, libuv) can use it.
 * Functions return 0 (or a count) on success and a negative errno on failure;
 * teredo_observer_last_error() then says in one line what went wrong and how
 * to fix it.
 */
#ifndef TEREDO_OBSERVER_H
#define TEREDO_OBSERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TEREDO_OBSERVER_VERSION "0.1.0"
#define TEREDO_OBSERVER_MAX_COMMS 8
#define TEREDO_OBSERVER_MAX_USERS 8

/* Values equal Windows' MIB_NOTIFICATION_TYPE, so the Windows layer just passes them on. */
enum teredo_port_event_type {
	TEREDO_PORT_CHANGED = 0, /* MibParameterNotification: moved from old_port to port */
	TEREDO_PORT_ADDED = 1,	 /* MibAddInstance: a Teredo port appeared */
	TEREDO_PORT_DELETED = 2, /* MibDeleteInstance: the last one went away; port is 0 */
	TEREDO_PORT_INITIAL = 3, /* MibInitialNotification: the state when observing began */
};

struct teredo_port_event {
	enum teredo_port_event_type type;
	uint16_t port;	   /* current Teredo port, 0 when there is none */
	uint16_t old_port; /* the port before this event, 0 when there was none */
	uint16_t family;   /* AF_INET or AF_INET6 of the socket concerned, 0 if none */
	pid_t pid;	   /* process that caused it (the releasing one for deletes) */
	char comm[16];
	uint32_t netns;	   /* network namespace inode of the socket */
	uint64_t ktime_ns; /* CLOCK_MONOTONIC time the kernel saw it */
	uint64_t cookie;   /* socket cookie (SO_COOKIE) of the socket concerned */
};

/*
 * What counts as the Teredo client: a selection. Every criterion in force
 * must hold: a socket is the client's only if its process has one of the
 * names, runs with one of the real uids, and, where set, is (a child of)
 * pid, is in the cgroup, and sends to port 3544. Selectors narrow, never
 * widen.
 *
 * A selection is opaque, made and changed only through the functions below,
 * rather than a struct the caller fills (with a size field first, as
 * libbpf's LIBBPF_OPTS): a criterion added later then never breaks a program
 * built today, there is no size to get wrong, and the library owns every
 * string it holds (nothing borrowed from the caller or the environment).
 * The functions taking one copy what they need: the caller may change or
 * free it as soon as they return. NULL where a function takes a selection
 * means the defaults plus the environment.
 */
struct teredo_selection;

/*
 * Defaults: processes named "miredo" running as root or as the miredo system
 * user (looked up now; root alone where there is none), in the caller's
 * network namespace. NULL when out of memory.
 */
struct teredo_selection *teredo_selection_new(void);

/* An independent copy, or NULL when out of memory. */
struct teredo_selection *teredo_selection_copy(const struct teredo_selection *sel);

/* NULL is ignored. */
void teredo_selection_free(struct teredo_selection *sel);

/*
 * Add a process name (1 to 15 characters, as the kernel keeps them), at most
 * TEREDO_OBSERVER_MAX_COMMS. The first name added replaces the default (or
 * the environment's) names; later ones add to it. 0 or -EINVAL.
 */
int teredo_selection_add_comm(struct teredo_selection *sel, const char *comm);

/*
 * Add a user the client may run as: a name or a numeric uid, at most
 * TEREDO_OBSERVER_MAX_USERS. The first one replaces the default (or the
 * environment's) users. 0 or -EINVAL.
 */
int teredo_selection_add_user(struct teredo_selection *sel, const char *user);

/* This process and its children only; 0: any process. 0 or -EINVAL. */
int teredo_selection_set_pid(struct teredo_selection *sel, pid_t pid);

/*
 * Only processes in this cgroup v2 path below the root, or below it (it may
 * not exist yet: it is followed by path); NULL: any. 0 or -EINVAL.
 */
int teredo_selection_set_cgroup(struct teredo_selection *sel, const char *path);

/* Only UDP sockets that send to port 3544. */
void teredo_selection_set_match_traffic(struct teredo_selection *sel, bool on);

/* Every network namespace, not just the caller's. */
void teredo_selection_set_all_netns(struct teredo_selection *sel, bool on);

/* Ring buffer size: a power of two >= 4096, or 0 for the default (256 KiB). 0 or -EINVAL. */
int teredo_selection_set_ring_bytes(struct teredo_selection *sel, size_t bytes);

/* Pass libbpf's diagnostics to stderr. */
void teredo_selection_set_verbose(struct teredo_selection *sel, bool on);

/*
 * Apply the documented environment variables (TEREDO_OBSERVER_COMM, _USER,
 * _PID, _CGROUP, _MATCH_TRAFFIC, _ALL_NETNS, _VERBOSE) over sel; the lists
 * replace sel's. 0, or -EINVAL for a bad value or a selection that could
 * match nothing (an empty list); sel is then unchanged.
 */
int teredo_selection_from_env(struct teredo_selection *sel);

/*
 * Check a selection as teredo_observer_new() would, without loading
 * anything: 0, or -EINVAL with the reason in teredo_observer_last_error().
 */
int teredo_selection_check(const struct teredo_selection *sel);

struct teredo_observer;

/*
 * Load and attach the kernel programs and build the current state; sel NULL:
 * defaults plus the environment. The first
 * event received is TEREDO_PORT_INITIAL with the current port. Errors:
 * -EPERM (privileges), -EOPNOTSUPP (kernel lacks a feature), -ENOMEM, -EINVAL.
 */
int teredo_observer_new(const struct teredo_selection *sel, struct teredo_observer **out);

/* Readable (EPOLLIN) when events may be waiting. Owned by the observer. */
int teredo_observer_get_fd(const struct teredo_observer *obs);

/*
 * Take the next event without blocking: 1 when *ev was filled, 0 when none is
 * waiting (poll the fd), a negative errno on failure.
 */
int teredo_observer_receive(struct teredo_observer *obs, struct teredo_port_event *ev);

/*
 * Take in what the kernel has reported so far without receiving it: the
 * events wait in the queue (the fd stays readable) and the current port
 * below is up to date. 0 or a negative errno.
 */
int teredo_observer_update(struct teredo_observer *obs);

/* The current Teredo port (0 when none), counting events not yet received. */
uint16_t teredo_observer_current_port(const struct teredo_observer *obs);

/* Times the kernel lost events and the state was rebuilt from a fresh scan. */
uint64_t teredo_observer_resyncs(const struct teredo_observer *obs);

/* Detach everything. NULL is ignored. */
void teredo_observer_free(struct teredo_observer *obs);

/* One line: what went wrong in this thread's last failed call, and how to fix it. */
const char *teredo_observer_last_error(void);

/* Name of an event type: "initial", "add", "change", "delete". */
const char *teredo_port_event_type_name(enum teredo_port_event_type type);

/*
 * Callbacks, for programs without an event loop of their own. Every
 * subscription with an equal selection in a process shares one loaded copy of
 * the BPF programs and one dispatch thread, loaded with the first and
 * detached with the last. Calls for a subscription never overlap and come in
 * the order the kernel saw the events.
 */
typedef void (*teredo_port_callback)(void *ctx, const struct teredo_port_event *ev);

struct teredo_subscription;

/*
 * Subscribe; with initial, the first call is TEREDO_PORT_INITIAL carrying the
 * current port. sel NULL: defaults plus the environment. 0 or a negative errno.
 */
int teredo_subscribe(const struct teredo_selection *sel, teredo_port_callback cb, void *ctx,
		     bool initial, struct teredo_subscription **out);

/*
 * End a subscription: once it returns, no call follows, and a call in flight
 * has returned. From inside that subscription's own callback it returns at
 * once (the call in flight is the caller's). -EBADF for a subscription that
 * is unknown or already ended: handles are checked, never trusted.
 */
int teredo_unsubscribe(struct teredo_subscription *sub);

/*
 * The current Teredo port: 1 and *port, or 0 when no Teredo client runs.
 * Uses a live subscription's state when there is one, otherwise asks the
 * kernel once. sel NULL: defaults plus the environment.
 */
int teredo_get_port(const struct teredo_selection *sel, uint16_t *port);

/*
 * Diagnostics of the Windows-compatible layer: each failure there is passed
 * here as its Windows code and our one-line reason. With no hook set and
 * TEREDO_OBSERVER_DEBUG=1 in the environment they go to stderr.
 */
typedef void (*teredo_diagnostic_hook)(void *ctx, uint32_t code, const char *message);
void teredo_set_diagnostic_hook(teredo_diagnostic_hook hook, void *ctx);

#ifdef __cplusplus
}
#endif

#endif
