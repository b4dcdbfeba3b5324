// SPDX-License-Identifier: MIT
/*
 * The firewalld backend's pure logic: which zone names are taken, which
 * entries of a zone are one UDP port, what a change removes and claims, and
 * the state file's fixed-size record (in a memfd). No bus, no firewalld:
 * user/firewall/tests/run-firewalld runs the real one.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <sys/mman.h>

#include "firewalld.c"

Test(firewalld, zone_names)
{
	cr_expect_null(firewalld_zone_name_problem("public"));
	cr_expect_null(firewalld_zone_name_problem("my-zone_2"));
	cr_expect_null(firewalld_zone_name_problem("abcdefghijklmnopq")); /* 17 */
	cr_expect_not_null(firewalld_zone_name_problem(NULL));
	cr_expect_not_null(firewalld_zone_name_problem(""));
	cr_expect_not_null(firewalld_zone_name_problem("abcdefghijklmnopqr")); /* 18 */
	cr_expect_not_null(firewalld_zone_name_problem("../etc"));
	cr_expect_not_null(firewalld_zone_name_problem("a/b"));
	cr_expect_not_null(firewalld_zone_name_problem("a b"));
}

Test(firewalld, single_udp_port)
{
	struct zone_port e[] = {
		{ "3545", "udp" },  { "3000-3100", "udp" }, { "3545", "tcp" },	{ "0", "udp" },
		{ "65536", "udp" }, { "03545", "udp" },	    { "65535", "udp" }, { "", "udp" },
	};
	uint16_t want[] = { 3545, 0, 0, 0, 0, 0, 65535, 0 };

	for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++)
		cr_expect_eq(single_udp_port(&e[i]), want[i], "%s/%s", e[i].port, e[i].proto);
}

/* The zone of each case: ssh, an administrator's 5000/udp, a stale 4000 of ours, a range. */
static void admin_zone(struct zone_ports *zp)
{
	cr_assert_eq(zone_ports_add(zp, "22", "tcp"), 0);
	cr_assert_eq(zone_ports_add(zp, "5000", "udp"), 0);
	cr_assert_eq(zone_ports_add(zp, "4000", "udp"), 0);
	cr_assert_eq(zone_ports_add(zp, "3000-3100", "udp"), 0);
}

static bool has(const struct zone_ports *zp, const char *port, const char *proto)
{
	for (size_t i = 0; i < zp->n; i++)
		if (!strcmp(zp->v[i].port, port) && !strcmp(zp->v[i].proto, proto))
			return true;
	return false;
}

Test(firewalld, a_new_port_is_claimed_and_ours_go)
{
	struct firewalld_zone z = { .ours = { 4000 } };
	struct zone_ports zp = { 0 };
	struct zone_change ch = { 0 };

	admin_zone(&zp);
	cr_assert_eq(wanted_ports(&z, &zp, 6000, &ch), 0);
	cr_expect(ch.claiming);
	cr_expect_eq(ch.n_removed, 1);
	cr_expect_eq(ch.removed, 4000);
	cr_expect(has(&zp, "6000", "udp"));
	cr_expect_not(has(&zp, "4000", "udp"));
	cr_expect(has(&zp, "22", "tcp") && has(&zp, "5000", "udp") && has(&zp, "3000-3100", "udp"));
	cr_expect_eq(zp.n, 4);
	zone_ports_clear(&zp);
}

Test(firewalld, the_administrators_port_is_not_claimed)
{
	struct firewalld_zone z = { .ours = { 4000 } };
	struct zone_ports zp = { 0 };
	struct zone_change ch = { 0 };

	admin_zone(&zp);
	cr_assert_eq(wanted_ports(&z, &zp, 5000, &ch), 0);
	cr_expect_not(ch.claiming);
	cr_expect_eq(ch.n_removed, 1);
	cr_expect(has(&zp, "5000", "udp"));
	cr_expect_eq(zp.n, 3);
	zone_ports_clear(&zp);
}

Test(firewalld, our_port_already_open_stays_without_a_call)
{
	struct firewalld_zone z = { .ours = { 4000 } };
	struct zone_ports zp = { 0 };
	struct zone_change ch = { 0 };

	admin_zone(&zp);
	cr_assert_eq(wanted_ports(&z, &zp, 4000, &ch), 0);
	cr_expect_not(ch.claiming);
	cr_expect_eq(ch.n_removed, 0);
	cr_expect_eq(zp.n, 4);
	zone_ports_clear(&zp);
}

Test(firewalld, no_port_removes_every_one_of_ours)
{
	struct firewalld_zone z = { .ours = { 4000, 5001, 0, 3000 } };
	struct zone_ports zp = { 0 };
	struct zone_change ch = { 0 };

	admin_zone(&zp);
	cr_assert_eq(zone_ports_add(&zp, "5001", "udp"), 0);
	cr_assert_eq(wanted_ports(&z, &zp, 0, &ch), 0);
	cr_expect_not(ch.claiming);
	/* 4000, 5001; 3000 is inside the administrator's range, which stays whole. */
	cr_expect_eq(ch.n_removed, 2);
	cr_expect(has(&zp, "3000-3100", "udp"));
	cr_expect_eq(zp.n, 3);
	zone_ports_clear(&zp);
}

Test(firewalld, a_port_inside_a_range_is_open)
{
	struct zone_ports zp = { 0 };

	admin_zone(&zp);
	cr_expect(zone_ports_covers(&zp, 3000));
	cr_expect(zone_ports_covers(&zp, 3050));
	cr_expect(zone_ports_covers(&zp, 3100));
	cr_expect_not(zone_ports_covers(&zp, 3101));
	cr_expect_not(zone_ports_covers(&zp, 22), "22 is tcp");
	cr_expect(zone_ports_covers(&zp, 5000));
	cr_expect_not(zone_ports_covers(&zp, 0));
	zone_ports_clear(&zp);
}

Test(firewalld, a_port_inside_an_administrators_range_is_not_claimed)
{
	struct firewalld_zone z = { 0 };
	struct zone_ports zp = { 0 };
	struct zone_change ch = { 0 };

	admin_zone(&zp);
	cr_assert_eq(wanted_ports(&z, &zp, 3050, &ch), 0);
	cr_expect_not(ch.claiming);
	cr_expect_eq(ch.n_removed, 0);
	zone_ports_clear(&zp);
}

Test(firewalld, claims_take_one_slot_each_and_run_out)
{
	struct firewalld_zone z = { 0 };

	for (uint16_t p = 1; p <= STATE_SLOTS; p++)
		cr_assert_eq(claim(&z, p), 0);
	cr_expect_eq(claim(&z, 3), 0, "a port claimed again takes no slot");
	cr_expect_eq(claim(&z, 100), -ENOSPC);
	keep_only(&z, 7);
	cr_expect(is_ours(&z, 7));
	cr_expect_not(is_ours(&z, 1));
	cr_expect_not(is_ours(&z, 0));
}

static struct firewalld_zone state_zone(void)
{
	struct firewalld_zone z = { .state_fd = memfd_create("state", MFD_CLOEXEC) };

	cr_assert_geq(z.state_fd, 0);
	snprintf(z.zone, sizeof(z.zone), "public");
	return z;
}

Test(firewalld, the_state_record_round_trips_at_one_size)
{
	struct firewalld_zone z = state_zone(), back = { 0 };
	char why[256];
	struct stat st;

	z.ours[0] = 65535;
	z.ours[3] = 1;
	cr_assert_eq(write_state(&z, why, sizeof(why)), 0, "%s", why);
	keep_only(&z, 42); /* shorter content, same size: no stale tail */
	cr_assert_eq(write_state(&z, why, sizeof(why)), 0, "%s", why);
	cr_assert_eq(fstat(z.state_fd, &st), 0);
	cr_expect_eq(st.st_size, STATE_SIZE);
	back.state_fd = z.state_fd;
	read_state(&back);
	cr_expect_eq(back.ours[0], 42);
	for (size_t i = 1; i < STATE_SLOTS; i++)
		cr_expect_eq(back.ours[i], 0);
	close(z.state_fd);
}

Test(firewalld, a_damaged_state_file_claims_nothing_wrong)
{
	struct firewalld_zone z = state_zone();
	const char *cut = "04000\n0500";  /* cut short: not a record */
	char bad[STATE_SIZE + 1] = { 0 }; /* one well-formed line, the rest not */

	cr_assert_eq(pwrite(z.state_fd, cut, strlen(cut), 0), (ssize_t)strlen(cut));
	read_state(&z);
	cr_expect_not(is_ours(&z, 4000));
	memset(bad, 'x', STATE_SIZE);
	memcpy(bad, "04000\n12a45\n", 12);
	cr_assert_eq(pwrite(z.state_fd, bad, STATE_SIZE, 0), STATE_SIZE);
	read_state(&z);
	cr_expect(is_ours(&z, 4000));
	cr_expect_not(is_ours(&z, 12));
	close(z.state_fd);
}
