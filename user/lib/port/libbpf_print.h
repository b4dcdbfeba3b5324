/* SPDX-License-Identifier: MIT */
/*
 * libbpf's print callback is one per process, and the host program may have
 * set its own. The library installs its callback once and chains: messages
 * from the library's own libbpf calls (between enter and leave, on that
 * thread) follow the selection's verbose flag; every other message goes to
 * the callback that was there before (the host's, or libbpf's default).
 */
#ifndef TEREDO_LIBBPF_PRINT_H
#define TEREDO_LIBBPF_PRINT_H

#include <stdbool.h>

/* This thread starts calling libbpf for the library; verbose: to stderr. */
void libbpf_print_enter(bool verbose);
/* ... and is done: its libbpf messages are the host's again. */
void libbpf_print_leave(void);

#endif
