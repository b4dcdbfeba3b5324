// SPDX-License-Identifier: MIT
/*
 * Job 7b: what a Linux user would otherwise do: poll. The two pollers of
 * poller.c, each every 100 ms and every 1 s, at the same load as the
 * observer (one Teredo client restart at a time), with `teredo-observer
 * --json` watching the same binds beside them.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "teredo_observer.h"

struct phase {
	unsigned int interval_ms, binds;
};

static void print_phase(struct consumer *const *cs, const struct series *s,
			const struct proc_usage *u0, const struct proc_usage *u1, double wall_s)
{
	long hz = sysconf(_SC_CLK_TCK);

	for (size_t i = 0; i < 3; i++) {
		struct summary x;
		double cpu_ms = (double)(u1[i].ticks + u1[i].child_ticks - u0[i].ticks -
					 u0[i].child_ticks) *
				1000.0 / (double)hz;

		char interval[16] = "events";

		if (cs[i]->interval_ms)
			snprintf(interval, sizeof(interval), "%u", cs[i]->interval_ms);
		summarize(s[i].us, s[i].n, &x);
		printf("%-30s %6s %5zu %10.3f %10.3f %10.3f %9.0f %8.2f%% %5u\n", cs[i]->label,
		       interval, x.n, x.p50 / 1000, x.p99 / 1000, x.max / 1000, cpu_ms,
		       cpu_ms / 10.0 / wall_s, s[i].lost);
	}
}

static int run_phase(const struct bench_env *env, const struct phase *ph, unsigned int *seed)
{
	struct consumer pc[3] = {
		{ .label = "poll /proc/net/udp",
		  .kind = CONSUMER_POLL_PROC,
		  .comm = "tbench-poll" },
		{ .label = "poll ss -uanp", .kind = CONSUMER_POLL_SS, .comm = "tbench-poll" },
		{ .label = "teredo-observer --json", .kind = CONSUMER_JSON, .comm = "tbench-poll" },
	};
	struct consumer *cs[3] = { &pc[0], &pc[1], &pc[2] };
	struct series s[3] = { 0 }, *out[3] = { &s[0], &s[1], &s[2] };
	struct proc_usage u0[3], u1[3];
	uint64_t t0;
	int err = 0;

	for (int i = 0; i < 2; i++)
		pc[i].interval_ms = ph->interval_ms;
	for (int i = 0; i < 3 && !err; i++) {
		pc[i].report_fd = -1;
		err = consumer_start(cs[i], env);
	}
	for (int i = 0; i < 3 && !err; i++)
		err = proc_usage_read(cs[i]->observer_pid, &u0[i]);
	t0 = now_ns();
	for (unsigned int b = 0; b < ph->binds && !err; b++) {
		/* A bind at a random moment of the polling period, not just after a pass. */
		sleep_ms((unsigned int)rand_r(seed) % ph->interval_ms);
		err = measure_client(env, "tbench-poll", cs, out, 3);
	}
	for (int i = 0; i < 3 && !err; i++)
		err = proc_usage_read(cs[i]->observer_pid, &u1[i]);
	if (!err)
		print_phase(cs, s, u0, u1, (double)(now_ns() - t0) / 1e9);
	for (int i = 0; i < 3; i++) {
		consumer_stop(cs[i]);
		series_free(&s[i]);
	}
	return err;
}

int job_polling(const struct bench_env *env, struct targets *t)
{
	const struct phase phases[] = {
		{ .interval_ms = 100, .binds = env->quick ? 10 : 60 },
		{ .interval_ms = 1000, .binds = env->quick ? 3 : 20 },
	};
	unsigned int seed = env->seed;
	int err = 0;

	(void)t;
	printf("\n== 7b. Polling instead, at the same load (one client restart at a time, at a "
	       "random moment) ==\n");
	printf("%-30s %6s %5s %10s %10s %10s %9s %9s %5s\n", "consumer", "every", "n", "p50 ms",
	       "p99 ms", "max ms", "CPU ms", "CPU", "lost");
	for (size_t i = 0; i < sizeof(phases) / sizeof(phases[0]) && !err; i++)
		err = run_phase(env, &phases[i], &seed);
	if (err)
		fprintf(stderr, "tbench: polling job failed: %s\n", strerror(-err));
	else
		printf("(CPU: utime+stime of the poller and the ss it ran, or of the command, over "
		       "the phase; %% of one core)\n");
	return err;
}
