// SPDX-License-Identifier: MIT
/*
 * The address view, fed hand-made rtnetlink messages: rows as Windows fills
 * them, and the stable rule. Pure logic, no socket.
 */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/if_arp.h>
#include <linux/rtnetlink.h>
#include <string.h>

#include "address_view.h"

#define SEC 1000000000ULL
#define FOREVER UINT32_MAX

static struct address_view view;
static char buf[4096];

static void setup(void)
{
	address_view_init(&view, "teredo");
}

static void teardown(void)
{
	address_view_fini(&view);
}

TestSuite(address_view, .init = setup, .fini = teardown);

static void link_msg(uint16_t type, int index, const char *name, uint16_t arphrd, unsigned flags)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifinfomsg *ifi = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifi));

	nlh->nlmsg_type = type;
	ifi->ifi_index = index;
	ifi->ifi_type = arphrd;
	ifi->ifi_flags = flags;
	if (name)
		mnl_attr_put_strz(nlh, IFLA_IFNAME, name);
	cr_assert_eq(address_view_apply(&view, nlh, 0), 0);
}

struct addr_spec {
	uint16_t type; /* RTM_NEWADDR (default) or RTM_DELADDR */
	const char *addr;
	uint8_t prefixlen;
	int index;
	uint32_t flags;
	uint8_t scope;
	uint8_t proto;
	uint32_t valid, preferred; /* 0: forever */
	uint32_t cstamp;
	uint64_t received_ns;
};

static struct nlmsghdr *build_addr(const struct addr_spec *s)
{
	struct nlmsghdr *nlh = mnl_nlmsg_put_header(buf);
	struct ifaddrmsg *ifa = mnl_nlmsg_put_extra_header(nlh, sizeof(*ifa));
	struct ifa_cacheinfo ci = { 0 };
	unsigned char bytes[16];
	int family = strchr(s->addr, ':') ? AF_INET6 : AF_INET;

	cr_assert_eq(inet_pton(family, s->addr, bytes), 1, "bad test address %s", s->addr);
	nlh->nlmsg_type = s->type ? s->type : RTM_NEWADDR;
	ifa->ifa_family = family;
	ifa->ifa_prefixlen = s->prefixlen;
	ifa->ifa_flags = s->flags & 0xff;
	ifa->ifa_scope = s->scope;
	ifa->ifa_index = s->index;
	mnl_attr_put(nlh, IFA_ADDRESS, family == AF_INET ? 4 : 16, bytes);
	if (family == AF_INET)
		mnl_attr_put(nlh, IFA_LOCAL, 4, bytes);
	mnl_attr_put_u32(nlh, IFA_FLAGS, s->flags);
	if (s->proto)
		mnl_attr_put_u8(nlh, IFA_PROTO, s->proto);
	ci.ifa_valid = s->valid ? s->valid : FOREVER;
	ci.ifa_prefered = s->preferred ? s->preferred : FOREVER;
	ci.cstamp = s->cstamp;
	ci.tstamp = s->cstamp;
	mnl_attr_put(nlh, IFA_CACHEINFO, sizeof(ci), &ci);
	return nlh;
}

static void addr(struct addr_spec s)
{
	cr_assert_eq(address_view_apply(&view, build_addr(&s), s.received_ns), 0);
}

static const struct view_clock clock_at_100s = {
	.mono_ns = 100 * SEC,
	.tick_cs = 10000,
	.filetime = 133000000000000000LL,
};

/* The row of the only (or first) address of the view. */
static MIB_UNICASTIPADDRESS_ROW row_of(size_t i)
{
	MIB_UNICASTIPADDRESS_ROW row;

	cr_assert_lt(i, view.n_addrs);
	address_row_fill(&view, &view.addrs[i], &clock_at_100s, &row);
	return row;
}

static void ethernet(int index)
{
	link_msg(RTM_NEWLINK, index, "eth0", ARPHRD_ETHER, IFF_UP);
}

/* ---------------------------------------------------------------- rows */

Test(address_view, ipv4_manual_address_row)
{
	MIB_UNICASTIPADDRESS_ROW row;

	ethernet(2);
	addr((struct addr_spec){ .addr = "192.0.2.100",
				 .prefixlen = 24,
				 .index = 2,
				 .flags = IFA_F_PERMANENT,
				 .cstamp = 9000 });
	row = row_of(0);
	cr_assert_eq(row.Address.si_family, AF_INET);
	cr_assert_eq(row.Address.Ipv4.sin_addr.s_addr, inet_addr("192.0.2.100"));
	cr_assert_eq(row.Address.Ipv4.sin_port, 0);
	cr_assert_eq(row.InterfaceIndex, 2);
	cr_assert_eq(row.InterfaceLuid.Info.NetLuidIndex, 2);
	cr_assert_eq(row.InterfaceLuid.Info.IfType, IF_TYPE_ETHERNET_CSMACD);
	cr_assert_eq(row.PrefixOrigin, IpPrefixOriginManual);
	cr_assert_eq(row.SuffixOrigin, IpSuffixOriginManual);
	cr_assert_eq(row.ValidLifetime, FOREVER);
	cr_assert_eq(row.PreferredLifetime, FOREVER);
	cr_assert_eq(row.OnLinkPrefixLength, 24);
	cr_assert_eq(row.SkipAsSource, FALSE);
	cr_assert_eq(row.DadState, IpDadStatePreferred);
	cr_assert_eq(row.ScopeId.Value, 0);
	/* Made 10 s before the clock's instant (tick 9000 vs 10000 hundredths). */
	cr_assert_eq(row.CreationTimeStamp.QuadPart, clock_at_100s.filetime - 10 * 10000000LL);
}

Test(address_view, luid_bitfields_are_windows_bits)
{
	NET_LUID luid = { 0 };

	luid.Info.NetLuidIndex = 3;
	luid.Info.IfType = IF_TYPE_TUNNEL;
	cr_assert_eq(luid.Value, ((ULONG64)IF_TYPE_TUNNEL << 48) | (3ULL << 24));
}

Test(address_view, ipv6_link_local_has_its_zone)
{
	MIB_UNICASTIPADDRESS_ROW row;

	ethernet(4);
	addr((struct addr_spec){ .addr = "fe80::fc:ff:fe00:1",
				 .prefixlen = 64,
				 .index = 4,
				 .flags = IFA_F_PERMANENT,
				 .scope = RT_SCOPE_LINK });
	row = row_of(0);
	cr_assert_eq(row.Address.si_family, AF_INET6);
	cr_assert_eq(row.Address.Ipv6.sin6_scope_id, 4);
	cr_assert_eq(row.ScopeId.Value, 4);
	cr_assert_eq(row.PrefixOrigin, IpPrefixOriginWellKnown);
	cr_assert_eq(row.SuffixOrigin, IpSuffixOriginLinkLayerAddress, "ff:fe: made from the MAC");
}

Test(address_view, teredo_address_row)
{
	MIB_UNICASTIPADDRESS_ROW row;

	link_msg(RTM_NEWLINK, 3, "teredo", ARPHRD_NONE, IFF_UP);
	addr((struct addr_spec){ .addr = "2001:0:c000:201:81b:6d58:3fff:fd9b",
				 .prefixlen = 32,
				 .index = 3,
				 .flags = IFA_F_PERMANENT });
	row = row_of(0);
	cr_assert_eq(row.InterfaceLuid.Info.IfType, IF_TYPE_TUNNEL);
	cr_assert_eq(row.PrefixOrigin, IpPrefixOriginRouterAdvertisement);
	cr_assert_eq(row.SuffixOrigin, IpSuffixOriginLinkLayerAddress);
	cr_assert_eq(row.ScopeId.Value, 0);
	cr_assert_eq(row.Address.Ipv6.sin6_scope_id, 0);
}

Test(address_view, origins_of_the_other_kinds)
{
	ethernet(2);
	link_msg(RTM_NEWLINK, 1, "lo", ARPHRD_LOOPBACK, IFF_UP);
	addr((struct addr_spec){ .addr = "::1",
				 .prefixlen = 128,
				 .index = 1,
				 .flags = IFA_F_PERMANENT,
				 .proto = 1 });
	addr((struct addr_spec){ .addr = "2001:db8::1234:5678:9abc:def0",
				 .prefixlen = 64,
				 .index = 2,
				 .flags = IFA_F_TEMPORARY,
				 .valid = 600,
				 .preferred = 300 });
	addr((struct addr_spec){ .addr = "2001:db8::fc:ff:fe00:1",
				 .prefixlen = 64,
				 .index = 2,
				 .flags = IFA_F_MANAGETEMPADDR,
				 .valid = 600,
				 .preferred = 300,
				 .proto = 2 });
	addr((struct addr_spec){ .addr = "2001:db8::99",
				 .prefixlen = 128,
				 .index = 2,
				 .valid = 600,
				 .preferred = 300 });
	addr((struct addr_spec){
		.addr = "10.1.2.3", .prefixlen = 16, .index = 2, .valid = 600, .preferred = 600 });
	addr((struct addr_spec){ .addr = "fe80::1:2:3:4",
				 .prefixlen = 64,
				 .index = 2,
				 .flags = IFA_F_PERMANENT | IFA_F_STABLE_PRIVACY,
				 .scope = RT_SCOPE_LINK });

	cr_assert_eq(row_of(0).PrefixOrigin, IpPrefixOriginWellKnown, "loopback");
	cr_assert_eq(row_of(0).SuffixOrigin, IpSuffixOriginWellKnown);
	cr_assert_eq(row_of(0).InterfaceLuid.Info.IfType, IF_TYPE_SOFTWARE_LOOPBACK);
	cr_assert_eq(row_of(1).PrefixOrigin, IpPrefixOriginRouterAdvertisement, "temporary");
	cr_assert_eq(row_of(1).SuffixOrigin, IpSuffixOriginRandom);
	cr_assert_eq(row_of(2).PrefixOrigin, IpPrefixOriginRouterAdvertisement, "SLAAC");
	cr_assert_eq(row_of(2).SuffixOrigin, IpSuffixOriginLinkLayerAddress);
	cr_assert_eq(row_of(3).PrefixOrigin, IpPrefixOriginDhcp, "DHCPv6 /128");
	cr_assert_eq(row_of(3).SuffixOrigin, IpSuffixOriginDhcp);
	cr_assert_eq(row_of(4).PrefixOrigin, IpPrefixOriginDhcp, "IPv4 lease");
	cr_assert_eq(row_of(4).SuffixOrigin, IpSuffixOriginDhcp);
	cr_assert_eq(row_of(5).PrefixOrigin, IpPrefixOriginWellKnown, "stable-privacy link-local");
	cr_assert_eq(row_of(5).SuffixOrigin, IpSuffixOriginRandom);
}

Test(address_view, lifetimes_count_down_from_reception)
{
	ethernet(2);
	addr((struct addr_spec){ .addr = "2001:db8::7",
				 .prefixlen = 64,
				 .index = 2,
				 .valid = 300,
				 .preferred = 5,
				 .received_ns = 89 * SEC + SEC / 2 });
	/* 10.5 s later: whole seconds gone are 10; the preferred time ran out. */
	cr_assert_eq(row_of(0).ValidLifetime, 290);
	cr_assert_eq(row_of(0).PreferredLifetime, 0);
}

Test(address_view, creation_time_across_the_tick_counter_wrap)
{
	struct view_clock now = clock_at_100s;
	MIB_UNICASTIPADDRESS_ROW row;

	now.tick_cs = 50; /* the counter wrapped 100 hundredths after cstamp */
	ethernet(2);
	addr((struct addr_spec){ .addr = "192.0.2.1",
				 .prefixlen = 24,
				 .index = 2,
				 .flags = IFA_F_PERMANENT,
				 .cstamp = UINT32_MAX - 49 });
	address_row_fill(&view, &view.addrs[0], &now, &row);
	cr_assert_eq(row.CreationTimeStamp.QuadPart, now.filetime - 100 * 100000LL);
}

Test(address_view, kernel_tick_clock_from_times)
{
	/* HZ 250: times() = jiffies * 100 / 250, jiffies from 2^32 - 300 s. */
	uint64_t jiffies = (1ULL << 32) - 300 * 250 + 250 * 1000; /* 1000 s after boot */

	cr_assert_eq(kernel_tick_cs((clock_t)(jiffies * 100 / 250), 1000 * SEC + SEC / 5), 100000);
	/* HZ 1000 */
	jiffies = (1ULL << 32) - 300 * 1000 + 1000 * 50;
	cr_assert_eq(kernel_tick_cs((clock_t)(jiffies / 10), 50 * SEC), 5000);
	/* Nothing like Linux: the monotonic uptime. */
	cr_assert_eq(kernel_tick_cs(12345, 42 * SEC), 4200);
}

Test(address_view, dad_states_from_flags)
{
	cr_assert_eq(address_dad_state(0), IpDadStatePreferred);
	cr_assert_eq(address_dad_state(IFA_F_PERMANENT), IpDadStatePreferred);
	cr_assert_eq(address_dad_state(IFA_F_TENTATIVE), IpDadStateTentative);
	cr_assert_eq(address_dad_state(IFA_F_TENTATIVE | IFA_F_OPTIMISTIC), IpDadStateTentative);
	cr_assert_eq(address_dad_state(IFA_F_TENTATIVE | IFA_F_DADFAILED), IpDadStateDuplicate);
	cr_assert_eq(address_dad_state(IFA_F_DEPRECATED), IpDadStateDeprecated);
}

/* ---------------------------------------------------------------- updates */

Test(address_view, new_replaces_del_removes_in_kernel_order)
{
	ethernet(2);
	addr((struct addr_spec){
		.addr = "2001:db8::1", .prefixlen = 64, .index = 2, .flags = IFA_F_TENTATIVE });
	addr((struct addr_spec){ .addr = "2001:db8::2", .prefixlen = 64, .index = 2 });
	addr((struct addr_spec){ .addr = "2001:db8::3", .prefixlen = 64, .index = 2 });
	addr((struct addr_spec){ .addr = "2001:db8::1", .prefixlen = 64, .index = 2 });
	cr_assert_eq(view.n_addrs, 3);
	cr_assert_eq(row_of(0).DadState, IpDadStatePreferred, "replaced in place");
	addr((struct addr_spec){
		.type = RTM_DELADDR, .addr = "2001:db8::2", .prefixlen = 64, .index = 2 });
	cr_assert_eq(view.n_addrs, 2);
	cr_assert_eq(view.addrs[1].addr[15], 3, "order kept");
	/* IPv4 keys on the prefix length too: two entries. */
	addr((struct addr_spec){ .addr = "10.0.0.1", .prefixlen = 8, .index = 2 });
	addr((struct addr_spec){ .addr = "10.0.0.1", .prefixlen = 24, .index = 2 });
	cr_assert_eq(view.n_addrs, 4);
}

Test(address_view, link_removal_takes_its_addresses)
{
	ethernet(2);
	link_msg(RTM_NEWLINK, 3, "teredo", ARPHRD_NONE, 0);
	addr((struct addr_spec){ .addr = "192.0.2.1", .prefixlen = 24, .index = 2 });
	addr((struct addr_spec){ .addr = "fe80::1", .prefixlen = 64, .index = 3 });
	link_msg(RTM_DELLINK, 3, NULL, ARPHRD_NONE, 0);
	cr_assert_eq(view.n_links, 1);
	cr_assert_eq(view.n_addrs, 1);
	cr_assert_not(address_view_has_teredo(&view));
}

Test(address_view, link_change_without_name_keeps_the_name)
{
	link_msg(RTM_NEWLINK, 3, "teredo", ARPHRD_NONE, 0);
	link_msg(RTM_NEWLINK, 3, NULL, ARPHRD_NONE, IFF_UP);
	cr_assert_str_eq(view.links[0].name, "teredo");
	cr_assert_eq(view.links[0].flags, IFF_UP);
}

Test(address_view, malformed_messages_change_nothing)
{
	struct addr_spec s = { .addr = "2001:db8::1", .prefixlen = 64, .index = 2 };
	struct nlmsghdr *nlh = build_addr(&s);
	struct nlattr *attr = (struct nlattr *)((char *)nlh + NLMSG_HDRLEN +
						NLMSG_ALIGN(sizeof(struct ifaddrmsg)));

	attr->nla_len = NLA_HDRLEN + 4; /* an IPv6 address of 4 bytes */
	cr_assert_eq(address_view_apply(&view, nlh, 0), -EINVAL);
	nlh->nlmsg_len = NLMSG_HDRLEN + 2; /* shorter than its ifaddrmsg */
	cr_assert_eq(address_view_apply(&view, nlh, 0), -EINVAL);
	cr_assert_eq(view.n_addrs, 0);
}

/* ---------------------------------------------------------------- stable */

Test(address_view, stable_when_every_address_is_preferred)
{
	ethernet(2);
	addr((struct addr_spec){ .addr = "192.0.2.1", .prefixlen = 24, .index = 2 });
	addr((struct addr_spec){ .addr = "2001:db8::1", .prefixlen = 64, .index = 2 });
	cr_assert(address_view_stable(&view, AF_UNSPEC));
	cr_assert(address_view_stable(&view, AF_INET6));
	cr_assert(address_view_stable(&view, AF_INET));
}

Test(address_view, an_unpreferred_address_unsettles_its_family_only)
{
	static const uint32_t unsettled[] = { IFA_F_TENTATIVE, IFA_F_TENTATIVE | IFA_F_DADFAILED,
					      IFA_F_DEPRECATED };

	ethernet(2);
	addr((struct addr_spec){ .addr = "192.0.2.1", .prefixlen = 24, .index = 2 });
	for (size_t i = 0; i < sizeof(unsettled) / sizeof(unsettled[0]); i++) {
		addr((struct addr_spec){ .addr = "2001:db8::1",
					 .prefixlen = 64,
					 .index = 2,
					 .flags = unsettled[i] });
		cr_assert_not(address_view_stable(&view, AF_UNSPEC), "flags %#x", unsettled[i]);
		cr_assert_not(address_view_stable(&view, AF_INET6), "flags %#x", unsettled[i]);
		cr_assert(address_view_stable(&view, AF_INET), "flags %#x", unsettled[i]);
	}
}

Test(address_view, teredo_must_be_qualified)
{
	ethernet(2);
	addr((struct addr_spec){ .addr = "192.0.2.100", .prefixlen = 24, .index = 2 });
	/* Miredo started, server unreachable: the interface, down, no address. */
	link_msg(RTM_NEWLINK, 3, "teredo", ARPHRD_NONE, 0);
	cr_assert(address_view_has_teredo(&view));
	cr_assert_not(address_view_teredo_qualified(&view));
	cr_assert_not(address_view_stable(&view, AF_UNSPEC));
	cr_assert_not(address_view_stable(&view, AF_INET6));
	cr_assert(address_view_stable(&view, AF_INET), "an IPv4 table does not wait for Teredo");
	/* The address while the interface is still down: not yet. */
	addr((struct addr_spec){ .addr = "2001:0:c000:201::1", .prefixlen = 32, .index = 3 });
	cr_assert_not(address_view_stable(&view, AF_UNSPEC));
	/* Up: qualified. */
	link_msg(RTM_NEWLINK, 3, NULL, ARPHRD_NONE, IFF_UP);
	cr_assert(address_view_teredo_qualified(&view));
	cr_assert(address_view_stable(&view, AF_UNSPEC));
	cr_assert(address_view_stable(&view, AF_INET6));
	/* Qualification lost: the address goes. */
	addr((struct addr_spec){
		.type = RTM_DELADDR, .addr = "2001:0:c000:201::1", .prefixlen = 32, .index = 3 });
	cr_assert_not(address_view_stable(&view, AF_UNSPEC));
}

Test(address_view, teredo_address_on_another_interface_counts_too)
{
	link_msg(RTM_NEWLINK, 5, "tun7", ARPHRD_NONE, 0);
	addr((struct addr_spec){ .addr = "2001:0:c000:201::9", .prefixlen = 32, .index = 5 });
	cr_assert(address_view_has_teredo(&view));
	cr_assert_not(address_view_stable(&view, AF_UNSPEC), "down");
	link_msg(RTM_NEWLINK, 5, NULL, ARPHRD_NONE, IFF_UP);
	cr_assert(address_view_stable(&view, AF_UNSPEC));
}

Test(address_view, no_teredo_interface_nothing_to_wait_for)
{
	link_msg(RTM_NEWLINK, 5, "tun7", ARPHRD_NONE, 0);
	cr_assert_not(address_view_has_teredo(&view));
	cr_assert(address_view_stable(&view, AF_UNSPEC));
}

/* ---------------------------------------------------------------- tables */

Test(address_view, table_holds_the_family_asked)
{
	MIB_UNICASTIPADDRESS_TABLE *table;

	ethernet(2);
	addr((struct addr_spec){ .addr = "192.0.2.1", .prefixlen = 24, .index = 2 });
	addr((struct addr_spec){ .addr = "2001:db8::1", .prefixlen = 64, .index = 2 });
	addr((struct addr_spec){ .addr = "192.0.2.2", .prefixlen = 24, .index = 2 });
	cr_assert_eq(address_view_table(&view, AF_INET, &clock_at_100s, &table), 0);
	cr_assert_eq(table->NumEntries, 2);
	cr_assert_eq(table->Table[0].Address.si_family, AF_INET);
	cr_assert_eq(table->Table[1].Address.Ipv4.sin_addr.s_addr, inet_addr("192.0.2.2"));
	FreeMibTable(table);
	cr_assert_eq(address_view_table(&view, AF_INET6, &clock_at_100s, &table), 0);
	cr_assert_eq(table->NumEntries, 1);
	FreeMibTable(table);
	cr_assert_eq(address_view_table(&view, AF_UNSPEC, &clock_at_100s, &table), 0);
	cr_assert_eq(table->NumEntries, 3);
	FreeMibTable(table);
}

Test(address_view, empty_table)
{
	MIB_UNICASTIPADDRESS_TABLE *table;

	cr_assert_eq(address_view_table(&view, AF_UNSPEC, &clock_at_100s, &table), 0);
	cr_assert_eq(table->NumEntries, 0);
	FreeMibTable(table);
}

Test(address_view, header_values_match_windows)
{
	cr_assert_eq(ERROR_IO_PENDING, 997);
	cr_assert_eq(ERROR_NOT_FOUND, 1168);
	cr_assert_eq(IpDadStatePreferred, 4);
	cr_assert_eq(IpDadStateDeprecated, 3);
	cr_assert_eq(IpPrefixOriginRouterAdvertisement, 4);
	cr_assert_eq(IpPrefixOriginUnchanged, 16);
	cr_assert_eq(IpSuffixOriginRandom, 5);
	cr_assert_eq(IpSuffixOriginUnchanged, 16);
	cr_assert_eq(IF_TYPE_TUNNEL, 131);
	cr_assert_eq(sizeof(MIB_UNICASTIPADDRESS_ROW), 80);
	cr_assert_str_eq(teredo_dad_state_name(IpDadStateTentative), "IpDadStateTentative");
	cr_assert_str_eq(teredo_windows_error_name(ERROR_IO_PENDING), "ERROR_IO_PENDING");
}
