/* SPDX-License-Identifier: MIT */
/*
 * The firewall job of the command and of serve: keep the Teredo port open in
 * a firewalld zone (--firewalld-zone) and in an nftables set (--nft-set),
 * from the first event on; close it on exit. A failure
 * at start ends the command (exit 2); one while running is said once, and
 * the change is tried again each second until it is through. A reload or
 * restart of firewalld empties its runtime configuration: the port is set
 * again at once.
 */
#ifndef TEREDO_FIREWALL_JOB_H
#define TEREDO_FIREWALL_JOB_H

#include <stdbool.h>
#include <stdint.h>

struct firewalld_zone;
struct nft_netns;
struct nft_set;
struct teredo_observer;
struct teredo_port_event;

struct firewall_job {
	const char *zone;      /* --firewalld-zone; NULL: none */
	const char *nft_set;   /* --nft-set "FAMILY TABLE SET"; NULL: none */
	bool nft_keep_on_exit; /* --nft-keep-on-exit */
	bool all_netns;	       /* --all-netns: the set of each event's namespace */
	struct firewalld_zone *fwz;
	struct nft_set *nft;
	struct nft_netns *nftns; /* with all_netns, instead of nft */
	uint16_t want;		 /* the port the zone should hold */
	bool pending;		 /* want is not through yet */
	bool started;		 /* the first change went through */
	int epoll_fd;		 /* with both nft and fwz: one fd of both; else -1 */
	int zone_fd;		 /* fwz's fd as it is in epoll_fd */
};

/*
 * Check the set, reach firewalld and check the zone: 0, or -1 once said why.
 * With all_netns, every namespace's set is made to match obs's state now.
 */
int firewall_job_open(struct firewall_job *job, const struct teredo_observer *obs);

/*
 * The port is now ev->port (in ev->netns): open it, closing the old one in
 * the same step. 0, or -1 when this was the first change and it failed
 * (said why). With all_netns a namespace's failure is its own: said once,
 * retried, never -1.
 */
int firewall_job_set(struct firewall_job *job, const struct teredo_port_event *ev);

/* ppoll's timeout: NULL when nothing waits (a change to retry; with all_netns, a namespace to let
 * go). */
const struct timespec *firewall_job_retry_after(const struct firewall_job *job);

/* The fd to poll too (-1: none), and its events. */
int firewall_job_fd(const struct firewall_job *job, short *events);

/*
 * After every wake: read what came from firewalld, and set the port again
 * when firewalld lost it (reload, restart) or a change is pending.
 */
void firewall_job_service(struct firewall_job *job);

/* Close our port and let go: 0, or -1 once said why (the port may stay open). */
int firewall_job_close(struct firewall_job *job);

#endif
