// SPDX-License-Identifier: MIT
/*
 * win_port_client: a program written against the Windows-compatible API only
 * (teredo_netioapi.h), as code ported from Windows would be. The end-to-end
 * suite runs it next to the real Miredo.
 *
 *   win_port_client get     GetTeredoPort: print the port, or the error's
 *                           name (ERROR_NOT_READY: exit 3; others: exit 1)
 *   win_port_client watch   NotifyTeredoPortChange with InitialNotification
 *                           TRUE: one line "notify TYPE PORT" per callback,
 *                           flushed, until SIGTERM or SIGINT; then
 *                           CancelMibChangeNotify2 and "cancelled"
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "teredo_fwpmu.h"
#include "teredo_netioapi.h"

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_NOT_READY = 3 };

struct watch_context {
	unsigned long calls;
};

static VOID NETIOAPI_API_ on_port_change(PVOID CallerContext, USHORT Port,
					 MIB_NOTIFICATION_TYPE NotificationType)
{
	struct watch_context *ctx = CallerContext;

	ctx->calls++;
	/* Nothing useful can be done about a failed write from a callback. */
	if (printf("notify %s %u\n", teredo_mib_notification_type_name(NotificationType),
		   (unsigned int)Port) < 0 ||
	    fflush(stdout) == EOF)
		fprintf(stderr, "win_port_client: writing stdout: %s\n", strerror(errno));
}

static int do_get(void)
{
	USHORT port = 0;
	DWORD status;

	status = GetTeredoPort(&port);
	if (status == NO_ERROR) {
		printf("%u\n", (unsigned int)port);
		return fflush(stdout) == EOF ? EXIT_FAIL : EXIT_OK;
	}
	printf("%s\n", teredo_windows_error_name(status));
	if (fflush(stdout) == EOF)
		return EXIT_FAIL;
	if (status == ERROR_NOT_READY)
		return EXIT_NOT_READY;
	fprintf(stderr, "win_port_client: GetTeredoPort: %s (%lu)\n",
		teredo_windows_error_name(status), (unsigned long)status);
	return EXIT_FAIL;
}

/* FwpmSystemPortsGet0: the Teredo type's port, or "none" (exit 3) when it has none. */
static int do_fwpm(void)
{
	FWPM_SYSTEM_PORTS0 *ports = NULL;
	const FWPM_SYSTEM_PORTS_BY_TYPE0 *teredo;
	DWORD status = FwpmSystemPortsGet0(NULL, &ports);
	int rc;

	if (status != ERROR_SUCCESS) {
		fprintf(stderr, "win_port_client: FwpmSystemPortsGet0: %s (%#lx)\n",
			teredo_windows_error_name(status), (unsigned long)status);
		return EXIT_FAIL;
	}
	teredo = &ports->types[FWPM_SYSTEM_PORT_TEREDO];
	if (teredo->numPorts)
		printf("%u\n", teredo->ports[0]);
	else
		printf("none\n");
	rc = teredo->numPorts ? EXIT_OK : EXIT_NOT_READY;
	FwpmFreeMemory0((void **)&ports);
	return fflush(stdout) == EOF ? EXIT_FAIL : rc;
}

static int do_watch(void)
{
	struct watch_context ctx = { 0 };
	HANDLE handle = NULL;
	sigset_t stop;
	DWORD status;
	int sig = 0;
	int err;

	/*
	 * Block the stop signals before the library starts its thread, so that
	 * the thread inherits the mask and sigwait() below receives them.
	 */
	if (sigemptyset(&stop) || sigaddset(&stop, SIGTERM) || sigaddset(&stop, SIGINT)) {
		fprintf(stderr, "win_port_client: sigset: %s\n", strerror(errno));
		return EXIT_FAIL;
	}
	err = pthread_sigmask(SIG_BLOCK, &stop, NULL);
	if (err) {
		fprintf(stderr, "win_port_client: pthread_sigmask: %s\n", strerror(err));
		return EXIT_FAIL;
	}

	status = NotifyTeredoPortChange(on_port_change, &ctx, TRUE, &handle);
	if (status != NO_ERROR) {
		fprintf(stderr, "win_port_client: NotifyTeredoPortChange: %s (%lu)%s\n",
			teredo_windows_error_name(status), (unsigned long)status,
			handle ? ", and the handle is not NULL" : "");
		return EXIT_FAIL;
	}
	if (!handle) {
		fprintf(stderr, "win_port_client: NotifyTeredoPortChange: NO_ERROR, NULL handle\n");
		return EXIT_FAIL;
	}

	err = sigwait(&stop, &sig);
	if (err)
		fprintf(stderr, "win_port_client: sigwait: %s\n", strerror(err));

	status = CancelMibChangeNotify2(handle);
	if (status != NO_ERROR) {
		fprintf(stderr, "win_port_client: CancelMibChangeNotify2: %s (%lu)\n",
			teredo_windows_error_name(status), (unsigned long)status);
		return EXIT_FAIL;
	}
	/* After the cancel no callback runs: ctx.calls is ours alone again. */
	printf("cancelled after %lu calls\n", ctx.calls);
	if (fflush(stdout) == EOF)
		return EXIT_FAIL;
	return err ? EXIT_FAIL : EXIT_OK;
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "get") == 0)
		return do_get();
	if (argc == 2 && strcmp(argv[1], "watch") == 0)
		return do_watch();
	if (argc == 2 && strcmp(argv[1], "fwpm") == 0)
		return do_fwpm();
	fprintf(stderr, "Usage: win_port_client get|watch|fwpm\n");
	return EXIT_USAGE;
}
