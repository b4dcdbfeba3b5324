// SPDX-License-Identifier: MIT
/*
 * teredo_port_watch: what a firewall manager ported from Windows does with
 * teredo-observer. It asks for the Teredo port once, then registers for
 * changes and prints each one until interrupted (or, with --once, until the
 * registration is confirmed).
 *
 *   cc teredo_port_watch.c $(pkg-config --cflags --libs teredo-observer)
 *   sudo ./a.out
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <teredo_netioapi.h>

/* Written by the signal handler, or by the callback with --once: main waits on it. */
static int wake_pipe[2];

static void wake_main(void)
{
	char byte = 0;

	if (write(wake_pipe[1], &byte, 1) < 0)
		return; /* the pipe is only full when main is already due to wake */
}

static void stop(int sig)
{
	(void)sig;
	wake_main();
}

/* Called on the library's thread, one call at a time: open or close the firewall here. */
static VOID on_port_change(PVOID context, USHORT port, MIB_NOTIFICATION_TYPE type)
{
	int *once = context;

	printf("%s port %u\n", teredo_mib_notification_type_name(type), port);
	fflush(stdout);
	if (*once && type == MibInitialNotification)
		wake_main();
}

int main(int argc, char **argv)
{
	int once = argc > 1 && strcmp(argv[1], "--once") == 0;
	HANDLE handle;
	USHORT port;
	DWORD rc;
	char byte;

	if (pipe(wake_pipe))
		return 1;
	signal(SIGINT, stop);
	signal(SIGTERM, stop);
	rc = GetTeredoPort(&port);
	if (rc == NO_ERROR)
		printf("Teredo port now: %u\n", port);
	else if (rc == ERROR_NOT_READY)
		printf("no Teredo client running yet\n");
	else
		fprintf(stderr, "GetTeredoPort failed: %lu (TEREDO_OBSERVER_DEBUG=1 says why)\n",
			(unsigned long)rc);
	rc = NotifyTeredoPortChange(on_port_change, &once, TRUE, &handle);
	if (rc != NO_ERROR) {
		fprintf(stderr, "NotifyTeredoPortChange failed: %lu\n", (unsigned long)rc);
		return 1;
	}
	while (read(wake_pipe[0], &byte, 1) < 0)
		; /* interrupted by the signal that also wrote to the pipe: read again */
	/* Not from inside the callback: that is where Windows would deadlock. */
	return CancelMibChangeNotify2(handle) == NO_ERROR ? 0 : 1;
}
