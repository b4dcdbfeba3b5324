/* SPDX-License-Identifier: MIT */
/*
 * Where the address view comes from: rtnetlink through libmnl, in the
 * caller's network namespace. No privileges needed. A dump of the links and
 * the addresses, and with watch the link and address groups, joined before
 * the dump so that nothing falls between the two.
 */
#ifndef TEREDO_ADDRESS_SOURCE_H
#define TEREDO_ADDRESS_SOURCE_H

#include <stdbool.h>
#include <stdint.h>

#include "address_view.h"

struct mnl_socket;

struct address_source {
	struct mnl_socket *nl;
	unsigned int portid;
	uint32_t seq;
	bool lost; /* the kernel dropped messages (ENOBUFS): dump again */
	uint64_t received_ns;
	char *buf;
	struct address_view view;
};

/* Open, join the groups when watch, and dump. 0 or a negative errno with last_error set. */
int address_source_open(struct address_source *src, bool watch, const char *teredo_name);

/* The socket to poll for changes (watch only). */
int address_source_fd(const struct address_source *src);

/*
 * Take in one batch of changes (the fd was readable), then dump again: the
 * view is then the kernel's state. 0 or a negative errno with last_error set.
 */
int address_source_read(struct address_source *src);

/* Close and free; a zeroed or closed source is fine. */
void address_source_close(struct address_source *src);

#endif
