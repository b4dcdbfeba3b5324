// SPDX-License-Identifier: MIT
/*
 * NotifyStableUnicastIpAddressTable, GetUnicastIpAddressTable and
 * CancelMibChangeNotify2 against the real kernel's rtnetlink, each test in a
 * network namespace of its own (Criterion runs each test in its own process):
 * a veth named "teredo" plays Miredo's tunnel, down and without its
 * 2001:0::/32 address until "qualified". The real Miredo is the e2e suite's.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "observe.h"
#include "teredo_netioapi.h"
#include "teredo_observer.h"

#define TEREDO_ADDR "2001:0:c000:201::1"

struct catcher {
	atomic_int calls;
	atomic_bool inside;
	atomic_bool returned;
	int sleep_ms;
	bool cancel_self;
	HANDLE handle;
	DWORD cancel_result;
	ULONG rows;
	bool saw_teredo;
};

static void run(const char *command)
{
	cr_assert_eq(system(command), 0, "%s failed", command);
}

/* A network namespace of this test's process alone, with lo up. */
static void private_netns(void)
{
	need_root();
	cr_assert_eq(unshare(CLONE_NEWNET), 0, "unshare(CLONE_NEWNET): %s", strerror(errno));
	run("ip link set lo up");
}

/* Miredo started, its server unreachable: the tunnel exists, down, no address. */
static void unqualified_teredo(void)
{
	private_netns();
	run("ip link add teredo type veth peer name tpeer");
}

/* Qualified: its address (no DAD: Miredo's tun has none either), then up. */
static void qualify(void)
{
	run("ip addr add " TEREDO_ADDR "/32 dev teredo nodad");
	run("ip link set tpeer up && ip link set teredo up");
}

static bool has_teredo_row(const MIB_UNICASTIPADDRESS_TABLE *table)
{
	struct in6_addr want;

	inet_pton(AF_INET6, TEREDO_ADDR, &want);
	for (ULONG i = 0; i < table->NumEntries; i++)
		if (table->Table[i].Address.si_family == AF_INET6 &&
		    !memcmp(&table->Table[i].Address.Ipv6.sin6_addr, &want, sizeof(want)))
			return true;
	return false;
}

static VOID catch_table(PVOID ctx, PMIB_UNICASTIPADDRESS_TABLE table)
{
	struct catcher *c = ctx;

	atomic_store(&c->returned, false);
	atomic_store(&c->inside, true);
	c->rows = table->NumEntries;
	c->saw_teredo = has_teredo_row(table);
	FreeMibTable(table);
	if (c->sleep_ms)
		usleep(c->sleep_ms * 1000);
	if (c->cancel_self)
		c->cancel_result = CancelMibChangeNotify2(c->handle);
	atomic_store(&c->inside, false);
	atomic_store(&c->returned, true);
	atomic_fetch_add(&c->calls, 1);
}

static bool wait_until(atomic_int *value, int at_least, int timeout_ms)
{
	for (int waited = 0; waited < timeout_ms; waited += 10) {
		if (atomic_load(value) >= at_least)
			return true;
		usleep(10000);
	}
	return atomic_load(value) >= at_least;
}

static void notify_pending(int family, struct catcher *c)
{
	PMIB_UNICASTIPADDRESS_TABLE table = (void *)1;
	DWORD status;

	status = NotifyStableUnicastIpAddressTable(family, &table, catch_table, c, &c->handle);
	cr_assert_eq(status, ERROR_IO_PENDING, "got %s", teredo_windows_error_name(status));
	cr_assert_null(table, "no table with ERROR_IO_PENDING");
	cr_assert_not_null(c->handle);
}

TestSuite(stable_table, .timeout = 60);

Test(stable_table, stable_now_no_error_with_the_table_and_no_callback)
{
	struct catcher c = { 0 };
	PMIB_UNICASTIPADDRESS_TABLE table = NULL;
	HANDLE handle = (HANDLE)1;
	DWORD status;

	private_netns();
	status = NotifyStableUnicastIpAddressTable(AF_UNSPEC, &table, catch_table, &c, &handle);
	cr_assert_eq(status, NO_ERROR, "got %s", teredo_windows_error_name(status));
	cr_assert_null(handle, "no handle with NO_ERROR");
	cr_assert_not_null(table);
	cr_assert_eq(table->NumEntries, 2, "127.0.0.1 and ::1");
	FreeMibTable(table);
	usleep(200000);
	cr_assert_eq(atomic_load(&c.calls), 0);
}

Test(stable_table, pending_until_qualified_then_exactly_one_callback)
{
	struct catcher c = { 0 };

	unqualified_teredo();
	notify_pending(AF_UNSPEC, &c);
	usleep(200000);
	cr_assert_eq(atomic_load(&c.calls), 0, "not stable yet");
	qualify();
	cr_assert(wait_until(&c.calls, 1, 10000), "no callback within 10 s of qualification");
	cr_assert(c.saw_teredo, "the callback's table holds the Teredo address");
	/* Later changes call nobody. */
	run("ip addr add 192.0.2.7/24 dev teredo");
	usleep(300000);
	cr_assert_eq(atomic_load(&c.calls), 1);
	/* The handle stays valid after its callback, until cancelled, once. */
	cr_assert_eq(CancelMibChangeNotify2(c.handle), NO_ERROR);
	cr_assert_eq(CancelMibChangeNotify2(c.handle), ERROR_INVALID_HANDLE);
}

Test(stable_table, a_tentative_address_keeps_it_pending)
{
	struct catcher c = { 0 };

	private_netns();
	run("ip link add va type veth peer name vb && ip link set vb up && ip link set va up");
	/* DAD on a veth takes about a second: tentative meanwhile. */
	run("ip addr add 2001:db8::5/64 dev va");
	notify_pending(AF_INET6, &c);
	cr_assert(wait_until(&c.calls, 1, 10000), "no callback once DAD was over");
	cr_assert_eq(CancelMibChangeNotify2(c.handle), NO_ERROR);
}

Test(stable_table, ipv4_does_not_wait_for_teredo)
{
	PMIB_UNICASTIPADDRESS_TABLE table = NULL;
	struct catcher c = { 0 };
	HANDLE handle = NULL;

	unqualified_teredo();
	cr_assert_eq(NotifyStableUnicastIpAddressTable(AF_INET, &table, catch_table, &c, &handle),
		     NO_ERROR);
	cr_assert_eq(table->NumEntries, 1);
	cr_assert_eq(table->Table[0].Address.si_family, AF_INET);
	FreeMibTable(table);
	notify_pending(AF_INET6, &c);
	cr_assert_eq(CancelMibChangeNotify2(c.handle), NO_ERROR);
}

Test(stable_table, cancel_before_stable_no_callback)
{
	struct catcher c = { 0 };

	unqualified_teredo();
	notify_pending(AF_UNSPEC, &c);
	cr_assert_eq(CancelMibChangeNotify2(c.handle), NO_ERROR);
	qualify();
	usleep(500000);
	cr_assert_eq(atomic_load(&c.calls), 0);
	cr_assert_eq(CancelMibChangeNotify2(c.handle), ERROR_INVALID_HANDLE);
}

Test(stable_table, cancel_from_inside_the_callback_returns)
{
	struct catcher c = { .cancel_self = true, .cancel_result = 12345 };

	unqualified_teredo();
	notify_pending(AF_UNSPEC, &c);
	qualify();
	cr_assert(wait_until(&c.calls, 1, 10000), "no callback (deadlocked?)");
	cr_assert_eq(c.cancel_result, NO_ERROR);
	cr_assert_eq(CancelMibChangeNotify2(c.handle), ERROR_INVALID_HANDLE);
}

Test(stable_table, cancel_waits_for_the_callback_in_flight)
{
	struct catcher c = { .sleep_ms = 400 };

	unqualified_teredo();
	notify_pending(AF_UNSPEC, &c);
	qualify();
	for (int i = 0; i < 1000 && !atomic_load(&c.inside); i++)
		usleep(10000);
	cr_assert(atomic_load(&c.inside), "the callback did not start");
	cr_assert_eq(CancelMibChangeNotify2(c.handle), NO_ERROR);
	cr_assert(atomic_load(&c.returned), "CancelMibChangeNotify2 returned before the callback");
}

Test(stable_table, parameters_checked_as_windows_does)
{
	PMIB_UNICASTIPADDRESS_TABLE table = (void *)1;
	HANDLE handle = (HANDLE)1;
	struct catcher c = { 0 };

	cr_assert_eq(NotifyStableUnicastIpAddressTable(23, &table, catch_table, &c, &handle),
		     ERROR_INVALID_PARAMETER, "Windows' AF_INET6 is not Linux's");
	cr_assert_null(table);
	cr_assert_null(handle);
	cr_assert_eq(NotifyStableUnicastIpAddressTable(AF_UNSPEC, NULL, catch_table, &c, &handle),
		     ERROR_INVALID_PARAMETER);
	cr_assert_eq(NotifyStableUnicastIpAddressTable(AF_UNSPEC, &table, catch_table, &c, NULL),
		     ERROR_INVALID_PARAMETER);
	cr_assert_eq(NotifyStableUnicastIpAddressTable(AF_UNSPEC, &table, NULL, &c, &handle),
		     ERROR_INVALID_PARAMETER);
	cr_assert_eq(GetUnicastIpAddressTable(AF_INET, NULL), ERROR_INVALID_PARAMETER);
	cr_assert_eq(GetUnicastIpAddressTable(AF_PACKET, &table), ERROR_INVALID_PARAMETER);
	cr_assert_eq(CancelMibChangeNotify2((HANDLE)0x1234), ERROR_INVALID_HANDLE);
	FreeMibTable(NULL);
}

Test(stable_table, get_table_by_family)
{
	PMIB_UNICASTIPADDRESS_TABLE table = NULL;

	need_root();
	cr_assert_eq(unshare(CLONE_NEWNET), 0);
	cr_assert_eq(GetUnicastIpAddressTable(AF_UNSPEC, &table), ERROR_NOT_FOUND, "lo is down");
	cr_assert_null(table);
	run("ip link set lo up");
	cr_assert_eq(GetUnicastIpAddressTable(AF_INET6, &table), NO_ERROR);
	cr_assert_eq(table->NumEntries, 1);
	cr_assert_eq(table->Table[0].Address.si_family, AF_INET6);
	cr_assert_eq(table->Table[0].InterfaceLuid.Info.IfType, IF_TYPE_SOFTWARE_LOOPBACK);
	FreeMibTable(table);
}

Test(stable_table, subscription_handles_are_not_stable_table_handles)
{
	struct catcher c = { 0 };

	unqualified_teredo();
	notify_pending(AF_UNSPEC, &c);
	/* The native cancel knows its own kind only; the Windows one knows both. */
	cr_assert_eq(teredo_unsubscribe((struct teredo_subscription *)c.handle), -EBADF);
	cr_assert_eq(CancelMibChangeNotify2(c.handle), NO_ERROR);
}
