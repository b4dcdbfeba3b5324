// SPDX-License-Identifier: MIT
/*
 * NotifyStableUnicastIpAddressTable, GetUnicastIpAddressTable and
 * FreeMibTable: the address view (address_view.c) fed by rtnetlink
 * (address_source.c), in the caller's network namespace. No BPF, no
 * privileges.
 *
 * A pending request owns a thread that blocks on its netlink socket (and an
 * eventfd for cancels) until the table is stable, calls back once, and ends.
 * Its handle lives in the library's one handle table (subscription.c), so
 * CancelMibChangeNotify2 finds it; the handle stays valid after the callback,
 * as on Windows, until cancelled.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "address_source.h"
#include "last_error.h"
#include "subscription.h"
#include "teredo_observer.h"
#include "thread.h"
#include "windows_api.h"
#include "public.h"

/* Miredo's default InterfaceName; TEREDO_OBSERVER_INTERFACE names another. */
#define DEFAULT_TEREDO_INTERFACE "teredo"
#define TEREDO_INTERFACE_ENV "TEREDO_OBSERVER_INTERFACE"

struct stable_request {
	struct notify_handle handle; /* first: the table's entry is the request */
	pthread_mutex_t lock;
	pthread_cond_t callback_done;
	PSTABLE_UNICAST_IPADDRESS_TABLE_CALLBACK callback;
	PVOID context;
	int family;
	char teredo_name[16];
	struct address_source src; /* the watch thread's alone once it runs */
	int wake_fd;
	bool cancelled;
	bool in_callback;
	pthread_t caller; /* the thread running the callback, when in_callback */
	int refs;	  /* the handle table's and the watch thread's */
};

_public_ const char *teredo_dad_state_name(NL_DAD_STATE state)
{
	switch (state) {
		NAME_CASE(IpDadStateInvalid);
		NAME_CASE(IpDadStateTentative);
		NAME_CASE(IpDadStateDuplicate);
		NAME_CASE(IpDadStateDeprecated);
		NAME_CASE(IpDadStatePreferred);
	}
	return "IpDadStateUnknown";
}

_public_ const char *teredo_prefix_origin_name(NL_PREFIX_ORIGIN origin)
{
	switch (origin) {
		NAME_CASE(IpPrefixOriginOther);
		NAME_CASE(IpPrefixOriginManual);
		NAME_CASE(IpPrefixOriginWellKnown);
		NAME_CASE(IpPrefixOriginDhcp);
		NAME_CASE(IpPrefixOriginRouterAdvertisement);
		NAME_CASE(IpPrefixOriginUnchanged);
	}
	return "IpPrefixOriginUnknown";
}

_public_ const char *teredo_suffix_origin_name(NL_SUFFIX_ORIGIN origin)
{
	switch (origin) {
		NAME_CASE(IpSuffixOriginOther);
		NAME_CASE(IpSuffixOriginManual);
		NAME_CASE(IpSuffixOriginWellKnown);
		NAME_CASE(IpSuffixOriginDhcp);
		NAME_CASE(IpSuffixOriginLinkLayerAddress);
		NAME_CASE(IpSuffixOriginRandom);
		NAME_CASE(IpSuffixOriginUnchanged);
	}
	return "IpSuffixOriginUnknown";
}

_public_ VOID NETIOAPI_API_ FreeMibTable(PVOID Memory)
{
	free(Memory);
}

static void teredo_interface_name(char name[16])
{
	const char *env = getenv(TEREDO_INTERFACE_ENV);

	snprintf(name, 16, "%s", env && env[0] ? env : DEFAULT_TEREDO_INTERFACE);
}

/* Family and Table as Windows checks them; NO_ERROR or the diagnosed code. */
static DWORD check_family_and_table(const char *function, ADDRESS_FAMILY family,
				    PMIB_UNICASTIPADDRESS_TABLE *table)
{
	char message[160];

	if (!table)
		return windows_diagnose(function, ERROR_INVALID_PARAMETER, "Table is NULL");
	if (family == AF_UNSPEC || family == AF_INET || family == AF_INET6)
		return NO_ERROR;
	snprintf(message, sizeof(message), "Family %u is not AF_UNSPEC, AF_INET or AF_INET6%s",
		 (unsigned int)family,
		 family == 23 ? " (23 is Windows' AF_INET6: pass Linux's AF_INET6, 10)" : "");
	return windows_diagnose(function, ERROR_INVALID_PARAMETER, message);
}

/* The table of a source's view now: NO_ERROR or the diagnosed code. */
static DWORD take_table(const char *function, const struct address_source *src, int family,
			PMIB_UNICASTIPADDRESS_TABLE *table)
{
	struct view_clock now;

	view_clock_now(&now);
	if (address_view_table(&src->view, family, &now, table))
		return windows_diagnose(function, ERROR_NOT_ENOUGH_MEMORY, "out of memory");
	return NO_ERROR;
}

_public_ NETIOAPI_API GetUnicastIpAddressTable(ADDRESS_FAMILY Family,
					       PMIB_UNICASTIPADDRESS_TABLE *Table)
{
	struct address_source src;
	char name[16];
	DWORD status;
	int err;

	if (Table)
		*Table = NULL;
	status = check_family_and_table("GetUnicastIpAddressTable", Family, Table);
	if (status != NO_ERROR)
		return status;
	teredo_interface_name(name);
	err = address_source_open(&src, false, name);
	if (err)
		return windows_fail("GetUnicastIpAddressTable", err);
	status = take_table("GetUnicastIpAddressTable", &src, Family, Table);
	address_source_close(&src);
	if (status == NO_ERROR && !(*Table)->NumEntries) {
		FreeMibTable(*Table);
		*Table = NULL;
		return windows_diagnose(
			"GetUnicastIpAddressTable", ERROR_NOT_FOUND,
			"no unicast address of that family in this network namespace");
	}
	return status;
}

/* ---------------------------------------------------------------- pending requests */

static void drop_ref(struct stable_request *req)
{
	int left;

	pthread_mutex_lock(&req->lock);
	left = --req->refs;
	pthread_mutex_unlock(&req->lock);
	if (left)
		return;
	address_source_close(&req->src);
	if (req->wake_fd >= 0)
		close(req->wake_fd);
	pthread_mutex_destroy(&req->lock);
	pthread_cond_destroy(&req->callback_done);
	free(req);
}

static bool is_cancelled(struct stable_request *req)
{
	bool cancelled;

	pthread_mutex_lock(&req->lock);
	cancelled = req->cancelled;
	pthread_mutex_unlock(&req->lock);
	return cancelled;
}

/* The one callback, unless a cancel came first. */
static void call_back(struct stable_request *req)
{
	PMIB_UNICASTIPADDRESS_TABLE table = NULL;
	struct view_clock now;

	/* Out of memory: the callback is owed, so try again shortly. */
	for (;;) {
		view_clock_now(&now);
		if (!address_view_table(&req->src.view, req->family, &now, &table))
			break;
		if (is_cancelled(req))
			return;
		usleep(10000);
	}
	pthread_mutex_lock(&req->lock);
	if (req->cancelled) {
		pthread_mutex_unlock(&req->lock);
		FreeMibTable(table);
		return;
	}
	req->in_callback = true;
	req->caller = pthread_self();
	pthread_mutex_unlock(&req->lock);

	req->callback(req->context, table);

	pthread_mutex_lock(&req->lock);
	req->in_callback = false;
	pthread_cond_broadcast(&req->callback_done);
	pthread_mutex_unlock(&req->lock);
}

/* Wait for the next change (or a cancel) and take it in. */
static void wait_for_change(struct stable_request *req)
{
	struct pollfd fds[2] = {
		{ .fd = address_source_fd(&req->src), .events = POLLIN },
		{ .fd = req->wake_fd, .events = POLLIN },
	};
	int err;

	if (poll(fds, 2, -1) < 0) {
		/* Only EINTR or ENOMEM: the caller is owed its callback, so go on. */
		if (errno != EINTR)
			usleep(10000);
		return;
	}
	if (fds[0].revents) {
		err = address_source_read(&req->src);
		if (err && err != -EINTR)
			usleep(10000); /* out of memory, most likely: the view is kept, try again */
	}
}

static void *watch(void *arg)
{
	struct stable_request *req = arg;

	while (!is_cancelled(req)) {
		if (address_view_stable(&req->src.view, req->family)) {
			call_back(req);
			break;
		}
		wait_for_change(req);
	}
	/* Done: the socket goes now, the handle stays until cancelled. */
	address_source_close(&req->src);
	drop_ref(req);
	return NULL;
}

/*
 * CancelMibChangeNotify2's part: no callback starts after this, and one in
 * flight has returned, unless it is the one calling.
 */
static void wake(struct stable_request *req)
{
	uint64_t one = 1;

	/* Fails only when the counter is full, and then the thread wakes anyway. */
	if (write(req->wake_fd, &one, sizeof(one)) < 0)
		return;
}

static int cancel_request(struct notify_handle *handle)
{
	struct stable_request *req = (struct stable_request *)handle;

	pthread_mutex_lock(&req->lock);
	req->cancelled = true;
	while (req->in_callback && !pthread_equal(req->caller, pthread_self()))
		pthread_cond_wait(&req->callback_done, &req->lock);
	pthread_mutex_unlock(&req->lock);
	wake(req);
	drop_ref(req); /* the handle table's */
	return 0;
}

static int start_watch(struct stable_request *req)
{
	int err = library_thread_start(NULL, watch, req);

	if (err)
		return set_last_error(-err, "cannot start the address watch thread: %s",
				      strerror(err));
	return 0;
}

static int request_init(struct stable_request *req, int family,
			PSTABLE_UNICAST_IPADDRESS_TABLE_CALLBACK callback, PVOID context)
{
	req->family = family;
	req->callback = callback;
	req->context = context;
	req->refs = 1; /* the caller's, handed to the handle table */
	req->wake_fd = -1;
	pthread_mutex_init(&req->lock, NULL);
	pthread_cond_init(&req->callback_done, NULL);
	teredo_interface_name(req->teredo_name);
	return address_source_open(&req->src, true, req->teredo_name);
}

/* Register req and start its thread: ERROR_IO_PENDING and *handle, or the diagnosed failure. */
static DWORD go_pending(struct stable_request *req, HANDLE *handle)
{
	const char *function = "NotifyStableUnicastIpAddressTable";
	int err;

	req->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (req->wake_fd < 0) {
		err = set_last_error(-errno, "eventfd: %s", strerror(errno));
		goto fail;
	}
	req->refs++; /* the watch thread's, taken while req is still ours alone */
	err = notify_handle_add(&req->handle, cancel_request);
	if (err) {
		drop_ref(req);
		goto fail;
	}
	/* Known before any callback can run: the callback may cancel with it. */
	*handle = (HANDLE)req->handle.id;
	err = start_watch(req);
	if (err) {
		*handle = NULL;
		drop_ref(req); /* the thread's: it never ran */
		notify_handle_cancel((void *)req->handle.id, cancel_request);
		return windows_fail(function, err);
	}
	return ERROR_IO_PENDING;
fail:
	drop_ref(req);
	return windows_fail(function, err);
}

_public_ NETIOAPI_API
NotifyStableUnicastIpAddressTable(ADDRESS_FAMILY Family, PMIB_UNICASTIPADDRESS_TABLE *Table,
				  PSTABLE_UNICAST_IPADDRESS_TABLE_CALLBACK CallerCallback,
				  PVOID CallerContext, HANDLE *NotificationHandle)
{
	const char *function = "NotifyStableUnicastIpAddressTable";
	struct stable_request *req;
	DWORD status;
	int err;

	if (Table)
		*Table = NULL;
	if (NotificationHandle)
		*NotificationHandle = NULL;
	status = check_family_and_table(function, Family, Table);
	if (status != NO_ERROR)
		return status;
	if (!NotificationHandle || !CallerCallback)
		return windows_diagnose(function, ERROR_INVALID_PARAMETER,
					NotificationHandle ? "CallerCallback is NULL"
							   : "NotificationHandle is NULL");
	req = calloc(1, sizeof(*req));
	if (!req)
		return windows_diagnose(function, ERROR_NOT_ENOUGH_MEMORY, "out of memory");
	err = request_init(req, Family, CallerCallback, CallerContext);
	if (err) {
		drop_ref(req);
		return windows_fail(function, err);
	}
	if (!address_view_stable(&req->src.view, Family))
		return go_pending(req, NotificationHandle);
	/* Stable now: the table at once, and no callback ever. */
	status = take_table(function, &req->src, Family, Table);
	drop_ref(req);
	return status;
}
