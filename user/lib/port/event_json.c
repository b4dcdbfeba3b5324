// SPDX-License-Identifier: MIT
/* One encoder for a port event, for the command's --json and the service's replies (text). */
#define _GNU_SOURCE
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "event_json.h"
#include "teredo_observer_private.h"

const char *event_family_name(uint16_t family)
{
	return family == AF_INET ? "ipv4" : family == AF_INET6 ? "ipv6" : "";
}

uint16_t event_family_value(const char *name)
{
	return !strcmp(name, "ipv4") ? AF_INET : !strcmp(name, "ipv6") ? AF_INET6 : 0;
}

/*
 * The length of the valid UTF-8 sequence at s (n bytes left), or 0: no
 * overlong forms, no surrogates, nothing above U+10FFFF (RFC 3629).
 */
static size_t utf8_sequence(const unsigned char *s, size_t n)
{
	size_t len = s[0] < 0x80		    ? 1
		     : s[0] >= 0xc2 && s[0] <= 0xdf ? 2
		     : s[0] >= 0xe0 && s[0] <= 0xef ? 3
		     : s[0] >= 0xf0 && s[0] <= 0xf4 ? 4
						    : 0;
	unsigned char lo = 0x80, hi = 0xbf;

	if (!len || len > n)
		return 0;
	/* The second byte's range is what rules out overlongs, surrogates and > U+10FFFF. */
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;
	for (size_t i = 1; i < len; i++, lo = 0x80, hi = 0xbf)
		if (s[i] < lo || s[i] > hi)
			return 0;
	return len;
}

void json_text_put(struct json_text *t, const char *s, size_t n)
{
	if (t->full || (size_t)(t->end - t->p) < n) {
		t->full = true;
		return;
	}
	memcpy(t->p, s, n);
	t->p += n;
}

void json_text_lit(struct json_text *t, const char *s)
{
	json_text_put(t, s, strlen(s));
}

void json_text_u64(struct json_text *t, uint64_t v)
{
	char digits[24], *d = digits + sizeof(digits);

	do
		*--d = (char)('0' + v % 10);
	while (v /= 10);
	json_text_put(t, d, (size_t)(digits + sizeof(digits) - d));
}

size_t json_text_end(struct json_text *t, char *start)
{
	json_text_put(t, "", 1);
	return t->full ? 0 : (size_t)(t->p - start);
}

/* One byte of a string as json-c writes it (without '/' escaped). */
static void put_escaped(struct json_text *t, unsigned char c)
{
	static const char hex[] = "0123456789abcdef";
	const char *two = c == '\b'   ? "\\b"
			  : c == '\n' ? "\\n"
			  : c == '\r' ? "\\r"
			  : c == '\t' ? "\\t"
			  : c == '\f' ? "\\f"
			  : c == '"'  ? "\\\""
			  : c == '\\' ? "\\\\"
				      : NULL;
	char u[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };

	if (two)
		json_text_put(t, two, 2);
	else if (c < 0x20)
		json_text_put(t, u, sizeof(u));
	else
		json_text_put(t, (const char *)&c, 1);
}

static void put_plain_string(struct json_text *t, const char *s)
{
	json_text_put(t, "\"", 1);
	for (; *s; s++)
		put_escaped(t, (unsigned char)*s);
	json_text_put(t, "\"", 1);
}

static void put_comm(struct json_text *t, const char *comm, size_t comm_len)
{
	static const char replacement[] = "\xef\xbf\xbd"; /* U+FFFD */
	const unsigned char *s = (const unsigned char *)comm;
	size_t n = strnlen(comm, comm_len);

	json_text_put(t, "\"", 1);
	for (size_t i = 0; i < n;) {
		size_t len = utf8_sequence(s + i, n - i);

		if (len == 1) {
			put_escaped(t, s[i]);
		} else if (len) {
			json_text_put(t, comm + i, len);
		} else {
			json_text_put(t, replacement, sizeof(replacement) - 1);
			len = 1;
		}
		i += len;
	}
	json_text_put(t, "\"", 1);
}

/* Room for an event's object, its name at worst (16 bytes, each U+FFFD or \u00xx). */
#define OBJECT_MAX 512

static struct json_object *parsed(char *buf, struct json_text *t)
{
	return json_text_end(t, buf) ? json_tokener_parse(buf) : NULL;
}

struct json_object *event_comm_json(const char *comm, size_t comm_len)
{
	char buf[OBJECT_MAX];
	struct json_text t = { .p = buf, .end = buf + sizeof(buf) };

	put_comm(&t, comm, comm_len);
	return parsed(buf, &t);
}

void json_text_open(struct json_text *t)
{
	json_text_lit(t, t->spaced ? "{ " : "{");
	t->first = true;
}

void json_text_key(struct json_text *t, const char *name)
{
	if (!t->first)
		json_text_lit(t, t->spaced ? ", " : ",");
	t->first = false;
	json_text_put(t, "\"", 1);
	json_text_lit(t, name);
	json_text_lit(t, t->spaced ? "\": " : "\":");
}

void json_text_close(struct json_text *t)
{
	json_text_lit(t, t->spaced ? " }" : "}");
}

void json_text_string(struct json_text *t, const char *s)
{
	put_plain_string(t, s);
}

void event_json_put_detail(struct json_text *t, uint16_t family, uint32_t pid, const char *comm,
			   size_t comm_len, uint32_t netns, uint64_t ktime_ns, uint64_t cookie)
{
	json_text_key(t, "family");
	put_plain_string(t, event_family_name(family));
	json_text_key(t, "pid");
	json_text_u64(t, pid);
	json_text_key(t, "comm");
	put_comm(t, comm, comm_len);
	json_text_key(t, "netns");
	json_text_u64(t, netns);
	/* Unsigned, as the kernel's: a synthetic cookie has bit 63 set, never a minus sign. */
	json_text_key(t, "ktime_ns");
	json_text_u64(t, ktime_ns);
	json_text_key(t, "cookie");
	json_text_u64(t, cookie);
}

void event_json_members(struct json_text *t, const struct teredo_port_event *ev)
{
	json_text_key(t, "type");
	put_plain_string(t, teredo_port_event_type_name(ev->type));
	json_text_key(t, "port");
	json_text_u64(t, ev->port);
	json_text_key(t, "old_port");
	json_text_u64(t, ev->old_port);
	event_json_put_detail(t, ev->family, (uint32_t)ev->pid, ev->comm, sizeof(ev->comm),
			      ev->netns, ev->ktime_ns, ev->cookie);
}

void event_json_put(struct json_text *t, const struct teredo_port_event *ev)
{
	json_text_open(t);
	event_json_members(t, ev);
	json_text_close(t);
}

struct json_object *event_json(const struct teredo_port_event *ev)
{
	char buf[OBJECT_MAX];
	struct json_text t = { .p = buf, .end = buf + sizeof(buf) };

	event_json_put(&t, ev);
	return parsed(buf, &t);
}

/*
 * Spaced ("key": value, ...) for people reading the lines too; '/' left as
 * it is: json-c's spaced form of the same object, written straight.
 */
char *teredo_event_json_line(const struct teredo_port_event *ev, const char *time)
{
	char buf[OBJECT_MAX + 128];
	struct json_text t = { .p = buf, .end = buf + sizeof(buf), .spaced = true };
	size_t len;
	char *line;

	json_text_open(&t);
	event_json_members(&t, ev);
	if (time) {
		json_text_key(&t, "time");
		put_plain_string(&t, time);
	}
	json_text_close(&t);
	json_text_put(&t, "\n", 1);
	len = json_text_end(&t, buf);
	line = len ? malloc(len) : NULL;
	if (line)
		memcpy(line, buf, len);
	return line;
}
