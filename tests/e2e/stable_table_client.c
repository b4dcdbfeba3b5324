// SPDX-License-Identifier: MIT
/*
 * stable_table_client: a program written against the Windows-compatible API
 * only, as code ported from Windows would be, for the end-to-end suite. Every
 * output line is one JSON object, flushed at once.
 *
 *   stable_table_client get FAMILY      GetUnicastIpAddressTable
 *   stable_table_client notify FAMILY   NotifyStableUnicastIpAddressTable
 *
 * FAMILY: unspec, inet, inet6, or a number. Lines:
 *   {"event": "return", "status": NAME, "call_ms": MS, "table": BOOL, "handle": BOOL}
 *   {"event": "row", ...every field of MIB_UNICASTIPADDRESS_ROW...}
 *   {"event": "callback", "rows": N, "now": FILETIME} then its rows
 *   {"event": "cancel", "status": NAME}   CancelMibChangeNotify2's result
 *   {"event": "exit", "callbacks": N}
 *
 * notify, when pending, waits: after the callback it releases the handle
 * with CancelMibChangeNotify2 and exits; SIGUSR1 cancels before that and
 * goes on waiting, so that a callback after the cancel would be seen, until
 * SIGTERM or SIGINT.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "teredo_netioapi.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

/* 100 ns units between 1601-01-01 and 1970-01-01. */
#define FILETIME_UNIX_EPOCH 116444736000000000LL

static atomic_int callbacks;

static void flush_or_die(void)
{
	if (fflush(stdout) == EOF) {
		fprintf(stderr, "stable_table_client: writing stdout: %s\n", strerror(errno));
		exit(EXIT_FAIL);
	}
}

static long long filetime_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return FILETIME_UNIX_EPOCH + (long long)ts.tv_sec * 10000000 + ts.tv_nsec / 100;
}

static double ms_since(const struct timespec *t0)
{
	struct timespec t1;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

static void print_row(const MIB_UNICASTIPADDRESS_ROW *row)
{
	char text[INET6_ADDRSTRLEN] = "?";
	int family = row->Address.si_family;
	const void *addr = family == AF_INET ? (const void *)&row->Address.Ipv4.sin_addr
					     : (const void *)&row->Address.Ipv6.sin6_addr;

	if (!inet_ntop(family, addr, text, sizeof(text)))
		snprintf(text, sizeof(text), "bad-family-%d", family);
	printf("{\"event\": \"row\", \"family\": %d, \"address\": \"%s\", \"sin6_scope_id\": %u, "
	       "\"luid\": %llu, \"luid_index\": %u, \"if_type\": %u, \"ifindex\": %u, "
	       "\"prefix_origin\": \"%s\", \"suffix_origin\": \"%s\", \"valid\": %u, "
	       "\"preferred\": %u, \"prefixlen\": %u, \"skip_as_source\": %u, "
	       "\"dad_state\": \"%s\", \"scope_id\": %u, \"created\": %lld}\n",
	       family, text, family == AF_INET6 ? row->Address.Ipv6.sin6_scope_id : 0,
	       (unsigned long long)row->InterfaceLuid.Value,
	       (unsigned int)row->InterfaceLuid.Info.NetLuidIndex,
	       (unsigned int)row->InterfaceLuid.Info.IfType, row->InterfaceIndex,
	       teredo_prefix_origin_name(row->PrefixOrigin),
	       teredo_suffix_origin_name(row->SuffixOrigin), row->ValidLifetime,
	       row->PreferredLifetime, row->OnLinkPrefixLength, row->SkipAsSource,
	       teredo_dad_state_name(row->DadState), row->ScopeId.Value,
	       (long long)row->CreationTimeStamp.QuadPart);
}

static void print_table(const MIB_UNICASTIPADDRESS_TABLE *table)
{
	for (ULONG i = 0; table && i < table->NumEntries; i++)
		print_row(&table->Table[i]);
}

static void print_return(DWORD status, double call_ms, const void *table, const void *handle)
{
	printf("{\"event\": \"return\", \"status\": \"%s\", \"call_ms\": %.3f, \"table\": %s, "
	       "\"handle\": %s}\n",
	       teredo_windows_error_name(status), call_ms, table ? "true" : "false",
	       handle ? "true" : "false");
}

/* Called once, from the library's thread: the rows, then a word to main. */
static VOID NETIOAPI_API_ on_stable(PVOID CallerContext, PMIB_UNICASTIPADDRESS_TABLE table)
{
	(void)CallerContext;
	atomic_fetch_add(&callbacks, 1);
	printf("{\"event\": \"callback\", \"rows\": %u, \"now\": %lld}\n",
	       table ? (unsigned int)table->NumEntries : 0, filetime_now());
	print_table(table);
	flush_or_die();
	FreeMibTable(table);
	/* Blocked in every thread: it waits for main's sigwait. */
	kill(getpid(), SIGUSR2);
}

static int parse_family(const char *text, ADDRESS_FAMILY *family)
{
	char *end;
	long n;

	if (!strcmp(text, "unspec"))
		*family = AF_UNSPEC;
	else if (!strcmp(text, "inet"))
		*family = AF_INET;
	else if (!strcmp(text, "inet6"))
		*family = AF_INET6;
	else {
		n = strtol(text, &end, 10);
		if (*end || n < 0 || n > 65535)
			return -1;
		*family = (ADDRESS_FAMILY)n;
	}
	return 0;
}

static int do_get(ADDRESS_FAMILY family)
{
	PMIB_UNICASTIPADDRESS_TABLE table = NULL;
	struct timespec t0;
	DWORD status;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	status = GetUnicastIpAddressTable(family, &table);
	print_return(status, ms_since(&t0), table, NULL);
	print_table(table);
	FreeMibTable(table);
	flush_or_die();
	return status == NO_ERROR ? EXIT_OK : EXIT_FAIL;
}

static void print_cancel(HANDLE handle)
{
	DWORD status = CancelMibChangeNotify2(handle);

	printf("{\"event\": \"cancel\", \"status\": \"%s\"}\n", teredo_windows_error_name(status));
	flush_or_die();
}

/* Pending: the callback, a cancel request (SIGUSR1) or the end (SIGTERM, SIGINT). */
static int wait_pending(HANDLE handle, const sigset_t *signals)
{
	bool cancelled = false;
	int sig, err;

	for (;;) {
		err = sigwait(signals, &sig);
		if (err) {
			fprintf(stderr, "stable_table_client: sigwait: %s\n", strerror(err));
			return EXIT_FAIL;
		}
		if (sig == SIGUSR2 && !cancelled) {
			print_cancel(handle); /* releases the handle, as on Windows */
			break;
		}
		if (sig == SIGUSR1 && !cancelled) {
			print_cancel(handle);
			cancelled = true;
		}
		if (sig == SIGTERM || sig == SIGINT)
			break;
	}
	printf("{\"event\": \"exit\", \"callbacks\": %d}\n", atomic_load(&callbacks));
	flush_or_die();
	return EXIT_OK;
}

static int do_notify(ADDRESS_FAMILY family)
{
	PMIB_UNICASTIPADDRESS_TABLE table = NULL;
	HANDLE handle = NULL;
	struct timespec t0;
	sigset_t signals;
	DWORD status;
	int err;

	/* Blocked before the library's thread exists, so that it inherits the mask. */
	sigemptyset(&signals);
	sigaddset(&signals, SIGTERM);
	sigaddset(&signals, SIGINT);
	sigaddset(&signals, SIGUSR1);
	sigaddset(&signals, SIGUSR2);
	err = pthread_sigmask(SIG_BLOCK, &signals, NULL);
	if (err) {
		fprintf(stderr, "stable_table_client: pthread_sigmask: %s\n", strerror(err));
		return EXIT_FAIL;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	status = NotifyStableUnicastIpAddressTable(family, &table, on_stable, NULL, &handle);
	print_return(status, ms_since(&t0), table, handle);
	print_table(table);
	FreeMibTable(table);
	flush_or_die();
	if (status == NO_ERROR)
		return EXIT_OK;
	if (status != ERROR_IO_PENDING)
		return EXIT_FAIL;
	return wait_pending(handle, &signals);
}

int main(int argc, char **argv)
{
	ADDRESS_FAMILY family;

	if (argc == 3 && !parse_family(argv[2], &family)) {
		if (!strcmp(argv[1], "get"))
			return do_get(family);
		if (!strcmp(argv[1], "notify"))
			return do_notify(family);
	}
	fprintf(stderr, "Usage: stable_table_client get|notify unspec|inet|inet6|NUMBER\n");
	return EXIT_USAGE;
}
