// SPDX-License-Identifier: MIT
/*
 * Job 3: what an attached observer costs while nothing happens. The target
 * is none at all: no timer, no polling, no wake-up. Measured on each running
 * consumer's observing process (the command itself for --json), every thread
 * counted: utime+stime from /proc/PID/stat, time on CPU from schedstat (finer
 * than the 10 ms ticks), and context switches.
 */
#define _GNU_SOURCE
#include <stdio.h>

#include "bench.h"

int idle_measure(struct consumer *const *cs, size_t n, unsigned int seconds, const char *title,
		 struct targets *t)
{
	struct proc_usage before[MAX_CONSUMERS], after[MAX_CONSUMERS];
	bool all_quiet = true;

	if (n > MAX_CONSUMERS)
		return -1;
	for (size_t i = 0; i < n; i++)
		if (proc_usage_read(cs[i]->observer_pid, &before[i]))
			return -1;
	sleep_ms(seconds * 1000);
	for (size_t i = 0; i < n; i++)
		if (proc_usage_read(cs[i]->observer_pid, &after[i]))
			return -1;
	printf("\n== %s: observers attached, nothing happening ==\n", title);
	printf("%-34s %8s %12s %12s %14s\n", "consumer (observing process)", "pid", "CPU ticks",
	       "on-CPU us", "ctx switches");
	for (size_t i = 0; i < n; i++) {
		uint64_t ticks = after[i].ticks - before[i].ticks;
		uint64_t ctx = after[i].ctxsw - before[i].ctxsw;

		printf("%-34s %8d %12llu %12.1f %14llu\n", cs[i]->label, (int)cs[i]->observer_pid,
		       (unsigned long long)ticks,
		       (double)(after[i].run_ns - before[i].run_ns) / 1000.0,
		       (unsigned long long)ctx);
		all_quiet = all_quiet && !ticks && !ctx;
	}
	if (t)
		target_add(t, all_quiet, "3. idle: no CPU time, no wake-ups (all consumers)",
			   "%s over %u s", all_quiet ? "0 ticks, 0 switches" : "see table",
			   seconds);
	return 0;
}
