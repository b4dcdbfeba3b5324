/* SPDX-License-Identifier: MIT */
/* The library's own threads. */
#ifndef TEREDO_THREAD_H
#define TEREDO_THREAD_H

#include <pthread.h>
#include <stdbool.h>

/*
 * Start fn(arg) on a thread of the library's (joinable into *thread, or
 * detached when thread is NULL) with every signal blocked, so that the host
 * program's signals are delivered to its own threads, never run its handlers
 * on ours, and never interrupt us. 0 or a positive errno, as pthread_create.
 */
int library_thread_start(pthread_t *thread, void *(*fn)(void *), void *arg);

#endif
