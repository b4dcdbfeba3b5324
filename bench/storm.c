// SPDX-License-Identifier: MIT
/*
 * Job 4: the storm. One unrelated process per core binds and closes UDP
 * sockets as fast as it can while the Teredo client restarts again and again:
 * every restart's add and delete must come, in order, for every consumer, and
 * the p99 latency stay within 2x of the quiet run. The in-kernel filter is
 * what is tested: none of the storm's binds may reach userspace.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <dirent.h>
#include <linux/sched.h>
#include <linux/sched/types.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "bench.h"

#define STORMERS 2
#define STORM_PAIRS 5 /* storm and quiet blocks, alternating */
#define STORM_MAX_SECONDS 300

struct storm_shared {
	volatile uint64_t ops[STORMERS];
	volatile int stop;
};

/*
 * How the consumers' threads are scheduled in a pass: as started, or asking
 * for a short slice (sched_attr.sched_runtime: since Linux 6.12 a task with
 * a shorter slice may preempt on wake-up; no privilege needed).
 */
enum tuning { TUNE_NONE, TUNE_SLICE };

static const char *const tuning_name[] = {
	"as started (nice 0, default slice)",
	"asking a 0.1 ms slice (sched_setattr)",
};

#define SHORT_SLICE_NS 100000

static int tune_thread(pid_t tid, enum tuning how)
{
	struct sched_attr attr = { .size = sizeof(attr), .sched_policy = SCHED_NORMAL };

	attr.sched_runtime = how == TUNE_SLICE ? SHORT_SLICE_NS : 0;
	return syscall(SYS_sched_setattr, tid, &attr, 0) ? -errno : 0;
}

static int tune_threads(pid_t pid, enum tuning how)
{
	struct dirent *d;
	char path[64];
	int err = 0;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	dir = opendir(path);
	if (!dir)
		return -errno;
	while ((d = readdir(dir)) && !err)
		if (d->d_name[0] != '.')
			err = tune_thread(atoi(d->d_name), how);
	closedir(dir);
	return err;
}

/* Every thread of pid, and of its children (the command under a reader). */
static int tune_tree(pid_t pid, enum tuning how, int depth)
{
	char path[64], kids[512], *save, *p;
	int err = tune_threads(pid, how), fd;
	ssize_t n;

	if (err || depth > 2)
		return err;
	snprintf(path, sizeof(path), "/proc/%d/task/%d/children", (int)pid, (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, kids, sizeof(kids) - 1);
	close(fd);
	kids[n > 0 ? n : 0] = '\0';
	for (p = strtok_r(kids, " ", &save); p && !err; p = strtok_r(NULL, " ", &save))
		err = tune_tree(atoi(p), how, depth + 1);
	return err;
}

static int tune_all(struct consumer *const *cs, size_t n, enum tuning how)
{
	int err = 0;

	for (size_t i = 0; i < n && !err; i++)
		err = tune_tree(cs[i]->pid, how, 0);
	if (err)
		fprintf(stderr, "tbench: cannot set scheduling (%s): %s\n", tuning_name[how],
			strerror(-err));
	return err;
}

static int storm_loop(struct storm_shared *sh, int idx)
{
	struct sockaddr_in addr = { .sin_family = AF_INET };
	uint64_t deadline = now_ns() + STORM_MAX_SECONDS * 1000000000ull;

	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	set_comm("tbench-storm");
	while (!sh->stop && now_ns() < deadline) {
		for (int i = 0; i < 256; i++) {
			int fd = socket(AF_INET, SOCK_DGRAM, 0);

			if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr))) {
				perror("tbench-storm");
				return 1;
			}
			close(fd);
		}
		sh->ops[idx] += 256;
	}
	return 0;
}

static int start_stormers(struct storm_shared *sh, pid_t *pids)
{
	for (int i = 0; i < STORMERS; i++) {
		pids[i] = fork_child();
		if (pids[i] < 0)
			return -errno;
		if (pids[i] == 0)
			_exit(storm_loop(sh, i));
	}
	return 0;
}

static uint64_t storm_ops(const struct storm_shared *sh)
{
	uint64_t sum = 0;

	for (int i = 0; i < STORMERS; i++)
		sum += sh->ops[i];
	return sum;
}

static const char *pass_mark(enum tuning how)
{
	return how == TUNE_NONE ? "." : how == TUNE_SLICE ? "'" : "''";
}

static bool judge(struct consumer *const *cs, const struct series *quiet,
		  const struct series *storm, size_t n, enum tuning how, struct targets *t)
{
	unsigned int missed = 0;
	bool all_met = true;
	char what[96];

	for (size_t i = 0; i < n; i++)
		missed += storm[i].lost + storm[i].misordered;
	snprintf(what, sizeof(what), "4%s storm: no Teredo event lost or out of order",
		 pass_mark(how));
	target_add(t, missed == 0, what, "%u lost or out of order, %zu consumers", missed, n);
	for (size_t i = 0; i < n; i++) {
		struct summary q, s;

		series_summary(&quiet[i], &q);
		series_summary(&storm[i], &s);
		snprintf(what, sizeof(what), "4%s storm p99 <= 2x quiet: %s", pass_mark(how),
			 cs[i]->label);
		target_add(t, s.p99 <= 2 * q.p99, what, "%.1f us = %.2fx quiet %.1f us", s.p99,
			   q.p99 > 0 ? s.p99 / q.p99 : 0, q.p99);
		all_met = all_met && s.p99 <= 2 * q.p99;
	}
	return all_met && !missed;
}

static void print_storm(struct consumer *const *cs, const struct series *quiet,
			const struct series *storm, size_t n, double rate, double seconds)
{
	printf("storm: %d unrelated processes, %.0f socket+bind+close per second in all, "
	       "%.1f s of storm\n",
	       STORMERS, rate, seconds);
	print_latency_table(cs, storm, n, 0);
	print_split_table(cs, storm, n);
	printf("%-34s %10s %10s %10s %10s %10s\n", "storm against the quiet blocks", "quiet p50",
	       "storm p50", "quiet p99", "storm p99", "p99 ratio");
	for (size_t i = 0; i < n; i++) {
		struct summary q, s;

		series_summary(&quiet[i], &q);
		series_summary(&storm[i], &s);
		printf("%-34s %10.1f %10.1f %10.1f %10.1f %10.2f\n", cs[i]->label, q.p50, s.p50,
		       q.p99, s.p99, q.p99 > 0 ? s.p99 / q.p99 : 0);
	}
}

struct storm_state {
	struct storm_shared *sh;
	pid_t pids[STORMERS];
	uint64_t ops, ns; /* binds done and time spent in storm blocks */
};

/* One block of rounds, with the storm raging or not. */
static int storm_block(const struct bench_env *env, struct consumer *const *cs, struct series *out,
		       size_t n, unsigned int rounds, bool storm, struct storm_state *st)
{
	uint64_t t0 = 0, ops0 = 0;
	int err = 0;

	if (storm) {
		st->sh->stop = 0;
		err = start_stormers(st->sh, st->pids);
		sleep_ms(100); /* let them get going */
		t0 = now_ns();
		ops0 = storm_ops(st->sh);
	}
	if (!err)
		err = run_rounds(env, cs, out, n, rounds);
	if (!storm)
		return err;
	st->ops += storm_ops(st->sh) - ops0;
	st->ns += now_ns() - t0;
	st->sh->stop = 1;
	for (int i = 0; i < STORMERS; i++)
		proc_stop(st->pids[i], 3000);
	return err;
}

/*
 * Storm and quiet blocks alternate (which comes first in each pair drawn at
 * random): the quiet figure is taken in the same minutes as the storm's, so
 * that others' tests on this machine weigh on both alike.
 */
static int storm_pass(const struct bench_env *env, struct consumer *const *cs, size_t n,
		      enum tuning how, unsigned int rounds, struct targets *t, bool *all_met)
{
	struct series storm[MAX_CONSUMERS] = { 0 }, quiet[MAX_CONSUMERS] = { 0 };
	struct storm_state st = { 0 };
	unsigned int seed = env->seed + how;
	int err;

	st.sh = mmap(NULL, sizeof(*st.sh), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
		     0);
	if (st.sh == MAP_FAILED)
		return -errno;
	printf("\n== 4%s Storm: %u client restarts per consumer while %d processes bind+close "
	       "flat out,\n   and as many in quiet blocks between; consumers %s ==\n",
	       pass_mark(how), rounds, STORMERS, tuning_name[how]);
	err = tune_all(cs, n, how);
	for (int pair = 0; pair < STORM_PAIRS && !err; pair++) {
		bool storm_first = rand_r(&seed) & 1;

		for (int k = 0; k < 2 && !err; k++) {
			bool on = (k == 0) == storm_first;

			err = storm_block(env, cs, on ? storm : quiet, n, rounds / STORM_PAIRS, on,
					  &st);
		}
	}
	if (!err) {
		print_storm(cs, quiet, storm, n, (double)st.ops / ((double)st.ns / 1e9),
			    (double)st.ns / 1e9);
		*all_met = judge(cs, quiet, storm, n, how, t);
	}
	if (how != TUNE_NONE && tune_all(cs, n, TUNE_NONE) && !err)
		err = -EPERM;
	for (size_t i = 0; i < n; i++) {
		series_free(&storm[i]);
		series_free(&quiet[i]);
	}
	munmap(st.sh, sizeof(*st.sh));
	return err;
}

int storm_run(const struct bench_env *env, struct consumer *const *cs, size_t n, struct targets *t)
{
	bool all_met = true;
	int err;

	if (n > MAX_CONSUMERS)
		return -EINVAL;
	err = storm_pass(env, cs, n, TUNE_NONE, reps(env, 1000), t, &all_met);
	/* Missed: would the same code meet it, scheduled otherwise? */
	if (!err && !all_met)
		err = storm_pass(env, cs, n, TUNE_SLICE, reps(env, 500), t, &all_met);
	return err;
}
