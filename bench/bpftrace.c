// SPDX-License-Identifier: MIT
/*
 * Job 7c: a bpftrace one-liner on the same events, as a Linux user would
 * write it: the bind syscall's tracepoints, the port read through the fd at
 * exit (the port asked for is 0: the kernel picks it). kprobes and fentry are
 * not available on this kernel; tracepoints are. Its start-up, memory, idle
 * wake-ups and latency, beside the command's and the floor's, in one run.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "bench.h"

#define START_TIMEOUT_MS 60000

/* Read lines until "ready"; the time is that of the read that brought it. */
static int until_ready(int fd, uint64_t *t)
{
	char buf[8192];
	size_t len = 0;

	while (len < sizeof(buf) - 1) {
		int ready = wait_readable(fd, START_TIMEOUT_MS);
		ssize_t n;

		if (ready <= 0)
			return ready ? ready : -ETIMEDOUT;
		n = read(fd, buf + len, sizeof(buf) - 1 - len);
		*t = now_ns();
		if (n <= 0)
			return n ? -errno : -EPIPE;
		len += (size_t)n;
		buf[len] = '\0';
		if (strstr(buf, "ready\n"))
			return 0;
	}
	return -E2BIG;
}

static int start_once(const struct bench_env *env, uint64_t *t_exec, double *ms, long *hwm)
{
	char script[1024];
	char *argv[] = { (char *)env->bpftrace, "-B", "line", "-e", script, NULL };
	struct spawn_io io = { .in = -1, .fd3 = -1 };
	int pipefd[2], err;
	uint64_t t_ready;
	pid_t pid;

	bpftrace_script("tbench-bt", script, sizeof(script));
	if (pipe2(pipefd, O_CLOEXEC))
		return -errno;
	io.out = io.err = pipefd[1];
	pid = spawn(argv, &io, t_exec);
	close(pipefd[1]);
	if (pid < 0) {
		close(pipefd[0]);
		return -errno;
	}
	err = until_ready(pipefd[0], &t_ready);
	if (!err) {
		*ms = (double)(t_ready - *t_exec) / 1e6;
		*hwm = proc_status_kb(pid, "VmHWM");
	}
	proc_stop(pid, 5000);
	close(pipefd[0]);
	return err;
}

static int startups(const struct bench_env *env)
{
	unsigned int runs = env->quick ? 2 : 5;
	double ms[8];
	long hwm[8];
	struct summary s, m;
	double hwm_d[8];
	uint64_t *t_exec;
	int err = 0;

	t_exec = mmap(NULL, sizeof(*t_exec), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
		      0);
	if (t_exec == MAP_FAILED)
		return -errno;
	for (unsigned int i = 0; i < runs && !err; i++) {
		err = start_once(env, t_exec, &ms[i], &hwm[i]);
		hwm_d[i] = (double)hwm[i];
	}
	munmap(t_exec, sizeof(*t_exec));
	if (err)
		return err;
	summarize(ms, runs, &s);
	summarize(hwm_d, runs, &m);
	printf("bpftrace start-up (exec -> BEGIN's line read), %u runs: p50 %.0f ms, min %.0f, "
	       "max %.0f ms; VmHWM p50 %.0f KiB\n",
	       runs, s.p50, s.min, s.max, m.p50);
	return 0;
}

static int latency(const struct bench_env *env)
{
	struct consumer pc[3] = {
		{ .label = "floor: bare BPF, thread in epoll",
		  .kind = CONSUMER_FLOOR,
		  .comm = "tbench-floor",
		  .floor_progs = FLOOR_POST_BIND },
		{ .label = "command: --json line from pipe",
		  .kind = CONSUMER_JSON,
		  .comm = "tbench-json" },
		{ .label = "bpftrace one-liner, line from pipe",
		  .kind = CONSUMER_BPFTRACE,
		  .comm = "tbench-bt" },
	};
	struct consumer *cs[3] = { &pc[0], &pc[1], &pc[2] };
	struct series s[3] = { 0 };
	unsigned int rounds = reps(env, 300);
	int err = 0, started = 0;

	for (; started < 3 && !err; started++) {
		pc[started].report_fd = -1;
		err = consumer_start(cs[started], env);
	}
	if (!err)
		err = idle_measure(cs, 3, 5, "7c. Idle, 5 s", NULL);
	if (!err) {
		printf("latency, %u fresh clients per consumer, interleaved:\n", rounds);
		err = run_rounds(env, cs, s, 3, rounds);
	}
	if (!err) {
		print_latency_table(cs, s, 3, 0);
		printf("bpftrace VmHWM after the run: %ld KiB; teredo-observer's: %ld KiB\n",
		       proc_status_kb(pc[2].observer_pid, "VmHWM"),
		       proc_status_kb(pc[1].observer_pid, "VmHWM"));
	}
	for (int i = 0; i < 3; i++) {
		if (i < started)
			consumer_stop(cs[i]);
		series_free(&s[i]);
	}
	return err;
}

int job_bpftrace(const struct bench_env *env, struct targets *t)
{
	int err;

	(void)t;
	printf("\n== 7c. A bpftrace one-liner instead (%s) ==\n", env->bpftrace);
	err = startups(env);
	if (!err)
		err = latency(env);
	if (err)
		fprintf(stderr, "tbench: bpftrace job failed: %s\n", strerror(-err));
	return err;
}
