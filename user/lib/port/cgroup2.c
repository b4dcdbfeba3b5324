// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/mount.h>
#include <mntent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "cgroup2.h"
#include "last_error.h"

static int find_cgroup2_mount(char *buf, size_t len)
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
	return err;
}

int cgroup2_mount_point(char *buf, size_t len)
{
	int err = find_cgroup2_mount(buf, len);

	if (err == -ENOENT)
		set_last_error(err, "no cgroup v2 mounted: mount -t cgroup2 none /sys/fs/cgroup");
	return err;
}

/*
 * A cgroup2 mount of our own, attached nowhere (fsopen/fsmount, Linux 5.2):
 * nothing to unmount, invisible to the rest of the system, gone with its fd.
 */
static int private_cgroup2_root(void)
{
	int fs, mnt, root = -1;

	fs = syscall(SYS_fsopen, "cgroup2", FSOPEN_CLOEXEC);
	if (fs < 0)
		return set_last_error(-errno,
				      "no cgroup v2 visible, and mounting one failed (%s): "
				      "mount -t cgroup2 none /sys/fs/cgroup",
				      strerror(errno));
	if (syscall(SYS_fsconfig, fs, FSCONFIG_CMD_CREATE, NULL, NULL, 0) ||
	    (mnt = syscall(SYS_fsmount, fs, FSMOUNT_CLOEXEC, 0)) < 0) {
		set_last_error(-errno,
			       "cannot mount cgroup v2 (%s): mount -t cgroup2 none "
			       "/sys/fs/cgroup",
			       strerror(errno));
		close(fs);
		return -ENOENT;
	}
	/* The mount fd is O_PATH, which the kernel does not take as a cgroup. */
	root = openat(mnt, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root < 0)
		set_last_error(-errno, "cannot open the cgroup v2 root: %s", strerror(errno));
	close(mnt);
	close(fs);
	return root < 0 ? -ENOENT : root;
}

int cgroup2_root_fd(void)
{
	char root[PATH_MAX];
	int fd, err;

	err = find_cgroup2_mount(root, sizeof(root));
	if (err == -ENOENT)
		return private_cgroup2_root();
	if (err)
		return err;
	fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return set_last_error(-errno, "cannot open cgroup2 root %s: %s", root,
				      strerror(errno));
	return fd;
}

int cgroup2_id(int cgroup_fd, uint64_t *id)
{
	struct {
		struct file_handle fh;
		uint64_t id;
	} h = { .fh.handle_bytes = sizeof(uint64_t) };
	int mount_id;

	if (name_to_handle_at(cgroup_fd, "", &h.fh, &mount_id, AT_EMPTY_PATH))
		return set_last_error(-errno, "cannot read the cgroup's id: %s", strerror(errno));
	memcpy(id, h.fh.f_handle, sizeof(*id));
	return 0;
}

/*
 * The host's root cgroup is the one without cgroup.freeze (a file of every
 * other cgroup since Linux 5.2): telling it apart keeps the host's programs
 * from climbing to find it.
 */
int cgroup2_path_root_id(uint64_t *id)
{
	int fd = cgroup2_root_fd(), err = 0;

	if (fd < 0)
		return fd;
	*id = 0;
	if (faccessat(fd, "cgroup.freeze", F_OK, 0) == 0)
		err = cgroup2_id(fd, id);
	else if (errno != ENOENT)
		err = set_last_error(-errno, "cannot read the cgroup2 root: %s", strerror(errno));
	close(fd);
	return err;
}

/* A path under the cgroup2 mount point loses that prefix; any other is below the root. */
static const char *below_root(const char *path)
{
	char root[PATH_MAX];
	size_t n;

	if (path[0] != '/' || find_cgroup2_mount(root, sizeof(root)))
		return path;
	n = strlen(root);
	if (strncmp(path, root, n) == 0 && (path[n] == '/' || path[n] == '\0'))
		return path + n;
	return path;
}

static int bad_path(const char *path, const char *why)
{
	return set_last_error(-EINVAL, "cgroup '%s': %s", path, why);
}

int cgroup2_path_names(const char *path, char names[][TEREDO_CGROUP_NAME_LEN], uint32_t *levels)
{
	const char *p = below_root(path), *end;
	uint32_t n = 0;
	size_t len;

	for (; *p; p = end) {
		while (*p == '/')
			p++;
		if (!*p)
			break;
		end = strchrnul(p, '/');
		len = end - p;
		if ((len == 1 && p[0] == '.') || (len == 2 && p[0] == '.' && p[1] == '.'))
			return bad_path(path, "'.' and '..' are not allowed: give the path itself");
		if (len >= TEREDO_CGROUP_NAME_LEN - 1)
			return bad_path(path, "a name has more than 62 characters");
		if (n == TEREDO_MAX_CGROUP_LEVELS)
			return bad_path(path, "more than 8 levels below the root");
		if (names) {
			memset(names[n], 0, TEREDO_CGROUP_NAME_LEN);
			memcpy(names[n], p, len);
		}
		n++;
	}
	if (!n)
		return bad_path(path, "the root holds every process: name a cgroup below it, "
				      "e.g. /system.slice/miredo.service");
	*levels = n;
	return 0;
}
