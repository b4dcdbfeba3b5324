// SPDX-License-Identifier: MIT
/*
 * rtnetlink messages in, Windows' unicast rows out. Every message carries the
 * whole state of its link or address, so applying dumps and notifications in
 * the order they arrive converges on the kernel's state, whatever overlaps.
 */
#include <errno.h>
#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/if_arp.h>
#include <linux/rtnetlink.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/times.h>
#include <time.h>

#include "address_view.h"
#include "grow.h"

/* Older uapi headers (Debian 12's) have IFA_PROTO but not its values. */
#ifndef IFA_PROTO_KERNEL_LO
#define IFA_PROTO_KERNEL_LO 1
#define IFA_PROTO_KERNEL_RA 2
#define IFA_PROTO_KERNEL_LL 3
#endif

#define NS_PER_SEC 1000000000ULL
/* 100 ns units between 1601-01-01 (FILETIME's epoch) and 1970-01-01. */
#define FILETIME_UNIX_EPOCH 116444736000000000LL

void address_view_init(struct address_view *v, const char *teredo_name)
{
	memset(v, 0, sizeof(*v));
	v->teredo_name = teredo_name;
}

void address_view_clear(struct address_view *v)
{
	v->n_links = 0;
	v->n_addrs = 0;
}

void address_view_fini(struct address_view *v)
{
	free(v->links);
	free(v->addrs);
	address_view_init(v, v->teredo_name);
}

/*
 * cstamp counts jiffies since boot, which start a fraction of a second after
 * CLOCK_MONOTONIC (0.2 s here). times() returns the same jiffies, offset by
 * the kernel's INITIAL_JIFFIES (300 s before 2^32 jiffies), in hundredths:
 * the tick rate whose offset puts times() near the monotonic uptime gives
 * cstamp's clock now. None does (not Linux's usual HZ): the monotonic uptime.
 */
uint32_t kernel_tick_cs(clock_t ticks, uint64_t mono_ns)
{
	static const int64_t rates[] = { 100, 250, 300, 1000 };
	int64_t uptime_cs = (int64_t)(mono_ns / 10000000);

	for (size_t i = 0; i < sizeof(rates) / sizeof(rates[0]); i++) {
		int64_t since_boot = (int64_t)ticks - ((INT64_C(100) << 32) / rates[i] - 30000);

		if (since_boot >= 0 && llabs(since_boot - uptime_cs) < 6000)
			return (uint32_t)since_boot;
	}
	return (uint32_t)uptime_cs;
}

void view_clock_now(struct view_clock *now)
{
	struct timespec mono, real;
	struct tms unused;
	clock_t ticks;

	/* None of these can fail as called. */
	ticks = times(&unused);
	clock_gettime(CLOCK_MONOTONIC, &mono);
	clock_gettime(CLOCK_REALTIME, &real);
	now->mono_ns = (uint64_t)mono.tv_sec * NS_PER_SEC + (uint64_t)mono.tv_nsec;
	now->tick_cs = kernel_tick_cs(ticks, now->mono_ns);
	now->filetime = FILETIME_UNIX_EPOCH + (int64_t)real.tv_sec * 10000000 + real.tv_nsec / 100;
}

/* ---------------------------------------------------------------- links */

static struct view_link *find_link(const struct address_view *v, uint32_t index)
{
	for (size_t i = 0; i < v->n_links; i++)
		if (v->links[i].index == index)
			return &v->links[i];
	return NULL;
}

static void remove_addrs_of(struct address_view *v, uint32_t index)
{
	size_t kept = 0;

	for (size_t i = 0; i < v->n_addrs; i++)
		if (v->addrs[i].ifindex != index)
			v->addrs[kept++] = v->addrs[i];
	v->n_addrs = kept;
}

static int link_attr(const struct nlattr *attr, void *data)
{
	const struct nlattr **name = data;

	if (mnl_attr_get_type(attr) == IFLA_IFNAME && !mnl_attr_validate(attr, MNL_TYPE_NUL_STRING))
		*name = attr;
	return MNL_CB_OK;
}

static int apply_link(struct address_view *v, const struct nlmsghdr *nlh)
{
	const struct ifinfomsg *ifi = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *name = NULL;
	struct view_link *link;

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*ifi))
		return -EINVAL;
	if (nlh->nlmsg_type == RTM_DELLINK) {
		link = find_link(v, (uint32_t)ifi->ifi_index);
		if (link)
			*link = v->links[--v->n_links];
		remove_addrs_of(v, (uint32_t)ifi->ifi_index);
		return 0;
	}
	if (mnl_attr_parse(nlh, sizeof(*ifi), link_attr, &name) < 0)
		return -EINVAL;
	link = find_link(v, (uint32_t)ifi->ifi_index);
	if (!link) {
		if (grow_array(&v->links, &v->cap_links, v->n_links + 1, sizeof(*v->links)))
			return -ENOMEM;
		link = &v->links[v->n_links++];
		memset(link, 0, sizeof(*link));
	}
	link->index = (uint32_t)ifi->ifi_index;
	link->type = ifi->ifi_type;
	link->flags = ifi->ifi_flags;
	/* A change message may leave the name out: keep the one known. */
	if (name)
		snprintf(link->name, sizeof(link->name), "%s", mnl_attr_get_str(name));
	return 0;
}

/* ---------------------------------------------------------------- addresses */

static const uint8_t teredo_prefix[4] = { 0x20, 0x01, 0x00, 0x00 };

static bool is_teredo_addr(const struct view_addr *a)
{
	return a->family == AF_INET6 && !memcmp(a->addr, teredo_prefix, sizeof(teredo_prefix));
}

static bool same_addr(const struct view_addr *a, const struct view_addr *b)
{
	size_t len = a->family == AF_INET ? 4 : 16;

	/* The kernel keys IPv4 addresses by prefix length too, IPv6 ones not. */
	return a->family == b->family && a->ifindex == b->ifindex &&
	       !memcmp(a->addr, b->addr, len) &&
	       (a->family == AF_INET6 || a->prefixlen == b->prefixlen);
}

static int addr_attr(const struct nlattr *attr, void *data)
{
	const struct nlattr **tb = data;
	int type = mnl_attr_get_type(attr);

	/* Attributes newer than these headers are skipped, not refused. */
	if (mnl_attr_type_valid(attr, IFA_MAX) > 0)
		tb[type] = attr;
	return MNL_CB_OK;
}

/* The address itself: IFA_LOCAL where there is a peer (IFA_ADDRESS then), as ip does. */
static int addr_bytes(const struct nlattr **tb, struct view_addr *a)
{
	const struct nlattr *attr = tb[IFA_LOCAL] ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
	size_t len = a->family == AF_INET ? 4 : 16;

	if (!attr || mnl_attr_get_payload_len(attr) != len)
		return -EINVAL;
	memcpy(a->addr, mnl_attr_get_payload(attr), len);
	return 0;
}

static int addr_details(const struct nlattr **tb, struct view_addr *a)
{
	const struct ifa_cacheinfo *ci;

	if (tb[IFA_FLAGS]) {
		if (mnl_attr_validate(tb[IFA_FLAGS], MNL_TYPE_U32))
			return -EINVAL;
		a->flags = mnl_attr_get_u32(tb[IFA_FLAGS]);
	}
	if (tb[IFA_PROTO]) {
		if (mnl_attr_validate(tb[IFA_PROTO], MNL_TYPE_U8))
			return -EINVAL;
		a->proto = mnl_attr_get_u8(tb[IFA_PROTO]);
	}
	a->valid = a->preferred = UINT32_MAX;
	if (tb[IFA_CACHEINFO]) {
		if (mnl_attr_validate2(tb[IFA_CACHEINFO], MNL_TYPE_UNSPEC, sizeof(*ci)))
			return -EINVAL;
		ci = mnl_attr_get_payload(tb[IFA_CACHEINFO]);
		a->valid = ci->ifa_valid;
		a->preferred = ci->ifa_prefered;
		a->cstamp = ci->cstamp;
	}
	return 0;
}

/* Parse an RTM_NEWADDR/RTM_DELADDR: 1 with *a, 0 for a family not ours, -EINVAL. */
static int parse_addr(const struct nlmsghdr *nlh, uint64_t received_ns, struct view_addr *a)
{
	const struct ifaddrmsg *ifa = mnl_nlmsg_get_payload(nlh);
	const struct nlattr *tb[IFA_MAX + 1] = { 0 };

	if (mnl_nlmsg_get_payload_len(nlh) < sizeof(*ifa))
		return -EINVAL;
	if (ifa->ifa_family != AF_INET && ifa->ifa_family != AF_INET6)
		return 0;
	if (mnl_attr_parse(nlh, sizeof(*ifa), addr_attr, tb) < 0)
		return -EINVAL;
	memset(a, 0, sizeof(*a));
	a->family = ifa->ifa_family;
	a->prefixlen = ifa->ifa_prefixlen;
	a->scope = ifa->ifa_scope;
	a->flags = ifa->ifa_flags; /* IFA_FLAGS, when given, has all 32 bits */
	a->ifindex = ifa->ifa_index;
	a->received_ns = received_ns;
	if (addr_bytes(tb, a) || addr_details(tb, a))
		return -EINVAL;
	return 1;
}

static struct view_addr *find_addr(const struct address_view *v, const struct view_addr *key)
{
	for (size_t i = 0; i < v->n_addrs; i++)
		if (same_addr(&v->addrs[i], key))
			return &v->addrs[i];
	return NULL;
}

static int apply_addr(struct address_view *v, const struct nlmsghdr *nlh, uint64_t received_ns)
{
	struct view_addr a, *known;
	int n;

	n = parse_addr(nlh, received_ns, &a);
	if (n <= 0)
		return n;
	known = find_addr(v, &a);
	if (nlh->nlmsg_type == RTM_DELADDR) {
		/* Keep the kernel's order: rows come out as `ip addr` lists them. */
		if (known) {
			memmove(known, known + 1,
				(size_t)(v->addrs + v->n_addrs - known - 1) * sizeof(a));
			v->n_addrs--;
		}
		return 0;
	}
	if (!known) {
		if (grow_array(&v->addrs, &v->cap_addrs, v->n_addrs + 1, sizeof(*v->addrs)))
			return -ENOMEM;
		known = &v->addrs[v->n_addrs++];
	}
	*known = a;
	return 0;
}

int address_view_apply(struct address_view *v, const struct nlmsghdr *nlh, uint64_t received_ns)
{
	switch (nlh->nlmsg_type) {
	case RTM_NEWLINK:
	case RTM_DELLINK:
		return apply_link(v, nlh);
	case RTM_NEWADDR:
	case RTM_DELADDR:
		return apply_addr(v, nlh, received_ns);
	}
	return 0;
}

/* ---------------------------------------------------------------- stability */

NL_DAD_STATE address_dad_state(uint32_t ifa_flags)
{
	/* A failed address keeps IFA_F_TENTATIVE: look at DADFAILED first. */
	if (ifa_flags & IFA_F_DADFAILED)
		return IpDadStateDuplicate;
	if (ifa_flags & IFA_F_TENTATIVE)
		return IpDadStateTentative;
	if (ifa_flags & IFA_F_DEPRECATED)
		return IpDadStateDeprecated;
	return IpDadStatePreferred;
}

static bool holds_teredo_addr(const struct address_view *v, uint32_t index, bool preferred)
{
	for (size_t i = 0; i < v->n_addrs; i++) {
		const struct view_addr *a = &v->addrs[i];

		if (a->ifindex == index && is_teredo_addr(a) &&
		    (!preferred || address_dad_state(a->flags) == IpDadStatePreferred))
			return true;
	}
	return false;
}

/*
 * Miredo names its tunnel after InterfaceName ("teredo" by default) and
 * gives it no address until qualified; an interface that holds a Teredo
 * address is one whatever its name.
 */
static bool is_teredo_link(const struct address_view *v, const struct view_link *link)
{
	return (v->teredo_name && !strcmp(link->name, v->teredo_name)) ||
	       holds_teredo_addr(v, link->index, false);
}

static bool teredo_link_qualified(const struct address_view *v, const struct view_link *link)
{
	return (link->flags & IFF_UP) && holds_teredo_addr(v, link->index, true);
}

bool address_view_has_teredo(const struct address_view *v)
{
	for (size_t i = 0; i < v->n_links; i++)
		if (is_teredo_link(v, &v->links[i]))
			return true;
	return false;
}

bool address_view_teredo_qualified(const struct address_view *v)
{
	bool any = false;

	for (size_t i = 0; i < v->n_links; i++) {
		if (!is_teredo_link(v, &v->links[i]))
			continue;
		if (!teredo_link_qualified(v, &v->links[i]))
			return false;
		any = true;
	}
	return any;
}

static bool family_wanted(int family, const struct view_addr *a)
{
	return family == AF_UNSPEC || family == a->family;
}

bool address_view_stable(const struct address_view *v, int family)
{
	for (size_t i = 0; i < v->n_addrs; i++)
		if (family_wanted(family, &v->addrs[i]) &&
		    address_dad_state(v->addrs[i].flags) != IpDadStatePreferred)
			return false;
	/* The Teredo address is IPv6: an IPv4 table does not wait for it. */
	if (family == AF_INET || !address_view_has_teredo(v))
		return true;
	return address_view_teredo_qualified(v);
}

/* ---------------------------------------------------------------- rows */

static uint16_t if_type_of(const struct view_link *link)
{
	if (!link)
		return IF_TYPE_OTHER;
	switch (link->type) {
	case ARPHRD_ETHER:
		return IF_TYPE_ETHERNET_CSMACD;
	case ARPHRD_LOOPBACK:
		return IF_TYPE_SOFTWARE_LOOPBACK;
	case ARPHRD_PPP:
		return IF_TYPE_PPP;
	case ARPHRD_IEEE80211:
		return IF_TYPE_IEEE80211;
	case ARPHRD_NONE: /* tun (Miredo's Teredo tunnel), WireGuard */
	case ARPHRD_TUNNEL:
	case ARPHRD_TUNNEL6:
	case ARPHRD_SIT:
	case ARPHRD_IPGRE:
	case ARPHRD_IP6GRE:
		return IF_TYPE_TUNNEL;
	}
	return IF_TYPE_OTHER;
}

static bool is_loopback_addr(const struct view_addr *a)
{
	static const uint8_t v6_loopback[16] = { [15] = 1 };

	if (a->family == AF_INET)
		return a->addr[0] == 127;
	return !memcmp(a->addr, v6_loopback, sizeof(v6_loopback));
}

static bool is_link_local(const struct view_addr *a)
{
	return a->family == AF_INET6 && a->addr[0] == 0xfe && (a->addr[1] & 0xc0) == 0x80;
}

/* An interface id made from a MAC (modified EUI-64) has ff:fe in its middle. */
static NL_SUFFIX_ORIGIN interface_id_origin(const struct view_addr *a)
{
	if (!(a->flags & IFA_F_STABLE_PRIVACY) && a->addr[11] == 0xff && a->addr[12] == 0xfe)
		return IpSuffixOriginLinkLayerAddress;
	return IpSuffixOriginRandom;
}

static void set_origins(MIB_UNICASTIPADDRESS_ROW *row, NL_PREFIX_ORIGIN prefix,
			NL_SUFFIX_ORIGIN suffix)
{
	row->PrefixOrigin = prefix;
	row->SuffixOrigin = suffix;
}

/*
 * Where Linux keeps no origin, the address says it: loopback and link-local
 * are well known, lifetimes that run out came from a router or DHCP, and
 * what never expires was set by hand.
 */
static void fill_origins(const struct address_view *v, const struct view_addr *a,
			 MIB_UNICASTIPADDRESS_ROW *row)
{
	const struct view_link *link = find_link(v, a->ifindex);
	bool permanent = a->flags & IFA_F_PERMANENT;

	if (is_loopback_addr(a) || a->proto == IFA_PROTO_KERNEL_LO)
		set_origins(row, IpPrefixOriginWellKnown, IpSuffixOriginWellKnown);
	else if (is_teredo_addr(a) && link && is_teredo_link(v, link))
		/* The prefix came in the server's router advertisement; the suffix is the mapping.
		 */
		set_origins(row, IpPrefixOriginRouterAdvertisement, IpSuffixOriginLinkLayerAddress);
	else if (is_link_local(a) || a->proto == IFA_PROTO_KERNEL_LL)
		set_origins(row, IpPrefixOriginWellKnown, interface_id_origin(a));
	else if (a->family == AF_INET6 && (a->flags & IFA_F_TEMPORARY))
		set_origins(row, IpPrefixOriginRouterAdvertisement, IpSuffixOriginRandom);
	else if (a->proto == IFA_PROTO_KERNEL_RA ||
		 (a->family == AF_INET6 && !permanent && a->prefixlen != 128))
		set_origins(row, IpPrefixOriginRouterAdvertisement, interface_id_origin(a));
	else if (!permanent)
		set_origins(row, IpPrefixOriginDhcp, IpSuffixOriginDhcp);
	else
		set_origins(row, IpPrefixOriginManual, IpSuffixOriginManual);
}

/* Seconds left now of a lifetime that had `left` seconds at received_ns. */
static ULONG lifetime_now(uint32_t left, uint64_t received_ns, const struct view_clock *now)
{
	uint64_t gone;

	if (left == UINT32_MAX)
		return left;
	gone = now->mono_ns > received_ns ? (now->mono_ns - received_ns) / NS_PER_SEC : 0;
	return gone >= left ? 0 : left - (uint32_t)gone;
}

/* The age modulo 2^32 hundredths (497 days): right across cstamp's wrap too. */
static int64_t creation_filetime(uint32_t cstamp, const struct view_clock *now)
{
	uint32_t age_cs = now->tick_cs - cstamp;

	return now->filetime - (int64_t)age_cs * 100000;
}

static void fill_address(const struct view_addr *a, MIB_UNICASTIPADDRESS_ROW *row)
{
	if (a->family == AF_INET) {
		row->Address.Ipv4.sin_family = AF_INET;
		memcpy(&row->Address.Ipv4.sin_addr, a->addr, 4);
		return;
	}
	row->Address.Ipv6.sin6_family = AF_INET6;
	memcpy(&row->Address.Ipv6.sin6_addr, a->addr, 16);
	/* Link scope needs its zone, the interface, as in "fe80::1%2". */
	if (a->scope == RT_SCOPE_LINK || is_link_local(a)) {
		row->Address.Ipv6.sin6_scope_id = a->ifindex;
		row->ScopeId.Value = a->ifindex;
	}
}

void address_row_fill(const struct address_view *v, const struct view_addr *a,
		      const struct view_clock *now, MIB_UNICASTIPADDRESS_ROW *row)
{
	memset(row, 0, sizeof(*row));
	fill_address(a, row);
	row->InterfaceLuid.Info.NetLuidIndex = a->ifindex & 0xffffff;
	row->InterfaceLuid.Info.IfType = if_type_of(find_link(v, a->ifindex));
	row->InterfaceIndex = a->ifindex;
	fill_origins(v, a, row);
	row->ValidLifetime = lifetime_now(a->valid, a->received_ns, now);
	row->PreferredLifetime = lifetime_now(a->preferred, a->received_ns, now);
	row->OnLinkPrefixLength = a->prefixlen;
	row->SkipAsSource = FALSE;
	row->DadState = address_dad_state(a->flags);
	row->CreationTimeStamp.QuadPart = creation_filetime(a->cstamp, now);
}

int address_view_table(const struct address_view *v, int family, const struct view_clock *now,
		       MIB_UNICASTIPADDRESS_TABLE **out)
{
	MIB_UNICASTIPADDRESS_TABLE *table;
	size_t n = 0;

	for (size_t i = 0; i < v->n_addrs; i++)
		n += family_wanted(family, &v->addrs[i]);
	/* Room for one row at least: the type declares Table[ANY_SIZE]. */
	table = calloc(1, offsetof(MIB_UNICASTIPADDRESS_TABLE, Table) +
				  (n ? n : 1) * sizeof(MIB_UNICASTIPADDRESS_ROW));
	if (!table)
		return -ENOMEM;
	for (size_t i = 0; i < v->n_addrs; i++)
		if (family_wanted(family, &v->addrs[i]))
			address_row_fill(v, &v->addrs[i], now, &table->Table[table->NumEntries++]);
	*out = table;
	return 0;
}
