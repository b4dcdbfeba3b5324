/* SPDX-License-Identifier: MIT */
/*
 * The unicast address table of the Windows-compatible face (netioapi.h):
 *
 *   NotifyStableUnicastIpAddressTable(Family, &Table, cb, ctx, &handle)
 *   GetUnicastIpAddressTable(Family, &Table)
 *   FreeMibTable(Table)
 *   CancelMibChangeNotify2(handle)       (declared in teredo_netioapi.h)
 *
 * Layouts are Windows' (mingw-w64's netioapi.h, ws2ipdef.h, ifdef.h and
 * nldef.h as the reference; checked below on sizes and offsets), so that rows
 * read the same as on Windows x64. Address families are Linux's: AF_INET6 is
 * 10 here, not Windows' 23, and the socket addresses inside SOCKADDR_INET are
 * Linux's struct sockaddr_in and sockaddr_in6, which have Windows' sizes.
 *
 * Included by teredo_netioapi.h; it may also be included on its own.
 */
#ifndef TEREDO_NETIOAPI_UNICAST_H
#define TEREDO_NETIOAPI_UNICAST_H

#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>

#include "teredo_netioapi.h"

#ifdef __cplusplus
extern "C" {
#endif

#ifndef ANY_SIZE
#define ANY_SIZE 1
#endif

#if !defined(TEREDO_NO_WINDOWS_TYPES) && !defined(_NETIOAPI_H_) && !defined(__WINE_NETIOAPI_H)
typedef USHORT ADDRESS_FAMILY;
typedef ULONG NET_IFINDEX, *PNET_IFINDEX;

/* ipifcons.h: the IfType values this library reports. */
#define IF_TYPE_OTHER 1
#define IF_TYPE_ETHERNET_CSMACD 6
#define IF_TYPE_PPP 23
#define IF_TYPE_SOFTWARE_LOOPBACK 24
#define IF_TYPE_IEEE80211 71
#define IF_TYPE_TUNNEL 131

/* ifdef.h: the interface's locally unique id; Info.NetLuidIndex is the ifindex here. */
typedef union _NET_LUID {
	ULONG64 Value;
	struct {
		ULONG64 Reserved : 24;
		ULONG64 NetLuidIndex : 24;
		ULONG64 IfType : 16;
	} Info;
} __attribute__((aligned(8))) NET_LUID, *PNET_LUID;

/* ws2def.h */
typedef enum {
	ScopeLevelInterface = 1,
	ScopeLevelLink = 2,
	ScopeLevelSubnet = 3,
	ScopeLevelAdmin = 4,
	ScopeLevelSite = 5,
	ScopeLevelOrganization = 8,
	ScopeLevelGlobal = 14,
	ScopeLevelCount = 16,
} SCOPE_LEVEL;

typedef struct {
	union {
		struct {
			ULONG Zone : 28;
			ULONG Level : 4;
		};
		ULONG Value;
	};
} SCOPE_ID, *PSCOPE_ID;

/* ws2ipdef.h, with Linux's socket addresses (same sizes: 16 and 28 bytes). */
typedef union _SOCKADDR_INET {
	struct sockaddr_in Ipv4;
	struct sockaddr_in6 Ipv6;
	ADDRESS_FAMILY si_family;
} SOCKADDR_INET, *PSOCKADDR_INET;

/* nldef.h */
typedef enum _NL_PREFIX_ORIGIN {
	IpPrefixOriginOther = 0,
	IpPrefixOriginManual,
	IpPrefixOriginWellKnown,
	IpPrefixOriginDhcp,
	IpPrefixOriginRouterAdvertisement,
	IpPrefixOriginUnchanged = 1 << 4,
} NL_PREFIX_ORIGIN;

typedef enum _NL_SUFFIX_ORIGIN {
	IpSuffixOriginOther = 0,
	IpSuffixOriginManual,
	IpSuffixOriginWellKnown,
	IpSuffixOriginDhcp,
	IpSuffixOriginLinkLayerAddress,
	IpSuffixOriginRandom,
	IpSuffixOriginUnchanged = 1 << 4,
} NL_SUFFIX_ORIGIN;

typedef enum _NL_DAD_STATE {
	IpDadStateInvalid = 0,
	IpDadStateTentative,
	IpDadStateDuplicate,
	IpDadStateDeprecated,
	IpDadStatePreferred,
} NL_DAD_STATE;

/* netioapi.h */
typedef struct _MIB_UNICASTIPADDRESS_ROW {
	SOCKADDR_INET Address;
	NET_LUID InterfaceLuid;
	NET_IFINDEX InterfaceIndex;
	NL_PREFIX_ORIGIN PrefixOrigin;
	NL_SUFFIX_ORIGIN SuffixOrigin;
	ULONG ValidLifetime;	 /* seconds left; 0xffffffff: infinite */
	ULONG PreferredLifetime; /* seconds left; 0xffffffff: infinite */
	UINT8 OnLinkPrefixLength;
	BOOLEAN SkipAsSource;
	NL_DAD_STATE DadState;
	SCOPE_ID ScopeId;
	LARGE_INTEGER CreationTimeStamp; /* 100 ns units since 1601-01-01 UTC, as FILETIME */
} MIB_UNICASTIPADDRESS_ROW, *PMIB_UNICASTIPADDRESS_ROW;

typedef struct _MIB_UNICASTIPADDRESS_TABLE {
	ULONG NumEntries;
	MIB_UNICASTIPADDRESS_ROW Table[ANY_SIZE];
} MIB_UNICASTIPADDRESS_TABLE, *PMIB_UNICASTIPADDRESS_TABLE;

typedef VOID(NETIOAPI_API_ *PSTABLE_UNICAST_IPADDRESS_TABLE_CALLBACK)(
	PVOID CallerContext, PMIB_UNICASTIPADDRESS_TABLE AddressTable);

/* Windows x64's layout (mingw-w64's headers; wireguard's winipcfg agrees). */
TEREDO_STATIC_ASSERT(sizeof(ULONG) == 4, "ULONG is 32-bit on Windows");
TEREDO_STATIC_ASSERT(sizeof(SOCKADDR_INET) == 28, "SOCKADDR_INET is 28 bytes");
TEREDO_STATIC_ASSERT(sizeof(NET_LUID) == 8, "NET_LUID is 8 bytes");
TEREDO_STATIC_ASSERT(sizeof(SCOPE_ID) == 4, "SCOPE_ID is 4 bytes");
TEREDO_STATIC_ASSERT(sizeof(NL_DAD_STATE) == 4, "enums are 4 bytes");
TEREDO_STATIC_ASSERT(offsetof(MIB_UNICASTIPADDRESS_ROW, InterfaceLuid) == 32, "InterfaceLuid");
TEREDO_STATIC_ASSERT(offsetof(MIB_UNICASTIPADDRESS_ROW, InterfaceIndex) == 40, "InterfaceIndex");
TEREDO_STATIC_ASSERT(offsetof(MIB_UNICASTIPADDRESS_ROW, PrefixOrigin) == 44, "PrefixOrigin");
TEREDO_STATIC_ASSERT(offsetof(MIB_UNICASTIPADDRESS_ROW, SuffixOrigin) == 48, "SuffixOrigin");
TEREDO_STATIC_ASSERT(offsetof(MIB_UNICASTIPADDRESS_ROW, ValidLifetime) == 52, "ValidLifetime");
TEREDO_STATIC_ASSERT(offsetof(MIB_UNICASTIPADDRESS_ROW, PreferredLifetime) == 56,
		     "PreferredLifetime");
TEREDO_STATIC_ASSERT(offsetof(MIB_UNICASTIPADDRESS_ROW, OnLinkPrefixLength) == 60,
		     "OnLinkPrefixLength");
TEREDO_STATIC_ASSERT(offsetof(MIB_UNICASTIPADDRESS_ROW, SkipAsSource) == 61, "SkipAsSource");
TEREDO_STATIC_ASSERT(offsetof(MIB_UNICASTIPADDRESS_ROW, DadState) == 64, "DadState");
TEREDO_STATIC_ASSERT(offsetof(MIB_UNICASTIPADDRESS_ROW, ScopeId) == 68, "ScopeId");
TEREDO_STATIC_ASSERT(offsetof(MIB_UNICASTIPADDRESS_ROW, CreationTimeStamp) == 72,
		     "CreationTimeStamp");
TEREDO_STATIC_ASSERT(sizeof(MIB_UNICASTIPADDRESS_ROW) == 80, "MIB_UNICASTIPADDRESS_ROW");
TEREDO_STATIC_ASSERT(offsetof(MIB_UNICASTIPADDRESS_TABLE, Table) == 8, "Table");
#endif

/*
 * The unicast addresses of the caller's network namespace, once they are all
 * stable: NO_ERROR and *Table at once (no callback), or ERROR_IO_PENDING and
 * *NotificationHandle, then exactly one CallerCallback with the table. Stable:
 * every address of Family is preferred (not tentative, duplicate or
 * deprecated) and, for AF_INET6 and AF_UNSPEC, a Teredo interface, where there
 * is one, is up and holds its 2001:0::/32 address (Teredo is qualified).
 * Tables are freed with FreeMibTable, also the callback's.
 */
NETIOAPI_API
NotifyStableUnicastIpAddressTable(ADDRESS_FAMILY Family, PMIB_UNICASTIPADDRESS_TABLE *Table,
				  PSTABLE_UNICAST_IPADDRESS_TABLE_CALLBACK CallerCallback,
				  PVOID CallerContext, HANDLE *NotificationHandle);

/* Every unicast address of Family now, stable or not. ERROR_NOT_FOUND: none. */
NETIOAPI_API GetUnicastIpAddressTable(ADDRESS_FAMILY Family, PMIB_UNICASTIPADDRESS_TABLE *Table);

/* Free a table from the two above. NULL is ignored. */
VOID NETIOAPI_API_ FreeMibTable(PVOID Memory);

/* Linux extensions, for logs: "IpDadStatePreferred", "IpPrefixOriginManual", ... */
const char *teredo_dad_state_name(NL_DAD_STATE state);
const char *teredo_prefix_origin_name(NL_PREFIX_ORIGIN origin);
const char *teredo_suffix_origin_name(NL_SUFFIX_ORIGIN origin);

#ifdef __cplusplus
}
#endif

#endif
