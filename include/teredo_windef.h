/* SPDX-License-Identifier: MIT */
/*
 * The Windows base types and error codes that every Windows-compatible
 * header of teredo-observer uses (teredo_netioapi.h, teredo_netioapi_unicast.h,
 * teredo_fwpmu.h): defined once here, so that a program may include any of
 * them together. Sizes are Windows x64's (DWORD and ULONG are 32-bit, as on
 * Windows, not Linux's long).
 *
 * The types are guarded so that a program that also includes another
 * Windows-compatibility header (winelib, mingw) still builds; define
 * TEREDO_NO_WINDOWS_TYPES to bring your own.
 */
#ifndef TEREDO_WINDEF_H
#define TEREDO_WINDEF_H

#include <stdint.h>

#if !defined(TEREDO_NO_WINDOWS_TYPES) && !defined(_WINDEF_) && !defined(_WINDEF_H) && \
	!defined(_WINNT_) && !defined(__WINE_WINDEF_H)
typedef uint32_t DWORD;
typedef unsigned short USHORT;
typedef unsigned char BOOLEAN;
typedef int BOOL;
typedef void *PVOID;
typedef void *HANDLE;
typedef uint32_t ULONG;
typedef uint8_t UINT8;
typedef uint16_t UINT16;
typedef uint32_t UINT32;
typedef uint64_t ULONG64;
typedef int64_t LONGLONG;
/* 8-byte aligned on every architecture, as Windows aligns 64-bit members. */
typedef union _LARGE_INTEGER {
	struct {
		uint32_t LowPart;
		int32_t HighPart;
	} u;
	LONGLONG QuadPart;
} __attribute__((aligned(8))) LARGE_INTEGER, *PLARGE_INTEGER;
typedef struct _GUID {
	uint32_t Data1;
	uint16_t Data2;
	uint16_t Data3;
	uint8_t Data4[8];
} GUID;
#ifndef VOID
#define VOID void
#endif
#endif

#ifndef TRUE
#define TRUE 1
#endif
#ifndef FALSE
#define FALSE 0
#endif
/* The calling convention: Linux has one. */
#ifndef CALLBACK
#define CALLBACK
#endif
#ifndef WINAPI
#define WINAPI
#endif

/* The layout checks of the Windows headers, in C and C++ alike. */
#if defined(__cplusplus)
#define TEREDO_STATIC_ASSERT static_assert
#else
#define TEREDO_STATIC_ASSERT _Static_assert
#endif

/* winerror.h */
#ifndef NO_ERROR
#define NO_ERROR 0L
#endif
#ifndef ERROR_SUCCESS
#define ERROR_SUCCESS 0L
#endif
#ifndef ERROR_ACCESS_DENIED
#define ERROR_ACCESS_DENIED 5L
#endif
#ifndef ERROR_INVALID_HANDLE
#define ERROR_INVALID_HANDLE 6L
#endif
#ifndef ERROR_NOT_ENOUGH_MEMORY
#define ERROR_NOT_ENOUGH_MEMORY 8L
#endif
#ifndef ERROR_NOT_READY
#define ERROR_NOT_READY 21L
#endif
#ifndef ERROR_NOT_SUPPORTED
#define ERROR_NOT_SUPPORTED 50L
#endif
#ifndef ERROR_INVALID_PARAMETER
#define ERROR_INVALID_PARAMETER 87L
#endif
#ifndef ERROR_IO_PENDING
#define ERROR_IO_PENDING 997L
#endif
#ifndef ERROR_NOT_FOUND
#define ERROR_NOT_FOUND 1168L
#endif

#endif
