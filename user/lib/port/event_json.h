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
#include <stddef.h>
#include <stdint.h>

#include "teredo_observer.h"

/* type, port, old_port, then the detail below. NULL: no memory. */
struct json_object *event_json(const struct teredo_port_event *ev);

/*
 * What an event and a socket record share: family ("ipv4", "ipv6", "" for
 * none), pid, comm (event_comm_json), netns, ktime_ns, cookie.
 */
void event_json_detail(struct json_object *o, uint16_t family, uint32_t pid, const char *comm,
		       size_t comm_len, uint32_t netns, uint64_t ktime_ns, uint64_t cookie);

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
