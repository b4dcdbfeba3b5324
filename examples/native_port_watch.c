// SPDX-License-Identifier: MIT
/*
 * native_port_watch: the native API in a program's own event loop. It says
 * what counts as the Teredo client (a selection: here the default one, or the
 * process names given on the command line), polls the observer's fd, and
 * prints every change until interrupted (or, with --once, the initial event).
 *
 *   cc native_port_watch.c $(pkg-config --cflags --libs teredo-observer)
 *   sudo ./a.out [--once] [NAME]...
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>

#include <teredo_observer.h>

/* The defaults, with the names given replacing "miredo". NULL: the reason is said. */
static struct teredo_selection *selection_from_args(int argc, char **argv)
{
	struct teredo_selection *sel = teredo_selection_new();

	for (int i = 1; sel && i < argc; i++) {
		if (!strcmp(argv[i], "--once"))
			continue;
		if (teredo_selection_add_comm(sel, argv[i])) {
			teredo_selection_free(sel);
			sel = NULL;
		}
	}
	if (!sel)
		fprintf(stderr, "native_port_watch: %s\n", teredo_observer_last_error());
	return sel;
}

static int print_events(struct teredo_observer *obs, int once)
{
	struct teredo_port_event ev;
	int n;

	while ((n = teredo_observer_receive(obs, &ev)) > 0) {
		printf("%s port %u (was %u) pid %d %.16s\n", teredo_port_event_type_name(ev.type),
		       ev.port, ev.old_port, (int)ev.pid, ev.comm);
		fflush(stdout);
		if (once)
			return 1;
	}
	return n;
}

int main(int argc, char **argv)
{
	int once = argc > 1 && strcmp(argv[1], "--once") == 0;
	struct teredo_selection *sel = selection_from_args(argc, argv);
	struct teredo_observer *obs;
	struct pollfd pfd;
	int err;

	if (!sel)
		return 2;
	err = teredo_observer_new(sel, &obs);
	teredo_selection_free(sel); /* the observer keeps what it needs */
	if (err) {
		fprintf(stderr, "native_port_watch: %s\n", teredo_observer_last_error());
		return 1;
	}
	pfd = (struct pollfd){ .fd = teredo_observer_get_fd(obs), .events = POLLIN };
	while ((err = print_events(obs, once)) == 0)
		if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
			break;
	if (err < 0)
		fprintf(stderr, "native_port_watch: %s\n", teredo_observer_last_error());
	teredo_observer_free(obs);
	return err < 0;
}
