// SPDX-License-Identifier: MIT
/* The Varlink framing and JSON forms shared by the service and its clients. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "event_json.h"
#include "varlink.h"

void vbuf_init(struct vbuf *b, size_t limit)
{
	memset(b, 0, sizeof(*b));
	b->limit = limit;
}

void vbuf_fini(struct vbuf *b)
{
	free(b->data);
	vbuf_init(b, b->limit);
}

int vbuf_append(struct vbuf *b, const void *data, size_t n)
{
	size_t cap;
	char *p;

	if (b->len + n > b->limit)
		return -ENOBUFS;
	if (b->len + n > b->cap) {
		/* Grow by doubling, but never past the limit: memory stays bounded. */
		cap = b->cap ? b->cap : 1024;
		while (cap < b->len + n)
			cap *= 2;
		if (cap > b->limit)
			cap = b->limit;
		p = realloc(b->data, cap);
		if (!p)
			return -ENOMEM;
		b->data = p;
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, n);
	b->len += n;
	return 0;
}

void vbuf_consume(struct vbuf *b, size_t n)
{
	if (n >= b->len) {
		b->len = 0;
		/* An idle connection keeps no big buffer: memory follows the load. */
		if (b->cap > 4096) {
			free(b->data);
			b->data = NULL;
			b->cap = 0;
		}
		return;
	}
	memmove(b->data, b->data + n, b->len - n);
	b->len -= n;
}

ssize_t vbuf_message_len(const struct vbuf *b)
{
	const char *nul = b->len ? memchr(b->data, '\0', b->len) : NULL;

	if (nul)
		return nul - b->data + 1;
	return b->len >= b->limit ? -EMSGSIZE : 0;
}

int varlink_put(struct vbuf *b, struct json_object *msg)
{
	size_t n;
	/* '/' as it is, as teredo_event_json_line writes it: one spelling of a name. */
	const char *text = json_object_to_json_string_length(
		msg, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &n);
	size_t before = b->len;
	int err;

	if (!text)
		return -ENOMEM;
	err = vbuf_append(b, text, n + 1); /* with its NUL: the message's end */
	if (err)
		b->len = before;
	return err;
}

const char *varlink_socket_path(void)
{
	const char *path = getenv("TEREDO_OBSERVER_SOCKET");

	return path && path[0] ? path : VARLINK_DEFAULT_SOCKET;
}

struct json_object *varlink_record_json(const struct teredo_event *ev)
{
	struct json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	json_object_object_add(
		o, "kind",
		json_object_new_string(ev->kind == TEREDO_EVENT_BOUND ? "bound" : "released"));
	json_object_object_add(o, "port", json_object_new_int(ev->port));
	event_json_detail(o, ev->family, ev->pid, ev->comm, sizeof(ev->comm), ev->netns,
			  ev->ktime_ns, ev->cookie);
	return o;
}

int varlink_get_u64(struct json_object *obj, const char *key, uint64_t *out)
{
	struct json_object *v;

	int64_t n;

	if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_int))
		return -EINVAL;
	/* json-c holds a number above INT64_MAX as unsigned, and clamps it for get_int64. */
	n = json_object_get_int64(v);
	if (n < 0)
		return -EINVAL;
	*out = n == INT64_MAX ? json_object_get_uint64(v) : (uint64_t)n;
	return 0;
}

int varlink_get_string(struct json_object *obj, const char *key, const char **out)
{
	struct json_object *v;

	if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_string))
		return -EINVAL;
	*out = json_object_get_string(v);
	return 0;
}

int varlink_record_parse(struct json_object *obj, struct teredo_event *ev)
{
	uint64_t port, pid, netns, ktime, cookie;
	const char *kind, *family, *comm;

	memset(ev, 0, sizeof(*ev));
	if (!json_object_is_type(obj, json_type_object) || varlink_get_string(obj, "kind", &kind) ||
	    varlink_get_u64(obj, "port", &port) || varlink_get_string(obj, "family", &family) ||
	    varlink_get_u64(obj, "pid", &pid) || varlink_get_string(obj, "comm", &comm) ||
	    varlink_get_u64(obj, "netns", &netns) || varlink_get_u64(obj, "ktime_ns", &ktime) ||
	    varlink_get_u64(obj, "cookie", &cookie))
		return -EINVAL;
	if (port > UINT16_MAX || pid > INT32_MAX || netns > UINT32_MAX)
		return -EINVAL;
	ev->kind = !strcmp(kind, "bound")      ? TEREDO_EVENT_BOUND
		   : !strcmp(kind, "released") ? TEREDO_EVENT_RELEASED
					       : 0;
	if (!ev->kind)
		return -EINVAL;
	ev->port = port;
	ev->family = event_family_value(family);
	ev->pid = pid;
	strncpy(ev->comm, comm, sizeof(ev->comm) - 1);
	ev->netns = netns;
	ev->ktime_ns = ktime;
	ev->cookie = cookie;
	return 0;
}
