// SPDX-License-Identifier: MIT
/*
 * Where the library's events come from. Automatically: the host's service
 * when its socket is there (no privileges, no BPF here); else our own BPF
 * programs where we may load them; else ERROR_ACCESS_DENIED, saying to start
 * the service. TEREDO_OBSERVER_SOURCE forces one way.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "event_source.h"
#include "last_error.h"
#include "teredo_observer_private.h"
#include "teredo_observer.h"
#include "varlink.h"

int source_choice_from_env(enum source_choice *out)
{
	const char *v = getenv("TEREDO_OBSERVER_SOURCE");

	*out = SOURCE_AUTO;
	if (!v || !v[0] || !strcmp(v, "auto"))
		return 0;
	if (!strcmp(v, "kernel")) {
		*out = SOURCE_KERNEL;
		return 0;
	}
	if (!strcmp(v, "service")) {
		*out = SOURCE_SERVICE;
		return 0;
	}
	return set_last_error(-EINVAL,
			      "TEREDO_OBSERVER_SOURCE=%s: expected auto, kernel or service", v);
}

static int kernel_open(const struct teredo_selection *sel, bool live, struct event_source **out)
{
	return live ? kernel_source_open(sel, out) : kernel_snapshot_open(sel, out);
}

static bool service_socket_present(void)
{
	struct stat st;

	return stat(varlink_socket_path(), &st) == 0 && S_ISSOCK(st.st_mode);
}

/*
 * Without privileges the service is the only way: say why it failed, or how
 * to get it, in one line. The kernel's reason names what is missing.
 */
static int no_way(int service_err, const char *service_reason)
{
	char reason[200];

	snprintf(reason, sizeof(reason), "%s", teredo_observer_last_error());
	if (service_err == SOURCE_UNREACHABLE)
		return set_last_error(SOURCE_UNREACHABLE,
				      "the teredo-observer service at %s is not answering "
				      "(restarting?), and %s",
				      varlink_socket_path(), reason);
	if (service_err != -ENOENT)
		return set_last_error(-EACCES, "%s", service_reason);
	return set_last_error(-EACCES,
			      "no teredo-observer service at %s, and %s; or start "
			      "teredo-observer.service (systemctl start teredo-observer)",
			      varlink_socket_path(), reason);
}

/*
 * Issue 20 item 3: consumers in one process share one hub, and the root
 * consumers of a host one attached set of programs (shared_set.h); each
 * process that cannot share one puts one more copy on every bind and send
 * of the host (ten copies cost unrelated sends +44% where one costs +11%:
 * BENCHMARKS.md). The kernel source says so when it loads one, once, and
 * why; the command (the host's observer on purpose) opts out.
 */
static atomic_bool own_copy_said;

void teredo_observer_no_own_copy_notice(void)
{
	atomic_store(&own_copy_said, true);
}

void say_own_copy(const char *why)
{
	if (atomic_exchange(&own_copy_said, true))
		return;
	fprintf(stderr,
		"teredo-observer: this process loads its own copy of the BPF programs (%s); "
		"every bind and send on the host runs one more copy per such process: start "
		"teredo-observer.socket so that they all share one\n",
		why);
}

int event_source_open(const struct teredo_selection *sel, enum source_choice choice, bool live,
		      struct event_source **out)
{
	char service_reason[256] = "";
	int service_err = -ENOENT, kernel_err;

	if (choice == SOURCE_KERNEL)
		return kernel_open(sel, live, out);
	if (choice == SOURCE_SERVICE)
		return service_source_open(sel, live, out);
	if (service_socket_present()) {
		service_err = service_source_open(sel, live, out);
		if (!service_err)
			return 0;
		snprintf(service_reason, sizeof(service_reason), "%s",
			 teredo_observer_last_error());
	}
	kernel_err = kernel_open(sel, live, out);
	if (kernel_err != -EPERM)
		return kernel_err;
	return no_way(service_err, service_reason);
}
