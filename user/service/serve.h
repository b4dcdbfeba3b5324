/* SPDX-License-Identifier: MIT */
/* teredo-observer serve: the host's one observer, serving others over Varlink. */
#ifndef TEREDO_SERVE_H
#define TEREDO_SERVE_H

#include <signal.h>

#include "teredo_observer.h"

#define SERVE_DEFAULT_MAX_PER_USER 64

struct serve_config {
	const char *socket_path;
	unsigned int max_per_user; /* connections one uid may hold open */
	/*
	 * Tells the service manager the state ("READY=1", "STATUS=..."): the
	 * command passes sd_notify. 0 or a negative errno; NULL tells no one.
	 */
	int (*notify)(const char *state);
	/* --firewalld-zone: the port kept open in this firewalld zone; NULL: none. */
	const char *firewalld_zone;
	/* --nft-set: this nftables set holds the port; --nft-keep-on-exit. */
	const char *nft_set;
	bool nft_keep_on_exit;
};

/* The socket when none is given: $TEREDO_OBSERVER_SOCKET, or the default. */
const char *serve_socket_path(void);
/* The default socket, in the shipped unit's RuntimeDirectory. */
const char *serve_default_socket_path(void);

/*
 * Watch with sel and serve until *stop is set (signals unblocked only in
 * the wait, as wait_mask says), keeping the firewall too when asked. The
 * exit status of the command: 2 when the firewall cannot be kept at start.
 */
int serve_run(const struct teredo_selection *sel, const struct serve_config *cfg,
	      volatile sig_atomic_t *stop, const sigset_t *wait_mask);

#endif
