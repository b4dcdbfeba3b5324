// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "cgroup2.h"
#include "cgroup_follow.h"
#include "last_error.h"

/* A directory on the path: the next name made, removed or renamed in it. */
#define DIR_EVENTS (IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ONLYDIR)

struct cgroup_follow {
	char *path;  /* as given, for messages */
	int root_fd; /* the cgroup2 root, perhaps a private mount (cgroup2_root_fd) */
	int inotify_fd;
	char names[TEREDO_MAX_CGROUP_LEVELS][TEREDO_CGROUP_NAME_LEN];
	uint32_t levels;
	/*
	 * The watch of each existing directory on the path, wds[k] on the one
	 * k names deep (0: the root), and wds[levels] on the cgroup's own
	 * cgroup.events; -1 past what exists.
	 */
	int wds[TEREDO_MAX_CGROUP_LEVELS + 1];
	bool changed;
};

/* The first depth names of the path, from the root ("." for none). */
static void relative_path(const struct cgroup_follow *cf, uint32_t depth, const char *file,
			  char *buf, size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	for (uint32_t k = 0; k < depth; k++)
		n += snprintf(buf + n, len - n, "%s%s", k ? "/" : "", cf->names[k]);
	if (file)
		snprintf(buf + n, len - n, "%s%s", depth ? "/" : "", file);
	else if (!depth)
		snprintf(buf, len, ".");
}

/*
 * inotify takes a path, and the root may be a mount no path reaches: through
 * the root fd's /proc/self/fd link, which works for either.
 */
static int add_watch(struct cgroup_follow *cf, uint32_t depth, const char *file, uint32_t mask)
{
	char rel[PATH_MAX], full[PATH_MAX + 32];

	relative_path(cf, depth, file, rel, sizeof(rel));
	snprintf(full, sizeof(full), "/proc/self/fd/%d/%s", cf->root_fd, rel);
	return inotify_add_watch(cf->inotify_fd, full, mask);
}

/*
 * Watch every existing directory on the path, root first, and the cgroup's
 * cgroup.events if it exists: a name made after its parent's watch is
 * added is an event. The depth that exists (levels: the cgroup itself).
 */
static int renew_watches(struct cgroup_follow *cf, uint32_t *exists)
{
	int wd;

	*exists = 0;
	for (uint32_t k = 0; k <= cf->levels; k++) {
		cf->wds[k] = -1;
		if (k && k != *exists + 1)
			continue;
		wd = k < cf->levels ? add_watch(cf, k, NULL, DIR_EVENTS)
				    : add_watch(cf, k, "cgroup.events", IN_MODIFY);
		if (wd >= 0) {
			cf->wds[k] = wd;
			*exists = k;
		} else if (errno != ENOENT && errno != ENOTDIR) {
			return set_last_error(-errno, "cannot watch cgroup '%s' (inotify): %s",
					      cf->path, strerror(errno));
		}
	}
	return 0;
}

/* cgroup.events says "populated 1" while a process is in the cgroup or below. */
static bool populated(const struct cgroup_follow *cf)
{
	char rel[PATH_MAX], buf[256];
	ssize_t n;
	int fd;

	relative_path(cf, cf->levels, "cgroup.events", rel, sizeof(rel));
	fd = openat(cf->root_fd, rel, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return strstr(buf, "populated 1") != NULL;
}

static int open_depth(const struct cgroup_follow *cf, uint32_t depth)
{
	char rel[PATH_MAX];

	relative_path(cf, depth, NULL, rel, sizeof(rel));
	return openat(cf->root_fd, rel, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
}

/*
 * An empty cgroup is left to its parent: `systemctl restart` removes it and
 * makes it again, and the new one inherits only from an ancestor.
 */
int cgroup_follow_place(struct cgroup_follow *cf, int *fd)
{
	uint32_t exists, depth;
	int err;

	cf->changed = false;
	err = renew_watches(cf, &exists);
	if (err)
		return err;
	depth = exists == cf->levels && !populated(cf) ? exists - 1 : exists;
	/* Removed since it was watched: its parent's watch has the event already. */
	while ((*fd = open_depth(cf, depth)) < 0 && errno == ENOENT && depth > 0)
		depth--;
	if (*fd < 0)
		return set_last_error(-errno, "cannot open cgroup '%s' or an ancestor: %s",
				      cf->path, strerror(errno));
	return 0;
}

/* Only the path's own names count: a sibling service's start wakes us for nothing. */
static bool event_matters(const struct cgroup_follow *cf, const struct inotify_event *ev)
{
	if (ev->mask & (IN_Q_OVERFLOW | IN_IGNORED))
		return true;
	if (ev->wd == cf->wds[cf->levels])
		return true;
	for (uint32_t k = 0; k < cf->levels; k++)
		if (ev->wd == cf->wds[k])
			return ev->len && strcmp(ev->name, cf->names[k]) == 0;
	return false;
}

bool cgroup_follow_changed(struct cgroup_follow *cf)
{
	char buf[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	const struct inotify_event *ev;
	ssize_t n;

	while ((n = read(cf->inotify_fd, buf, sizeof(buf))) > 0) {
		for (char *p = buf; p < buf + n; p += sizeof(*ev) + ev->len) {
			ev = (const struct inotify_event *)p;
			cf->changed |= event_matters(cf, ev);
		}
	}
	return cf->changed;
}

int cgroup_follow_fd(const struct cgroup_follow *cf)
{
	return cf->inotify_fd;
}

int cgroup_follow_new(const char *path, struct cgroup_follow **out)
{
	struct cgroup_follow *cf;
	int err;

	*out = NULL;
	cf = calloc(1, sizeof(*cf));
	if (!cf)
		return set_last_error(-ENOMEM, "out of memory");
	cf->changed = true;
	cf->root_fd = cf->inotify_fd = -1;
	cf->path = strdup(path);
	err = cf->path ? cgroup2_path_names(path, cf->names, &cf->levels)
		       : set_last_error(-ENOMEM, "out of memory");
	if (!err)
		err = cf->root_fd = cgroup2_root_fd();
	if (err < 0) {
		cf->root_fd = -1;
		goto fail;
	}
	cf->inotify_fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
	if (cf->inotify_fd < 0) {
		err = set_last_error(-errno, "cannot follow cgroup '%s': inotify: %s", path,
				     strerror(errno));
		goto fail;
	}
	*out = cf;
	return 0;
fail:
	cgroup_follow_free(cf);
	return err;
}

void cgroup_follow_free(struct cgroup_follow *cf)
{
	if (!cf)
		return;
	if (cf->inotify_fd >= 0)
		close(cf->inotify_fd);
	if (cf->root_fd >= 0)
		close(cf->root_fd);
	free(cf->path);
	free(cf);
}
