// SPDX-License-Identifier: MIT
/*
 * The service event source: the records of the host's teredo-observer
 * service, read from its Varlink socket, feed this process's own state
 * machine exactly as the kernel's would. The service sends the socket set
 * first (the snapshot) and then every record; a resync reply from it, or a
 * lost connection, is a loss of records, after which the observer asks for
 * a snapshot and this source gets a fresh one, reconnecting if need be.
 *
 * The fd given out is an epoll set that outlives reconnections: the
 * stream's fd while connected, a retry timer while not, and an eventfd
 * readable while whole messages wait in the buffer. The stream comes
 * through a pipe the service hands over with its first reply where it
 * offers one (its write wakes us sooner than a socket's send), else on the
 * socket; a service that refuses the pipe, or one whose fd does not reach
 * us, is asked again without it.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "event_source.h"
#include "grow.h"
#include "last_error.h"
#include "selection.h"
#include "varlink.h"

/* A resync reply lists every Teredo socket: room for thousands. */
#define CLIENT_IN_LIMIT (1024 * 1024)
#define FIRST_REPLY_TIMEOUT_MS 5000
/* A port's news is a few hundred bytes: the buffer stays small (vbuf_consume frees big ones). */
#define STREAM_READ_BYTES 1024
#define RETRY_MIN_MS 100
#define RETRY_MAX_MS 1000

struct service_source {
	struct event_source base;
	struct teredo_selection *sel; /* its own copy */
	bool any_selection; /* the caller asked for nothing special: the service's will do */
	bool live;
	uint32_t netns;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int epoll_fd, sock, timer_fd, more_fd;
	int pipe_fd;   /* the stream's pipe from the service, -1: the socket carries it */
	int passed_fd; /* an fd that came with the first reply, until taken */
	bool fd_lost;  /* one came, but did not fit in our fd table (MSG_CTRUNC) */
	/* Watch() asked plainly: no pipe from this service (or none reaches us), or no events */
	bool plain_watch;
	bool more_signalled; /* more_fd is readable */
	unsigned int retry_ms;
	struct vbuf in;
	struct teredo_event *snap; /* the last resync's sockets, until taken */
	size_t n_snap, cap_snap;
	bool have_snap;
	bool lost;
};

/*
 * The service serves one selection, its own. A caller with the default
 * selection takes it (the host's administrator chose it); one that asked for
 * another gets the service only where the two are the same. The namespace
 * watched must be the caller's in every case.
 */
static int check_theirs(struct service_source *ss, const struct teredo_selection *theirs,
			uint32_t netns, struct json_object *sel)
{
	bool all = teredo_selection_all_netns(theirs);

	if (all != teredo_selection_all_netns(ss->sel) || (!all && netns != ss->netns))
		return set_last_error(-EXDEV,
				      "the service at %s watches network namespace %llu%s, not "
				      "this one (%u): run one in this namespace, or use "
				      "TEREDO_OBSERVER_SOURCE=kernel as root",
				      ss->path, (unsigned long long)netns,
				      all ? " and every other" : "", ss->netns);
	if (!ss->any_selection && !selection_same_clients(ss->sel, theirs))
		return set_last_error(-EXDEV,
				      "the service at %s watches another selection of the Teredo "
				      "client (%s): use the default selection, or "
				      "TEREDO_OBSERVER_SOURCE=kernel as root",
				      ss->path, json_object_to_json_string(sel));
	return 0;
}

static int check_selection(struct service_source *ss, struct json_object *sel)
{
	struct teredo_selection *theirs;
	uint32_t netns;
	int err = selection_from_json(sel, &theirs, &netns);

	if (err == -ENOMEM)
		return err;
	if (err)
		return set_last_error(-EPROTO,
				      "the service at %s sent no selection, or a malformed one: is "
				      "it teredo-observer serve?",
				      ss->path);
	err = check_theirs(ss, theirs, netns, sel);
	teredo_selection_free(theirs);
	return err;
}

static int keep_snapshot(struct service_source *ss, struct json_object *params)
{
	struct json_object *sockets;
	size_t n;

	if (!json_object_object_get_ex(params, "sockets", &sockets) ||
	    !json_object_is_type(sockets, json_type_array))
		return set_last_error(-EPROTO, "the service's state has no sockets list");
	n = json_object_array_length(sockets);
	if (grow_array(&ss->snap, &ss->cap_snap, n + 1, sizeof(*ss->snap)))
		return set_last_error(-ENOMEM, "out of memory reading the service's state");
	for (size_t i = 0; i < n; i++)
		if (varlink_record_parse(json_object_array_get_idx(sockets, i), &ss->snap[i]) ||
		    ss->snap[i].kind != TEREDO_EVENT_BOUND)
			return set_last_error(-EPROTO, "the service sent a malformed socket");
	ss->n_snap = n;
	ss->have_snap = true;
	return 0;
}

static void epoll_del(struct service_source *ss, int fd)
{
	/* Closing it would remove it too, but only once no dup of it is left. */
	epoll_ctl(ss->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
}

static int epoll_add(struct service_source *ss, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = (uint64_t)fd };

	if (epoll_ctl(ss->epoll_fd, EPOLL_CTL_ADD, fd, &ev))
		return set_last_error(-errno, "epoll_ctl: %s", strerror(errno));
	return 0;
}

static void arm_timer(struct service_source *ss, unsigned int ms)
{
	struct itimerspec its = { .it_value = { ms / 1000, (ms % 1000) * 1000000L } };

	timerfd_settime(ss->timer_fd, 0, &its, NULL);
}

/* more_fd readable while whole messages wait; touched only when that changes. */
static void set_more(struct service_source *ss)
{
	uint64_t v = 1;
	bool more = vbuf_message_len(&ss->in) != 0;

	if (more == ss->more_signalled)
		return;
	ss->more_signalled = more;
	if (more && write(ss->more_fd, &v, sizeof(v)) < 0)
		return; /* saturated: readable anyway */
	if (!more && read(ss->more_fd, &v, sizeof(v)) < 0)
		return; /* was not readable */
}

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* The fd the stream comes through. */
static int stream_fd(const struct service_source *ss)
{
	return ss->pipe_fd >= 0 ? ss->pipe_fd : ss->sock;
}

static void disconnect(struct service_source *ss)
{
	if (ss->sock >= 0)
		epoll_del(ss, stream_fd(ss));
	close_fd(&ss->pipe_fd);
	close_fd(&ss->passed_fd);
	close_fd(&ss->sock);
	ss->fd_lost = false;
	ss->in.len = 0;
	set_more(ss);
}

/* Read from the socket, keeping an fd that comes with the bytes (the stream's pipe). */
static ssize_t recv_keeping_fd(struct service_source *ss, char *buf, size_t len)
{
	char control[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { buf, len };
	struct msghdr msg = { .msg_iov = &iov,
			      .msg_iovlen = 1,
			      .msg_control = control,
			      .msg_controllen = sizeof(control) };
	struct cmsghdr *cm;
	ssize_t n = recvmsg(ss->sock, &msg, MSG_CMSG_CLOEXEC);

	if (n < 0)
		return n;
	ss->fd_lost |= (msg.msg_flags & MSG_CTRUNC) != 0;
	for (cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
		int fd;

		if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS ||
		    cm->cmsg_len != CMSG_LEN(sizeof(int)))
			continue;
		memcpy(&fd, CMSG_DATA(cm), sizeof(fd));
		close_fd(&ss->passed_fd); /* only the first reply's is wanted */
		ss->passed_fd = fd;
	}
	return n;
}

/* One whole message within the deadline, while connecting: its length, or an error. */
static ssize_t read_message_blocking(struct service_source *ss)
{
	char buf[4096];
	ssize_t len, n;
	struct pollfd pfd = { .fd = ss->sock, .events = POLLIN };

	while ((len = vbuf_message_len(&ss->in)) == 0) {
		if (poll(&pfd, 1, FIRST_REPLY_TIMEOUT_MS) <= 0)
			return set_last_error(-ETIMEDOUT,
					      "the service at %s did not answer "
					      "within %d ms",
					      ss->path, FIRST_REPLY_TIMEOUT_MS);
		n = recv_keeping_fd(ss, buf, sizeof(buf));
		if (n <= 0)
			return set_last_error(-ECONNRESET,
					      "the service at %s closed the "
					      "connection",
					      ss->path);
		if (vbuf_append(&ss->in, buf, n))
			return set_last_error(-EPROTO, "the service's reply is too large");
	}
	return len < 0 ? set_last_error(-EPROTO, "the service's reply is too large") : len;
}

/* What Watch was asked for did not come: ask again without parameters. */
#define WATCH_REFUSED (-EPROTONOSUPPORT)

/* A service from before the stream's pipe, or before events false, refuses it as unknown. */
static bool refuses_watch_parameter(const struct service_source *ss, struct json_object *msg)
{
	struct json_object *params;
	const char *error, *name;

	return ss->live && !ss->plain_watch && !varlink_get_string(msg, "error", &error) &&
	       !strcmp(error, "org.varlink.service.InvalidParameter") &&
	       json_object_object_get_ex(msg, "parameters", &params) &&
	       !varlink_get_string(params, "parameter", &name) &&
	       (!strcmp(name, "pipe") || !strcmp(name, "events"));
}

/* The reply's parameters (a new reference), or NULL with the error said. */
static struct json_object *reply_params(struct service_source *ss, size_t len, int *err)
{
	struct json_object *msg = json_tokener_parse(ss->in.data), *params = NULL, *error;

	vbuf_consume(&ss->in, len);
	if (!msg || !json_object_is_type(msg, json_type_object)) {
		*err = set_last_error(-EPROTO, "the service at %s sent a malformed message",
				      ss->path);
	} else if (refuses_watch_parameter(ss, msg)) {
		*err = WATCH_REFUSED;
	} else if (json_object_object_get_ex(msg, "error", &error)) {
		*err = set_last_error(-ECONNREFUSED, "the service at %s refused: %s", ss->path,
				      json_object_to_json_string(msg));
	} else if (!json_object_object_get_ex(msg, "parameters", &params) ||
		   !json_object_is_type(params, json_type_object)) {
		*err = set_last_error(-EPROTO, "the service's reply has no parameters");
		params = NULL;
	} else {
		json_object_get(params);
	}
	json_object_put(msg);
	return params;
}

/*
 * The port we pass on is what a firewall opens: it must come from the
 * kernel through root's observer, never from whoever managed to listen at
 * the path. Only root could have made the socket in /run/teredo-observer,
 * but the path can be another (TEREDO_OBSERVER_SOCKET), so the peer says who
 * it is: SO_PEERCRED, set by the kernel when the server listened.
 */
static int check_server_is_root(struct service_source *ss)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(ss->sock, SOL_SOCKET, SO_PEERCRED, &cred, &len) || cred.uid == 0)
		return 0; /* getsockopt fails only for a peer already gone: reading will say so */
	close(ss->sock);
	ss->sock = -1;
	return set_last_error(-EACCES,
			      "the service at %s runs as uid %u, not root: not trusted; "
			      "start teredo-observer.service",
			      ss->path, (unsigned)cred.uid);
}

static int connect_socket(struct service_source *ss)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int err;

	memcpy(sa.sun_path, ss->path, strlen(ss->path) + 1); /* length checked at open */
	ss->sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ss->sock < 0)
		return set_last_error(-errno, "socket: %s", strerror(errno));
	if (!connect(ss->sock, (struct sockaddr *)&sa, sizeof(sa)))
		return check_server_is_root(ss);
	err = -errno;
	close(ss->sock);
	ss->sock = -1;
	if (err == -ENOENT || err == -ECONNREFUSED)
		return set_last_error(SOURCE_UNREACHABLE,
				      "the teredo-observer service is not running (%s: %s): "
				      "start teredo-observer.service",
				      ss->path, strerror(-err));
	return set_last_error(err, "cannot connect to the teredo-observer service at %s: %s",
			      ss->path, strerror(-err));
}

/*
 * The records alone (events false): the observer's state machine makes the
 * port's changes from them, so the service's own text of each change would
 * only be read and dropped here.
 */
static int send_call(struct service_source *ss)
{
	const char *call = !ss->live ? "{\"method\":\"" VARLINK_INTERFACE ".GetState\"}"
			   : ss->plain_watch
				   ? "{\"method\":\"" VARLINK_INTERFACE ".Watch\",\"more\":true}"
				   : "{\"method\":\"" VARLINK_INTERFACE
				     ".Watch\",\"parameters\":{\"pipe\":true,\"events\":false},"
				     "\"more\":true}";
	size_t n = strlen(call) + 1;

	if (send(ss->sock, call, n, MSG_NOSIGNAL) != (ssize_t)n)
		return set_last_error(SOURCE_UNREACHABLE, "cannot call the service at %s: %s",
				      ss->path, strerror(errno));
	return 0;
}

/*
 * Where the stream comes from now: the pipe the first reply says it brought,
 * or the socket. An older service refuses the parameter (InvalidParameter);
 * a reply that says pipe but whose fd did not reach us (our fd table full)
 * or is not a pipe's read end: WATCH_REFUSED.
 */
static int take_stream(struct service_source *ss, struct json_object *params)
{
	struct json_object *v;
	struct stat st;
	int fd = ss->passed_fd;

	ss->passed_fd = -1;
	if (!json_object_object_get_ex(params, "pipe", &v) || !json_object_get_boolean(v)) {
		close_fd(&fd); /* none was offered: nothing but a pipe is taken */
		return 0;
	}
	if (fd < 0 || fstat(fd, &st) || !S_ISFIFO(st.st_mode) ||
	    (fcntl(fd, F_GETFL) & O_ACCMODE) != O_RDONLY) {
		close_fd(&fd);
		return WATCH_REFUSED;
	}
	ss->pipe_fd = fd;
	return 0;
}

/* Connect, call, and keep the state the first reply gives. */
static int connect_and_call(struct service_source *ss)
{
	struct json_object *params = NULL, *sel;
	ssize_t len;
	int err;

	disconnect(ss);
	err = connect_socket(ss);
	if (!err)
		err = send_call(ss);
	if (err)
		goto cleanup;
	len = read_message_blocking(ss);
	err = len < 0 ? (int)len : 0;
	if (!err)
		params = reply_params(ss, len, &err);
	if (err)
		goto cleanup;
	err = json_object_object_get_ex(params, "selection", &sel) ? check_selection(ss, sel)
								   : check_selection(ss, NULL);
	if (!err)
		err = keep_snapshot(ss, params);
	if (!err)
		err = take_stream(ss, params);
	if (!err && fcntl(stream_fd(ss), F_SETFL, O_NONBLOCK))
		err = set_last_error(-errno, "fcntl: %s", strerror(errno));
	if (!err)
		err = epoll_add(ss, stream_fd(ss));
cleanup:
	json_object_put(params);
	if (err)
		disconnect(ss);
	set_more(ss);
	return err;
}

static int reconnect(struct service_source *ss)
{
	int err = connect_and_call(ss);

	if (err != WATCH_REFUSED)
		return err;
	ss->plain_watch = true;
	return connect_and_call(ss);
}

/* What a reply in the stream says: a record to pass on, a resync, or nothing. */
static int stream_message(struct service_source *ss, size_t len, event_sink sink, void *ctx,
			  bool *stop)
{
	struct json_object *params, *v;
	struct teredo_event ev;
	int err = 0, got;

	/* Every record and event comes in the service's own form: read without json-c. */
	got = varlink_update_scan(ss->in.data, len, &ev);
	if (got != VARLINK_NOT_SCANNED) {
		vbuf_consume(&ss->in, len);
		return got ? sink(ctx, &ev) : 0;
	}
	params = reply_params(ss, len, &err);
	if (!params)
		return err;
	if (json_object_object_get_ex(params, "resync", &v) && json_object_get_boolean(v)) {
		/* The service rebuilt its state: ours is rebuilt from it before going on. */
		err = keep_snapshot(ss, params);
		ss->lost = true;
		*stop = true;
	} else if (json_object_object_get_ex(params, "record", &v)) {
		err = varlink_record_parse(v, &ev)
			      ? set_last_error(-EPROTO, "the service sent a malformed record")
			      : sink(ctx, &ev);
	}
	json_object_put(params);
	return err;
}

/* Straight into the stream's buffer: the event's bytes are copied once, by the kernel. */
static int read_available(struct service_source *ss)
{
	ssize_t room, n;
	char *at;

	while ((room = vbuf_room(&ss->in, STREAM_READ_BYTES, &at)) > 0) {
		n = read(stream_fd(ss), at, (size_t)room);
		if (n > 0) {
			vbuf_grew(&ss->in, (size_t)n);
			/* Short: the socket is empty for now (epoll says when it is not). */
			if (n < room)
				return 0;
			continue;
		}
		if (n < 0 && (errno == EAGAIN || errno == EINTR))
			return 0;
		/* The service went away (restart, or it cut us off as too slow). */
		return set_last_error(SOURCE_UNREACHABLE,
				      "lost the teredo-observer service at %s: reconnecting",
				      ss->path);
	}
	return room < 0 ? set_last_error(-ENOMEM, "out of memory reading the service") : 0;
}

static int service_fd(const struct event_source *src)
{
	return ((const struct service_source *)src)->epoll_fd;
}

static int service_drain(struct event_source *src, event_sink sink, void *ctx)
{
	struct service_source *ss = (struct service_source *)src;
	bool stop = false;
	uint64_t v;
	ssize_t len;
	int err = 0, n = 0;

	if (ss->sock < 0) {
		/* Waiting to reconnect: the observer's resync does it, now that the timer rang. */
		if (read(ss->timer_fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
			return set_last_error(-errno, "timerfd: %s", strerror(errno));
		return 0;
	}
	err = read_available(ss);
	while (!stop && (len = vbuf_message_len(&ss->in)) != 0) {
		int e = len < 0 ? set_last_error(-EPROTO, "the service sent an oversize message")
				: stream_message(ss, len, sink, ctx, &stop);

		if (e) {
			err = e;
			break;
		}
		n++;
	}
	if (err) {
		disconnect(ss);
		ss->lost = true;
		return err;
	}
	set_more(ss);
	return n;
}

static bool service_lost_records(struct event_source *src)
{
	struct service_source *ss = (struct service_source *)src;
	bool lost = ss->lost;

	ss->lost = false;
	return lost;
}

static int service_snapshot(struct event_source *src, event_sink sink, void *ctx)
{
	struct service_source *ss = (struct service_source *)src;
	int err = 0;

	if (!ss->have_snap) {
		err = reconnect(ss);
		if (err) {
			/* Try again a little later; until then the fd stays quiet. */
			arm_timer(ss, ss->retry_ms);
			ss->retry_ms =
				ss->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : ss->retry_ms * 2;
			return err == -ENOMEM ? err : SOURCE_UNREACHABLE;
		}
	}
	ss->retry_ms = RETRY_MIN_MS;
	ss->have_snap = false;
	for (size_t i = 0; i < ss->n_snap && !err; i++)
		err = sink(ctx, &ss->snap[i]);
	return err;
}

static void service_destroy(struct event_source *src)
{
	struct service_source *ss = (struct service_source *)src;

	if (!ss)
		return;
	disconnect(ss);
	if (ss->epoll_fd >= 0)
		close(ss->epoll_fd);
	if (ss->timer_fd >= 0)
		close(ss->timer_fd);
	if (ss->more_fd >= 0)
		close(ss->more_fd);
	vbuf_fini(&ss->in);
	free(ss->snap);
	teredo_selection_free(ss->sel);
	free(ss);
}

static const struct event_source_ops service_ops = {
	.fd = service_fd,
	.drain = service_drain,
	.lost_records = service_lost_records,
	.snapshot = service_snapshot,
	.destroy = service_destroy,
};

static int own_netns(uint32_t *ino)
{
	struct stat st;

	if (stat("/proc/self/ns/net", &st))
		return set_last_error(-errno, "cannot read /proc/self/ns/net: %s", strerror(errno));
	*ino = st.st_ino;
	return 0;
}

static int open_fds(struct service_source *ss)
{
	int err;

	ss->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	ss->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	ss->more_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ss->epoll_fd < 0 || ss->timer_fd < 0 || ss->more_fd < 0)
		return set_last_error(-errno, "cannot create epoll/timerfd/eventfd: %s",
				      strerror(errno));
	err = epoll_add(ss, ss->timer_fd);
	return err ? err : epoll_add(ss, ss->more_fd);
}

int service_source_open(const struct teredo_selection *sel, bool live, struct event_source **out)
{
	struct service_source *ss;
	const char *path = varlink_socket_path();
	int err;

	*out = NULL;
	if (strlen(path) >= sizeof(ss->path))
		return set_last_error(-ENAMETOOLONG, "TEREDO_OBSERVER_SOCKET is too long: %s",
				      path);
	ss = calloc(1, sizeof(*ss));
	if (!ss)
		return set_last_error(-ENOMEM, "out of memory");
	ss->base.ops = &service_ops;
	ss->base.ordered = true;
	ss->base.shared_epoll = true;
	ss->sock = ss->epoll_fd = ss->timer_fd = ss->more_fd = ss->pipe_fd = ss->passed_fd = -1;
	ss->live = live;
	ss->retry_ms = RETRY_MIN_MS;
	strcpy(ss->path, path);
	vbuf_init(&ss->in, CLIENT_IN_LIMIT);
	ss->sel = teredo_selection_copy(sel);
	ss->any_selection = ss->sel && selection_default_clients(ss->sel);
	err = ss->sel ? own_netns(&ss->netns) : -ENOMEM;
	if (!err)
		err = open_fds(ss);
	if (!err)
		err = reconnect(ss);
	if (err) {
		service_destroy(&ss->base);
		return err;
	}
	*out = &ss->base;
	return 0;
}
