// SPDX-License-Identifier: MIT
/* The nftables backend (nft_set.h) over libnftables. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <libmnl/libmnl.h>
#include <linux/netfilter/nfnetlink.h>
#include <nftables/libnftables.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nft_set.h"

#define NAME_MAX_ 64

struct nft_set {
	struct nft_ctx *ctx;
	char family[16], table[NAME_MAX_ + 1], set[NAME_MAX_ + 1];
	int netns_fd, home_fd;	  /* another namespace's set, and ours to come back to; -1: ours */
	bool had_elements;	  /* when opened */
	struct mnl_socket *watch; /* nftables' news in the set's namespace (nft_set_watch_fd) */
};

/*
 * Into the set's namespace for one call into libnftables (its netlink socket
 * is made and used there), and straight back. The thread only: the
 * library's threads and the rest of the process stay where they are.
 */
static int enter(const struct nft_set *s)
{
	return s->netns_fd < 0 || !setns(s->netns_fd, CLONE_NEWNET) ? 0 : -errno;
}

static void leave(const struct nft_set *s)
{
	if (s->netns_fd < 0 || !setns(s->home_fd, CLONE_NEWNET))
		return;
	/* Going on in another namespace would do everything after this there. */
	fprintf(stderr, "teredo-observer: cannot return to our own network namespace: %s\n",
		strerror(errno));
	_exit(1);
}

/* nft_run_cmd_from_buffer in the set's namespace. */
static int run_cmd(struct nft_set *s, const char *cmds)
{
	int r = enter(s);

	if (r)
		return r;
	r = nft_run_cmd_from_buffer(s->ctx, cmds);
	leave(s);
	return r;
}

static bool is_family(const char *f)
{
	static const char *const families[] = { "inet", "ip", "ip6", "bridge", "netdev", "arp" };

	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++)
		if (!strcmp(f, families[i]))
			return true;
	return false;
}

/* nft's identifiers: a letter, then letters, digits, '_', '.', '-' (nothing nft would parse). */
static bool is_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > NAME_MAX_ ||
	    !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z')))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];

		if (!(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') && !(c >= '0' && c <= '9') &&
		    c != '_' && c != '.' && c != '-')
			return false;
	}
	return true;
}

/* The three words of spec into s; false when they are not three good ones. */
static bool parse_spec(const char *spec, struct nft_set *s)
{
	char extra[2];

	if (!spec || strlen(spec) > 3 * NAME_MAX_)
		return false;
	if (sscanf(spec, "%15s %64s %64s %1s", s->family, s->table, s->set, extra) != 3)
		return false;
	return is_family(s->family) && is_name(s->table) && is_name(s->set);
}

const char *nft_set_spec_problem(const char *spec)
{
	struct nft_set s;

	if (parse_spec(spec, &s))
		return NULL;
	return "is not FAMILY TABLE SET (e.g. 'inet teredo teredo_port'; names of letters, digits, "
	       "'_', '.', '-')";
}

/* One buffer of commands, one transaction. On failure nft's first error line goes in why. */
static int run(struct nft_set *s, const char *cmds, char *why, size_t len)
{
	const char *err;

	if (run_cmd(s, cmds) == 0)
		return 0;
	err = nft_ctx_get_error_buffer(s->ctx);
	snprintf(why, len, "nftables set '%s %s %s': %.*s", s->family, s->table, s->set,
		 err ? (int)strcspn(err, "\n") : 0, err ? err : "");
	return -EIO;
}

static int check_set(struct nft_set *s, char *why, size_t len)
{
	char cmd[256];
	const char *out;

	snprintf(cmd, sizeof(cmd), "list set %s %s %s", s->family, s->table, s->set);
	if (run_cmd(s, cmd)) {
		snprintf(why, len,
			 "nftables set '%s %s %s' cannot be read (no such set or table, or no "
			 "permission): create it (nft -f a table including "
			 "/usr/share/teredo-observer/teredo.nft, as its header shows) and run as "
			 "root",
			 s->family, s->table, s->set);
		return -ENOENT;
	}
	out = nft_ctx_get_output_buffer(s->ctx);
	s->had_elements = out && strstr(out, "elements = {");
	if (!out || !strstr(out, "type inet_service")) {
		snprintf(why, len,
			 "nftables set '%s %s %s' is not of type inet_service: make it "
			 "'type inet_service' to hold a port",
			 s->family, s->table, s->set);
		return -EINVAL;
	}
	return 0;
}

/* A context whose netlink socket is in the set's namespace. */
static int new_ctx(struct nft_set *s)
{
	if (enter(s))
		return -1;
	s->ctx = nft_ctx_new(NFT_CTX_DEFAULT);
	leave(s);
	return s->ctx && !nft_ctx_buffer_output(s->ctx) && !nft_ctx_buffer_error(s->ctx) ? 0 : -1;
}

/*
 * Every transaction committed in the namespace, by anyone, is told to the
 * members of NFNLGRP_NFTABLES: what nft monitor listens to. A socket's
 * namespace is the one it was made in, hence enter() around it.
 */
static int open_watch(struct nft_set *s, char *why, size_t len)
{
	int err = enter(s);

	if (!err) {
		s->watch = mnl_socket_open2(NETLINK_NETFILTER, SOCK_NONBLOCK | SOCK_CLOEXEC);
		err = s->watch ? 0 : -errno;
		leave(s);
	}
	if (!err && mnl_socket_bind(s->watch, 1 << (NFNLGRP_NFTABLES - 1), MNL_SOCKET_AUTOPID) < 0)
		err = -errno;
	if (err)
		snprintf(
			why, len,
			"cannot listen to nftables' changes (to set the port again after a ruleset "
			"reload): %s; run as root (CAP_NET_ADMIN)",
			strerror(-err));
	return err;
}

int nft_set_open_in(const char *spec, int netns_fd, struct nft_set **out, char *why, size_t len)
{
	struct nft_set *s = calloc(1, sizeof(*s));
	int r;

	*out = NULL;
	if (!s) {
		if (netns_fd >= 0)
			close(netns_fd);
		snprintf(why, len, "out of memory");
		return -ENOMEM;
	}
	s->netns_fd = netns_fd;
	s->home_fd = netns_fd < 0 ? -1 : open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
	if (!parse_spec(spec, s)) {
		snprintf(why, len, "--nft-set '%.64s' %s", spec ? spec : "",
			 nft_set_spec_problem(spec));
		nft_set_free(s);
		return -EINVAL;
	}
	if ((netns_fd >= 0 && s->home_fd < 0) || new_ctx(s)) {
		snprintf(why, len, "cannot start libnftables%s",
			 netns_fd >= 0 ? " in that network namespace" : "");
		nft_set_free(s);
		return -ENOMEM;
	}
	r = check_set(s, why, len);
	if (r == 0)
		r = open_watch(s, why, len);
	if (r < 0) {
		nft_set_free(s);
		return r;
	}
	*out = s;
	return 0;
}

int nft_set_open(const char *spec, struct nft_set **out, char *why, size_t len)
{
	return nft_set_open_in(spec, -1, out, why, len);
}

int nft_set_set_port(struct nft_set *s, uint16_t port, char *why, size_t len)
{
	char cmds[512];
	int n;

	if (!s) {
		snprintf(why, len, "no nftables set");
		return -EINVAL;
	}
	n = snprintf(cmds, sizeof(cmds), "flush set %s %s %s\n", s->family, s->table, s->set);
	if (port)
		snprintf(cmds + n, sizeof(cmds) - (size_t)n, "add element %s %s %s { %u }\n",
			 s->family, s->table, s->set, port);
	return run(s, cmds, why, len);
}

int nft_set_watch_fd(const struct nft_set *s)
{
	return s && s->watch ? mnl_socket_get_fd(s->watch) : -1;
}

bool nft_set_ruleset_changed(struct nft_set *s)
{
	char buf[MNL_SOCKET_BUFFER_SIZE];
	bool changed = false;
	ssize_t n;

	if (!s || !s->watch)
		return false;
	/* What changed does not matter: the set is read again, whoever changed what. */
	while ((n = mnl_socket_recvfrom(s->watch, buf, sizeof(buf))) != 0) {
		if (n < 0 && errno != ENOBUFS) /* ENOBUFS: so much came that some was dropped */
			break;
		changed = true;
	}
	return changed;
}

int nft_set_holds_only(struct nft_set *s, uint16_t port)
{
	char cmd[256], want[32];
	const char *out;

	snprintf(cmd, sizeof(cmd), "list set %s %s %s", s->family, s->table, s->set);
	if (run_cmd(s, cmd))
		return -ENOENT;
	out = nft_ctx_get_output_buffer(s->ctx);
	if (!out)
		return -EIO;
	if (!port)
		return !strstr(out, "elements = {");
	/* nft lists the elements of an inet_service set as numbers, comma-separated. */
	snprintf(want, sizeof(want), "elements = { %u }", port);
	return strstr(out, want) != NULL;
}

bool nft_set_lost_port(struct nft_set *s, uint16_t port, const char *who)
{
	int held;

	if (!nft_set_ruleset_changed(s) || (held = nft_set_holds_only(s, port)) == 1)
		return false;
	if (held < 0)
		fprintf(stderr,
			"teredo-observer: %snftables set '%s %s %s' is gone (a ruleset loaded "
			"again?)\n",
			who, s->family, s->table, s->set);
	else if (port)
		fprintf(stderr,
			"teredo-observer: %snftables set '%s %s %s' no longer holds port %u alone "
			"(a ruleset loaded again?): setting it again\n",
			who, s->family, s->table, s->set, port);
	else
		fprintf(stderr,
			"teredo-observer: %snftables set '%s %s %s' holds ports that are not the "
			"Teredo client's: emptying it\n",
			who, s->family, s->table, s->set);
	return true;
}

bool nft_set_had_elements(const struct nft_set *s)
{
	return s && s->had_elements;
}

void nft_set_free(struct nft_set *s)
{
	if (!s)
		return;
	if (s->ctx)
		nft_ctx_free(s->ctx);
	if (s->watch)
		mnl_socket_close(s->watch);
	if (s->netns_fd >= 0)
		close(s->netns_fd);
	if (s->home_fd >= 0)
		close(s->home_fd);
	free(s);
}
