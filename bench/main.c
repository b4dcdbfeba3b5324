// SPDX-License-Identifier: MIT
/*
 * tbench: the benchmarks of BENCHMARKS.md (`sudo make bench`). Runs every
 * job in one run, in a network namespace of its own, and prints the tables
 * and which targets were met.
 *
 * The namespace is made with unshare(CLONE_NEWNET) in this process, not `ip
 * netns exec` (which would also remount /sys and hide tracefs and bpffs):
 * every process started here inherits it, and it goes away with the last of
 * them, so nothing is left behind even after a crash. Every process started
 * is ended by pid at exit, on a signal, and after the time limit; each also
 * dies with its parent (PR_SET_PDEATHSIG).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <net/if.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

#ifndef TBENCH_CLIENT
#define TBENCH_CLIENT "build/bench/tbench-client"
#endif
#ifndef TBENCH_OBSERVER
#define TBENCH_OBSERVER "build/teredo-observer"
#endif

#define TIME_LIMIT_S 900 /* the whole run; `make bench` takes about 4 minutes */

static int loopback_up(void)
{
	struct ifreq ifr = { 0 };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), err = 0;

	if (fd < 0)
		return -errno;
	strcpy(ifr.ifr_name, "lo");
	if (ioctl(fd, SIOCGIFFLAGS, &ifr))
		err = -errno;
	ifr.ifr_flags |= IFF_UP;
	if (!err && ioctl(fd, SIOCSIFFLAGS, &ifr))
		err = -errno;
	close(fd);
	return err;
}

/* Our own network namespace: the observers' default scope then holds only our clients. */
static int own_netns(void)
{
	struct stat st;
	int err;

	if (unshare(CLONE_NEWNET))
		return -errno;
	err = loopback_up();
	if (err)
		return err;
	if (stat("/proc/self/ns/net", &st))
		return -errno;
	printf("network namespace: net:[%lu], made for this run (loopback only)\n",
	       (unsigned long)st.st_ino);
	return 0;
}

/* Descriptors 0-2 open, so that no pipe of ours lands there. */
static void standard_fds(void)
{
	for (int fd = 0; fd < 3; fd++)
		if (fcntl(fd, F_GETFD) < 0 && open("/dev/null", O_RDWR) != fd)
			exit(1);
}

static void cpu_model(char *buf, size_t len)
{
	char line[256];
	FILE *f = fopen("/proc/cpuinfo", "re");

	snprintf(buf, len, "unknown");
	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
			snprintf(buf, len, "%s", strchr(line, ':') + 2);
			buf[strcspn(buf, "\n")] = '\0';
			break;
		}
	fclose(f);
}

static void print_machine(const struct bench_env *env)
{
	char cpu[128], when[64];
	struct utsname u;
	time_t now = time(NULL);

	cpu_model(cpu, sizeof(cpu));
	uname(&u);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S %Z", localtime(&now));
	printf("teredo-observer benchmarks, %s\n", when);
	printf("machine: %ld CPUs (%s), kernel %s %s, %s\n", sysconf(_SC_NPROCESSORS_ONLN), cpu,
	       u.release, u.machine, u.version);
	printf("seed %u%s; observers of other tests loaded at start: %d\n", env->seed,
	       env->quick ? ", QUICK run (fewer repetitions: not for the record)" : "",
	       bpf_progs_named("teredo_sock_sen"));
}

static void print_targets(const struct targets *t)
{
	size_t met = 0;

	printf("\n== Targets ==\n");
	for (size_t i = 0; i < t->n; i++) {
		printf("%-6s %-58s %s\n", t->t[i].met ? "met" : "MISSED", t->t[i].what,
		       t->t[i].measured);
		met += t->t[i].met;
	}
	printf("%zu of %zu targets met\n", met, t->n);
}

static const char *find_bpftrace(void)
{
	static const char *const paths[] = { "/usr/bin/bpftrace", "/usr/sbin/bpftrace",
					     "/usr/local/bin/bpftrace" };

	for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++)
		if (access(paths[i], X_OK) == 0)
			return paths[i];
	return NULL;
}

/* The paths this build was made with, and where this program itself is. */
static int default_env(struct bench_env *env)
{
	static char self[4096];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);

	if (n <= 0)
		return -errno;
	self[n] = '\0';
	env->self = self;
	env->client = TBENCH_CLIENT;
	env->observer = TBENCH_OBSERVER;
	env->bpftrace = find_bpftrace();
	env->seed = (unsigned int)time(NULL);
	return 0;
}

static int parse_args(int argc, char **argv, struct bench_env *env)
{
	static const struct option longopts[] = {
		{ "quick", no_argument, NULL, 'q' },
		{ "seed", required_argument, NULL, 's' },
		{ "only", required_argument, NULL, 'o' },
		{ "help", no_argument, NULL, 'h' },
		{ "variant", required_argument, NULL, 'v' },
		{ 0 },
	};
	int c;

	while ((c = getopt_long(argc, argv, "qs:o:v:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'q':
			env->quick = true;
			break;
		case 's':
			env->seed = (unsigned int)strtoul(optarg, NULL, 10);
			break;
		case 'o':
			env->only = optarg;
			break;
		case 'v':
			env->variant = optarg;
			break;
		default:
			fprintf(c == 'h' ? stdout : stderr,
				"usage: tbench [--quick] [--seed N] "
				"[--only cost,latency,alone,idle,storm,startup,polling,bpftrace]\n"
				"       [--variant TBENCH]\n"
				"  --variant: another build of tbench (of a changed library or "
				"command):\n"
				"  its observers are measured beside these in jobs 1 and 2\n");
			return c == 'h' ? 0 : 2;
		}
	}
	return -1;
}

int main(int argc, char **argv)
{
	static struct targets targets;
	struct bench_env env = { 0 };
	int status, err = 0;

	if (default_env(&env))
		return 1;
	if (argc > 1 && !strcmp(argv[1], "--consumer"))
		return consumer_main(argc, argv, &env);
	status = parse_args(argc, argv, &env);
	if (status >= 0)
		return status;
	if (geteuid() != 0) {
		fprintf(stderr, "tbench: needs root (BPF, a network namespace): sudo make bench\n");
		return 1;
	}
	standard_fds();
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (procs_init_driver(TIME_LIMIT_S))
		return 1;
	print_machine(&env);
	err = own_netns();
	if (err) {
		fprintf(stderr, "tbench: cannot make a network namespace: %s\n", strerror(-err));
		return 1;
	}
	/* Cost first: nothing of ours may be attached while "none" is measured. */
	if (!err && job_wanted(&env, "cost"))
		err = job_cost(&env, &targets);
	if (!err &&
	    (job_wanted(&env, "latency") || job_wanted(&env, "idle") || job_wanted(&env, "storm")))
		err = job_latency(&env, &targets);
	if (!err && job_wanted(&env, "alone"))
		err = job_alone(&env, &targets);
	if (!err && job_wanted(&env, "startup"))
		err = job_startup(&env, &targets);
	if (!err && job_wanted(&env, "polling"))
		err = job_polling(&env, &targets);
	if (!err && job_wanted(&env, "bpftrace")) {
		if (env.bpftrace)
			err = job_bpftrace(&env, &targets);
		else
			printf("\n== 7c. bpftrace: not installed (apt-get install bpftrace) ==\n");
	}
	print_targets(&targets);
	return err ? 1 : 0;
}
