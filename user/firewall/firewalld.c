// SPDX-License-Identifier: MIT
/*
 * The firewalld backend (firewalld.h): org.fedoraproject.FirewallD1.zone's
 * getZoneSettings2 and setZoneSettings2 over sd-bus, and the state file that
 * says which ports are ours.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include "firewalld.h"

#define FIREWALLD_NAME "org.fedoraproject.FirewallD1"
#define FIREWALLD_PATH "/org/fedoraproject/FirewallD1"
#define FIREWALLD_ZONE_IFACE FIREWALLD_NAME ".zone"
/* A loaded firewalld takes tens of ms per change; a hung one must not hang us. */
#define FIREWALLD_CALL_TIMEOUT_USEC (5 * 1000 * 1000)
#define DEFAULT_STATE_DIR "/run/teredo-observer"

/*
 * The state file: one fixed-size record, STATE_SLOTS lines of five digits
 * ("00000" for an empty slot), written with one pwrite at offset 0. Always
 * the same length, so a write cut short by SIGKILL never leaves the tail of
 * an older, longer content to be read as ports.
 */
#define STATE_SLOTS 8
#define STATE_LINE 6 /* "NNNNN\n" */
#define STATE_SIZE (STATE_SLOTS * STATE_LINE)

struct zone_port {
	char *port;  /* as firewalld writes it: "3545" or a range "3000-3100" */
	char *proto; /* "udp", "tcp", "sctp", "dccp" */
};

struct zone_ports {
	struct zone_port *v;
	size_t n;
};

struct firewalld_zone {
	sd_bus *bus;
	char zone[FIREWALLD_ZONE_NAME_MAX + 1];
	int state_fd;
	uint16_t ours[STATE_SLOTS]; /* ports of ours that may be open, 0 for none */
	uint16_t current;	    /* the one we opened last, 0 when none */
	/* firewalld reloaded or restarted since we last changed the zone */
	bool lost;
};

const char *firewalld_zone_name_problem(const char *zone)
{
	size_t n = zone ? strlen(zone) : 0;

	if (n == 0)
		return "is empty";
	if (n > FIREWALLD_ZONE_NAME_MAX)
		return "is longer than firewalld's 17 characters";
	/* firewalld allows more, but only these make a safe state file name. */
	for (size_t i = 0; i < n; i++) {
		char c = zone[i];

		if (!(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') && !(c >= '0' && c <= '9') &&
		    c != '-' && c != '_')
			return "has a character other than letters, digits, '-' and '_'";
	}
	return NULL;
}

/* --- the zone's ports ---------------------------------------------------- */

static void zone_ports_clear(struct zone_ports *zp)
{
	for (size_t i = 0; i < zp->n; i++) {
		free(zp->v[i].port);
		free(zp->v[i].proto);
	}
	free(zp->v);
	zp->v = NULL;
	zp->n = 0;
}

static int zone_ports_add(struct zone_ports *zp, const char *port, const char *proto)
{
	struct zone_port *v = reallocarray(zp->v, zp->n + 1, sizeof(*v));

	if (!v)
		return -ENOMEM;
	zp->v = v;
	v[zp->n].port = strdup(port);
	v[zp->n].proto = strdup(proto);
	if (!v[zp->n].port || !v[zp->n].proto) {
		free(v[zp->n].port);
		free(v[zp->n].proto);
		return -ENOMEM;
	}
	zp->n++;
	return 0;
}

/* The port of an entry that is one UDP port ("3545", "udp"), else 0. */
static uint16_t single_udp_port(const struct zone_port *e)
{
	char *end;
	unsigned long port;

	if (strcmp(e->proto, "udp") || e->port[0] < '1' || e->port[0] > '9')
		return 0;
	port = strtoul(e->port, &end, 10);
	return *end || port > 65535 ? 0 : (uint16_t)port;
}

/*
 * Whether a UDP entry covers port. A range the administrator opens over a
 * port of ours takes it in (firewalld coalesces overlapping ranges): it is
 * theirs from then on.
 */
static bool zone_ports_covers(const struct zone_ports *zp, uint16_t port)
{
	for (size_t i = 0; port && i < zp->n; i++) {
		unsigned int lo, hi;
		int n;

		if (strcmp(zp->v[i].proto, "udp"))
			continue;
		n = sscanf(zp->v[i].port, "%u-%u", &lo, &hi);
		if ((n == 1 && lo == port) || (n == 2 && lo <= port && port <= hi))
			return true;
	}
	return false;
}

static void zone_ports_remove_at(struct zone_ports *zp, size_t i)
{
	free(zp->v[i].port);
	free(zp->v[i].proto);
	zp->v[i] = zp->v[--zp->n];
}

/* --- D-Bus ----------------------------------------------------------------- */

/* One line for a failed call: firewalld's own words where it has them. */
static int call_failed(const struct firewalld_zone *z, const char *method, const sd_bus_error *err,
		       int r, char *why, size_t len)
{
	const char *name = err && err->name ? err->name : "";
	const char *msg = err && err->message ? err->message : strerror(-r);

	if (!strcmp(name, SD_BUS_ERROR_SERVICE_UNKNOWN) ||
	    !strcmp(name, SD_BUS_ERROR_NAME_HAS_NO_OWNER))
		snprintf(why, len,
			 "firewalld is not running (no %s on the system bus): start it "
			 "(systemctl start firewalld), or drop --firewalld-zone",
			 FIREWALLD_NAME);
	else if (!strncmp(msg, "INVALID_ZONE", 12))
		snprintf(why, len,
			 "firewalld has no zone '%s': name one that `firewall-cmd --get-zones` "
			 "lists",
			 z->zone);
	else if (!strncmp(msg, "NOT_AUTHORIZED", 14) || !strcmp(name, SD_BUS_ERROR_ACCESS_DENIED))
		snprintf(why, len, "firewalld refused %s for zone '%s' (%s): run as root", method,
			 z->zone, msg);
	else
		snprintf(why, len, "firewalld: %s for zone '%s' failed: %s", method, z->zone, msg);
	return r < 0 ? r : -EIO;
}

/* The a(ss) of a "ports" entry, into zp. */
static int read_port_array(sd_bus_message *m, struct zone_ports *zp)
{
	const char *port, *proto;
	int r;

	r = sd_bus_message_enter_container(m, 'v', "a(ss)");
	if (r < 0)
		return r;
	r = sd_bus_message_enter_container(m, 'a', "(ss)");
	if (r < 0)
		return r;
	while ((r = sd_bus_message_read(m, "(ss)", &port, &proto)) > 0) {
		r = zone_ports_add(zp, port, proto);
		if (r < 0)
			return r;
	}
	if (r < 0)
		return r;
	r = sd_bus_message_exit_container(m);
	return r < 0 ? r : sd_bus_message_exit_container(m);
}

/* The zone's runtime settings, a{sv}: only "ports" is read (absent when none). */
static int read_ports(sd_bus_message *m, struct zone_ports *zp)
{
	const char *key;
	int r;

	r = sd_bus_message_enter_container(m, 'a', "{sv}");
	while (r >= 0 && (r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
		r = sd_bus_message_read(m, "s", &key);
		if (r >= 0)
			r = strcmp(key, "ports") ? sd_bus_message_skip(m, "v")
						 : read_port_array(m, zp);
		if (r >= 0)
			r = sd_bus_message_exit_container(m);
	}
	return r < 0 ? r : sd_bus_message_exit_container(m);
}

static int get_ports(struct firewalld_zone *z, struct zone_ports *zp, char *why, size_t len)
{
	sd_bus_error err = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	int r;

	r = sd_bus_call_method(z->bus, FIREWALLD_NAME, FIREWALLD_PATH, FIREWALLD_ZONE_IFACE,
			       "getZoneSettings2", &err, &reply, "s", z->zone);
	if (r < 0) {
		r = call_failed(z, "getZoneSettings2", &err, r, why, len);
	} else {
		r = read_ports(reply, zp);
		if (r < 0)
			snprintf(why, len, "firewalld: cannot read zone '%s''s settings: %s",
				 z->zone, strerror(-r));
	}
	sd_bus_error_free(&err);
	sd_bus_message_unref(reply);
	return r < 0 ? r : 0;
}

/* {"ports": a(ss)}: the one setting given, so firewalld leaves the others. */
static int append_ports(sd_bus_message *m, const struct zone_ports *zp)
{
	int r = sd_bus_message_open_container(m, 'a', "{sv}");

	if (r >= 0)
		r = sd_bus_message_open_container(m, 'e', "sv");
	if (r >= 0)
		r = sd_bus_message_append(m, "s", "ports");
	if (r >= 0)
		r = sd_bus_message_open_container(m, 'v', "a(ss)");
	if (r >= 0)
		r = sd_bus_message_open_container(m, 'a', "(ss)");
	for (size_t i = 0; r >= 0 && i < zp->n; i++)
		r = sd_bus_message_append(m, "(ss)", zp->v[i].port, zp->v[i].proto);
	for (int depth = 0; r >= 0 && depth < 4; depth++)
		r = sd_bus_message_close_container(m);
	return r;
}

/*
 * The one call of a change: firewalld diffs these ports against the zone's
 * runtime ones, removes what went and adds what came, all before it reads
 * the next request on the bus.
 */
static int set_ports(struct firewalld_zone *z, const struct zone_ports *zp, char *why, size_t len)
{
	sd_bus_error err = SD_BUS_ERROR_NULL;
	sd_bus_message *m = NULL;
	int r;

	r = sd_bus_message_new_method_call(z->bus, &m, FIREWALLD_NAME, FIREWALLD_PATH,
					   FIREWALLD_ZONE_IFACE, "setZoneSettings2");
	if (r >= 0)
		r = sd_bus_message_append(m, "s", z->zone);
	if (r >= 0)
		r = append_ports(m, zp);
	if (r < 0) {
		snprintf(why, len, "firewalld: cannot build setZoneSettings2: %s", strerror(-r));
	} else {
		r = sd_bus_call(z->bus, m, FIREWALLD_CALL_TIMEOUT_USEC, &err, NULL);
		if (r < 0)
			r = call_failed(z, "setZoneSettings2", &err, r, why, len);
	}
	sd_bus_error_free(&err);
	sd_bus_message_unref(m);
	return r < 0 ? r : 0;
}

/*
 * firewalld forgets its runtime configuration on a reload (Reloaded) and a
 * restart (its name gets a new owner): our port must be opened again.
 */
static int on_runtime_lost(sd_bus_message *m, void *userdata, sd_bus_error *err)
{
	struct firewalld_zone *z = userdata;

	(void)m;
	(void)err;
	z->lost = true;
	return 0;
}

/* The system bus, with the two signals that say our port is gone. */
static int connect_bus(struct firewalld_zone *z, char *why, size_t len)
{
	int r;

	z->bus = sd_bus_flush_close_unref(z->bus);
	r = sd_bus_open_system(&z->bus);
	if (r >= 0)
		r = sd_bus_match_signal(z->bus, NULL, FIREWALLD_NAME, FIREWALLD_PATH,
					FIREWALLD_NAME, "Reloaded", on_runtime_lost, z);
	if (r >= 0)
		r = sd_bus_add_match(z->bus, NULL,
				     "type='signal',sender='org.freedesktop.DBus',"
				     "interface='org.freedesktop.DBus',member='NameOwnerChanged',"
				     "arg0='" FIREWALLD_NAME "'",
				     on_runtime_lost, z);
	if (r < 0)
		snprintf(why, len, "cannot reach the system bus (%s) for firewalld: %s",
			 getenv("DBUS_SYSTEM_BUS_ADDRESS") ?: "/run/dbus/system_bus_socket",
			 strerror(-r));
	return r < 0 ? r : 0;
}

/* --- the state file -------------------------------------------------------- */

static int write_state(struct firewalld_zone *z, char *why, size_t len)
{
	char buf[STATE_SIZE + 1];
	ssize_t n;

	for (size_t i = 0; i < STATE_SLOTS; i++)
		snprintf(buf + i * STATE_LINE, STATE_LINE + 1, "%05u\n", z->ours[i]);
	n = pwrite(z->state_fd, buf, STATE_SIZE, 0);
	if (n == STATE_SIZE)
		return 0;
	snprintf(why, len, "cannot write the firewalld state file of zone '%s': %s", z->zone,
		 n < 0 ? strerror(errno) : "short write");
	return n < 0 ? -errno : -EIO;
}

/* The ports an earlier run wrote; anything but well-formed records is ignored. */
static void read_state(struct firewalld_zone *z)
{
	char buf[STATE_SIZE + 1];
	ssize_t n = pread(z->state_fd, buf, STATE_SIZE, 0);

	if (n != STATE_SIZE)
		return;
	buf[STATE_SIZE] = '\0';
	for (size_t i = 0; i < STATE_SLOTS; i++) {
		char *line = buf + i * STATE_LINE, *end;
		unsigned long port = strtoul(line, &end, 10);

		if (end == line + 5 && *end == '\n' && port <= 65535)
			z->ours[i] = (uint16_t)port;
	}
}

static int open_state(struct firewalld_zone *z, char *why, size_t len)
{
	const char *dir = getenv("RUNTIME_DIRECTORY"); /* systemd's RuntimeDirectory= */
	char path[4096];

	/* RuntimeDirectory= may list several, separated by ':': ours is the first. */
	if (!dir || !*dir)
		dir = DEFAULT_STATE_DIR;
	snprintf(path, sizeof(path), "%.*s/firewalld-%s.ports", (int)strcspn(dir, ":"), dir,
		 z->zone);
	if (!strcmp(dir, DEFAULT_STATE_DIR) && mkdir(dir, 0755) < 0 && errno != EEXIST) {
		snprintf(why, len, "cannot make %s: %s", dir, strerror(errno));
		return -errno;
	}
	z->state_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (z->state_fd < 0) {
		snprintf(why, len, "cannot open %s: %s", path, strerror(errno));
		return -errno;
	}
	if (flock(z->state_fd, LOCK_EX | LOCK_NB) < 0) {
		int err = errno;

		snprintf(why, len, "%s: %s", path,
			 err == EWOULDBLOCK
				 ? "another teredo-observer keeps this zone; one per zone"
				 : strerror(err));
		return -err;
	}
	read_state(z);
	return 0;
}

/* --- the backend ----------------------------------------------------------- */

int firewalld_zone_open(const char *zone, struct firewalld_zone **out, char *why, size_t len)
{
	struct zone_ports zp = { 0 };
	struct firewalld_zone *z;
	const char *problem = firewalld_zone_name_problem(zone);
	int r;

	*out = NULL;
	if (problem) {
		snprintf(why, len, "firewalld zone '%s' %s", zone ? zone : "", problem);
		return -EINVAL;
	}
	z = calloc(1, sizeof(*z));
	if (!z) {
		snprintf(why, len, "out of memory");
		return -ENOMEM;
	}
	z->state_fd = -1;
	snprintf(z->zone, sizeof(z->zone), "%s", zone);
	r = connect_bus(z, why, len);
	/* Before the state file: a wrong zone must not leave a file behind. */
	if (r >= 0)
		r = get_ports(z, &zp, why, len);
	if (r >= 0)
		r = open_state(z, why, len);
	zone_ports_clear(&zp);
	if (r < 0) {
		firewalld_zone_free(z);
		return r;
	}
	*out = z;
	return 0;
}

static bool is_ours(const struct firewalld_zone *z, uint16_t port)
{
	for (size_t i = 0; port && i < STATE_SLOTS; i++)
		if (z->ours[i] == port)
			return true;
	return false;
}

/* Claim port in a free slot; -ENOSPC when every slot holds one. */
static int claim(struct firewalld_zone *z, uint16_t port)
{
	if (is_ours(z, port))
		return 0; /* claimed by a try that failed */
	for (size_t i = 0; i < STATE_SLOTS; i++) {
		if (!z->ours[i]) {
			z->ours[i] = port;
			return 0;
		}
	}
	return -ENOSPC;
}

/* Ours from now on: port alone (0: none). */
static void keep_only(struct firewalld_zone *z, uint16_t port)
{
	memset(z->ours, 0, sizeof(z->ours));
	z->ours[0] = port;
}

/* A change of the zone: what goes, what comes. */
struct zone_change {
	size_t n_removed;
	uint16_t removed; /* the last of them */
	bool claiming;	  /* port is new to the zone, so ours */
};

/*
 * What the zone should hold: zp less every port of ours but port, plus port
 * if it is not there yet.
 */
static int wanted_ports(struct firewalld_zone *z, struct zone_ports *zp, uint16_t port,
			struct zone_change *change)
{
	char text[8];

	for (size_t i = 0; i < zp->n;) {
		uint16_t p = single_udp_port(&zp->v[i]);

		if (p != port && is_ours(z, p)) {
			zone_ports_remove_at(zp, i);
			change->n_removed++;
			change->removed = p;
		} else {
			i++;
		}
	}
	change->claiming = port && !zone_ports_covers(zp, port);
	if (!change->claiming)
		return 0;
	snprintf(text, sizeof(text), "%u", port);
	return zone_ports_add(zp, text, "udp");
}

/* addPort or removePort of one port/udp (runtime: timeout 0, no expiry). */
static int call_port(struct firewalld_zone *z, const char *method, uint16_t port, char *why,
		     size_t len)
{
	sd_bus_error err = SD_BUS_ERROR_NULL;
	char text[8];
	int r;

	snprintf(text, sizeof(text), "%u", port);
	if (!strcmp(method, "addPort"))
		r = sd_bus_call_method(z->bus, FIREWALLD_NAME, FIREWALLD_PATH, FIREWALLD_ZONE_IFACE,
				       method, &err, NULL, "sssi", z->zone, text, "udp", 0);
	else
		r = sd_bus_call_method(z->bus, FIREWALLD_NAME, FIREWALLD_PATH, FIREWALLD_ZONE_IFACE,
				       method, &err, NULL, "sss", z->zone, text, "udp");
	/* Someone changed the port between our read and this call: -EEXIST, -ENOENT. */
	if (r < 0 && err.message && !strncmp(err.message, "ALREADY_ENABLED", 15))
		r = -EEXIST;
	else if (r < 0 && err.message && !strncmp(err.message, "NOT_ENABLED", 11))
		r = -ENOENT;
	else if (r < 0)
		r = call_failed(z, method, &err, r, why, len);
	sd_bus_error_free(&err);
	return r < 0 ? r : 0;
}

/*
 * One call, the cheapest that is one step: a port only coming is addPort,
 * one only going removePort (each one nftables transaction, about half the
 * time of setZoneSettings2, BENCHMARKS.md); a change, or several going,
 * setZoneSettings2 with the whole list. Nothing to do, no call.
 */
static int apply_change(struct firewalld_zone *z, const struct zone_ports *zp,
			struct zone_change *change, uint16_t port, char *why, size_t len)
{
	int r;

	if (!change->n_removed && change->claiming) {
		r = call_port(z, "addPort", port, why, len);
		/* An administrator opened it since our read: theirs, not ours. */
		if (r == -EEXIST)
			change->claiming = false;
		return r == -EEXIST ? 0 : r;
	}
	if (change->n_removed == 1 && !change->claiming) {
		r = call_port(z, "removePort", change->removed, why, len);
		return r == -ENOENT ? 0 : r; /* already closed by someone else */
	}
	return change->n_removed || change->claiming ? set_ports(z, zp, why, len) : 0;
}

/*
 * Read the zone and work out the change. A port of ours now inside a range
 * is not removed (that would punch a hole in the administrator's range):
 * the change drops it from ours.
 */
static int plan_change(struct firewalld_zone *z, struct zone_ports *zp, uint16_t port,
		       struct zone_change *change, char *why, size_t len)
{
	int r = get_ports(z, zp, why, len);

	if (r < 0)
		return r;
	if (wanted_ports(z, zp, port, change) < 0) {
		snprintf(why, len, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

/* Written down before it is opened: a crash in between still knows it. */
static int record_claim(struct firewalld_zone *z, uint16_t port, char *why, size_t len)
{
	if (claim(z, port) < 0) {
		snprintf(why, len, "too many ports of ours in zone '%s'", z->zone);
		return -ENOSPC;
	}
	return write_state(z, why, len);
}

int firewalld_zone_set_port(struct firewalld_zone *z, uint16_t port, char *why, size_t len)
{
	struct zone_ports zp = { 0 };
	struct zone_change change = { 0 };
	bool was_ours;
	int r;

	if (!z) {
		snprintf(why, len, "no firewalld zone");
		return -EINVAL;
	}
	/* A bus that went away (dbus-daemon restarted) is opened again. */
	if (sd_bus_is_open(z->bus) <= 0) {
		r = connect_bus(z, why, len);
		if (r < 0)
			goto out;
	}
	z->lost = false;
	r = plan_change(z, &zp, port, &change, why, len);
	if (r < 0)
		goto out;
	was_ours = is_ours(z, port);
	if (change.claiming) {
		r = record_claim(z, port, why, len);
		if (r < 0)
			goto out;
	}
	r = apply_change(z, &zp, &change, port, why, len);
	if (r < 0)
		goto out;
	/* An administrator's port the client took stays theirs. */
	keep_only(z, change.claiming || was_ours ? port : 0);
	z->current = z->ours[0];
	r = write_state(z, why, len);
out:
	zone_ports_clear(&zp);
	return r;
}

int firewalld_zone_fd(const struct firewalld_zone *z, short *events)
{
	int fd, ev;

	if (!z || sd_bus_is_open(z->bus) <= 0)
		return -1;
	fd = sd_bus_get_fd(z->bus);
	ev = sd_bus_get_events(z->bus);
	*events = ev < 0 ? POLLIN : (short)ev;
	return fd;
}

bool firewalld_zone_process(struct firewalld_zone *z)
{
	int r;

	if (!z)
		return false; /* no firewalld: nothing can have come */
	/* Signals read during a call wait in sd-bus' queue: dispatch them all. */
	do
		r = sd_bus_process(z->bus, NULL);
	while (r > 0);
	/* A closed bus: the next change connects again. */
	return z->lost || r < 0;
}

uint16_t firewalld_zone_port(const struct firewalld_zone *z)
{
	return z ? z->current : 0;
}

void firewalld_zone_free(struct firewalld_zone *z)
{
	if (!z)
		return;
	sd_bus_flush_close_unref(z->bus);
	if (z->state_fd >= 0)
		close(z->state_fd);
	free(z);
}
