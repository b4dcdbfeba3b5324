// SPDX-License-Identifier: MIT
/*
 * One encoder for an event: the command's --json line and the service's
 * Watch reply carry the same fields with the same values, whatever bytes the
 * process name holds.
 */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "event_json.h"
#include "teredo_observer.h"
#include "teredo_observer_private.h"
#include "varlink.h"

/* The bytes a message or line holds: all valid UTF-8 (RFC 3629), as JSON must be. */
static bool valid_utf8(const char *text)
{
	struct json_object *s = event_comm_json(text, strlen(text));
	bool same = s && !strcmp(json_object_get_string(s), text);

	json_object_put(s);
	return same;
}

/* The command's path: its --json line, parsed back. */
static struct json_object *command_line(const struct teredo_port_event *ev, char **text)
{
	struct json_object *o;

	*text = teredo_event_json_line(ev, "2026-12-03T08:00:00.000+00:00");
	cr_assert_not_null(*text);
	cr_assert_eq((*text)[strlen(*text) - 1], '\n', "one line: %s", *text);
	o = json_tokener_parse(*text);
	cr_assert_not_null(o, "the line is not JSON: %s", *text);
	return o;
}

/* The service's path: a Watch reply as the socket carries it (serve.c's text), its event parsed
 * back. */
static struct json_object *watch_reply(const struct teredo_port_event *ev, struct vbuf *wire)
{
	char text[VARLINK_UPDATE_MAX];
	size_t len = varlink_event_reply_text(ev, text);
	struct json_object *o, *params, *event;

	cr_assert_neq(len, 0);
	vbuf_init(wire, 1 << 16);
	cr_assert_eq(vbuf_append(wire, text, len), 0);
	cr_assert_eq(vbuf_message_len(wire), (ssize_t)wire->len, "one NUL-terminated message");
	o = json_tokener_parse(wire->data);
	cr_assert_not_null(o, "the message is not JSON: %s", wire->data);
	cr_assert(json_object_object_get_ex(o, "parameters", &params), "%s", wire->data);
	cr_assert(json_object_object_get_ex(params, "event", &event), "no event in %s", wire->data);
	json_object_get(event);
	json_object_put(o);
	return event;
}

static const char *text_of(struct json_object *o, const char *key)
{
	struct json_object *v;

	cr_assert(json_object_object_get_ex(o, key, &v), "no %s", key);
	return json_object_get_string(v);
}

/* Both paths, then every field of the service's event equal to the line's. */
static void expect_same(const struct teredo_port_event *ev, const char *comm)
{
	struct json_object *line, *event, *v;
	const char *spelled;
	struct vbuf wire;
	char *text;

	line = command_line(ev, &text);
	event = watch_reply(ev, &wire);
	cr_assert(valid_utf8(text), "the line is not UTF-8: %s", text);
	cr_assert(valid_utf8(wire.data), "the message is not UTF-8: %s", wire.data);
	cr_assert_str_eq(text_of(line, "comm"), comm);
	cr_assert_str_eq(text_of(event, "comm"), comm);
	json_object_object_foreach(event, key, value)
	{
		cr_assert(json_object_object_get_ex(line, key, &v), "--json has no %s", key);
		cr_assert(json_object_equal(v, value), "%s: --json %s, Watch %s", key,
			  json_object_to_json_string(v), json_object_to_json_string(value));
	}
	cr_assert_eq(json_object_object_length(line), json_object_object_length(event) + 1,
		     "--json has the service's fields and its time, no more: %s", text);
	cr_assert_str_eq(text_of(line, "time"), "2026-12-03T08:00:00.000+00:00");
	/* The name's bytes in both texts, too: one escaping, not two. */
	spelled = json_object_to_json_string_ext(json_object_object_get(event, "comm"),
						 JSON_C_TO_STRING_NOSLASHESCAPE);
	cr_assert(strstr(text, spelled) && strstr(wire.data, spelled),
		  "comm spelled %s, the line %s, the message %s", spelled, text, wire.data);
	json_object_put(line);
	json_object_put(event);
	vbuf_fini(&wire);
	free(text);
}

static struct teredo_port_event event_named(const char *comm)
{
	struct teredo_port_event ev = {
		.type = TEREDO_PORT_CHANGED,
		.port = 40001,
		.old_port = 40000,
		.family = AF_INET6,
		.pid = 4242,
		.netns = 4026531840u,
		.ktime_ns = 123456789012345ull,
		.cookie = (1ull << 63) | 7, /* a synthetic cookie: bit 63 set */
	};

	memcpy(ev.comm, comm, strnlen(comm, sizeof(ev.comm)));
	return ev;
}

Test(event_json, ascii_name)
{
	struct teredo_port_event ev = event_named("miredo");

	expect_same(&ev, "miredo");
}

/* Valid UTF-8 kept as it is ("mié" and a 4-byte emoji), each stray byte U+FFFD. */
Test(event_json, utf8_and_invalid_bytes_in_the_name)
{
	struct teredo_port_event ev = event_named("mi\xc3\xa9\xf0\x9f\x98\x80\xff\x80z\xc3");

	expect_same(&ev, "mi\xc3\xa9\xf0\x9f\x98\x80\xef\xbf\xbd\xef\xbf\xbdz\xef\xbf\xbd");
}

/* Overlong forms, surrogates and code points above U+10FFFF are not UTF-8 either. */
Test(event_json, overlong_surrogate_and_too_high_refused)
{
	struct teredo_port_event ev =
		event_named("\xc0\xaf\xe0\x80\xaf\xed\xa0\x80\xf4\x90\x80\x80");
	char replaced[12 * 3 + 1] = "";

	for (int i = 0; i < 12; i++) /* every byte: none begins a valid sequence */
		strcat(replaced, "\xef\xbf\xbd");
	expect_same(&ev, replaced);
}

/* All 16 bytes used (no NUL), quotes, a backslash, a slash and a control character. */
Test(event_json, full_name_and_characters_json_escapes)
{
	struct teredo_port_event ev = event_named("a\"b\\c/d\te0123456");

	expect_same(&ev, "a\"b\\c/d\te0123456");
}

Test(event_json, fields_and_unsigned_64_bit_values)
{
	struct teredo_port_event ev = event_named("miredo");
	struct json_object *line;
	uint64_t cookie, ktime;
	char *text;

	line = command_line(&ev, &text);
	cr_assert_str_eq(text_of(line, "type"), "change");
	cr_assert_str_eq(text_of(line, "family"), "ipv6", "family written once, by one function");
	cr_assert_eq(varlink_get_u64(line, "cookie", &cookie), 0, "%s", text);
	cr_assert_eq(cookie, (1ull << 63) | 7, "the cookie read back: %llu",
		     (unsigned long long)cookie);
	cr_assert_eq(varlink_get_u64(line, "ktime_ns", &ktime), 0);
	cr_assert_eq(ktime, 123456789012345ull);
	cr_assert(strstr(text, "\"cookie\": 9223372036854775815"), "%s", text);
	cr_assert(strncmp(text, "{ \"type\": \"change\", \"port\": 40001, \"old_port\": 40000, ",
			  52) == 0,
		  "the line's layout: %s", text);
	json_object_put(line);
	free(text);
}
