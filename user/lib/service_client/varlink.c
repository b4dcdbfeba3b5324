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

/* Capacity for need bytes in all (need <= limit): grown by doubling, never past the limit. */
static int reserve(struct vbuf *b, size_t need)
{
	size_t cap;
	char *p;

	if (need <= b->cap)
		return 0;
	cap = b->cap ? b->cap : 1024;
	while (cap < need)
		cap *= 2;
	if (cap > b->limit)
		cap = b->limit;
	p = realloc(b->data, cap);
	if (!p)
		return -ENOMEM;
	b->data = p;
	b->cap = cap;
	return 0;
}

int vbuf_append(struct vbuf *b, const void *data, size_t n)
{
	int err;

	if (b->len + n > b->limit)
		return -ENOBUFS;
	err = reserve(b, b->len + n);
	if (err)
		return err;
	memcpy(b->data + b->len, data, n);
	b->len += n;
	return 0;
}

ssize_t vbuf_room(struct vbuf *b, size_t at_least, char **at)
{
	size_t left = b->limit - b->len;
	int err = reserve(b, b->len + (at_least < left ? at_least : left));

	if (err)
		return err;
	*at = b->data + b->len;
	return (ssize_t)(b->cap - b->len);
}

void vbuf_grew(struct vbuf *b, size_t n)
{
	b->len += n;
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

/*
 * The stream's updates are written with the one encoder's text and read
 * here without json-c: a json-c tree built, printed and freed per event was
 * most of the service's time per event, and one parsed most of its
 * client's (with the caches cold between events, 33 and 55 us of a path of
 * 150). The text is json-c's plain form of the same object, so the
 * protocol is unchanged for every other client.
 */
static const char *record_kind_name(const struct teredo_event *ev)
{
	return ev->kind == TEREDO_EVENT_BOUND ? "bound" : "released";
}

static void put_record(struct json_text *t, const struct teredo_event *ev)
{
	json_text_open(t);
	json_text_key(t, "kind");
	json_text_string(t, record_kind_name(ev));
	json_text_key(t, "port");
	json_text_u64(t, ev->port);
	event_json_put_detail(t, ev->family, ev->pid, ev->comm, sizeof(ev->comm), ev->netns,
			      ev->ktime_ns, ev->cookie);
	json_text_close(t);
}

#define UPDATE_HEAD "{\"parameters\":{\"resync\":false,"
#define UPDATE_TAIL "},\"continues\":true}"

size_t varlink_record_reply_text(const struct teredo_event *ev, char buf[VARLINK_UPDATE_MAX])
{
	struct json_text t = { .p = buf, .end = buf + VARLINK_UPDATE_MAX };

	json_text_lit(&t, UPDATE_HEAD "\"record\":");
	put_record(&t, ev);
	json_text_lit(&t, UPDATE_TAIL);
	return json_text_end(&t, buf);
}

size_t varlink_event_reply_text(const struct teredo_port_event *ev, char buf[VARLINK_UPDATE_MAX])
{
	struct json_text t = { .p = buf, .end = buf + VARLINK_UPDATE_MAX };

	json_text_lit(&t, UPDATE_HEAD "\"event\":");
	event_json_put(&t, ev);
	json_text_lit(&t, UPDATE_TAIL);
	return json_text_end(&t, buf);
}

/* A record of the state (GetState, a resync), from the same text. */
struct json_object *varlink_record_json(const struct teredo_event *ev)
{
	char buf[VARLINK_UPDATE_MAX];
	struct json_text t = { .p = buf, .end = buf + sizeof(buf) };

	put_record(&t, ev);
	return json_text_end(&t, buf) ? json_tokener_parse(buf) : NULL;
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

/* A record's fields as read, checked and made a record: 0 or -EINVAL. */
static int record_from(const char *kind, uint64_t port, const char *family, uint64_t pid,
		       const char *comm, uint64_t netns, uint64_t ktime, uint64_t cookie,
		       struct teredo_event *ev)
{
	memset(ev, 0, sizeof(*ev));
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
	return record_from(kind, port, family, pid, comm, netns, ktime, cookie, ev);
}

/*
 * Reading an update of exactly the form written above. Anything else (other
 * spacing or order, a number json-c might read otherwise, an escape beyond
 * ASCII) is left to json-c: what is read here is what json-c would read.
 */
struct scan {
	const char *p, *end;
	bool ok;
};

static void scan_lit(struct scan *s, const char *lit)
{
	size_t n = strlen(lit);

	if (s->ok && (size_t)(s->end - s->p) >= n && !memcmp(s->p, lit, n))
		s->p += n;
	else
		s->ok = false;
}

/* A JSON integer from 0 to UINT64_MAX (read as varlink_get_u64 reads it), without leading zeros. */
static uint64_t scan_u64(struct scan *s)
{
	uint64_t v = 0;
	const char *start = s->p;

	while (s->ok && s->p < s->end && *s->p >= '0' && *s->p <= '9') {
		unsigned int d = (unsigned int)(*s->p++ - '0');

		if (v > (UINT64_MAX - d) / 10)
			s->ok = false;
		v = v * 10 + d;
	}
	if (s->p == start || (*start == '0' && s->p - start > 1))
		s->ok = false;
	return v;
}

static int hex_value(char c)
{
	return c >= '0' && c <= '9'   ? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
				      : -1;
}

/* One escape after its backslash: the byte, or -1. \u only below 0x80, a byte json-c keeps whole.
 */
static int scan_escape(struct scan *s)
{
	static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
	const char *e = s->p < s->end ? strchr(from, *s->p) : NULL;
	int v = 0;

	if (e && *e) {
		s->p++;
		return to[e - from];
	}
	if (s->end - s->p < 5 || *s->p != 'u')
		return -1;
	for (int i = 1; i <= 4; i++) {
		int h = hex_value(s->p[i]);

		if (h < 0)
			return -1;
		v = v * 16 + h;
	}
	s->p += 5;
	return v < 0x80 ? v : -1;
}

/* A string into out (NUL-terminated, as json-c gives it: it may hold a NUL of its own). */
static void scan_string(struct scan *s, char *out, size_t cap)
{
	size_t n = 0;

	scan_lit(s, "\"");
	while (s->ok) {
		int c = s->p < s->end ? (unsigned char)*s->p++ : -1;

		if (c == '"')
			break;
		if (c == '\\')
			c = scan_escape(s);
		else if (c >= 0 && c < 0x20)
			c = -1; /* a raw control character: json-c's call */
		if (c < 0 || n + 1 >= cap) {
			s->ok = false;
			break;
		}
		out[n++] = (char)c;
	}
	out[n] = '\0';
}

int varlink_update_scan(const char *msg, size_t len, struct teredo_event *ev)
{
	struct scan s = { msg, msg + len, true };
	char kind[16], family[16], comm[64];
	uint64_t port, pid, netns, ktime, cookie;
	bool record;

	scan_lit(&s, UPDATE_HEAD);
	record = s.ok && s.end - s.p > 9 && !memcmp(s.p, "\"record\":", 9);
	scan_lit(&s, record ? "\"record\":{\"kind\":" : "\"event\":{\"type\":");
	scan_string(&s, kind, sizeof(kind));
	scan_lit(&s, ",\"port\":");
	port = scan_u64(&s);
	if (!record) {
		scan_lit(&s, ",\"old_port\":");
		scan_u64(&s);
	}
	scan_lit(&s, ",\"family\":");
	scan_string(&s, family, sizeof(family));
	scan_lit(&s, ",\"pid\":");
	pid = scan_u64(&s);
	scan_lit(&s, ",\"comm\":");
	scan_string(&s, comm, sizeof(comm));
	scan_lit(&s, ",\"netns\":");
	netns = scan_u64(&s);
	scan_lit(&s, ",\"ktime_ns\":");
	ktime = scan_u64(&s);
	scan_lit(&s, ",\"cookie\":");
	cookie = scan_u64(&s);
	scan_lit(&s, "}" UPDATE_TAIL);
	if (!s.ok || s.end - s.p != 1 || *s.p)
		return VARLINK_NOT_SCANNED; /* not the whole message, NUL and all */
	if (!record)
		return 0;
	return record_from(kind, port, family, pid, comm, netns, ktime, cookie, ev)
		       ? VARLINK_NOT_SCANNED /* json-c's reading says what is wrong */
		       : 1;
}
