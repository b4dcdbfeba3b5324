// SPDX-License-Identifier: MIT
#include <criterion/criterion.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgroup2.h"
#include "selection.h"
#include "teredo_observer.bpf.skel.h"
#include "teredo_observer.h"
#include "teredo_observer_private.h"

/*
 * A selection is opaque even here: what it holds is read through its JSON
 * (the service's form), which these tests check on the way.
 */
static struct json_object *json_of(const struct teredo_selection *sel)
{
	struct json_object *o = selection_to_json(sel, 7);

	cr_assert_not_null(o);
	return o;
}

static struct json_object *field(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;

	cr_assert(json_object_object_get_ex(o, key, &v), "no %s in %s", key,
		  json_object_to_json_string(o));
	return v;
}

/* What sel says on the wire under key: its i-th element, or (i < 0) the whole. Put by the caller.
 */
static struct json_object *wire(const struct teredo_selection *sel, const char *key, int i)
{
	struct json_object *o = json_of(sel), *v = field(o, key);

	if (i >= 0)
		v = json_object_array_get_idx(v, i);
	json_object_get(v);
	json_object_put(o);
	return v;
}

static size_t count_of(const struct teredo_selection *sel, const char *list)
{
	struct json_object *v = wire(sel, list, -1);
	size_t n = json_object_array_length(v);

	json_object_put(v);
	return n;
}

/* A number, or a flag as 1 or 0. */
static int64_t int_at(const struct teredo_selection *sel, const char *key, int i)
{
	struct json_object *v = wire(sel, key, i);
	int64_t n = json_object_get_int64(v);

	json_object_put(v);
	return n;
}

/* The i-th name, copied out of the JSON. */
static const char *comm_of(const struct teredo_selection *sel, int i)
{
	static char name[32];
	struct json_object *v = wire(sel, "comms", i);

	snprintf(name, sizeof(name), "%s", json_object_get_string(v));
	json_object_put(v);
	return name;
}

static struct teredo_selection *fresh(void)
{
	struct teredo_selection *sel = teredo_selection_new();

	cr_assert_not_null(sel, "%s", teredo_observer_last_error());
	return sel;
}

Test(options, default_is_miredo_in_own_netns)
{
	struct teredo_selection *o = fresh();

	cr_assert_eq(count_of(o, "comms"), 1);
	cr_assert_str_eq(comm_of(o, 0), "miredo");
	cr_assert_not(teredo_selection_all_netns(o));
	cr_assert_not(int_at(o, "match_traffic", -1));
	cr_assert_eq(int_at(o, "pid", -1), 0);
	teredo_selection_free(o);
}

Test(options, comm_length_is_checked)
{
	struct teredo_selection *o = fresh();

	cr_assert_eq(teredo_selection_add_comm(o, "exactly15chars_"), 0);
	cr_assert_eq(teredo_selection_add_comm(o, "sixteen_chars_xx"), -EINVAL);
	cr_assert(strstr(teredo_observer_last_error(), "15 characters"));
	cr_assert_eq(teredo_selection_add_comm(o, ""), -EINVAL);
	cr_assert_eq(teredo_selection_add_comm(o, NULL), -EINVAL);
	cr_assert_eq(count_of(o, "comms"), 1, "the first name replaced the default");
	cr_assert_str_eq(comm_of(o, 0), "exactly15chars_");
	teredo_selection_free(o);
}

Test(options, first_name_replaces_later_ones_add)
{
	struct teredo_selection *o = fresh();

	cr_assert_eq(teredo_selection_add_comm(o, "a"), 0);
	cr_assert_eq(teredo_selection_add_comm(o, "b"), 0);
	cr_assert_eq(count_of(o, "comms"), 2);
	cr_assert_str_eq(comm_of(o, 0), "a");
	cr_assert_str_eq(comm_of(o, 1), "b");
	/* A refused first name leaves the default alone. */
	teredo_selection_free(o);
	o = fresh();
	cr_assert_eq(teredo_selection_add_comm(o, "name-longer-than-15"), -EINVAL);
	cr_assert_str_eq(comm_of(o, 0), "miredo");
	teredo_selection_free(o);
}

Test(options, too_many_comms)
{
	struct teredo_selection *o = fresh();

	for (int i = 0; i < TEREDO_OBSERVER_MAX_COMMS; i++)
		cr_assert_eq(teredo_selection_add_comm(o, "x"), 0);
	cr_assert_eq(teredo_selection_add_comm(o, "y"), -EINVAL);
	cr_assert(strstr(teredo_observer_last_error(), "at most 8"), "%s",
		  teredo_observer_last_error());
	teredo_selection_free(o);
}

Test(options, pid_parsing)
{
	pid_t pid = 0;

	cr_assert_eq(teredo_parse_pid("1234", &pid), 0);
	cr_assert_eq(pid, 1234);
	cr_assert_eq(teredo_parse_pid("0", &pid), -EINVAL);
	cr_assert_eq(teredo_parse_pid("-5", &pid), -EINVAL);
	cr_assert_eq(teredo_parse_pid("12x", &pid), -EINVAL);
	cr_assert_eq(teredo_parse_pid("99999999999", &pid), -EINVAL);
}

Test(options, environment)
{
	struct teredo_selection *o = fresh();

	setenv("TEREDO_OBSERVER_COMM", "miredo,teredo-cli", 1);
	setenv("TEREDO_OBSERVER_PID", "42", 1);
	setenv("TEREDO_OBSERVER_ALL_NETNS", "1", 1);
	setenv("TEREDO_OBSERVER_MATCH_TRAFFIC", "yes", 1);
	cr_assert_eq(teredo_selection_from_env(o), 0, "%s", teredo_observer_last_error());
	cr_assert_eq(count_of(o, "comms"), 2);
	cr_assert_str_eq(comm_of(o, 1), "teredo-cli");
	cr_assert_eq(int_at(o, "pid", -1), 42);
	cr_assert(teredo_selection_all_netns(o));
	cr_assert(int_at(o, "match_traffic", -1));
	setenv("TEREDO_OBSERVER_ALL_NETNS", "maybe", 1);
	cr_assert_eq(teredo_selection_from_env(o), -EINVAL);
	cr_assert(strstr(teredo_observer_last_error(), "TEREDO_OBSERVER_ALL_NETNS"));
	unsetenv("TEREDO_OBSERVER_COMM");
	unsetenv("TEREDO_OBSERVER_PID");
	unsetenv("TEREDO_OBSERVER_ALL_NETNS");
	unsetenv("TEREDO_OBSERVER_MATCH_TRAFFIC");
	teredo_selection_free(o);
}

/* The environment's names are copied: changing the variable later changes nothing. */
Test(options, environment_names_are_owned)
{
	struct teredo_selection *o = fresh();

	setenv("TEREDO_OBSERVER_COMM", "first", 1);
	cr_assert_eq(teredo_selection_from_env(o), 0, "%s", teredo_observer_last_error());
	setenv("TEREDO_OBSERVER_COMM", "second", 1);
	unsetenv("TEREDO_OBSERVER_COMM");
	cr_assert_str_eq(comm_of(o, 0), "first");
	/* The command's --comm after the environment: the first one replaces its list. */
	cr_assert_eq(teredo_selection_add_comm(o, "third"), 0);
	cr_assert_eq(count_of(o, "comms"), 1);
	cr_assert_str_eq(comm_of(o, 0), "third");
	teredo_selection_free(o);
}

/* A bad variable changes nothing, not even what came before it. */
Test(options, environment_error_leaves_the_selection_alone)
{
	struct teredo_selection *o = fresh(), *before;

	before = teredo_selection_copy(o);
	setenv("TEREDO_OBSERVER_COMM", "teredo-cli", 1);
	setenv("TEREDO_OBSERVER_PID", "nope", 1);
	cr_assert_eq(teredo_selection_from_env(o), -EINVAL);
	unsetenv("TEREDO_OBSERVER_COMM");
	unsetenv("TEREDO_OBSERVER_PID");
	cr_assert(selection_equal(o, before));
	teredo_selection_free(before);
	teredo_selection_free(o);
}

Test(options, event_type_names)
{
	cr_assert_str_eq(teredo_port_event_type_name(TEREDO_PORT_INITIAL), "initial");
	cr_assert_str_eq(teredo_port_event_type_name(TEREDO_PORT_ADDED), "add");
	cr_assert_str_eq(teredo_port_event_type_name(TEREDO_PORT_CHANGED), "change");
	cr_assert_str_eq(teredo_port_event_type_name(TEREDO_PORT_DELETED), "delete");
}

/* Refused when set, before anything is loaded: no privileges needed to be told. */
Test(options, bad_options_refused_before_loading)
{
	struct teredo_observer *obs = (struct teredo_observer *)0x1;
	struct teredo_selection *o = fresh();

	cr_assert_eq(teredo_selection_add_comm(o, NULL), -EINVAL);
	cr_assert_eq(teredo_selection_add_comm(o, "name-longer-than-15"), -EINVAL);
	cr_assert_eq(teredo_selection_set_ring_bytes(o, 5000), -EINVAL);
	cr_assert(strstr(teredo_observer_last_error(), "power of two"), "%s",
		  teredo_observer_last_error());
	cr_assert_eq(teredo_selection_set_ring_bytes(o, 2048), -EINVAL);
	cr_assert_eq(teredo_selection_set_pid(o, -3), -EINVAL);
	cr_assert_eq(teredo_selection_add_comm(NULL, "x"), -EINVAL);
	cr_assert_eq(teredo_selection_check(o), 0, "a refused setting changed nothing");
	/* The environment's selection (NULL) too, before loading. */
	setenv("TEREDO_OBSERVER_COMM", "", 1);
	cr_assert_eq(teredo_observer_new(NULL, &obs), -EINVAL);
	cr_assert_null(obs);
	cr_assert_eq(teredo_selection_check(NULL), -EINVAL);
	unsetenv("TEREDO_OBSERVER_COMM");
	teredo_selection_free(o);
}

Test(options, default_users_are_root_and_miredo)
{
	struct teredo_selection *o = fresh();
	struct passwd *pw = getpwnam("miredo");

	cr_assert_eq(int_at(o, "uids", 0), 0);
	if (pw) {
		cr_assert_eq(count_of(o, "uids"), 2);
		cr_assert_eq(int_at(o, "uids", 1), pw->pw_uid);
	} else {
		cr_assert_eq(count_of(o, "uids"), 1, "root alone where there is no miredo user");
	}
	teredo_selection_free(o);
}

Test(options, users_by_name_or_uid)
{
	struct teredo_selection *o = fresh();

	cr_assert_eq(teredo_selection_add_user(o, "root"), 0);
	cr_assert_eq(teredo_selection_add_user(o, "4242"), 0);
	cr_assert_eq(count_of(o, "uids"), 2, "the first user replaced the default ones");
	cr_assert_eq(int_at(o, "uids", 0), 0);
	cr_assert_eq(int_at(o, "uids", 1), 4242);
	cr_assert_eq(teredo_selection_add_user(o, ""), -EINVAL);
	cr_assert_eq(teredo_selection_add_user(o, "-1"), -EINVAL);
	cr_assert_eq(teredo_selection_add_user(o, "no-such-user-here"), -EINVAL);
	for (int i = 2; i < TEREDO_OBSERVER_MAX_USERS; i++)
		cr_assert_eq(teredo_selection_add_user(o, "1"), 0);
	cr_assert_eq(teredo_selection_add_user(o, "1"), -EINVAL, "at most 8");
	teredo_selection_free(o);
}

Test(options, user_environment_replaces_the_default)
{
	struct teredo_selection *o = fresh();

	cr_assert_eq(setenv("TEREDO_OBSERVER_USER", "1000,root", 1), 0);
	cr_assert_eq(teredo_selection_from_env(o), 0, "%s", teredo_observer_last_error());
	unsetenv("TEREDO_OBSERVER_USER");
	cr_assert_eq(count_of(o, "uids"), 2);
	cr_assert_eq(int_at(o, "uids", 0), 1000);
	cr_assert_eq(int_at(o, "uids", 1), 0);
	teredo_selection_free(o);
}

/* A selection that can match nothing is refused, however it was made. */
Test(options, empty_selections_refused)
{
	struct teredo_selection *o = fresh();

	cr_assert_eq(setenv("TEREDO_OBSERVER_COMM", "", 1), 0);
	cr_assert_eq(teredo_selection_from_env(o), -EINVAL);
	cr_assert(strstr(teredo_observer_last_error(), "no process name"), "%s",
		  teredo_observer_last_error());
	unsetenv("TEREDO_OBSERVER_COMM");
	cr_assert_eq(setenv("TEREDO_OBSERVER_USER", ",", 1), 0);
	cr_assert_eq(teredo_selection_from_env(o), -EINVAL);
	cr_assert(strstr(teredo_observer_last_error(), "no user"), "%s",
		  teredo_observer_last_error());
	unsetenv("TEREDO_OBSERVER_USER");
	cr_assert_eq(teredo_selection_set_cgroup(o, ""), -EINVAL);
	cr_assert_eq(teredo_selection_check(o), 0, "refused, so nothing changed");
	teredo_selection_free(o);
}

/* ---- one owned value: copied, compared, turned into JSON and back ---- */

Test(selection, copy_is_equal_and_its_own)
{
	struct teredo_selection *o = fresh(), *c;

	cr_assert_eq(teredo_selection_set_cgroup(o, "/system.slice/miredo.service"), 0);
	cr_assert_eq(teredo_selection_add_comm(o, "teredo-cli"), 0);
	c = teredo_selection_copy(o);
	cr_assert_not_null(c);
	cr_assert(selection_equal(o, c));
	teredo_selection_free(o);
	cr_assert_str_eq(comm_of(c, 0), "teredo-cli", "the copy outlives the original");
	cr_assert_eq(teredo_selection_check(c), 0);
	teredo_selection_free(c);
	cr_assert_null(teredo_selection_copy(NULL));
	teredo_selection_free(NULL);
}

/* Each field alone makes two selections different: selection_equal compares every one. */
static void expect_field_counts(void (*change)(struct teredo_selection *), bool same_clients)
{
	struct teredo_selection *a = fresh(), *b = fresh();

	cr_assert(selection_equal(a, b));
	change(b);
	cr_assert_not(selection_equal(a, b), "equal despite the change");
	cr_assert_not(selection_equal(b, a), "equal despite the change, the other way");
	cr_assert_eq(selection_same_clients(a, b), same_clients);
	teredo_selection_free(a);
	teredo_selection_free(b);
}

static void other_comm(struct teredo_selection *s)
{
	cr_assert_eq(teredo_selection_add_comm(s, "mired0"), 0);
}

static void more_comms(struct teredo_selection *s)
{
	cr_assert_eq(teredo_selection_add_comm(s, "miredo"), 0);
	cr_assert_eq(teredo_selection_add_comm(s, "teredo-cli"), 0);
}

/* As many users as the default, the last one other: only the uids themselves differ. */
static void other_user(struct teredo_selection *s)
{
	if (count_of(s, "uids") == 2)
		cr_assert_eq(teredo_selection_add_user(s, "0"), 0);
	cr_assert_eq(teredo_selection_add_user(s, "4242"), 0);
}

static void fewer_users(struct teredo_selection *s)
{
	cr_assert_eq(teredo_selection_add_user(s, "0"), 0); /* root alone */
	if (!getpwnam("miredo"))
		cr_assert_eq(teredo_selection_add_user(s, "1"), 0); /* root and one more */
}

static void a_pid(struct teredo_selection *s)
{
	cr_assert_eq(teredo_selection_set_pid(s, 42), 0);
}

static void a_cgroup(struct teredo_selection *s)
{
	cr_assert_eq(teredo_selection_set_cgroup(s, "/system.slice/miredo.service"), 0);
}

static void traffic(struct teredo_selection *s)
{
	teredo_selection_set_match_traffic(s, true);
}

static void all_netns(struct teredo_selection *s)
{
	teredo_selection_set_all_netns(s, true);
}

static void ring(struct teredo_selection *s)
{
	cr_assert_eq(teredo_selection_set_ring_bytes(s, 4096), 0);
}

static void verbose(struct teredo_selection *s)
{
	teredo_selection_set_verbose(s, true);
}

Test(selection_equal, differs_by_a_name)
{
	expect_field_counts(other_comm, false);
}

Test(selection_equal, differs_by_the_number_of_names)
{
	expect_field_counts(more_comms, false);
}

Test(selection_equal, differs_by_a_user)
{
	expect_field_counts(other_user, false);
}

Test(selection_equal, differs_by_the_number_of_users)
{
	expect_field_counts(fewer_users, false);
}

Test(selection_equal, differs_by_pid)
{
	expect_field_counts(a_pid, false);
}

Test(selection_equal, differs_by_cgroup)
{
	expect_field_counts(a_cgroup, false);
}

Test(selection_equal, differs_by_match_traffic)
{
	expect_field_counts(traffic, false);
}

/* The next three do not change which processes are the client. */
Test(selection_equal, differs_by_all_netns)
{
	expect_field_counts(all_netns, true);
}

Test(selection_equal, differs_by_ring_bytes)
{
	expect_field_counts(ring, true);
}

Test(selection_equal, differs_by_verbose)
{
	expect_field_counts(verbose, true);
}

Test(selection_equal, order_of_names_counts)
{
	struct teredo_selection *a = fresh(), *b = fresh();

	cr_assert_eq(teredo_selection_add_comm(a, "x"), 0);
	cr_assert_eq(teredo_selection_add_comm(a, "y"), 0);
	cr_assert_eq(teredo_selection_add_comm(b, "y"), 0);
	cr_assert_eq(teredo_selection_add_comm(b, "x"), 0);
	cr_assert_not(selection_equal(a, b));
	teredo_selection_free(a);
	teredo_selection_free(b);
}

static struct teredo_selection *every_wire_field(void)
{
	struct teredo_selection *o = fresh();

	cr_assert_eq(teredo_selection_add_comm(o, "miredo"), 0);
	cr_assert_eq(teredo_selection_add_comm(o, "teredo-cli"), 0);
	cr_assert_eq(teredo_selection_add_user(o, "root"), 0);
	cr_assert_eq(teredo_selection_add_user(o, "4242"), 0);
	cr_assert_eq(teredo_selection_set_pid(o, 42), 0);
	cr_assert_eq(teredo_selection_set_cgroup(o, "/system.slice/miredo.service"), 0);
	teredo_selection_set_match_traffic(o, true);
	teredo_selection_set_all_netns(o, true);
	return o;
}

Test(selection_json, round_trip)
{
	struct teredo_selection *o = every_wire_field(), *back = NULL;
	struct json_object *j = selection_to_json(o, 4026531840u);
	uint32_t netns = 0;

	cr_assert_not_null(j);
	cr_assert_eq(selection_from_json(j, &back, &netns), 0, "%s", json_object_to_json_string(j));
	cr_assert(selection_equal(o, back), "%s", json_object_to_json_string(j));
	cr_assert_eq(netns, 4026531840u);
	json_object_put(j);
	teredo_selection_free(back);
	/* The defaults, without a cgroup (null on the wire), too. */
	teredo_selection_free(o);
	o = fresh();
	j = selection_to_json(o, 1);
	cr_assert_eq(selection_from_json(j, &back, &netns), 0, "%s", json_object_to_json_string(j));
	cr_assert(selection_equal(o, back));
	json_object_put(j);
	teredo_selection_free(back);
	teredo_selection_free(o);
}

/*
 * A name that is not UTF-8 goes on the wire as events spell it, valid UTF-8:
 * read back, it is another name, so a client asking for it is not served
 * by a service that watches a name spelled the same (nothing widens).
 */
Test(selection_json, a_name_not_utf8_never_matches_its_spelling)
{
	struct teredo_selection *o = fresh(), *other = fresh(), *back = NULL;
	struct json_object *j;
	uint32_t netns;

	cr_assert_eq(teredo_selection_add_comm(o, "m\xc3\xa9\xff"), 0);
	cr_assert_eq(teredo_selection_add_comm(other, "m\xc3\xa9\xfe"), 0);
	j = selection_to_json(o, 1);
	cr_assert_str_eq(json_object_get_string(json_object_array_get_idx(field(j, "comms"), 0)),
			 "m\xc3\xa9\xef\xbf\xbd");
	cr_assert_eq(selection_from_json(j, &back, &netns), 0);
	cr_assert_not(selection_same_clients(o, back));
	cr_assert_not(selection_same_clients(other, back));
	json_object_put(j);
	teredo_selection_free(back);
	teredo_selection_free(other);
	teredo_selection_free(o);
}

/* The ring and verbosity stay in the process: the same clients, not equal. */
Test(selection_json, ring_and_verbosity_not_on_the_wire)
{
	struct teredo_selection *o = every_wire_field(), *back = NULL;
	struct json_object *j;
	uint32_t netns;

	cr_assert_eq(teredo_selection_set_ring_bytes(o, 8192), 0);
	teredo_selection_set_verbose(o, true);
	j = selection_to_json(o, 1);
	cr_assert_eq(selection_from_json(j, &back, &netns), 0);
	cr_assert(selection_same_clients(o, back));
	cr_assert_not(selection_equal(o, back));
	json_object_put(j);
	teredo_selection_free(back);
	teredo_selection_free(o);
}

static void expect_refused(const char *text)
{
	struct json_object *j = json_tokener_parse(text);
	struct teredo_selection *sel = (struct teredo_selection *)0x1;
	uint32_t netns;

	cr_assert_eq(selection_from_json(j, &sel, &netns), -EINVAL, "%s taken", text);
	cr_assert_null(sel);
	json_object_put(j);
}

Test(selection_json, malformed_refused)
{
	static const char rest[] = "\"pid\": 0, \"cgroup\": null, \"match_traffic\": false, "
				   "\"all_netns\": false, \"netns\": 1";
	char text[512];

	snprintf(text, sizeof(text), "{\"comms\": [\"miredo\"], \"uids\": [0], %s}", rest);
	{
		struct json_object *j = json_tokener_parse(text);
		struct teredo_selection *sel;
		uint32_t netns;

		cr_assert_eq(selection_from_json(j, &sel, &netns), 0, "the well-formed one");
		teredo_selection_free(sel);
		json_object_put(j);
	}
	expect_refused("null");
	expect_refused("[]");
	snprintf(text, sizeof(text), "{\"uids\": [0], %s}", rest);
	expect_refused(text);
	snprintf(text, sizeof(text), "{\"comms\": [], \"uids\": [0], %s}", rest);
	expect_refused(text);
	snprintf(text, sizeof(text), "{\"comms\": [\"sixteen_chars_xx\"], \"uids\": [0], %s}",
		 rest);
	expect_refused(text);
	snprintf(text, sizeof(text), "{\"comms\": [7], \"uids\": [0], %s}", rest);
	expect_refused(text);
	snprintf(text, sizeof(text), "{\"comms\": [\"miredo\"], \"uids\": [-1], %s}", rest);
	expect_refused(text);
	snprintf(text, sizeof(text), "{\"comms\": [\"miredo\"], \"uids\": [\"root\"], %s}", rest);
	expect_refused(text);
	expect_refused("{\"comms\": [\"miredo\"], \"uids\": [0], \"pid\": \"1\", "
		       "\"match_traffic\": false, \"all_netns\": false, \"netns\": 1}");
	expect_refused("{\"comms\": [\"miredo\"], \"uids\": [0], \"pid\": 0, "
		       "\"match_traffic\": 1, \"all_netns\": false, \"netns\": 1}");
	expect_refused("{\"comms\": [\"miredo\"], \"uids\": [0], \"pid\": 0, \"cgroup\": \"\", "
		       "\"match_traffic\": false, \"all_netns\": false, \"netns\": 1}");
	expect_refused("{\"comms\": [\"miredo\"], \"uids\": [0], \"pid\": 0, "
		       "\"match_traffic\": false, \"all_netns\": false}");
}

/* Into the BPF program's read-only data: opened, never loaded (no privileges). */
Test(selection_bpf, configuration)
{
	struct teredo_selection *o = every_wire_field();
	struct teredo_observer_bpf *skel = teredo_observer_bpf__open();
	char name[TEREDO_COMM_LEN];

	cr_assert_not_null(skel, "cannot open the BPF object: %s", strerror(errno));
	cr_assert_eq(teredo_selection_set_ring_bytes(o, 8192), 0);
	cr_assert_eq(selection_configure_bpf(o, skel, 99), 0, "%s", teredo_observer_last_error());
	cr_assert_eq(skel->rodata->n_comms, 2);
	memcpy(name, (const void *)skel->rodata->comm_words[1], sizeof(name));
	cr_assert_str_eq(name, "teredo-cli");
	cr_assert_eq(skel->rodata->n_uids, 2);
	cr_assert_eq(skel->rodata->uids[1], 4242);
	cr_assert_eq(skel->rodata->target_pid, 42);
	cr_assert(skel->rodata->match_traffic);
	cr_assert_eq(skel->rodata->cgroup_levels, 2);
	cr_assert_eq(skel->rodata->target_netns, 0, "every namespace");
	cr_assert_eq(selection_ring_bytes(o), 8192, "the consumer's own ring");
	teredo_selection_set_all_netns(o, false);
	cr_assert_eq(selection_configure_bpf(o, skel, 99), 0);
	cr_assert_eq(skel->rodata->target_netns, 99, "the caller's namespace");
	teredo_observer_bpf__destroy(skel);
	teredo_selection_free(o);
}

Test(options, cgroup_paths)
{
	char names[TEREDO_MAX_CGROUP_LEVELS][TEREDO_CGROUP_NAME_LEN];
	char long_name[80];
	uint32_t levels = 0;

	cr_assert_eq(cgroup2_path_names("/system.slice/miredo.service", names, &levels), 0);
	cr_assert_eq(levels, 2);
	cr_assert_str_eq(names[0], "system.slice");
	cr_assert_str_eq(names[1], "miredo.service");
	cr_assert_eq(cgroup2_path_names("a//b/", names, &levels), 0);
	cr_assert_eq(levels, 2);
	cr_assert_str_eq(names[1], "b");
	cr_assert_eq(cgroup2_path_names("/", names, &levels), -EINVAL);
	cr_assert_eq(cgroup2_path_names("a/../b", names, &levels), -EINVAL);
	cr_assert_eq(cgroup2_path_names("a/./b", names, &levels), -EINVAL);
	cr_assert_eq(cgroup2_path_names("/1/2/3/4/5/6/7/8/9", names, &levels), -EINVAL);
	memset(long_name, 'x', 63);
	long_name[63] = '\0';
	cr_assert_eq(cgroup2_path_names(long_name, names, &levels), -EINVAL);
	long_name[62] = '\0';
	cr_assert_eq(cgroup2_path_names(long_name, names, &levels), 0);
	cr_assert_eq(cgroup2_path_names("x", NULL, &levels), 0);
}

/* A path under the cgroup2 mount point is the same path below the root. */
Test(options, cgroup_path_under_the_mount_point)
{
	char names[TEREDO_MAX_CGROUP_LEVELS][TEREDO_CGROUP_NAME_LEN];
	char root[256], path[300];
	uint32_t levels = 0;

	if (cgroup2_mount_point(root, sizeof(root)))
		cr_skip_test("no cgroup2 mounted here");
	snprintf(path, sizeof(path), "%s/system.slice/miredo.service", root);
	cr_assert_eq(cgroup2_path_names(path, names, &levels), 0);
	cr_assert_eq(levels, 2);
	cr_assert_str_eq(names[0], "system.slice");
}
