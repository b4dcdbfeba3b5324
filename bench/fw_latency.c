// SPDX-License-Identifier: MIT
/*
 * tbench-fw: the Teredo client's bind() -> the firewall holds its port, as
 * nftables tells it (bench/firewall-latency runs it; BENCHMARKS.md).
 *
 * Run inside the network namespace of a teredo-observer that keeps the
 * firewall (--nft-set, --exec teredo-nft-update or --firewalld-zone), with
 * the process name that observer watches (--comm). It listens to nftables'
 * own notifications (the netlink group nft monitor reads, NFNLGRP_NFTABLES),
 * each stamped (CLOCK_MONOTONIC) as recv() returns it, so that no nft
 * process or pipe stands between the commit and the stamp. ROUNDS times it
 * binds a UDP socket (an add) and closes it (a delete); then it holds one
 * socket (port P) and ROUNDS times binds a second (Q: a change P -> Q) and
 * closes it (Q -> P). Measured, in microseconds:
 *
 *   add:     bind() with no port before -> the port is held
 *   close:   close() of the only socket -> the port is gone
 *   change:  bind() of Q -> Q is held
 *   neither: during the changes, a commit that leaves neither port held ->
 *            the next commit that holds one (never, when a change is one
 *            transaction)
 *   both:    whether a commit ever left both held
 *
 * "Held": in set mode an element of the set FAMILY TABLE SET; in rule mode
 * (firewalld) a rule of table "firewalld" comparing against the port.
 *
 * Usage: tbench-fw set ROUNDS COMM TABLE SET | rule ROUNDS COMM
 * Prints one line per measure: name, count, p50, p95, max (us), then "both
 * never" or "both SEEN" (exit 1).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define MAX_ROUNDS 10000
#define TIMEOUT_MS 10000
#define MAX_RULES 4096

static bool rule_mode;
static const char *want_table, *want_set;

/* What the firewall holds now, from the notifications so far. */
static struct {
	uint16_t port[MAX_RULES];
	uint64_t handle[MAX_RULES]; /* rule mode: the rule's handle */
	size_t n;
} held;

/* Commits seen while watching changes: how many of our two ports each left held. */
static bool watch_commits;
static uint16_t ports_watched[2];
static uint64_t empty_since; /* a commit left neither: when; 0 while one is held */
static int most_at_once;
static double *neither_us;
static size_t n_neither;

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static size_t count_held(uint16_t port)
{
	size_t n = 0;

	for (size_t i = 0; i < held.n; i++)
		n += held.port[i] == port;
	return n;
}

static void hold(uint16_t port, uint64_t handle)
{
	if (held.n < MAX_RULES) {
		held.port[held.n] = port;
		held.handle[held.n++] = handle;
	}
}

/* Set mode: by port; rule mode: by handle. */
static void let_go(uint16_t port, uint64_t handle)
{
	for (size_t i = 0; i < held.n; i++)
		if (rule_mode ? held.handle[i] == handle : held.port[i] == port) {
			held.port[i] = held.port[--held.n];
			held.handle[i] = held.handle[held.n];
			return;
		}
}

/* ---- netlink attributes ---- */

static const struct nlattr *attr_next(const struct nlattr *a, size_t *left)
{
	size_t step = NLA_ALIGN(a->nla_len);

	*left = step <= *left ? *left - step : 0;
	return (const struct nlattr *)((const char *)a + step);
}

static bool attr_ok(const struct nlattr *a, size_t left)
{
	return left >= sizeof(*a) && a->nla_len >= sizeof(*a) && a->nla_len <= left;
}

#define for_each_attr(a, start, len) \
	for (size_t left_ = (len); (a = (start)), attr_ok(a, left_); start = attr_next(a, &left_))

static const void *payload(const struct nlattr *a)
{
	return (const char *)a + NLA_HDRLEN;
}

static size_t payload_len(const struct nlattr *a)
{
	return a->nla_len - NLA_HDRLEN;
}

static int type_of(const struct nlattr *a)
{
	return a->nla_type & NLA_TYPE_MASK;
}

/* The nested attribute of type t inside a, or NULL. */
static const struct nlattr *nested(const struct nlattr *a, int t)
{
	const struct nlattr *start = payload(a), *b;

	for_each_attr(b, start, payload_len(a))
	{
		if (type_of(b) == t)
			return b;
	}
	return NULL;
}

/* An nft_data value of two bytes (a port), or 0. */
static uint16_t port_of_data(const struct nlattr *data)
{
	const struct nlattr *v = data ? nested(data, NFTA_DATA_VALUE) : NULL;
	uint16_t port;

	if (!v || payload_len(v) != 2)
		return 0;
	memcpy(&port, payload(v), 2);
	return ntohs(port);
}

static bool is_string(const struct nlattr *a, const char *s)
{
	return a && payload_len(a) >= strlen(s) + 1 && !strcmp(payload(a), s);
}

/* ---- notifications ---- */

static void on_setelem(const struct nlattr *attrs, size_t len, bool add)
{
	const struct nlattr *a, *table = NULL, *set = NULL, *elems = NULL, *e, *start;

	for_each_attr(a, attrs, len)
	{
		if (type_of(a) == NFTA_SET_ELEM_LIST_TABLE)
			table = a;
		else if (type_of(a) == NFTA_SET_ELEM_LIST_SET)
			set = a;
		else if (type_of(a) == NFTA_SET_ELEM_LIST_ELEMENTS)
			elems = a;
	}
	if (rule_mode || !elems || !is_string(table, want_table) || !is_string(set, want_set))
		return;
	start = payload(elems);
	for_each_attr(e, start, payload_len(elems))
	{
		uint16_t port = port_of_data(nested(e, NFTA_SET_ELEM_KEY));

		if (!port)
			continue;
		if (add)
			hold(port, 0);
		else
			let_go(port, 0);
	}
}

/* The port a cmp expression of the rule compares with (firewalld's "udp dport P"), or 0. */
static uint16_t port_of_rule(const struct nlattr *exprs)
{
	const struct nlattr *e, *start = payload(exprs);

	for_each_attr(e, start, payload_len(exprs))
	{
		const struct nlattr *name = nested(e, NFTA_EXPR_NAME);
		const struct nlattr *data = nested(e, NFTA_EXPR_DATA);
		uint16_t port;

		if (!is_string(name, "cmp") || !data)
			continue;
		port = port_of_data(nested(data, NFTA_CMP_DATA));
		if (port >= 1024) /* firewalld's own services' ports are below */
			return port;
	}
	return 0;
}

static void on_rule(const struct nlattr *attrs, size_t len, bool add)
{
	const struct nlattr *a, *table = NULL, *exprs = NULL, *handle = NULL;
	uint64_t h = 0;
	uint16_t port;

	for_each_attr(a, attrs, len)
	{
		if (type_of(a) == NFTA_RULE_TABLE)
			table = a;
		else if (type_of(a) == NFTA_RULE_EXPRESSIONS)
			exprs = a;
		else if (type_of(a) == NFTA_RULE_HANDLE)
			handle = a;
	}
	if (!rule_mode || !is_string(table, "firewalld") || !handle || payload_len(handle) != 8)
		return;
	memcpy(&h, payload(handle), 8);
	if (!add) {
		let_go(0, h);
		return;
	}
	port = exprs ? port_of_rule(exprs) : 0;
	if (port)
		hold(port, h);
}

static void on_commit(uint64_t t)
{
	int n;

	if (!watch_commits)
		return;
	n = (int)(count_held(ports_watched[0]) + count_held(ports_watched[1]));
	if (n > most_at_once)
		most_at_once = n;
	if (!n && !empty_since)
		empty_since = t;
	else if (n && empty_since) {
		neither_us[n_neither++] = (double)(t - empty_since) / 1000.0;
		empty_since = 0;
	}
}

static void on_message(const struct nlmsghdr *nh, uint64_t t)
{
	const struct nlattr *attrs = (const struct nlattr *)((const char *)NLMSG_DATA(nh) +
							     NLMSG_ALIGN(sizeof(struct nfgenmsg)));
	size_t hdr = NLMSG_HDRLEN + NLMSG_ALIGN(sizeof(struct nfgenmsg));
	size_t len = nh->nlmsg_len > hdr ? nh->nlmsg_len - hdr : 0;

	if (NFNL_SUBSYS_ID(nh->nlmsg_type) != NFNL_SUBSYS_NFTABLES)
		return;
	switch (NFNL_MSG_TYPE(nh->nlmsg_type)) {
	case NFT_MSG_NEWSETELEM:
	case NFT_MSG_DELSETELEM:
		on_setelem(attrs, len, NFNL_MSG_TYPE(nh->nlmsg_type) == NFT_MSG_NEWSETELEM);
		break;
	case NFT_MSG_NEWRULE:
	case NFT_MSG_DELRULE:
		on_rule(attrs, len, NFNL_MSG_TYPE(nh->nlmsg_type) == NFT_MSG_NEWRULE);
		break;
	case NFT_MSG_NEWGEN:
		on_commit(t);
		break;
	}
}

static int nl_fd = -1;

static int listen_nftables(void)
{
	struct sockaddr_nl sa = { .nl_family = AF_NETLINK };
	int group = NFNLGRP_NFTABLES, size = 8 << 20;

	nl_fd = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_NETFILTER);
	if (nl_fd < 0 || bind(nl_fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    setsockopt(nl_fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, &group, sizeof(group)))
		return -errno;
	/* Never lose a notification to a full buffer (root may go past rmem_max). */
	if (setsockopt(nl_fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof(size)))
		setsockopt(nl_fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
	return 0;
}

/*
 * Read notifications until pred() holds after a batch of them; the time of
 * the recv() that brought it in *t. 0, or -ETIMEDOUT, -ENOBUFS (one was
 * lost), -errno.
 */
static int wait_for(bool (*pred)(uint16_t), uint16_t port, uint64_t *t)
{
	static char buf[1 << 16];
	uint64_t deadline = mono_ns() + TIMEOUT_MS * 1000000ull;

	for (;;) {
		struct pollfd p = { .fd = nl_fd, .events = POLLIN };
		uint64_t now = mono_ns();
		ssize_t n;

		if (now >= deadline)
			return -ETIMEDOUT;
		if (poll(&p, 1, (int)((deadline - now) / 1000000) + 1) < 0)
			return -errno;
		n = recv(nl_fd, buf, sizeof(buf), MSG_DONTWAIT);
		*t = mono_ns();
		if (n < 0 && errno == EAGAIN)
			continue;
		if (n < 0)
			return -errno;
		/* The whole batch: what follows in it must not be lost to the next wait. */
		for (struct nlmsghdr *nh = (struct nlmsghdr *)buf; NLMSG_OK(nh, (size_t)n);
		     nh = NLMSG_NEXT(nh, n))
			on_message(nh, *t);
		if (pred(port))
			return 0;
	}
}

static bool is_held(uint16_t port)
{
	return count_held(port) > 0;
}

static bool is_gone(uint16_t port)
{
	return count_held(port) == 0;
}

/* A UDP socket bound by the kernel to a port of its choice; the time right before bind(). */
static int bound_socket(uint16_t *port, uint64_t *t)
{
	struct sockaddr_in a = { .sin_family = AF_INET };
	socklen_t len = sizeof(a);
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	*t = mono_ns();
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    getsockname(fd, (struct sockaddr *)&a, &len)) {
		close(fd);
		return -1;
	}
	*port = ntohs(a.sin_port);
	return fd;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

static void print_measure(const char *name, double *v, size_t n)
{
	size_t p50, p95;

	qsort(v, n, sizeof(*v), cmp_double);
	p50 = n ? (n - 1) / 2 : 0;
	p95 = n ? (size_t)((double)(n - 1) * 0.95 + 0.5) : 0;
	printf("%s %zu %.0f %.0f %.0f\n", name, n, n ? v[p50] : 0, n ? v[p95] : 0,
	       n ? v[n - 1] : 0);
}

static int fail(const char *what, int err)
{
	fprintf(stderr, "tbench-fw: %s: %s\n", what, strerror(err < 0 ? -err : err));
	return 2;
}

/* One add and its delete: bind -> held, close -> gone. */
static int add_and_close(double *add_us, double *close_us)
{
	uint64_t t0, t1;
	uint16_t p;
	int fd = bound_socket(&p, &t0), err;

	if (fd < 0)
		return -errno;
	err = wait_for(is_held, p, &t1);
	if (err) {
		close(fd);
		return err;
	}
	*add_us = (double)(t1 - t0) / 1000.0;
	t0 = mono_ns();
	close(fd);
	err = wait_for(is_gone, p, &t1);
	*close_us = (double)(t1 - t0) / 1000.0;
	return err;
}

/* One change P -> Q and back, P's socket held by the caller. */
static int change_and_back(uint16_t p, double *change_us)
{
	uint64_t t0, t1;
	uint16_t q;
	int fd = bound_socket(&q, &t0), err;

	if (fd < 0)
		return -errno;
	ports_watched[1] = q;
	err = wait_for(is_held, q, &t1);
	*change_us = (double)(t1 - t0) / 1000.0;
	close(fd);
	if (!err)
		err = wait_for(is_held, p, &t1);
	if (!err && count_held(q))
		err = wait_for(is_gone, q, &t1);
	return err;
}

int main(int argc, char **argv)
{
	static double adds[MAX_ROUNDS], closes[MAX_ROUNDS], changes[MAX_ROUNDS],
		neither[2 * MAX_ROUNDS + 2]; /* each round is two changes */
	uint64_t t;
	uint16_t p;
	int rounds, fd, err;

	if (argc < 4 || (strcmp(argv[1], "set") && strcmp(argv[1], "rule")) ||
	    argc != (strcmp(argv[1], "set") ? 4 : 6)) {
		fprintf(stderr, "usage: tbench-fw set ROUNDS COMM TABLE SET | rule ROUNDS COMM\n"
				"  (e.g. tbench-fw set 100 tbench-fw tbench port)\n");
		return 2;
	}
	rule_mode = !strcmp(argv[1], "rule");
	rounds = atoi(argv[2]);
	want_table = argc > 4 ? argv[4] : NULL;
	want_set = argc > 5 ? argv[5] : NULL;
	if (rounds < 1 || rounds > MAX_ROUNDS)
		return fail("ROUNDS", EINVAL);
	if (prctl(PR_SET_NAME, argv[3]))
		return fail("prctl", errno);
	err = listen_nftables();
	if (err)
		return fail("netlink", err);
	for (int i = 0; i < rounds; i++) {
		err = add_and_close(&adds[i], &closes[i]);
		if (err)
			return fail("add and close", err);
	}
	fd = bound_socket(&p, &t);
	if (fd < 0 || (err = wait_for(is_held, p, &t)))
		return fail("the held socket", fd < 0 ? errno : err);
	neither_us = neither;
	ports_watched[0] = p;
	watch_commits = true;
	for (int i = 0; i < rounds; i++) {
		err = change_and_back(p, &changes[i]);
		if (err)
			return fail("change and back", err);
	}
	close(fd);
	print_measure("add", adds, (size_t)rounds);
	print_measure("close", closes, (size_t)rounds);
	print_measure("change", changes, (size_t)rounds);
	print_measure("neither", neither, n_neither);
	printf("both %s\n", most_at_once > 1 ? "SEEN" : "never");
	return most_at_once > 1;
}
