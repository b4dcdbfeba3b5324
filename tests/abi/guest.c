// SPDX-License-Identifier: MIT
/*
 * The library as a guest in someone else's program (issue 17 item 5), built
 * against include/ and the shared library alone, as a host program is:
 *   - libbpf's print callback: the host's own stays in force for the host's
 *     libbpf calls, before and after the library opened its observers;
 *   - the library leaves the caller's signal dispositions, signal mask,
 *     umask and scheduling (policy, nice, slice) as they were;
 *   - its threads block every signal, so the host's go to the host's threads;
 *   - its fds are close-on-exec and all closed again once freed.
 * Prints "ok: ..." or "FAIL: ..." per check (SKIP without root: the observer
 * then cannot load), and "N passed, M failed"; exits 1 on a failure.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "teredo_observer.h"

static int passed, failed;

static void check(bool ok, const char *fmt, ...)
{
	va_list ap;

	printf("%s: ", ok ? "ok" : "FAIL");
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	ok ? passed++ : failed++;
}

/* --- libbpf's print callback ------------------------------------------- */

static int host_messages;

static int host_print(enum libbpf_print_level level, const char *fmt, va_list args)
{
	(void)level;
	(void)fmt;
	(void)args;
	__atomic_add_fetch(&host_messages, 1, __ATOMIC_RELAXED);
	return 0;
}

/* A libbpf call of the host's own that makes libbpf say something. */
static int host_libbpf_messages(void)
{
	int before = __atomic_load_n(&host_messages, __ATOMIC_RELAXED);
	struct bpf_object *obj = bpf_object__open_file("/nonexistent/abi-guest.bpf.o", NULL);

	bpf_object__close(obj);
	return __atomic_load_n(&host_messages, __ATOMIC_RELAXED) - before;
}

/* --- what the process looks like --------------------------------------- */

struct sched_attr_v1 {
	uint32_t size, sched_policy;
	uint64_t sched_flags;
	int32_t sched_nice;
	uint32_t sched_priority;
	uint64_t sched_runtime, sched_deadline, sched_period;
};

struct process_state {
	struct sigaction actions[NSIG];
	sigset_t mask;
	mode_t umask;
	struct sched_attr_v1 sched;
	bool fds[1024];
};

static void read_fds(bool fds[1024])
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	memset(fds, 0, 1024 * sizeof(bool));
	while (d && (e = readdir(d))) {
		int fd = atoi(e->d_name);

		if (e->d_name[0] != '.' && fd != dirfd(d) && fd < 1024)
			fds[fd] = true;
	}
	if (d)
		closedir(d);
}

static void read_state(struct process_state *s)
{
	memset(s, 0, sizeof(*s));
	for (int sig = 1; sig < NSIG; sig++)
		sigaction(sig, NULL, &s->actions[sig]);
	pthread_sigmask(SIG_SETMASK, NULL, &s->mask);
	s->umask = umask(022);
	umask(s->umask);
	syscall(SYS_sched_getattr, 0, &s->sched, sizeof(s->sched), 0);
	read_fds(s->fds);
}

static bool same_action(const struct sigaction *a, const struct sigaction *b)
{
	return a->sa_handler == b->sa_handler && a->sa_flags == b->sa_flags;
}

static void compare_state(const struct process_state *a, const struct process_state *b,
			  const char *when)
{
	int changed_sig = 0;

	for (int sig = 1; sig < NSIG && !changed_sig; sig++)
		if (!same_action(&a->actions[sig], &b->actions[sig]))
			changed_sig = sig;
	check(!changed_sig, "%s: signal dispositions unchanged%s%s", when,
	      changed_sig ? ": changed " : "", changed_sig ? strsignal(changed_sig) : "");
	check(!memcmp(&a->mask, &b->mask, sizeof(a->mask)),
	      "%s: the caller's signal mask unchanged", when);
	check(a->umask == b->umask, "%s: umask unchanged (%03o, now %03o)", when, a->umask,
	      b->umask);
	check(a->sched.sched_policy == b->sched.sched_policy &&
		      a->sched.sched_nice == b->sched.sched_nice &&
		      a->sched.sched_runtime == b->sched.sched_runtime,
	      "%s: the caller's scheduling unchanged (policy %u nice %d slice %llu ns, now %u %d "
	      "%llu)",
	      when, a->sched.sched_policy, a->sched.sched_nice,
	      (unsigned long long)a->sched.sched_runtime, b->sched.sched_policy,
	      b->sched.sched_nice, (unsigned long long)b->sched.sched_runtime);
}

/* Every fd opened since before is close-on-exec; how many there are. */
static int new_fds_cloexec(const struct process_state *before, int *not_cloexec)
{
	bool now[1024];
	int n = 0;

	read_fds(now);
	*not_cloexec = -1;
	for (int fd = 0; fd < 1024; fd++) {
		if (!now[fd] || before->fds[fd])
			continue;
		n++;
		if (!(fcntl(fd, F_GETFD) & FD_CLOEXEC))
			*not_cloexec = fd;
	}
	return n;
}

static bool same_fds(const struct process_state *before)
{
	bool now[1024];

	read_fds(now);
	return !memcmp(now, before->fds, sizeof(now));
}

/* Signal n is bit n - 1 of /proc's masks. */
#define SIGBIT(n) (1ULL << ((n)-1))
/*
 * Every signal blocked, as /proc shows it: SIGKILL and SIGSTOP cannot be,
 * and glibc keeps its own two (SIGCANCEL 32, SIGSETXID 33) out of any mask.
 */
static bool all_blocked(unsigned long long blocked)
{
	return (blocked | SIGBIT(SIGKILL) | SIGBIT(SIGSTOP) | SIGBIT(32) | SIGBIT(33)) == ~0ULL;
}

/* Threads other than this one, each with every signal blocked? Their count. */
static int library_threads(int *unblocked_tid)
{
	DIR *d = opendir("/proc/self/task");
	struct dirent *e;
	int n = 0;

	*unblocked_tid = 0;
	while (d && (e = readdir(d))) {
		char path[64], line[256];
		FILE *f;
		int tid = atoi(e->d_name);

		if (e->d_name[0] == '.' || tid == gettid())
			continue;
		n++;
		snprintf(path, sizeof(path), "/proc/self/task/%d/status", tid);
		f = fopen(path, "re");
		while (f && fgets(line, sizeof(line), f))
			if (!strncmp(line, "SigBlk:", 7) &&
			    !all_blocked(strtoull(line + 7, NULL, 16)))
				*unblocked_tid = tid;
		if (f)
			fclose(f);
	}
	if (d)
		closedir(d);
	return n;
}

static void on_port(void *ctx, const struct teredo_port_event *ev)
{
	(void)ev;
	__atomic_store_n((int *)ctx, 1, __ATOMIC_RELEASE);
}

static bool wait_flag(int *flag)
{
	for (int i = 0; i < 1000 && !__atomic_load_n(flag, __ATOMIC_ACQUIRE); i++)
		nanosleep(&(struct timespec){ .tv_nsec = 10000000 }, NULL);
	return __atomic_load_n(flag, __ATOMIC_ACQUIRE);
}

static void host_handler(int sig)
{
	(void)sig;
}

int main(void)
{
	struct process_state before, after;
	struct teredo_observer *obs = NULL;
	struct teredo_subscription *sub = NULL;
	int initial = 0, err, n, fd, tid;

	/* A host with its own habits: a print callback, handlers, a mask, a umask. */
	libbpf_set_print(host_print);
	signal(SIGUSR1, host_handler);
	signal(SIGPIPE, SIG_IGN);
	umask(027);
	check(host_libbpf_messages() > 0, "the host's libbpf messages reach its callback");
	read_state(&before);

	n = __atomic_load_n(&host_messages, __ATOMIC_RELAXED);
	err = teredo_observer_new(NULL, &obs);
	/* libbpf says much while loading (debug lines): the library keeps that to itself. */
	check(__atomic_load_n(&host_messages, __ATOMIC_RELAXED) == n,
	      "what libbpf says while the library loads is not passed to the host's callback");
	check(host_libbpf_messages() > 0,
	      "after teredo_observer_new: the host's libbpf messages still reach its callback");
	if (err) {
		printf("SKIP: the observer cannot load here (%s): the rest needs root and BPF\n",
		       teredo_observer_last_error());
		if (getenv("CI") && !strcmp(getenv("CI"), "true"))
			check(false, "CI=true: no check may skip");
		printf("%d passed, %d failed\n", passed, failed);
		return failed ? 1 : 0;
	}
	n = new_fds_cloexec(&before, &fd);
	check(n > 0 && fd < 0, "an observer's %d fds are all close-on-exec%s", n,
	      fd >= 0 ? " (one is not)" : "");
	teredo_observer_free(obs);
	check(same_fds(&before), "teredo_observer_free closes every fd it opened");

	err = teredo_subscribe(NULL, on_port, &initial, true, &sub);
	check(!err, "teredo_subscribe: %s", err ? teredo_observer_last_error() : "0");
	if (!err) {
		check(wait_flag(&initial), "the subscription's initial call came");
		n = library_threads(&tid);
		/* The subscription's calling thread, which also reads the events. */
		check(n == 1 && !tid,
		      "one library thread while subscribed (%d), every signal blocked%s", n,
		      tid ? " (it is not)" : "");
		n = new_fds_cloexec(&before, &fd);
		check(fd < 0, "a subscription's %d fds are all close-on-exec", n);
		teredo_unsubscribe(sub);
	}
	check(host_libbpf_messages() > 0,
	      "after teredo_subscribe: the host's libbpf messages still reach its callback");
	read_state(&after);
	compare_state(&before, &after, "after the observer and the subscription");
	printf("%d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
