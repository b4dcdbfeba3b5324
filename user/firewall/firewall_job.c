// SPDX-License-Identifier: MIT
/* The firewall job (firewall_job.h) over the firewalld backend. */
#include <stdio.h>
#include <time.h>

#include "firewall_job.h"
#include "firewalld.h"

#define WHY_MAX 512

int firewall_job_open(struct firewall_job *job)
{
	char why[WHY_MAX];

	if (!job || !job->zone)
		return 0;
	if (firewalld_zone_open(job->zone, &job->fwz, why, sizeof(why)) < 0) {
		fprintf(stderr, "teredo-observer: %s\n", why);
		return -1;
	}
	return 0;
}

/* One try of job->want; a failure is said when it starts, not on every retry. */
static int try_change(struct firewall_job *job)
{
	char why[WHY_MAX];
	bool was_pending = job->pending;

	job->pending = firewalld_zone_set_port(job->fwz, job->want, why, sizeof(why)) < 0;
	if (job->pending && (!was_pending || !job->started))
		fprintf(stderr, "teredo-observer: %s%s\n", why,
			job->started ? "; trying again every second" : "");
	else if (!job->pending && was_pending && job->started)
		fprintf(stderr, "teredo-observer: firewalld zone '%s' holds port %u again\n",
			job->zone, job->want);
	return job->pending ? -1 : 0;
}

int firewall_job_set(struct firewall_job *job, uint16_t port)
{
	if (!job || !job->fwz)
		return 0;
	job->want = port;
	if (try_change(job) < 0 && !job->started)
		return -1;
	job->started = true;
	firewall_job_service(job);
	return 0;
}

const struct timespec *firewall_job_retry_after(const struct firewall_job *job)
{
	static const struct timespec one_second = { .tv_sec = 1 };

	return job && job->pending ? &one_second : NULL;
}

int firewall_job_fd(const struct firewall_job *job, short *events)
{
	return job && job->fwz ? firewalld_zone_fd(job->fwz, events) : -1;
}

void firewall_job_service(struct firewall_job *job)
{
	if (!job || !job->fwz || !job->started)
		return;
	/* Each try reads the bus again, and may bring more news: at most a few rounds. */
	for (int round = 0; round < 3; round++) {
		if (!firewalld_zone_process(job->fwz) && !job->pending)
			return;
		if (try_change(job) < 0)
			return;
	}
}

int firewall_job_close(struct firewall_job *job)
{
	char why[WHY_MAX];
	int status = 0;

	if (!job || !job->fwz)
		return 0;
	if (job->started && firewalld_zone_set_port(job->fwz, 0, why, sizeof(why)) < 0) {
		fprintf(stderr, "teredo-observer: on exit: %s\n", why);
		status = -1;
	}
	firewalld_zone_free(job->fwz);
	job->fwz = NULL;
	return status;
}
