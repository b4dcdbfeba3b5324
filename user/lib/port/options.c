// SPDX-License-Identifier: MIT
/* What counts as the Teredo client: defaults, names, and the environment. */
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>

#include "cgroup2.h"
#include "last_error.h"
#include "options.h"
#include "teredo_event.h"
#include "teredo_observer.h"
#include "teredo_observer_private.h"
#include "public.h"

/* Debian's miredo runs the worker that owns the Teredo socket as this user. */
#define MIREDO_SYSTEM_USER "miredo"

static bool lookup_user(const char *name, uid_t *uid)
{
	struct passwd pw, *found = NULL;
	char buf[1024];

	if (getpwnam_r(name, &pw, buf, sizeof(buf), &found) || !found)
		return false;
	*uid = found->pw_uid;
	return true;
}

_public_ void teredo_options_init(struct teredo_options *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->comms[0] = "miredo";
	opts->n_comms = 1;
	opts->uids[0] = 0;
	opts->n_uids = 1;
	if (lookup_user(MIREDO_SYSTEM_USER, &opts->uids[1]) && opts->uids[1] != 0)
		opts->n_uids = 2;
}

_Static_assert(TEREDO_OBSERVER_MAX_COMMS == TEREDO_MAX_COMMS, "one limit, in two headers");
_Static_assert(TEREDO_OBSERVER_MAX_USERS == TEREDO_MAX_USERS, "one limit, in two headers");
_Static_assert(sizeof(((struct teredo_port_event *)0)->comm) == TEREDO_COMM_LEN, "comm sizes");

static int check_comm(const char *comm)
{
	if (!comm || !comm[0] || strlen(comm) >= TEREDO_COMM_LEN)
		return set_last_error(-EINVAL,
				      "process name '%s' must have 1 to 15 characters, as the "
				      "kernel keeps them",
				      comm ? comm : "(null)");
	return 0;
}

_public_ int teredo_options_add_comm(struct teredo_options *opts, const char *comm)
{
	int err = check_comm(comm);

	if (err)
		return err;
	if (opts->n_comms == TEREDO_OBSERVER_MAX_COMMS)
		return set_last_error(-EINVAL, "at most %d process names can be watched",
				      TEREDO_OBSERVER_MAX_COMMS);
	opts->comms[opts->n_comms++] = comm;
	return 0;
}

static int parse_uid(const char *text, uid_t *uid)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(text, &end, 10);
	if (errno || end == text || *end || text[0] == '-' || v >= (uid_t)-1)
		return -EINVAL;
	*uid = (uid_t)v;
	return 0;
}

_public_ int teredo_options_add_user(struct teredo_options *opts, const char *user)
{
	uid_t uid;

	if (!user || !user[0])
		return set_last_error(-EINVAL, "empty user name: name a user or a uid");
	if (parse_uid(user, &uid) && !lookup_user(user, &uid))
		return set_last_error(-EINVAL,
				      "user '%s' not found: name an existing user or a uid", user);
	if (opts->n_uids == TEREDO_OBSERVER_MAX_USERS)
		return set_last_error(-EINVAL, "at most %d users can be trusted",
				      TEREDO_OBSERVER_MAX_USERS);
	opts->uids[opts->n_uids++] = uid;
	return 0;
}

static int parse_flag(const char *name, const char *value, bool *out)
{
	if (!strcmp(value, "1") || !strcmp(value, "yes") || !strcmp(value, "true")) {
		*out = true;
		return 0;
	}
	if (!strcmp(value, "0") || !strcmp(value, "no") || !strcmp(value, "false")) {
		*out = false;
		return 0;
	}
	return set_last_error(-EINVAL, "%s=%s: expected 1 or 0", name, value);
}

int teredo_parse_pid(const char *text, pid_t *pid)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(text, &end, 10);
	if (errno || end == text || *end || v <= 0 || v > INT_MAX)
		return set_last_error(-EINVAL, "pid '%s' is not a positive process id", text);
	*pid = (pid_t)v;
	return 0;
}

/* Each comma-separated piece of list, copied into buf, passed to add. */
static int add_each(struct teredo_options *opts, const char *var, const char *list, char *buf,
		    size_t len, int (*add)(struct teredo_options *, const char *))
{
	char *save, *name;
	int err;

	if (strlen(list) >= len)
		return set_last_error(-EINVAL, "%s is too long", var);
	strcpy(buf, list);
	for (name = strtok_r(buf, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
		err = add(opts, name);
		if (err)
			return err;
	}
	return 0;
}

/* TEREDO_OBSERVER_COMM replaces the default names; we keep the pieces in a static copy. */
static int comms_from_list(struct teredo_options *opts, const char *list)
{
	static __thread char copy[TEREDO_OBSERVER_MAX_COMMS * TEREDO_COMM_LEN + 1];

	opts->n_comms = 0;
	return add_each(opts, "TEREDO_OBSERVER_COMM", list, copy, sizeof(copy),
			teredo_options_add_comm);
}

/* TEREDO_OBSERVER_USER replaces the default users; uids are kept, not the names. */
static int users_from_list(struct teredo_options *opts, const char *list)
{
	char copy[TEREDO_OBSERVER_MAX_USERS * 64 + 1];

	opts->n_uids = 0;
	return add_each(opts, "TEREDO_OBSERVER_USER", list, copy, sizeof(copy),
			teredo_options_add_user);
}

/* An empty list would match nothing: a mistake to say, not a silent "no client". */
static int check_selection(const struct teredo_options *opts)
{
	if (!opts->n_comms)
		return set_last_error(-EINVAL, "no process name selected: the selection would "
					       "match nothing (TEREDO_OBSERVER_COMM is empty?)");
	if (!opts->n_uids)
		return set_last_error(-EINVAL, "no user selected: the selection would match "
					       "nothing (TEREDO_OBSERVER_USER is empty?)");
	if (opts->cgroup && !opts->cgroup[0])
		return set_last_error(-EINVAL, "empty cgroup path: name a cgroup, e.g. "
					       "/system.slice/miredo.service");
	if (opts->cgroup) {
		uint32_t levels;

		return cgroup2_path_names(opts->cgroup, NULL, &levels);
	}
	return 0;
}

_public_ int teredo_options_from_env(struct teredo_options *opts)
{
	const char *v;
	int err = 0;

	if ((v = getenv("TEREDO_OBSERVER_COMM")))
		err = comms_from_list(opts, v);
	if (!err && (v = getenv("TEREDO_OBSERVER_USER")))
		err = users_from_list(opts, v);
	if (!err && (v = getenv("TEREDO_OBSERVER_PID")))
		err = teredo_parse_pid(v, &opts->pid);
	if (!err && (v = getenv("TEREDO_OBSERVER_CGROUP")))
		opts->cgroup = v;
	if (!err && (v = getenv("TEREDO_OBSERVER_MATCH_TRAFFIC")))
		err = parse_flag("TEREDO_OBSERVER_MATCH_TRAFFIC", v, &opts->match_traffic);
	if (!err && (v = getenv("TEREDO_OBSERVER_ALL_NETNS")))
		err = parse_flag("TEREDO_OBSERVER_ALL_NETNS", v, &opts->all_netns);
	if (!err && (v = getenv("TEREDO_OBSERVER_VERBOSE")))
		err = parse_flag("TEREDO_OBSERVER_VERBOSE", v, &opts->verbose);
	return err ? err : check_selection(opts);
}

_public_ const char *teredo_port_event_type_name(enum teredo_port_event_type type)
{
	switch (type) {
	case TEREDO_PORT_INITIAL:
		return "initial";
	case TEREDO_PORT_ADDED:
		return "add";
	case TEREDO_PORT_CHANGED:
		return "change";
	case TEREDO_PORT_DELETED:
		return "delete";
	}
	return "unknown";
}

/* Options reach the kernel's read-only data and fixed arrays: check them once, here. */
_public_ int teredo_options_check(const struct teredo_options *opts)
{
	size_t ring = opts->ring_bytes;
	int err = 0;

	if (opts->n_comms > TEREDO_OBSERVER_MAX_COMMS)
		return set_last_error(-EINVAL, "at most %d process names can be watched",
				      TEREDO_OBSERVER_MAX_COMMS);
	if (opts->n_uids > TEREDO_OBSERVER_MAX_USERS)
		return set_last_error(-EINVAL, "at most %d users can be trusted",
				      TEREDO_OBSERVER_MAX_USERS);
	err = check_selection(opts);
	if (err)
		return err;
	for (size_t i = 0; i < opts->n_comms && !err; i++)
		err = check_comm(opts->comms[i]);
	if (err)
		return err;
	if (opts->pid < 0)
		return set_last_error(-EINVAL, "pid %d is not a process id", (int)opts->pid);
	if (ring && (ring < 4096 || (ring & (ring - 1))))
		return set_last_error(-EINVAL,
				      "ring_bytes %zu: must be 0 or a power of two of "
				      "at least 4096",
				      ring);
	return 0;
}

int resolve_options(const struct teredo_options *opts, struct teredo_options *out)
{
	int err;

	if (opts) {
		*out = *opts;
	} else {
		teredo_options_init(out);
		err = teredo_options_from_env(out);
		if (err)
			return err;
	}
	return teredo_options_check(out);
}
