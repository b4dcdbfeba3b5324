/* SPDX-License-Identifier: MIT */
/*
 * The Windows-compatible face (netioapi.h / iphlpapi.h): same names, types,
 * values and semantics as Windows, for code ported from there.
 *
 *   NotifyTeredoPortChange(cb, ctx, InitialNotification, &handle)
 *   GetTeredoPort(&port)
 *   CancelMibChangeNotify2(handle)
 *
 * and, in teredo_netioapi_unicast.h (included below), the unicast address
 * table: NotifyStableUnicastIpAddressTable, GetUnicastIpAddressTable,
 * FreeMibTable; CancelMibChangeNotify2 ends either kind of handle.
 *
 * The callback's NotificationType follows the port (Windows documents no
 * mapping; this is ours):
 *   MibInitialNotification    once, first, port 0, when InitialNotification
 *   MibAddInstance            a Teredo port appeared (port)
 *   MibParameterNotification  the Teredo port moved to another live port (new port)
 *   MibDeleteInstance         the last Teredo port went away (port 0)
 *
 * Unlike Windows, CancelMibChangeNotify2 called from inside the callback of
 * the same registration does not deadlock: it returns NO_ERROR and no further
 * call is made for that registration.
 *
 * The base types and codes are teredo_windef.h's, shared with the other
 * Windows-compatible headers (teredo_fwpmu.h: FwpmSystemPortsGet0...).
 */
#ifndef TEREDO_NETIOAPI_H
#define TEREDO_NETIOAPI_H

#include <stdint.h>

#include "teredo_windef.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifndef NETIO_STATUS
#define NETIO_STATUS DWORD
#endif
#ifndef NETIOAPI_API
#define NETIOAPI_API NETIO_STATUS
#endif
#ifndef NETIOAPI_API_
#define NETIOAPI_API_
#endif

#ifndef MIB_INVALID_TEREDO_PORT_NUMBER
#define MIB_INVALID_TEREDO_PORT_NUMBER 0
#endif

#if !defined(TEREDO_NO_WINDOWS_TYPES) && !defined(_NETIOAPI_H_) && !defined(__WINE_NETIOAPI_H)
typedef enum _MIB_NOTIFICATION_TYPE {
	MibParameterNotification,
	MibAddInstance,
	MibDeleteInstance,
	MibInitialNotification,
} MIB_NOTIFICATION_TYPE,
	*PMIB_NOTIFICATION_TYPE;

typedef VOID(NETIOAPI_API_ *PTEREDO_PORT_CHANGE_CALLBACK)(PVOID CallerContext, USHORT Port,
							  MIB_NOTIFICATION_TYPE NotificationType);
#endif

NETIOAPI_API NotifyTeredoPortChange(PTEREDO_PORT_CHANGE_CALLBACK Callback, PVOID CallerContext,
				    BOOLEAN InitialNotification, HANDLE *NotificationHandle);
NETIOAPI_API GetTeredoPort(USHORT *Port);
NETIOAPI_API CancelMibChangeNotify2(HANDLE NotificationHandle);

/* Linux extensions, for logs: "ERROR_NOT_READY", "MibAddInstance", ... */
const char *teredo_windows_error_name(DWORD code);
const char *teredo_mib_notification_type_name(MIB_NOTIFICATION_TYPE type);

#ifdef __cplusplus
}
#endif

#include "teredo_netioapi_unicast.h"

#endif
