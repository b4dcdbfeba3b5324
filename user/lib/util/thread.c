// SPDX-License-Identifier: MIT
/* The library's own threads, with every signal blocked (thread.h). */
#include <signal.h>

#include "thread.h"

int library_thread_start(pthread_t *thread, void *(*fn)(void *), void *arg)
{
	pthread_attr_t attr;
	sigset_t all, caller;
	pthread_t detached;
	int err;

	err = pthread_attr_init(&attr);
	if (err)
		return err;
	if (!thread)
		err = pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	/* A new thread starts with its creator's mask: block all for it, then restore ours. */
	sigfillset(&all);
	if (!err)
		err = pthread_sigmask(SIG_SETMASK, &all, &caller);
	if (!err) {
		err = pthread_create(thread ? thread : &detached, &attr, fn, arg);
		pthread_sigmask(SIG_SETMASK, &caller, NULL);
	}
	pthread_attr_destroy(&attr);
	return err;
}
