/* SPDX-License-Identifier: MIT */
/* cgroup v2: where its root is, and a cgroup path as the kernel side matches it. */
#ifndef TEREDO_CGROUP2_H
#define TEREDO_CGROUP2_H

#include <stddef.h>
#include <stdint.h>

#include "teredo_event.h"

/* Find the cgroup2 mount in /proc/self/mounts. 0, or -ENOENT with a message. */
int cgroup2_mount_point(char *buf, size_t len);

/*
 * An fd of the cgroup2 root, to attach programs to: through its mount point,
 * or where none is visible (`ip netns exec` remounts /sys without it), a
 * private mount that appears in no mount table. The fd, or a negative errno.
 */
int cgroup2_root_fd(void);

/* A cgroup directory's id (its file handle; a link's info names it so). 0, or a negative errno. */
int cgroup2_id(int cgroup_fd, uint64_t *id);

/*
 * The id of the cgroup a path starts from: the root of the cgroup2 mount
 * (cgroup2_root_fd), which in a container with a cgroup namespace of its own
 * is that namespace's root, not the host's. 0 in *id for the host's root.
 * 0, or a negative errno with a message.
 */
int cgroup2_path_root_id(uint64_t *id);

/*
 * Split a cgroup path below the cgroup2 root into its names, which need not
 * exist yet. Taken as below the root whether written /system.slice/x.service,
 * system.slice/x.service, or under the cgroup2 mount point. names may be NULL
 * to check only. 0, or -EINVAL with a message.
 */
int cgroup2_path_names(const char *path, char names[][TEREDO_CGROUP_NAME_LEN], uint32_t *levels);

#endif
