// SPDX-License-Identifier: MIT
#include <stdbool.h>

#include "fwpm_snapshot.h"

/*
 * Every type is present, as Windows lists them; only Teredo can have a port
 * on Linux, which has no RPC endpoint mapper and no IP-HTTPS service.
 */
void fwpm_snapshot_fill(struct fwpm_snapshot *snap, uint16_t port)
{
	snap->teredo_port = port;
	for (int t = 0; t < FWPM_SYSTEM_PORT_TYPE_MAX; t++) {
		bool teredo = t == FWPM_SYSTEM_PORT_TEREDO && port;

		snap->types[t] = (FWPM_SYSTEM_PORTS_BY_TYPE0){
			.type = (FWPM_SYSTEM_PORT_TYPE)t,
			.numPorts = teredo ? 1 : 0,
			.ports = teredo ? &snap->teredo_port : NULL,
		};
	}
	snap->ports =
		(FWPM_SYSTEM_PORTS0){ .numTypes = FWPM_SYSTEM_PORT_TYPE_MAX, .types = snap->types };
}
