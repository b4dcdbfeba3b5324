// SPDX-License-Identifier: MIT
/*
 * The kernel event source: opens, configures, loads and attaches the BPF
 * programs, and reads what they report through the ring buffer (live) and
 * the task_file iterator (snapshot).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "cgroup2.h"
#include "event_source.h"
#include "last_error.h"
#include "libbpf_print.h"
#include "requirements.h"
#include "teredo_observer.bpf.skel.h"

struct kernel_source {
	struct event_source base;
	struct teredo_observer_bpf *skel;
	struct ring_buffer *ring;
	struct bpf_link *links[16];
	size_t n_links;
	struct bpf_link *scan_link;
	uint64_t lost_seen;
	event_sink sink;
	void *sink_ctx;
	bool verbose; /* libbpf's messages about this source to stderr (libbpf_print.h) */
};

static int own_netns(uint32_t *ino)
{
	struct stat st;

	if (stat("/proc/self/ns/net", &st))
		return set_last_error(-errno, "cannot read /proc/self/ns/net: %s", strerror(errno));
	*ino = st.st_ino;
	return 0;
}

static void configure_names(struct teredo_observer_bpf__rodata *cfg,
			    const struct teredo_options *opts)
{
	for (size_t i = 0; i < opts->n_comms; i++)
		strncpy((char *)cfg->comm_words[i], opts->comms[i], TEREDO_COMM_LEN - 1);
	cfg->n_comms = opts->n_comms;
	for (size_t i = 0; i < opts->n_uids; i++)
		cfg->uids[i] = opts->uids[i];
	cfg->n_uids = opts->n_uids;
}

/*
 * For the race tests only: TEREDO_OBSERVER_TEST_HOLD_BIND=PORT:MS makes a
 * client's bind() to PORT wait up to MS ms (at most 2000) in the kernel,
 * its port assigned and not yet registered (see hold_bind_for_test). Not
 * honoured in a set-user-ID program; loading BPF needs root anyway.
 */
static void configure_test_hold(struct teredo_observer_bpf__rodata *cfg)
{
	const char *v = secure_getenv("TEREDO_OBSERVER_TEST_HOLD_BIND");
	unsigned int port, ms;

	if (!v || sscanf(v, "%u:%u", &port, &ms) != 2 || !port || port > 65535 || ms > 2000)
		return;
	cfg->test_hold_bind_port = (__u16)port;
	cfg->test_hold_bind_ms = ms;
}

static int configure(struct teredo_observer_bpf *skel, const struct teredo_options *opts)
{
	struct teredo_observer_bpf__rodata *cfg = skel->rodata;
	uint32_t netns = 0;
	int err;

	configure_names(cfg, opts);
	configure_test_hold(cfg);
	cfg->target_pid = opts->pid;
	cfg->match_traffic = opts->match_traffic;
	if (opts->cgroup) {
		err = cgroup2_path_names(opts->cgroup,
					 (char(*)[TEREDO_CGROUP_NAME_LEN])cfg->cgroup_names,
					 &cfg->cgroup_levels);
		if (err)
			return err;
	}
	if (!opts->all_netns) {
		err = own_netns(&netns);
		if (err)
			return err;
	}
	cfg->target_netns = netns;
	if (opts->ring_bytes) {
		err = bpf_map__set_max_entries(skel->maps.events, opts->ring_bytes);
		if (err)
			return set_last_error(err, "ring buffer size %zu refused: %s",
					      opts->ring_bytes, strerror(-err));
	}
	return 0;
}

static int keep_link(struct kernel_source *ks, struct bpf_link *link, const char *what)
{
	if (!link) {
		int err = -errno;

		return set_last_error(err, "cannot attach %s: %s", what, strerror(-err));
	}
	if (ks->n_links == sizeof(ks->links) / sizeof(ks->links[0])) {
		bpf_link__destroy(link);
		return set_last_error(-E2BIG, "more BPF programs than links to hold them");
	}
	ks->links[ks->n_links++] = link;
	return 0;
}

/* The hooks where ports come and go, on the whole machine (the cgroup2 root). */
static int attach_hooks(struct kernel_source *ks)
{
	struct teredo_observer_bpf *skel = ks->skel;
	struct bpf_program *prog;
	int cgroup_fd, err = 0;

	cgroup_fd = cgroup2_root_fd();
	if (cgroup_fd < 0)
		return cgroup_fd;
	bpf_object__for_each_program(prog, skel->obj)
	{
		if (!bpf_program__autoload(prog) || prog == skel->progs.teredo_scan)
			continue;
		if (bpf_program__type(prog) == BPF_PROG_TYPE_CGROUP_SOCK ||
		    bpf_program__type(prog) == BPF_PROG_TYPE_CGROUP_SOCK_ADDR)
			err = keep_link(ks, bpf_program__attach_cgroup(prog, cgroup_fd),
					bpf_program__name(prog));
		else
			err = keep_link(ks, bpf_program__attach(prog), bpf_program__name(prog));
		if (err)
			break;
	}
	close(cgroup_fd);
	return err;
}

static int attach_scan(struct kernel_source *ks)
{
	ks->scan_link = bpf_program__attach_iter(ks->skel->progs.teredo_scan, NULL);
	if (!ks->scan_link)
		return set_last_error(-errno, "cannot attach the socket iterator: %s",
				      strerror(errno));
	return 0;
}

/* For one look at the state: the iterator alone, nothing on the machine's hooks. */
static void load_only_the_scan(struct teredo_observer_bpf *skel)
{
	struct bpf_program *prog;

	bpf_object__for_each_program(prog, skel->obj)
		bpf_program__set_autoload(prog, prog == skel->progs.teredo_scan);
}

static int on_ring_record(void *ctx, void *data, size_t size)
{
	struct kernel_source *ks = ctx;

	if (size < sizeof(struct teredo_event))
		return 0;
	return ks->sink(ks->sink_ctx, data);
}

static int kernel_fd(const struct event_source *src)
{
	const struct kernel_source *ks = (const struct kernel_source *)src;

	/* The ring buffer map itself polls: no epoll of libbpf's nested in ours. */
	return bpf_map__fd(ks->skel->maps.events);
}

static int kernel_drain(struct event_source *src, event_sink sink, void *ctx)
{
	struct kernel_source *ks = (struct kernel_source *)src;
	int n;

	if (!ks->ring)
		return 0; /* a snapshot-only source has no live records */
	ks->sink = sink;
	ks->sink_ctx = ctx;
	libbpf_print_enter(ks->verbose);
	n = ring_buffer__consume(ks->ring);
	libbpf_print_leave();
	return n < 0 ? set_last_error(n, "reading the ring buffer: %s", strerror(-n)) : n;
}

static bool kernel_lost_records(struct event_source *src)
{
	struct kernel_source *ks = (struct kernel_source *)src;
	uint64_t lost = __atomic_load_n(&ks->skel->bss->lost_events, __ATOMIC_ACQUIRE);

	if (lost == ks->lost_seen)
		return false;
	ks->lost_seen = lost;
	return true;
}

static int kernel_snapshot(struct event_source *src, event_sink sink, void *ctx)
{
	struct kernel_source *ks = (struct kernel_source *)src;
	struct teredo_event ev;
	int fd, err = 0;
	ssize_t n;

	fd = bpf_iter_create(bpf_link__fd(ks->scan_link));
	if (fd < 0)
		return set_last_error(-errno, "cannot start the socket iterator: %s",
				      strerror(errno));
	while ((n = read(fd, &ev, sizeof(ev))) == sizeof(ev)) {
		err = sink(ctx, &ev);
		if (err < 0)
			break;
	}
	if (n < 0 && !err)
		err = set_last_error(-errno, "reading the socket iterator: %s", strerror(errno));
	close(fd);
	return err;
}

static void kernel_destroy(struct event_source *src)
{
	struct kernel_source *ks = (struct kernel_source *)src;

	if (!ks)
		return;
	libbpf_print_enter(ks->verbose);
	ring_buffer__free(ks->ring);
	bpf_link__destroy(ks->scan_link);
	for (size_t i = 0; i < ks->n_links; i++)
		bpf_link__destroy(ks->links[i]);
	teredo_observer_bpf__destroy(ks->skel);
	libbpf_print_leave();
	free(ks);
}

static const struct event_source_ops kernel_ops = {
	.fd = kernel_fd,
	.drain = kernel_drain,
	.lost_records = kernel_lost_records,
	.snapshot = kernel_snapshot,
	.destroy = kernel_destroy,
};

/*
 * The capabilities were checked before loading, so EPERM here is a policy
 * (lockdown, an LSM, a token) and EACCES is the verifier saying no.
 */
static int load_failed(int err)
{
	if (err == -EPERM)
		return set_last_error(-EPERM,
				      "the kernel refused to load the BPF programs (%s): "
				      "needs CAP_BPF, CAP_PERFMON and CAP_NET_ADMIN: "
				      "run as root",
				      strerror(-err));
	return set_last_error(-EOPNOTSUPP,
			      "the kernel refused the BPF programs (%s): run with --verbose "
			      "(TEREDO_OBSERVER_VERBOSE=1) for the verifier's log",
			      strerror(-err));
}

static int open_ring(struct kernel_source *ks)
{
	ks->ring = ring_buffer__new(bpf_map__fd(ks->skel->maps.events), on_ring_record, ks, NULL);
	if (!ks->ring)
		return set_last_error(-errno, "cannot open the ring buffer: %s", strerror(errno));
	return 0;
}

static int open_source(const struct teredo_options *opts, bool live, struct event_source **out)
{
	struct kernel_source *ks;
	int err;

	*out = NULL;
	err = check_privileges();
	if (!err)
		err = check_kernel_features();
	if (err)
		return err;
	ks = calloc(1, sizeof(*ks));
	if (!ks)
		return set_last_error(-ENOMEM, "out of memory");
	ks->base.ops = &kernel_ops;
	ks->verbose = opts->verbose;
	ks->skel = teredo_observer_bpf__open();
	if (!ks->skel) {
		err = set_last_error(-errno, "cannot open the BPF object: %s", strerror(errno));
		goto cleanup;
	}
	err = configure(ks->skel, opts);
	if (err)
		goto cleanup;
	if (!live)
		load_only_the_scan(ks->skel);
	err = teredo_observer_bpf__load(ks->skel);
	if (err) {
		err = load_failed(err);
		goto cleanup;
	}
	err = live ? attach_hooks(ks) : 0;
	if (!err)
		err = attach_scan(ks);
	if (!err && live)
		err = open_ring(ks);
	if (err)
		goto cleanup;
	*out = &ks->base;
	return 0;
cleanup:
	kernel_destroy(&ks->base);
	return err;
}

/* What libbpf says while we open, load and attach is ours (libbpf_print.h). */
static int open_source_printing(const struct teredo_options *opts, bool live,
				struct event_source **out)
{
	int err;

	libbpf_print_enter(opts->verbose);
	err = open_source(opts, live, out);
	libbpf_print_leave();
	return err;
}

int kernel_source_open(const struct teredo_options *opts, struct event_source **out)
{
	return open_source_printing(opts, true, out);
}

int kernel_snapshot_open(const struct teredo_options *opts, struct event_source **out)
{
	return open_source_printing(opts, false, out);
}
