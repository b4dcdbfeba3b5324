// SPDX-License-Identifier: MIT
/* The WFP face's snapshot: every type, in order, pointing into its own block. */
#include <criterion/criterion.h>
#include <stdint.h>

#include "fwpm_snapshot.h"

static void expect_types_in_order(const struct fwpm_snapshot *snap)
{
	cr_assert_eq(snap->ports.numTypes, FWPM_SYSTEM_PORT_TYPE_MAX);
	cr_assert_eq(snap->ports.types, snap->types, "the types live in the same block");
	for (int t = 0; t < FWPM_SYSTEM_PORT_TYPE_MAX; t++)
		cr_assert_eq(snap->types[t].type, (FWPM_SYSTEM_PORT_TYPE)t, "type %d in place", t);
}

Test(fwpm_snapshot, a_port_is_the_teredo_type_alone)
{
	struct fwpm_snapshot snap;

	fwpm_snapshot_fill(&snap, 51234);
	expect_types_in_order(&snap);
	cr_assert_eq(snap.types[FWPM_SYSTEM_PORT_TEREDO].numPorts, 1);
	cr_assert_eq(snap.types[FWPM_SYSTEM_PORT_TEREDO].ports, &snap.teredo_port);
	cr_assert_eq(snap.types[FWPM_SYSTEM_PORT_TEREDO].ports[0], 51234);
	for (int t = 0; t < FWPM_SYSTEM_PORT_TYPE_MAX; t++)
		if (t != FWPM_SYSTEM_PORT_TEREDO)
			cr_assert(snap.types[t].numPorts == 0 && !snap.types[t].ports,
				  "type %d: Linux has no such service", t);
}

Test(fwpm_snapshot, no_client_is_every_type_with_no_port)
{
	struct fwpm_snapshot snap;

	fwpm_snapshot_fill(&snap, 7);
	fwpm_snapshot_fill(&snap, 0);
	expect_types_in_order(&snap);
	for (int t = 0; t < FWPM_SYSTEM_PORT_TYPE_MAX; t++)
		cr_assert(snap.types[t].numPorts == 0 && !snap.types[t].ports, "type %d", t);
}

Test(fwpm_snapshot, the_header_is_the_block_so_one_free_frees_it)
{
	struct fwpm_snapshot snap;

	cr_assert_eq((void *)&snap.ports, (void *)&snap);
}
