/* SPDX-License-Identifier: MIT */
/*
 * What the library does with a selection (include/teredo_observer.h makes
 * and sets it): resolve, compare, and turn it into JSON and into the BPF
 * program's configuration. selection.c is the only place that knows its
 * fields.
 */
#ifndef TEREDO_SELECTION_H
#define TEREDO_SELECTION_H

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "teredo_observer.h"
#include "teredo_observer_private.h"

struct teredo_observer_bpf;

/*
 * What an entry point works with: a checked copy of sel, or when it is NULL,
 * the defaults plus the environment. The caller frees *out. 0 or -EINVAL,
 * -ENOMEM (*out NULL).
 */
int selection_resolve(const struct teredo_selection *sel, struct teredo_selection **out);

/* Every field the same: an observer of one serves the other (a hub's test). */
bool selection_equal(const struct teredo_selection *a, const struct teredo_selection *b);

/*
 * The same processes are the client: names, users, pid, cgroup and traffic
 * (the namespaces watched, the ring's size and verbosity aside).
 */
bool selection_same_clients(const struct teredo_selection *a, const struct teredo_selection *b);

/* The processes of teredo_selection_new()'s defaults. */
bool selection_default_clients(const struct teredo_selection *sel);

bool selection_verbose(const struct teredo_selection *sel);
/* The size of the consumer's own ring buffer (a power of two of pages). */
#define SELECTION_DEFAULT_RING_BYTES (256 * 1024)
size_t selection_ring_bytes(const struct teredo_selection *sel);
/* The cgroup path the client must be in (where the hooks go), or NULL: any. */
const char *selection_cgroup(const struct teredo_selection *sel);

/*
 * The Varlink service's Selection: what decides which sockets are the
 * client's, and netns, the namespace watched. The ring's size and verbosity
 * are one process's business, not the wire's: from_json leaves them at
 * their defaults. from_json: 0, or -EINVAL for anything missing or of
 * another type, -ENOMEM; the caller frees *out.
 */
struct json_object *selection_to_json(const struct teredo_selection *sel, uint32_t netns);
int selection_from_json(struct json_object *obj, struct teredo_selection **out, uint32_t *netns);

/*
 * Into the BPF program's read-only data (before load), watching own_netns
 * unless every namespace is. 0 or a negative errno.
 */
int selection_configure_bpf(const struct teredo_selection *sel, struct teredo_observer_bpf *skel,
			    uint32_t own_netns);

#endif
