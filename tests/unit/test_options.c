// SPDX-License-Identifier: MIT
#include <criterion/criterion.h>
#include <errno.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cgroup2.h"
#include "teredo_observer.h"
#include "teredo_observer_private.h"

Test(options, default_is_miredo_in_own_netns)
{
	struct teredo_options o;

	teredo_options_init(&o);
	cr_assert_eq(o.n_comms, 1);
	cr_assert_str_eq(o.comms[0], "miredo");
	cr_assert_not(o.all_netns);
	cr_assert_not(o.match_traffic);
	cr_assert_eq(o.pid, 0);
}

Test(options, comm_length_is_checked)
{
	struct teredo_options o;

	teredo_options_init(&o);
	cr_assert_eq(teredo_options_add_comm(&o, "exactly15chars_"), 0);
	cr_assert_eq(teredo_options_add_comm(&o, "sixteen_chars_xx"), -EINVAL);
	cr_assert(strstr(teredo_observer_last_error(), "15 characters"));
	cr_assert_eq(teredo_options_add_comm(&o, ""), -EINVAL);
	cr_assert_eq(o.n_comms, 2);
}

Test(options, too_many_comms)
{
	struct teredo_options o;

	teredo_options_init(&o);
	for (int i = 1; i < TEREDO_OBSERVER_MAX_COMMS; i++)
		cr_assert_eq(teredo_options_add_comm(&o, "x"), 0);
	cr_assert_eq(teredo_options_add_comm(&o, "y"), -EINVAL);
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
	struct teredo_options o;

	setenv("TEREDO_OBSERVER_COMM", "miredo,teredo-cli", 1);
	setenv("TEREDO_OBSERVER_PID", "42", 1);
	setenv("TEREDO_OBSERVER_ALL_NETNS", "1", 1);
	setenv("TEREDO_OBSERVER_MATCH_TRAFFIC", "yes", 1);
	teredo_options_init(&o);
	cr_assert_eq(teredo_options_from_env(&o), 0);
	cr_assert_eq(o.n_comms, 2);
	cr_assert_str_eq(o.comms[1], "teredo-cli");
	cr_assert_eq(o.pid, 42);
	cr_assert(o.all_netns);
	cr_assert(o.match_traffic);
	setenv("TEREDO_OBSERVER_ALL_NETNS", "maybe", 1);
	cr_assert_eq(teredo_options_from_env(&o), -EINVAL);
	cr_assert(strstr(teredo_observer_last_error(), "TEREDO_OBSERVER_ALL_NETNS"));
	unsetenv("TEREDO_OBSERVER_COMM");
	unsetenv("TEREDO_OBSERVER_PID");
	unsetenv("TEREDO_OBSERVER_ALL_NETNS");
	unsetenv("TEREDO_OBSERVER_MATCH_TRAFFIC");
}

Test(options, event_type_names)
{
	cr_assert_str_eq(teredo_port_event_type_name(TEREDO_PORT_INITIAL), "initial");
	cr_assert_str_eq(teredo_port_event_type_name(TEREDO_PORT_ADDED), "add");
	cr_assert_str_eq(teredo_port_event_type_name(TEREDO_PORT_CHANGED), "change");
	cr_assert_str_eq(teredo_port_event_type_name(TEREDO_PORT_DELETED), "delete");
}

/* Checked before anything is loaded: no privileges needed to be told. */
Test(options, bad_options_refused_before_loading)
{
	struct teredo_observer *obs = (struct teredo_observer *)0x1;
	struct teredo_options o;

	teredo_options_init(&o);
	o.n_comms = TEREDO_OBSERVER_MAX_COMMS + 1;
	cr_assert_eq(teredo_observer_new(&o, &obs), -EINVAL);
	cr_assert_null(obs);
	teredo_options_init(&o);
	o.comms[0] = NULL;
	cr_assert_eq(teredo_observer_new(&o, &obs), -EINVAL);
	o.comms[0] = "name-longer-than-15";
	cr_assert_eq(teredo_observer_new(&o, &obs), -EINVAL);
	teredo_options_init(&o);
	o.ring_bytes = 5000;
	cr_assert_eq(teredo_observer_new(&o, &obs), -EINVAL);
	cr_assert(strstr(teredo_observer_last_error(), "power of two"), "%s",
		  teredo_observer_last_error());
	o.ring_bytes = 2048;
	cr_assert_eq(teredo_observer_new(&o, &obs), -EINVAL);
	teredo_options_init(&o);
	o.pid = -3;
	cr_assert_eq(teredo_observer_new(&o, &obs), -EINVAL);
}

Test(options, default_users_are_root_and_miredo)
{
	struct teredo_options o;
	struct passwd *pw = getpwnam("miredo");

	teredo_options_init(&o);
	cr_assert_eq(o.uids[0], 0);
	if (pw) {
		cr_assert_eq(o.n_uids, 2);
		cr_assert_eq(o.uids[1], pw->pw_uid);
	} else {
		cr_assert_eq(o.n_uids, 1, "root alone where there is no miredo user");
	}
}

Test(options, users_by_name_or_uid)
{
	struct teredo_options o;

	teredo_options_init(&o);
	o.n_uids = 0;
	cr_assert_eq(teredo_options_add_user(&o, "root"), 0);
	cr_assert_eq(teredo_options_add_user(&o, "4242"), 0);
	cr_assert_eq(o.n_uids, 2);
	cr_assert_eq(o.uids[0], 0);
	cr_assert_eq(o.uids[1], 4242);
	cr_assert_eq(teredo_options_add_user(&o, ""), -EINVAL);
	cr_assert_eq(teredo_options_add_user(&o, "-1"), -EINVAL);
	cr_assert_eq(teredo_options_add_user(&o, "no-such-user-here"), -EINVAL);
	for (int i = 2; i < TEREDO_OBSERVER_MAX_USERS; i++)
		cr_assert_eq(teredo_options_add_user(&o, "1"), 0);
	cr_assert_eq(teredo_options_add_user(&o, "1"), -EINVAL, "at most 8");
}

Test(options, user_environment_replaces_the_default)
{
	struct teredo_options o;

	teredo_options_init(&o);
	cr_assert_eq(setenv("TEREDO_OBSERVER_USER", "1000,root", 1), 0);
	cr_assert_eq(teredo_options_from_env(&o), 0, "%s", teredo_observer_last_error());
	unsetenv("TEREDO_OBSERVER_USER");
	cr_assert_eq(o.n_uids, 2);
	cr_assert_eq(o.uids[0], 1000);
	cr_assert_eq(o.uids[1], 0);
}

/* A selection that can match nothing is refused, however it was made. */
Test(options, empty_selections_refused)
{
	struct teredo_options o;

	teredo_options_init(&o);
	o.n_comms = 0;
	cr_assert_eq(teredo_options_check(&o), -EINVAL);
	teredo_options_init(&o);
	o.n_uids = 0;
	cr_assert_eq(teredo_options_check(&o), -EINVAL);
	teredo_options_init(&o);
	o.cgroup = "";
	cr_assert_eq(teredo_options_check(&o), -EINVAL);
	teredo_options_init(&o);
	cr_assert_eq(teredo_options_check(&o), 0);
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
