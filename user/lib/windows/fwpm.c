// SPDX-License-Identifier: MIT
/*
 * The Windows Filtering Platform's system-ports face (teredo_fwpmu.h), thin
 * over the native API: FwpmSystemPortsGet0 is teredo_get_port() in Windows'
 * shape, FwpmSystemPortsSubscribe0 a native subscription whose every event
 * becomes the whole snapshot. Engines and subscriptions are handles of the
 * library's one table, each of its own kind, so a handle of another kind, or
 * one used twice, is found missing and never dereferenced.
 */
#include <errno.h>
#include <stdlib.h>

#include "fwpm_snapshot.h"
#include "last_error.h"
#include "subscription.h"
#include "teredo_fwpmu.h"
#include "teredo_observer.h"
#include "windows_api.h"
#include "public.h"

struct engine {
	struct notify_handle handle; /* first: the table's entry is the engine */
};

struct ports_subscription {
	struct notify_handle handle; /* first: the table's entry is the subscription */
	struct teredo_subscription *native;
	FWPM_SYSTEM_PORTS_CALLBACK0 callback;
	void *context;
};

static int close_engine(struct notify_handle *handle)
{
	free(handle);
	return 0;
}

static int end_ports_subscription(struct notify_handle *handle)
{
	struct ports_subscription *ps = (struct ports_subscription *)handle;

	/* ps is freed by the native release once no call can run (at once, or after ours). */
	return teredo_unsubscribe(ps->native);
}

/* The engine handle is optional; one given must be an open engine. */
static bool engine_ok(HANDLE engineHandle)
{
	return !engineHandle || notify_handle_is_live(engineHandle, close_engine);
}

static DWORD bad_engine(const char *function, HANDLE engineHandle)
{
	set_last_error(-EBADF, "%p is no open engine (FwpmEngineOpen0)", engineHandle);
	return windows_fail(function, -EBADF);
}

_public_ DWORD WINAPI FwpmEngineOpen0(const wchar_t *serverName, UINT32 authnService,
				      SEC_WINNT_AUTH_IDENTITY_W *authIdentity,
				      const FWPM_SESSION0 *session, HANDLE *engineHandle)
{
	struct engine *engine;

	(void)authIdentity; /* a local engine needs no credentials */
	(void)session;	    /* nothing here is transactional or dynamic */
	if (engineHandle)
		*engineHandle = NULL;
	if (!engineHandle)
		return windows_diagnose("FwpmEngineOpen0", FWP_E_NULL_POINTER,
					"engineHandle is NULL");
	if (serverName)
		return windows_diagnose("FwpmEngineOpen0", RPC_S_SERVER_UNAVAILABLE,
					"only the local engine (serverName NULL) exists here");
	if (authnService != RPC_C_AUTHN_WINNT && authnService != (UINT32)RPC_C_AUTHN_DEFAULT)
		return windows_diagnose(
			"FwpmEngineOpen0", RPC_S_UNKNOWN_AUTHN_SERVICE,
			"authnService must be RPC_C_AUTHN_WINNT or RPC_C_AUTHN_DEFAULT");
	engine = malloc(sizeof(*engine));
	if (!engine)
		return windows_diagnose("FwpmEngineOpen0", ERROR_NOT_ENOUGH_MEMORY,
					"out of memory");
	if (notify_handle_add(&engine->handle, close_engine)) {
		free(engine);
		return windows_fail("FwpmEngineOpen0", -ENOMEM);
	}
	*engineHandle = (HANDLE)engine->handle.id;
	return ERROR_SUCCESS;
}

_public_ DWORD WINAPI FwpmEngineClose0(HANDLE engineHandle)
{
	int err;

	if (!engineHandle)
		return windows_diagnose("FwpmEngineClose0", ERROR_INVALID_HANDLE,
					"engineHandle is NULL");
	err = notify_handle_cancel(engineHandle, close_engine);
	return err ? windows_fail("FwpmEngineClose0", err) : ERROR_SUCCESS;
}

_public_ DWORD WINAPI FwpmSystemPortsGet0(HANDLE engineHandle, FWPM_SYSTEM_PORTS0 **sysPorts)
{
	struct fwpm_snapshot *snap;
	uint16_t port = 0;
	int found;

	if (!sysPorts)
		return windows_diagnose("FwpmSystemPortsGet0", FWP_E_NULL_POINTER,
					"sysPorts is NULL");
	*sysPorts = NULL;
	if (!engine_ok(engineHandle))
		return bad_engine("FwpmSystemPortsGet0", engineHandle);
	found = teredo_get_port(NULL, &port);
	if (found < 0)
		return windows_fail("FwpmSystemPortsGet0", found);
	snap = malloc(sizeof(*snap));
	if (!snap)
		return windows_diagnose("FwpmSystemPortsGet0", ERROR_NOT_ENOUGH_MEMORY,
					"out of memory");
	/* No client running is no error here: the Teredo type simply has no port. */
	fwpm_snapshot_fill(snap, found ? port : 0);
	*sysPorts = &snap->ports;
	return ERROR_SUCCESS;
}

_public_ void WINAPI FwpmFreeMemory0(void **p)
{
	if (!p)
		return;
	free(*p); /* the snapshot's header is its first member: the block itself */
	*p = NULL;
}

/* Every change of the Teredo port: the whole snapshot, never a delta. */
static void deliver_snapshot(void *ctx, const struct teredo_port_event *ev)
{
	const struct ports_subscription *ps = ctx;
	struct fwpm_snapshot snap;

	if (ev->type == TEREDO_PORT_INITIAL)
		return;
	fwpm_snapshot_fill(&snap, ev->type == TEREDO_PORT_DELETED ? 0 : ev->port);
	ps->callback(ps->context, &snap.ports);
}

_public_ DWORD WINAPI FwpmSystemPortsSubscribe0(HANDLE engineHandle, void *reserved,
						FWPM_SYSTEM_PORTS_CALLBACK0 callback, void *context,
						HANDLE *sysPortsHandle)
{
	struct ports_subscription *ps;
	int err;

	if (sysPortsHandle)
		*sysPortsHandle = NULL;
	if (!callback || !sysPortsHandle)
		return windows_diagnose("FwpmSystemPortsSubscribe0", FWP_E_NULL_POINTER,
					callback ? "sysPortsHandle is NULL" : "callback is NULL");
	if (reserved)
		return windows_diagnose("FwpmSystemPortsSubscribe0", FWP_E_INVALID_PARAMETER,
					"reserved must be NULL");
	if (!engine_ok(engineHandle))
		return bad_engine("FwpmSystemPortsSubscribe0", engineHandle);
	ps = calloc(1, sizeof(*ps));
	if (!ps)
		return windows_diagnose("FwpmSystemPortsSubscribe0", ERROR_NOT_ENOUGH_MEMORY,
					"out of memory");
	ps->callback = callback;
	ps->context = context;
	err = subscribe_with_release(NULL, deliver_snapshot, ps, free, false, &ps->native);
	if (err) {
		free(ps);
		return windows_fail("FwpmSystemPortsSubscribe0", err);
	}
	/* Published only once ps->native is set: the handle's end needs it. */
	err = notify_handle_add(&ps->handle, end_ports_subscription);
	if (err) {
		teredo_unsubscribe(ps->native); /* frees ps */
		return windows_fail("FwpmSystemPortsSubscribe0", err);
	}
	*sysPortsHandle = (HANDLE)ps->handle.id;
	return ERROR_SUCCESS;
}

_public_ DWORD WINAPI FwpmSystemPortsUnsubscribe0(HANDLE engineHandle, HANDLE sysPortsHandle)
{
	int err;

	if (!sysPortsHandle)
		return windows_diagnose("FwpmSystemPortsUnsubscribe0", ERROR_INVALID_HANDLE,
					"sysPortsHandle is NULL");
	if (!engine_ok(engineHandle))
		return bad_engine("FwpmSystemPortsUnsubscribe0", engineHandle);
	err = notify_handle_cancel(sysPortsHandle, end_ports_subscription);
	return err ? windows_fail("FwpmSystemPortsUnsubscribe0", err) : ERROR_SUCCESS;
}
