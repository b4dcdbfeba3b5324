// SPDX-License-Identifier: MIT
/*
 * What counts as the Teredo client, in one place: the selection is made,
 * set, copied, compared, checked, turned into JSON and back (for the
 * service) and into the BPF program's configuration here, and nowhere else.
 * Whoever needs one of these calls this module: the hubs of subscription.c,
 * the service client's matching, the Varlink server, the BPF loader.
 *
 * The selection owns everything it holds (names in fixed arrays, the cgroup
 * path copied): nothing points into the caller's memory or the environment.
 */
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/libbpf.h>

#include "cgroup2.h"
#include "event_json.h"
#include "last_error.h"
#include "public.h"
#include "selection.h"
#include "teredo_event.h"
#include "teredo_observer.bpf.skel.h"
#include "teredo_observer.h"
#include "teredo_observer_private.h"
#include "varlink.h"

/* Debian's miredo runs the worker that owns the Teredo socket as this user. */
#define MIREDO_SYSTEM_USER "miredo"

/*
 * Every field below is a criterion or a setting, and selection_equal
 * compares each one (tests/unit/test_selection.c changes each alone and
 * expects a difference): a field added here is added there, to copy's
 * users' expectations, to the JSON where the service needs it, and to the
 * tests. The two *_replaceable flags are not part of what is selected: they
 * only say that the next add starts a new list.
 */
struct teredo_selection {
	char comms[TEREDO_MAX_COMMS][TEREDO_COMM_LEN]; /* unused ones all zero */
	size_t n_comms;
	uid_t uids[TEREDO_MAX_USERS];
	size_t n_uids;
	pid_t pid;		/* this process and its children; 0: any */
	char cgroup[PATH_MAX];	/* below the cgroup2 root; "": any */
	bool match_traffic;	/* only UDP sockets that send to port 3544 */
	bool all_netns;		/* every network namespace, not just the caller's */
	size_t ring_bytes;	/* 0: the default */
	bool verbose;		/* libbpf's diagnostics to stderr */
	bool comms_replaceable; /* the defaults' or the environment's list */
	bool users_replaceable;
};

_Static_assert(TEREDO_OBSERVER_MAX_COMMS == TEREDO_MAX_COMMS, "one limit, in two headers");
_Static_assert(TEREDO_OBSERVER_MAX_USERS == TEREDO_MAX_USERS, "one limit, in two headers");
_Static_assert(sizeof(((struct teredo_port_event *)0)->comm) == TEREDO_COMM_LEN, "comm sizes");

static bool lookup_user(const char *name, uid_t *uid)
{
	struct passwd pw, *found = NULL;
	char buf[1024];

	if (getpwnam_r(name, &pw, buf, sizeof(buf), &found) || !found)
		return false;
	*uid = found->pw_uid;
	return true;
}

static int no_memory(void)
{
	return set_last_error(-ENOMEM, "out of memory for a selection");
}

_public_ struct teredo_selection *teredo_selection_new(void)
{
	struct teredo_selection *sel = calloc(1, sizeof(*sel));

	if (!sel) {
		no_memory();
		return NULL;
	}
	strcpy(sel->comms[0], "miredo");
	sel->n_comms = 1;
	sel->n_uids = 1; /* root */
	if (lookup_user(MIREDO_SYSTEM_USER, &sel->uids[1]) && sel->uids[1] != 0)
		sel->n_uids = 2;
	sel->comms_replaceable = sel->users_replaceable = true;
	return sel;
}

_public_ struct teredo_selection *teredo_selection_copy(const struct teredo_selection *sel)
{
	struct teredo_selection *copy;

	if (!sel) {
		set_last_error(-EINVAL, "teredo_selection_copy: the selection is NULL");
		return NULL;
	}
	copy = malloc(sizeof(*copy));
	if (!copy) {
		no_memory();
		return NULL;
	}
	memcpy(copy, sel, sizeof(*copy));
	return copy;
}

_public_ void teredo_selection_free(struct teredo_selection *sel)
{
	free(sel);
}

static int null_selection(const char *fn)
{
	return set_last_error(-EINVAL, "%s: the selection is NULL (teredo_selection_new makes one)",
			      fn);
}

static int check_comm(const char *comm)
{
	if (!comm || !comm[0] || strlen(comm) >= TEREDO_COMM_LEN)
		return set_last_error(-EINVAL,
				      "process name '%s' must have 1 to 15 characters, as the "
				      "kernel keeps them",
				      comm ? comm : "(null)");
	return 0;
}

static void clear_comms(struct teredo_selection *sel)
{
	memset(sel->comms, 0, sizeof(sel->comms));
	sel->n_comms = 0;
}

static int append_comm(struct teredo_selection *sel, const char *comm)
{
	int err = check_comm(comm);

	if (err)
		return err;
	if (sel->n_comms == TEREDO_MAX_COMMS)
		return set_last_error(-EINVAL, "at most %d process names can be watched",
				      TEREDO_MAX_COMMS);
	strcpy(sel->comms[sel->n_comms++], comm);
	return 0;
}

_public_ int teredo_selection_add_comm(struct teredo_selection *sel, const char *comm)
{
	int err;

	if (!sel)
		return null_selection(__func__);
	err = check_comm(comm);
	if (err)
		return err;
	if (sel->comms_replaceable)
		clear_comms(sel);
	sel->comms_replaceable = false;
	return append_comm(sel, comm);
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

static int user_uid(const char *user, uid_t *uid)
{
	if (!user || !user[0])
		return set_last_error(-EINVAL, "empty user name: name a user or a uid");
	if (parse_uid(user, uid) && !lookup_user(user, uid))
		return set_last_error(-EINVAL,
				      "user '%s' not found: name an existing user or a uid", user);
	return 0;
}

static void clear_users(struct teredo_selection *sel)
{
	memset(sel->uids, 0, sizeof(sel->uids));
	sel->n_uids = 0;
}

static int append_uid(struct teredo_selection *sel, uid_t uid)
{
	if (sel->n_uids == TEREDO_MAX_USERS)
		return set_last_error(-EINVAL, "at most %d users can be trusted", TEREDO_MAX_USERS);
	sel->uids[sel->n_uids++] = uid;
	return 0;
}

static int append_user(struct teredo_selection *sel, const char *user)
{
	uid_t uid;
	int err = user_uid(user, &uid);

	return err ? err : append_uid(sel, uid);
}

_public_ int teredo_selection_add_user(struct teredo_selection *sel, const char *user)
{
	uid_t uid;
	int err;

	if (!sel)
		return null_selection(__func__);
	err = user_uid(user, &uid);
	if (err)
		return err;
	if (sel->users_replaceable)
		clear_users(sel);
	sel->users_replaceable = false;
	return append_uid(sel, uid);
}

_public_ int teredo_selection_set_pid(struct teredo_selection *sel, pid_t pid)
{
	if (!sel)
		return null_selection(__func__);
	if (pid < 0)
		return set_last_error(-EINVAL, "pid %d is not a process id", (int)pid);
	sel->pid = pid;
	return 0;
}

/* The kernel side matches the path by its names: those must fit its limits. */
static int check_cgroup(const char *path)
{
	uint32_t levels;

	if (!path[0])
		return set_last_error(-EINVAL, "empty cgroup path: name a cgroup, e.g. "
					       "/system.slice/miredo.service");
	if (strlen(path) >= PATH_MAX)
		return set_last_error(-EINVAL, "cgroup path of %zu bytes: at most %d", strlen(path),
				      PATH_MAX - 1);
	return cgroup2_path_names(path, NULL, &levels);
}

_public_ int teredo_selection_set_cgroup(struct teredo_selection *sel, const char *path)
{
	int err;

	if (!sel)
		return null_selection(__func__);
	if (!path) {
		sel->cgroup[0] = '\0';
		return 0;
	}
	err = check_cgroup(path);
	if (err)
		return err;
	memset(sel->cgroup, 0, sizeof(sel->cgroup));
	strcpy(sel->cgroup, path);
	return 0;
}

_public_ void teredo_selection_set_match_traffic(struct teredo_selection *sel, bool on)
{
	if (sel)
		sel->match_traffic = on;
}

_public_ void teredo_selection_set_all_netns(struct teredo_selection *sel, bool on)
{
	if (sel)
		sel->all_netns = on;
}

static int check_ring_bytes(size_t ring)
{
	if (ring && (ring < 4096 || (ring & (ring - 1))))
		return set_last_error(-EINVAL,
				      "ring_bytes %zu: must be 0 or a power of two of "
				      "at least 4096",
				      ring);
	return 0;
}

_public_ int teredo_selection_set_ring_bytes(struct teredo_selection *sel, size_t bytes)
{
	int err;

	if (!sel)
		return null_selection(__func__);
	err = check_ring_bytes(bytes);
	if (!err)
		sel->ring_bytes = bytes;
	return err;
}

_public_ void teredo_selection_set_verbose(struct teredo_selection *sel, bool on)
{
	if (sel)
		sel->verbose = on;
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

/* Each comma-separated piece of list, passed to add. */
static int add_each(struct teredo_selection *sel, const char *list,
		    int (*add)(struct teredo_selection *, const char *))
{
	char *copy = strdup(list), *save, *name;
	int err = copy ? 0 : no_memory();

	for (name = copy ? strtok_r(copy, ",", &save) : NULL; name && !err;
	     name = strtok_r(NULL, ",", &save))
		err = add(sel, name);
	free(copy);
	return err;
}

/* An empty list would match nothing: a mistake to say, not a silent "no client". */
static int check_lists(const struct teredo_selection *sel)
{
	if (!sel->n_comms)
		return set_last_error(-EINVAL, "no process name selected: the selection would "
					       "match nothing (TEREDO_OBSERVER_COMM is empty?)");
	if (!sel->n_uids)
		return set_last_error(-EINVAL, "no user selected: the selection would match "
					       "nothing (TEREDO_OBSERVER_USER is empty?)");
	return 0;
}

/* The lists the environment gives replace sel's, and are replaced by the next add. */
static int lists_from_env(struct teredo_selection *sel)
{
	const char *v;
	int err = 0;

	if ((v = getenv("TEREDO_OBSERVER_COMM"))) {
		clear_comms(sel);
		sel->comms_replaceable = true;
		err = add_each(sel, v, append_comm);
	}
	if (!err && (v = getenv("TEREDO_OBSERVER_USER"))) {
		clear_users(sel);
		sel->users_replaceable = true;
		err = add_each(sel, v, append_user);
	}
	return err ? err : check_lists(sel);
}

static int flags_from_env(struct teredo_selection *sel)
{
	const char *v;
	int err = 0;

	if ((v = getenv("TEREDO_OBSERVER_MATCH_TRAFFIC")))
		err = parse_flag("TEREDO_OBSERVER_MATCH_TRAFFIC", v, &sel->match_traffic);
	if (!err && (v = getenv("TEREDO_OBSERVER_ALL_NETNS")))
		err = parse_flag("TEREDO_OBSERVER_ALL_NETNS", v, &sel->all_netns);
	if (!err && (v = getenv("TEREDO_OBSERVER_VERBOSE")))
		err = parse_flag("TEREDO_OBSERVER_VERBOSE", v, &sel->verbose);
	return err;
}

/* Worked on a copy, kept only when all of it is right: a bad variable changes nothing. */
_public_ int teredo_selection_from_env(struct teredo_selection *sel)
{
	struct teredo_selection *next;
	const char *v;
	int err;

	if (!sel)
		return null_selection(__func__);
	next = teredo_selection_copy(sel);
	if (!next)
		return -ENOMEM;
	err = lists_from_env(next);
	if (!err && (v = getenv("TEREDO_OBSERVER_PID")))
		err = teredo_parse_pid(v, &next->pid);
	if (!err && (v = getenv("TEREDO_OBSERVER_CGROUP")))
		err = teredo_selection_set_cgroup(next, v);
	if (!err)
		err = flags_from_env(next);
	if (!err)
		memcpy(sel, next, sizeof(*sel));
	teredo_selection_free(next);
	return err;
}

/*
 * The setters refuse what is wrong, so a selection made through them passes;
 * checked again here because it reaches the kernel's fixed arrays.
 */
static int check(const struct teredo_selection *sel)
{
	int err = check_lists(sel);

	if (err)
		return err;
	if (sel->n_comms > TEREDO_MAX_COMMS || sel->n_uids > TEREDO_MAX_USERS)
		return set_last_error(-EINVAL,
				      "a selection with more names or users than it holds");
	for (size_t i = 0; i < sel->n_comms && !err; i++)
		err = check_comm(sel->comms[i]);
	if (!err && sel->pid < 0)
		err = set_last_error(-EINVAL, "pid %d is not a process id", (int)sel->pid);
	if (!err && sel->cgroup[0])
		err = check_cgroup(sel->cgroup);
	return err ? err : check_ring_bytes(sel->ring_bytes);
}

int selection_resolve(const struct teredo_selection *sel, struct teredo_selection **out)
{
	struct teredo_selection *resolved =
		sel ? teredo_selection_copy(sel) : teredo_selection_new();
	int err = resolved ? 0 : -ENOMEM;

	if (!err && !sel)
		err = teredo_selection_from_env(resolved);
	if (!err)
		err = check(resolved);
	if (err) {
		teredo_selection_free(resolved);
		resolved = NULL;
	}
	*out = resolved;
	return err;
}

_public_ int teredo_selection_check(const struct teredo_selection *sel)
{
	struct teredo_selection *resolved;
	int err = selection_resolve(sel, &resolved);

	teredo_selection_free(resolved);
	return err;
}

bool selection_same_clients(const struct teredo_selection *a, const struct teredo_selection *b)
{
	if (a->n_comms != b->n_comms || a->n_uids != b->n_uids || a->pid != b->pid ||
	    strcmp(a->cgroup, b->cgroup) || a->match_traffic != b->match_traffic)
		return false;
	for (size_t i = 0; i < a->n_comms; i++)
		if (strcmp(a->comms[i], b->comms[i]))
			return false;
	for (size_t i = 0; i < a->n_uids; i++)
		if (a->uids[i] != b->uids[i])
			return false;
	return true;
}

bool selection_equal(const struct teredo_selection *a, const struct teredo_selection *b)
{
	return selection_same_clients(a, b) && a->all_netns == b->all_netns &&
	       a->ring_bytes == b->ring_bytes && a->verbose == b->verbose;
}

bool selection_default_clients(const struct teredo_selection *sel)
{
	struct teredo_selection *def = teredo_selection_new();
	bool same = def && selection_same_clients(sel, def);

	teredo_selection_free(def);
	return same;
}

bool teredo_selection_all_netns(const struct teredo_selection *sel)
{
	return sel->all_netns;
}

bool selection_verbose(const struct teredo_selection *sel)
{
	return sel->verbose;
}

const char *selection_cgroup(const struct teredo_selection *sel)
{
	return sel->cgroup[0] ? sel->cgroup : NULL;
}

struct json_object *selection_to_json(const struct teredo_selection *sel, uint32_t netns)
{
	struct json_object *o = json_object_new_object(), *comms = json_object_new_array(),
			   *uids = json_object_new_array();

	if (!o || !comms || !uids) {
		json_object_put(o);
		json_object_put(comms);
		json_object_put(uids);
		return NULL;
	}
	/*
	 * Spelled as events spell them (valid UTF-8, each stray byte U+FFFD): a
	 * name that is not UTF-8 then differs from its own spelling, so a client
	 * asking for it is refused the service (selection_same_clients), never
	 * served another name that reads the same.
	 */
	for (size_t i = 0; i < sel->n_comms; i++)
		json_object_array_add(comms, event_comm_json(sel->comms[i], TEREDO_COMM_LEN));
	for (size_t i = 0; i < sel->n_uids; i++)
		json_object_array_add(uids, json_object_new_int64(sel->uids[i]));
	json_object_object_add(o, "comms", comms);
	json_object_object_add(o, "uids", uids);
	json_object_object_add(o, "pid", json_object_new_int64(sel->pid));
	json_object_object_add(o, "cgroup",
			       sel->cgroup[0] ? json_object_new_string(sel->cgroup) : NULL);
	json_object_object_add(o, "match_traffic", json_object_new_boolean(sel->match_traffic));
	json_object_object_add(o, "all_netns", json_object_new_boolean(sel->all_netns));
	json_object_object_add(o, "netns", json_object_new_int64(netns));
	return o;
}

static int array_of(struct json_object *obj, const char *key, struct json_object **arr)
{
	return json_object_object_get_ex(obj, key, arr) &&
			       json_object_is_type(*arr, json_type_array)
		       ? 0
		       : -EINVAL;
}

static int bool_of(struct json_object *obj, const char *key, bool *out)
{
	struct json_object *v;

	if (!json_object_object_get_ex(obj, key, &v) || !json_object_is_type(v, json_type_boolean))
		return -EINVAL;
	*out = json_object_get_boolean(v);
	return 0;
}

static int lists_from_json(struct teredo_selection *sel, struct json_object *obj)
{
	struct json_object *comms, *uids, *v;
	int err = array_of(obj, "comms", &comms);

	if (!err)
		err = array_of(obj, "uids", &uids);
	for (size_t i = 0; !err && i < json_object_array_length(comms); i++) {
		v = json_object_array_get_idx(comms, i);
		err = json_object_is_type(v, json_type_string)
			      ? append_comm(sel, json_object_get_string(v))
			      : -EINVAL;
	}
	for (size_t i = 0; !err && i < json_object_array_length(uids); i++) {
		int64_t uid;

		v = json_object_array_get_idx(uids, i);
		uid = json_object_get_int64(v);
		err = json_object_is_type(v, json_type_int) && uid >= 0 && uid < (uid_t)-1
			      ? append_uid(sel, (uid_t)uid)
			      : -EINVAL;
	}
	return err ? -EINVAL : check_lists(sel);
}

static int rest_from_json(struct teredo_selection *sel, struct json_object *obj, uint32_t *netns)
{
	struct json_object *cgroup;
	uint64_t pid, ns;

	if (varlink_get_u64(obj, "pid", &pid) || pid > INT_MAX ||
	    varlink_get_u64(obj, "netns", &ns) || ns > UINT32_MAX ||
	    bool_of(obj, "match_traffic", &sel->match_traffic) ||
	    bool_of(obj, "all_netns", &sel->all_netns))
		return -EINVAL;
	sel->pid = (pid_t)pid;
	*netns = (uint32_t)ns;
	if (!json_object_object_get_ex(obj, "cgroup", &cgroup) || !cgroup)
		return 0;
	if (!json_object_is_type(cgroup, json_type_string))
		return -EINVAL;
	return teredo_selection_set_cgroup(sel, json_object_get_string(cgroup)) ? -EINVAL : 0;
}

int selection_from_json(struct json_object *obj, struct teredo_selection **out, uint32_t *netns)
{
	struct teredo_selection *sel = calloc(1, sizeof(*sel));
	int err = sel ? 0 : no_memory();

	if (!err && !json_object_is_type(obj, json_type_object))
		err = -EINVAL;
	if (!err)
		err = lists_from_json(sel, obj);
	if (!err)
		err = rest_from_json(sel, obj, netns);
	if (err) {
		teredo_selection_free(sel);
		sel = NULL;
	}
	*out = sel;
	return err;
}

static void configure_names(const struct teredo_selection *sel,
			    struct teredo_observer_bpf__rodata *cfg)
{
	/* Unused names are all zero, so each copies whole, its padding too. */
	memcpy((void *)cfg->comm_words, sel->comms, sizeof(cfg->comm_words));
	cfg->n_comms = sel->n_comms;
	for (size_t i = 0; i < sel->n_uids; i++)
		cfg->uids[i] = sel->uids[i];
	cfg->n_uids = sel->n_uids;
}

_Static_assert(sizeof(((struct teredo_observer_bpf__rodata *)0)->comm_words) ==
		       sizeof(((struct teredo_selection *)0)->comms),
	       "the kernel's names are the selection's, word for word");

int selection_configure_bpf(const struct teredo_selection *sel, struct teredo_observer_bpf *skel,
			    uint32_t own_netns)
{
	struct teredo_observer_bpf__rodata *cfg = skel->rodata;
	int err;

	configure_names(sel, cfg);
	cfg->target_pid = sel->pid;
	cfg->match_traffic = sel->match_traffic;
	if (sel->cgroup[0]) {
		err = cgroup2_path_names(sel->cgroup,
					 (char(*)[TEREDO_CGROUP_NAME_LEN])cfg->cgroup_names,
					 &cfg->cgroup_levels);
		if (err)
			return err;
		err = cgroup2_path_root_id((uint64_t *)&cfg->cgroup_root_id);
		if (err)
			return err;
	}
	cfg->target_netns = sel->all_netns ? 0 : own_netns;
	return 0;
}

size_t selection_ring_bytes(const struct teredo_selection *sel)
{
	return sel->ring_bytes ? sel->ring_bytes : SELECTION_DEFAULT_RING_BYTES;
}
