// SPDX-License-Identifier: MIT
/*
 * Job 1b (alone): bind() to callback latency of the in-process path with
 * nothing else attached, against the floor measured the same way. In the
 * latency job every consumer's programs run on every bind, before or after
 * one another; here one consumer runs at a time, in blocks whose order is
 * shuffled, so that each is measured independently and the load of the
 * machine is shared alike. A floor doing the observer's kernel work
 * (FLOOR_HEAVY) splits what the kernel side adds from what userspace adds.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

#define N_ALONE 6
#define BLOCKS 6

static struct consumer alone_consumers[N_ALONE] = {
	{ .label = "floor: bare BPF, thread in epoll",
	  .kind = CONSUMER_FLOOR,
	  .comm = "tbench-a-floor",
	  .floor_progs = FLOOR_POST_BIND },
	{ .label = "floor + observer's kernel work",
	  .kind = CONSUMER_FLOOR,
	  .comm = "tbench-a-heavy",
	  .floor_progs = FLOOR_HEAVY },
	{ .label = "floor + that work, no map update",
	  .kind = CONSUMER_FLOOR,
	  .comm = "tbench-a-noupd",
	  .floor_progs = FLOOR_HEAVY | FLOOR_NO_UPDATE },
	{ .label = "callback: teredo_subscribe", .kind = CONSUMER_CALLBACK, .comm = "tbench-a-cb" },
	{ .label = "Windows: NotifyTeredoPortChange",
	  .kind = CONSUMER_WINDOWS,
	  .comm = "tbench-a-win" },
	{ .label = "service: callback via serve",
	  .kind = CONSUMER_SERVICE,
	  .comm = "tbench-a-svc" },
};

/* One block: start the consumer, time fresh clients, stop it. */
static int run_block(const struct bench_env *env, struct consumer *c, struct series *s,
		     unsigned int clients)
{
	int err;

	c->report_fd = -1;
	err = consumer_start(c, env);
	if (err)
		return err;
	err = run_rounds(env, &c, s, 1, clients);
	consumer_stop(c);
	return err;
}

static void judge_alone(const struct series *s, struct targets *t)
{
	struct summary f, x;
	char what[96];

	series_summary(&s[0], &f);
	for (size_t i = 3; i <= 4; i++) {
		series_summary(&s[i], &x);
		snprintf(what, sizeof(what), "1b. alone, p50 <= 1.15x floor: %s",
			 alone_consumers[i].label);
		target_add(t, x.p50 <= 1.15 * f.p50, what, "%.1f us = %.2fx (floor %.1f us)", x.p50,
			   x.p50 / f.p50, f.p50);
	}
}

int job_alone(const struct bench_env *env, struct targets *t)
{
	struct consumer *cs[N_ALONE];
	struct series s[N_ALONE] = { 0 };
	unsigned int per_block = reps(env, 900) / BLOCKS, seed = env->seed ^ 0x5a5a5a5au;
	uint64_t t0 = now_ns();
	size_t order[N_ALONE];
	int err = 0;

	for (size_t i = 0; i < N_ALONE; i++)
		cs[i] = &alone_consumers[i];
	printf("\n== 1b. Latency, each consumer alone: %u blocks of %u fresh clients each, "
	       "block order shuffled ==\n",
	       BLOCKS, per_block);
	for (unsigned int b = 0; b < BLOCKS && !err; b++) {
		shuffle_order(order, N_ALONE, &seed);
		for (size_t k = 0; k < N_ALONE && !err; k++)
			err = run_block(env, cs[order[k]], &s[order[k]], per_block);
	}
	if (!err) {
		print_latency_table(cs, s, N_ALONE, 0);
		printf("(%.1f s; p50/flr range = the ratio in each tenth of the run)\n",
		       (double)(now_ns() - t0) / 1e9);
		print_split_table(cs, s, N_ALONE);
		judge_alone(s, t);
	} else {
		fprintf(stderr, "tbench: alone job failed: %s\n", strerror(-err));
	}
	for (size_t i = 0; i < N_ALONE; i++)
		series_free(&s[i]);
	return err;
}
