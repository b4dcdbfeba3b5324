/* SPDX-License-Identifier: MIT */
/*
 * The sd_notify(3) protocol without libsystemd: one datagram to the unix
 * socket systemd names in $NOTIFY_SOCKET, for Type=notify services.
 */
#ifndef TEREDO_SD_NOTIFY_H
#define TEREDO_SD_NOTIFY_H

/*
 * Send state (e.g. "READY=1", newline-separated assignments) to systemd.
 * 0 when sent or when not started by systemd ($NOTIFY_SOCKET unset), else a
 * negative errno.
 */
int sd_notify_send(const char *state);

#endif
