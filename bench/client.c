// SPDX-License-Identifier: MIT
/*
 * The benchmark's Teredo client: started fresh (fork+exec) for every measured
 * bind, as Miredo is at each restart. It takes its name (argv[1]), binds one
 * UDP socket on loopback to a port the kernel picks, and passes back through
 * fd 3 when it called bind() (CLOCK_MONOTONIC, taken right before), when it
 * returned, on which CPU, and the port it got. It keeps the socket until its stdin is closed, then
 * exits: the release is the delete the observers report.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sched.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int bind_and_report(void)
{
	struct sockaddr_in addr = { .sin_family = AF_INET };
	socklen_t len = sizeof(addr);
	struct client_report rep = { 0 };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0) {
		perror("tbench-client: socket");
		return -1;
	}
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	rep.cpu = (uint32_t)(sched_getcpu() + 1);
	rep.t_bind_ns = mono_ns();
	if (bind(fd, (struct sockaddr *)&addr, sizeof(addr))) {
		perror("tbench-client: bind");
		return -1;
	}
	rep.t_bound_ns = mono_ns();
	if (getsockname(fd, (struct sockaddr *)&addr, &len)) {
		perror("tbench-client: getsockname");
		return -1;
	}
	rep.port = ntohs(addr.sin_port);
	if (write(3, &rep, sizeof(rep)) != sizeof(rep)) {
		perror("tbench-client: write to fd 3");
		return -1;
	}
	return fd;
}

int main(int argc, char **argv)
{
	char buf[64];

	if (argc != 2 || strlen(argv[1]) > 15) {
		fprintf(stderr, "usage: tbench-client NAME (at most 15 characters)\n");
		return 2;
	}
	/* The name the observers look for; set before bind, as exec would. */
	if (prctl(PR_SET_NAME, argv[1], 0, 0, 0)) {
		perror("tbench-client: PR_SET_NAME");
		return 1;
	}
	if (bind_and_report() < 0)
		return 1;
	/* Hold the port until the driver closes our stdin (or dies). */
	while (read(STDIN_FILENO, buf, sizeof(buf)) > 0)
		;
	return 0;
}
