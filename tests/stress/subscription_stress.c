// SPDX-License-Identifier: MIT
/*
 * subscription-stress: hundreds of Windows-API registrations made and
 * cancelled from many threads at once while real Teredo port events flow,
 * plus cancels racing callbacks in flight and from inside callbacks. Each
 * registration must get every event, exactly once, in order.
 *
 * A program rather than a Criterion test so that it also runs under
 * ThreadSanitizer (make tsan-test), whose memory layout Criterion's
 * allocator cannot live with. The Criterion suite runs it as well.
 * Needs root. Exit 0 and "N passed, 0 failed" when all is well.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "teredo_netioapi.h"
#include "teredo_observer.h"

#define THREADS 8
#define PER_THREAD 40
#define REGISTRATIONS (THREADS * PER_THREAD)
#define CYCLES 5

struct tally {
	atomic_int calls;
	atomic_int wrong; /* a call out of the expected order */
	atomic_int inside;
	atomic_int overlaps;
	_Atomic USHORT added[CYCLES]; /* checked against ports[] at the end */
};

static struct tally tallies[REGISTRATIONS];
static HANDLE handles[REGISTRATIONS];
static USHORT ports[CYCLES];
static atomic_bool churn_stop;
static int passed, failed;

static void check(bool ok, const char *what)
{
	printf("%s: %s\n", ok ? "ok" : "FAIL", what);
	if (ok)
		passed++;
	else
		failed++;
}

/*
 * Expected calls: initial, then add/delete per cycle, in order. The add's
 * port can arrive before the client has told us its port, so it is kept and
 * compared at the end.
 */
static VOID count_call(PVOID ctx, USHORT port, MIB_NOTIFICATION_TYPE type)
{
	struct tally *t = ctx;
	int n = atomic_load(&t->calls);
	bool right;

	if (atomic_fetch_add(&t->inside, 1))
		atomic_fetch_add(&t->overlaps, 1);
	if (n == 0) {
		right = type == MibInitialNotification && port == 0;
	} else if (n % 2 == 1) {
		right = type == MibAddInstance && n / 2 < CYCLES;
		if (right)
			atomic_store(&t->added[n / 2], port);
	} else {
		right = type == MibDeleteInstance && port == 0;
	}
	if (!right)
		atomic_fetch_add(&t->wrong, 1);
	atomic_fetch_add(&t->calls, 1);
	atomic_fetch_sub(&t->inside, 1);
}

static VOID ignore_call(PVOID ctx, USHORT port, MIB_NOTIFICATION_TYPE type)
{
	(void)ctx;
	(void)port;
	(void)type;
}

static void *register_some(void *arg)
{
	long first = (long)arg * PER_THREAD;

	for (long i = first; i < first + PER_THREAD; i++)
		if (NotifyTeredoPortChange(count_call, &tallies[i], TRUE, &handles[i]) != NO_ERROR)
			return (void *)1;
	return NULL;
}

static void *cancel_some(void *arg)
{
	long first = (long)arg * PER_THREAD;

	for (long i = first; i < first + PER_THREAD; i++)
		if (CancelMibChangeNotify2(handles[i]) != NO_ERROR)
			return (void *)1;
	return NULL;
}

struct self_cancel {
	HANDLE handle;
	atomic_int calls;
	atomic_bool done; /* the callback's last touch of this struct */
	DWORD result;
};

static VOID cancel_self(PVOID ctx, USHORT port, MIB_NOTIFICATION_TYPE type)
{
	struct self_cancel *s = ctx;

	(void)port;
	(void)type;
	/* The handle is written by the registering thread; wait until it is there. */
	while (!__atomic_load_n(&s->handle, __ATOMIC_ACQUIRE))
		usleep(100);
	if (atomic_fetch_add(&s->calls, 1) == 0) {
		s->result = CancelMibChangeNotify2(s->handle);
		atomic_store(&s->done, true);
	}
}

/* Register and cancel in a loop while events flow, some cancelling themselves. */
static void *churn(void *arg)
{
	(void)arg;
	while (!atomic_load(&churn_stop)) {
		struct self_cancel *s = calloc(1, sizeof(*s));
		HANDLE h, tmp;

		if (!s || NotifyTeredoPortChange(ignore_call, NULL, TRUE, &h) != NO_ERROR ||
		    NotifyTeredoPortChange(cancel_self, s, TRUE, &tmp) != NO_ERROR)
			return (void *)1;
		__atomic_store_n(&s->handle, tmp, __ATOMIC_RELEASE);
		if (CancelMibChangeNotify2(h) != NO_ERROR)
			return (void *)1;
		/* Cancelled by itself (or about to be): either way it must end cleanly. */
		for (int i = 0; i < 5000 && !atomic_load(&s->done); i++)
			usleep(1000);
		if (atomic_load(&s->done) ? s->result != NO_ERROR
					  : CancelMibChangeNotify2(tmp) != NO_ERROR)
			return (void *)1;
		/* If it cancelled itself, nothing touches s after done; else cancel waited. */
		free(s);
	}
	return NULL;
}

static bool run_threads(void *(*fn)(void *), int n)
{
	pthread_t threads[THREADS];
	void *result;
	bool ok = true;

	for (long i = 0; i < n; i++)
		if (pthread_create(&threads[i], NULL, fn, (void *)i))
			return false;
	for (int i = 0; i < n; i++) {
		pthread_join(threads[i], &result);
		ok = ok && !result;
	}
	return ok;
}

/* A real process named miredo binds a UDP port, reports it, closes it and exits. */
static USHORT teredo_client_cycle(void)
{
	int pipefd[2];
	USHORT port = 0;
	pid_t pid;

	if (pipe(pipefd))
		return 0;
	pid = fork();
	if (pid == 0) {
		struct sockaddr_in a = { .sin_family = AF_INET };
		socklen_t len = sizeof(a);
		int fd;

		prctl(PR_SET_NAME, "miredo");
		fd = socket(AF_INET, SOCK_DGRAM, 0);
		if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
		    getsockname(fd, (struct sockaddr *)&a, &len))
			_exit(1);
		port = ntohs(a.sin_port);
		if (write(pipefd[1], &port, sizeof(port)) != sizeof(port))
			_exit(1);
		_exit(0);
	}
	close(pipefd[1]);
	if (pid < 0 || read(pipefd[0], &port, sizeof(port)) != sizeof(port))
		port = 0;
	close(pipefd[0]);
	if (pid > 0)
		waitpid(pid, NULL, 0);
	return port;
}

static bool all_called(int calls)
{
	for (int i = 0; i < REGISTRATIONS; i++)
		if (atomic_load(&tallies[i].calls) < calls)
			return false;
	return true;
}

int main(void)
{
	pthread_t churner[2];
	int wrong = 0, overlaps = 0, short_counts = 0;
	bool churn_ok = true;

	if (geteuid() != 0) {
		fprintf(stderr, "subscription-stress: needs root (CAP_BPF, CAP_PERFMON, "
				"CAP_NET_ADMIN)\n");
		return 77;
	}
	check(run_threads(register_some, THREADS), "320 registrations from 8 threads");
	for (int i = 0; i < 2; i++)
		pthread_create(&churner[i], NULL, churn, NULL);
	for (int c = 0; c < CYCLES; c++) {
		/* The port is known only after bind; calls check it once they come. */
		USHORT p = teredo_client_cycle();

		ports[c] = p;
		for (int i = 0; i < 1000 && !all_called(1 + 2 * (c + 1)); i++)
			usleep(5000);
	}
	atomic_store(&churn_stop, true);
	for (int i = 0; i < 2; i++) {
		void *result;

		pthread_join(churner[i], &result);
		churn_ok = churn_ok && !result;
	}
	check(churn_ok, "register/cancel churn, with self-cancelling callbacks");
	for (int i = 0; i < REGISTRATIONS; i++) {
		short_counts += atomic_load(&tallies[i].calls) != 1 + 2 * CYCLES;
		wrong += atomic_load(&tallies[i].wrong);
		for (int c = 0; c < CYCLES; c++)
			wrong += atomic_load(&tallies[i].added[c]) != ports[c];
		overlaps += atomic_load(&tallies[i].overlaps);
	}
	check(short_counts == 0, "every registration got every event exactly once");
	check(wrong == 0, "every call in the kernel's order with the right port");
	check(overlaps == 0, "calls for one registration never overlap");
	check(run_threads(cancel_some, THREADS), "320 cancels from 8 threads");
	if (short_counts || wrong)
		fprintf(stderr, "%d registrations with a wrong count, %d calls out of order\n",
			short_counts, wrong);
	printf("\n%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
