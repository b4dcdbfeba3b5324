// SPDX-License-Identifier: MIT
/* The firewall job (firewall_job.h) over its backends: firewalld and nftables. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#include "firewall_job.h"
#include "firewalld.h"
#include "nft_netns.h"
#include "nft_set.h"
#include "teredo_observer.h"

#define WHY_MAX 512

static bool has_backend(const struct firewall_job *job)
{
	return job && (job->fwz || job->nft || job->nftns);
}

static int open_nft(struct firewall_job *job, const struct teredo_observer *obs, char *why,
		    size_t len)
{
	if (!job->nft_set)
		return 0;
	if (job->all_netns)
		return nft_netns_open(job->nft_set, obs, &job->nftns, why, len);
	return nft_set_open(job->nft_set, &job->nft, why, len);
}

/* Where nftables' news comes: the set's watch fd, or every namespace's as one. */
static int nft_news_fd(const struct firewall_job *job)
{
	return job->nft ? nft_set_watch_fd(job->nft) : nft_netns_fd(job->nftns);
}

/*
 * With both a set and a zone there are two fds to wait on: one epoll set of
 * both, so that the loops that run us wait on one fd whatever we hold.
 */
static int open_epoll(struct firewall_job *job, char *why, size_t len)
{
	struct epoll_event ev = { .events = EPOLLIN };

	if (nft_news_fd(job) < 0 || !job->fwz)
		return 0;
	job->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (job->epoll_fd >= 0 && !epoll_ctl(job->epoll_fd, EPOLL_CTL_ADD, nft_news_fd(job), &ev))
		return 0;
	snprintf(why, len, "cannot make an epoll set: %s", strerror(errno));
	return -1;
}

/* Let every backend go (each namespace's set emptied unless keep); 0, or -1 once said why. */
static int let_go(struct firewall_job *job, bool keep)
{
	/* Each namespace's port was set at open already, started or not. */
	int status = nft_netns_close(job->nftns, keep) ? -1 : 0;

	job->nftns = NULL;
	nft_set_free(job->nft);
	job->nft = NULL;
	firewalld_zone_free(job->fwz);
	job->fwz = NULL;
	if (job->epoll_fd >= 0)
		close(job->epoll_fd);
	job->epoll_fd = job->zone_fd = -1;
	return status;
}

int firewall_job_open(struct firewall_job *job, const struct teredo_observer *obs)
{
	char why[WHY_MAX];

	if (!job)
		return 0;
	job->epoll_fd = job->zone_fd = -1;
	if (open_nft(job, obs, why, sizeof(why)) < 0 ||
	    (job->zone && firewalld_zone_open(job->zone, &job->fwz, why, sizeof(why)) < 0) ||
	    open_epoll(job, why, sizeof(why)) < 0) {
		fprintf(stderr, "teredo-observer: %s\n", why);
		let_go(job, true); /* nothing was ours yet: leave every set as it was */
		return -1;
	}
	return 0;
}

/* Every backend holds port: 0, or -1 with the first failure in why. */
static int set_everywhere(struct firewall_job *job, uint16_t port, char *why, size_t len)
{
	/* nftables first: one transaction, well under a millisecond. */
	int failed = job->nft && nft_set_set_port(job->nft, port, why, len) < 0;

	if (job->fwz && firewalld_zone_set_port(job->fwz, port, why, len) < 0)
		failed = 1;
	return failed ? -1 : 0;
}

/* One try of job->want; a failure is said when it starts, not on every retry. */
static int try_change(struct firewall_job *job)
{
	char why[WHY_MAX];
	bool was_pending = job->pending;

	job->pending = set_everywhere(job, job->want, why, sizeof(why)) < 0;
	if (job->pending && (!was_pending || !job->started))
		fprintf(stderr, "teredo-observer: %s%s\n", why,
			job->started ? "; trying again every second" : "");
	else if (!job->pending && was_pending && job->started)
		fprintf(stderr, "teredo-observer: the firewall holds port %u again\n", job->want);
	return job->pending ? -1 : 0;
}

int firewall_job_set(struct firewall_job *job, const struct teredo_port_event *ev)
{
	if (!has_backend(job))
		return 0;
	if (job->nftns)
		nft_netns_set(job->nftns, ev);
	if (job->nft || job->fwz) {
		job->want = ev->port;
		if (try_change(job) < 0 && !job->started)
			return -1;
	}
	job->started = true;
	firewall_job_service(job);
	return 0;
}

const struct timespec *firewall_job_retry_after(const struct firewall_job *job)
{
	static struct timespec after;
	long ms = job ? nft_netns_next_wake_ms(job->nftns) : -1;

	if (job && job->pending && (ms < 0 || ms > 1000))
		ms = 1000;
	if (ms < 0)
		return NULL;
	after = (struct timespec){ .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000 };
	return &after;
}

/* The zone's fd in the epoll set of both: it changes when the bus is connected again. */
static void track_zone_fd(struct firewall_job *job)
{
	struct epoll_event ev = { .events = EPOLLIN };
	short events;
	int fd = firewalld_zone_fd(job->fwz, &events);

	if (fd == job->zone_fd)
		return;
	if (job->zone_fd >= 0)
		(void)epoll_ctl(job->epoll_fd, EPOLL_CTL_DEL, job->zone_fd, NULL);
	job->zone_fd = fd >= 0 && !epoll_ctl(job->epoll_fd, EPOLL_CTL_ADD, fd, &ev) ? fd : -1;
}

int firewall_job_fd(const struct firewall_job *job, short *events)
{
	if (!job)
		return -1;
	if (job->epoll_fd >= 0) {
		*events = POLLIN;
		return job->epoll_fd;
	}
	if (nft_news_fd(job) >= 0) {
		*events = POLLIN;
		return nft_news_fd(job);
	}
	return job->fwz ? firewalld_zone_fd(job->fwz, events) : -1;
}

/* Whether nftables' news means the set must be set again (nft_set_lost_port). */
static bool nft_lost_our_port(struct firewall_job *job)
{
	if (!job->pending)
		return nft_set_lost_port(job->nft, job->want, "");
	nft_set_ruleset_changed(job->nft); /* read: the pending change is tried at once anyway */
	return true;
}

void firewall_job_service(struct firewall_job *job)
{
	if (!has_backend(job))
		return;
	if (!job->started) {
		/* No port to hold yet: what nftables said is no news, but must be read. */
		nft_set_ruleset_changed(job->nft);
		nft_netns_service(job->nftns);
		return;
	}
	nft_netns_service(job->nftns);
	if (!job->nft && !job->fwz)
		return;
	if (job->epoll_fd >= 0)
		track_zone_fd(job);
	/* Each try reads the bus again, and may bring more news: at most a few rounds. */
	for (int round = 0; round < 3; round++) {
		bool nft_lost = nft_lost_our_port(job);

		if (!firewalld_zone_process(job->fwz) && !nft_lost && !job->pending)
			return;
		if (try_change(job) < 0)
			return;
	}
}

/* Fail closed: every backend lets the port go, but a set kept on purpose. */
int firewall_job_close(struct firewall_job *job)
{
	char why[WHY_MAX];
	int status = 0;

	if (!has_backend(job))
		return 0;
	if (job->started && job->nft && !job->nft_keep_on_exit &&
	    nft_set_set_port(job->nft, 0, why, sizeof(why)) < 0) {
		fprintf(stderr, "teredo-observer: on exit: %s\n", why);
		status = -1;
	}
	if (job->started && job->fwz &&
	    firewalld_zone_set_port(job->fwz, 0, why, sizeof(why)) < 0) {
		fprintf(stderr, "teredo-observer: on exit: %s\n", why);
		status = -1;
	}
	return let_go(job, job->nft_keep_on_exit) ? -1 : status;
}
