// SPDX-License-Identifier: MIT
/*
 * udp-actor: a real process that does to UDP sockets what the tests tell it,
 * one command per line on stdin, one answer per line on stdout. It names
 * itself (prctl) so that it can play the Teredo client or a bystander.
 *
 *   comm NAME        set the process name            -> ok
 *   socket4|socket6  new UDP socket, now current     -> ok
 *   v6only 0|1       IPV6_V6ONLY on the current one  -> ok
 *   bind PORT        bind to the wildcard address    -> port N (as the kernel assigned)
 *   sendto PORT      sendto loopback:PORT (autobind) -> port N
 *   sendmsg PORT     sendmsg to loopback:PORT        -> port N
 *   connect PORT     connect to loopback:PORT        -> port N
 *   send             send() on the connected socket  -> port N
 *   cookie           SO_COOKIE of the current socket -> cookie N
 *   close            close the current socket        -> ok
 *   fork             a child holding every fd        -> pid N
 *   pass             SCM_RIGHTS the current socket to a new child, which holds it -> pid N
 *   netns            move into a new network namespace -> ok
 *   storm N          bind N sockets, close all but the last -> port N
 *   exit             exit 0
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>

static int current = -1;
static int family = AF_INET;

static void reply(const char *fmt, long v)
{
	printf(fmt, v);
	putchar('\n');
	fflush(stdout);
}

static void fail(const char *what)
{
	printf("error %s: %s\n", what, strerror(errno));
	fflush(stdout);
}

static socklen_t loopback(struct sockaddr_storage *ss, int port)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET6) {
		struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;

		a->sin6_family = AF_INET6;
		a->sin6_port = htons(port);
		a->sin6_addr = in6addr_loopback;
		return sizeof(*a);
	}
	struct sockaddr_in *a = (struct sockaddr_in *)ss;

	a->sin_family = AF_INET;
	a->sin_port = htons(port);
	a->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return sizeof(*a);
}

static socklen_t wildcard(struct sockaddr_storage *ss, int port)
{
	socklen_t len = loopback(ss, port);

	if (family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_addr = in6addr_any;
	else
		((struct sockaddr_in *)ss)->sin_addr.s_addr = htonl(INADDR_ANY);
	return len;
}

static long local_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);

	if (getsockname(fd, (struct sockaddr *)&ss, &len))
		return -1;
	return ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
					      : ((struct sockaddr_in *)&ss)->sin_port);
}

static int new_socket(int fam)
{
	family = fam;
	current = socket(fam, SOCK_DGRAM, 0);
	return current;
}

static void hold_forever(void)
{
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	for (;;)
		pause();
}

static void do_pass(void)
{
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_DGRAM, 0, sv))
		return fail("socketpair");
	pid = fork();
	if (pid == 0) {
		char buf[CMSG_SPACE(sizeof(int))], byte;
		struct iovec iov = { &byte, 1 };
		struct msghdr msg = { .msg_iov = &iov,
				      .msg_iovlen = 1,
				      .msg_control = buf,
				      .msg_controllen = sizeof(buf) };

		close(sv[0]);
		if (current >= 0)
			close(current); /* hold only what arrives by SCM_RIGHTS */
		if (recvmsg(sv[1], &msg, 0) < 0)
			_exit(1);
		close(sv[1]);
		hold_forever();
	}
	char buf[CMSG_SPACE(sizeof(int))] = { 0 }, byte = 0;
	struct iovec iov = { &byte, 1 };
	struct msghdr msg = {
		.msg_iov = &iov, .msg_iovlen = 1, .msg_control = buf, .msg_controllen = sizeof(buf)
	};
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &current, sizeof(int));
	close(sv[1]);
	if (sendmsg(sv[0], &msg, 0) < 0)
		return fail("sendmsg SCM_RIGHTS");
	close(sv[0]);
	reply("pid %ld", pid);
}

static void do_storm(int n)
{
	int last = -1;

	for (int i = 0; i < n; i++) {
		struct sockaddr_storage ss;
		socklen_t len;
		int fd = socket(family, SOCK_DGRAM, 0);

		len = wildcard(&ss, 0);
		if (fd < 0 || bind(fd, (struct sockaddr *)&ss, len))
			return fail("storm bind");
		if (last >= 0)
			close(last);
		last = fd;
	}
	current = last;
	reply("port %ld", local_port(current));
}

static void do_send(int port, bool use_sendmsg)
{
	struct sockaddr_storage ss;
	socklen_t len = loopback(&ss, port);
	char byte = 0;
	ssize_t n;

	if (use_sendmsg) {
		struct iovec iov = { &byte, 1 };
		struct msghdr msg = {
			.msg_name = &ss, .msg_namelen = len, .msg_iov = &iov, .msg_iovlen = 1
		};

		n = sendmsg(current, &msg, 0);
	} else {
		n = sendto(current, &byte, 1, 0, (struct sockaddr *)&ss, len);
	}
	if (n < 0)
		return fail("send");
	reply("port %ld", local_port(current));
}

static void run(const char *cmd, const char *arg)
{
	struct sockaddr_storage ss;
	int num = arg ? atoi(arg) : 0;
	socklen_t len;

	if (!strcmp(cmd, "comm")) {
		prctl(PR_SET_NAME, arg);
		reply("ok", 0);
	} else if (!strcmp(cmd, "socket4") || !strcmp(cmd, "socket6")) {
		if (new_socket(cmd[6] == '6' ? AF_INET6 : AF_INET) < 0)
			return fail("socket");
		reply("ok", 0);
	} else if (!strcmp(cmd, "v6only")) {
		if (setsockopt(current, IPPROTO_IPV6, IPV6_V6ONLY, &num, sizeof(num)))
			return fail("IPV6_V6ONLY");
		reply("ok", 0);
	} else if (!strcmp(cmd, "bind")) {
		len = wildcard(&ss, num);
		if (bind(current, (struct sockaddr *)&ss, len))
			return fail("bind");
		reply("port %ld", local_port(current));
	} else if (!strcmp(cmd, "sendto") || !strcmp(cmd, "sendmsg")) {
		do_send(num, cmd[4] == 'm');
	} else if (!strcmp(cmd, "send")) {
		char byte = 0;

		if (send(current, &byte, 1, 0) < 0)
			return fail("send");
		reply("port %ld", local_port(current));
	} else if (!strcmp(cmd, "connect")) {
		len = loopback(&ss, num);
		if (connect(current, (struct sockaddr *)&ss, len))
			return fail("connect");
		reply("port %ld", local_port(current));
	} else if (!strcmp(cmd, "cookie")) {
		uint64_t cookie;
		socklen_t clen = sizeof(cookie);

		if (getsockopt(current, SOL_SOCKET, SO_COOKIE, &cookie, &clen))
			return fail("SO_COOKIE");
		reply("cookie %ld", (long)cookie);
	} else if (!strcmp(cmd, "close")) {
		close(current);
		current = -1;
		reply("ok", 0);
	} else if (!strcmp(cmd, "fork")) {
		pid_t pid = fork();

		if (pid == 0)
			hold_forever();
		reply("pid %ld", pid);
	} else if (!strcmp(cmd, "pass")) {
		do_pass();
	} else if (!strcmp(cmd, "netns")) {
		if (unshare(CLONE_NEWNET))
			return fail("unshare");
		reply("ok", 0);
	} else if (!strcmp(cmd, "storm")) {
		do_storm(num);
	} else if (!strcmp(cmd, "pid")) {
		reply("pid %ld", (long)getpid());
	} else if (!strcmp(cmd, "exit")) {
		exit(0);
	} else {
		errno = EINVAL;
		fail(cmd);
	}
}

int main(void)
{
	char line[256];

	/* Children we fork die with us, so a failed test leaves nothing behind. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	while (fgets(line, sizeof(line), stdin)) {
		char *save, *cmd = strtok_r(line, " \n", &save);
		char *arg = strtok_r(NULL, " \n", &save);

		if (cmd)
			run(cmd, arg);
	}
	return 0;
}
