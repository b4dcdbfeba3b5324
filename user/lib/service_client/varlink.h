/* SPDX-License-Identifier: MIT */
/*
 * What the service (teredo-observer serve) and the library's service client
 * share: the Varlink framing (NUL-terminated JSON messages on a stream unix
 * socket, https://varlink.org), bounded buffers, the socket path, and the
 * JSON form of socket records (json-c; port events are event_json.c's,
 * selections selection.c's).
 */
#ifndef TEREDO_VARLINK_H
#define TEREDO_VARLINK_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "teredo_event.h"
#include "teredo_observer.h"

#define VARLINK_INTERFACE "io.teredo.Observer"
/* The shipped unit's RuntimeDirectory=teredo-observer holds it. */
#define VARLINK_DEFAULT_SOCKET "/run/teredo-observer/" VARLINK_INTERFACE
/* A call is a few hundred bytes: anything longer is refused. */
#define VARLINK_MAX_MESSAGE 16384

/* One direction of a connection: bytes waiting, never more than limit. */
struct vbuf {
	char *data;
	size_t len, cap, limit;
};

void vbuf_init(struct vbuf *b, size_t limit);
void vbuf_fini(struct vbuf *b);
/* 0, -ENOBUFS when it would exceed the limit, -ENOMEM. */
int vbuf_append(struct vbuf *b, const void *data, size_t n);
/*
 * Where bytes can be read in place, without a copy: the free room, grown
 * to at least at_least bytes (as the limit allows); 0 when the buffer is at
 * its limit, or -ENOMEM. vbuf_grew then counts the n bytes put there.
 */
ssize_t vbuf_room(struct vbuf *b, size_t at_least, char **at);
void vbuf_grew(struct vbuf *b, size_t n);
void vbuf_consume(struct vbuf *b, size_t n);
/*
 * The length of the first complete message (with its NUL), 0 when none is
 * complete yet, -EMSGSIZE when the buffer is full and holds no NUL.
 */
ssize_t vbuf_message_len(const struct vbuf *b);

/* The message's JSON text and a NUL appended to b. 0 or as vbuf_append. */
int varlink_put(struct vbuf *b, struct json_object *msg);

/* $TEREDO_OBSERVER_SOCKET, or the default path. */
const char *varlink_socket_path(void);

/* A socket record (kind "bound" or "released") and back: 0 or -EINVAL. */
struct json_object *varlink_record_json(const struct teredo_event *ev);
int varlink_record_parse(struct json_object *obj, struct teredo_event *ev);

/* Room for one stream update as text, its name escaped at worst. */
#define VARLINK_UPDATE_MAX 512

/*
 * A Watch reply carrying one socket record or one port event
 * ({"parameters":{"resync":false,"record":{...}},"continues":true}), as
 * varlink_put writes the same object, its NUL included in the length returned.
 */
size_t varlink_record_reply_text(const struct teredo_event *ev, char buf[VARLINK_UPDATE_MAX]);
size_t varlink_event_reply_text(const struct teredo_port_event *ev, char buf[VARLINK_UPDATE_MAX]);

/* Not of that form: json-c reads it. */
#define VARLINK_NOT_SCANNED (-1)

/*
 * A whole message (len with its NUL) read without json-c when it is an
 * update of exactly that form: 1 and *ev for a valid record, 0 for a port
 * event (nothing for a reader of records), else VARLINK_NOT_SCANNED.
 */
int varlink_update_scan(const char *msg, size_t len, struct teredo_event *ev);

/* Small json-c helpers: 0, or -EINVAL when missing or of another type. */
int varlink_get_u64(struct json_object *obj, const char *key, uint64_t *out);
int varlink_get_string(struct json_object *obj, const char *key, const char **out);

#endif
