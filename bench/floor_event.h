/* SPDX-License-Identifier: MIT */
/* The record bench/floor.bpf.c writes into its ring buffer, and the consumer reads. */
#ifndef TBENCH_FLOOR_EVENT_H
#define TBENCH_FLOOR_EVENT_H

#include <linux/types.h>

struct floor_event {
	__u64 ktime_ns;
	__u32 pid;
	__u16 port;
	__u16 spare;
};

#endif
