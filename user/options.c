// SPDX-License-Identifier: MIT
/* What counts as the Teredo client: defaults, names, and the environment. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "last_error.h"
#include "options.h"
#include "teredo_event.h"
#include "teredo_observer.h"

void teredo_options_init(struct teredo_options *opts)
{
	memset(opts, 0, sizeof(*opts));
	opts->comms[0] = "miredo";
	opts->n_comms = 1;
}

_Static_assert(TEREDO_OBSERVER_MAX_COMMS == TEREDO_MAX_COMMS, "one limit, in two headers");
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

int teredo_options_add_comm(struct teredo_options *opts, const char *comm)
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

/* TEREDO_OBSERVER_COMM is a comma-separated list; we keep pieces in a static copy. */
static int comms_from_list(struct teredo_options *opts, const char *list)
{
	static __thread char copy[TEREDO_OBSERVER_MAX_COMMS * TEREDO_COMM_LEN + 1];
	char *save, *name;
	int err;

	if (strlen(list) >= sizeof(copy))
		return set_last_error(-EINVAL, "TEREDO_OBSERVER_COMM is too long");
	strcpy(copy, list);
	opts->n_comms = 0;
	for (name = strtok_r(copy, ",", &save); name; name = strtok_r(NULL, ",", &save)) {
		err = teredo_options_add_comm(opts, name);
		if (err)
			return err;
	}
	return 0;
}

int teredo_options_from_env(struct teredo_options *opts)
{
	const char *v;
	int err = 0;

	if ((v = getenv("TEREDO_OBSERVER_COMM")))
		err = comms_from_list(opts, v);
	if (!err && (v = getenv("TEREDO_OBSERVER_PID")))
		err = teredo_parse_pid(v, &opts->pid);
	if (!err && (v = getenv("TEREDO_OBSERVER_CGROUP")))
		opts->cgroup = v[0] ? v : NULL;
	if (!err && (v = getenv("TEREDO_OBSERVER_MATCH_TRAFFIC")))
		err = parse_flag("TEREDO_OBSERVER_MATCH_TRAFFIC", v, &opts->match_traffic);
	if (!err && (v = getenv("TEREDO_OBSERVER_ALL_NETNS")))
		err = parse_flag("TEREDO_OBSERVER_ALL_NETNS", v, &opts->all_netns);
	if (!err && (v = getenv("TEREDO_OBSERVER_VERBOSE")))
		err = parse_flag("TEREDO_OBSERVER_VERBOSE", v, &opts->verbose);
	return err;
}

const char *teredo_port_event_type_name(enum teredo_port_event_type type)
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
static int check_options(const struct teredo_options *opts)
{
	size_t ring = opts->ring_bytes;
	int err = 0;

	if (opts->n_comms > TEREDO_OBSERVER_MAX_COMMS)
		return set_last_error(-EINVAL, "at most %d process names can be watched",
				      TEREDO_OBSERVER_MAX_COMMS);
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
	return check_options(out);
}
