/* SPDX-License-Identifier: MIT */
/*
 * --nft-set with --all-netns: the set of that name in each network
 * namespace holds that namespace's Teredo port. The library already treats
 * each namespace as a computer of its own with its own client (an event's
 * port is its netns's port); each has its own nftables ruleset too, so the
 * port opens in the firewall of the namespace the client runs in and
 * nowhere else.
 *
 * A namespace is reached through an fd of it: the event's process's
 * (/proc/PID/ns/net, its inode checked against the event's), or else any
 * found in /run/netns or /proc/ * /ns/net with that inode. Commands run
 * there through nft_set_open_in (setns(2) and back, one transaction each).
 * A namespace is held (its fd and libnftables context kept) while it has a
 * port and for a minute after its set was emptied (so that a restarting
 * client finds it ready); then it is let go, so that a namespace being
 * deleted is not kept alive by us for longer.
 *
 * At start every namespace found is made to match: the port of each that
 * has a client (the library's state, teredo_observer_each_netns), and the
 * set emptied in each that has none (an earlier run's elements). That no
 * namespace holds the set is the one failure at start (a mistyped name);
 * a namespace with a client and no set, or one whose set is of a wrong
 * type, is said once and tried again each second: its port stays closed
 * there meanwhile.
 */
#ifndef TEREDO_NFT_NETNS_H
#define TEREDO_NFT_NETNS_H

#include <stdbool.h>
#include <stddef.h>

struct nft_netns;
struct teredo_observer;
struct teredo_port_event;

/* Every namespace made to match obs's state now. 0 or -errno, one line in why. */
int nft_netns_open(const char *spec, const struct teredo_observer *obs, struct nft_netns **out,
		   char *why, size_t len);

/* The event's namespace's set holds its port. Failures are said here, once, and retried. */
void nft_netns_set(struct nft_netns *nn, const struct teredo_port_event *ev);

/* Milliseconds until nft_netns_service has something to do (a retry, a namespace to let go); -1:
 * never. */
long nft_netns_next_wake_ms(const struct nft_netns *nn);

/*
 * Readable when nftables said something in a namespace whose set is held
 * (a ruleset loaded again there): nft_netns_service reads it. -1 for NULL.
 */
int nft_netns_fd(const struct nft_netns *nn);

/* Try again what waits, put back a port a namespace's set lost, and let go of the namespaces idle
 * for long enough. */
void nft_netns_service(struct nft_netns *nn);

/* Empty every set we filled (unless keep) and let go: 0, or -1 once said why. NULL ignored. */
int nft_netns_close(struct nft_netns *nn, bool keep);

#endif
