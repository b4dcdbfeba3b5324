/* SPDX-License-Identifier: MIT */
/*
 * The seam between where events come from and what interprets them. The
 * kernel source (BPF programs, ring buffer, iterator) is one implementation;
 * a socket to a privileged observer can be another, without touching the
 * state machine or the API faces.
 */
#ifndef TEREDO_EVENT_SOURCE_H
#define TEREDO_EVENT_SOURCE_H

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
};

/* The BPF programs in the running kernel. */
int kernel_source_open(const struct teredo_options *opts, struct event_source **out);

/* The same for one snapshot only: no hook attached, no live records. */
int kernel_snapshot_open(const struct teredo_options *opts, struct event_source **out);

#endif
