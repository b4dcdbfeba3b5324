// SPDX-License-Identifier: MIT
/*
 * NotifyTeredoPortChange, GetTeredoPort and CancelMibChangeNotify2 against
 * the real kernel, with real client processes (udp-actor).
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <linux/capability.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "actor.h"
#include "observe.h"
#include "teredo_netioapi.h"
#include "teredo_observer.h"

#define MAX_CALLS 4096

struct call {
	USHORT port;
	MIB_NOTIFICATION_TYPE type;
};

struct recorder {
	pthread_mutex_t lock;
	pthread_cond_t changed;
	struct call calls[MAX_CALLS];
	int n;
	atomic_int inside;   /* callbacks running right now */
	atomic_int overlaps; /* times a call began while another ran */
	int sleep_ms;	     /* make each call slow */
	atomic_bool returned;
	HANDLE cancel_self; /* cancel this from inside the callback */
	DWORD cancel_result;
};

TestSuite(windows_api, .fini = fixture_teardown, .timeout = 120);

static void recorder_init(struct recorder *r)
{
	memset(r, 0, sizeof(*r));
	pthread_mutex_init(&r->lock, NULL);
	pthread_cond_init(&r->changed, NULL);
}

static VOID record(PVOID ctx, USHORT port, MIB_NOTIFICATION_TYPE type)
{
	struct recorder *r = ctx;

	if (atomic_fetch_add(&r->inside, 1))
		atomic_fetch_add(&r->overlaps, 1);
	atomic_store(&r->returned, false);
	if (r->sleep_ms)
		usleep(r->sleep_ms * 1000);
	if (r->cancel_self)
		r->cancel_result = CancelMibChangeNotify2(r->cancel_self);
	pthread_mutex_lock(&r->lock);
	if (r->n < MAX_CALLS)
		r->calls[r->n] = (struct call){ port, type };
	r->n++;
	pthread_cond_broadcast(&r->changed);
	pthread_mutex_unlock(&r->lock);
	atomic_fetch_sub(&r->inside, 1);
	atomic_store(&r->returned, true);
}

/* Wait until the recorder holds at least n calls; false after the timeout. */
static bool wait_calls(struct recorder *r, int n, int timeout_ms)
{
	struct timespec deadline;
	bool ok = true;

	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += timeout_ms / 1000;
	deadline.tv_nsec += (timeout_ms % 1000) * 1000000L;
	if (deadline.tv_nsec >= 1000000000L) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000L;
	}
	pthread_mutex_lock(&r->lock);
	while (r->n < n && ok)
		ok = pthread_cond_timedwait(&r->changed, &r->lock, &deadline) == 0;
	ok = r->n >= n;
	pthread_mutex_unlock(&r->lock);
	return ok;
}

static void expect_call(struct recorder *r, int i, MIB_NOTIFICATION_TYPE type, USHORT port)
{
	cr_assert(wait_calls(r, i + 1, EVENT_TIMEOUT_MS), "call %d never came (type %d port %u)", i,
		  type, port);
	cr_assert(r->calls[i].type == type && r->calls[i].port == port,
		  "call %d: expected type %d port %u, got type %d port %u", i, type, port,
		  r->calls[i].type, r->calls[i].port);
}

static HANDLE notify(struct recorder *r, BOOLEAN initial)
{
	HANDLE h = (HANDLE)0xdead;
	DWORD rc = NotifyTeredoPortChange(record, r, initial, &h);

	if (rc == ERROR_ACCESS_DENIED || rc == ERROR_NOT_SUPPORTED)
		cr_skip_test("NotifyTeredoPortChange: %s", teredo_observer_last_error());
	cr_assert_eq(rc, NO_ERROR, "NotifyTeredoPortChange: %lu: %s", (unsigned long)rc,
		     teredo_observer_last_error());
	cr_assert_not_null(h);
	return h;
}

static VOID never_called(PVOID ctx, USHORT port, MIB_NOTIFICATION_TYPE type)
{
	(void)ctx;
	(void)port;
	(void)type;
	abort();
}

Test(windows_api, header_values_match_windows)
{
	cr_assert_eq(MibParameterNotification, 0);
	cr_assert_eq(MibAddInstance, 1);
	cr_assert_eq(MibDeleteInstance, 2);
	cr_assert_eq(MibInitialNotification, 3);
	cr_assert_eq(MIB_INVALID_TEREDO_PORT_NUMBER, 0);
	cr_assert_eq(NO_ERROR, 0);
	cr_assert_eq(ERROR_ACCESS_DENIED, 5);
	cr_assert_eq(ERROR_INVALID_HANDLE, 6);
	cr_assert_eq(ERROR_NOT_ENOUGH_MEMORY, 8);
	cr_assert_eq(ERROR_NOT_READY, 21);
	cr_assert_eq(ERROR_NOT_SUPPORTED, 50);
	cr_assert_eq(ERROR_INVALID_PARAMETER, 87);
	cr_assert_eq(sizeof(DWORD), 4);
	cr_assert_eq(sizeof(USHORT), 2);
	cr_assert_str_eq(teredo_windows_error_name(ERROR_NOT_READY), "ERROR_NOT_READY");
	cr_assert_str_eq(teredo_windows_error_name(12345), "ERROR_UNKNOWN");
	cr_assert_str_eq(teredo_mib_notification_type_name(MibAddInstance), "MibAddInstance");
}

Test(windows_api, null_callback_or_handle)
{
	HANDLE h = (HANDLE)0xdead;

	cr_assert_eq(NotifyTeredoPortChange(NULL, NULL, TRUE, &h), ERROR_INVALID_PARAMETER);
	cr_assert_null(h, "on error the handle is set to NULL");
	cr_assert_eq(NotifyTeredoPortChange(never_called, NULL, TRUE, NULL),
		     ERROR_INVALID_PARAMETER);
}

Test(windows_api, cancel_bad_handles)
{
	struct recorder r;
	HANDLE h;

	cr_assert_eq(CancelMibChangeNotify2(NULL), ERROR_INVALID_PARAMETER);
	cr_assert_eq(CancelMibChangeNotify2((HANDLE)0x1234), ERROR_INVALID_HANDLE);
	cr_assert_eq(CancelMibChangeNotify2((HANDLE)&r), ERROR_INVALID_HANDLE,
		     "a pointer that is no handle");
	need_root();
	recorder_init(&r);
	h = notify(&r, FALSE);
	cr_assert_eq(CancelMibChangeNotify2(h), NO_ERROR);
	cr_assert_eq(CancelMibChangeNotify2(h), ERROR_INVALID_HANDLE, "already cancelled");
	/* A new registration never revives an old handle. */
	HANDLE h2 = notify(&r, FALSE);
	cr_assert_neq(h2, h);
	cr_assert_eq(CancelMibChangeNotify2(h), ERROR_INVALID_HANDLE, "stale");
	cr_assert_eq(CancelMibChangeNotify2(h2), NO_ERROR);
}

Test(windows_api, initial_then_add_change_delete)
{
	struct recorder r;
	long p, q;
	HANDLE h;

	need_root();
	recorder_init(&r);
	h = notify(&r, TRUE);
	expect_call(&r, 0, MibInitialNotification, 0);
	client = actor_start("miredo");
	p = actor_new_bound(client, "socket4");
	expect_call(&r, 1, MibAddInstance, (USHORT)p);
	other = actor_start("miredo");
	q = actor_new_bound(other, "socket6");
	expect_call(&r, 2, MibParameterNotification, (USHORT)q);
	actor_do(other, "close");
	expect_call(&r, 3, MibParameterNotification, (USHORT)p);
	actor_do(client, "close");
	expect_call(&r, 4, MibDeleteInstance, 0);
	cr_assert_eq(CancelMibChangeNotify2(h), NO_ERROR);
	cr_assert_eq(atomic_load(&r.overlaps), 0);
}

Test(windows_api, initial_false_means_no_initial_call)
{
	struct recorder r;
	long p;
	HANDLE h;

	need_root();
	recorder_init(&r);
	h = notify(&r, FALSE);
	client = actor_start("miredo");
	p = actor_new_bound(client, "socket4");
	expect_call(&r, 0, MibAddInstance, (USHORT)p);
	cr_assert_eq(CancelMibChangeNotify2(h), NO_ERROR);
}

Test(windows_api, initial_port_is_zero_even_with_a_client)
{
	struct recorder r;
	HANDLE h;

	need_root();
	client = actor_start("miredo");
	actor_new_bound(client, "socket4");
	recorder_init(&r);
	h = notify(&r, TRUE);
	expect_call(&r, 0, MibInitialNotification, 0);
	cr_assert_eq(CancelMibChangeNotify2(h), NO_ERROR);
}

Test(windows_api, get_teredo_port)
{
	USHORT port = 1;
	long p;

	cr_assert_eq(GetTeredoPort(NULL), ERROR_INVALID_PARAMETER);
	need_root();
	cr_assert_eq(GetTeredoPort(&port), ERROR_NOT_READY, "%s", teredo_observer_last_error());
	client = actor_start("miredo");
	p = actor_new_bound(client, "socket6");
	/* No registration in this process, and the client started before us. */
	cr_assert_eq(GetTeredoPort(&port), NO_ERROR, "%s", teredo_observer_last_error());
	cr_assert_eq(port, p);
}

Test(windows_api, get_teredo_port_follows_a_live_registration)
{
	struct recorder r;
	USHORT port = 0;
	long p;
	HANDLE h;

	need_root();
	recorder_init(&r);
	h = notify(&r, FALSE);
	client = actor_start("miredo");
	p = actor_new_bound(client, "socket4");
	/* Straight after bind() returned: no waiting for the callback first. */
	cr_assert_eq(GetTeredoPort(&port), NO_ERROR);
	cr_assert_eq(port, p);
	expect_call(&r, 0, MibAddInstance, (USHORT)p);
	actor_do(client, "close");
	expect_call(&r, 1, MibDeleteInstance, 0);
	cr_assert_eq(GetTeredoPort(&port), ERROR_NOT_READY);
	cr_assert_eq(CancelMibChangeNotify2(h), NO_ERROR);
}

Test(windows_api, calls_in_kernel_order_never_overlapping)
{
	struct recorder r;
	long ports[40];
	HANDLE h;

	need_root();
	recorder_init(&r);
	r.sleep_ms = 2; /* slow callbacks let events pile up behind them */
	h = notify(&r, TRUE);
	client = actor_start("miredo");
	for (int i = 0; i < 40; i++) {
		actor_do(client, "socket4");
		ports[i] = actor_do(client, "bind 0");
		actor_do(client, "close");
	}
	cr_assert(wait_calls(&r, 81, EVENT_TIMEOUT_MS * 2), "only %d calls", r.n);
	cr_assert_eq(r.calls[0].type, MibInitialNotification);
	for (int i = 0; i < 40; i++) {
		cr_assert(r.calls[1 + 2 * i].type == MibAddInstance &&
				  r.calls[1 + 2 * i].port == ports[i],
			  "call %d: type %d port %u, expected add %ld", 1 + 2 * i,
			  r.calls[1 + 2 * i].type, r.calls[1 + 2 * i].port, ports[i]);
		cr_assert_eq(r.calls[2 + 2 * i].type, MibDeleteInstance);
	}
	cr_assert_eq(atomic_load(&r.overlaps), 0);
	cr_assert_eq(CancelMibChangeNotify2(h), NO_ERROR);
}

struct slow_cancel {
	struct recorder *r;
	HANDLE h;
	bool returned_when_done;
};

Test(windows_api, cancel_waits_for_the_call_in_flight)
{
	struct recorder r;
	int calls_at_return;
	HANDLE h;

	need_root();
	recorder_init(&r);
	r.sleep_ms = 500;
	h = notify(&r, TRUE);
	/* The initial call is sleeping in the dispatch thread while we cancel. */
	while (atomic_load(&r.inside) == 0)
		usleep(1000);
	cr_assert_eq(CancelMibChangeNotify2(h), NO_ERROR);
	cr_assert(atomic_load(&r.returned), "cancel returned while the callback still ran");
	calls_at_return = r.n;
	client = actor_start("miredo");
	actor_new_bound(client, "socket4");
	usleep(300 * 1000);
	cr_assert_eq(r.n, calls_at_return, "a call came after cancel returned");
}

Test(windows_api, cancel_from_inside_own_callback)
{
	struct recorder r, witness;
	HANDLE h, hw;
	long p;

	need_root();
	recorder_init(&r);
	recorder_init(&witness);
	hw = notify(&witness, FALSE); /* keeps the shared programs alive and sees the events */
	h = notify(&r, FALSE);
	r.cancel_self = h;
	client = actor_start("miredo");
	p = actor_new_bound(client, "socket4");
	expect_call(&r, 0, MibAddInstance, (USHORT)p);
	cr_assert_eq(r.cancel_result, NO_ERROR, "cancel from inside: %lu",
		     (unsigned long)r.cancel_result);
	actor_do(client, "close");
	expect_call(&witness, 1, MibDeleteInstance, 0);
	cr_assert_eq(r.n, 1, "a call came after the callback cancelled itself");
	cr_assert_eq(CancelMibChangeNotify2(h), ERROR_INVALID_HANDLE);
	cr_assert_eq(CancelMibChangeNotify2(hw), NO_ERROR);
}

Test(windows_api, cancel_last_from_inside_own_callback)
{
	struct recorder r;
	HANDLE h;

	need_root();
	recorder_init(&r);
	h = notify(&r, TRUE);
	r.cancel_self = h;
	expect_call(&r, 0, MibInitialNotification, 0);
	cr_assert_eq(r.cancel_result, NO_ERROR);
	/* The programs go with the last registration; a new one loads them again. */
	usleep(100 * 1000);
	r.cancel_self = NULL;
	h = notify(&r, TRUE);
	expect_call(&r, 1, MibInitialNotification, 0);
	cr_assert_eq(CancelMibChangeNotify2(h), NO_ERROR);
}

static void drop_bpf_capabilities(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct caps[2];

	cr_assert_eq(syscall(SYS_capget, &hdr, caps), 0);
	caps[0].effective &= ~(1u << CAP_NET_ADMIN) & ~(1u << CAP_SYS_ADMIN);
	caps[1].effective &= ~(1u << (38 - 32)) & ~(1u << (39 - 32)); /* PERFMON, BPF */
	cr_assert_eq(syscall(SYS_capset, &hdr, caps), 0);
}

struct diagnostic {
	DWORD code;
	char message[256];
};

static void catch_diagnostic(void *ctx, uint32_t code, const char *message)
{
	struct diagnostic *d = ctx;

	d->code = code;
	snprintf(d->message, sizeof(d->message), "%s", message);
}

Test(windows_api, without_privileges_access_denied_with_a_message)
{
	struct diagnostic d = { 0 };
	USHORT port;
	HANDLE h;

	need_root();
	drop_bpf_capabilities();
	teredo_set_diagnostic_hook(catch_diagnostic, &d);
	cr_assert_eq(NotifyTeredoPortChange(never_called, NULL, TRUE, &h), ERROR_ACCESS_DENIED);
	cr_assert_null(h);
	cr_assert_eq(d.code, ERROR_ACCESS_DENIED);
	cr_assert(strstr(d.message, "CAP_BPF") && strstr(d.message, "run as root"), "%s",
		  d.message);
	cr_assert_eq(GetTeredoPort(&port), ERROR_ACCESS_DENIED);
	teredo_set_diagnostic_hook(NULL, NULL);
}

Test(windows_api, client_definition_from_the_environment)
{
	struct recorder r;
	long p;
	HANDLE h;

	need_root();
	setenv("TEREDO_OBSERVER_COMM", "teredo-alt", 1);
	recorder_init(&r);
	h = notify(&r, FALSE);
	other = actor_start("miredo");
	actor_new_bound(other, "socket4");
	client = actor_start("teredo-alt");
	p = actor_new_bound(client, "socket4");
	expect_call(&r, 0, MibAddInstance, (USHORT)p);
	cr_assert_eq(CancelMibChangeNotify2(h), NO_ERROR);
	setenv("TEREDO_OBSERVER_COMM", "bad,name-that-is-far-too-long", 1);
	cr_assert_eq(NotifyTeredoPortChange(never_called, NULL, TRUE, &h), ERROR_INVALID_PARAMETER);
	unsetenv("TEREDO_OBSERVER_COMM");
	setenv("TEREDO_OBSERVER_COMM", "", 1); /* would match nothing: a mistake, said */
	cr_assert_eq(NotifyTeredoPortChange(never_called, NULL, TRUE, &h), ERROR_INVALID_PARAMETER);
	unsetenv("TEREDO_OBSERVER_COMM");
	setenv("TEREDO_OBSERVER_CGROUP", "/system.slice/../x", 1);
	cr_assert_eq(NotifyTeredoPortChange(never_called, NULL, TRUE, &h), ERROR_INVALID_PARAMETER);
	unsetenv("TEREDO_OBSERVER_CGROUP");
}
