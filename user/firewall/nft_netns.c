// SPDX-License-Identifier: MIT
/* The nftables set in every network namespace (nft_netns.h), over nft_set.c. */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "nft_netns.h"
#include "nft_set.h"
#include "teredo_observer.h"
#include "teredo_observer_private.h"

#define WHY_MAX 512
/*
 * How long a namespace whose port went is kept, its set empty: a client's
 * restart then finds the set's context ready. Making one costs the first
 * transaction about a millisecond, and letting one go (closing its netlink
 * socket, in another namespace) blocks the kernel for 10-20 ms, which would
 * delay the next event behind it.
 */
#define LINGER_NS (60ull * 1000000000ull)

/* A namespace that has a port, or had one and is not yet empty. */
struct netns_entry {
	unsigned long ino;
	int fd;		     /* the namespace; -1: not found (yet) */
	struct nft_set *set; /* NULL: not reached yet */
	uint16_t want;	     /* the port its set should hold */
	bool pending;	     /* want is not through */
	uint64_t idle_until; /* its set emptied: let it go then (CLOCK_MONOTONIC ns); 0: busy */
};

struct nft_netns {
	const char *spec;
	int epoll_fd; /* every held set's watch fd, each by its namespace's inode */
	struct netns_entry *v;
	size_t n, cap;
};

/* An fd of the namespace at path, when its inode is ino (0: any). */
static int open_netns(const char *path, unsigned long ino, unsigned long *found)
{
	struct stat st;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -1;
	if (fstat(fd, &st) || (ino && st.st_ino != ino)) {
		close(fd);
		return -1;
	}
	if (found)
		*found = st.st_ino;
	return fd;
}

/*
 * Each namespace that can be named: /run/netns's (ip netns) and every
 * process's. fn gets an fd of it and its inode, and keeps the fd (returns
 * 1: stop) or leaves it to us to close (0). The same namespace may come
 * more than once.
 */
static void each_netns(int (*fn)(void *ctx, int fd, unsigned long ino), void *ctx)
{
	static const char *const dirs[] = { "/run/netns", "/proc" };

	for (size_t d = 0; d < sizeof(dirs) / sizeof(dirs[0]); d++) {
		DIR *dir = opendir(dirs[d]);
		struct dirent *e;
		char path[300];
		unsigned long ino;
		int fd, stop = 0;

		while (dir && !stop && (e = readdir(dir))) {
			if (e->d_name[0] == '.' ||
			    (d == 1 && (e->d_name[0] < '1' || e->d_name[0] > '9')))
				continue;
			snprintf(path, sizeof(path), d == 0 ? "%s/%s" : "%s/%s/ns/net", dirs[d],
				 e->d_name);
			fd = open_netns(path, 0, &ino);
			if (fd < 0)
				continue;
			stop = fn(ctx, fd, ino);
			if (!stop)
				close(fd);
		}
		if (dir)
			closedir(dir);
		if (stop)
			return;
	}
}

struct search {
	unsigned long ino;
	int fd;
};

static int take_if_it(void *ctx, int fd, unsigned long ino)
{
	struct search *s = ctx;

	if (ino != s->ino)
		return 0;
	s->fd = fd;
	return 1;
}

/* An fd of namespace ino: pid's, or whichever process's or name's it is. -1: none found. */
static int find_netns(unsigned long ino, pid_t pid)
{
	struct search s = { ino, -1 };
	char path[64];

	if (pid > 0) {
		snprintf(path, sizeof(path), "/proc/%d/ns/net", (int)pid);
		s.fd = open_netns(path, ino, NULL);
		if (s.fd >= 0)
			return s.fd;
	}
	each_netns(take_if_it, &s);
	return s.fd;
}

static struct netns_entry *entry_of(struct nft_netns *nn, unsigned long ino)
{
	for (size_t i = 0; i < nn->n; i++)
		if (nn->v[i].ino == ino)
			return &nn->v[i];
	return NULL;
}

static struct netns_entry *new_entry(struct nft_netns *nn, unsigned long ino, pid_t pid)
{
	struct netns_entry *v;

	if (nn->n == nn->cap) {
		v = realloc(nn->v, (nn->cap ? nn->cap * 2 : 8) * sizeof(*v));
		if (!v)
			return NULL;
		nn->v = v;
		nn->cap = nn->cap ? nn->cap * 2 : 8;
	}
	nn->v[nn->n] = (struct netns_entry){ .ino = ino, .fd = find_netns(ino, pid) };
	return &nn->v[nn->n++];
}

/* Let the namespace go: its set is empty (or it has none). */
static void drop_entry(struct nft_netns *nn, struct netns_entry *e)
{
	nft_set_free(e->set);
	if (e->fd >= 0)
		close(e->fd);
	*e = nn->v[--nn->n];
}

/*
 * The namespace's nftables news wakes us (the set closes its fd when it is
 * freed, which takes it out of the epoll set). Without it a ruleset loaded
 * again there would leave the port closed; said, and the port is still set.
 */
static void listen_to(struct nft_netns *nn, const struct netns_entry *e)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = e->ino };

	if (epoll_ctl(nn->epoll_fd, EPOLL_CTL_ADD, nft_set_watch_fd(e->set), &ev))
		fprintf(stderr,
			"teredo-observer: network namespace %lu: cannot listen to its nftables "
			"(%s): a ruleset loaded again there will leave its port closed\n",
			e->ino, strerror(errno));
}

/* The entry's set holds e->want: 0, or -1 with why. */
static int apply(struct nft_netns *nn, struct netns_entry *e, char *why, size_t len)
{
	int fd;

	if (e->fd < 0)
		e->fd = find_netns(e->ino, 0);
	if (e->fd < 0) {
		snprintf(why, len, "cannot be entered: no process or /run/netns name of it found");
		return -1;
	}
	if (!e->set) {
		fd = dup(e->fd);
		if (fd < 0 || nft_set_open_in(nn->spec, fd, &e->set, why, len) < 0) {
			if (fd < 0)
				snprintf(why, len, "dup: %s", strerror(errno));
			return -1;
		}
		listen_to(nn, e);
	}
	return nft_set_set_port(e->set, e->want, why, len) < 0 ? -1 : 0;
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* One try of e->want; said when a failure starts and when it is over. */
static void try_entry(struct nft_netns *nn, struct netns_entry *e)
{
	char why[WHY_MAX];
	bool was_pending = e->pending;
	bool failed = apply(nn, e, why, sizeof(why)) < 0;

	/* No port and no set (or no namespace) to hold one: nothing is open there. */
	if (!e->want && failed && !e->set) {
		drop_entry(nn, e);
		return;
	}
	e->idle_until = !e->want && !failed ? mono_ns() + LINGER_NS : 0;
	e->pending = failed;
	if (failed && !was_pending)
		fprintf(stderr,
			"teredo-observer: network namespace %lu: %s; its Teredo port %u stays "
			"closed there, trying again every second\n",
			e->ino, why, e->want);
	else if (!failed && was_pending)
		fprintf(stderr, "teredo-observer: network namespace %lu: the set holds port %u\n",
			e->ino, e->want);
}

void nft_netns_set(struct nft_netns *nn, const struct teredo_port_event *ev)
{
	struct netns_entry *e = entry_of(nn, ev->netns);

	if (!e && !ev->port)
		return; /* a namespace we never opened anything in */
	if (e && e->want == ev->port && !e->pending)
		return; /* already so (the initial event after the start's reconciling) */
	if (!e)
		e = new_entry(nn, ev->netns, ev->pid);
	if (!e) {
		fprintf(stderr,
			"teredo-observer: network namespace %u: out of memory; its port %u "
			"stays closed there\n",
			ev->netns, ev->port);
		return;
	}
	e->want = ev->port;
	try_entry(nn, e);
}

long nft_netns_next_wake_ms(const struct nft_netns *nn)
{
	uint64_t now = mono_ns();
	long ms = -1;

	for (size_t i = 0; nn && i < nn->n; i++) {
		const struct netns_entry *e = &nn->v[i];
		long wait = e->pending ? 1000 : -1;

		if (e->idle_until)
			wait = e->idle_until > now ? (long)((e->idle_until - now) / 1000000) + 1
						   : 0;
		if (wait >= 0 && (ms < 0 || wait < ms))
			ms = wait;
	}
	return ms;
}

int nft_netns_fd(const struct nft_netns *nn)
{
	return nn ? nn->epoll_fd : -1;
}

/* What nftables said in each namespace: its set read again, and the port put back if lost. */
static void take_news(struct nft_netns *nn)
{
	struct epoll_event evs[16];
	int n = epoll_wait(nn->epoll_fd, evs, 16, 0);

	for (int i = 0; i < n; i++) {
		struct netns_entry *e = entry_of(nn, (unsigned long)evs[i].data.u64);
		char who[48];

		if (!e || !e->set)
			continue;
		if (e->pending) { /* read: the pending change is tried at once anyway */
			nft_set_ruleset_changed(e->set);
			continue;
		}
		snprintf(who, sizeof(who), "network namespace %lu: ", e->ino);
		if (nft_set_lost_port(e->set, e->want, who))
			try_entry(nn, e);
	}
}

void nft_netns_service(struct nft_netns *nn)
{
	uint64_t now = mono_ns();

	if (nn)
		take_news(nn);

	/* Backwards: a try may drop its entry, moving the last one into its place. */
	for (size_t i = nn ? nn->n : 0; i-- > 0;) {
		struct netns_entry *e = &nn->v[i];

		if (e->pending)
			try_entry(nn, e);
		else if (e->idle_until && e->idle_until <= now)
			drop_entry(nn, e);
	}
}

/* At start: a namespace with a client, its port to be set once the sweep is done. */
static int take_initial(void *ctx, const struct teredo_port_event *ev)
{
	struct nft_netns *nn = ctx;
	struct netns_entry *e = ev->port ? new_entry(nn, ev->netns, ev->pid) : NULL;

	if (ev->port && !e)
		return -ENOMEM;
	if (e)
		e->want = ev->port;
	return 0;
}

struct sweep {
	struct nft_netns *nn;
	unsigned long *seen; /* namespaces done, so that each is opened once */
	size_t n_seen, cap, with_set, wrong_type;
	char first_wrong[WHY_MAX + 48];
};

static bool seen_before(struct sweep *sw, unsigned long ino)
{
	unsigned long *v;

	for (size_t i = 0; i < sw->n_seen; i++)
		if (sw->seen[i] == ino)
			return true;
	if (sw->n_seen == sw->cap) {
		v = realloc(sw->seen, (sw->cap ? sw->cap * 2 : 64) * sizeof(*v));
		if (!v)
			return false;
		sw->seen = v;
		sw->cap = sw->cap ? sw->cap * 2 : 64;
	}
	sw->seen[sw->n_seen++] = ino;
	return false;
}

/*
 * One namespace at start: its set opened, quietly (what fails is said
 * later, or is the one line at start); one without a client has an earlier
 * run's elements removed.
 */
static int sweep_one(void *ctx, int fd, unsigned long ino)
{
	struct sweep *sw = ctx;
	struct netns_entry *e = entry_of(sw->nn, ino);
	struct nft_set *set = NULL;
	char why[WHY_MAX];
	int d, r;

	if (seen_before(sw, ino) || (e && e->set))
		return 0;
	d = dup(fd);
	if (d < 0)
		return 0;
	r = nft_set_open_in(sw->nn->spec, d, &set, why, sizeof(why));
	if (r == -EINVAL && !sw->wrong_type++)
		snprintf(sw->first_wrong, sizeof(sw->first_wrong), "network namespace %lu: %s", ino,
			 why);
	if (!set)
		return 0;
	sw->with_set++;
	if (e) {
		e->set = set;
		listen_to(sw->nn, e);
		return 0;
	}
	/*
	 * Only a set with elements is flushed: letting a context go after a
	 * transaction in another namespace takes the kernel 10-20 ms.
	 */
	if (nft_set_had_elements(set) && nft_set_set_port(set, 0, why, sizeof(why)) < 0)
		fprintf(stderr, "teredo-observer: network namespace %lu: %s\n", ino, why);
	nft_set_free(set);
	return 0;
}

/* After the sweep: 0, or -errno when no namespace holds a good set (why). */
static int sweep_verdict(const struct sweep *sw, const char *spec, char *why, size_t len)
{
	if (sw->with_set) {
		if (sw->wrong_type)
			fprintf(stderr,
				"teredo-observer: %zu network namespace(s) have a set '%s' of a "
				"wrong type, left alone; the first: %s\n",
				sw->wrong_type, spec, sw->first_wrong);
		return 0;
	}
	if (sw->wrong_type) {
		snprintf(why, len, "%s", sw->first_wrong);
		return -EINVAL;
	}
	snprintf(why, len,
		 "nftables set '%s' is in no network namespace (%zu looked at): create it in each "
		 "namespace whose Teredo client it is for (ip netns exec NS nft -f a table "
		 "including /usr/share/teredo-observer/teredo.nft, as its header shows)",
		 spec, sw->n_seen);
	return -ENOENT;
}

int nft_netns_open(const char *spec, const struct teredo_observer *obs, struct nft_netns **out,
		   char *why, size_t len)
{
	struct nft_netns *nn = calloc(1, sizeof(*nn));
	struct sweep sw = { .nn = nn };
	int err;

	*out = NULL;
	if (!nn) {
		snprintf(why, len, "out of memory");
		return -ENOMEM;
	}
	nn->spec = spec;
	nn->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	err = nn->epoll_fd < 0 ? -errno : teredo_observer_each_netns(obs, take_initial, nn);
	if (err)
		snprintf(why, len, nn->epoll_fd < 0 ? "cannot make an epoll set" : "out of memory");
	if (!err) {
		each_netns(sweep_one, &sw);
		err = sweep_verdict(&sw, spec, why, len);
	}
	free(sw.seen);
	if (err) {
		nft_netns_close(nn, true);
		return err;
	}
	/* Backwards: a try may drop its entry. */
	for (size_t i = nn->n; i-- > 0;)
		try_entry(nn, &nn->v[i]);
	*out = nn;
	return 0;
}

int nft_netns_close(struct nft_netns *nn, bool keep)
{
	char why[WHY_MAX];
	int status = 0;

	if (!nn)
		return 0;
	while (nn->n) {
		struct netns_entry *e = &nn->v[nn->n - 1];

		if (!keep && e->set && nft_set_set_port(e->set, 0, why, sizeof(why)) < 0) {
			fprintf(stderr, "teredo-observer: on exit: network namespace %lu: %s\n",
				e->ino, why);
			status = -1;
		}
		drop_entry(nn, e);
	}
	free(nn->v);
	if (nn->epoll_fd >= 0)
		close(nn->epoll_fd);
	free(nn);
	return status;
}
