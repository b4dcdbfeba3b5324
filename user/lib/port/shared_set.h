/* SPDX-License-Identifier: MIT */
/*
 * Root consumers of one host share one attached copy of the programs
 * (issue 20 item 3): the first loads and attaches it; a later one with the
 * same selection and the same build finds it through the kernel's link ids,
 * holds fds of those very links and reuses its maps, and puts its own ring
 * buffer in a free slot. The kernel counts the holders: the set stays
 * attached while one lives and goes with the last, SIGKILL included, with
 * nothing pinned and nothing to clean up.
 */
#ifndef TEREDO_SHARED_SET_H
#define TEREDO_SHARED_SET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>

#include "teredo_event.h"
#include "teredo_observer.bpf.skel.h"

/* Serialises find-or-create between the root consumers of the host. */
#define SHARED_LOCK_PATH "/run/teredo-observer-share.lock"
#define SHARED_MAX_LINKS 16

/* Fds of another consumer's links, which keep its set attached while held. */
struct shared_set {
	int link_fds[SHARED_MAX_LINKS];
	size_t n_links;
};

/*
 * The host's join lock, taken: its fd, or a negative errno with a message
 * (-ETIMEDOUT when another process held it for seconds).
 */
int shared_lock(void);
void shared_unlock(int fd);

/*
 * The set attached at cgroup_fd whose programs are skel's and whose
 * .rodata is byte-equal to skel's (the selection and the build, set before
 * this): its links held in *set, and every map of skel but .rodata made to
 * reuse the set's (before load). 0, -ENOENT for none, -ENOSPC when every
 * such set's slots are held, else a negative errno with a message.
 */
int shared_set_find(struct teredo_observer_bpf *skel, int cgroup_fd, struct shared_set *set);
void shared_set_release(struct shared_set *set);

/*
 * A slot of the set's rings, held: the index, and the fd of this
 * process's proof that it lives (-1: none; the pid alone then tells).
 * The proof goes with the last fd of it: a child forked with it keeps it
 * until the child frees its copy, exits or execs (so where the pid can be
 * checked, the pid says too).
 */
struct shared_slot {
	uint32_t index;
	int proof_fd;
	pid_t claimer; /* only the process that claimed it gives it back */
};

/*
 * A slot for this process's ring in the set's owners (the loaded .bss):
 * a free one, or one whose owner is gone. 0, or -ENOSPC when all are held.
 */
int shared_claim_slot(struct teredo_observer_bpf__bss *bss, struct shared_slot *slot);
/* By its claimer, the slot given back; in a child, only the child's copy closed. */
void shared_free_slot(struct teredo_observer_bpf__bss *bss, struct shared_slot *slot);

/* Whether this process claimed the slot: only the claimer gives it, and its ring, back. */
static inline bool shared_slot_is_mine(const struct shared_slot *slot)
{
	return slot->claimer == getpid();
}

#endif
