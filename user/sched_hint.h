/* SPDX-License-Identifier: MIT */
/*
 * Ask the scheduler for a short slice for the calling thread, so that when an
 * event wakes it while CPU-bound work fills the cores it runs within about
 * 0.1 ms instead of after the running task's whole slice (BENCHMARKS.md, the
 * storm). EEVDF (Linux 6.12+) honours it without privilege; older kernels
 * ignore it for normal threads. Best effort: failure changes nothing.
 */
#ifndef TEREDO_SCHED_HINT_H
#define TEREDO_SCHED_HINT_H

void ask_short_slice(void);

#endif
