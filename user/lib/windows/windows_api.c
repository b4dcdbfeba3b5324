// SPDX-License-Identifier: MIT
/*
 * The Windows-compatible face: NotifyTeredoPortChange, GetTeredoPort and
 * CancelMibChangeNotify2 as thin translations over the native subscription
 * API. Options come from the environment (TEREDO_OBSERVER_*), as Windows
 * callers have no way to pass them.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "last_error.h"
#include "subscription.h"
#include "teredo_fwpmu.h"
#include "teredo_observer.h"
#include "windows_api.h"
#include "public.h"

struct registration {
	PTEREDO_PORT_CHANGE_CALLBACK callback;
	PVOID context;
};

/* Set from any thread, read from any: the pair changes under a lock, as one. */
static pthread_mutex_t diagnostic_lock = PTHREAD_MUTEX_INITIALIZER;
static teredo_diagnostic_hook diagnostic_hook;
static void *diagnostic_ctx;

_public_ void teredo_set_diagnostic_hook(teredo_diagnostic_hook hook, void *ctx)
{
	pthread_mutex_lock(&diagnostic_lock);
	diagnostic_hook = hook;
	diagnostic_ctx = ctx;
	pthread_mutex_unlock(&diagnostic_lock);
}

_public_ const char *teredo_windows_error_name(DWORD code)
{
	switch (code) {
		NAME_CASE(NO_ERROR);
		NAME_CASE(ERROR_ACCESS_DENIED);
		NAME_CASE(ERROR_INVALID_HANDLE);
		NAME_CASE(ERROR_NOT_ENOUGH_MEMORY);
		NAME_CASE(ERROR_NOT_READY);
		NAME_CASE(ERROR_NOT_SUPPORTED);
		NAME_CASE(ERROR_INVALID_PARAMETER);
		NAME_CASE(ERROR_IO_PENDING);
		NAME_CASE(ERROR_NOT_FOUND);
		NAME_CASE(RPC_S_SERVER_UNAVAILABLE);
		NAME_CASE(RPC_S_UNKNOWN_AUTHN_SERVICE);
		NAME_CASE(FWP_E_NULL_POINTER);
		NAME_CASE(FWP_E_INVALID_PARAMETER);
	}
	return "ERROR_UNKNOWN";
}

_public_ const char *teredo_mib_notification_type_name(MIB_NOTIFICATION_TYPE type)
{
	switch (type) {
		NAME_CASE(MibParameterNotification);
		NAME_CASE(MibAddInstance);
		NAME_CASE(MibDeleteInstance);
		NAME_CASE(MibInitialNotification);
	}
	return "MibUnknownNotification";
}

/* Hand a failure to the hook, or to stderr when TEREDO_OBSERVER_DEBUG=1. */
static DWORD diagnose(const char *function, DWORD code, const char *message)
{
	teredo_diagnostic_hook hook;
	const char *debug;
	void *ctx;

	pthread_mutex_lock(&diagnostic_lock);
	hook = diagnostic_hook;
	ctx = diagnostic_ctx;
	pthread_mutex_unlock(&diagnostic_lock);
	if (hook) {
		hook(ctx, code, message);
		return code;
	}
	debug = getenv("TEREDO_OBSERVER_DEBUG");
	if (debug && debug[0] == '1')
		fprintf(stderr, "teredo-observer: %s: %s: %s\n", function,
			teredo_windows_error_name(code), message);
	return code;
}

static DWORD windows_code(int err)
{
	switch (err) {
	case -EPERM:
	case -EACCES:
		return ERROR_ACCESS_DENIED;
	case -ENOMEM:
	case -EAGAIN: /* no thread could be made */
	case -EMFILE:
	case -ENFILE:
		return ERROR_NOT_ENOUGH_MEMORY;
	case -EINVAL:
		return ERROR_INVALID_PARAMETER;
	case -EBADF:
		return ERROR_INVALID_HANDLE;
	case -ENOTCONN: /* the service is restarting: the port is not known now */
		return ERROR_NOT_READY;
	default:
		return ERROR_NOT_SUPPORTED;
	}
}

static DWORD fail(const char *function, int err)
{
	return diagnose(function, windows_code(err), teredo_observer_last_error());
}

/* For the other Windows-compatible sources (windows_api.h). */
DWORD windows_diagnose(const char *function, DWORD code, const char *message)
{
	return diagnose(function, code, message);
}

DWORD windows_fail(const char *function, int err)
{
	return fail(function, err);
}

/* Windows passes port 0 with the initial notification; the rest map one to one. */
static void forward(void *ctx, const struct teredo_port_event *ev)
{
	const struct registration *reg = ctx;
	USHORT port = ev->type == TEREDO_PORT_INITIAL ? 0 : ev->port;

	reg->callback(reg->context, port, (MIB_NOTIFICATION_TYPE)ev->type);
}

_public_ NETIOAPI_API NotifyTeredoPortChange(PTEREDO_PORT_CHANGE_CALLBACK Callback,
					     PVOID CallerContext, BOOLEAN InitialNotification,
					     HANDLE *NotificationHandle)
{
	struct teredo_subscription *sub;
	struct registration *reg;
	int err;

	if (NotificationHandle)
		*NotificationHandle = NULL;
	if (!Callback || !NotificationHandle)
		return diagnose("NotifyTeredoPortChange", ERROR_INVALID_PARAMETER,
				Callback ? "NotificationHandle is NULL" : "Callback is NULL");
	reg = malloc(sizeof(*reg));
	if (!reg)
		return diagnose("NotifyTeredoPortChange", ERROR_NOT_ENOUGH_MEMORY, "out of memory");
	reg->callback = Callback;
	reg->context = CallerContext;
	err = subscribe_with_release(NULL, forward, reg, free, InitialNotification, &sub);
	if (err) {
		free(reg);
		return fail("NotifyTeredoPortChange", err);
	}
	*NotificationHandle = (HANDLE)sub;
	return NO_ERROR;
}

_public_ NETIOAPI_API GetTeredoPort(USHORT *Port)
{
	uint16_t port;
	int found;

	if (!Port)
		return diagnose("GetTeredoPort", ERROR_INVALID_PARAMETER, "Port is NULL");
	if (access("/proc/net/if_inet6", F_OK))
		return diagnose("GetTeredoPort", ERROR_NOT_SUPPORTED,
				"this system has no IPv6 stack (/proc/net/if_inet6 missing)");
	found = teredo_get_port(NULL, &port);
	if (found < 0)
		return fail("GetTeredoPort", found);
	if (!found)
		return diagnose("GetTeredoPort", ERROR_NOT_READY,
				"no Teredo client is running on this computer");
	*Port = port;
	return NO_ERROR;
}

_public_ NETIOAPI_API CancelMibChangeNotify2(HANDLE NotificationHandle)
{
	int err;

	if (!NotificationHandle)
		return diagnose("CancelMibChangeNotify2", ERROR_INVALID_PARAMETER,
				"NotificationHandle is NULL");
	/* Any kind: NotifyTeredoPortChange's and NotifyStableUnicastIpAddressTable's. */
	err = notify_handle_cancel(NotificationHandle, NULL);
	return err ? fail("CancelMibChangeNotify2", err) : NO_ERROR;
}
