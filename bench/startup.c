// SPDX-License-Identifier: MIT
/*
 * Job 5 (and 6 at start): from exec of `teredo-observer --json` to its
 * initial line, with and without 10,000 UDP sockets open in other processes
 * (the start-up snapshot walks every open file of every task), rounds
 * alternating. Also the command's peak RSS and BPF memory right after start,
 * and what one pass of each polling method costs with those sockets open.
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
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"

#define HOLDERS 4
#define SOCKETS_PER_HOLDER 2500
#define START_TIMEOUT_MS 30000

struct holder {
	pid_t pid;
	int cmd_fd, ack_fd;
};

/* ---- processes holding sockets ---- */

static int holder_open(int *fds, int n)
{
	struct sockaddr_in addr = { .sin_family = AF_INET };

	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	for (int i = 0; i < n; i++) {
		fds[i] = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
		if (fds[i] < 0 || bind(fds[i], (struct sockaddr *)&addr, sizeof(addr)))
			return -errno;
	}
	return 0;
}

/* 'o' opens the sockets, 'c' closes them; each answered with 'k'. */
static int holder_loop(int cmd, int ack)
{
	struct rlimit rl = { SOCKETS_PER_HOLDER + 64, SOCKETS_PER_HOLDER + 64 };
	static int fds[SOCKETS_PER_HOLDER];
	int open_n = 0;
	char c;

	set_comm("tbench-holder");
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < SOCKETS_PER_HOLDER + 64) {
		rl.rlim_cur = SOCKETS_PER_HOLDER + 64;
		if (setrlimit(RLIMIT_NOFILE, &rl))
			return 1;
	}
	while (read(cmd, &c, 1) == 1) {
		if (c == 'o' && !open_n) {
			if (holder_open(fds, SOCKETS_PER_HOLDER))
				return 1;
			open_n = SOCKETS_PER_HOLDER;
		} else if (c == 'c') {
			for (int i = 0; i < open_n; i++)
				close(fds[i]);
			open_n = 0;
		}
		if (write(ack, "k", 1) != 1)
			return 1;
	}
	return 0;
}

static int holders_start(struct holder *h)
{
	for (int i = 0; i < HOLDERS; i++) {
		int cmd[2], ack[2];

		if (pipe2(cmd, O_CLOEXEC) || pipe2(ack, O_CLOEXEC))
			return -errno;
		h[i].pid = fork_child();
		if (h[i].pid < 0)
			return -errno;
		if (h[i].pid == 0)
			_exit(holder_loop(cmd[0], ack[1]));
		close(cmd[0]);
		close(ack[1]);
		h[i].cmd_fd = cmd[1];
		h[i].ack_fd = ack[0];
	}
	return 0;
}

static int holders_say(struct holder *h, char c)
{
	char ack;

	for (int i = 0; i < HOLDERS; i++)
		if (write(h[i].cmd_fd, &c, 1) != 1)
			return -EIO;
	for (int i = 0; i < HOLDERS; i++)
		if (read_full(h[i].ack_fd, &ack, 1, 30000))
			return -EIO;
	return 0;
}

static void holders_stop(struct holder *h)
{
	for (int i = 0; i < HOLDERS; i++) {
		close(h[i].cmd_fd);
		close(h[i].ack_fd);
		proc_stop(h[i].pid, 3000);
	}
}

/* ---- one start ---- */

struct start_result {
	double ms;
	long hwm_kb;
	struct bpf_memory mem;
};

/* Read until the first line is complete; the time is that of the read completing it. */
static int first_line(int fd, char *line, size_t len, uint64_t *t)
{
	size_t got = 0;

	while (got < len - 1) {
		int ready = wait_readable(fd, START_TIMEOUT_MS);
		ssize_t n;

		if (ready <= 0)
			return ready ? ready : -ETIMEDOUT;
		n = read(fd, line + got, len - 1 - got);
		*t = now_ns();
		if (n <= 0)
			return n ? -errno : -EPIPE;
		got += (size_t)n;
		line[got] = '\0';
		if (strchr(line, '\n'))
			return 0;
	}
	return -E2BIG;
}

static int start_once(const struct bench_env *env, uint64_t *t_exec, struct start_result *res)
{
	char *argv[] = { (char *)env->observer, "--json", "--comm", "tbench-client", NULL };
	struct spawn_io io = { .in = -1, .err = -1, .fd3 = -1 };
	char line[4096];
	int pipefd[2], err;
	uint64_t t_line;
	pid_t pid;

	if (pipe2(pipefd, O_CLOEXEC))
		return -errno;
	io.out = pipefd[1];
	pid = spawn(argv, &io, t_exec);
	close(pipefd[1]);
	if (pid < 0) {
		close(pipefd[0]);
		return -errno;
	}
	err = first_line(pipefd[0], line, sizeof(line), &t_line);
	if (!err && !strstr(line, "\"type\": \"initial\""))
		err = -EPROTO;
	if (!err) {
		res->ms = (double)(t_line - *t_exec) / 1e6;
		res->hwm_kb = proc_status_kb(pid, "VmHWM");
		bpf_memory_of(pid, &res->mem);
	}
	proc_stop(pid, 3000);
	close(pipefd[0]);
	return err;
}

/* ---- the job ---- */

static void print_series(const char *label, const double *ms, unsigned int n)
{
	struct summary s;

	summarize(ms, n, &s);
	printf("%-44s %4u %9.1f %9.1f %9.1f\n", label, n, s.p50, s.min, s.max);
}

static int alternate(const struct bench_env *env, struct holder *h, uint64_t *t_exec,
		     double *without, double *with, unsigned int rounds, struct start_result *last)
{
	int err = 0;

	for (unsigned int r = 0; r < rounds && !err; r++) {
		/* Alternate which goes first, so neither always follows the other. */
		for (int k = 0; k < 2 && !err; k++) {
			bool open = (r + (unsigned int)k) % 2;

			err = holders_say(h, open ? 'o' : 'c');
			if (!err)
				err = start_once(env, t_exec, last);
			if (!err)
				(open ? with : without)[r] = last->ms;
		}
	}
	return err;
}

int job_startup(const struct bench_env *env, struct targets *t)
{
	unsigned int rounds = env->quick ? 2 : 7;
	struct holder h[HOLDERS];
	double without[16], with[16], proc_ms = 0, ss_ms = 0;
	struct start_result last = { 0 };
	uint64_t *t_exec;
	int err;

	(void)t;
	t_exec = mmap(NULL, sizeof(*t_exec), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1,
		      0);
	if (t_exec == MAP_FAILED)
		return -errno;
	printf("\n== 5. Start-up: exec of teredo-observer --json -> initial line read, %u runs "
	       "each, alternating ==\n",
	       rounds);
	err = holders_start(h);
	if (!err)
		err = alternate(env, h, t_exec, without, with, rounds, &last);
	if (!err)
		err = holders_say(h, 'o');
	if (!err)
		err = poll_pass_costs(&proc_ms, &ss_ms);
	holders_stop(h);
	munmap(t_exec, sizeof(*t_exec));
	if (err) {
		fprintf(stderr, "tbench: start-up job failed: %s\n", strerror(-err));
		return err;
	}
	printf("%-44s %4s %9s %9s %9s\n", "", "n", "p50 ms", "min ms", "max ms");
	print_series("no other sockets open", without, rounds);
	print_series("10,000 UDP sockets open in 4 other processes", with, rounds);
	printf("\n== 6b. Memory of teredo-observer --json right after start ==\n");
	printf("VmHWM (peak RSS) %ld KiB\nBPF maps: %d, memlock %llu bytes (%s)\nBPF programs: "
	       "%d, memlock %llu bytes\n",
	       last.hwm_kb, last.mem.n_maps, (unsigned long long)last.mem.map_bytes,
	       last.mem.map_detail, last.mem.n_progs, (unsigned long long)last.mem.prog_bytes);
	printf("\n== 7a. One polling pass with those 10,000 sockets open ==\n");
	printf("/proc/net/udp read and parsed (owners known): %.2f ms; `ss -uanpH` run and "
	       "parsed: %.2f ms\n",
	       proc_ms, ss_ms);
	return 0;
}
