/* SPDX-License-Identifier: MIT */
/*
 * _public_: what the library exports. The library's objects are compiled
 * with -fvisibility=hidden (lib.mk), so a function is part of the ABI only
 * where its definition says _public_, and every such function is declared
 * in include/ (tests/abi/run checks both the .so and the installed .a).
 */
#ifndef TEREDO_PUBLIC_H
#define TEREDO_PUBLIC_H

#define _public_ __attribute__((visibility("default")))

#endif
