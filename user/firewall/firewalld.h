/* SPDX-License-Identifier: MIT */
/*
 * The firewalld backend: the Teredo client's port, PORT/udp, open in one
 * zone of firewalld's runtime configuration (never the permanent one),
 * through firewalld's D-Bus API on the system bus (sd-bus; the bus is
 * $DBUS_SYSTEM_BUS_ADDRESS when set).
 *
 * Every change is one setZoneSettings2 call: firewalld removes the old port
 * and adds the new one while handling it, before it reads another request,
 * and removes before it adds (never both open; for the one nftables
 * transaction between the two, neither).
 *
 * Which ports are ours: those written in the state file
 * $RUNTIME_DIRECTORY/firewalld-ZONE.ports (default directory
 * /run/teredo-observer), before firewalld is asked to open them. A port
 * that was already open in the zone when the client took it is the
 * administrator's, never ours: it stays. The file is locked while we run
 * (one observer per zone), and after a crash the next start removes what it
 * lists. /run is emptied at boot, as firewalld's runtime configuration is.
 */
#ifndef TEREDO_FIREWALLD_H
#define TEREDO_FIREWALLD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* firewalld's limit: nftables' 28 characters of chain name less POST__allow. */
#define FIREWALLD_ZONE_NAME_MAX 17

struct firewalld_zone;

/* NULL when zone could be a firewalld zone's name, else what is wrong with it. */
const char *firewalld_zone_name_problem(const char *zone);

/*
 * Reach firewalld, check that it has the zone, take the zone's state file
 * and learn the ports an earlier run left open (removed by the first
 * firewalld_zone_set_port). 0 or a negative errno, with one line in why.
 */
int firewalld_zone_open(const char *zone, struct firewalld_zone **out, char *why, size_t len);

/*
 * Make port (0: none) the one port of ours open in the zone, closing every
 * other port of ours, in one call. 0 or a negative errno, with one line in
 * why; on failure, what was ours is still ours, so a later call can finish.
 */
int firewalld_zone_set_port(struct firewalld_zone *z, uint16_t port, char *why, size_t len);

/*
 * The bus' fd and the poll events it waits for, or -1 when it is closed.
 * When it is ready (and after each change), call firewalld_zone_process.
 */
int firewalld_zone_fd(const struct firewalld_zone *z, short *events);

/*
 * Handle what came on the bus. True when the zone must be set again:
 * firewalld reloaded or restarted (its runtime configuration, our port with
 * it, is gone), or the bus closed.
 */
bool firewalld_zone_process(struct firewalld_zone *z);

/* The port of ours now open in the zone (0: none). */
uint16_t firewalld_zone_port(const struct firewalld_zone *z);

/* Disconnect and unlock, leaving the zone as it is. NULL is ignored. */
void firewalld_zone_free(struct firewalld_zone *z);

#endif
