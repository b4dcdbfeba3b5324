// SPDX-License-Identifier: MIT
/* The library's libbpf print callback, chained to the host's (libbpf_print.h). */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>

#include <bpf/libbpf.h>

#include "libbpf_print.h"

static libbpf_print_fn_t host_print;
static pthread_once_t installed = PTHREAD_ONCE_INIT;
/* Nesting depth of the library's own libbpf calls on this thread, and their flag. */
static __thread unsigned int own_calls;
static __thread bool own_verbose;

static int print_libbpf(enum libbpf_print_level level, const char *fmt, va_list args)
{
	/* Our failures are reported in one line of our own; libbpf's dump only on request. */
	if (own_calls)
		return own_verbose ? vfprintf(stderr, fmt, args) : 0;
	return host_print ? host_print(level, fmt, args) : 0;
}

static void install(void)
{
	/* What libbpf returns is the callback before ours: libbpf's own by default. */
	host_print = libbpf_set_print(print_libbpf);
}

void libbpf_print_enter(bool verbose)
{
	pthread_once(&installed, install);
	own_calls++;
	own_verbose = verbose;
}

void libbpf_print_leave(void)
{
	if (own_calls)
		own_calls--;
}
