// SPDX-License-Identifier: MIT
/*
 * The reported port is what a firewall opens, so an ordinary user must not
 * be able to choose it. Anyone can name a process miredo (a copy, a
 * symlink, a prctl rename); nobody unprivileged can run as root or as the
 * miredo system user. Here user nobody tries every way to bind a port as
 * "miredo", through setpriv as a real user would, and is never reported.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "actor.h"
#include "observe.h"

#define UNPRIVILEGED "nobody"

static char workdir[PATH_MAX];
static char copy_path[PATH_MAX + 32], link_path[PATH_MAX + 32];
static struct actor *intruders[3];

static void teardown(void)
{
	for (size_t i = 0; i < sizeof(intruders) / sizeof(intruders[0]); i++) {
		actor_kill(intruders[i]);
		intruders[i] = NULL;
	}
	fixture_teardown();
	if (workdir[0]) {
		unlink(copy_path);
		unlink(link_path);
		rmdir(workdir);
	}
	workdir[0] = '\0';
}

TestSuite(trust, .fini = teardown, .timeout = 60);

static void copy_file(const char *from, const char *to)
{
	char buf[65536];
	FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
	size_t n;

	cr_assert(in && out, "cannot copy %s to %s: %s", from, to, strerror(errno));
	while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
		cr_assert_eq(fwrite(buf, 1, n, out), n);
	fclose(in);
	cr_assert_eq(fclose(out), 0);
	cr_assert_eq(chmod(to, 0755), 0);
}

/* A copy of the actor program named miredo, and a symlink named miredo to it. */
static void make_programs_named_miredo(void)
{
	snprintf(workdir, sizeof(workdir), "/tmp/teredo-trust-XXXXXX");
	cr_assert(mkdtemp(workdir), "mkdtemp: %s", strerror(errno));
	cr_assert_eq(chmod(workdir, 0755), 0); /* nobody must be able to run them */
	snprintf(copy_path, sizeof(copy_path), "%s/miredo", workdir);
	copy_file(UDP_ACTOR, copy_path);
	snprintf(link_path, sizeof(link_path), "%s/link", workdir);
	cr_assert_eq(mkdir(link_path, 0755), 0);
	snprintf(link_path, sizeof(link_path), "%s/link/miredo", workdir);
	cr_assert_eq(symlink(UDP_ACTOR, link_path), 0, "symlink: %s", strerror(errno));
}

static void start_intruders(const char *user)
{
	make_programs_named_miredo();
	intruders[0] = actor_start_as(NULL, "miredo", user); /* prctl(PR_SET_NAME) */
	intruders[1] = actor_start_as(copy_path, NULL, user);
	intruders[2] = actor_start_as(link_path, NULL, user);
}

/* Every way a socket gets a port: bind v4, v6, autobind by send and by connect. */
static void every_way_to_a_port(struct actor *a)
{
	actor_new_bound(a, "socket4");
	actor_new_bound(a, "socket6");
	actor_do(a, "socket4");
	actor_do(a, "sendto 3544");
	actor_do(a, "socket6");
	actor_do(a, "sendmsg 3545");
	actor_do(a, "socket4");
	actor_do(a, "connect 3544");
	actor_do(a, "socket6");
	actor_do(a, "connect 3544");
}

static void need_unprivileged_user(void)
{
	need_root();
	if (!getpwnam(UNPRIVILEGED))
		cr_skip_test("no user " UNPRIVILEGED " to act as an ordinary user");
}

Test(trust, nobody_named_miredo_is_never_reported)
{
	struct teredo_selection *o;

	need_unprivileged_user();
	o = new_selection();
	obs = observe(o, 0);
	start_intruders(UNPRIVILEGED);
	for (size_t i = 0; i < 3; i++)
		every_way_to_a_port(intruders[i]);
	expect_quiet(obs, 500);
	cr_assert_eq(teredo_observer_current_port(obs), 0);
}

/* The same programs and names, run by root, are the client: the test can fail. */
Test(trust, root_named_miredo_is_reported_every_way)
{
	struct teredo_selection *o;
	long port;

	need_root();
	o = new_selection();
	obs = observe(o, 0);
	start_intruders(NULL);
	for (size_t i = 0; i < 3; i++) {
		port = actor_new_bound(intruders[i], "socket4");
		expect_event(obs, TEREDO_PORT_ADDED, (uint16_t)port, NULL);
		actor_do(intruders[i], "close");
		expect_event(obs, TEREDO_PORT_DELETED, 0, NULL);
	}
}

Test(trust, nobody_cannot_displace_the_real_client)
{
	struct teredo_selection *o;
	long port;

	need_unprivileged_user();
	o = new_selection();
	obs = observe(o, 0);
	client = actor_start("miredo");
	port = actor_new_bound(client, "socket4");
	expect_event(obs, TEREDO_PORT_ADDED, (uint16_t)port, NULL);
	start_intruders(UNPRIVILEGED);
	for (size_t i = 0; i < 3; i++)
		every_way_to_a_port(intruders[i]);
	for (size_t i = 0; i < 3; i++) {
		actor_kill(intruders[i]);
		intruders[i] = NULL;
	}
	expect_quiet(obs, 500);
	cr_assert_eq(teredo_observer_current_port(obs), port);
}

/* Bound before the observer starts: the start-up snapshot decides the same way. */
Test(trust, snapshot_ignores_nobody_named_miredo)
{
	struct teredo_selection *o;
	long port;

	need_unprivileged_user();
	client = actor_start("miredo");
	port = actor_new_bound(client, "socket6");
	/* Bound after the client's: were they counted, the initial port would be theirs. */
	start_intruders(UNPRIVILEGED);
	for (size_t i = 0; i < 3; i++)
		actor_new_bound(intruders[i], "socket4");
	o = new_selection();
	obs = observe(o, (uint16_t)port);
}

Test(trust, traffic_matching_ignores_nobody)
{
	struct teredo_selection *o;

	need_unprivileged_user();
	o = new_selection();
	teredo_selection_set_match_traffic(o, true);
	obs = observe(o, 0);
	start_intruders(UNPRIVILEGED);
	for (size_t i = 0; i < 3; i++) {
		actor_do(intruders[i], "socket4");
		actor_do(intruders[i], "sendto 3544");
		actor_do(intruders[i], "socket6");
		actor_do(intruders[i], "connect 3544");
	}
	expect_quiet(obs, 500);
}

/* Debian's miredo runs its worker as the miredo system user: trusted by default. */
Test(trust, the_miredo_system_user_is_trusted)
{
	struct teredo_selection *o;
	long port;

	need_root();
	if (!getpwnam("miredo"))
		cr_skip_test("no miredo system user (apt-get install miredo)");
	o = new_selection();
	obs = observe(o, 0);
	client = actor_start_as(NULL, "miredo", "miredo");
	port = actor_new_bound(client, "socket4");
	expect_event(obs, TEREDO_PORT_ADDED, (uint16_t)port, NULL);
}

/* --user names who else may be the client; the list replaces the default. */
Test(trust, users_option_names_the_credentials)
{
	struct teredo_selection *o;
	long port;

	need_unprivileged_user();
	o = new_selection();
	cr_assert_eq(teredo_selection_add_user(o, UNPRIVILEGED), 0, "%s",
		     teredo_observer_last_error());
	obs = observe(o, 0);
	other = actor_start("miredo"); /* root, no longer listed */
	actor_new_bound(other, "socket4");
	expect_quiet(obs, 300);
	client = actor_start_as(NULL, "miredo", UNPRIVILEGED);
	port = actor_new_bound(client, "socket4");
	expect_event(obs, TEREDO_PORT_ADDED, (uint16_t)port, NULL);
}

Test(trust, empty_selections_are_errors)
{
	struct teredo_selection *o;

	o = new_selection();
	cr_assert_eq(setenv("TEREDO_OBSERVER_COMM", "", 1), 0);
	cr_assert_eq(teredo_selection_from_env(o), -EINVAL);
	cr_assert(strstr(teredo_observer_last_error(), "match nothing"), "%s",
		  teredo_observer_last_error());
	unsetenv("TEREDO_OBSERVER_COMM");
	o = new_selection();
	cr_assert_eq(setenv("TEREDO_OBSERVER_USER", ",", 1), 0);
	cr_assert_eq(teredo_selection_from_env(o), -EINVAL);
	unsetenv("TEREDO_OBSERVER_USER");
	o = new_selection();
	cr_assert_eq(teredo_selection_add_user(o, "no-such-user-here"), -EINVAL);
	cr_assert(strstr(teredo_observer_last_error(), "no-such-user-here"), "%s",
		  teredo_observer_last_error());
}
