// SPDX-License-Identifier: MIT
/*
 * The native API: an event source feeding the state machine, whose
 * notifications wait in a queue for teredo_observer_receive(). The fd given
 * out is an epoll set of the source's fd and an eventfd that stays readable
 * while notifications wait, so a caller that polls never misses a queued one.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "event_source.h"
#include "grow.h"
#include "last_error.h"
#include "note_queue.h"
#include "observer.h"
#include "selection.h"
#include "port_state.h"
#include "teredo_observer.h"
#include "teredo_observer_private.h"
#include "public.h"

struct teredo_observer {
	struct event_source *source;
	struct port_state state;
	struct note_queue queue;
	int epoll_fd;	      /* ours, or the source's (shared_epoll): then it closes it */
	int pending_fd;	      /* eventfd: readable while queue is not empty */
	bool signalled;	      /* pending_fd is readable */
	bool need_resync;     /* records were lost, and no snapshot has replaced them yet */
	uint64_t snapshot_ns; /* records older than the last snapshot are already in it */
	uint64_t resyncs;
	struct observer_tap tap;
};

struct snapshot {
	struct teredo_event *items;
	size_t n, cap;
};

/* A note_sink: notifications wait in the queue, the eventfd says so. */
static int queue_note(void *ctx, const struct teredo_port_event *note)
{
	struct teredo_observer *obs = ctx;

	if (note_queue_push(&obs->queue, note))
		return set_last_error(-ENOMEM, "out of memory queueing an event");
	return 0;
}

/* Make pending_fd say whether notes wait; only touch it when that changes. */
static int sync_pending(struct teredo_observer *obs)
{
	uint64_t v = 1;

	if (obs->queue.len && !obs->signalled) {
		if (write(obs->pending_fd, &v, sizeof(v)) != sizeof(v))
			return set_last_error(-errno, "eventfd write: %s", strerror(errno));
		obs->signalled = true;
	} else if (!obs->queue.len && obs->signalled) {
		if (read(obs->pending_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			return set_last_error(-errno, "eventfd read: %s", strerror(errno));
		obs->signalled = false;
	}
	return 0;
}

static int apply_record(void *ctx, const struct teredo_event *ev)
{
	struct teredo_observer *obs = ctx;
	int err;

	if (ev->ktime_ns < obs->snapshot_ns)
		return 0;
	err = port_state_apply(&obs->state, ev, queue_note, obs);
	if (!err && obs->tap.record)
		obs->tap.record(obs->tap.ctx, ev);
	return err == -ENOMEM ? set_last_error(err, "out of memory tracking sockets") : err;
}

static int discard_note(void *ctx, const struct teredo_port_event *note)
{
	(void)ctx;
	(void)note;
	return 0;
}

static uint64_t monotonic_ns(void)
{
	struct timespec ts;

	/* The clock of bpf_ktime_get_ns(). */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int collect_record(void *ctx, const struct teredo_event *ev)
{
	struct snapshot *snap = ctx;

	if (grow_array(&snap->items, &snap->cap, snap->n + 1, sizeof(*snap->items)))
		return set_last_error(-ENOMEM, "out of memory reading the snapshot");
	snap->items[snap->n++] = *ev;
	return 0;
}

/* The state becomes what the kernel shows now; the changes go to sink. */
static int replace_from_snapshot(struct event_source *source, struct port_state *state,
				 note_sink sink, void *ctx)
{
	struct snapshot snap = { 0 };
	int err;

	err = source->ops->snapshot(source, collect_record, &snap);
	if (!err)
		err = port_state_replace(state, snap.items, snap.n, sink, ctx);
	free(snap.items);
	return err == -ENOMEM ? set_last_error(err, "out of memory tracking sockets") : err;
}

/*
 * Rebuild the socket set from the kernel: at start, and whenever records were
 * lost. Records reserved before the snapshot began but read after it describe
 * what the snapshot already shows, so they are skipped.
 */
static int resync(struct teredo_observer *obs, note_sink sink)
{
	int err;

	obs->snapshot_ns = obs->source->ordered ? 0 : monotonic_ns();
	err = replace_from_snapshot(obs->source, &obs->state, sink, obs);
	if (!err)
		obs->need_resync = false;
	if (!err && obs->tap.replaced)
		obs->tap.replaced(obs->tap.ctx);
	return err;
}

/* Read what the source has; after any loss or failure, until a snapshot has worked. */
static int pump_source(struct teredo_observer *obs)
{
	int n = obs->source->ops->drain(obs->source, apply_record, obs);

	/* A record refused by a sink is consumed all the same: it counts as lost. */
	if (n < 0 || obs->source->ops->lost_records(obs->source))
		obs->need_resync = true;
	if (!obs->need_resync)
		return 0;
	obs->resyncs++;
	return resync(obs, queue_note);
}

/* data.u64 is the fd's number: the service adds its own fds, with pointers, to the same set. */
static int watch(int epoll_fd, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = (uint64_t)fd };

	if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &ev))
		return set_last_error(-errno, "epoll_ctl: %s", strerror(errno));
	return 0;
}

static int open_fds(struct teredo_observer *obs)
{
	bool shared = obs->source->shared_epoll;
	int err = 0;

	obs->epoll_fd = shared ? obs->source->ops->fd(obs->source) : epoll_create1(EPOLL_CLOEXEC);
	obs->pending_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (obs->epoll_fd < 0 || obs->pending_fd < 0)
		return set_last_error(-errno, "cannot create epoll/eventfd: %s", strerror(errno));
	if (!shared)
		err = watch(obs->epoll_fd, obs->source->ops->fd(obs->source));
	return err ? err : watch(obs->epoll_fd, obs->pending_fd);
}

int observer_wake_too(struct teredo_observer *obs, int fd)
{
	return watch(obs->epoll_fd, fd);
}

int observer_new(const struct teredo_selection *sel, enum source_choice choice,
		 struct teredo_observer **out)
{
	struct teredo_selection *resolved;
	struct teredo_port_event initial;
	struct teredo_observer *obs;
	int err;

	if (!out)
		return set_last_error(-EINVAL, "teredo_observer_new: out is NULL");
	*out = NULL;
	err = selection_resolve(sel, &resolved);
	if (err)
		return err;
	obs = calloc(1, sizeof(*obs));
	if (!obs) {
		teredo_selection_free(resolved);
		return set_last_error(-ENOMEM, "out of memory");
	}
	obs->epoll_fd = obs->pending_fd = -1;
	port_state_init(&obs->state);
	note_queue_init(&obs->queue);
	err = event_source_open(resolved, choice, true, &obs->source);
	teredo_selection_free(resolved);
	if (!err)
		err = open_fds(obs);
	/* From an empty start the snapshot's changes are no news: the initial event says it. */
	if (!err)
		err = resync(obs, discard_note);
	if (err)
		goto cleanup;
	port_state_initial(&obs->state, &initial);
	err = queue_note(obs, &initial);
	if (!err)
		err = sync_pending(obs);
	if (err)
		goto cleanup;
	*out = obs;
	return 0;
cleanup:
	teredo_observer_free(obs);
	return err;
}

_public_ int teredo_observer_new(const struct teredo_selection *sel, struct teredo_observer **out)
{
	enum source_choice choice;
	int err = source_choice_from_env(&choice);

	return err ? err : observer_new(sel, choice, out);
}

void observer_set_tap(struct teredo_observer *obs, const struct observer_tap *tap)
{
	obs->tap = *tap;
}

bool observer_has_queued(const struct teredo_observer *obs)
{
	return obs->queue.len != 0;
}

const struct port_state *observer_state(const struct teredo_observer *obs)
{
	return &obs->state;
}

int teredo_observer_each_netns(const struct teredo_observer *obs,
			       int (*fn)(void *ctx, const struct teredo_port_event *ev), void *ctx)
{
	if (!obs || !fn)
		return set_last_error(-EINVAL, "teredo_observer_each_netns: NULL argument");
	return port_state_each_netns(&obs->state, fn, ctx);
}

_public_ int teredo_observer_get_fd(const struct teredo_observer *obs)
{
	return obs ? obs->epoll_fd : set_last_error(-EINVAL, "observer is NULL");
}

_public_ int teredo_observer_receive(struct teredo_observer *obs, struct teredo_port_event *ev)
{
	bool got;
	int err;

	if (!obs || !ev)
		return set_last_error(-EINVAL, "teredo_observer_receive: NULL argument");
	if (!obs->queue.len) {
		err = pump_source(obs);
		/* The source reconnects by itself and wakes the fd: not a failure here. */
		if (err && err != SOURCE_UNREACHABLE)
			return err;
	}
	got = note_queue_pop(&obs->queue, ev);
	err = sync_pending(obs);
	return err ? err : got;
}

_public_ int teredo_observer_update(struct teredo_observer *obs)
{
	int err;

	if (!obs)
		return set_last_error(-EINVAL, "observer is NULL");
	err = pump_source(obs);
	return err ? err : sync_pending(obs);
}

_public_ uint16_t teredo_observer_current_port(const struct teredo_observer *obs)
{
	return obs ? port_state_current_port(&obs->state) : 0;
}

_public_ uint64_t teredo_observer_resyncs(const struct teredo_observer *obs)
{
	return obs ? obs->resyncs : 0;
}

_public_ void teredo_observer_free(struct teredo_observer *obs)
{
	if (!obs)
		return;
	if (obs->epoll_fd >= 0 && !(obs->source && obs->source->shared_epoll))
		close(obs->epoll_fd);
	if (obs->source)
		obs->source->ops->destroy(obs->source);
	if (obs->pending_fd >= 0)
		close(obs->pending_fd);
	port_state_fini(&obs->state);
	note_queue_fini(&obs->queue);
	free(obs);
}

int observer_port_once(const struct teredo_selection *sel, uint16_t *port)
{
	struct teredo_selection *resolved;
	struct event_source *source;
	enum source_choice choice;
	struct port_state state;
	int err;

	*port = 0;
	err = selection_resolve(sel, &resolved);
	if (!err)
		err = source_choice_from_env(&choice);
	if (!err)
		err = event_source_open(resolved, choice, false, &source);
	teredo_selection_free(resolved);
	if (err)
		return err;
	port_state_init(&state);
	err = replace_from_snapshot(source, &state, discard_note, NULL);
	if (!err)
		*port = port_state_current_port(&state);
	port_state_fini(&state);
	source->ops->destroy(source);
	return err;
}
