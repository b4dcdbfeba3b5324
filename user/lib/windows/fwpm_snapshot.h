/* SPDX-License-Identifier: MIT */
/* The system-ports snapshot of the WFP face: one block, pointing into itself. */
#ifndef TEREDO_FWPM_SNAPSHOT_H
#define TEREDO_FWPM_SNAPSHOT_H

#include <stdint.h>

#include "teredo_fwpmu.h"

/*
 * Everything FwpmSystemPortsGet0 returns and a callback is given, in one
 * block: the header first, so that the caller's FWPM_SYSTEM_PORTS0 * is the
 * block itself and FwpmFreeMemory0 frees it whole.
 */
struct fwpm_snapshot {
	FWPM_SYSTEM_PORTS0 ports;
	FWPM_SYSTEM_PORTS_BY_TYPE0 types[FWPM_SYSTEM_PORT_TYPE_MAX];
	UINT16 teredo_port;
};

/* Every type, in order; the Teredo type holds port, or nothing when port is 0. */
void fwpm_snapshot_fill(struct fwpm_snapshot *snap, uint16_t port);

#endif
