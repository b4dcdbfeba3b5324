/* SPDX-License-Identifier: MIT */
/*
 * The Windows Filtering Platform's system-ports API (fwpmu.h, fwpmtypes.h):
 * what Microsoft now tells firewalls to call for the Teredo client's port,
 * "in place of the now deprecated GetTeredoPort or NotifyTeredoPortChange".
 *
 *   FwpmEngineOpen0(NULL, RPC_C_AUTHN_DEFAULT, NULL, NULL, &engine)
 *   FwpmSystemPortsGet0(engine, &ports)      ... FwpmFreeMemory0((void **)&ports)
 *   FwpmSystemPortsSubscribe0(engine, NULL, callback, ctx, &handle)
 *   FwpmSystemPortsUnsubscribe0(engine, handle)
 *   FwpmEngineClose0(engine)
 *
 * A thin face over the native API (teredo_observer.h): the same port, from
 * the same kernel decision, through the service for unprivileged programs.
 * The engine handle is optional for the system-ports calls, as Windows
 * documents: NULL works; a handle given must be an open engine.
 *
 * What Linux has of each type: FWPM_SYSTEM_PORT_TEREDO holds the Teredo
 * client's port (none while no client runs); FWPM_SYSTEM_PORT_RPC_EPMAP,
 * _IPHTTPS_IN and _IPHTTPS_OUT are always there with no ports, since Linux
 * has neither Windows' RPC endpoint mapper nor its IP-HTTPS service.
 *
 * The callback gets the whole snapshot, every type, on each change of the
 * Teredo port, never a delta; calls are serialized. Unlike Windows'
 * CancelMibChangeNotify2, FwpmSystemPortsUnsubscribe0 works from inside the
 * callback: it returns at once and no further call follows.
 *
 * Layouts are mingw-w64's for x64, checked below. wchar_t is Linux's (32-bit):
 * the only serverName accepted is NULL, the local engine.
 */
#ifndef TEREDO_FWPMU_H
#define TEREDO_FWPMU_H

#include <stddef.h>
#include <stdint.h>
#include <wchar.h>

#include "teredo_windef.h"

#ifdef __cplusplus
extern "C" {
#endif

/* rpcdce.h */
#ifndef RPC_C_AUTHN_DEFAULT
#define RPC_C_AUTHN_DEFAULT 0xFFFFFFFFL
#endif
#ifndef RPC_C_AUTHN_WINNT
#define RPC_C_AUTHN_WINNT 10
#endif
/* winerror.h: what FwpmEngineOpen0 says of a remote engine or another authentication */
#ifndef RPC_S_SERVER_UNAVAILABLE
#define RPC_S_SERVER_UNAVAILABLE 1722L
#endif
#ifndef RPC_S_UNKNOWN_AUTHN_SERVICE
#define RPC_S_UNKNOWN_AUTHN_SERVICE 1747L
#endif
/* winerror.h: the FWP_E_* codes these functions return */
#ifndef FWP_E_NULL_POINTER
#define FWP_E_NULL_POINTER 0x8032001CL
#endif
#ifndef FWP_E_INVALID_PARAMETER
#define FWP_E_INVALID_PARAMETER 0x80320035L
#endif

#if !defined(TEREDO_NO_WINDOWS_TYPES) && !defined(__fwpmtypes_h__) && !defined(__WINE_FWPMTYPES_H)
typedef struct _SID SID; /* never read: Linux has no Windows security identifiers */

typedef struct SEC_WINNT_AUTH_IDENTITY_W {
	unsigned short *User;
	ULONG UserLength;
	unsigned short *Domain;
	ULONG DomainLength;
	unsigned short *Password;
	ULONG PasswordLength;
	ULONG Flags;
} SEC_WINNT_AUTH_IDENTITY_W;

typedef struct FWPM_DISPLAY_DATA0_ {
	wchar_t *name;
	wchar_t *description;
} FWPM_DISPLAY_DATA0;

typedef struct FWPM_SESSION0_ {
	GUID sessionKey;
	FWPM_DISPLAY_DATA0 displayData;
	UINT32 flags;
	UINT32 txnWaitTimeoutInMSec;
	DWORD processId;
	SID *sid;
	wchar_t *username;
	BOOL kernelMode;
} FWPM_SESSION0;

typedef enum FWPM_SYSTEM_PORT_TYPE_ {
	FWPM_SYSTEM_PORT_RPC_EPMAP = 0,
	FWPM_SYSTEM_PORT_TEREDO = 1,
	FWPM_SYSTEM_PORT_IPHTTPS_IN = 2,
	FWPM_SYSTEM_PORT_IPHTTPS_OUT = 3,
	FWPM_SYSTEM_PORT_TYPE_MAX = 4
} FWPM_SYSTEM_PORT_TYPE;

typedef struct FWPM_SYSTEM_PORTS_BY_TYPE0_ {
	FWPM_SYSTEM_PORT_TYPE type;
	UINT32 numPorts;
	UINT16 *ports;
} FWPM_SYSTEM_PORTS_BY_TYPE0;

typedef struct FWPM_SYSTEM_PORTS0_ {
	UINT32 numTypes;
	FWPM_SYSTEM_PORTS_BY_TYPE0 *types;
} FWPM_SYSTEM_PORTS0;

typedef void(CALLBACK *FWPM_SYSTEM_PORTS_CALLBACK0)(void *context,
						    const FWPM_SYSTEM_PORTS0 *sysPorts);
#endif

/*
 * A local engine only: serverName NULL, authnService RPC_C_AUTHN_WINNT or
 * RPC_C_AUTHN_DEFAULT; authIdentity and session are accepted and unused.
 */
DWORD WINAPI FwpmEngineOpen0(const wchar_t *serverName, UINT32 authnService,
			     SEC_WINNT_AUTH_IDENTITY_W *authIdentity, const FWPM_SESSION0 *session,
			     HANDLE *engineHandle);
DWORD WINAPI FwpmEngineClose0(HANDLE engineHandle);

/* One allocation holding every type; freed with FwpmFreeMemory0. */
DWORD WINAPI FwpmSystemPortsGet0(HANDLE engineHandle, FWPM_SYSTEM_PORTS0 **sysPorts);
DWORD WINAPI FwpmSystemPortsSubscribe0(HANDLE engineHandle, void *reserved,
				       FWPM_SYSTEM_PORTS_CALLBACK0 callback, void *context,
				       HANDLE *sysPortsHandle);
/* Returns once no callback is running or will run (at once from inside one). */
DWORD WINAPI FwpmSystemPortsUnsubscribe0(HANDLE engineHandle, HANDLE sysPortsHandle);
/* Frees what FwpmSystemPortsGet0 returned and sets *p to NULL; NULL and *p NULL do nothing. */
void WINAPI FwpmFreeMemory0(void **p);

#if defined(__x86_64__) && !defined(TEREDO_NO_WINDOWS_TYPES)
/* mingw-w64's x64 layouts */
TEREDO_STATIC_ASSERT(sizeof(FWPM_SYSTEM_PORT_TYPE) == 4, "enums are 4 bytes");
TEREDO_STATIC_ASSERT(sizeof(FWPM_SYSTEM_PORTS_BY_TYPE0) == 16, "FWPM_SYSTEM_PORTS_BY_TYPE0");
TEREDO_STATIC_ASSERT(offsetof(FWPM_SYSTEM_PORTS_BY_TYPE0, numPorts) == 4, "numPorts");
TEREDO_STATIC_ASSERT(offsetof(FWPM_SYSTEM_PORTS_BY_TYPE0, ports) == 8, "ports");
TEREDO_STATIC_ASSERT(sizeof(FWPM_SYSTEM_PORTS0) == 16, "FWPM_SYSTEM_PORTS0");
TEREDO_STATIC_ASSERT(offsetof(FWPM_SYSTEM_PORTS0, types) == 8, "types");
TEREDO_STATIC_ASSERT(sizeof(GUID) == 16, "GUID");
TEREDO_STATIC_ASSERT(offsetof(FWPM_SESSION0, displayData) == 16, "displayData");
TEREDO_STATIC_ASSERT(offsetof(FWPM_SESSION0, flags) == 32, "flags");
TEREDO_STATIC_ASSERT(offsetof(FWPM_SESSION0, processId) == 40, "processId");
TEREDO_STATIC_ASSERT(offsetof(FWPM_SESSION0, sid) == 48, "sid");
TEREDO_STATIC_ASSERT(offsetof(FWPM_SESSION0, kernelMode) == 64, "kernelMode");
TEREDO_STATIC_ASSERT(sizeof(FWPM_SESSION0) == 72, "FWPM_SESSION0");
TEREDO_STATIC_ASSERT(offsetof(SEC_WINNT_AUTH_IDENTITY_W, UserLength) == 8, "UserLength");
TEREDO_STATIC_ASSERT(offsetof(SEC_WINNT_AUTH_IDENTITY_W, Flags) == 44, "Flags");
TEREDO_STATIC_ASSERT(sizeof(SEC_WINNT_AUTH_IDENTITY_W) == 48, "SEC_WINNT_AUTH_IDENTITY_W");
#endif

#ifdef __cplusplus
}
#endif

#endif
