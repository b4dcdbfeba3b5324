// SPDX-License-Identifier: MIT
/*
 * Linked into every test program that watches the kernel: the whole program
 * runs in a network namespace of its own, made before main() (and before
 * Criterion starts its runner). Whatever runs on the host, a Teredo client
 * or another process named miredo, is then in another namespace, which
 * observers opened here do not watch. Without root this does nothing, and
 * the tests skip saying why.
 */
#define _GNU_SOURCE
#include <net/if.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

__attribute__((constructor)) static void own_network_namespace(void)
{
	struct ifreq ifr = { .ifr_name = "lo" };
	int fd;

	if (geteuid() != 0 || unshare(CLONE_NEWNET))
		return;
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	if (ioctl(fd, SIOCGIFFLAGS, &ifr) == 0) {
		ifr.ifr_flags |= IFF_UP;
		ioctl(fd, SIOCSIFFLAGS, &ifr);
	}
	close(fd);
}
