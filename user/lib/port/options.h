/* SPDX-License-Identifier: MIT */
/* Options as the library's entry points take them. */
#ifndef TEREDO_OPTIONS_H
#define TEREDO_OPTIONS_H

#include "teredo_observer.h"

/* The caller's options, or when it gave none, the defaults plus the environment. */
int resolve_options(const struct teredo_options *opts, struct teredo_options *out);

#endif
