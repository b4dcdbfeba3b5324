// SPDX-License-Identifier: MIT
/* The firewall job (firewall_job.h) over its backends: firewalld and nftables. */
#include <stdio.h>
#include <time.h>

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

int firewall_job_open(struct firewall_job *job, const struct teredo_observer *obs)
{
	char why[WHY_MAX];

	if (!job)
		return 0;
	if (open_nft(job, obs, why, sizeof(why)) < 0 ||
	    (job->zone && firewalld_zone_open(job->zone, &job->fwz, why, sizeof(why)) < 0)) {
		fprintf(stderr, "teredo-observer: %s\n", why);
		nft_set_free(job->nft);
		job->nft = NULL;
		nft_netns_close(job->nftns, true);
		job->nftns = NULL;
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

int firewall_job_fd(const struct firewall_job *job, short *events)
{
	return job && job->fwz ? firewalld_zone_fd(job->fwz, events) : -1;
}

void firewall_job_service(struct firewall_job *job)
{
	if (!has_backend(job) || !job->started)
		return;
	nft_netns_service(job->nftns);
	if (!job->nft && !job->fwz)
		return;
	/* Each try reads the bus again, and may bring more news: at most a few rounds. */
	for (int round = 0; round < 3; round++) {
		if (!firewalld_zone_process(job->fwz) && !job->pending)
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
	/* Each namespace's port was set at open already, started or not. */
	if (nft_netns_close(job->nftns, job->nft_keep_on_exit))
		status = -1;
	job->nftns = NULL;
	nft_set_free(job->nft);
	job->nft = NULL;
	firewalld_zone_free(job->fwz);
	job->fwz = NULL;
	return status;
}
