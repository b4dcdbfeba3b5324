// SPDX-License-Identifier: GPL-2.0
/*
 * The kernel matrix's check of its own guest: does the emulated machine
 * survive the kernel patching its text while another CPU runs it?
 *
 * Attaching the first cgroup program of a type, and detaching the last,
 * flips a static key (cgroup_bpf_enabled_key[type]): the kernel rewrites
 * every site of that key, inet_release()'s among them, with an int3 in place
 * while the other CPUs may run it. Every observer start and stop does this,
 * and so do the suites' thousands of them. QEMU 7.2's multi-threaded TCG
 * loses that race: a CPU runs the int3 after the patcher is done with it,
 * and the kernel dies with "Oops: int3" in inet_release (seen once in CI on
 * 7.3.4, at once with this program on 6.12 and 7.3.4). Single-threaded TCG
 * (tests/kernels/run) survives it; this program proves that on each kernel
 * before the suites run, so that the matrix reports the kernel, not the
 * emulator.
 *
 * Usage: text-patching SECONDS. It loads a program that does nothing,
 * attaches and detaches it at the root cgroup in a loop for SECONDS while
 * two children open and close UDP sockets, and prints "N passed, 0 failed"
 * (the guest's summary line) with the number of flips. A guest that dies
 * gives no summary, which the matrix reports as a failure.
 */
#include <bpf/bpf.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/magic.h>
#include <sys/socket.h>
#include <sys/statfs.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define SOCKET_CHURNERS 2

/* r0 = 1 (allow); exit */
static int load_allow_all(void)
{
	struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 1 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_CGROUP_INET_SOCK_RELEASE);

	return bpf_prog_load(BPF_PROG_TYPE_CGROUP_SOCK, "allow_all", "GPL", insns,
			     sizeof(insns) / sizeof(insns[0]), &opts);
}

/* A child that runs inet_release() as fast as it can, until killed. */
static pid_t start_socket_churner(void)
{
	pid_t pid = fork();

	if (pid != 0)
		return pid;
	for (;;) {
		int fd = socket(AF_INET, SOCK_DGRAM, 0);

		if (fd >= 0)
			close(fd);
	}
}

static long flip_until(int prog, int cgroup, time_t end)
{
	long flips = 0;

	while (time(NULL) < end) {
		if (bpf_prog_attach(prog, cgroup, BPF_CGROUP_INET_SOCK_RELEASE,
				    BPF_F_ALLOW_MULTI)) {
			fprintf(stderr, "text-patching: attach: %s\n", strerror(errno));
			return -1;
		}
		if (bpf_prog_detach2(prog, cgroup, BPF_CGROUP_INET_SOCK_RELEASE)) {
			fprintf(stderr, "text-patching: detach: %s\n", strerror(errno));
			return -1;
		}
		flips++;
	}
	return flips;
}

/* The guest's cgroup2 root, where a program's attach flips the static key. */
static int open_cgroup2_root(void)
{
	struct statfs fs;
	int fd = open("/sys/fs/cgroup", O_RDONLY | O_DIRECTORY);

	if (fd < 0 || fstatfs(fd, &fs) || fs.f_type != CGROUP2_SUPER_MAGIC) {
		if (fd >= 0)
			close(fd);
		fprintf(stderr, "text-patching: /sys/fs/cgroup is not cgroup2 (mount -t cgroup2 "
				"none /sys/fs/cgroup)\n");
		return -1;
	}
	return fd;
}

int main(int argc, char **argv)
{
	pid_t churners[SOCKET_CHURNERS];
	int seconds, prog, cgroup, i;
	long flips;

	if (argc != 2 || (seconds = atoi(argv[1])) <= 0) {
		fprintf(stderr, "usage: %s SECONDS\n", argv[0]);
		return 2;
	}
	prog = load_allow_all();
	if (prog < 0) {
		fprintf(stderr,
			"text-patching: loading a cgroup/sock_release program: %s (needs root)\n",
			strerror(errno));
		return 1;
	}
	cgroup = open_cgroup2_root();
	if (cgroup < 0)
		return 1;
	for (i = 0; i < SOCKET_CHURNERS; i++) {
		churners[i] = start_socket_churner();
		if (churners[i] < 0) {
			fprintf(stderr, "text-patching: fork: %s\n", strerror(errno));
			return 1;
		}
	}
	flips = flip_until(prog, cgroup, time(NULL) + seconds);
	for (i = 0; i < SOCKET_CHURNERS; i++) {
		kill(churners[i], SIGKILL);
		waitpid(churners[i], NULL, 0);
	}
	if (flips <= 0)
		return 1;
	printf("text-patching: %ld flips of the sock_release static key in %d s, "
	       "%d processes closing sockets meanwhile\n",
	       flips, seconds, SOCKET_CHURNERS);
	printf("1 passed, 0 failed\n");
	return 0;
}
