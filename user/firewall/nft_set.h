/* SPDX-License-Identifier: MIT */
/*
 * The nftables backend: a set of type inet_service holding exactly the
 * Teredo client's port, through libnftables (the library nft itself uses;
 * no process forked). Every change is one buffer of commands, "flush set;
 * add element", which nftables applies as one transaction: never both
 * ports, never neither during a change. Reconciling at start is the same
 * flush: whatever an earlier run left is gone with the first change.
 */
#ifndef TEREDO_NFT_SET_H
#define TEREDO_NFT_SET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct nft_set;

/*
 * spec: family, table and set, as nft writes them ("inet teredo teredo_port").
 * NULL when it reads as one, else what is wrong with it.
 */
const char *nft_set_spec_problem(const char *spec);

/* Check that the set exists with type inet_service. 0 or -errno, one line in why. */
int nft_set_open(const char *spec, struct nft_set **out, char *why, size_t len);

/*
 * The same for the set in another network namespace, netns_fd (taken:
 * closed with the set, or at once on failure); every command to it runs
 * there (setns(2) on the calling thread, and back), so the calling thread
 * must be one whose namespace nothing else relies on meanwhile.
 */
int nft_set_open_in(const char *spec, int netns_fd, struct nft_set **out, char *why, size_t len);

/* The set holds port alone (0: nothing), in one transaction. 0 or -errno, one line in why. */
int nft_set_set_port(struct nft_set *s, uint16_t port, char *why, size_t len);

/*
 * An fd that polls readable when a transaction was committed in the set's
 * namespace (by anyone: a ruleset reloaded with "flush ruleset" makes the
 * set anew, empty); -1 for NULL.
 */
int nft_set_watch_fd(const struct nft_set *s);

/* Read what came on the watch fd: whether anything did (a change to look at). */
bool nft_set_ruleset_changed(struct nft_set *s);

/* 1 when the set holds port alone (0: nothing), 0 when not, -errno when it cannot be read. */
int nft_set_holds_only(struct nft_set *s, uint16_t port);

/*
 * After the watch fd woke: read what came and, when something did and the
 * set no longer holds port alone (0: nothing), say so on stderr (who: ""
 * or what the set belongs to, "network namespace N: ") and return true: the
 * caller sets it again. Someone else's transaction, above all a ruleset
 * loaded again ("flush ruleset" makes the set anew, empty), or ours: the set
 * is read after every one, cheaper than telling them apart. NULL: false.
 */
bool nft_set_lost_port(struct nft_set *s, uint16_t port, const char *who);

/* Whether the set held anything when it was opened (an empty one needs no flush). */
bool nft_set_had_elements(const struct nft_set *s);

/* NULL is ignored. */
void nft_set_free(struct nft_set *s);

#endif
