// SPDX-License-Identifier: MIT
#include <stdarg.h>
#include <stdio.h>

#include "last_error.h"
#include "teredo_observer.h"
#include "public.h"

static __thread char last_error[256];

int set_last_error(int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(last_error, sizeof(last_error), fmt, ap);
	va_end(ap);
	return err;
}

_public_ const char *teredo_observer_last_error(void)
{
	return last_error[0] ? last_error : "no error";
}
