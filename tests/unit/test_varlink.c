// SPDX-License-Identifier: MIT
/*
 * The stream's updates written and read without json-c (varlink.c): the
 * text must be what json-c writes for the same object, so that the protocol
 * is the same for every other client, and what the scanner reads must be
 * what json-c reads, or left to json-c.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "event_json.h"
#include "teredo_observer_private.h"
#include "varlink.h"

/*
 * The name as the encoder means it (event_json.h): these tests' names are
 * ASCII and stray bytes, each byte from 0x80 on U+FFFD (test_event_json
 * checks valid UTF-8 kept).
 */
static struct json_object *reference_comm(const char *comm, size_t comm_len)
{
	char text[16 * 3 + 1];
	size_t n = 0;

	for (size_t i = 0; i < comm_len && comm[i]; i++) {
		if ((unsigned char)comm[i] < 0x80) {
			text[n++] = comm[i];
		} else {
			memcpy(text + n, "\xef\xbf\xbd", 3);
			n += 3;
		}
	}
	return json_object_new_string_len(text, (int)n);
}

/* The objects as the service built them with json-c before (the reference). */
static void add_detail(struct json_object *o, uint16_t family, uint32_t pid, const char *comm,
		       size_t comm_len, uint32_t netns, uint64_t ktime_ns, uint64_t cookie)
{
	json_object_object_add(o, "family",
			       json_object_new_string(family == AF_INET	   ? "ipv4"
						      : family == AF_INET6 ? "ipv6"
									   : ""));
	json_object_object_add(o, "pid", json_object_new_int64(pid));
	json_object_object_add(o, "comm", reference_comm(comm, comm_len));
	json_object_object_add(o, "netns", json_object_new_int64(netns));
	json_object_object_add(o, "ktime_ns", json_object_new_uint64(ktime_ns));
	json_object_object_add(o, "cookie", json_object_new_uint64(cookie));
}

static const char *reference_text(const char *key, struct json_object *value)
{
	static char text[1024];
	struct json_object *msg = json_object_new_object(), *params = json_object_new_object();

	json_object_object_add(params, "resync", json_object_new_boolean(false));
	json_object_object_add(params, key, value);
	json_object_object_add(msg, "parameters", params);
	json_object_object_add(msg, "continues", json_object_new_boolean(true));
	snprintf(text, sizeof(text), "%s",
		 json_object_to_json_string_ext(msg, JSON_C_TO_STRING_PLAIN |
							     JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(msg);
	return text;
}

static const char *reference_record(const struct teredo_event *ev)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(
		o, "kind",
		json_object_new_string(ev->kind == TEREDO_EVENT_BOUND ? "bound" : "released"));
	json_object_object_add(o, "port", json_object_new_int(ev->port));
	add_detail(o, ev->family, ev->pid, ev->comm, sizeof(ev->comm), ev->netns, ev->ktime_ns,
		   ev->cookie);
	return reference_text("record", o);
}

static const char *reference_event(const struct teredo_port_event *ev)
{
	struct json_object *o = json_object_new_object();

	json_object_object_add(o, "type",
			       json_object_new_string(teredo_port_event_type_name(ev->type)));
	json_object_object_add(o, "port", json_object_new_int(ev->port));
	json_object_object_add(o, "old_port", json_object_new_int(ev->old_port));
	add_detail(o, ev->family, ev->pid, ev->comm, sizeof(ev->comm), ev->netns, ev->ktime_ns,
		   ev->cookie);
	return reference_text("event", o);
}

/*
 * What the client made of a message before the scanner: 1 and *ev for a
 * record, 0 for a valid update without one, -1 for an error (malformed, an
 * error reply, a record it refuses), 2 for a resync.
 */
static int json_c_reading(const char *msg, struct teredo_event *ev)
{
	struct json_object *o = json_tokener_parse(msg), *params, *v;
	int got = -1;

	if (o && json_object_is_type(o, json_type_object) &&
	    !json_object_object_get_ex(o, "error", NULL) &&
	    json_object_object_get_ex(o, "parameters", &params) &&
	    json_object_is_type(params, json_type_object)) {
		if (json_object_object_get_ex(params, "resync", &v) && json_object_get_boolean(v))
			got = 2;
		else if (json_object_object_get_ex(params, "record", &v))
			got = varlink_record_parse(v, ev) ? -1 : 1;
		else
			got = 0;
	}
	json_object_put(o);
	return got;
}

/* Whatever the scanner reads, json-c reads the same; what it leaves, json-c reads. */
static void expect_same_reading(const char *msg, size_t len)
{
	struct teredo_event fast, slow;
	int got = varlink_update_scan(msg, len, &fast);
	int ref = json_c_reading(msg, &slow);

	if (got == VARLINK_NOT_SCANNED)
		return;
	cr_assert_eq(got, ref, "scanned %d, json-c %d: %s", got, ref, msg);
	if (got == 1)
		cr_assert(!memcmp(&fast, &slow, sizeof(fast)), "a record read otherwise: %s", msg);
}

static struct teredo_event sample_record(void)
{
	struct teredo_event ev = { .ktime_ns = 123456789012345ull,
				   .cookie = 4242,
				   .netns = 4026531840u,
				   .pid = 1234,
				   .port = 40000,
				   .family = AF_INET,
				   .kind = TEREDO_EVENT_BOUND };

	strcpy(ev.comm, "miredo");
	return ev;
}

Test(varlink, a_record_is_written_as_json_c_writes_it_whatever_its_name)
{
	struct teredo_event ev = sample_record(), back;
	char text[VARLINK_UPDATE_MAX];
	size_t len;

	/* Every byte, alone and among others, up to a full 15-byte name. */
	for (int c = 1; c < 256; c++) {
		memset(ev.comm, 0, sizeof(ev.comm));
		for (int i = 0; i < 15; i++)
			ev.comm[i] = (char)(i % 3 ? c : 'a' + i);
		ev.kind = c % 2 ? TEREDO_EVENT_BOUND : TEREDO_EVENT_RELEASED;
		ev.family = c % 3 ? AF_INET : AF_INET6;
		len = varlink_record_reply_text(&ev, text);
		cr_assert_eq(len, strlen(text) + 1, "byte %d: the NUL is counted", c);
		cr_assert_str_eq(text, reference_record(&ev), "byte %d", c);
		/* Read back, by the scanner or by json-c: the same record either way. */
		cr_assert_eq(json_c_reading(text, &back), 1);
		expect_same_reading(text, len);
		/* A stray byte is U+FFFD on the wire: the name then reads back otherwise. */
		if (c >= 0x80)
			memcpy(back.comm, ev.comm, sizeof(ev.comm));
		cr_assert(!memcmp(&back, &ev, sizeof(ev)), "byte %d: read back otherwise", c);
	}
}

Test(varlink, extreme_numbers_are_written_as_json_c_writes_them)
{
	struct teredo_event ev = sample_record();
	struct teredo_port_event pe = { .type = TEREDO_PORT_CHANGED };
	char text[VARLINK_UPDATE_MAX];

	ev.port = UINT16_MAX;
	ev.pid = UINT32_MAX;
	ev.netns = UINT32_MAX;
	ev.ktime_ns = UINT64_MAX; /* unsigned, as json-c's uint64 writes it */
	ev.cookie = 1ull << 63;
	memset(ev.comm, '"', sizeof(ev.comm)); /* no NUL: 16 bytes, each escaped */
	cr_assert_neq(varlink_record_reply_text(&ev, text), 0);
	cr_assert_str_eq(text, reference_record(&ev));
	ev = (struct teredo_event){ .kind = TEREDO_EVENT_BOUND };
	cr_assert_neq(varlink_record_reply_text(&ev, text), 0);
	cr_assert_str_eq(text, reference_record(&ev));

	pe.pid = -1;
	pe.port = UINT16_MAX;
	pe.old_port = 1;
	pe.ktime_ns = UINT64_MAX;
	pe.cookie = UINT64_MAX;
	memset(pe.comm, '\x01', sizeof(pe.comm));
	cr_assert_neq(varlink_event_reply_text(&pe, text), 0);
	cr_assert_str_eq(text, reference_event(&pe));
}

Test(varlink, every_event_type_is_written_as_json_c_writes_it_and_skipped_when_read)
{
	struct teredo_port_event pe = { .port = 40001,
					.old_port = 40000,
					.family = AF_INET6,
					.pid = 99,
					.netns = 7,
					.ktime_ns = 5,
					.cookie = 6 };
	struct teredo_event ev;
	char text[VARLINK_UPDATE_MAX];
	size_t len;

	strcpy(pe.comm, "a/b\\c\"d\n");
	for (int type = TEREDO_PORT_INITIAL; type <= TEREDO_PORT_DELETED + 1; type++) {
		pe.type = (enum teredo_port_event_type)type;
		len = varlink_event_reply_text(&pe, text);
		cr_assert_str_eq(text, reference_event(&pe), "type %d", type);
		cr_assert_eq(varlink_update_scan(text, len, &ev), 0, "type %d", type);
	}
}

Test(varlink, the_state_objects_are_json_c_objects_of_the_same_text)
{
	struct teredo_event ev = sample_record();
	struct teredo_port_event pe = { .type = TEREDO_PORT_INITIAL, .port = 3 };
	struct json_object *o = varlink_record_json(&ev), *p = event_json(&pe);
	char text[VARLINK_UPDATE_MAX];

	cr_assert_not_null(o);
	cr_assert_not_null(p);
	varlink_record_reply_text(&ev, text);
	cr_assert_not_null(strstr(text, json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN)));
	varlink_event_reply_text(&pe, text);
	cr_assert_not_null(strstr(text, json_object_to_json_string_ext(p, JSON_C_TO_STRING_PLAIN)));
	json_object_put(o);
	json_object_put(p);
}

/*
 * Every one-byte change, insertion and deletion of a record and of an
 * event: the scanner either reads it as json-c does or leaves it to json-c.
 */
Test(varlink, a_changed_message_is_read_as_json_c_reads_it_or_left_to_json_c)
{
	static const char bytes[] = "09-1a\"\\/u{}[], :.eE+\x01\x7f\xc3";
	struct teredo_event ev = sample_record();
	struct teredo_port_event pe = { .type = TEREDO_PORT_ADDED, .port = 40000, .pid = 3 };
	char texts[2][VARLINK_UPDATE_MAX], msg[VARLINK_UPDATE_MAX + 2];
	size_t lens[2];
	unsigned int scanned = 0;

	strcpy(ev.comm, "mi\\redo");
	lens[0] = varlink_record_reply_text(&ev, texts[0]);
	lens[1] = varlink_event_reply_text(&pe, texts[1]);
	for (int t = 0; t < 2; t++) {
		size_t n = lens[t] - 1; /* without the NUL */

		for (size_t i = 0; i <= n; i++) {
			for (size_t b = 0; b < sizeof(bytes) - 1; b++) {
				/* replaced */
				memcpy(msg, texts[t], n + 1);
				if (i < n) {
					msg[i] = bytes[b];
					expect_same_reading(msg, n + 1);
				}
				/* inserted */
				memcpy(msg, texts[t], i);
				msg[i] = bytes[b];
				memcpy(msg + i + 1, texts[t] + i, n + 1 - i);
				expect_same_reading(msg, n + 2);
			}
			/* deleted */
			if (i < n) {
				memcpy(msg, texts[t], i);
				memcpy(msg + i, texts[t] + i + 1, n - i);
				expect_same_reading(msg, n);
			}
			scanned++;
		}
	}
	cr_assert_gt(scanned, 300);
}

Test(varlink, only_a_whole_message_is_scanned)
{
	struct teredo_event ev = sample_record(), out;
	char text[VARLINK_UPDATE_MAX + 8];
	size_t len = varlink_record_reply_text(&ev, text);

	cr_assert_eq(varlink_update_scan(text, len, &out), 1);
	/* The length given is the message's, its NUL the last byte. */
	cr_assert_eq(varlink_update_scan(text, len - 1, &out), VARLINK_NOT_SCANNED);
	memcpy(text + len - 1, " \0", 2);
	cr_assert_eq(varlink_update_scan(text, len + 1, &out), VARLINK_NOT_SCANNED);
	/* A port json-c reads but the record refuses: json-c's reading says so. */
	ev.port = 1;
	len = varlink_record_reply_text(&ev, text);
	memcpy(strstr(text, "\"port\":1,"), "\"port\":7,", 9);
	cr_assert_eq(varlink_update_scan(text, len, &out), 1);
	cr_assert_eq(out.port, 7);
	{
		const char *big =
			"{\"parameters\":{\"resync\":false,\"record\":{\"kind\":\"bound\","
			"\"port\":65536,\"family\":\"ipv4\",\"pid\":1,\"comm\":\"m\","
			"\"netns\":1,\"ktime_ns\":1,\"cookie\":1}},\"continues\":true}";

		cr_assert_eq(varlink_update_scan(big, strlen(big) + 1, &out), VARLINK_NOT_SCANNED);
		cr_assert_eq(json_c_reading(big, &out), -1);
	}
}

/* Names another writer might send: escapes json-c reads to UTF-8 are json-c's to read. */
Test(varlink, escapes_are_read_as_json_c_reads_them)
{
	static const char *const comms[] = { "\\u00e9",	       "\\u0041b",	     "a\\u0000b",
					     "\\ud83d\\ude00", "\xc3\xa9",	     "\\u004",
					     "\\u00E9",	       "\\/\\b\\f\\n\\r\\t", "\\x" };
	char msg[512];
	int scanned = 0;

	for (size_t i = 0; i < sizeof(comms) / sizeof(comms[0]); i++) {
		struct teredo_event ev;
		int n = snprintf(msg, sizeof(msg),
				 "{\"parameters\":{\"resync\":false,\"record\":{\"kind\":\"bound\","
				 "\"port\":1,\"family\":\"ipv4\",\"pid\":1,\"comm\":\"%s\","
				 "\"netns\":1,\"ktime_ns\":1,\"cookie\":1}},\"continues\":true}",
				 comms[i]);

		expect_same_reading(msg, (size_t)n + 1);
		scanned += varlink_update_scan(msg, (size_t)n + 1, &ev) == 1;
	}
	cr_assert_geq(scanned, 3, "the scanner reads plain escapes itself");
}

/* The command's line, written straight too, is json-c's spaced form of the same object. */
Test(varlink, the_command_line_is_json_c_spaced_text)
{
	static const char *const comms[] = { "miredo", "a\"b\\c/d\te\x01", "mi\xc3\xa9\xff",
					     "0123456789abcdef" };
	struct teredo_port_event ev = { .type = TEREDO_PORT_DELETED, .old_port = 9, .pid = 5 };

	for (size_t i = 0; i < sizeof(comms) / sizeof(comms[0]); i++) {
		char *line, *again;
		struct json_object *o;

		memcpy(ev.comm, comms[i], strnlen(comms[i], sizeof(ev.comm)));
		ev.cookie = UINT64_MAX - i;
		line = teredo_event_json_line(&ev, "2026-12-03T08:00:00.000+00:00");
		cr_assert_not_null(line);
		o = json_tokener_parse(line);
		cr_assert_not_null(o, "not JSON: %s", line);
		cr_assert_eq(asprintf(&again, "%s\n",
				      json_object_to_json_string_ext(
					      o, JSON_C_TO_STRING_SPACED |
							 JSON_C_TO_STRING_NOSLASHESCAPE)),
			     (int)strlen(line));
		cr_assert_str_eq(line, again);
		json_object_put(o);
		free(line);
		free(again);
	}
}

/* A read in place (the stream's): room at the end, grown as asked, never past the limit. */
Test(varlink, room_for_a_read_in_place_grows_to_at_most_the_limit)
{
	struct vbuf b;
	char *at;
	ssize_t room;

	vbuf_init(&b, 3000);
	room = vbuf_room(&b, 100, &at);
	cr_assert_geq(room, 100, "at least what was asked: %zd", room);
	cr_assert_eq(at, b.data);
	memcpy(at, "ab", 3);
	vbuf_grew(&b, 3);
	cr_assert_eq(vbuf_message_len(&b), 3, "the bytes put there count");
	room = vbuf_room(&b, 5000, &at);
	cr_assert_eq(room, 3000 - 3, "the limit holds: %zd", room);
	cr_assert_eq(at, b.data + 3);
	cr_assert_str_eq(b.data, "ab", "what was there is kept");
	vbuf_grew(&b, (size_t)room);
	cr_assert_eq(vbuf_room(&b, 1, &at), 0, "full: no room");
	vbuf_fini(&b);
}
