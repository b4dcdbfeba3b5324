// SPDX-License-Identifier: MIT
/*
 * Callback subscriptions. Every subscription with an equal selection in a
 * process shares a hub: one observer (one loaded copy of the BPF programs).
 * Each subscription has a thread of its own that makes its calls from a
 * queue of its own. Whichever of those threads is free reads the observer
 * (one at a time: the hub's reader), queues each event for every
 * subscription and then makes its own call: the thread the kernel woke makes
 * the first call, with no hand-over to a thread woken in turn (a wake-up is
 * tens of microseconds, as much as the rest of the path). Calls for one
 * subscription never overlap and come in the kernel's order, and a callback
 * that blocks delays no other subscription: another's thread reads meanwhile.
 * While every callback blocks, nobody reads: the events wait in the kernel's
 * ring buffer (or the service's socket), and a loss there is a resync.
 *
 * Handles are ids, never reused, looked up in a table before use: a stale,
 * foreign or doubly-cancelled handle is found missing, never dereferenced.
 * The table holds every kind of handle the library gives out (subscriptions
 * here, stable unicast table requests in unicast_address.c), each with its
 * own cancel, so that CancelMibChangeNotify2 ends any of them.
 *
 * Locks: registry_lock (hubs and handles), then hub->lock (a hub's
 * subscribers, its observer, its reader, and its subscriptions' queues).
 * No lock is held while a callback runs, so a callback may subscribe and
 * unsubscribe freely.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "grow.h"
#include "last_error.h"
#include "note_queue.h"
#include "observer.h"
#include "selection.h"
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
	pthread_t thread;	 /* makes its calls, one at a time, and reads for all */
	pthread_cond_t wakeup;	 /* with hub->lock: a call queued, no reader, or cancelled */
	struct note_queue calls; /* owed, in the kernel's order (hub->lock) */
	/* Set under hub->lock; read without it after a call, when the hub may be gone. */
	atomic_bool cancelled;
	bool frees_itself; /* cancelled from its own callback: nobody joins it */
};

struct hub {
	struct teredo_selection *sel; /* its own copy: equal ones share the hub */
	struct teredo_observer *obs;
	int wake_fd; /* eventfd: ends the reader's wait (its subscription is cancelled) */
	pthread_mutex_t lock;
	struct teredo_subscription **subs;
	size_t n_subs, cap_subs;
	struct teredo_subscription *reader; /* waiting on the observer's fd, or NULL */
	uint16_t delivered_port;	    /* the port as the queued calls know it */
	unsigned int cancels; /* cancels under way (registry_lock): the hub must outlive them */
	bool ready;	      /* started: until then registry_lock's holders wait on hub_made */
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
 * fork() copies this process's hubs but not the threads that read them, so in
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

static void wake(struct hub *hub)
{
	uint64_t one = 1;

	/* Only fails when the counter is saturated, and then it is readable anyway. */
	if (write(hub->wake_fd, &one, sizeof(one)) < 0)
		return;
}

static void sub_free(struct teredo_subscription *sub, bool release)
{
	if (release && sub->release)
		sub->release(sub->ctx);
	note_queue_fini(&sub->calls);
	pthread_cond_destroy(&sub->wakeup);
	free(sub);
}

/*
 * What one read of the source brought, queued for every subscription
 * (hub->lock held). Not read again before the calls: that would only find
 * it empty, a system call later; the observer's fd says when there is more.
 */
static void fan_out(struct hub *hub)
{
	struct teredo_port_event ev;
	bool more = true;

	while (more && teredo_observer_receive(hub->obs, &ev) == 1) {
		more = observer_has_queued(hub->obs);
		if (ev.type == TEREDO_PORT_INITIAL)
			continue;
		hub->delivered_port = ev.port;
		for (size_t i = 0; i < hub->n_subs; i++) {
			/*
			 * Out of memory the call is skipped: nothing sane to do but go on.
			 * Woken all the same, that thread reads while this one calls.
			 */
			(void)note_queue_push(&hub->subs[i]->calls, &ev);
			pthread_cond_signal(&hub->subs[i]->wakeup);
		}
	}
}

/*
 * Until the observer's fd is readable, or wake() is called: in the
 * observer's own epoll set, which holds wake_fd too (hub_start), so that
 * the source's fds are waited on themselves, not through a nested set.
 */
static void wait_for_news(struct hub *hub)
{
	struct epoll_event evs[8];
	uint64_t count;
	int n = epoll_wait(teredo_observer_get_fd(hub->obs), evs, 8, -1);

	/* Subscribers are never abandoned: a failing wait (no memory) is tried again. */
	if (n < 0) {
		if (errno != EINTR)
			usleep(10000);
		return;
	}
	for (int i = 0; i < n; i++)
		if (evs[i].data.u64 == (uint64_t)hub->wake_fd &&
		    read(hub->wake_fd, &count, sizeof(count)) < 0)
			return; /* read by nobody else: EAGAIN cannot happen */
}

/*
 * Be the hub's reader for one wait (hub->lock held, and held again on
 * return): what the observer has goes to every queue, this one's too.
 * Cancelled meanwhile, it leaves the reading to another free thread.
 */
static void read_for_all(struct hub *hub, struct teredo_subscription *sub)
{
	hub->reader = sub;
	pthread_mutex_unlock(&hub->lock);
	wait_for_news(hub);
	pthread_mutex_lock(&hub->lock);
	hub->reader = NULL;
	if (!atomic_load(&sub->cancelled)) {
		fan_out(hub);
		return;
	}
	for (size_t i = 0; i < hub->n_subs; i++)
		pthread_cond_signal(&hub->subs[i]->wakeup);
}

/* A subscription's own thread: its calls, and the hub's reading when free, until cancelled. */
static void *make_calls(void *arg)
{
	struct teredo_subscription *sub = arg;
	struct hub *hub = sub->hub;
	struct teredo_port_event ev;

	teredo_ask_short_slice();
	pthread_mutex_lock(&hub->lock);
	while (!atomic_load(&sub->cancelled)) {
		if (note_queue_pop(&sub->calls, &ev)) {
			pthread_mutex_unlock(&hub->lock);
			sub->cb(sub->ctx, &ev);
			/* Cancelled by its own callback, the hub may be gone already. */
			if (atomic_load(&sub->cancelled))
				goto done;
			pthread_mutex_lock(&hub->lock);
		} else if (!hub->reader) {
			read_for_all(hub, sub);
		} else {
			pthread_cond_wait(&sub->wakeup, &hub->lock);
		}
	}
	pthread_mutex_unlock(&hub->lock);
done:
	if (sub->frees_itself)
		sub_free(sub, true);
	return NULL;
}

/* Its thread starts when it joins a hub (add_subscriber). */
static int sub_new(teredo_port_callback cb, void *ctx, void (*release)(void *ctx),
		   struct teredo_subscription **out)
{
	struct teredo_subscription *sub = calloc(1, sizeof(*sub));

	*out = NULL;
	if (!sub)
		return set_last_error(-ENOMEM, "out of memory");
	*sub = (struct teredo_subscription){ .cb = cb, .ctx = ctx, .release = release };
	atomic_init(&sub->cancelled, false);
	pthread_cond_init(&sub->wakeup, NULL);
	note_queue_init(&sub->calls);
	*out = sub;
	return 0;
}

/*
 * No call after this returns, and none in flight, unless the caller is the
 * subscription's own callback: then its thread ends (and frees it) once that
 * call returns. release runs only for a subscription that was given out.
 * Its hub lives until this returns.
 */
static void sub_end(struct teredo_subscription *sub, bool release)
{
	struct hub *hub = sub->hub;
	bool own_thread = pthread_equal(sub->thread, pthread_self());

	pthread_mutex_lock(&hub->lock);
	sub->frees_itself = own_thread;
	atomic_store(&sub->cancelled, true);
	pthread_cond_signal(&sub->wakeup);
	if (hub->reader == sub)
		wake(hub);
	pthread_mutex_unlock(&hub->lock);
	if (own_thread) {
		pthread_detach(sub->thread);
		return;
	}
	pthread_join(sub->thread, NULL);
	sub_free(sub, release);
}

static void hub_destroy(struct hub *hub)
{
	teredo_observer_free(hub->obs);
	teredo_selection_free(hub->sel);
	if (hub->wake_fd >= 0)
		close(hub->wake_fd);
	pthread_mutex_destroy(&hub->lock);
	free(hub->subs);
	free(hub);
}

/* A hub not started yet: in the registry, it tells others that it is being made. */
static struct hub *hub_alloc(const struct teredo_selection *sel)
{
	struct hub *hub = calloc(1, sizeof(*hub));

	if (!hub)
		return NULL;
	hub->sel = teredo_selection_copy(sel);
	if (!hub->sel) {
		free(hub);
		return NULL;
	}
	pthread_mutex_init(&hub->lock, NULL);
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
	err = teredo_observer_new(hub->sel, &hub->obs);
	if (!err)
		err = observer_wake_too(hub->obs, hub->wake_fd);
	if (err)
		return err;
	/* The observer's own initial event is where the callbacks' knowledge starts. */
	if (teredo_observer_receive(hub->obs, &initial) == 1)
		hub->delivered_port = initial.port;
	return 0;
}

static struct hub *find_hub(const struct teredo_selection *sel)
{
	for (struct hub *h = hubs; h; h = h->next)
		if (selection_equal(h->sel, sel))
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

/*
 * Its first call, if asked, is the initial one, with the port as its later
 * calls know it; its thread starts here, and waits for hub->lock.
 */
static int add_subscriber(struct hub *hub, struct teredo_subscription *sub, bool initial)
{
	struct teredo_port_event first = { .type = TEREDO_PORT_INITIAL };
	int err;

	pthread_mutex_lock(&hub->lock);
	err = grow_array(&hub->subs, &hub->cap_subs, hub->n_subs + 1, sizeof(*hub->subs));
	first.port = hub->delivered_port;
	if (!err && initial)
		err = note_queue_push(&sub->calls, &first);
	if (err) {
		pthread_mutex_unlock(&hub->lock);
		return set_last_error(-ENOMEM, "out of memory");
	}
	sub->hub = hub;
	err = -library_thread_start(&sub->thread, make_calls, sub);
	if (!err)
		hub->subs[hub->n_subs++] = sub;
	pthread_mutex_unlock(&hub->lock);
	return err ? set_last_error(err, "cannot start a callback thread: %s", strerror(-err)) : 0;
}

/*
 * The hub a new subscription joins, made (and its programs loaded) if need
 * be. Called and returning with registry_lock held, it lets the lock go while
 * it makes a hub: loading the programs, or the service's first reply (up to
 * 5 s), must not stall every other registration, cancel, teredo_get_port and
 * fork() of the process. The hub is in the registry meanwhile, not ready, so
 * that a registration with an equal selection waits for it instead of loading
 * a copy of its own.
 */
static int hub_for(const struct teredo_selection *sel, struct hub **out, bool *created)
{
	struct hub *hub;
	int err;

	*created = false;
	while ((hub = find_hub(sel)) && !hub->ready)
		pthread_cond_wait(&hub_made, &registry_lock);
	*out = hub;
	if (hub)
		return 0;
	hub = hub_alloc(sel);
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

int subscribe_with_release(const struct teredo_selection *sel, teredo_port_callback cb, void *ctx,
			   void (*release)(void *ctx), bool initial,
			   struct teredo_subscription **out)
{
	struct teredo_selection *resolved = NULL;
	struct teredo_subscription *sub;
	struct hub *hub, *unused = NULL;
	bool created;
	int err;

	if (out)
		*out = NULL;
	if (!cb || !out)
		return set_last_error(-EINVAL, "a callback and a place for the handle are needed");
	err = selection_resolve(sel, &resolved);
	if (err)
		return err;
	pthread_once(&fork_once, handle_fork);
	err = sub_new(cb, ctx, release, &sub);
	if (err) {
		teredo_selection_free(resolved);
		return err;
	}
	pthread_mutex_lock(&registry_lock);
	err = hub_for(resolved, &hub, &created);
	if (err)
		goto unlock;
	sub->handle = (struct notify_handle){ next_id++, cancel_subscription };
	err = grow_array(&handles, &cap_handles, n_handles + 1, sizeof(*handles))
		      ? set_last_error(-ENOMEM, "out of memory")
		      : add_subscriber(hub, sub, initial);
	if (err) {
		if (created) {
			unlink_hub(hub);
			unused = hub;
		}
		goto unlock;
	}
	handles[n_handles++] = &sub->handle;
	*out = (struct teredo_subscription *)sub->handle.id;
	sub = NULL;
unlock:
	pthread_mutex_unlock(&registry_lock);
	teredo_selection_free(resolved);
	if (unused)
		stop_hub(unused);
	if (sub)
		sub_free(sub, false); /* its thread never started */
	return err;
}

_public_ int teredo_subscribe(const struct teredo_selection *sel, teredo_port_callback cb,
			      void *ctx, bool initial, struct teredo_subscription **out)
{
	return subscribe_with_release(sel, cb, ctx, NULL, initial, out);
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
	for (size_t i = 0; i < hub->n_subs; i++)
		if (hub->subs[i] == sub) {
			hub->subs[i] = hub->subs[--hub->n_subs];
			return;
		}
}

/*
 * Stop a hub no subscriber uses any more, already out of the registry: every
 * thread that read it has been joined, or is the caller's (a callback
 * cancelling the last subscription), which touches the hub no more.
 */
static void stop_hub(struct hub *hub)
{
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
	remove_subscriber_locked(hub, sub);
	pthread_mutex_unlock(&hub->lock);
	pthread_mutex_unlock(&registry_lock);

	/* Waits for its call in flight, unless that call is the one asking. */
	sub_end(sub, true);
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

_public_ int teredo_get_port(const struct teredo_selection *sel, uint16_t *port)
{
	struct teredo_selection *resolved;
	struct hub *hub;
	int err;

	if (!port)
		return set_last_error(-EINVAL, "the place for the port is NULL");
	*port = 0;
	err = selection_resolve(sel, &resolved);
	if (err)
		return err;
	pthread_mutex_lock(&registry_lock);
	hub = find_hub(resolved);
	if (hub && hub->ready) {
		err = port_from_hub(hub, port);
		pthread_mutex_unlock(&registry_lock);
	} else {
		pthread_mutex_unlock(&registry_lock);
		err = observer_port_once(resolved, port);
		err = err ? err : *port != 0;
	}
	teredo_selection_free(resolved);
	return err;
}
