/* SPDX-License-Identifier: MIT */
/* Where cgroup v2 is mounted, and the id and depth of one of its cgroups. */
#ifndef TEREDO_CGROUP2_H
#define TEREDO_CGROUP2_H

#include <stddef.h>
#include <stdint.h>

/* Find the cgroup2 mount in /proc/self/mounts. 0, or -ENOENT with a message. */
int cgroup2_mount_point(char *buf, size_t len);

/*
 * Resolve a cgroup path (absolute, or relative to the cgroup2 mount) to the
 * id the kernel uses in bpf_get_current_ancestor_cgroup_id() and its level.
 */
int cgroup2_lookup(const char *path, uint64_t *id, uint32_t *level);

#endif
