/* SPDX-License-Identifier: MIT */
/*
 * teredo-observer benchmarks (issue 6): shared declarations of the driver
 * (bench/main.c), its jobs (one file each) and their helpers (bench/util.c).
 *
 * Everything runs inside a network namespace the driver makes for itself, so
 * the observers' default scope (their own namespace) sees only our clients,
 * whose process names (tbench-*) are ours too: other developers' Miredo and
 * observers on the same machine neither see nor disturb our events.
 */
#ifndef TBENCH_H
#define TBENCH_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define COMM_LEN 16
#define MAX_CONSUMERS 20 /* measured side by side in one run */

/* What bench/client.c writes to its fd 3 once bound. */
struct client_report {
	uint64_t t_bind_ns;  /* CLOCK_MONOTONIC right before bind() */
	uint64_t t_bound_ns; /* and right after it returned */
	uint32_t port;	     /* the port the kernel gave */
	uint32_t cpu;	     /* where it called bind(), + 1 */
};

/* Paths of what the benchmarks start, given by the Makefile. */
struct bench_env {
	const char *self;     /* this program: consumers run as `self --consumer ...` */
	const char *variant;  /* another build of it, to compare a change side by side */
	const char *client;   /* bench/client.c: binds once, reports when */
	const char *observer; /* the teredo-observer command */
	const char *bpftrace; /* Debian's bpftrace, NULL when missing */
	const char *only;     /* comma-separated jobs to run, NULL for all */
	unsigned int seed;
	bool quick; /* fewer repetitions, to check the harness itself */
};

/* Whether --only names job (or there is no --only). */
bool job_wanted(const struct bench_env *env, const char *job);

/* Scale a repetition count down in --quick runs (never below 10). */
unsigned int reps(const struct bench_env *env, unsigned int full);

/* ---- time and statistics (util.c) ---- */

uint64_t now_ns(void); /* CLOCK_MONOTONIC, as the kernel's and the client's stamps */
void sleep_ms(unsigned int ms);

struct summary {
	size_t n;
	double min, p25, p50, p75, p99, max;
};

/* Percentiles of v (not changed), nearest-rank; n may be 0 (all zero). */
void summarize(const double *v, size_t n, struct summary *s);
double median_of(const double *v, size_t n);
/* 0..n-1 shuffled with rand_r(seed). */
void shuffle_order(size_t *order, size_t n, unsigned int *seed);

/* ---- processes: every one started is tracked and ended by pid (util.c) ---- */

/* In the driver: remember it, end every tracked child at exit or on a signal. */
int procs_init_driver(unsigned int max_seconds);
void proc_track(pid_t pid);
void proc_untrack(pid_t pid);
/*
 * fork() for a helper process: the child dies with its parent
 * (PR_SET_PDEATHSIG), gets default signal handling and forgets the driver's
 * list. Returns as fork() does.
 */
pid_t fork_child(void);
/* Wait up to timeout_ms for pid to exit; 0 and *status, or -ETIMEDOUT. */
int proc_wait(pid_t pid, int timeout_ms, int *status);
/* SIGTERM, wait up to timeout_ms, then SIGKILL; always reaped and untracked. */
void proc_stop(pid_t pid, int timeout_ms);
/* Where a spawned program's descriptors go: -1 is /dev/null for in and out,
 * our own stderr for err, nothing for fd3. */
struct spawn_io {
	int in, out, err, fd3;
	const char *cgroup; /* a cgroup directory the child joins before exec, or NULL */
};

/*
 * fork+exec argv with io. When t_exec is not NULL the child stores
 * CLOCK_MONOTONIC there (it must be shared memory) right before execve().
 */
pid_t spawn(char *const argv[], const struct spawn_io *io, uint64_t *t_exec);
int set_comm(const char *comm);
/* The calling process into the cgroup directory dir: 0 or -errno. */
int join_cgroup(const char *dir);

/*
 * Miredo's cgroup, as the shipped unit selects it (/tbench-TAG-PID/miredo.service),
 * with a process in it all along, as Miredo's: the observer's hooks stay there.
 */
struct miredo_cgroup {
	char path[64]; /* from the cgroup2 root, for --cgroup */
	char dir[PATH_MAX], parent[PATH_MAX];
	pid_t pid;
};

int make_miredo_cgroup(struct miredo_cgroup *mc, const char *tag);
void remove_miredo_cgroup(struct miredo_cgroup *mc);

/* ---- file descriptors ---- */

/* Read exactly len bytes within timeout_ms: 0, -ETIMEDOUT, -EPIPE (EOF) or -errno. */
int read_full(int fd, void *buf, size_t len, int timeout_ms);
int write_full(int fd, const void *buf, size_t len);
/* Wait until fd is readable: 1, 0 on timeout, -errno. */
int wait_readable(int fd, int timeout_ms);

/* ---- /proc ---- */

struct proc_usage {
	uint64_t ticks;	      /* utime+stime of every thread, clock ticks (/proc/PID/stat) */
	uint64_t child_ticks; /* cutime+cstime: children waited for (ss runs) */
	uint64_t run_ns;      /* time on CPU of every thread (/proc/PID/task/TID/schedstat) */
	uint64_t ctxsw;	      /* voluntary+nonvoluntary switches of every thread */
};

int proc_usage_read(pid_t pid, struct proc_usage *u);
/* A "Vm...:" line of /proc/PID/status in KiB, or -1. */
long proc_status_kb(pid_t pid, const char *field);

struct bpf_memory {
	uint64_t map_bytes, prog_bytes; /* memlock of its map and program fds */
	int n_maps, n_progs;
	char map_detail[512]; /* "name type bytes, ..." */
};

/* Memory of the BPF maps and programs process pid holds (fdinfo memlock). */
int bpf_memory_of(pid_t pid, struct bpf_memory *m);
/* Loaded BPF programs named name (prefix, as the kernel truncates names). */
int bpf_progs_named(const char *name);
/*
 * The cgroup programs attached at cgroup_dir itself (not inherited): how
 * many, and how often they ran (run_cnt: counted while BPF statistics are
 * enabled, bpf_enable_stats). 0 or -errno.
 */
int bpf_runs_attached_at(const char *cgroup_dir, int *progs, uint64_t *runs);

/* ---- consumers: who learns of a bind, and when (consumers.c) ---- */

enum consumer_kind {
	CONSUMER_FLOOR,	     /* bench/floor.bpf.c read by a thread in epoll */
	CONSUMER_FLOOR_PIPE, /* the same, passed on as a line through a pipe, as a command would */
	CONSUMER_CALLBACK,   /* teredo_subscribe() */
	CONSUMER_WINDOWS,    /* NotifyTeredoPortChange() */
	CONSUMER_FD,	     /* teredo_observer_get_fd() + receive in our epoll loop */
	CONSUMER_JSON,	     /* teredo-observer --json, line read from its stdout pipe */
	CONSUMER_BPFTRACE,   /* a bpftrace one-liner, line read from its stdout pipe */
	CONSUMER_POLL_PROC,  /* /proc/net/udp (+ /proc/PID/fd for the owner) every interval */
	CONSUMER_POLL_SS,    /* `ss -uanpH` every interval */
	/* Last: the kinds' numbers are argv between builds (--variant). */
	CONSUMER_SERVICE, /* teredo_subscribe() through a teredo-observer serve of its own */
	/* teredo_subscribe() through the serve a CONSUMER_SERVICE of the same comm started */
	CONSUMER_SERVICE_CLIENT,
};

/* Floor programs to load (bench/floor.bpf.c). */
#define FLOOR_POST_BIND 1u  /* cgroup/post_bind4 + ring buffer: the latency floor */
#define FLOOR_SYSCALL_TP 2u /* an empty tp/syscalls/sys_enter_connect: for the cost job */
#define FLOOR_OLD_SEND 4u   /* 0.1.0's tp_btf/sock_send_length hook: for the cost job */
#define FLOOR_HEAVY 8u	    /* post_bind4 doing the observer's kernel work: latency diagnosis */
#define FLOOR_NO_UPDATE 16u /* FLOOR_HEAVY without its hash map update */
/* CONSUMER_FLOOR_PIPE diagnostics: what the service's carrier and its client's wait cost. */
#define FLOOR_LINE_UNIX 32u   /* the line through a unix stream socketpair, not a pipe */
#define FLOOR_LINE_NESTED 64u /* its reader in poll() on an epoll set in an epoll set */
/* Seven empty programs of the observer's types, at the consumer's cgroup: for the cost job. */
#define FLOOR_EMPTY_HOOKS 128u

/* One event as a consumer saw it, sent to the driver through a pipe. */
struct report {
	uint64_t t_ns; /* CLOCK_MONOTONIC when the consumer got it */
	uint64_t k_ns; /* when the BPF program saw it (event's ktime), 0 if not given */
	int32_t type;  /* enum teredo_port_event_type */
	int32_t pid;   /* client pid, 0 if the API does not say; INITIAL: observer's pid */
	uint32_t port; /* port, or for deletes the old port where known */
	uint32_t cpu;  /* where the consumer made the report, + 1; 0: not said (an older build) */
};

struct consumer {
	const char *label;
	const char *exe; /* the program that runs it: NULL for this one */
	enum consumer_kind kind;
	char comm[COMM_LEN];	   /* the client process name it watches */
	unsigned int interval_ms;  /* pollers */
	unsigned int floor_progs;  /* FLOOR_* */
	const char *cgroup;	   /* CONSUMER_JSON, CONSUMER_SERVICE: its --cgroup, or NULL */
	const char *client_cgroup; /* the cgroup directory its clients bind in, or NULL */
	/* filled by consumer_start */
	pid_t pid;	    /* our process that reports */
	pid_t observer_pid; /* the process observing: pid, or the command it runs */
	int report_fd;
	bool reports_deletes;
	bool reports_pid;
};

int consumer_start(struct consumer *c, const struct bench_env *env);
/* `tbench --consumer ...`: run one consumer, reporting to fd 3. */
int consumer_main(int argc, char **argv, const struct bench_env *env);
/* Next report within timeout_ms: 1, 0 on timeout, -errno. */
int consumer_next(struct consumer *c, struct report *r, int timeout_ms);
/* Discard whatever reports wait (after an error, to get back in step). */
void consumer_drain(struct consumer *c);
void consumer_stop(struct consumer *c);

/* Inside a consumer process: where reports go, and one report to the driver (util.c). */
void report_to(int fd);
void send_report(uint64_t t_ns, uint64_t k_ns, int type, pid_t pid, unsigned int port);
/* The pollers' loop (poller.c) and the bpftrace consumer's program text (consumers.c). */
int run_poller(const struct consumer *c);
void bpftrace_script(const char *comm, char *buf, size_t len);

/* ---- fresh clients and measured binds (rounds.c) ---- */

struct series {
	double *us;	       /* bind -> consumer latencies, microseconds */
	double *k_us;	       /* bind -> the BPF program's time stamp, where the consumer has it */
	unsigned char *placed; /* PLACED_*: where the consumer ran, against the client */
	size_t n, cap, n_k;
	unsigned int lost;	 /* an expected event never came */
	unsigned int misordered; /* came, but not the one expected next */
};

void series_free(struct series *s);

/*
 * Start a client named comm, which binds once; collect every consumer's add
 * (latency into its series), end the client, and collect the deletes of
 * those that report them. 0, or -errno when the client itself failed.
 */
int measure_client(const struct bench_env *env, const char *comm, struct consumer *const *cs,
		   struct series *const *out, size_t n);

/* Rounds of one fresh client per consumer, the consumers' order shuffled each round. */
int run_rounds(const struct bench_env *env, struct consumer *const *cs, struct series *out,
	       size_t n, unsigned int rounds);

/* ---- jobs ---- */

struct target {
	char what[96];
	char measured[96];
	bool met;
};

#define MAX_TARGETS 32
struct targets {
	struct target t[MAX_TARGETS];
	size_t n;
};

void target_add(struct targets *t, bool met, const char *what, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

int job_cost(const struct bench_env *env, struct targets *t);
int job_latency(const struct bench_env *env, struct targets *t);
int job_alone(const struct bench_env *env, struct targets *t);
int job_startup(const struct bench_env *env, struct targets *t);
int job_polling(const struct bench_env *env, struct targets *t);
int job_bpftrace(const struct bench_env *env, struct targets *t);

/* Print a latency table (rounds.c): rows are consumers, ratios against row floor_row. */
void print_latency_table(struct consumer *const *cs, const struct series *s, size_t n,
			 size_t floor_row);
/* The same samples split at the BPF program's time stamp (ktime_ns of the event). */
void print_split_table(struct consumer *const *cs, const struct series *s, size_t n);
/* The same samples by where the consumer ran: the client's CPU or the other, and when. */
void print_placement_table(struct consumer *const *cs, const struct series *s, size_t n);
/* The latency figures of one series, in microseconds. */
void series_summary(const struct series *s, struct summary *out);

/* Idle CPU and wake-ups of running consumers over seconds (idle.c); t may be NULL. */
int idle_measure(struct consumer *const *cs, size_t n, unsigned int seconds, const char *title,
		 struct targets *t);
/* One polling pass over the sockets open now: /proc/net/udp and ss (polling.c). */
int poll_pass_costs(double *proc_ms, double *ss_ms);
/* Storm: binders on every core while the client restarts (storm.c). */
int storm_run(const struct bench_env *env, struct consumer *const *cs, size_t n, struct targets *t);

#endif
