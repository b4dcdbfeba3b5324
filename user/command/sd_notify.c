// SPDX-License-Identifier: MIT
/*
 * sd_notify(3) in a few lines, so that the command needs no libsystemd: the
 * protocol is a datagram of "KEY=VALUE" lines to the socket in $NOTIFY_SOCKET,
 * a path, or an abstract name written with a leading '@'.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "sd_notify.h"

static int notify_address(const char *path, struct sockaddr_un *sa, socklen_t *len)
{
	size_t n = strlen(path);

	/* systemd may also name a vsock; a unix socket is all a local service gets. */
	if ((path[0] != '/' && path[0] != '@') || n < 2)
		return -EAFNOSUPPORT;
	if (n >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, path, n);
	if (path[0] == '@')
		sa->sun_path[0] = '\0';
	*len = offsetof(struct sockaddr_un, sun_path) + n;
	return 0;
}

int sd_notify_send(const char *state)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa;
	socklen_t len;
	ssize_t sent;
	int fd, err;

	if (!path || !path[0])
		return 0;
	err = notify_address(path, &sa, &len);
	if (err)
		return err;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	sent = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, len);
	err = sent < 0 ? -errno : 0;
	close(fd);
	return err;
}
