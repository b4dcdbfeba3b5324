/* SPDX-License-Identifier: MIT */
/*
 * Where the cgroup programs of an observer with a cgroup path belong, as
 * that cgroup comes and goes: at the cgroup while a process is in it, else
 * at its deepest existing proper ancestor, which every cgroup made below it
 * inherits from (so the first bind in a new one is seen). Watched through
 * inotify on cgroupfs: mkdir and rmdir on the path, cgroup.events when the
 * cgroup fills or empties.
 */
#ifndef TEREDO_CGROUP_FOLLOW_H
#define TEREDO_CGROUP_FOLLOW_H

#include <stdbool.h>

struct cgroup_follow;

/* For a path cgroup2_path_names() takes. 0, or a negative errno with a message. */
int cgroup_follow_new(const char *path, struct cgroup_follow **out);
void cgroup_follow_free(struct cgroup_follow *cf);

/* Readable when something on the path may have changed. */
int cgroup_follow_fd(const struct cgroup_follow *cf);

/*
 * Read what the fd has. True when the place may have changed since the last
 * cgroup_follow_place() (always before the first): only then is it worth asking.
 */
bool cgroup_follow_changed(struct cgroup_follow *cf);

/*
 * The place now, as an open cgroup directory fd (the caller closes it), with
 * the path's watches renewed first, so that any later change wakes the fd.
 * 0, or a negative errno with a message.
 */
int cgroup_follow_place(struct cgroup_follow *cf, int *fd);

#endif
