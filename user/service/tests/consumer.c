// SPDX-License-Identifier: MIT
/*
 * service-consumer: a program using the library as any program would, for
 * user/service/tests/run-tests. One line per thing seen on stdout.
 *
 *   consumer watch     NotifyTeredoPortChange with the initial call: one line
 *                      per call, "initial 0", "add P", "change P", "delete 0",
 *                      until stdin ends; a failure: "error CODE: reason"
 *   consumer get       GetTeredoPort: "NO_ERROR P" or "CODE: reason"
 *   consumer fork      registers, forks; after a line on stdin the child
 *                      asks for the port and registers: "parent ..." and
 *                      "child ..." lines
 *   consumer fwpm-watch  FwpmSystemPortsSubscribe0: "subscribed", then one line
 *                      per snapshot, "ports P" (0: no Teredo port), until stdin ends
 *   consumer fwpm-get  FwpmSystemPortsGet0: "ERROR_SUCCESS P" or "CODE: reason"
 *   consumer many N    N native observers at once: "ready N", then for the
 *                      k-th change "all TYPE PORT" once every one has it
 *                      (or "mismatch ..." when they disagree), until stdin ends
 */
#define _GNU_SOURCE
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "teredo_fwpmu.h"
#include "teredo_netioapi.h"
#include "teredo_observer.h"

static pthread_mutex_t out_lock = PTHREAD_MUTEX_INITIALIZER;
static char diagnostic[512];

static void on_diagnostic(void *ctx, uint32_t code, const char *message)
{
	(void)ctx;
	snprintf(diagnostic, sizeof(diagnostic), "%s: %s", teredo_windows_error_name(code),
		 message);
}

static const char *type_name(MIB_NOTIFICATION_TYPE type)
{
	static const char *const names[] = { "change", "add", "delete", "initial" };

	return type <= MibInitialNotification ? names[type] : "unknown";
}

static VOID on_change(PVOID ctx, USHORT port, MIB_NOTIFICATION_TYPE type)
{
	pthread_mutex_lock(&out_lock);
	printf("%s%s %u\n", ctx ? (const char *)ctx : "", type_name(type), port);
	fflush(stdout);
	pthread_mutex_unlock(&out_lock);
}

/* Until stdin ends (the test closes its end, or dies). */
static void wait_stdin(void)
{
	char buf[256];

	while (read(STDIN_FILENO, buf, sizeof(buf)) > 0)
		;
}

static int watch(void)
{
	HANDLE h;

	if (NotifyTeredoPortChange(on_change, NULL, TRUE, &h) != NO_ERROR) {
		printf("error %s\n", diagnostic);
		return 1;
	}
	wait_stdin();
	return CancelMibChangeNotify2(h) == NO_ERROR ? 0 : 1;
}

/* The Teredo type's port in a whole snapshot (0: none). */
static unsigned int teredo_port_of(const FWPM_SYSTEM_PORTS0 *ports)
{
	const FWPM_SYSTEM_PORTS_BY_TYPE0 *t = &ports->types[FWPM_SYSTEM_PORT_TEREDO];

	return t->numPorts ? t->ports[0] : 0;
}

static void CALLBACK on_ports(void *ctx, const FWPM_SYSTEM_PORTS0 *ports)
{
	(void)ctx;
	pthread_mutex_lock(&out_lock);
	printf("ports %u\n", teredo_port_of(ports));
	fflush(stdout);
	pthread_mutex_unlock(&out_lock);
}

static int fwpm_watch(void)
{
	HANDLE h;

	if (FwpmSystemPortsSubscribe0(NULL, NULL, on_ports, NULL, &h) != ERROR_SUCCESS) {
		printf("error %s\n", diagnostic);
		return 1;
	}
	printf("subscribed\n");
	fflush(stdout);
	wait_stdin();
	return FwpmSystemPortsUnsubscribe0(NULL, h) == ERROR_SUCCESS ? 0 : 1;
}

static int fwpm_get(void)
{
	FWPM_SYSTEM_PORTS0 *ports;
	DWORD rc = FwpmSystemPortsGet0(NULL, &ports);

	if (rc != ERROR_SUCCESS) {
		printf("%s\n", diagnostic);
		return 1;
	}
	printf("ERROR_SUCCESS %u\n", teredo_port_of(ports));
	FwpmFreeMemory0((void **)&ports);
	return 0;
}

static int get_as(const char *who)
{
	USHORT port = 0;
	DWORD rc = GetTeredoPort(&port);

	pthread_mutex_lock(&out_lock);
	if (rc == NO_ERROR)
		printf("%sNO_ERROR %u\n", who, port);
	else
		printf("%s%s\n", who, diagnostic);
	fflush(stdout);
	pthread_mutex_unlock(&out_lock);
	return 0;
}

static int get(void)
{
	return get_as("");
}

/*
 * The parent registers and forks; on a line from stdin the child asks for
 * the port and registers too. Lines "parent ..." and "child ...".
 */
static int forked(void)
{
	char line[64];
	HANDLE h, hc;
	pid_t pid;

	if (NotifyTeredoPortChange(on_change, "parent ", TRUE, &h) != NO_ERROR) {
		printf("error %s\n", diagnostic);
		return 1;
	}
	get_as("parent ");
	fflush(stdout);
	pid = fork();
	if (pid < 0)
		return 1;
	if (pid > 0) {
		/* stdin is the child's: the parent waits for it to end. */
		waitpid(pid, NULL, 0);
		return CancelMibChangeNotify2(h) == NO_ERROR ? 0 : 1;
	}
	if (!fgets(line, sizeof(line), stdin))
		_exit(1);
	get_as("child ");
	if (NotifyTeredoPortChange(on_change, "child ", TRUE, &hc) != NO_ERROR) {
		printf("child error %s\n", diagnostic);
		fflush(stdout);
		_exit(1);
	}
	pthread_mutex_lock(&out_lock);
	printf("child inherited handle: %s\n",
	       teredo_windows_error_name(CancelMibChangeNotify2(h)));
	fflush(stdout);
	pthread_mutex_unlock(&out_lock);
	wait_stdin();
	_exit(0);
}

struct many {
	struct teredo_observer **obs;
	struct teredo_port_event *seen; /* [k * n + i]: observer i's k-th change */
	size_t *count, n, reported, cap;
};

/* Print every change all observers have seen, once. */
static void report(struct many *m)
{
	for (;;) {
		size_t k = m->reported;
		const struct teredo_port_event *first = &m->seen[k * m->n];

		for (size_t i = 0; i < m->n; i++)
			if (m->count[i] <= k)
				return;
		for (size_t i = 1; i < m->n; i++) {
			const struct teredo_port_event *e = &m->seen[k * m->n + i];

			if (e->type != first->type || e->port != first->port) {
				printf("mismatch %zu: %s %u against %s %u\n", i,
				       teredo_port_event_type_name(e->type), e->port,
				       teredo_port_event_type_name(first->type), first->port);
				fflush(stdout);
				exit(1);
			}
		}
		printf("all %s %u\n", teredo_port_event_type_name(first->type), first->port);
		fflush(stdout);
		m->reported++;
	}
}

static void take_events(struct many *m, size_t i)
{
	struct teredo_port_event ev;

	while (teredo_observer_receive(m->obs[i], &ev) == 1) {
		if (ev.type == TEREDO_PORT_INITIAL)
			continue;
		if (m->count[i] == m->cap) {
			printf("mismatch: more than %zu changes\n", m->cap);
			exit(1);
		}
		m->seen[m->count[i]++ * m->n + i] = ev;
	}
}

static int many(size_t n)
{
	struct rlimit rl = { 8 * n + 64, 8 * n + 64 };
	struct many m = { .n = n, .cap = 64 };
	struct pollfd *pfd = calloc(n + 1, sizeof(*pfd));

	m.obs = calloc(n, sizeof(*m.obs));
	m.count = calloc(n, sizeof(*m.count));
	m.seen = calloc(n * m.cap, sizeof(*m.seen));
	if (!pfd || !m.obs || !m.count || !m.seen || setrlimit(RLIMIT_NOFILE, &rl)) {
		printf("error: no memory or no fds for %zu observers\n", n);
		return 1;
	}
	for (size_t i = 0; i < n; i++) {
		if (teredo_observer_new(NULL, &m.obs[i])) {
			printf("error observer %zu: %s\n", i, teredo_observer_last_error());
			return 1;
		}
		pfd[i] =
			(struct pollfd){ .fd = teredo_observer_get_fd(m.obs[i]), .events = POLLIN };
		take_events(&m, i);
	}
	pfd[n] = (struct pollfd){ .fd = STDIN_FILENO, .events = POLLIN };
	printf("ready %zu\n", n);
	fflush(stdout);
	while (poll(pfd, n + 1, -1) >= 0 && !pfd[n].revents) {
		for (size_t i = 0; i < n; i++)
			if (pfd[i].revents)
				take_events(&m, i);
		report(&m);
	}
	for (size_t i = 0; i < n; i++)
		teredo_observer_free(m.obs[i]);
	return 0;
}

int main(int argc, char **argv)
{
	teredo_set_diagnostic_hook(on_diagnostic, NULL);
	if (argc == 2 && !strcmp(argv[1], "watch"))
		return watch();
	if (argc == 2 && !strcmp(argv[1], "get"))
		return get();
	if (argc == 2 && !strcmp(argv[1], "fork"))
		return forked();
	if (argc == 2 && !strcmp(argv[1], "fwpm-watch"))
		return fwpm_watch();
	if (argc == 2 && !strcmp(argv[1], "fwpm-get"))
		return fwpm_get();
	if (argc == 3 && !strcmp(argv[1], "many"))
		return many(strtoul(argv[2], NULL, 10));
	fprintf(stderr, "usage: consumer watch|get|fork|fwpm-watch|fwpm-get|many N\n");
	return 2;
}
