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
};

/*
 * Watch with opts and serve until *stop is set (signals unblocked only in
 * the wait, as wait_mask says). The exit status of the command.
 */
int serve_run(const struct teredo_options *opts, const struct serve_config *cfg,
	      volatile sig_atomic_t *stop, const sigset_t *wait_mask);

#endif
