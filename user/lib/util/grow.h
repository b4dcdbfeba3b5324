/* SPDX-License-Identifier: MIT */
/* Growing arrays, the one way this library does it. */
#ifndef TEREDO_GROW_H
#define TEREDO_GROW_H

#include <stddef.h>

/*
 * Make *items (of *cap elements of elem_size bytes) hold at least need
 * elements, doubling. 0, or -ENOMEM with *items untouched.
 */
int grow_array(void *items, size_t *cap, size_t need, size_t elem_size);

#endif
