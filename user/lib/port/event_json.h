/* SPDX-License-Identifier: MIT */
/*
 * The JSON form of a port event, one encoder for every place that writes
 * one: the command's --json lines (teredo_event_json_line, private header)
 * and the Varlink service's replies (the events of Watch and GetState, and
 * the detail of its socket records).
 */
#ifndef TEREDO_EVENT_JSON_H
#define TEREDO_EVENT_JSON_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "teredo_observer.h"

/*
 * The encoder writes text, straight into a buffer: the service writes every
 * update with it and no JSON object (building and freeing a json-c tree per
 * event was most of its time per event). The text is json-c's plain form of
 * the same object with '/' unescaped; the objects below are parsed from it.
 * A text that does not fit is marked full, and nothing more is written.
 */
struct json_text {
	char *p, *end;
	bool full;
	bool spaced; /* json-c's spaced form ({ "key": value, ... }), for the command's lines */
	bool first;  /* no member yet in the object opened last */
};

void json_text_put(struct json_text *t, const char *s, size_t n);
void json_text_lit(struct json_text *t, const char *s);
void json_text_u64(struct json_text *t, uint64_t v);
/* The text with its NUL: the length with it, or 0 when it did not fit. */
size_t json_text_end(struct json_text *t, char *start);
/* An object's brace, a member's key (its comma before, its colon after), the closing brace. */
void json_text_open(struct json_text *t);
void json_text_key(struct json_text *t, const char *name);
void json_text_close(struct json_text *t);
/* A string of ASCII text (a type, a family, a time), escaped as json-c does. */
void json_text_string(struct json_text *t, const char *s);

/* An event's members: type, port, old_port, then the detail below. */
void event_json_members(struct json_text *t, const struct teredo_port_event *ev);
/* The same as a whole object. */
void event_json_put(struct json_text *t, const struct teredo_port_event *ev);

/*
 * The members an event and a socket record share, after their own: family
 * ("ipv4", "ipv6", "" for none), pid, comm (as event_comm_json), netns,
 * ktime_ns, cookie.
 */
void event_json_put_detail(struct json_text *t, uint16_t family, uint32_t pid, const char *comm,
			   size_t comm_len, uint32_t netns, uint64_t ktime_ns, uint64_t cookie);

/* The same as json-c objects (from the text). NULL: no memory. */
struct json_object *event_json(const struct teredo_port_event *ev);

/*
 * A process name as a JSON string. The kernel keeps any bytes (up to
 * comm_len, or the first NUL): valid UTF-8 is kept as it is, and each byte
 * that is not part of a valid UTF-8 sequence becomes U+FFFD, so that every
 * line and message stays valid UTF-8 and reads the same everywhere.
 */
struct json_object *event_comm_json(const char *comm, size_t comm_len);

/* "ipv4", "ipv6", or "" (no socket concerned), and back (0 for anything else). */
const char *event_family_name(uint16_t family);
uint16_t event_family_value(const char *name);

#endif
