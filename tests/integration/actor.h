/* SPDX-License-Identifier: MIT */
/* Drive a udp-actor process (tests/helpers/udp_actor.c) from a test. */
#ifndef TEREDO_TEST_ACTOR_H
#define TEREDO_TEST_ACTOR_H

#include <stdio.h>
#include <sys/types.h>

struct actor {
	pid_t pid;
	FILE *to;
	FILE *from;
};

/* Start an actor named comm, as root. */
struct actor *actor_start(const char *comm);
/*
 * Start the actor program exe (NULL: the one built) as user (NULL: root,
 * else through setpriv with that user's uid and gid and no groups), renamed
 * to comm unless comm is NULL (then its name is exe's).
 */
struct actor *actor_start_as(const char *exe, const char *comm, const char *user);
/* Send one command line; return the number in its answer ("port N", "pid N"), 0 for "ok". */
long actor_do(struct actor *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A new socket (socket_cmd: "socket4" or "socket6") bound to an ephemeral port: the port. */
long actor_new_bound(struct actor *a, const char *socket_cmd);
/* End it by its pid (SIGKILL) and reap it. NULL is ignored. */
void actor_kill(struct actor *a);
/* End it with the "exit" command and reap it. */
void actor_exit(struct actor *a);
/* SIGKILL a pid the actor reported (its child) and wait until it is gone. */
void kill_and_wait(pid_t pid);

#endif
