// SPDX-License-Identifier: MIT
/*
 * One measured bind: a fresh client process (fork+exec) binds once; every
 * consumer watching its name reports the add; latency is the consumer's
 * clock at the event minus the client's clock right before bind(). Then the
 * client is ended and the deletes collected, so that the next bind starts
 * from no Teredo port at all, as a restart of Miredo does.
 *
 * The driver waits only on the first consumer's report while the client
 * runs, not on the client's own pipe: its wake-up must not compete with the
 * consumer's for the two cores.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "bench.h"
#include "teredo_observer.h"

#define EVENT_TIMEOUT_MS 2000
#define CLIENT_TIMEOUT_MS 5000

struct client {
	pid_t pid;
	int hold_fd;   /* its stdin: closing it ends the client */
	int report_fd; /* its fd 3: when it bound, and the port */
	struct client_report rep;
	bool have_rep;
};

void series_free(struct series *s)
{
	free(s->us);
	free(s->k_us);
	free(s->placed);
	memset(s, 0, sizeof(*s));
}

static int grow(double **v, size_t cap)
{
	double *grown = realloc(*v, cap * sizeof(*grown));

	if (!grown)
		return -ENOMEM;
	*v = grown;
	return 0;
}

/*
 * Where a consumer ran, against its client. On the client's CPU it runs
 * either when bind() returns to the client (it was woken inside bind() and
 * takes the CPU at the system call's end) or later (when the client blocks).
 */
enum placement {
	PLACED_UNKNOWN,	     /* a build from before the CPU was reported */
	PLACED_OTHER_CPU,    /* in parallel with the client, on the other core */
	PLACED_AT_RETURN,    /* on the client's CPU, before bind() returned to the client */
	PLACED_AFTER_RETURN, /* on the client's CPU, after the client went on */
};

static unsigned char placement(const struct client_report *c, const struct report *r)
{
	if (!r->cpu || !c->cpu)
		return PLACED_UNKNOWN;
	if (r->cpu != c->cpu)
		return PLACED_OTHER_CPU;
	return r->t_ns < c->t_bound_ns ? PLACED_AT_RETURN : PLACED_AFTER_RETURN;
}

static int grow_placed(unsigned char **v, size_t cap)
{
	unsigned char *grown = realloc(*v, cap);

	if (!grown)
		return -ENOMEM;
	*v = grown;
	return 0;
}

/* One sample; k_us < 0 when the consumer has no kernel time stamp. */
static void series_add(struct series *s, double us, double k_us, unsigned char placed)
{
	if (s->n == s->cap) {
		size_t cap = s->cap ? s->cap * 2 : 1024;

		if (grow(&s->us, cap) || grow(&s->k_us, cap) || grow_placed(&s->placed, cap))
			return; /* the sample is dropped; n says how many were kept */
		s->cap = cap;
	}
	s->k_us[s->n] = k_us;
	s->placed[s->n] = placed;
	s->us[s->n++] = us;
	s->n_k += k_us >= 0;
}

void series_summary(const struct series *s, struct summary *out)
{
	summarize(s->us, s->n, out);
}

static int client_start(const struct bench_env *env, const char *comm, const char *cgroup,
			struct client *cl)
{
	char *argv[] = { (char *)env->client, (char *)comm, NULL };
	struct spawn_io io = { .out = -1, .err = -1, .cgroup = cgroup };
	int hold[2], rep[2];

	memset(cl, 0, sizeof(*cl));
	if (pipe2(hold, O_CLOEXEC))
		return -errno;
	if (pipe2(rep, O_CLOEXEC)) {
		close(hold[0]);
		close(hold[1]);
		return -errno;
	}
	io.in = hold[0];
	io.fd3 = rep[1];
	cl->pid = spawn(argv, &io, NULL);
	close(hold[0]);
	close(rep[1]);
	cl->hold_fd = hold[1];
	cl->report_fd = rep[0];
	return cl->pid < 0 ? -errno : 0;
}

static int client_report(struct client *cl)
{
	int err;

	if (cl->have_rep)
		return 0;
	err = read_full(cl->report_fd, &cl->rep, sizeof(cl->rep), CLIENT_TIMEOUT_MS);
	if (err)
		fprintf(stderr, "tbench: client %d did not report its bind: %s\n", (int)cl->pid,
			strerror(-err));
	cl->have_rep = !err;
	return err;
}

/* Close its stdin: it releases the socket and exits. */
static void client_release(struct client *cl)
{
	if (cl->hold_fd >= 0)
		close(cl->hold_fd);
	cl->hold_fd = -1;
}

static void client_end(struct client *cl)
{
	client_release(cl);
	if (cl->pid > 0 && proc_wait(cl->pid, CLIENT_TIMEOUT_MS, NULL))
		proc_stop(cl->pid, 1000);
	close(cl->report_fd);
}

static int timeout_for(const struct consumer *c)
{
	return c->interval_ms ? (int)c->interval_ms * 3 + EVENT_TIMEOUT_MS : EVENT_TIMEOUT_MS;
}

static bool is_expected(const struct consumer *c, const struct report *r, const struct client *cl,
			int type)
{
	if (r->type != type)
		return false;
	if (r->port && r->port != cl->rep.port)
		return false;
	if (type == TEREDO_PORT_ADDED && r->port != cl->rep.port)
		return false;
	return !c->reports_pid || r->pid == cl->pid;
}

/* The next report must be type for this client: 0, or the error counted in s. */
static int expect(struct consumer *c, struct client *cl, int type, struct series *s,
		  struct report *r)
{
	int got = consumer_next(c, r, timeout_for(c));

	if (got < 0)
		return got;
	if (client_report(cl))
		return -EIO;
	if (!got) {
		s->lost++;
		fprintf(stderr, "tbench: %s: no %s event for client %d (port %u)\n", c->label,
			teredo_port_event_type_name(type), (int)cl->pid, cl->rep.port);
		return -ETIMEDOUT;
	}
	if (!is_expected(c, r, cl, type)) {
		s->misordered++;
		fprintf(stderr, "tbench: %s: expected %s port %u pid %d, got %s port %u pid %d\n",
			c->label, teredo_port_event_type_name(type), cl->rep.port, (int)cl->pid,
			r->type >= 0 && r->type <= 3 ? teredo_port_event_type_name(r->type) : "?",
			r->port, (int)r->pid);
		return -EPROTO;
	}
	return 0;
}

int measure_client(const struct bench_env *env, const char *comm, struct consumer *const *cs,
		   struct series *const *out, size_t n)
{
	bool bad[MAX_CONSUMERS] = { false };
	struct client cl;
	struct report r;
	int err;

	if (n > MAX_CONSUMERS)
		return -EINVAL;
	/* Where the first consumer's clients run: all measured by one client share it. */
	err = client_start(env, comm, n ? cs[0]->client_cgroup : NULL, &cl);
	if (err)
		return err;
	for (size_t i = 0; i < n; i++) {
		err = expect(cs[i], &cl, TEREDO_PORT_ADDED, out[i], &r);
		if (err == -EIO || (err < 0 && err != -ETIMEDOUT && err != -EPROTO))
			goto end;
		if (!err)
			series_add(out[i], (double)(r.t_ns - cl.rep.t_bind_ns) / 1000.0,
				   r.k_ns ? ((double)r.k_ns - (double)cl.rep.t_bind_ns) / 1000.0
					  : -1.0,
				   placement(&cl.rep, &r));
		bad[i] = err != 0;
	}
	client_release(&cl);
	for (size_t i = 0; i < n; i++)
		if (cs[i]->reports_deletes && !bad[i])
			bad[i] = expect(cs[i], &cl, TEREDO_PORT_DELETED, out[i], &r) != 0;
	err = 0;
end:
	client_end(&cl);
	/* After a miss, let late reports arrive and drop them: the next bind starts clean. */
	for (size_t i = 0; i < n; i++)
		if (bad[i] || err) {
			sleep_ms(100);
			consumer_drain(cs[i]);
		}
	return err;
}

int run_rounds(const struct bench_env *env, struct consumer *const *cs, struct series *out,
	       size_t n, unsigned int rounds)
{
	static unsigned int calls;
	unsigned int seed = env->seed ^ (++calls * 2654435761u); /* another order each call */
	size_t order[MAX_CONSUMERS];
	int err;

	if (n > MAX_CONSUMERS)
		return -EINVAL;
	for (unsigned int r = 0; r < rounds; r++) {
		shuffle_order(order, n, &seed);
		for (size_t k = 0; k < n; k++) {
			struct consumer *c = cs[order[k]];
			struct series *s = &out[order[k]];

			err = measure_client(env, c->comm, &c, &s, 1);
			if (err) {
				fprintf(stderr, "tbench: round %u: client failed: %s\n", r,
					strerror(-err));
				return err;
			}
		}
	}
	return 0;
}

/* p50 ratio to the floor in each of `blocks` consecutive slices of the rounds. */
static void block_ratios(const struct series *s, const struct series *floor, size_t blocks,
			 double *lo, double *hi)
{
	*lo = *hi = 0;
	for (size_t b = 0; b < blocks; b++) {
		size_t a0 = b * s->n / blocks, a1 = (b + 1) * s->n / blocks;
		size_t f0 = b * floor->n / blocks, f1 = (b + 1) * floor->n / blocks;
		double fm, r;

		if (a1 <= a0 || f1 <= f0)
			continue;
		fm = median_of(floor->us + f0, f1 - f0);
		r = fm > 0 ? median_of(s->us + a0, a1 - a0) / fm : 0;
		if (!b || r < *lo)
			*lo = r;
		if (!b || r > *hi)
			*hi = r;
	}
}

void print_latency_table(struct consumer *const *cs, const struct series *s, size_t n,
			 size_t floor_row)
{
	struct summary f, x;

	series_summary(&s[floor_row], &f);
	printf("%-34s %5s %8s %17s %8s %9s %9s %13s %9s %5s %5s\n", "consumer", "n", "p50 us",
	       "p25-p75 us", "p99 us", "max us", "p50/flr", "(10 blocks)", "p99/flr", "lost",
	       "order");
	for (size_t i = 0; i < n; i++) {
		double lo, hi;
		char iqr[32], blocks[32];

		series_summary(&s[i], &x);
		block_ratios(&s[i], &s[floor_row], 10, &lo, &hi);
		snprintf(iqr, sizeof(iqr), "%.1f-%.1f", x.p25, x.p75);
		snprintf(blocks, sizeof(blocks), "%.2f-%.2f", lo, hi);
		printf("%-34s %5zu %8.1f %17s %8.1f %9.1f %9.2f %13s %9.2f %5u %5u\n", cs[i]->label,
		       x.n, x.p50, iqr, x.p99, x.max, f.p50 > 0 ? x.p50 / f.p50 : 0, blocks,
		       f.p99 > 0 ? x.p99 / f.p99 : 0, s[i].lost, s[i].misordered);
	}
}

/* Split each sample at the BPF program's time stamp: bind -> kernel, kernel -> consumer. */
static void split(const struct series *s, struct summary *kernel, struct summary *user)
{
	double *k = calloc(s->n + 1, sizeof(*k)), *u = calloc(s->n + 1, sizeof(*u));
	size_t n = 0;

	for (size_t i = 0; k && u && i < s->n; i++)
		if (s->k_us[i] >= 0) {
			k[n] = s->k_us[i];
			u[n++] = s->us[i] - s->k_us[i];
		}
	summarize(k, n, kernel);
	summarize(u, n, user);
	free(k);
	free(u);
}

void print_split_table(struct consumer *const *cs, const struct series *s, size_t n)
{
	printf("%-34s %5s %14s %14s %16s %16s\n", "where the time goes", "n", "bind->BPF p50",
	       "bind->BPF p99", "BPF->cons. p50", "BPF->cons. p99");
	for (size_t i = 0; i < n; i++) {
		struct summary k, u;

		if (!s[i].n_k)
			continue;
		split(&s[i], &k, &u);
		printf("%-34s %5zu %14.1f %14.1f %16.1f %16.1f\n", cs[i]->label, k.n, k.p50, k.p99,
		       u.p50, u.p99);
	}
}

/* The p50 of the samples placed so, and their share of all, in percent. */
static double placed_p50(const struct series *s, unsigned char placed, double *share)
{
	double *v = calloc(s->n + 1, sizeof(*v)), p50;
	size_t n = 0;

	for (size_t i = 0; v && i < s->n; i++)
		if (s->placed[i] == placed)
			v[n++] = s->us[i];
	*share = s->n ? 100.0 * (double)n / (double)s->n : 0;
	p50 = n ? median_of(v, n) : 0;
	free(v);
	return p50;
}

void print_placement_table(struct consumer *const *cs, const struct series *s, size_t n)
{
	static const unsigned char shown[] = { PLACED_AT_RETURN, PLACED_AFTER_RETURN,
					       PLACED_OTHER_CPU };

	printf("%-34s %23s %23s %23s\n", "where the consumer ran (%, p50 us)",
	       "client's CPU, at return", "client's CPU, later", "the other CPU");
	for (size_t i = 0; i < n; i++) {
		char cell[3][32];
		double share;

		if (!s[i].n || s[i].placed[0] == PLACED_UNKNOWN)
			continue;
		for (size_t k = 0; k < 3; k++) {
			double p50 = placed_p50(&s[i], shown[k], &share);

			snprintf(cell[k], sizeof(cell[k]), "%5.1f%% %7.1f", share, p50);
		}
		printf("%-34s %23s %23s %23s\n", cs[i]->label, cell[0], cell[1], cell[2]);
	}
}
