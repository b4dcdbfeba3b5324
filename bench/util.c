// SPDX-License-Identifier: MIT
/*
 * Helpers of the benchmarks: clocks, percentiles, processes started and ended
 * by pid (never by name: others' tests run on this machine), bounded reads,
 * and what /proc says about a process.
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>

#include "bench.h"
#include "cgroup2.h"

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void sleep_ms(unsigned int ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

unsigned int reps(const struct bench_env *env, unsigned int full)
{
	unsigned int n = env->quick ? full / 10 : full;

	return n < 10 ? 10 : n;
}

bool job_wanted(const struct bench_env *env, const char *job)
{
	size_t len = strlen(job);
	const char *p;

	if (!env->only)
		return true;
	for (p = strstr(env->only, job); p; p = strstr(p + 1, job))
		if ((p == env->only || p[-1] == ',') && (p[len] == ',' || !p[len]))
			return true;
	return false;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Nearest rank: the smallest value with at least p of the sample at or below it. */
static double rank(const double *sorted, size_t n, double p)
{
	size_t k = (size_t)ceil(p * (double)n);

	return sorted[k ? k - 1 : 0];
}

void summarize(const double *v, size_t n, struct summary *s)
{
	double *sorted;

	memset(s, 0, sizeof(*s));
	s->n = n;
	if (!n)
		return;
	sorted = malloc(n * sizeof(*sorted));
	if (!sorted) {
		s->n = 0;
		return;
	}
	memcpy(sorted, v, n * sizeof(*sorted));
	qsort(sorted, n, sizeof(*sorted), cmp_double);
	s->min = sorted[0];
	s->p25 = rank(sorted, n, 0.25);
	s->p50 = rank(sorted, n, 0.50);
	s->p75 = rank(sorted, n, 0.75);
	s->p99 = rank(sorted, n, 0.99);
	s->max = sorted[n - 1];
	free(sorted);
}

double median_of(const double *v, size_t n)
{
	struct summary s;

	summarize(v, n, &s);
	return s.p50;
}

void target_add(struct targets *t, bool met, const char *what, const char *fmt, ...)
{
	struct target *x;
	va_list ap;

	if (t->n == MAX_TARGETS)
		return;
	x = &t->t[t->n++];
	x->met = met;
	snprintf(x->what, sizeof(x->what), "%s", what);
	va_start(ap, fmt);
	vsnprintf(x->measured, sizeof(x->measured), fmt, ap);
	va_end(ap);
}

/* ---- processes ---- */

#define MAX_TRACKED 512

static pid_t driver_pid;
static pid_t tracked[MAX_TRACKED];
static volatile sig_atomic_t n_tracked;

void proc_track(pid_t pid)
{
	if (getpid() != driver_pid || pid <= 0)
		return;
	for (int i = 0; i < n_tracked; i++)
		if (!tracked[i]) {
			tracked[i] = pid;
			return;
		}
	if (n_tracked < MAX_TRACKED) {
		tracked[n_tracked] = pid;
		n_tracked = n_tracked + 1;
	}
}

void proc_untrack(pid_t pid)
{
	for (int i = 0; i < n_tracked; i++)
		if (tracked[i] == pid)
			tracked[i] = 0;
}

/* Async-signal-safe: only kill() and waitpid() on our own children's pids. */
static void end_tracked(void)
{
	for (int i = 0; i < n_tracked; i++)
		if (tracked[i] > 0)
			kill(tracked[i], SIGKILL);
	for (int i = 0; i < n_tracked; i++)
		if (tracked[i] > 0) {
			waitpid(tracked[i], NULL, 0);
			tracked[i] = 0;
		}
}

static void end_tracked_at_exit(void)
{
	if (getpid() == driver_pid)
		end_tracked();
}

static void on_fatal_signal(int sig)
{
	static const char msg[] = "tbench: stopped by a signal (or the time limit); "
				  "ending every process it started\n";

	ssize_t n = write(STDERR_FILENO, msg, sizeof(msg) - 1);

	(void)n; /* nothing more to do if even that fails */
	end_tracked();
	_exit(128 + sig);
}

int procs_init_driver(unsigned int max_seconds)
{
	struct sigaction sa = { .sa_handler = on_fatal_signal };
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGALRM };

	driver_pid = getpid();
	sigemptyset(&sa.sa_mask);
	for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
		if (sigaction(sigs[i], &sa, NULL))
			return -errno;
	/* A consumer gone away must not kill us with SIGPIPE: the write says so. */
	signal(SIGPIPE, SIG_IGN);
	if (atexit(end_tracked_at_exit))
		return -ENOMEM;
	alarm(max_seconds);
	return 0;
}

pid_t fork_child(void)
{
	pid_t parent = getpid();
	pid_t pid = fork();

	if (pid != 0) {
		if (pid > 0)
			proc_track(pid);
		return pid;
	}
	/* Die with the parent, whatever way it goes. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
		_exit(127);
	signal(SIGINT, SIG_DFL);
	signal(SIGTERM, SIG_DFL);
	signal(SIGHUP, SIG_DFL);
	signal(SIGALRM, SIG_DFL);
	signal(SIGPIPE, SIG_DFL);
	alarm(0);
	n_tracked = 0;
	return 0;
}

int proc_wait(pid_t pid, int timeout_ms, int *status)
{
	int pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	int st = 0, ready;
	pid_t got;

	if (pidfd < 0)
		return -errno;
	ready = wait_readable(pidfd, timeout_ms);
	close(pidfd);
	if (ready <= 0)
		return ready ? ready : -ETIMEDOUT;
	do
		got = waitpid(pid, &st, 0);
	while (got < 0 && errno == EINTR);
	if (got < 0)
		return -errno;
	proc_untrack(pid);
	if (status)
		*status = st;
	return 0;
}

void proc_stop(pid_t pid, int timeout_ms)
{
	if (pid <= 0)
		return;
	kill(pid, SIGTERM);
	if (proc_wait(pid, timeout_ms, NULL) == 0)
		return;
	kill(pid, SIGKILL);
	if (proc_wait(pid, 5000, NULL))
		fprintf(stderr, "tbench: process %d did not end after SIGKILL\n", (int)pid);
}

/* In the child: put fd at target (or /dev/null there when fd < 0 and null_ok). */
static int place_fd(int fd, int target, bool null_ok)
{
	if (fd < 0) {
		if (!null_ok)
			return 0;
		fd = open("/dev/null", O_RDWR);
		if (fd < 0)
			return -1;
	}
	if (fd == target)
		return fcntl(fd, F_SETFD, 0);
	return dup2(fd, target) < 0 ? -1 : 0;
}

pid_t spawn(char *const argv[], const struct spawn_io *io, uint64_t *t_exec)
{
	pid_t pid = fork_child();

	if (pid != 0)
		return pid;
	if (place_fd(io->in, STDIN_FILENO, true) || place_fd(io->out, STDOUT_FILENO, true) ||
	    place_fd(io->err, STDERR_FILENO, false) || place_fd(io->fd3, 3, false))
		_exit(127);
	if (io->cgroup && join_cgroup(io->cgroup)) {
		fprintf(stderr, "tbench: cannot join cgroup %s: %s\n", io->cgroup, strerror(errno));
		_exit(127);
	}
	if (t_exec)
		*t_exec = now_ns();
	execv(argv[0], argv);
	fprintf(stderr, "tbench: cannot run %s: %s\n", argv[0], strerror(errno));
	_exit(127);
}

int set_comm(const char *comm)
{
	return prctl(PR_SET_NAME, comm, 0, 0, 0) ? -errno : 0;
}

int join_cgroup(const char *dir)
{
	char procs[PATH_MAX + 16];
	int fd, err = 0;

	snprintf(procs, sizeof(procs), "%s/cgroup.procs", dir);
	fd = open(procs, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || dprintf(fd, "0\n") < 0)
		err = -errno;
	if (fd >= 0)
		close(fd);
	return err;
}

void remove_miredo_cgroup(struct miredo_cgroup *mc)
{
	if (mc->pid > 0)
		proc_stop(mc->pid, 1000);
	mc->pid = 0;
	/* A reaped process leaves its cgroup a moment later. */
	for (int i = 0; i < 100 && rmdir(mc->dir) && errno == EBUSY; i++)
		sleep_ms(10);
	rmdir(mc->parent);
}

int make_miredo_cgroup(struct miredo_cgroup *mc, const char *tag)
{
	char root[PATH_MAX / 2];
	int ready[2], err;
	char byte;

	err = cgroup2_mount_point(root, sizeof(root));
	if (err)
		return err;
	snprintf(mc->path, sizeof(mc->path), "/tbench-%s-%d/miredo.service", tag, getpid());
	snprintf(mc->parent, sizeof(mc->parent), "%s/tbench-%s-%d", root, tag, getpid());
	snprintf(mc->dir, sizeof(mc->dir), "%s%s", root, mc->path);
	if ((mkdir(mc->parent, 0755) && errno != EEXIST) ||
	    (mkdir(mc->dir, 0755) && errno != EEXIST))
		return -errno;
	if (pipe2(ready, O_CLOEXEC))
		return -errno;
	mc->pid = fork_child();
	if (mc->pid == 0) {
		set_comm("tbench-client");
		if (join_cgroup(mc->dir) || write_full(ready[1], "x", 1))
			_exit(1);
		pause();
		_exit(0);
	}
	close(ready[1]);
	err = mc->pid < 0 ? -errno : read_full(ready[0], &byte, 1, 5000);
	close(ready[0]);
	if (err)
		remove_miredo_cgroup(mc);
	return err;
}

/* ---- file descriptors ---- */

int wait_readable(int fd, int timeout_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000ull;
	int n;

	for (;;) {
		uint64_t now = now_ns();
		int left = now >= deadline ? 0 : (int)((deadline - now + 999999) / 1000000);

		n = poll(&pfd, 1, left);
		if (n >= 0)
			return n;
		if (errno != EINTR)
			return -errno;
	}
}

int read_full(int fd, void *buf, size_t len, int timeout_ms)
{
	uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000ull;
	size_t got = 0;

	while (got < len) {
		uint64_t now = now_ns();
		int left = now >= deadline ? 0 : (int)((deadline - now) / 1000000);
		int ready = wait_readable(fd, left);
		ssize_t n;

		if (ready < 0)
			return ready;
		if (!ready)
			return -ETIMEDOUT;
		n = read(fd, (char *)buf + got, len - got);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EPIPE;
		got += (size_t)n;
	}
	return 0;
}

int write_full(int fd, const void *buf, size_t len)
{
	size_t done = 0;

	while (done < len) {
		ssize_t n = write(fd, (const char *)buf + done, len - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		done += (size_t)n;
	}
	return 0;
}

/* ---- /proc ---- */

static int read_file(const char *path, char *buf, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = '\0';
	return 0;
}

/* utime, stime, cutime, cstime: fields 14-17, counted after the ")" of comm. */
static int stat_ticks(pid_t pid, struct proc_usage *u)
{
	unsigned long long ut, st, cut, cst;
	char path[64], buf[1024], *p;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if (read_file(path, buf, sizeof(buf)))
		return -ESRCH;
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %llu %llu",
			 &ut, &st, &cut, &cst) != 4)
		return -EINVAL;
	u->ticks = ut + st;
	u->child_ticks = cut + cst;
	return 0;
}

static void add_thread_usage(pid_t pid, const char *tid, struct proc_usage *u)
{
	unsigned long long run = 0, v = 0, nv = 0;
	char path[96], buf[4096], *p;

	snprintf(path, sizeof(path), "/proc/%d/task/%s/schedstat", (int)pid, tid);
	if (!read_file(path, buf, sizeof(buf)) && sscanf(buf, "%llu", &run) == 1)
		u->run_ns += run;
	snprintf(path, sizeof(path), "/proc/%d/task/%s/status", (int)pid, tid);
	if (read_file(path, buf, sizeof(buf)))
		return;
	p = strstr(buf, "voluntary_ctxt_switches:");
	if (p)
		sscanf(p, "voluntary_ctxt_switches: %llu", &v);
	p = strstr(buf, "nonvoluntary_ctxt_switches:");
	if (p)
		sscanf(p, "nonvoluntary_ctxt_switches: %llu", &nv);
	u->ctxsw += v + nv;
}

int proc_usage_read(pid_t pid, struct proc_usage *u)
{
	char path[64];
	struct dirent *d;
	DIR *dir;
	int err;

	memset(u, 0, sizeof(*u));
	err = stat_ticks(pid, u);
	if (err)
		return err;
	/* /proc/PID/status counts the main thread only: add up every thread's. */
	snprintf(path, sizeof(path), "/proc/%d/task", (int)pid);
	dir = opendir(path);
	if (!dir)
		return -errno;
	while ((d = readdir(dir)))
		if (d->d_name[0] != '.')
			add_thread_usage(pid, d->d_name, u);
	closedir(dir);
	return 0;
}

long proc_status_kb(pid_t pid, const char *field)
{
	char path[64], buf[4096], key[32], *p;
	long kb;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	snprintf(key, sizeof(key), "\n%s:", field);
	if (read_file(path, buf, sizeof(buf)))
		return -1;
	p = strstr(buf, key);
	if (!p || sscanf(p + strlen(key), "%ld", &kb) != 1)
		return -1;
	return kb;
}

/* The name of map id from the kernel, for the detail line. */
static void map_name(unsigned int id, char *name, size_t len)
{
	struct bpf_map_info info = {};
	__u32 info_len = sizeof(info);
	int fd = bpf_map_get_fd_by_id(id);

	snprintf(name, len, "id%u", id);
	if (fd < 0)
		return;
	if (!bpf_obj_get_info_by_fd(fd, &info, &info_len) && info.name[0])
		snprintf(name, len, "%s", info.name);
	close(fd);
}

static void add_fdinfo(const char *text, struct bpf_memory *m)
{
	unsigned long long memlock = 0;
	unsigned int id = 0;
	const char *p = strstr(text, "memlock:");
	char name[32];
	size_t used;

	if (!p || sscanf(p, "memlock: %llu", &memlock) != 1)
		return;
	if (strstr(text, "prog_type:")) {
		m->prog_bytes += memlock;
		m->n_progs++;
		return;
	}
	if (!strstr(text, "map_type:"))
		return;
	m->map_bytes += memlock;
	m->n_maps++;
	p = strstr(text, "map_id:");
	if (p)
		sscanf(p, "map_id: %u", &id);
	map_name(id, name, sizeof(name));
	used = strlen(m->map_detail);
	snprintf(m->map_detail + used, sizeof(m->map_detail) - used, "%s%s %llu", used ? ", " : "",
		 name, memlock);
}

int bpf_memory_of(pid_t pid, struct bpf_memory *m)
{
	char path[320], buf[2048];
	struct dirent *d;
	DIR *dir;

	memset(m, 0, sizeof(*m));
	snprintf(path, sizeof(path), "/proc/%d/fdinfo", (int)pid);
	dir = opendir(path);
	if (!dir)
		return -errno;
	while ((d = readdir(dir))) {
		if (d->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%d/fdinfo/%s", (int)pid, d->d_name);
		if (!read_file(path, buf, sizeof(buf)))
			add_fdinfo(buf, m);
	}
	closedir(dir);
	return 0;
}

int bpf_progs_named(const char *name)
{
	__u32 id = 0;
	int count = 0;

	while (!bpf_prog_get_next_id(id, &id)) {
		struct bpf_prog_info info = {};
		__u32 len = sizeof(info);
		int fd = bpf_prog_get_fd_by_id(id);

		if (fd < 0)
			continue;
		if (!bpf_obj_get_info_by_fd(fd, &info, &len) &&
		    !strncmp(info.name, name, strlen(name)))
			count++;
		close(fd);
	}
	return count;
}

/* How often a program ran since it was loaded, or since statistics were enabled. */
static uint64_t prog_runs(__u32 id)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);
	int fd = bpf_prog_get_fd_by_id(id);
	uint64_t runs = 0;

	if (fd < 0)
		return 0;
	if (!bpf_obj_get_info_by_fd(fd, &info, &len))
		runs = info.run_cnt;
	close(fd);
	return runs;
}

int bpf_runs_attached_at(const char *cgroup_dir, int *progs, uint64_t *runs)
{
	static const enum bpf_attach_type types[] = {
		BPF_CGROUP_INET4_POST_BIND,   BPF_CGROUP_INET6_POST_BIND, BPF_CGROUP_UDP4_SENDMSG,
		BPF_CGROUP_UDP6_SENDMSG,      BPF_CGROUP_INET4_CONNECT,	  BPF_CGROUP_INET6_CONNECT,
		BPF_CGROUP_INET_SOCK_RELEASE,
	};
	int fd = open(cgroup_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC), err = 0;

	*progs = 0;
	*runs = 0;
	if (fd < 0)
		return -errno;
	for (size_t t = 0; t < sizeof(types) / sizeof(types[0]) && !err; t++) {
		__u32 ids[16], n = 16;

		if (bpf_prog_query(fd, types[t], 0, NULL, ids, &n)) {
			err = -errno;
			break;
		}
		for (__u32 i = 0; i < n; i++)
			*runs += prog_runs(ids[i]);
		*progs += (int)n;
	}
	close(fd);
	return err;
}

/* In a consumer process: the write end of its report pipe. */
static int report_fd = -1;

void report_to(int fd)
{
	report_fd = fd;
}

void send_report(uint64_t t_ns, uint64_t k_ns, int type, pid_t pid, unsigned int port)
{
	struct report r = { .t_ns = t_ns,
			    .k_ns = k_ns,
			    .type = type,
			    .pid = pid,
			    .port = port,
			    .cpu = (uint32_t)(sched_getcpu() + 1) };

	/* The driver gone is the only failure: nothing left to report to. */
	if (write_full(report_fd, &r, sizeof(r)))
		_exit(0);
}

/* 0..n-1 in a random order (Fisher-Yates): each round's order of configurations. */
void shuffle_order(size_t *order, size_t n, unsigned int *seed)
{
	for (size_t i = 0; i < n; i++)
		order[i] = i;
	for (size_t i = n; i > 1; i--) {
		size_t j = (size_t)rand_r(seed) % i, tmp = order[i - 1];

		order[i - 1] = order[j];
		order[j] = tmp;
	}
}
