// SPDX-License-Identifier: MIT
/* teredo_ask_short_slice (teredo_observer_private.h): a short slice for the calling thread. */
#define _GNU_SOURCE
#include <stdint.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "teredo_observer_private.h"

/* Not in glibc 2.36: the kernel's struct sched_attr (include/uapi/linux/sched/types.h). */
struct sched_attr_v1 {
	uint32_t size;
	uint32_t sched_policy;
	uint64_t sched_flags;
	int32_t sched_nice;
	uint32_t sched_priority;
	uint64_t sched_runtime;
	uint64_t sched_deadline;
	uint64_t sched_period;
};

#define SHORT_SLICE_NS 100000

void teredo_ask_short_slice(void)
{
	struct sched_attr_v1 attr = { 0 };

	/* Keep the policy and nice value the thread has; change only the slice. */
	if (syscall(SYS_sched_getattr, 0, &attr, sizeof(attr), 0))
		return;
	if (attr.sched_policy != 0 /* SCHED_OTHER */)
		return;
	attr.size = sizeof(attr);
	attr.sched_runtime = SHORT_SLICE_NS;
	(void)syscall(SYS_sched_setattr, 0, &attr, 0);
}
