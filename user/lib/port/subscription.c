// SPDX-License-Identifier: MIT
/*
 * Callback subscriptions. Every subscription with the same options in a
 * process shares a hub: one observer (one loaded copy of the BPF programs)
 * and one dispatch thread that calls the callbacks, so that calls for a
 * subscription never overlap and come in the kernel's order.
 *
 * Handles are ids, never reused, looked up in a table before use: a stale,
 * foreign or doubly-cancelled handle is found missing, never dereferenced.
 * The table holds every kind of handle the library gives out (subscriptions
 * here, stable unicast table requests in unicast_address.c), each with its
 * own cancel, so that CancelMibChangeNotify2 ends any of them.
 *
 * Locks: registry_lock (hubs and handles), then hub->lock (a hub's
 * subscribers and its observer). No lock is held while a callback runs, so a
 * callback may subscribe and unsubscribe freely.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "grow.h"
#include "last_error.h"
#include "observer.h"
#include "subscription.h"
#include "teredo_event.h"
#include "thread.h"
#include "public.h"
#include "teredo_observer_private.h"

struct hub;

struct teredo_subscription {
	struct notify_handle handle; /* first: the table's entry is the subscription */
	struct hub *hub;
	teredo_port_callback cb;
	void *ctx;
	void (*release)(void *ctx);
	bool needs_initial;
	bool cancelled;
	int refs; /* the handle table's, plus one per delivery in progress */
};

struct hub {
	struct teredo_options opts; /* strings point into the arrays below */
	char comms[TEREDO_OBSERVER_MAX_COMMS][TEREDO_COMM_LEN];
	char cgroup[PATH_MAX];
	struct teredo_observer *obs;
	pthread_t thread;
	int wake_fd;
	pthread_mutex_t lock;
	pthread_cond_t callback_done;
	struct teredo_subscription **subs;
	size_t n_subs, cap_subs;
	struct teredo_subscription *in_callback;
	size_t owed_initials;		    /* subscribers still owed their initial call */
	struct teredo_subscription **batch; /* deliver()'s copy, kept between calls */
	size_t cap_batch;
	uint16_t delivered_port; /* the port as the callbacks know it */
	unsigned int cancels;	 /* cancels under way (registry_lock): the hub must outlive them */
	bool ready;		 /* started: until then registry_lock's holders wait on hub_made */
	bool stopping;
	bool frees_itself; /* stopped from its own callback: nobody joins it */
	struct hub *next;
};

static pthread_mutex_t registry_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hub_made = PTHREAD_COND_INITIALIZER;
static struct hub *hubs;
static struct notify_handle **handles;
static size_t n_handles, cap_handles;
/* Start far from small integers so a stray int is never a valid handle. */
static uintptr_t next_id = 0x7e7ed000;

/*
 * fork() copies this process's hubs but not their dispatch threads, so in
 * the child they would answer from a state nobody updates. The child starts
 * afresh instead: the inherited hubs and handles are forgotten (their memory
 * is left alone; their locks may have been held by threads that do not
 * exist there), so that teredo_get_port asks anew, a new subscription gets a
 * hub of its own, and an inherited handle is unknown (-EBADF).
 */
static void before_fork(void)
{
	pthread_mutex_lock(&registry_lock);
}

static void after_fork_in_parent(void)
{
	pthread_mutex_unlock(&registry_lock);
}

static void after_fork_in_child(void)
{
	pthread_mutex_unlock(&registry_lock); /* held by this thread, the child's only one */
	hubs = NULL;
	handles = NULL;
	n_handles = cap_handles = 0;
}

static pthread_once_t fork_once = PTHREAD_ONCE_INIT;

static void handle_fork(void)
{
	pthread_atfork(before_fork, after_fork_in_parent, after_fork_in_child);
}

static bool same_options(const struct teredo_options *a, const struct teredo_options *b)
{
	if (a->n_comms != b->n_comms || a->pid != b->pid || a->match_traffic != b->match_traffic ||
	    a->all_netns != b->all_netns || a->ring_bytes != b->ring_bytes ||
	    !a->cgroup != !b->cgroup || (a->cgroup && strcmp(a->cgroup, b->cgroup)))
		return false;
	if (a->n_uids != b->n_uids)
		return false;
	for (size_t i = 0; i < a->n_uids; i++)
		if (a->uids[i] != b->uids[i])
			return false;
	for (size_t i = 0; i < a->n_comms; i++)
		if (strcmp(a->comms[i], b->comms[i]))
			return false;
	return true;
}

static void copy_options(struct hub *hub, const struct teredo_options *opts)
{
	hub->opts = *opts;
	for (size_t i = 0; i < opts->n_comms; i++) {
		strncpy(hub->comms[i], opts->comms[i], TEREDO_COMM_LEN - 1);
		hub->opts.comms[i] = hub->comms[i];
	}
	if (opts->cgroup) {
		strncpy(hub->cgroup, opts->cgroup, sizeof(hub->cgroup) - 1);
		hub->opts.cgroup = hub->cgroup;
	}
}

static void drop_ref_locked(struct teredo_subscription *sub)
{
	if (--sub->refs)
		return;
	if (sub->release)
		sub->release(sub->ctx);
	free(sub);
}

static void wake(struct hub *hub)
{
	uint64_t one = 1;

	/* Only fails when the counter is saturated, and then it is readable anyway. */
	if (write(hub->wake_fd, &one, sizeof(one)) < 0)
		return;
}

/* Call one subscriber, first with its initial event if it still owes one. */
static void call_one(struct hub *hub, struct teredo_subscription *sub,
		     const struct teredo_port_event *ev)
{
	struct teredo_port_event initial = { .type = TEREDO_PORT_INITIAL };
	bool owes_initial;

	pthread_mutex_lock(&hub->lock);
	if (sub->cancelled || (!ev && !sub->needs_initial)) {
		pthread_mutex_unlock(&hub->lock);
		return;
	}
	owes_initial = sub->needs_initial;
	if (owes_initial)
		hub->owed_initials--;
	sub->needs_initial = false;
	initial.port = hub->delivered_port;
	hub->in_callback = sub;
	pthread_mutex_unlock(&hub->lock);

	if (owes_initial)
		sub->cb(sub->ctx, &initial);
	pthread_mutex_lock(&hub->lock);
	if (ev && !sub->cancelled) {
		pthread_mutex_unlock(&hub->lock);
		sub->cb(sub->ctx, ev);
		pthread_mutex_lock(&hub->lock);
	}
	hub->in_callback = NULL;
	pthread_cond_broadcast(&hub->callback_done);
	pthread_mutex_unlock(&hub->lock);
}

/* Deliver ev (NULL: only owed initial events) to every current subscriber. */
static void deliver(struct hub *hub, const struct teredo_port_event *ev)
{
	struct teredo_subscription **batch;
	size_t n;

	pthread_mutex_lock(&hub->lock);
	n = hub->n_subs;
	if (!ev && !hub->owed_initials) {
		pthread_mutex_unlock(&hub->lock);
		return;
	}
	if (grow_array(&hub->batch, &hub->cap_batch, n, sizeof(*hub->batch))) {
		pthread_mutex_unlock(&hub->lock);
		return; /* out of memory: nothing sane to do but skip */
	}
	batch = hub->batch;
	for (size_t i = 0; i < n; i++) {
		batch[i] = hub->subs[i];
		batch[i]->refs++;
	}
	pthread_mutex_unlock(&hub->lock);

	for (size_t i = 0; i < n; i++)
		call_one(hub, batch[i], ev);

	pthread_mutex_lock(&hub->lock);
	for (size_t i = 0; i < n; i++)
		drop_ref_locked(batch[i]);
	pthread_mutex_unlock(&hub->lock);
}

static bool next_event(struct hub *hub, struct teredo_port_event *ev)
{
	int n;

	pthread_mutex_lock(&hub->lock);
	n = teredo_observer_receive(hub->obs, ev);
	pthread_mutex_unlock(&hub->lock);
	return n == 1;
}

static void deliver_event(struct hub *hub, const struct teredo_port_event *ev)
{
	deliver(hub, ev);
	pthread_mutex_lock(&hub->lock);
	hub->delivered_port = ev->port;
	pthread_mutex_unlock(&hub->lock);
}

static void hub_destroy(struct hub *hub)
{
	teredo_observer_free(hub->obs);
	if (hub->wake_fd >= 0)
		close(hub->wake_fd);
	pthread_mutex_destroy(&hub->lock);
	pthread_cond_destroy(&hub->callback_done);
	free(hub->subs);
	free(hub->batch);
	free(hub);
}

static bool hub_stopping(struct hub *hub)
{
	bool stopping;

	pthread_mutex_lock(&hub->lock);
	stopping = hub->stopping;
	pthread_mutex_unlock(&hub->lock);
	return stopping;
}

static void *dispatch(void *arg)
{
	struct hub *hub = arg;
	struct pollfd fds[2] = {
		{ .fd = teredo_observer_get_fd(hub->obs), .events = POLLIN },
		{ .fd = hub->wake_fd, .events = POLLIN },
	};
	struct teredo_port_event ev;
	uint64_t count;
	bool frees_itself;

	teredo_ask_short_slice();
	while (!hub_stopping(hub)) {
		/* Subscribers are never abandoned: a failing poll (no memory) is tried again. */
		if (poll(fds, 2, -1) < 0) {
			if (errno != EINTR)
				usleep(10000);
			continue;
		}
		if (fds[1].revents && read(hub->wake_fd, &count, sizeof(count)) < 0)
			continue;
		deliver(hub, NULL);
		while (!hub_stopping(hub) && next_event(hub, &ev))
			if (ev.type != TEREDO_PORT_INITIAL)
				deliver_event(hub, &ev);
	}
	pthread_mutex_lock(&hub->lock);
	frees_itself = hub->frees_itself;
	pthread_mutex_unlock(&hub->lock);
	if (frees_itself)
		hub_destroy(hub);
	return NULL;
}

/* A hub not started yet: in the registry, it tells others that it is being made. */
static struct hub *hub_alloc(const struct teredo_options *opts)
{
	struct hub *hub = calloc(1, sizeof(*hub));

	if (!hub)
		return NULL;
	copy_options(hub, opts);
	pthread_mutex_init(&hub->lock, NULL);
	pthread_cond_init(&hub->callback_done, NULL);
	hub->wake_fd = -1;
	return hub;
}

/* The slow part: the programs loaded, or the service's first reply. */
static int hub_start(struct hub *hub)
{
	struct teredo_port_event initial;
	int err;

	hub->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (hub->wake_fd < 0)
		return set_last_error(-errno, "eventfd: %s", strerror(errno));
	err = teredo_observer_new(&hub->opts, &hub->obs);
	if (err)
		return err;
	/* The observer's own initial event is where the callbacks' knowledge starts. */
	if (teredo_observer_receive(hub->obs, &initial) == 1)
		hub->delivered_port = initial.port;
	err = -library_thread_start(&hub->thread, dispatch, hub);
	if (err)
		return set_last_error(err, "cannot start the dispatch thread: %s", strerror(-err));
	return 0;
}

static struct hub *find_hub(const struct teredo_options *opts)
{
	for (struct hub *h = hubs; h; h = h->next)
		if (same_options(&h->opts, opts))
			return h;
	return NULL;
}

static void unlink_hub(struct hub *hub)
{
	for (struct hub **p = &hubs; *p; p = &(*p)->next)
		if (*p == hub) {
			*p = hub->next;
			return;
		}
}

static int add_subscriber(struct hub *hub, struct teredo_subscription *sub)
{
	int err;

	pthread_mutex_lock(&hub->lock);
	err = grow_array(&hub->subs, &hub->cap_subs, hub->n_subs + 1, sizeof(*hub->subs));
	if (!err) {
		hub->subs[hub->n_subs++] = sub;
		hub->owed_initials += sub->needs_initial;
	}
	pthread_mutex_unlock(&hub->lock);
	return err;
}

/*
 * The hub a new subscription joins, made (and its programs loaded) if need
 * be. Called and returning with registry_lock held, it lets the lock go while
 * it makes a hub: loading the programs, or the service's first reply (up to
 * 5 s), must not stall every other registration, cancel, teredo_get_port and
 * fork() of the process. The hub is in the registry meanwhile, not ready, so
 * that a registration with the same options waits for it instead of loading
 * a copy of its own.
 */
static int hub_for(const struct teredo_options *opts, struct hub **out, bool *created)
{
	struct hub *hub;
	int err;

	*created = false;
	while ((hub = find_hub(opts)) && !hub->ready)
		pthread_cond_wait(&hub_made, &registry_lock);
	*out = hub;
	if (hub)
		return 0;
	hub = hub_alloc(opts);
	if (!hub)
		return set_last_error(-ENOMEM, "out of memory");
	hub->next = hubs;
	hubs = hub;
	pthread_mutex_unlock(&registry_lock);
	err = hub_start(hub);
	pthread_mutex_lock(&registry_lock);
	if (err)
		unlink_hub(hub);
	else
		hub->ready = true;
	pthread_cond_broadcast(&hub_made);
	if (err) {
		hub_destroy(hub); /* never started its thread: nothing to stop */
		return err;
	}
	*out = hub;
	*created = true;
	return 0;
}

static void stop_hub(struct hub *hub);
static int cancel_subscription(struct notify_handle *handle);

int subscribe_with_release(const struct teredo_options *opts, teredo_port_callback cb, void *ctx,
			   void (*release)(void *ctx), bool initial,
			   struct teredo_subscription **out)
{
	struct teredo_options resolved;
	struct teredo_subscription *sub;
	struct hub *hub, *unused = NULL;
	bool created;
	int err;

	if (out)
		*out = NULL;
	if (!cb || !out)
		return set_last_error(-EINVAL, "a callback and a place for the handle are needed");
	err = resolve_options(opts, &resolved);
	if (err)
		return err;
	pthread_once(&fork_once, handle_fork);
	sub = calloc(1, sizeof(*sub));
	if (!sub)
		return set_last_error(-ENOMEM, "out of memory");
	pthread_mutex_lock(&registry_lock);
	err = hub_for(&resolved, &hub, &created);
	if (err)
		goto unlock;
	err = grow_array(&handles, &cap_handles, n_handles + 1, sizeof(*handles));
	if (err) {
		err = set_last_error(-ENOMEM, "out of memory");
		goto forget_hub;
	}
	*sub = (struct teredo_subscription){ .handle = { next_id++, cancel_subscription },
					     .hub = hub,
					     .cb = cb,
					     .ctx = ctx,
					     .release = release,
					     .needs_initial = initial,
					     .refs = 1 };
	err = add_subscriber(hub, sub);
	if (err) {
		err = set_last_error(-ENOMEM, "out of memory");
		goto forget_hub;
	}
	handles[n_handles++] = &sub->handle;
	*out = (struct teredo_subscription *)sub->handle.id;
	sub = NULL;
	if (initial)
		wake(hub);
	goto unlock;
forget_hub:
	if (created) {
		unlink_hub(hub);
		unused = hub;
	}
unlock:
	pthread_mutex_unlock(&registry_lock);
	if (unused)
		stop_hub(unused);
	free(sub);
	return err;
}

_public_ int teredo_subscribe(const struct teredo_options *opts, teredo_port_callback cb, void *ctx,
			      bool initial, struct teredo_subscription **out)
{
	return subscribe_with_release(opts, cb, ctx, NULL, initial, out);
}

int notify_handle_add(struct notify_handle *handle, int (*cancel)(struct notify_handle *handle))
{
	int err;

	pthread_once(&fork_once, handle_fork);
	pthread_mutex_lock(&registry_lock);
	err = grow_array(&handles, &cap_handles, n_handles + 1, sizeof(*handles));
	if (err) {
		err = set_last_error(-ENOMEM, "out of memory");
	} else {
		*handle = (struct notify_handle){ next_id++, cancel };
		handles[n_handles++] = handle;
	}
	pthread_mutex_unlock(&registry_lock);
	return err;
}

/* Remove a live handle of that kind (NULL: any) from the table; NULL when there is none. */
static struct notify_handle *take_handle(uintptr_t id, int (*kind)(struct notify_handle *handle))
{
	for (size_t i = 0; i < n_handles; i++) {
		struct notify_handle *handle = handles[i];

		if (handle->id != id || (kind && handle->cancel != kind))
			continue;
		handles[i] = handles[--n_handles];
		return handle;
	}
	return NULL;
}

bool notify_handle_is_live(void *id, int (*kind)(struct notify_handle *handle))
{
	bool live = false;

	pthread_mutex_lock(&registry_lock);
	for (size_t i = 0; i < n_handles && !live; i++)
		live = handles[i]->id == (uintptr_t)id && handles[i]->cancel == kind;
	pthread_mutex_unlock(&registry_lock);
	return live;
}

int notify_handle_cancel(void *id, int (*kind)(struct notify_handle *handle))
{
	struct notify_handle *handle;

	if (!id)
		return set_last_error(-EINVAL, "the handle is NULL");
	pthread_mutex_lock(&registry_lock);
	handle = take_handle((uintptr_t)id, kind);
	pthread_mutex_unlock(&registry_lock);
	if (!handle)
		return set_last_error(-EBADF, "unknown or already cancelled handle %p", id);
	/* Out of the table, it is ours alone: its cancel may wait for a callback. */
	return handle->cancel(handle);
}

static void remove_subscriber_locked(struct hub *hub, struct teredo_subscription *sub)
{
	if (sub->needs_initial) {
		sub->needs_initial = false;
		hub->owed_initials--;
	}
	for (size_t i = 0; i < hub->n_subs; i++)
		if (hub->subs[i] == sub) {
			hub->subs[i] = hub->subs[--hub->n_subs];
			return;
		}
}

/* Stop a hub no subscriber uses any more, already out of the registry. */
static void stop_hub(struct hub *hub)
{
	bool from_own_callback = pthread_equal(hub->thread, pthread_self());

	pthread_mutex_lock(&hub->lock);
	hub->stopping = true;
	hub->frees_itself = from_own_callback;
	pthread_mutex_unlock(&hub->lock);
	wake(hub);
	if (from_own_callback) {
		pthread_detach(hub->thread);
		return;
	}
	pthread_join(hub->thread, NULL);
	hub_destroy(hub);
}

/*
 * The last subscriber's cancel stops the hub, but only once no other cancel
 * still waits on it: "last" is decided after the wait, under registry_lock,
 * which every change to the subscriber list holds.
 */
static bool finish_cancel(struct hub *hub)
{
	bool last;

	pthread_mutex_lock(&registry_lock);
	last = --hub->cancels == 0 && hub->n_subs == 0;
	if (last)
		unlink_hub(hub);
	pthread_mutex_unlock(&registry_lock);
	return last;
}

/*
 * Out of the handle table but still among its hub's subscribers, which keeps
 * the hub alive until the lines below remove it.
 */
static int cancel_subscription(struct notify_handle *handle)
{
	struct teredo_subscription *sub = (struct teredo_subscription *)handle;
	struct hub *hub = sub->hub;

	pthread_mutex_lock(&registry_lock);
	hub->cancels++;
	pthread_mutex_lock(&hub->lock);
	sub->cancelled = true;
	remove_subscriber_locked(hub, sub);
	pthread_mutex_unlock(&hub->lock);
	pthread_mutex_unlock(&registry_lock);

	pthread_mutex_lock(&hub->lock);
	/* Wait for its call in flight, unless that call is the one asking. */
	while (hub->in_callback == sub && !pthread_equal(hub->thread, pthread_self()))
		pthread_cond_wait(&hub->callback_done, &hub->lock);
	drop_ref_locked(sub);
	pthread_mutex_unlock(&hub->lock);
	if (finish_cancel(hub))
		stop_hub(hub);
	return 0;
}

_public_ int teredo_unsubscribe(struct teredo_subscription *handle)
{
	return notify_handle_cancel(handle, cancel_subscription);
}

static int port_from_hub(struct hub *hub, uint16_t *port)
{
	int err;

	pthread_mutex_lock(&hub->lock);
	err = teredo_observer_update(hub->obs);
	*port = teredo_observer_current_port(hub->obs);
	pthread_mutex_unlock(&hub->lock);
	return err ? err : *port != 0;
}

_public_ int teredo_get_port(const struct teredo_options *opts, uint16_t *port)
{
	struct teredo_options resolved;
	struct hub *hub;
	int err;

	if (!port)
		return set_last_error(-EINVAL, "the place for the port is NULL");
	*port = 0;
	err = resolve_options(opts, &resolved);
	if (err)
		return err;
	pthread_mutex_lock(&registry_lock);
	hub = find_hub(&resolved);
	if (hub && hub->ready) {
		err = port_from_hub(hub, port);
		pthread_mutex_unlock(&registry_lock);
		return err;
	}
	pthread_mutex_unlock(&registry_lock);
	err = observer_port_once(&resolved, port);
	return err ? err : *port != 0;
}
