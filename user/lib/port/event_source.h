/* SPDX-License-Identifier: MIT */
/*
 * The seam between where events come from and what interprets them. The
 * kernel source (BPF programs, ring buffer, iterator) is one implementation;
 * a socket to a privileged observer can be another, without touching the
 * state machine or the API faces.
 */
#ifndef TEREDO_EVENT_SOURCE_H
#define TEREDO_EVENT_SOURCE_H

#include <errno.h>
#include <stdbool.h>

#include "teredo_event.h"
#include "teredo_observer.h"

/* Takes one record; a negative return stops the delivery and is passed on. */
typedef int (*event_sink)(void *ctx, const struct teredo_event *ev);

struct event_source;

struct event_source_ops {
	/* Readable when records may be waiting. */
	int (*fd)(const struct event_source *src);
	/* Deliver every waiting record, oldest first. */
	int (*drain)(struct event_source *src, event_sink sink, void *ctx);
	/* True, once, when records were lost since the last call. */
	bool (*lost_records)(struct event_source *src);
	/* Deliver a BOUND record for every Teredo client socket open now. */
	int (*snapshot)(struct event_source *src, event_sink sink, void *ctx);
	void (*destroy)(struct event_source *src);
};

struct event_source {
	const struct event_source_ops *ops;
	/*
	 * Records come strictly after the snapshot that preceded them (a stream
	 * from the service), so none is skipped as older than the snapshot.
	 * False for the kernel, whose ring may hold records the iterator
	 * already shows.
	 */
	bool ordered;
	/*
	 * fd() is an epoll set of the source's own, which the observer may
	 * take as its own too, adding its fds to it: a thread waiting on the
	 * observer then waits on the source's fds themselves, not through an
	 * epoll set in another, and the writer's wake-up reaches it directly
	 * (with its hint that the writer is about to sleep, which a nested set
	 * does not pass on).
	 */
	bool shared_epoll;
};

/*
 * A live source that cannot reach what feeds it (the service, restarting)
 * fails with this; it tries again by itself and wakes its fd when it has.
 */
#define SOURCE_UNREACHABLE (-ENOTCONN)

/* The BPF programs in the running kernel. */
int kernel_source_open(const struct teredo_selection *sel, struct event_source **out);

/* The same for one snapshot only: no hook attached, no live records. */
int kernel_snapshot_open(const struct teredo_selection *sel, struct event_source **out);

/*
 * The host's teredo-observer service (teredo-observer serve), through its
 * socket, varlink_socket_path(): no privileges, no BPF in this process.
 * live: Watch, reconnecting and resyncing by itself; else one GetState.
 */
int service_source_open(const struct teredo_selection *sel, bool live, struct event_source **out);

enum source_choice {
	SOURCE_AUTO,	/* the service where its socket is, else the kernel where allowed */
	SOURCE_KERNEL,	/* our own BPF programs */
	SOURCE_SERVICE, /* the service only */
};

/*
 * A process that loads a copy of the BPF programs no other consumer shares
 * at the root says so once on stderr, and why (source_choice.c).
 */
void say_own_copy(const char *why);

/* TEREDO_OBSERVER_SOURCE: auto (default), kernel or service. 0 or -EINVAL. */
int source_choice_from_env(enum source_choice *out);

/* The source the library uses, chosen as README's "The service" says. */
int event_source_open(const struct teredo_selection *sel, enum source_choice choice, bool live,
		      struct event_source **out);

#endif
