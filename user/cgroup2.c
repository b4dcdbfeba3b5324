// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <mntent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cgroup2.h"
#include "last_error.h"

int cgroup2_mount_point(char *buf, size_t len)
{
	FILE *mounts = setmntent("/proc/self/mounts", "r");
	struct mntent *m;
	int err = -ENOENT;

	if (!mounts)
		return set_last_error(-errno, "cannot read /proc/self/mounts: %s", strerror(errno));
	while ((m = getmntent(mounts))) {
		if (strcmp(m->mnt_type, "cgroup2") == 0 && strlen(m->mnt_dir) < len) {
			strcpy(buf, m->mnt_dir);
			err = 0;
			break;
		}
	}
	endmntent(mounts);
	if (err)
		/* `ip netns exec` remounts /sys without it: the usual way to get here. */
		set_last_error(err,
			       "no cgroup v2 mounted: mount -t cgroup2 none /sys/fs/cgroup "
			       "(under `ip netns exec`, or use nsenter --net=/run/netns/NAME)");
	return err;
}

static uint32_t depth_below(const char *root, const char *dir)
{
	const char *rest = dir + strlen(root);
	uint32_t level = 0;

	for (; *rest; rest++)
		if (*rest == '/' && rest[1] && rest[1] != '/')
			level++;
	return level;
}

int cgroup2_lookup(const char *path, uint64_t *id, uint32_t *level)
{
	char root[PATH_MAX], joined[PATH_MAX], real[PATH_MAX];
	struct stat st;
	int err;

	err = cgroup2_mount_point(root, sizeof(root));
	if (err)
		return err;
	if (path[0] == '/' && strncmp(path, root, strlen(root)) == 0)
		snprintf(joined, sizeof(joined), "%s", path);
	else
		snprintf(joined, sizeof(joined), "%s/%s", root, path[0] == '/' ? path + 1 : path);
	if (!realpath(joined, real) || stat(real, &st))
		return set_last_error(-EINVAL, "cgroup %s not found under the cgroup2 mount %s",
				      path, root);
	if (!S_ISDIR(st.st_mode) || strncmp(real, root, strlen(root)) != 0)
		return set_last_error(-EINVAL, "%s is not a cgroup v2 directory under %s", path,
				      root);
	/* On cgroup2 the directory's inode number is the kernel's cgroup id. */
	*id = st.st_ino;
	*level = depth_below(root, real);
	return 0;
}
