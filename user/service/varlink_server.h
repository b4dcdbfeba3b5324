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
#include "varlink.h"

/* What a connection may hold: a call, and replies a slow reader has not taken. */
#define VCONN_IN_LIMIT VARLINK_MAX_MESSAGE
#define VCONN_OUT_LIMIT (256 * 1024)

struct vserver {
	const struct port_state *state; /* the service's own, kept by its observer */
	const struct teredo_options *opts;
	uint32_t netns; /* the namespace it watches */
};

struct vconn {
	int fd;
	uid_t uid;
	struct vbuf in, out;
	bool watching; /* a Watch call is streaming */
	bool closing;  /* send what is in out, then close */
};

void vconn_init(struct vconn *c, int fd, uid_t uid);
void vconn_fini(struct vconn *c);

/*
 * Answer every complete call waiting in c->in. 0, or -1 when the connection
 * must end: after a malformed or oversize message (its error reply is in
 * c->out, c->closing set) or when the replies do not fit in c->out.
 */
int vserver_process(const struct vserver *srv, struct vconn *c);

/* An error reply, with one parameter (value, taken) when key is not NULL. 0 or -ENOBUFS. */
int vserver_error(struct vconn *c, const char *error, const char *key, struct json_object *value);

/* The reply that (re)starts a watch: the whole state, "resync": true. NULL: no memory. */
struct json_object *vserver_resync_reply(const struct vserver *srv);
/* Stream replies: one socket record, one port event. */
struct json_object *vserver_record_reply(const struct teredo_event *ev);
struct json_object *vserver_event_reply(const struct teredo_port_event *ev);

#endif
