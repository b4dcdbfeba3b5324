/* SPDX-License-Identifier: MIT */
/*
 * What the kernel side needs, checked before loading so that a missing piece
 * is reported as one line naming it and the fix, not as a verifier dump.
 */
#ifndef TEREDO_REQUIREMENTS_H
#define TEREDO_REQUIREMENTS_H

/* 0, or a negative errno with teredo_observer_last_error() set. */
int check_privileges(void);
int check_kernel_features(void);

#endif
