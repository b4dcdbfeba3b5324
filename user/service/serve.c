// SPDX-License-Identifier: MIT
/*
 * teredo-observer serve: one observer for the host (its own BPF programs,
 * through the library like any client), and a Varlink server on a unix
 * socket that passes the state and every change to whoever connects. One
 * thread, one epoll loop; nothing ever blocks on a client: replies go to a
 * bounded buffer per connection, and a client whose buffer fills is cut off
 * (it reconnects and gets a fresh state), so a reader that stops slows
 * nobody else.
 *
 * What one user can make it do is bounded per turn of the loop: a batch of
 * accepts (then the connections already ready get theirs), a few calls per
 * connection (the rest wait for the next turn, and nothing more is read from
 * it meanwhile), one cheap canned reply to a refused connection. The
 * kernel's news is passed on before the turn and after each connection's
 * share, and GetState's reply is encoded once per state, so that calls
 * pipelined on many connections delay a watcher by one connection's share
 * at most. A closing connection is only written to, and dropped when its
 * grace time is over.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <fcntl.h>
#include <libgen.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include "firewall_job.h"
#include "grow.h"
#include "observer.h"
#include "serve.h"
#include "varlink_server.h"

/* Accepts per turn: a stream of connections cannot keep the loop from the others. */
#define ACCEPT_BATCH 16
/*
 * A closing connection's time to take its last replies (counted again from
 * each read it makes) before it is dropped without them.
 */
#define CLOSING_GRACE_MS 10000
/* How long a changed STATUS= for systemd waits (report_status). */
#define STATUS_DELAY_MS 10
/* Buffer memory freed by closed connections that is given back to the system. */
#define TRIM_AFTER_BYTES (256 * 1024)
/*
 * Stream pipes one uid may hold; its other connections stream on their
 * socket. A client may grow its pipe (F_SETPIPE_SZ on its read end, up to
 * pipe-max-size) and so take from root's share of pipe memory
 * (pipe-user-pages-soft) until its next update, when it is cut off: this
 * bounds how much one user can take meanwhile.
 */
#define CARRIERS_PER_UID 8

/* What one uid's connections took of a turn, together. */
struct uid_share {
	uid_t uid;
	unsigned long turn; /* calls counts for this turn */
	unsigned int calls;
};

/* The socket file we made, so that we remove that one and nothing else. */
struct socket_file {
	const char *path;
	dev_t dev;
	ino_t ino;
};

struct server {
	struct teredo_observer *obs;
	struct vserver vs;
	const struct serve_config *cfg;
	int listen_fd;
	int epoll_fd; /* the observer's own set: its ring buffer waited on with ours */
	struct vconn **conns;
	size_t n_conns, cap_conns;
	struct uid_share *shares; /* one per uid that ever called: a host has few */
	size_t n_shares, cap_shares;
	uint16_t reported_port; /* as last put in STATUS= */
	size_t reported_conns;
	long long status_due_ms; /* a changed STATUS= is sent then (CLOCK_MONOTONIC), 0: none */
	struct firewall_job firewall;
	int firewall_fd;	      /* the firewall's fd in the epoll set, -1: none */
	int start_status;	      /* the exit status when start() fails */
	struct socket_file sock_file; /* path NULL: none of ours to remove */
	unsigned long turn;	      /* of the loop, counted */
	unsigned long broadcasts;     /* stream replies queued, counted */
	bool accept_paused;	      /* out of fds: until a connection closes */
	size_t freed_bytes;	      /* by closed connections since the last trim */
	char refusal[160];	      /* TooManyConnections, with its NUL */
	size_t refusal_len;
};

/* epoll data for the fds that are not connections. */
static char listen_tag, firewall_tag;

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

static long long now_ms(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec * 1000LL + t.tv_nsec / 1000000;
}

/* A connection's epoll events, changed only when they change. */
static int watch_conn(struct server *srv, struct vconn *c, uint32_t events)
{
	if (c->epoll_events == events)
		return 0;
	c->epoll_events = events;
	return watch_fd(srv, c->fd, events, c, EPOLL_CTL_MOD);
}

/* Out of fds, the listening socket stays readable: unwatched until one closes. */
static void pause_accepting(struct server *srv, bool pause)
{
	if (srv->accept_paused == pause)
		return;
	srv->accept_paused = pause;
	(void)watch_fd(srv, srv->listen_fd, pause ? 0 : EPOLLIN, &listen_tag, EPOLL_CTL_MOD);
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

static void close_carrier(struct vconn *c)
{
	if (c->carrier_fd >= 0)
		close(c->carrier_fd); /* leaves the epoll set with it: never dup'd */
	if (c->carrier_pass >= 0)
		close(c->carrier_pass);
	c->carrier_fd = c->carrier_pass = -1;
	c->to_socket = 0;
}

static void close_conn(struct server *srv, size_t i)
{
	struct vconn *c = srv->conns[i];

	discard_input(c->fd);
	close(c->fd); /* leaves the epoll set with it */
	close_carrier(c);
	srv->freed_bytes += c->in.cap + c->out.cap;
	pause_accepting(srv, false);
	vconn_fini(c);
	free(c);
	srv->conns[i] = srv->conns[--srv->n_conns];
}

/* The stream goes to the pipe now: the Watch reply and all before it are on the socket. */
static bool to_pipe(const struct vconn *c)
{
	return c->carrier_fd >= 0 && !c->to_socket;
}

/*
 * The pipe's read end goes with the first byte of the Watch reply, as
 * systemd's Varlink passes fds; ours is closed once it has gone.
 */
static ssize_t send_passing(struct vconn *c, size_t len)
{
	char control[CMSG_SPACE(sizeof(int))] = { 0 };
	struct iovec iov = { c->out.data, len };
	struct msghdr msg = { .msg_iov = &iov,
			      .msg_iovlen = 1,
			      .msg_control = control,
			      .msg_controllen = sizeof(control) };
	struct cmsghdr *cm = CMSG_FIRSTHDR(&msg);
	ssize_t n;

	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(cm), &c->carrier_pass, sizeof(int));
	n = sendmsg(c->fd, &msg, MSG_NOSIGNAL | MSG_DONTWAIT);
	if (n > 0) {
		close(c->carrier_pass);
		c->carrier_pass = -1;
	}
	return n;
}

/* n bytes of out went to the socket: the hand-over to the pipe is that much nearer. */
static ssize_t sent_to_socket(struct vconn *c, ssize_t n)
{
	if (n > 0 && c->to_socket) {
		c->pass_at -= (size_t)n < c->pass_at ? (size_t)n : c->pass_at;
		c->to_socket -= n;
	}
	return n;
}

/* Some of out to the socket, up to the Watch reply's end while a pipe takes over. */
static ssize_t send_socket(struct vconn *c)
{
	size_t len = c->to_socket ? c->to_socket : c->out.len;
	ssize_t n;

	if (c->carrier_pass >= 0 && c->pass_at)
		len = c->pass_at; /* earlier replies first, without the fd */
	if (c->carrier_pass >= 0 && !c->pass_at) {
		n = send_passing(c, len);
		if (n >= 0 || errno == EAGAIN || errno == EINTR)
			return sent_to_socket(c, n);
		/*
		 * The fd cannot go (ETOOMANYREFS: too many of root's in flight):
		 * the reply goes alone, the socket keeps the stream, and the client,
		 * told of a pipe that did not come, asks again without one.
		 */
		close_carrier(c);
		len = c->out.len;
	}
	return sent_to_socket(c, send(c->fd, c->out.data, len, MSG_NOSIGNAL | MSG_DONTWAIT));
}

/* Write what waits; 0, or -1: close it (the reader went, or it grew its pipe). */
static int write_out(struct vconn *c)
{
	bool piped = false;
	ssize_t n;

	while (c->out.len) {
		piped |= to_pipe(c);
		n = to_pipe(c) ? write(c->carrier_fd, c->out.data, c->out.len) : send_socket(c);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		if (n <= 0)
			return -1;
		vbuf_consume(&c->out, n);
		if (c->closing)
			c->drop_after_ms = 0; /* it reads: its grace starts again */
	}
	return piped && fcntl(c->carrier_fd, F_GETPIPE_SZ) > c->carrier_size ? -1 : 0;
}

/* The pipe's epoll events: EPOLLOUT while out waits for it (EPOLLERR comes anyway). */
static int watch_carrier(struct server *srv, struct vconn *c)
{
	uint32_t events = to_pipe(c) && c->out.len ? EPOLLOUT : 0;
	struct epoll_event ev = { .events = events, .data.ptr = &c->carrier_fd };

	if (c->carrier_fd < 0 || c->carrier_events == events)
		return 0;
	c->carrier_events = events;
	return epoll_ctl(srv->epoll_fd, EPOLL_CTL_MOD, c->carrier_fd, &ev) ? -1 : 0;
}

/*
 * Send what is waiting; EPOLLOUT only while something still waits, EPOLLIN
 * only while its calls are wanted: a closing connection is not read (a peer
 * that shut down its side stays readable for ever), and gets a deadline.
 * 0, or -1: close it.
 */
static int flush_conn(struct server *srv, struct vconn *c)
{
	if (write_out(c))
		return -1;
	if (!c->out.len && c->closing)
		return -1;
	if (c->closing && !c->drop_after_ms)
		c->drop_after_ms = now_ms() + CLOSING_GRACE_MS;
	if (watch_carrier(srv, c))
		return -1;
	return watch_conn(srv, c,
			  (c->closing || c->pending ? 0 : EPOLLIN) |
				  (c->out.len && !to_pipe(c) ? EPOLLOUT : 0))
		       ? -1
		       : 0;
}

static size_t conns_of(const struct server *srv, uid_t uid)
{
	size_t n = 0;

	for (size_t i = 0; i < srv->n_conns; i++)
		n += srv->conns[i]->uid == uid;
	return n;
}

static size_t carriers_of(const struct server *srv, uid_t uid)
{
	size_t n = 0;

	for (size_t i = 0; i < srv->n_conns; i++)
		n += srv->conns[i]->uid == uid && srv->conns[i]->carrier_fd >= 0;
	return n;
}

/*
 * A pipe for c's stream (vserver's open_carrier): a pipe's write wakes its
 * reader for less than a unix socket's send (no socket buffer, no
 * credentials), and that wake-up is most of the way from the kernel to a
 * client's callback. The pipe is ours: the client gets only its read end,
 * whose file is not the one we write through (our O_NONBLOCK is ours
 * alone); closing it ends the connection (EPOLLERR), growing it is found at
 * the next write and ends it too. -1: refused, the socket carries the stream.
 */
static int open_carrier(void *ctx, struct vconn *c)
{
	struct server *srv = ctx;
	struct epoll_event ev = { .events = 0, .data.ptr = &c->carrier_fd };
	int fds[2];

	if (carriers_of(srv, c->uid) >= CARRIERS_PER_UID || pipe2(fds, O_NONBLOCK | O_CLOEXEC))
		return -1;
	c->carrier_size = fcntl(fds[1], F_GETPIPE_SZ);
	/* Its end blocks, as a pipe's does; ours never does. */
	if (c->carrier_size <= 0 || fcntl(fds[0], F_SETFL, 0) ||
	    epoll_ctl(srv->epoll_fd, EPOLL_CTL_ADD, fds[1], &ev)) {
		close(fds[0]);
		close(fds[1]);
		return -1;
	}
	c->carrier_pass = fds[0];
	c->carrier_fd = fds[1];
	c->carrier_events = 0;
	return 0;
}

/* Over the limit: told why, in a reply made once at start, and closed. */
static void refuse(const struct server *srv, int fd)
{
	(void)!send(fd, srv->refusal, srv->refusal_len, MSG_NOSIGNAL | MSG_DONTWAIT);
	close(fd);
}

static int make_refusal(struct server *srv)
{
	struct vconn c;
	int err;

	vconn_init(&c, -1, 0);
	err = vserver_error(&c, VARLINK_INTERFACE ".TooManyConnections", "limit",
			    json_object_new_int(srv->cfg->max_per_user));
	if (!err && c.out.len <= sizeof(srv->refusal)) {
		memcpy(srv->refusal, c.out.data, c.out.len);
		srv->refusal_len = c.out.len;
	}
	vconn_fini(&c);
	return srv->refusal_len ? 0 : -1;
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
		refuse(srv, fd);
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
	c->epoll_events = EPOLLIN;
	srv->conns[srv->n_conns++] = c;
}

/* A batch: the listening socket stays ready, and the next turn takes more. */
static void accept_batch(struct server *srv)
{
	for (int i = 0; i < ACCEPT_BATCH; i++) {
		int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd >= 0) {
			add_conn(srv, fd);
			continue;
		}
		if (errno == EMFILE || errno == ENFILE) {
			say("%s", "out of file descriptors: connections wait", errno);
			pause_accepting(srv, true);
		}
		return;
	}
}

/* What the client sent, up to the input's limit. 0, 1 at its end, -1: close it. */
static int read_calls(struct vconn *c)
{
	char buf[4096];
	size_t room;
	ssize_t n;

	while ((room = c->in.limit - c->in.len)) {
		n = recv(c->fd, buf, room < sizeof(buf) ? room : sizeof(buf), MSG_DONTWAIT);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return 0;
		if (n <= 0)
			return 1;
		if (vbuf_append(&c->in, buf, n))
			return -1;
	}
	return 0; /* full: vserver_process says it is too large */
}

/* The uid's share of this turn, or NULL (no memory: then only the connection's budget holds). */
static struct uid_share *share_of(struct server *srv, uid_t uid)
{
	struct uid_share *s = NULL;

	for (size_t i = 0; i < srv->n_shares && !s; i++)
		if (srv->shares[i].uid == uid)
			s = &srv->shares[i];
	if (!s) {
		if (grow_array(&srv->shares, &srv->cap_shares, srv->n_shares + 1,
			       sizeof(*srv->shares)))
			return NULL;
		s = &srv->shares[srv->n_shares++];
		*s = (struct uid_share){ .uid = uid };
	}
	if (s->turn != srv->turn)
		*s = (struct uid_share){ .uid = uid, .turn = srv->turn };
	return s;
}

/* What the connection may have answered this turn: its own budget, and what its uid has left. */
static unsigned int calls_allowed(const struct uid_share *share)
{
	unsigned int left = share ? UID_CALLS_PER_TURN - share->calls : VCONN_CALLS_PER_TURN;

	return left < VCONN_CALLS_PER_TURN ? left : VCONN_CALLS_PER_TURN;
}

/*
 * Answer a turn's worth of its calls; read more only once none is waiting,
 * so a pipelining client is held back by its own socket. 0, or -1: close it.
 */
static int serve_conn(struct server *srv, struct vconn *c, uint32_t events)
{
	struct uid_share *share = share_of(srv, c->uid);
	int got, answered;

	c->turn = srv->turn;
	if (!c->closing && !c->hung_up && !vbuf_message_len(&c->in) &&
	    (events & (EPOLLIN | EPOLLHUP))) {
		got = read_calls(c);
		if (got < 0)
			return -1;
		c->hung_up = got;
	}
	answered = vserver_process(&srv->vs, c, calls_allowed(share));
	if (answered < 0 && !c->closing)
		return -1; /* its replies did not fit */
	if (share && answered > 0)
		share->calls += answered;
	c->pending = !c->closing && vbuf_message_len(&c->in);
	if (c->hung_up && !c->pending)
		c->closing = true; /* answered what it asked: close */
	return flush_conn(srv, c);
}

/*
 * Too slow: its buffer is full. What it has not begun to read is dropped,
 * the message it is in the middle of is kept whole, and the last word is
 * TooSlow: it reconnects and resyncs, and nobody ever waits for it.
 */
static void cut_off(struct vconn *c)
{
	const char *end;

	/* Its Watch reply not even taken: the pipe is dropped, the last word is the socket's. */
	if (c->to_socket)
		close_carrier(c);
	end = c->out.len ? memchr(c->out.data, 0, c->out.len) : NULL;

	c->out.len = end ? (size_t)(end - c->out.data) + 1 : 0;
	(void)vserver_error(c, VARLINK_INTERFACE ".TooSlow", NULL, NULL);
	c->closing = true;
}

/* A watcher the stream's replies go to: port changes (is_event) only where it wants them. */
static bool streams_to(const struct vconn *c, bool is_event)
{
	return c->watching && !c->closing && !(is_event && c->records_only);
}

/*
 * Queue one stream reply (len bytes, its NUL included) to every watcher
 * that takes it; a watcher it does not fit is cut off.
 */
static void broadcast_text(struct server *srv, const char *text, size_t len, bool is_event)
{
	for (size_t i = 0; i < srv->n_conns; i++) {
		struct vconn *c = srv->conns[i];

		if (!streams_to(c, is_event))
			continue;
		if (vbuf_append(&c->out, text, len))
			cut_off(c);
	}
	srv->broadcasts++;
}

/* A stream reply with these parameters (taken). */
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
	if (text)
		broadcast_text(srv, text, len + 1, false);
	json_object_put(msg);
}

/* Each record and event is written straight as text: no JSON objects per event. */
static void tap_record(void *ctx, const struct teredo_event *ev)
{
	char text[VARLINK_UPDATE_MAX];
	size_t len = varlink_record_reply_text(ev, text);

	if (len)
		broadcast_text(ctx, text, len, false);
}

static void tap_replaced(void *ctx)
{
	struct server *srv = ctx;

	broadcast(srv, vserver_resync_reply(&srv->vs));
}

/*
 * STATUS= follows a change after STATUS_DELAY_MS: sent at once, it kept the
 * CPU from the watcher that the same change had just woken (sd_notify's
 * socket, sendto and close took 15-20 us before the loop blocked, and under
 * systemd it wakes PID 1 as well); a burst of changes is one STATUS=.
 * The milliseconds until it is due, or -1: nothing to say.
 */
static long long report_status(struct server *srv)
{
	uint16_t port = port_state_current_port(srv->vs.state);
	long long now;
	char state[96];

	if (port == srv->reported_port && srv->n_conns == srv->reported_conns) {
		srv->status_due_ms = 0; /* changed and back: nothing to say */
		return -1;
	}
	now = now_ms();
	if (!srv->status_due_ms)
		srv->status_due_ms = now + STATUS_DELAY_MS;
	if (now < srv->status_due_ms)
		return srv->status_due_ms - now;
	srv->status_due_ms = 0;
	srv->reported_port = port;
	srv->reported_conns = srv->n_conns;
	snprintf(state, sizeof(state), "STATUS=Teredo port %u%s, %zu connections", port,
		 port ? "" : " (none)", srv->n_conns);
	(void)notify(srv->cfg, state);
	return -1;
}

static bool someone_wants_events(const struct server *srv)
{
	for (size_t i = 0; i < srv->n_conns; i++)
		if (streams_to(srv->conns[i], true))
			return true;
	return false;
}

/*
 * Written only when a watcher takes it: the library's own client makes the
 * port's changes from the records with its own state machine.
 */
static void broadcast_event(struct server *srv, const struct teredo_port_event *ev)
{
	char text[VARLINK_UPDATE_MAX];
	size_t len;

	if (!someone_wants_events(srv))
		return;
	len = varlink_event_reply_text(ev, text);
	if (len)
		broadcast_text(srv, text, len, true);
}

static void flush_all(struct server *srv);

/*
 * Take in the kernel's news and pass it on: records (the tap), then port
 * events. The first change goes out at once, before the ring buffer is
 * read again: a watcher woken by it runs on the other core meanwhile.
 */
static int pump_observer(struct server *srv)
{
	unsigned long before = srv->broadcasts;
	struct teredo_port_event ev;
	int n;

	while ((n = teredo_observer_receive(srv->obs, &ev)) == 1) {
		/* The firewall first: it is what the port is waited for by. */
		if (firewall_job_set(&srv->firewall, &ev)) {
			srv->start_status = 2;
			return -1;
		}
		if (ev.type != TEREDO_PORT_INITIAL)
			broadcast_event(srv, &ev);
		if (before != srv->broadcasts && !observer_has_queued(srv->obs)) {
			flush_all(srv);
			before = srv->broadcasts;
		}
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

/*
 * The kernel's news, passed on and sent at once: looked for before the turn
 * and after each connection's share of it, so that a watcher waits for at
 * most one connection's calls, however many connections pipeline theirs.
 * An empty ring buffer costs no system call. 1: news sent, 0: none, -1: fail.
 */
static int pass_news(struct server *srv)
{
	unsigned long before = srv->broadcasts;

	if (pump_observer(srv))
		return -1;
	if (srv->broadcasts == before)
		return 0;
	flush_all(srv);
	return 1;
}

static void handle(struct server *srv, const struct epoll_event *ev)
{
	if (ev->data.ptr == &listen_tag) {
		accept_batch(srv);
		return;
	}
	/* Searched for: one closed earlier in this turn is no longer there. */
	for (size_t i = 0; i < srv->n_conns; i++) {
		struct vconn *c = srv->conns[i];

		if (c == ev->data.ptr) {
			if (c->turn != srv->turn && serve_conn(srv, c, ev->events))
				close_conn(srv, i);
			return;
		}
		/* Its pipe: room again, or its reader gone (EPOLLERR). */
		if (&c->carrier_fd == ev->data.ptr) {
			if ((ev->events & (EPOLLERR | EPOLLHUP)) || flush_conn(srv, c))
				close_conn(srv, i);
			return;
		}
	}
}

/*
 * The calls left waiting by the budget of earlier turns, the news between
 * each connection's. A flush of news may close any connection, so the scan
 * starts again after one (those served this turn are passed over). -1: fail.
 */
static int serve_pending(struct server *srv)
{
	size_t i = 0;
	int news;

	while (i < srv->n_conns) {
		struct vconn *c = srv->conns[i];

		if (!c->pending || c->turn == srv->turn) {
			i++;
			continue;
		}
		if (serve_conn(srv, c, 0))
			close_conn(srv, i); /* another is at i now */
		news = pass_news(srv);
		if (news < 0)
			return -1;
		if (news)
			i = 0;
	}
	return 0;
}

static bool any_pending(const struct server *srv)
{
	for (size_t i = 0; i < srv->n_conns; i++)
		if (srv->conns[i]->pending)
			return true;
	return false;
}

/* Closing connections whose grace time is over; the next deadline, or -1. */
static long long drop_overdue(struct server *srv)
{
	long long now = now_ms(), next = -1;
	size_t i = 0;

	while (i < srv->n_conns) {
		long long t = srv->conns[i]->drop_after_ms;

		if (t && t <= now) {
			close_conn(srv, i);
			continue;
		}
		if (t && (next < 0 || t < next))
			next = t;
		i++;
	}
	return next < 0 ? -1 : next - now;
}

/* Memory the closed connections held goes back to the system, not only to malloc. */
static void give_back_memory(struct server *srv)
{
	if (srv->freed_bytes < TRIM_AFTER_BYTES)
		return;
	srv->freed_bytes = 0;
	malloc_trim(0);
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

/* The shorter of two epoll timeouts, -1 meaning none. */
static int sooner(long long a, long long b)
{
	if (a < 0)
		return (int)b;
	return (int)(b < 0 || a < b ? a : b);
}

static int loop(struct server *srv, volatile sig_atomic_t *stop, const sigset_t *wait_mask)
{
	struct epoll_event evs[64];
	bool more = false;
	long long status_ms;
	int n, timeout;

	while (!*stop) {
		status_ms = report_status(srv);
		watch_firewall(srv);
		timeout = more ? 0
			       : sooner(sooner(firewall_timeout_ms(srv), drop_overdue(srv)),
					status_ms);
		n = epoll_pwait(srv->epoll_fd, evs, 64, timeout, wait_mask);
		if (n < 0 && errno != EINTR) {
			say("%s", "epoll_pwait", errno);
			return 1;
		}
		srv->turn++;
		firewall_job_service(&srv->firewall);
		/* The kernel's news first: no client's calls delay the watchers. */
		if (pass_news(srv) < 0)
			return 1;
		for (int i = 0; i < n; i++) {
			/* The observer's own fds (data.u64 their numbers) were read above. */
			if (evs[i].data.ptr == &firewall_tag)
				continue;
			handle(srv, &evs[i]);
			if (pass_news(srv) < 0)
				return 1;
		}
		if (serve_pending(srv))
			return 1;
		more = any_pending(srv);
		(void)drop_overdue(srv);
		give_back_memory(srv);
	}
	return 0;
}

/*
 * The socket file, made 0666 by bind itself (the umask): a chmod after bind
 * would follow whatever link was put at the path meanwhile. What is there
 * after bind is ours only if it is a socket owned by us.
 */
static int bind_socket_file(struct server *srv, const struct sockaddr_un *sa)
{
	mode_t old = umask(0111);
	int err = bind(srv->listen_fd, (const struct sockaddr *)sa, sizeof(*sa)) ? errno : 0;
	struct stat st;

	umask(old);
	if (err)
		return err;
	if (lstat(sa->sun_path, &st))
		return errno;
	if (!S_ISSOCK(st.st_mode) || st.st_uid != geteuid())
		return EEXIST;
	srv->sock_file = (struct socket_file){ srv->cfg->socket_path, st.st_dev, st.st_ino };
	return 0;
}

/* At exit: our socket file, never what someone put in its place. */
static void remove_socket_file(const struct socket_file *f)
{
	struct stat st;

	if (f->path && !lstat(f->path, &st) && S_ISSOCK(st.st_mode) && st.st_dev == f->dev &&
	    st.st_ino == f->ino)
		unlink(f->path);
}

/*
 * Socket activation: systemd passes the socket of teredo-observer.socket as
 * fd 3 (sd_listen_fds). It is systemd's: we neither bind nor remove it.
 * Returns 1 when taken, 0 when none was passed, -1 on a wrong one.
 */
static int take_systemd_socket(struct server *srv, const char *path)
{
	int n = sd_listen_fds(1);

	if (n <= 0)
		return 0;
	if (n != 1 || sd_is_socket_unix(SD_LISTEN_FDS_START, SOCK_STREAM, 1, path, 0) <= 0) {
		say("systemd passed %s, not one listening stream socket at the socket path "
		    "(check the unit's ListenStream= and --socket)",
		    "a socket", 0);
		return -1;
	}
	srv->listen_fd = SD_LISTEN_FDS_START;
	if (fcntl(srv->listen_fd, F_SETFL, fcntl(srv->listen_fd, F_GETFL) | O_NONBLOCK) ||
	    fcntl(srv->listen_fd, F_SETFD, FD_CLOEXEC)) {
		say("%s", "fcntl on systemd's socket", errno);
		return -1;
	}
	return 1;
}

/* Run by hand, there is no RuntimeDirectory=: make the socket's directory. */
static void make_socket_directory(const char *path)
{
	char dir[sizeof(((struct sockaddr_un *)0)->sun_path)];

	snprintf(dir, sizeof(dir), "%s", path);
	if (mkdir(dirname(dir), 0755) && errno != EEXIST)
		return; /* bind then names the cause */
}

/* A stale socket of an earlier run is replaced; anything else at the path is not. */
static int listen_at(struct server *srv, const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct stat st;
	int err = 0;
	int taken = take_systemd_socket(srv, path);

	if (taken)
		return taken < 0 ? -1 : 0;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		say("socket path too long: %s", path, 0);
		return -1;
	}
	strcpy(sa.sun_path, path);
	make_socket_directory(path);
	if (!lstat(path, &st) && S_ISSOCK(st.st_mode))
		unlink(path);
	srv->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (srv->listen_fd < 0 || (err = bind_socket_file(srv, &sa))) {
		say("cannot listen on %s (can its directory be made or written?)", path,
		    srv->listen_fd < 0 ? errno : err);
		if (srv->listen_fd >= 0)
			close(srv->listen_fd);
		srv->listen_fd = -1; /* what is at path is not ours to remove */
		return -1;
	}
	/*
	 * Everyone may connect (0666): on Windows any program may ask for the
	 * Teredo port, which is no secret. What protects the service is the limits.
	 */
	if (listen(srv->listen_fd, SOMAXCONN)) {
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

static int start(struct server *srv, const struct teredo_selection *sel)
{
	struct observer_tap tap = { tap_record, tap_replaced, srv };
	struct stat st;

	if (observer_new(sel, SOURCE_KERNEL, &srv->obs)) {
		say("%s", teredo_observer_last_error(), 0);
		return -1;
	}
	srv->firewall.zone = srv->cfg->firewalld_zone;
	srv->firewall.nft_set = srv->cfg->nft_set;
	srv->firewall.nft_keep_on_exit = srv->cfg->nft_keep_on_exit;
	srv->firewall.all_netns = teredo_selection_all_netns(sel);
	if (firewall_job_open(&srv->firewall, srv->obs)) {
		srv->start_status = 2; /* a configuration to fix: no zone, no firewalld */
		return -1;
	}
	if (stat("/proc/self/ns/net", &st)) {
		say("%s", "cannot read /proc/self/ns/net", errno);
		return -1;
	}
	vserver_init(&srv->vs, observer_state(srv->obs), sel, st.st_ino);
	srv->vs.open_carrier = open_carrier;
	srv->vs.carrier_ctx = srv;
	observer_set_tap(srv->obs, &tap);
	/*
	 * Our fds join the observer's epoll set, which holds its ring buffer:
	 * the kernel's news wakes the loop directly, not through a set nested
	 * in ours (each level is one more wake-up callback on the way).
	 */
	srv->epoll_fd = teredo_observer_get_fd(srv->obs);
	if (srv->epoll_fd < 0 || make_refusal(srv) || listen_at(srv, srv->cfg->socket_path))
		return -1;
	if (watch_fd(srv, srv->listen_fd, EPOLLIN, &listen_tag, EPOLL_CTL_ADD)) {
		say("%s", "epoll_ctl", errno);
		return -1;
	}
	/* The initial event is the state new watchers get anyway. */
	return pump_observer(srv);
}

int serve_run(const struct teredo_selection *sel, const struct serve_config *cfg,
	      volatile sig_atomic_t *stop, const sigset_t *wait_mask)
{
	struct server srv = {
		.cfg = cfg, .listen_fd = -1, .epoll_fd = -1, .firewall_fd = -1, .start_status = 1
	};
	int status = 1, err;

	raise_fd_limit();
	/* A stream pipe whose reader went says EPIPE to our write, not a signal that ends us. */
	signal(SIGPIPE, SIG_IGN);
	if (start(&srv, sel)) {
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
	free(srv.shares);
	if (srv.listen_fd >= 0)
		close(srv.listen_fd);
	remove_socket_file(&srv.sock_file);
	/* Fail closed: the port goes with us (unless we die by SIGKILL). */
	if (firewall_job_close(&srv.firewall) && status == 0)
		status = 1;
	vserver_fini(&srv.vs);
	teredo_observer_free(srv.obs);
	return status;
}
