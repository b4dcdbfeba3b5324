// SPDX-License-Identifier: MIT
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

#include "grow.h"

int grow_array(void *items, size_t *cap, size_t need, size_t elem_size)
{
	void **array = items;
	size_t new_cap;
	void *grown;

	if (need <= *cap)
		return 0;
	for (new_cap = *cap ? *cap : 8; new_cap < need; new_cap *= 2)
		if (new_cap > SIZE_MAX / 2 / elem_size)
			return -ENOMEM;
	grown = realloc(*array, new_cap * elem_size);
	if (!grown)
		return -ENOMEM;
	*array = grown;
	*cap = new_cap;
	return 0;
}
