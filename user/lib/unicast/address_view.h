/* SPDX-License-Identifier: MIT */
/*
 * The links and unicast addresses of one network namespace, as rtnetlink
 * reports them (dumps and the link and address groups), and what Windows
 * makes of them: MIB_UNICASTIPADDRESS_ROW rows and the "stable" rule of
 * NotifyStableUnicastIpAddressTable. Pure logic: messages in, rows out.
 */
#ifndef TEREDO_ADDRESS_VIEW_H
#define TEREDO_ADDRESS_VIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "teredo_netioapi.h"

struct nlmsghdr;

struct view_link {
	uint32_t index;
	uint16_t type;	/* ARPHRD_* */
	uint32_t flags; /* IFF_* */
	char name[16];	/* IFNAMSIZ */
};

struct view_addr {
	uint8_t family;
	uint8_t prefixlen;
	uint8_t scope;	/* RT_SCOPE_* */
	uint8_t proto;	/* IFA_PROTO_*, 0 when the kernel gave none */
	uint32_t flags; /* IFA_F_* */
	uint32_t ifindex;
	uint8_t addr[16];
	uint32_t valid, preferred; /* seconds left when received; UINT32_MAX: forever */
	uint32_t cstamp;	   /* creation: hundredths of a second since boot */
	uint64_t received_ns;	   /* CLOCK_MONOTONIC when received */
};

struct address_view {
	struct view_link *links;
	size_t n_links, cap_links;
	struct view_addr *addrs;
	size_t n_addrs, cap_addrs;
	const char *teredo_name; /* the Teredo client's interface (Miredo's InterfaceName) */
};

/* The clocks at one instant: rows' lifetimes and creation times are computed from it. */
struct view_clock {
	uint64_t mono_ns; /* CLOCK_MONOTONIC: lifetimes count down from when a message came */
	uint32_t tick_cs; /* the kernel's tick clock, cstamp's: hundredths of a second since boot */
	int64_t filetime; /* CLOCK_REALTIME as 100 ns units since 1601-01-01 UTC */
};

void address_view_init(struct address_view *v, const char *teredo_name);
void address_view_clear(struct address_view *v);
void address_view_fini(struct address_view *v);

/*
 * Take in one rtnetlink message received at received_ns: RTM_NEWLINK,
 * RTM_DELLINK, RTM_NEWADDR, RTM_DELADDR (anything else is ignored).
 * 0, -ENOMEM, or -EINVAL for a malformed message (the view is unchanged).
 */
int address_view_apply(struct address_view *v, const struct nlmsghdr *nlh, uint64_t received_ns);

/* Windows' stable rule for family (AF_UNSPEC, AF_INET, AF_INET6): see the header. */
bool address_view_stable(const struct address_view *v, int family);

/* Is there a Teredo interface, and is it qualified (up, with its 2001:0::/32 address)? */
bool address_view_has_teredo(const struct address_view *v);
bool address_view_teredo_qualified(const struct address_view *v);

/* The rows of family, in the kernel's order, in one FreeMibTable-able block. 0 or -ENOMEM. */
int address_view_table(const struct address_view *v, int family, const struct view_clock *now,
		       MIB_UNICASTIPADDRESS_TABLE **out);

/* One row, as Windows fills it. link may be NULL (not known yet). */
void address_row_fill(const struct address_view *v, const struct view_addr *a,
		      const struct view_clock *now, MIB_UNICASTIPADDRESS_ROW *row);

NL_DAD_STATE address_dad_state(uint32_t ifa_flags);

/* The clocks now. */
void view_clock_now(struct view_clock *now);

/* cstamp's clock, from times()'s ticks and the monotonic clock (exposed for tests). */
uint32_t kernel_tick_cs(clock_t ticks, uint64_t mono_ns);

#endif
