/* SPDX-License-Identifier: MIT */
/*
 * The service's side of the Varlink protocol, without any I/O: calls come in
 * a connection's input buffer, replies go to its output buffer. The event
 * loop (serve.c) moves the bytes; the fuzz target (tests/fuzz, here) feeds it
 * directly.
 */
#ifndef TEREDO_VARLINK_SERVER_H
#define TEREDO_VARLINK_SERVER_H

#include <stdbool.h>
#include <sys/types.h>

#include "port_state.h"
#include "selection.h"
#include "varlink.h"

/* What a connection may hold: a call, and replies a slow reader has not taken. */
#define VCONN_IN_LIMIT VARLINK_MAX_MESSAGE
#define VCONN_OUT_LIMIT (256 * 1024)

struct vconn;

struct vserver {
	const struct port_state *state;	    /* the service's own, kept by its observer */
	const struct teredo_selection *sel; /* served: what counts as the client */
	uint32_t netns;			    /* the namespace it watches */
	/*
	 * GetState's reply as sent, made again only once the state has changed
	 * (state->changes moved past state_changes): a client that repeats the
	 * call as fast as it can costs a copy per call, not a JSON encoding.
	 */
	struct vbuf state_reply;
	uint64_t state_changes;
	struct vbuf info_reply; /* GetInfo's, which never changes: made once */
	/*
	 * A Watch with "pipe": true asks for its stream through a pipe: the
	 * event loop makes one for c (c->carrier_fd, c->carrier_pass) and says
	 * 0, or refuses (-1: the stream stays on the socket). NULL: refused.
	 */
	int (*open_carrier)(void *ctx, struct vconn *c);
	void *carrier_ctx;
};

void vserver_init(struct vserver *srv, const struct port_state *state,
		  const struct teredo_selection *sel, uint32_t netns);
void vserver_fini(struct vserver *srv);

/* Calls one connection gets answered per turn of the loop: the others' turn comes. */
#define VCONN_CALLS_PER_TURN 8
/* And all the connections of one uid together: more connections, no more of the loop. */
#define UID_CALLS_PER_TURN 32

struct vconn {
	int fd;
	uid_t uid;
	struct vbuf in, out;
	bool watching;	   /* a Watch call is streaming */
	bool records_only; /* it said events false: its stream leaves the port changes out */
	bool closing;	   /* send what is in out, then close */
	/* Kept by the event loop (serve.c): */
	bool pending;		   /* complete calls wait in in: served next turn */
	bool hung_up;		   /* the peer sent all it will: close once answered */
	unsigned int epoll_events; /* as registered */
	long long drop_after_ms;   /* closing: dropped at this CLOCK_MONOTONIC time */
	unsigned long turn;	   /* the last turn of the loop that served it */
	/*
	 * The stream's pipe, made by open_carrier: its write end (-1: none), and
	 * its read end until it has gone to the client with the first byte of
	 * the Watch reply (SCM_RIGHTS), which starts pass_at bytes into out.
	 * The first to_socket bytes of out (the Watch reply last) still go to
	 * the socket; everything after them goes to the pipe.
	 */
	int carrier_fd, carrier_pass;
	size_t pass_at, to_socket;
	int carrier_size; /* the pipe's size as made: a client that grows it is cut off */
	unsigned int carrier_events; /* the pipe's, as registered */
};

void vconn_init(struct vconn *c, int fd, uid_t uid);
void vconn_fini(struct vconn *c);

/*
 * Answer up to max_calls complete calls waiting in c->in (the rest wait:
 * vbuf_message_len says whether any is left). How many were answered, or
 * -1 when the connection must end: after a malformed or oversize message
 * (its error reply is in c->out, c->closing set) or when the replies do not
 * fit in c->out.
 */
int vserver_process(struct vserver *srv, struct vconn *c, unsigned int max_calls);

/* An error reply, with one parameter (value, taken) when key is not NULL. 0 or -ENOBUFS. */
int vserver_error(struct vconn *c, const char *error, const char *key, struct json_object *value);

/* The reply that (re)starts a watch: the whole state, "resync": true. NULL: no memory. */
struct json_object *vserver_resync_reply(const struct vserver *srv);
/* The stream's other replies, one record or event each, are varlink.h's text. */

#endif
