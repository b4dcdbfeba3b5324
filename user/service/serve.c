// SPDX-License-Identifier: MIT
/*
 * teredo-observer serve: one observer for the host (its own BPF programs,
 * through the library like any client), and a Varlink server on a unix
 * socket that passes the state and every change to whoever connects. One
 * thread, one epoll loop; nothing ever blocks on a client: replies go to a
 * bounded buffer per connection, and a client whose buffer fills is cut off
 * (it reconnects and gets a fresh state), so a reader that stops slows
 * nobody else.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "firewall_job.h"
#include "grow.h"
#include "observer.h"
#include "serve.h"
#include "varlink_server.h"

struct server {
	struct teredo_observer *obs;
	struct vserver vs;
	const struct serve_config *cfg;
	int listen_fd, epoll_fd;
	struct vconn **conns;
	size_t n_conns, cap_conns;
	uint16_t reported_port; /* as last put in STATUS= */
	size_t reported_conns;
	struct firewall_job firewall;
	int firewall_fd;  /* the firewall's fd in the epoll set, -1: none */
	int start_status; /* the exit status when start() fails */
};

/* epoll data for the fds that are not connections. */
static char listen_tag, observer_tag, firewall_tag;

static int notify(const struct serve_config *cfg, const char *state)
{
	return cfg->notify ? cfg->notify(state) : 0;
}

const char *serve_socket_path(void)
{
	return varlink_socket_path();
}

const char *serve_default_socket_path(void)
{
	return VARLINK_DEFAULT_SOCKET;
}

static void say(const char *fmt, const char *arg, int err)
{
	fprintf(stderr, "teredo-observer serve: ");
	fprintf(stderr, fmt, arg);
	if (err)
		fprintf(stderr, ": %s", strerror(err));
	fputc('\n', stderr);
}

static int watch_fd(struct server *srv, int fd, uint32_t events, void *ptr, int op)
{
	struct epoll_event ev = { .events = events, .data.ptr = ptr };

	return epoll_ctl(srv->epoll_fd, op, fd, &ev) ? -errno : 0;
}

/*
 * Closing a unix socket with unread input resets the peer, which may then
 * lose the error reply that says why: what is waiting is read first (a
 * bounded amount; a peer still sending gets EPIPE once we are closed).
 */
static void discard_input(int fd)
{
	char buf[4096];

	for (int i = 0; i < 64; i++)
		if (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) <= 0)
			return;
}

static void close_conn(struct server *srv, size_t i)
{
	struct vconn *c = srv->conns[i];

	discard_input(c->fd);
	close(c->fd); /* leaves the epoll set with it */
	vconn_fini(c);
	free(c);
	srv->conns[i] = srv->conns[--srv->n_conns];
}

/* Send what is waiting; EPOLLOUT only while something still waits. 0, or -1: close it. */
static int flush_conn(struct server *srv, struct vconn *c)
{
	ssize_t n;

	while (c->out.len) {
		n = send(c->fd, c->out.data, c->out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0)
			return -1;
		vbuf_consume(&c->out, n);
	}
	if (!c->out.len && c->closing)
		return -1;
	return watch_fd(srv, c->fd, EPOLLIN | (c->out.len ? EPOLLOUT : 0), c, EPOLL_CTL_MOD) ? -1
											     : 0;
}

static size_t conns_of(const struct server *srv, uid_t uid)
{
	size_t n = 0;

	for (size_t i = 0; i < srv->n_conns; i++)
		n += srv->conns[i]->uid == uid;
	return n;
}

/* Over the limit: told why, in a reply, and closed. */
static void refuse(int fd, unsigned int limit)
{
	struct vconn c;

	vconn_init(&c, fd, 0);
	if (!vserver_error(&c, VARLINK_INTERFACE ".TooManyConnections", "limit",
			   json_object_new_int(limit)))
		(void)!send(fd, c.out.data, c.out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
	vconn_fini(&c);
	close(fd);
}

static void add_conn(struct server *srv, int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	struct vconn *c;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len)) {
		close(fd);
		return;
	}
	if (conns_of(srv, cred.uid) >= srv->cfg->max_per_user) {
		refuse(fd, srv->cfg->max_per_user);
		return;
	}
	c = malloc(sizeof(*c));
	if (!c || grow_array(&srv->conns, &srv->cap_conns, srv->n_conns + 1, sizeof(*srv->conns)) ||
	    watch_fd(srv, fd, EPOLLIN, c, EPOLL_CTL_ADD)) {
		free(c);
		close(fd);
		return;
	}
	vconn_init(c, fd, cred.uid);
	srv->conns[srv->n_conns++] = c;
}

static void accept_all(struct server *srv)
{
	int fd;

	while ((fd = accept4(srv->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC)) >= 0)
		add_conn(srv, fd);
	if (errno == EMFILE || errno == ENFILE)
		say("%s", "out of file descriptors: connections wait", errno);
}

/* Read what the client sent and answer it. 0, or -1: close it. */
static int serve_conn(struct server *srv, struct vconn *c, uint32_t events)
{
	char buf[4096];
	size_t room;
	ssize_t n = 1;
	bool eof = false;

	while ((events & (EPOLLIN | EPOLLHUP)) && !c->closing) {
		room = c->in.limit - c->in.len;
		if (!room)
			break; /* full: vserver_process says it is too large */
		n = recv(c->fd, buf, room < sizeof(buf) ? room : sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			eof = n == 0 || errno != EAGAIN;
			break;
		}
		if (vbuf_append(&c->in, buf, n))
			return -1;
	}
	if (vserver_process(&srv->vs, c) && !c->closing)
		return -1; /* its replies did not fit */
	if (eof)
		c->closing = true; /* answer what it asked, then close */
	return flush_conn(srv, c);
}

/*
 * Too slow: its buffer is full. What it has not begun to read is dropped,
 * the message it is in the middle of is kept whole, and the last word is
 * TooSlow: it reconnects and resyncs, and nobody ever waits for it.
 */
static void cut_off(struct vconn *c)
{
	const char *end = c->out.len ? memchr(c->out.data, 0, c->out.len) : NULL;

	c->out.len = end ? (size_t)(end - c->out.data) + 1 : 0;
	(void)vserver_error(c, VARLINK_INTERFACE ".TooSlow", NULL, NULL);
	c->closing = true;
}

/* Queue one stream reply to every watcher; a watcher it does not fit is cut off. */
static void broadcast(struct server *srv, struct json_object *params)
{
	struct json_object *msg = json_object_new_object();
	const char *text;
	size_t len;

	if (!msg || !params) {
		json_object_put(msg);
		json_object_put(params);
		return;
	}
	json_object_object_add(msg, "parameters", params);
	json_object_object_add(msg, "continues", json_object_new_boolean(true));
	text = json_object_to_json_string_length(msg, JSON_C_TO_STRING_PLAIN, &len);
	for (size_t i = 0; text && i < srv->n_conns; i++) {
		struct vconn *c = srv->conns[i];

		if (!c->watching || c->closing)
			continue;
		if (vbuf_append(&c->out, text, len + 1))
			cut_off(c);
	}
	json_object_put(msg);
}

static void tap_record(void *ctx, const struct teredo_event *ev)
{
	broadcast(ctx, vserver_record_reply(ev));
}

static void tap_replaced(void *ctx)
{
	struct server *srv = ctx;

	broadcast(srv, vserver_resync_reply(&srv->vs));
}

static void report_status(struct server *srv)
{
	uint16_t port = port_state_current_port(srv->vs.state);
	char state[96];

	if (port == srv->reported_port && srv->n_conns == srv->reported_conns)
		return;
	srv->reported_port = port;
	srv->reported_conns = srv->n_conns;
	snprintf(state, sizeof(state), "STATUS=Teredo port %u%s, %zu connections", port,
		 port ? "" : " (none)", srv->n_conns);
	(void)notify(srv->cfg, state);
}

/* Take in the kernel's news and pass it on: records (the tap), then port events. */
static int pump_observer(struct server *srv)
{
	struct teredo_port_event ev;
	int n;

	while ((n = teredo_observer_receive(srv->obs, &ev)) == 1) {
		/* The firewall first: it is what the port is waited for by. */
		if (firewall_job_set(&srv->firewall, ev.port)) {
			srv->start_status = 2;
			return -1;
		}
		if (ev.type != TEREDO_PORT_INITIAL)
			broadcast(srv, vserver_event_reply(&ev));
	}
	if (n < 0) {
		say("%s", teredo_observer_last_error(), 0);
		return -1;
	}
	return 0;
}

static void flush_all(struct server *srv)
{
	size_t i = 0;

	while (i < srv->n_conns) {
		if (flush_conn(srv, srv->conns[i]))
			close_conn(srv, i);
		else
			i++;
	}
}

static void handle(struct server *srv, const struct epoll_event *ev)
{
	if (ev->data.ptr == &listen_tag) {
		accept_all(srv);
		return;
	}
	for (size_t i = 0; i < srv->n_conns; i++)
		if (srv->conns[i] == ev->data.ptr) {
			if (serve_conn(srv, srv->conns[i], ev->events))
				close_conn(srv, i);
			return;
		}
}

/* The firewall's fd, which a reconnection changes, in the epoll set. */
static void watch_firewall(struct server *srv)
{
	short events;
	int fd = firewall_job_fd(&srv->firewall, &events);

	if (fd == srv->firewall_fd)
		return;
	if (srv->firewall_fd >= 0)
		(void)epoll_ctl(srv->epoll_fd, EPOLL_CTL_DEL, srv->firewall_fd, NULL);
	srv->firewall_fd = -1;
	if (fd >= 0 && !watch_fd(srv, fd, EPOLLIN, &firewall_tag, EPOLL_CTL_ADD))
		srv->firewall_fd = fd;
}

/* epoll's timeout: a second while a firewall change waits to be retried. */
static int firewall_timeout_ms(const struct server *srv)
{
	const struct timespec *t = firewall_job_retry_after(&srv->firewall);

	return t ? (int)(t->tv_sec * 1000 + t->tv_nsec / 1000000) : -1;
}

static int loop(struct server *srv, volatile sig_atomic_t *stop, const sigset_t *wait_mask)
{
	struct epoll_event evs[64];
	int n;

	while (!*stop) {
		report_status(srv);
		watch_firewall(srv);
		n = epoll_pwait(srv->epoll_fd, evs, 64, firewall_timeout_ms(srv), wait_mask);
		if (n < 0 && errno != EINTR) {
			say("%s", "epoll_pwait", errno);
			return 1;
		}
		firewall_job_service(&srv->firewall);
		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr == &firewall_tag)
				continue; /* read by firewall_job_service */
			if (evs[i].data.ptr != &observer_tag) {
				handle(srv, &evs[i]);
				continue;
			}
			if (pump_observer(srv))
				return 1;
			flush_all(srv);
		}
	}
	return 0;
}

/* A stale socket of an earlier run is replaced; anything else at the path is not. */
static int listen_at(struct server *srv, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		say("socket path too long: %s", path, 0);
		return -1;
	}
	strcpy(sa.sun_path, path);
	if (!lstat(path, &st) && S_ISSOCK(st.st_mode))
		unlink(path);
	srv->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (srv->listen_fd < 0 || bind(srv->listen_fd, (struct sockaddr *)&sa, sizeof(sa))) {
		say("cannot listen on %s (does its directory exist? the unit's "
		    "RuntimeDirectory makes it)",
		    path, errno);
		if (srv->listen_fd >= 0)
			close(srv->listen_fd);
		srv->listen_fd = -1; /* what is at path is not ours to remove */
		return -1;
	}
	/*
	 * Everyone may connect: on Windows any program may ask for the Teredo
	 * port, which is no secret. What protects the service is the limits.
	 */
	if (chmod(path, 0666) || listen(srv->listen_fd, SOMAXCONN)) {
		say("cannot listen on %s", path, errno);
		return -1;
	}
	return 0;
}

/* A thousand clients need a thousand fds: take what the hard limit allows. */
static void raise_fd_limit(void)
{
	struct rlimit rl;

	if (!getrlimit(RLIMIT_NOFILE, &rl) && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
}

static int start(struct server *srv, const struct teredo_options *opts)
{
	struct observer_tap tap = { tap_record, tap_replaced, srv };
	struct stat st;

	if (observer_new(opts, SOURCE_KERNEL, &srv->obs)) {
		say("%s", teredo_observer_last_error(), 0);
		return -1;
	}
	srv->firewall.zone = srv->cfg->firewalld_zone;
	if (firewall_job_open(&srv->firewall)) {
		srv->start_status = 2; /* a configuration to fix: no zone, no firewalld */
		return -1;
	}
	if (stat("/proc/self/ns/net", &st)) {
		say("%s", "cannot read /proc/self/ns/net", errno);
		return -1;
	}
	srv->vs = (struct vserver){ observer_state(srv->obs), opts, st.st_ino };
	observer_set_tap(srv->obs, &tap);
	srv->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (srv->epoll_fd < 0 || listen_at(srv, srv->cfg->socket_path))
		return -1;
	if (watch_fd(srv, srv->listen_fd, EPOLLIN, &listen_tag, EPOLL_CTL_ADD) ||
	    watch_fd(srv, teredo_observer_get_fd(srv->obs), EPOLLIN, &observer_tag,
		     EPOLL_CTL_ADD)) {
		say("%s", "epoll_ctl", errno);
		return -1;
	}
	/* The initial event is the state new watchers get anyway. */
	return pump_observer(srv);
}

int serve_run(const struct teredo_options *opts, const struct serve_config *cfg,
	      volatile sig_atomic_t *stop, const sigset_t *wait_mask)
{
	struct server srv = {
		.cfg = cfg, .listen_fd = -1, .epoll_fd = -1, .firewall_fd = -1, .start_status = 1
	};
	int status = 1, err;

	raise_fd_limit();
	if (start(&srv, opts)) {
		status = srv.start_status;
		goto cleanup;
	}
	/* Type=notify: ready once the socket takes connections and the state is built. */
	err = notify(srv.cfg, "READY=1");
	if (err) {
		say("cannot tell systemd we are ready ($NOTIFY_SOCKET)%s", "", -err);
		goto cleanup;
	}
	status = loop(&srv, stop, wait_mask);
cleanup:
	while (srv.n_conns)
		close_conn(&srv, 0);
	free(srv.conns);
	if (srv.listen_fd >= 0) {
		close(srv.listen_fd);
		unlink(cfg->socket_path);
	}
	if (srv.epoll_fd >= 0)
		close(srv.epoll_fd);
	/* Fail closed: the port goes with us (unless we die by SIGKILL). */
	if (firewall_job_close(&srv.firewall) && status == 0)
		status = 1;
	teredo_observer_free(srv.obs);
	return status;
}
