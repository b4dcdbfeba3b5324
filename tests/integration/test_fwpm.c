// SPDX-License-Identifier: MIT
/*
 * The WFP system-ports face (teredo_fwpmu.h) against the real kernel, with
 * real client processes (udp-actor): FwpmSystemPortsGet0 with and without a
 * client, subscriptions getting the whole snapshot on every change,
 * unsubscribing from inside the callback, many subscriptions, bad handles.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "actor.h"
#include "observe.h"
#include "teredo_fwpmu.h"
#include "teredo_netioapi.h"
#include "teredo_observer.h"

#define MAX_SNAPSHOTS 256
#define MANY 64

/* What a callback saw: the Teredo type's port (0: none), and whether the snapshot was whole. */
struct seen {
	pthread_mutex_t lock;
	pthread_cond_t changed;
	int n;
	UINT16 port[MAX_SNAPSHOTS];
	bool whole[MAX_SNAPSHOTS];
	atomic_int inside, overlaps;
	void *context_seen;
	HANDLE unsubscribe_self;
	DWORD unsubscribe_result;
};

TestSuite(fwpm, .fini = fixture_teardown, .timeout = 120);

static void seen_init(struct seen *s)
{
	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->changed, NULL);
}

/* Every type in order, only Teredo with a port, at most one. */
static bool snapshot_whole(const FWPM_SYSTEM_PORTS0 *p, UINT16 *teredo)
{
	*teredo = 0;
	if (!p || p->numTypes != FWPM_SYSTEM_PORT_TYPE_MAX || !p->types)
		return false;
	for (UINT32 t = 0; t < p->numTypes; t++) {
		const FWPM_SYSTEM_PORTS_BY_TYPE0 *bt = &p->types[t];

		if (bt->type != (FWPM_SYSTEM_PORT_TYPE)t)
			return false;
		if (t != FWPM_SYSTEM_PORT_TEREDO) {
			if (bt->numPorts)
				return false;
			continue;
		}
		if (bt->numPorts > 1 || (bt->numPorts && !bt->ports))
			return false;
		*teredo = bt->numPorts ? bt->ports[0] : 0;
	}
	return true;
}

static void CALLBACK on_ports(void *context, const FWPM_SYSTEM_PORTS0 *ports)
{
	struct seen *s = context;
	UINT16 teredo;
	bool whole = snapshot_whole(ports, &teredo);

	if (atomic_fetch_add(&s->inside, 1))
		atomic_fetch_add(&s->overlaps, 1);
	if (s->unsubscribe_self)
		s->unsubscribe_result = FwpmSystemPortsUnsubscribe0(NULL, s->unsubscribe_self);
	pthread_mutex_lock(&s->lock);
	s->context_seen = context;
	if (s->n < MAX_SNAPSHOTS) {
		s->port[s->n] = teredo;
		s->whole[s->n] = whole;
	}
	s->n++;
	pthread_cond_broadcast(&s->changed);
	pthread_mutex_unlock(&s->lock);
	atomic_fetch_sub(&s->inside, 1);
}

static bool wait_snapshots(struct seen *s, int n, int timeout_ms)
{
	struct timespec deadline;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += timeout_ms / 1000 + 1;
	pthread_mutex_lock(&s->lock);
	while (s->n < n && !pthread_cond_timedwait(&s->changed, &s->lock, &deadline))
		;
	n = s->n >= n;
	pthread_mutex_unlock(&s->lock);
	return n;
}

static void expect_snapshot(struct seen *s, int i, UINT16 port)
{
	cr_assert(wait_snapshots(s, i + 1, EVENT_TIMEOUT_MS), "snapshot %d (port %u) never came", i,
		  port);
	cr_assert(s->whole[i], "snapshot %d is not whole: every type, in order", i);
	cr_assert_eq(s->port[i], port, "snapshot %d: Teredo port %u, expected %u", i, s->port[i],
		     port);
}

static HANDLE subscribe(HANDLE engine, struct seen *s)
{
	HANDLE h = (HANDLE)0xdead;
	DWORD rc = FwpmSystemPortsSubscribe0(engine, NULL, on_ports, s, &h);

	cr_assert_eq(rc, ERROR_SUCCESS, "FwpmSystemPortsSubscribe0: %#lx: %s", (unsigned long)rc,
		     teredo_observer_last_error());
	cr_assert_not_null(h);
	return h;
}

/* The Teredo port FwpmSystemPortsGet0 reports now (0: none); the snapshot checked whole. */
static UINT16 get_port(HANDLE engine)
{
	FWPM_SYSTEM_PORTS0 *ports = (FWPM_SYSTEM_PORTS0 *)0x1;
	UINT16 teredo;
	DWORD rc = FwpmSystemPortsGet0(engine, &ports);

	cr_assert_eq(rc, ERROR_SUCCESS, "FwpmSystemPortsGet0: %#lx: %s", (unsigned long)rc,
		     teredo_observer_last_error());
	cr_assert(snapshot_whole(ports, &teredo), "Get0's snapshot is not whole");
	FwpmFreeMemory0((void **)&ports);
	cr_assert_null(ports, "FwpmFreeMemory0 sets the pointer to NULL");
	return teredo;
}

Test(fwpm, header_values_match_windows)
{
	cr_assert_eq(FWPM_SYSTEM_PORT_RPC_EPMAP, 0);
	cr_assert_eq(FWPM_SYSTEM_PORT_TEREDO, 1);
	cr_assert_eq(FWPM_SYSTEM_PORT_IPHTTPS_IN, 2);
	cr_assert_eq(FWPM_SYSTEM_PORT_IPHTTPS_OUT, 3);
	cr_assert_eq(FWPM_SYSTEM_PORT_TYPE_MAX, 4);
	cr_assert_eq(RPC_C_AUTHN_WINNT, 10);
	cr_assert_eq((UINT32)RPC_C_AUTHN_DEFAULT, 0xFFFFFFFFu);
	cr_assert_eq((UINT32)FWP_E_NULL_POINTER, 0x8032001Cu);
	cr_assert_eq((UINT32)FWP_E_INVALID_PARAMETER, 0x80320035u);
	cr_assert_str_eq(teredo_windows_error_name(FWP_E_NULL_POINTER), "FWP_E_NULL_POINTER");
}

Test(fwpm, engine_open_only_local_and_known_authentication)
{
	HANDLE e = (HANDLE)0xdead;

	cr_assert_eq(FwpmEngineOpen0(L"remote", RPC_C_AUTHN_WINNT, NULL, NULL, &e),
		     RPC_S_SERVER_UNAVAILABLE);
	cr_assert_null(e, "on error the handle is set to NULL");
	cr_assert_eq(FwpmEngineOpen0(NULL, 9 /* RPC_C_AUTHN_GSS_NEGOTIATE */, NULL, NULL, &e),
		     RPC_S_UNKNOWN_AUTHN_SERVICE);
	cr_assert_eq(FwpmEngineOpen0(NULL, RPC_C_AUTHN_WINNT, NULL, NULL, NULL),
		     FWP_E_NULL_POINTER);
	cr_assert_eq(FwpmEngineOpen0(NULL, RPC_C_AUTHN_WINNT, NULL, NULL, &e), ERROR_SUCCESS);
	cr_assert_not_null(e);
	cr_assert_eq(FwpmEngineClose0(e), ERROR_SUCCESS);
	cr_assert_eq(FwpmEngineClose0(e), ERROR_INVALID_HANDLE, "closed twice");
	cr_assert_eq(FwpmEngineOpen0(NULL, RPC_C_AUTHN_DEFAULT, NULL, NULL, &e), ERROR_SUCCESS);
	cr_assert_eq(FwpmEngineClose0(e), ERROR_SUCCESS);
}

Test(fwpm, nulls_and_bad_handles_are_errors_not_crashes)
{
	FWPM_SYSTEM_PORTS0 *ports;
	struct seen s;
	HANDLE h = (HANDLE)0xdead, engine;

	seen_init(&s);
	cr_assert_eq(FwpmSystemPortsGet0(NULL, NULL), FWP_E_NULL_POINTER);
	cr_assert_eq(FwpmSystemPortsGet0((HANDLE)0x1234, &ports), ERROR_INVALID_HANDLE);
	cr_assert_null(ports);
	cr_assert_eq(FwpmSystemPortsSubscribe0(NULL, NULL, NULL, &s, &h), FWP_E_NULL_POINTER);
	cr_assert_null(h);
	cr_assert_eq(FwpmSystemPortsSubscribe0(NULL, NULL, on_ports, &s, NULL), FWP_E_NULL_POINTER);
	cr_assert_eq(FwpmSystemPortsSubscribe0(NULL, &s, on_ports, &s, &h),
		     FWP_E_INVALID_PARAMETER);
	cr_assert_eq(FwpmSystemPortsUnsubscribe0(NULL, NULL), ERROR_INVALID_HANDLE);
	cr_assert_eq(FwpmSystemPortsUnsubscribe0(NULL, (HANDLE)&s), ERROR_INVALID_HANDLE);
	cr_assert_eq(FwpmEngineClose0(NULL), ERROR_INVALID_HANDLE);
	cr_assert_eq(FwpmEngineClose0((HANDLE)&s), ERROR_INVALID_HANDLE);
	FwpmFreeMemory0(NULL);
	ports = NULL;
	FwpmFreeMemory0((void **)&ports);
	need_root();
	/* Handles of another kind are refused both ways, and stay good for their own kind. */
	cr_assert_eq(FwpmEngineOpen0(NULL, RPC_C_AUTHN_WINNT, NULL, NULL, &engine), ERROR_SUCCESS);
	h = subscribe(engine, &s);
	cr_assert_eq(FwpmEngineClose0(h), ERROR_INVALID_HANDLE, "a subscription is no engine");
	cr_assert_eq(FwpmSystemPortsUnsubscribe0(NULL, engine), ERROR_INVALID_HANDLE,
		     "an engine is no subscription");
	cr_assert_eq(FwpmSystemPortsGet0(h, &ports), ERROR_INVALID_HANDLE,
		     "a subscription is no engine");
	cr_assert_eq(FwpmSystemPortsUnsubscribe0(engine, h), ERROR_SUCCESS);
	cr_assert_eq(FwpmSystemPortsUnsubscribe0(engine, h), ERROR_INVALID_HANDLE, "twice");
	cr_assert_eq(FwpmEngineClose0(engine), ERROR_SUCCESS);
	cr_assert_eq(FwpmSystemPortsGet0(engine, &ports), ERROR_INVALID_HANDLE, "a closed engine");
}

Test(fwpm, get_with_and_without_a_client_agrees_with_get_teredo_port)
{
	USHORT port;
	long p;

	need_root();
	cr_assert_eq(get_port(NULL), 0, "no client: the Teredo type has no port");
	client = actor_start("miredo");
	p = actor_new_bound(client, "socket4");
	cr_assert_eq(get_port(NULL), (UINT16)p);
	cr_assert_eq(GetTeredoPort(&port), NO_ERROR);
	cr_assert_eq(port, (USHORT)p, "FwpmSystemPortsGet0 and GetTeredoPort agree");
	actor_do(client, "close");
}

Test(fwpm, subscribe_gets_the_whole_snapshot_on_each_change)
{
	struct seen s;
	HANDLE h;
	long p, q;

	need_root();
	seen_init(&s);
	h = subscribe(NULL, &s);
	client = actor_start("miredo");
	p = actor_new_bound(client, "socket4");
	expect_snapshot(&s, 0, (UINT16)p);
	other = actor_start("miredo");
	q = actor_new_bound(other, "socket6");
	expect_snapshot(&s, 1, (UINT16)q);
	actor_do(other, "close");
	expect_snapshot(&s, 2, (UINT16)p);
	actor_do(client, "close");
	expect_snapshot(&s, 3, 0);
	cr_assert_eq(s.context_seen, &s, "the subscriber's context");
	cr_assert_eq(FwpmSystemPortsUnsubscribe0(NULL, h), ERROR_SUCCESS);
	cr_assert_eq(atomic_load(&s.overlaps), 0, "calls are serialized");
	cr_assert_eq(s.n, 4, "no initial call and nothing after the delete");
}

Test(fwpm, unsubscribe_from_inside_the_callback)
{
	struct seen s;
	long p;
	HANDLE h;

	need_root();
	seen_init(&s);
	h = subscribe(NULL, &s);
	s.unsubscribe_self = h;
	client = actor_start("miredo");
	p = actor_new_bound(client, "socket4");
	expect_snapshot(&s, 0, (UINT16)p);
	cr_assert_eq(s.unsubscribe_result, ERROR_SUCCESS, "no deadlock, no error");
	actor_do(client, "close");
	usleep(300 * 1000);
	cr_assert_eq(s.n, 1, "no call after the unsubscribe");
	cr_assert_eq(FwpmSystemPortsUnsubscribe0(NULL, h), ERROR_INVALID_HANDLE, "already ended");
}

Test(fwpm, sixty_four_subscriptions_each_see_every_change)
{
	static struct seen s[MANY];
	HANDLE h[MANY];
	long p;

	need_root();
	for (int i = 0; i < MANY; i++) {
		seen_init(&s[i]);
		h[i] = subscribe(NULL, &s[i]);
	}
	client = actor_start("miredo");
	p = actor_new_bound(client, "socket4");
	for (int i = 0; i < MANY; i++)
		expect_snapshot(&s[i], 0, (UINT16)p);
	actor_do(client, "close");
	for (int i = 0; i < MANY; i++) {
		expect_snapshot(&s[i], 1, 0);
		cr_assert_eq(FwpmSystemPortsUnsubscribe0(NULL, h[i]), ERROR_SUCCESS);
	}
}
