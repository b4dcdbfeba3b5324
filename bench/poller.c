// SPDX-License-Identifier: MIT
/*
 * The polling consumers (the consumer layer, below the jobs): what a Linux
 * user would otherwise do to learn the Teredo port.
 *   /proc/net/udp (+udp6): new socket inodes, their owner found by one walk
 *     of /proc/PID/fd (only when something new appeared), then its name;
 *   `ss -uanpH`: run, and its users:(("name",pid=...)) read.
 * Each reports a new Teredo socket at the end of the pass that found it.
 * Job 7b (polling.c) runs them; the start-up job times one pass of each.
 */
#define _GNU_SOURCE
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "teredo_observer.h"

struct entry {
	uint64_t key; /* inode (proc), or pid << 16 | port (ss) */
	unsigned int port;
	pid_t pid;
	char comm[COMM_LEN];
};

struct entries {
	struct entry *v;
	size_t n, cap;
};

static int entries_add(struct entries *e, const struct entry *x)
{
	if (e->n == e->cap) {
		size_t cap = e->cap ? e->cap * 2 : 256;
		struct entry *grown = realloc(e->v, cap * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		e->v = grown;
		e->cap = cap;
	}
	e->v[e->n++] = *x;
	return 0;
}

static int cmp_key(const void *a, const void *b)
{
	uint64_t x = ((const struct entry *)a)->key, y = ((const struct entry *)b)->key;

	return (x > y) - (x < y);
}

static struct entry *entries_find(const struct entries *e, uint64_t key)
{
	struct entry k = { .key = key };

	return e->n ? bsearch(&k, e->v, e->n, sizeof(k), cmp_key) : NULL;
}

/* ---- /proc/net/udp ---- */

static int read_udp_table(const char *path, struct entries *out)
{
	FILE *f = fopen(path, "re");
	char line[512];
	int err = 0;

	if (!f)
		return -errno;
	while (!err && fgets(line, sizeof(line), f)) {
		struct entry x = { 0 };
		unsigned long inode;

		/* sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode */
		if (sscanf(line, " %*d: %*[0-9A-Fa-f]:%x %*s %*x %*s %*s %*s %*u %*d %lu", &x.port,
			   &inode) != 2)
			continue;
		x.key = inode;
		err = entries_add(out, &x);
	}
	fclose(f);
	return err;
}

/* One walk of every process's fds, filling in the owners of the sockets in want. */
static void find_owners(struct entries *want)
{
	DIR *proc = opendir("/proc");
	struct dirent *d;

	if (!proc)
		return;
	while ((d = readdir(proc))) {
		char path[300], link[64];
		unsigned long inode;
		struct dirent *fd;
		struct entry *x;
		DIR *fds;

		if (!isdigit((unsigned char)d->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%s/fd", d->d_name);
		fds = opendir(path);
		if (!fds)
			continue;
		while ((fd = readdir(fds))) {
			ssize_t n = readlinkat(dirfd(fds), fd->d_name, link, sizeof(link) - 1);

			if (n <= 0)
				continue;
			link[n] = '\0';
			if (sscanf(link, "socket:[%lu]", &inode) == 1 &&
			    (x = entries_find(want, inode)))
				x->pid = atoi(d->d_name);
		}
		closedir(fds);
	}
	closedir(proc);
}

static void read_comm(pid_t pid, char *comm)
{
	char path[64];
	FILE *f;

	comm[0] = '\0';
	snprintf(path, sizeof(path), "/proc/%d/comm", (int)pid);
	f = fopen(path, "re");
	if (!f)
		return;
	if (fgets(comm, COMM_LEN, f))
		comm[strcspn(comm, "\n")] = '\0';
	fclose(f);
}

/* The sockets of now not in known: only those are looked up (the expensive part). */
static int new_since(const struct entries *now, const struct entries *known, struct entries *fresh)
{
	for (size_t i = 0; i < now->n; i++)
		if (!entries_find(known, now->v[i].key) && entries_add(fresh, &now->v[i]))
			return -ENOMEM;
	return 0;
}

static int proc_pass(const struct consumer *c, struct entries *known, bool report)
{
	struct entries now = { 0 }, fresh = { 0 };
	int err = read_udp_table("/proc/net/udp", &now);

	if (!err)
		err = read_udp_table("/proc/net/udp6", &now);
	if (!err) {
		qsort(now.v, now.n, sizeof(*now.v), cmp_key);
		err = new_since(&now, known, &fresh);
	}
	if (!err && fresh.n) {
		uint64_t t;

		find_owners(&fresh);
		t = now_ns();
		for (size_t i = 0; i < fresh.n; i++) {
			read_comm(fresh.v[i].pid, fresh.v[i].comm);
			if (report && fresh.v[i].pid && !strcmp(fresh.v[i].comm, c->comm))
				send_report(t, 0, TEREDO_PORT_ADDED, fresh.v[i].pid,
					    fresh.v[i].port);
		}
	}
	free(fresh.v);
	free(known->v);
	*known = now;
	return err;
}

/* ---- ss ---- */

static const char *ss_path(void)
{
	return access("/usr/bin/ss", X_OK) == 0 ? "/usr/bin/ss" : "/bin/ss";
}

/* Run `ss -uanpH`, its whole output into *out (NUL-terminated). */
static int run_ss(char **out)
{
	char *argv[] = { (char *)ss_path(), "-uanpH", NULL };
	struct spawn_io io = { .in = -1, .err = -1, .fd3 = -1 };
	size_t len = 0, cap = 65536;
	char *buf = malloc(cap);
	int pipefd[2], err = 0;
	pid_t pid;

	*out = NULL;
	if (!buf || pipe2(pipefd, O_CLOEXEC)) {
		free(buf);
		return -errno;
	}
	io.out = pipefd[1];
	pid = spawn(argv, &io, NULL);
	close(pipefd[1]);
	for (;;) {
		ssize_t n;

		if (len + 1 == cap) {
			char *grown = realloc(buf, cap * 2);

			if (!grown) {
				err = -ENOMEM;
				break;
			}
			buf = grown;
			cap *= 2;
		}
		if (wait_readable(pipefd[0], 10000) <= 0) {
			err = -ETIMEDOUT;
			break;
		}
		n = read(pipefd[0], buf + len, cap - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
	}
	buf[len] = '\0';
	close(pipefd[0]);
	if (pid > 0 && proc_wait(pid, 10000, NULL))
		proc_stop(pid, 1000);
	*out = buf;
	return err;
}

/* `UNCONN 0 0 127.0.0.1:40000 0.0.0.0:* users:(("name",pid=17,fd=3))` */
static bool parse_ss_line(const char *line, struct entry *x)
{
	char local[128];
	const char *p, *colon;
	size_t n;

	if (sscanf(line, "%*s %*s %*s %127s", local) != 1)
		return false;
	colon = strrchr(local, ':');
	p = strstr(line, "users:((\"");
	if (!colon || !p)
		return false;
	x->port = (unsigned int)atoi(colon + 1);
	p += strlen("users:((\"");
	n = strcspn(p, "\"");
	if (n >= COMM_LEN)
		return false;
	memcpy(x->comm, p, n);
	x->comm[n] = '\0';
	p = strstr(p, "pid=");
	if (!p)
		return false;
	x->pid = atoi(p + 4);
	x->key = (uint64_t)x->pid << 16 | x->port;
	return true;
}

static int ss_pass(const struct consumer *c, struct entries *known, bool report)
{
	struct entries now = { 0 };
	char *out, *line, *save;
	uint64_t t;
	int err = run_ss(&out);

	if (!out)
		return err ? err : -ENOMEM;
	for (line = strtok_r(out, "\n", &save); line && !err; line = strtok_r(NULL, "\n", &save)) {
		struct entry x = { 0 };

		if (parse_ss_line(line, &x))
			err = entries_add(&now, &x);
	}
	free(out);
	if (err) {
		free(now.v);
		return err;
	}
	t = now_ns();
	qsort(now.v, now.n, sizeof(*now.v), cmp_key);
	for (size_t i = 0; i < now.n; i++)
		if (report && !entries_find(known, now.v[i].key) && !strcmp(now.v[i].comm, c->comm))
			send_report(t, 0, TEREDO_PORT_ADDED, now.v[i].pid, now.v[i].port);
	free(known->v);
	*known = now;
	return 0;
}

/* ---- the poller process ---- */

static int pass(const struct consumer *c, struct entries *known, bool report)
{
	return c->kind == CONSUMER_POLL_SS ? ss_pass(c, known, report)
					   : proc_pass(c, known, report);
}

static void add_ns(struct timespec *ts, uint64_t ns)
{
	ns += (uint64_t)ts->tv_nsec;
	ts->tv_sec += (time_t)(ns / 1000000000ull);
	ts->tv_nsec = (long)(ns % 1000000000ull);
}

int run_poller(const struct consumer *c)
{
	struct entries known = { 0 };
	struct timespec next;
	int err = pass(c, &known, false);

	if (err) {
		fprintf(stderr, "tbench: %s: %s\n", c->label, strerror(-err));
		return 1;
	}
	send_report(now_ns(), 0, TEREDO_PORT_INITIAL, getpid(), 0);
	clock_gettime(CLOCK_MONOTONIC, &next);
	/* A fixed period, as `watch -n` or a timer would keep it. */
	for (;;) {
		add_ns(&next, (uint64_t)c->interval_ms * 1000000ull);
		while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL) == EINTR)
			;
		err = pass(c, &known, true);
		if (err) {
			fprintf(stderr, "tbench: %s: %s\n", c->label, strerror(-err));
			return 1;
		}
	}
}

int poll_pass_costs(double *proc_ms, double *ss_ms)
{
	struct consumer c = { .kind = CONSUMER_POLL_PROC, .comm = "tbench-none" };
	struct entries known = { 0 };
	uint64_t t0;
	int err;

	/* The first pass learns every socket; the second is what each tick costs. */
	err = proc_pass(&c, &known, false);
	t0 = now_ns();
	if (!err)
		err = proc_pass(&c, &known, false);
	*proc_ms = (double)(now_ns() - t0) / 1e6;
	c.kind = CONSUMER_POLL_SS;
	free(known.v);
	known = (struct entries){ 0 };
	t0 = now_ns();
	if (!err)
		err = ss_pass(&c, &known, false);
	*ss_ms = (double)(now_ns() - t0) / 1e6;
	free(known.v);
	return err;
}
