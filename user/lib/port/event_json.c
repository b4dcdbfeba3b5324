// SPDX-License-Identifier: MIT
/* One encoder for a port event, for the command's --json and the service's replies. */
#define _GNU_SOURCE
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

struct json_object *event_comm_json(const char *comm, size_t comm_len)
{
	static const char replacement[] = "\xef\xbf\xbd"; /* U+FFFD */
	const unsigned char *s = (const unsigned char *)comm;
	size_t n = strnlen(comm, comm_len), used = 0;
	char *text = malloc(n * (sizeof(replacement) - 1) + 1);
	struct json_object *o;

	if (!text)
		return NULL;
	for (size_t i = 0; i < n;) {
		size_t len = utf8_sequence(s + i, n - i);

		if (len) {
			memcpy(text + used, s + i, len);
			used += len;
			i += len;
		} else {
			memcpy(text + used, replacement, sizeof(replacement) - 1);
			used += sizeof(replacement) - 1;
			i++;
		}
	}
	o = json_object_new_string_len(text, (int)used);
	free(text);
	return o;
}

void event_json_detail(struct json_object *o, uint16_t family, uint32_t pid, const char *comm,
		       size_t comm_len, uint32_t netns, uint64_t ktime_ns, uint64_t cookie)
{
	json_object_object_add(o, "family", json_object_new_string(event_family_name(family)));
	json_object_object_add(o, "pid", json_object_new_int64(pid));
	json_object_object_add(o, "comm", event_comm_json(comm, comm_len));
	json_object_object_add(o, "netns", json_object_new_int64(netns));
	/* Unsigned, as the kernel's: a synthetic cookie has bit 63 set, never a minus sign. */
	json_object_object_add(o, "ktime_ns", json_object_new_uint64(ktime_ns));
	json_object_object_add(o, "cookie", json_object_new_uint64(cookie));
}

struct json_object *event_json(const struct teredo_port_event *ev)
{
	struct json_object *o = json_object_new_object();

	if (!o)
		return NULL;
	json_object_object_add(o, "type",
			       json_object_new_string(teredo_port_event_type_name(ev->type)));
	json_object_object_add(o, "port", json_object_new_int(ev->port));
	json_object_object_add(o, "old_port", json_object_new_int(ev->old_port));
	event_json_detail(o, ev->family, ev->pid, ev->comm, sizeof(ev->comm), ev->netns,
			  ev->ktime_ns, ev->cookie);
	return o;
}

/* Spaced ("key": value, ...) for people reading the lines too; '/' left as it is. */
char *teredo_event_json_line(const struct teredo_port_event *ev, const char *time)
{
	struct json_object *o = event_json(ev);
	const char *text;
	char *line = NULL;

	if (o && time)
		json_object_object_add(o, "time", json_object_new_string(time));
	text = o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_SPACED |
							     JSON_C_TO_STRING_NOSLASHESCAPE)
		 : NULL;
	if (text && asprintf(&line, "%s\n", text) < 0)
		line = NULL;
	json_object_put(o);
	return line;
}
