// SPDX-License-Identifier: MIT
/*
 * teredo-observer(8): the command root runs to watch the Teredo client's
 * port. A client of the library's native API and nothing more.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "event_exec.h"
#include "firewall_job.h"
#include "firewalld.h"
#include "nft_set.h"
#include "sd_notify.h"
#include "serve.h"
#include "teredo_observer.h"
#include "teredo_observer_private.h"

enum exit_status {
	EXIT_OK = 0,
	EXIT_FAILURE_ = 1,
	EXIT_USAGE = 2,
	EXIT_NO_CLIENT = 3,
	KEEP_WATCHING = -1, /* not an exit status: nothing ends the watch yet */
};

struct command {
	struct teredo_selection *sel; /* what counts as the Teredo client */
	struct event_exec exec;
	/* --firewalld-zone: the zone given, and the job once watching. */
	const char *firewalld_zone;
	const char *nft_set; /* --nft-set, --nft-keep-on-exit */
	bool nft_keep_on_exit;
	struct firewall_job *firewall;
	bool json;
	bool get;
	/* While watching: the signal mask with SIGINT/SIGTERM let through. */
	const sigset_t *wait_mask;
	bool serve;
	struct serve_config service;
};

static volatile sig_atomic_t stop_requested;

static void request_stop(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static void usage(FILE *out)
{
	fprintf(out,
		"Usage: teredo-observer [OPTION]... [get|serve]\n"
		"Report the UDP port of the Teredo client (Miredo) and every change to it.\n"
		"\n"
		"  get                 print the current Teredo port and exit (3: no client)\n"
		"  serve               be the host's one observer: serve the port and its\n"
		"                      changes over Varlink to every local program\n"
		"  --socket PATH       serve's socket (default $TEREDO_OBSERVER_SOCKET or\n"
		"                      %s)\n"
		"  --max-per-user N    serve: connections one user may hold (default %d)\n"
		"  --json              one JSON object per line\n"
		"  --exec CMD          run CMD with /bin/sh -c for each event, one at a time,\n"
		"                      the event in TEREDO_EVENT, TEREDO_PORT, TEREDO_OLD_PORT,\n"
		"                      TEREDO_PID, TEREDO_COMM and TEREDO_NETNS\n"
		"  --exec-timeout SECONDS\n"
		"                      kill a command still running after SECONDS (default %d)\n"
		"  --nft-set 'FAMILY TABLE SET'\n"
		"                      keep the nftables set (type inet_service) holding\n"
		"                      exactly the port, one transaction per change;\n"
		"                      emptied on exit; with --all-netns, the set of that\n"
		"                      name in each client's network namespace\n"
		"  --nft-keep-on-exit  leave the set as it is on exit\n"
		"  --firewalld-zone ZONE\n"
		"                      keep the port open (PORT/udp) in firewalld's ZONE,\n"
		"                      runtime configuration only; closed on exit (also\n"
		"                      with serve)\n"
		"What is the Teredo client: every criterion given must hold.\n"
		"  --comm NAME         processes named NAME (repeatable; default: miredo)\n"
		"  --user USER         running as USER, a name or uid (repeatable; default:\n"
		"                      root and the miredo system user)\n"
		"  --pid PID           process PID and its children\n"
		"  --cgroup PATH       in cgroup v2 PATH or below, e.g.\n"
		"                      /system.slice/miredo.service (followed by path: it\n"
		"                      may be removed, made again, or not exist yet)\n"
		"  --match-traffic     only UDP sockets that send to port 3544\n"
		"  --all-netns         watch every network namespace, not just this one\n"
		"  -v, --verbose       show libbpf's diagnostics\n"
		"  -h, --help          show this help\n"
		"  -V, --version       show the version\n"
		"\n"
		"Exit status: 0 stopped by SIGINT/SIGTERM or done, 1 failure, 2 usage error,\n"
		"3 (get) no Teredo client. See teredo-observer(8).\n",
		serve_default_socket_path(), SERVE_DEFAULT_MAX_PER_USER,
		EVENT_EXEC_DEFAULT_TIMEOUT);
}

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "teredo-observer: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n");
	usage(stderr);
	return EXIT_USAGE;
}

enum {
	OPT_JSON = 256,
	OPT_COMM,
	OPT_USER,
	OPT_PID,
	OPT_CGROUP,
	OPT_MATCH_TRAFFIC,
	OPT_ALL_NETNS,
	OPT_EXEC,
	OPT_EXEC_TIMEOUT,
	OPT_SOCKET,
	OPT_MAX_PER_USER,
	OPT_FIREWALLD_ZONE,
	OPT_NFT_SET,
	OPT_NFT_KEEP_ON_EXIT,
};

static const struct option longopts[] = {
	{ "json", no_argument, NULL, OPT_JSON },
	{ "comm", required_argument, NULL, OPT_COMM },
	{ "user", required_argument, NULL, OPT_USER },
	{ "pid", required_argument, NULL, OPT_PID },
	{ "cgroup", required_argument, NULL, OPT_CGROUP },
	{ "match-traffic", no_argument, NULL, OPT_MATCH_TRAFFIC },
	{ "all-netns", no_argument, NULL, OPT_ALL_NETNS },
	{ "exec", required_argument, NULL, OPT_EXEC },
	{ "exec-timeout", required_argument, NULL, OPT_EXEC_TIMEOUT },
	{ "socket", required_argument, NULL, OPT_SOCKET },
	{ "max-per-user", required_argument, NULL, OPT_MAX_PER_USER },
	{ "firewalld-zone", required_argument, NULL, OPT_FIREWALLD_ZONE },
	{ "nft-set", required_argument, NULL, OPT_NFT_SET },
	{ "nft-keep-on-exit", no_argument, NULL, OPT_NFT_KEEP_ON_EXIT },
	{ "verbose", no_argument, NULL, 'v' },
	{ "help", no_argument, NULL, 'h' },
	{ "version", no_argument, NULL, 'V' },
	{ 0 },
};

static int parse_max_per_user(struct command *cmd, const char *text)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(text, &end, 10);
	if (errno || end == text || *end || text[0] == '-' || v < 1 || v > 1000000)
		return usage_error("--max-per-user '%s': expected 1 to 1000000", text);
	cmd->service.max_per_user = v;
	return EXIT_OK;
}

/* One option: EXIT_OK, or EXIT_USAGE once said why. */
static int apply_option(struct command *cmd, int c)
{
	char why[PATH_MAX + 128];
	pid_t pid;

	switch (c) {
	case OPT_JSON:
		cmd->json = true;
		break;
	/* The first --comm (--user) replaces the default or the environment's list. */
	case OPT_COMM:
		if (teredo_selection_add_comm(cmd->sel, optarg))
			return usage_error("%s", teredo_observer_last_error());
		break;
	case OPT_USER:
		if (teredo_selection_add_user(cmd->sel, optarg))
			return usage_error("%s", teredo_observer_last_error());
		break;
	case OPT_PID:
		if (teredo_parse_pid(optarg, &pid) || teredo_selection_set_pid(cmd->sel, pid))
			return usage_error("%s", teredo_observer_last_error());
		break;
	case OPT_CGROUP:
		if (teredo_selection_set_cgroup(cmd->sel, optarg))
			return usage_error("%s", teredo_observer_last_error());
		break;
	case OPT_MATCH_TRAFFIC:
		teredo_selection_set_match_traffic(cmd->sel, true);
		break;
	case OPT_ALL_NETNS:
		teredo_selection_set_all_netns(cmd->sel, true);
		break;
	case OPT_EXEC:
		if (event_exec_check(optarg, why, sizeof(why)))
			return usage_error("%s", why);
		cmd->exec.command = optarg;
		break;
	case OPT_EXEC_TIMEOUT:
		if (event_exec_parse_timeout(optarg, &cmd->exec.timeout_s))
			return usage_error(
				"--exec-timeout '%s': expected whole seconds, 1 to 86400", optarg);
		break;
	case OPT_SOCKET:
		if (!optarg[0])
			return usage_error("%s", "--socket needs a path");
		cmd->service.socket_path = optarg;
		break;
	case OPT_MAX_PER_USER:
		return parse_max_per_user(cmd, optarg);
	case OPT_FIREWALLD_ZONE:
		if (firewalld_zone_name_problem(optarg)) {
			snprintf(why, sizeof(why), "--firewalld-zone '%.64s': the name %s", optarg,
				 firewalld_zone_name_problem(optarg));
			return usage_error("%s", why);
		}
		cmd->firewalld_zone = optarg;
		break;
	case OPT_NFT_SET:
		if (nft_set_spec_problem(optarg)) {
			snprintf(why, sizeof(why), "--nft-set '%.64s' %s", optarg,
				 nft_set_spec_problem(optarg));
			return usage_error("%s", why);
		}
		cmd->nft_set = optarg;
		break;
	case OPT_NFT_KEEP_ON_EXIT:
		cmd->nft_keep_on_exit = true;
		break;
	case 'v':
		teredo_selection_set_verbose(cmd->sel, true);
		break;
	}
	return EXIT_OK;
}

static int parse_args(struct command *cmd, int argc, char **argv, bool *done)
{
	int c, status;

	*done = false;
	cmd->sel = teredo_selection_new();
	if (!cmd->sel) {
		fprintf(stderr, "teredo-observer: %s\n", teredo_observer_last_error());
		return EXIT_FAILURE_;
	}
	cmd->exec.timeout_s = EVENT_EXEC_DEFAULT_TIMEOUT;
	cmd->service.max_per_user = SERVE_DEFAULT_MAX_PER_USER;
	cmd->service.notify = sd_notify_send;
	if (teredo_selection_from_env(cmd->sel))
		return usage_error("%s", teredo_observer_last_error());
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":vhV", longopts, NULL)) != -1) {
		switch (c) {
		case 'h':
			usage(stdout);
			*done = true;
			return EXIT_OK;
		case 'V':
			printf("teredo-observer %s\n", TEREDO_OBSERVER_VERSION);
			*done = true;
			return EXIT_OK;
		case ':':
			return usage_error("option %s needs a value", argv[optind - 1]);
		case '?':
			return usage_error("unknown option %s", argv[optind - 1]);
		default:
			status = apply_option(cmd, c);
			if (status != EXIT_OK)
				return status;
		}
	}
	if (optind < argc && strcmp(argv[optind], "get") == 0) {
		cmd->get = true;
		optind++;
	} else if (optind < argc && strcmp(argv[optind], "serve") == 0) {
		cmd->serve = true;
		optind++;
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (cmd->get && cmd->exec.command)
		return usage_error("%s", "--exec is for watching, not for get");
	if (cmd->serve && (cmd->exec.command || cmd->json))
		return usage_error("%s", "--exec and --json are for watching, not for serve");
	if (cmd->get && (cmd->firewalld_zone || cmd->nft_set))
		return usage_error("%s",
				   "--firewalld-zone and --nft-set are for watching or serve, "
				   "not for get");
	if (cmd->nft_keep_on_exit && !cmd->nft_set)
		return usage_error("%s", "--nft-keep-on-exit needs --nft-set");
	cmd->service.firewalld_zone = cmd->firewalld_zone;
	cmd->service.nft_set = cmd->nft_set;
	cmd->service.nft_keep_on_exit = cmd->nft_keep_on_exit;
	/* firewalld filters the namespace it runs in: a port of another is not its business. */
	if (cmd->firewalld_zone && teredo_selection_all_netns(cmd->sel))
		return usage_error("%s", "--firewalld-zone keeps the zone of the firewalld of this "
					 "network namespace: not with --all-netns");
	if (!cmd->service.socket_path)
		cmd->service.socket_path = serve_socket_path();
	if (teredo_selection_check(cmd->sel))
		return usage_error("%s", teredo_observer_last_error());
	return EXIT_OK;
}

/*
 * Local time in RFC 3339, with its offset from UTC, so that a line read
 * elsewhere (a journal, another machine) says when it was:
 * 2026-12-02T04:33:03.123+01:00. Empty if the clock cannot be read.
 */
static void format_time(char *buf, size_t len)
{
	struct timespec now;
	struct tm tm;
	long off;
	size_t n;

	buf[0] = '\0';
	if (clock_gettime(CLOCK_REALTIME, &now) || !localtime_r(&now.tv_sec, &tm))
		return;
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	if (!n)
		return;
	off = tm.tm_gmtoff < 0 ? -tm.tm_gmtoff : tm.tm_gmtoff;
	snprintf(buf + n, len - n, ".%03ld%c%02ld:%02ld", now.tv_nsec / 1000000,
		 tm.tm_gmtoff < 0 ? '-' : '+', off / 3600, off / 60 % 60);
}

/* The status to exit with: a reader that went away (EPIPE) ends us quietly. */
static int output_error(int err)
{
	if (err == EPIPE)
		return EXIT_OK;
	fprintf(stderr, "teredo-observer: cannot write to standard output: %s\n", strerror(err));
	return EXIT_FAILURE_;
}

/* A stop request ends a watch; get, over at once anyway, prints what it found. */
static bool stopping(const struct command *cmd)
{
	return cmd->wait_mask && stop_requested;
}

/*
 * write() with SIGINT/SIGTERM let through, as ppoll() does: blocked, they
 * could not interrupt a write to a reader that stopped reading (their handler
 * has no SA_RESTART while watching, so write() returns EINTR instead).
 */
static ssize_t write_interruptible(const struct command *cmd, const char *buf, size_t len)
{
	sigset_t held;
	ssize_t n = -1;
	int err = EINTR;

	if (!cmd->wait_mask)
		return write(STDOUT_FILENO, buf, len);
	if (sigprocmask(SIG_SETMASK, cmd->wait_mask, &held))
		return -1;
	/* A stop that came in just now: no write that might block. */
	if (!stop_requested) {
		n = write(STDOUT_FILENO, buf, len);
		err = errno;
	}
	if (sigprocmask(SIG_SETMASK, &held, NULL))
		return -1;
	errno = err;
	return n;
}

/*
 * Write all of a line to stdout now (scripts wait for it), never through
 * stdio's buffer. Room is waited for in ppoll(), where a stop request gets
 * through, so a full pipe holds us only until we are asked to stop.
 * KEEP_WATCHING, or the status to exit with.
 */
static int write_output(const struct command *cmd, const char *buf, size_t len)
{
	struct pollfd pfd = { .fd = STDOUT_FILENO, .events = POLLOUT };
	ssize_t n;

	while (len > 0 && !stopping(cmd)) {
		if (ppoll(&pfd, 1, NULL, cmd->wait_mask) < 0) {
			if (errno == EINTR)
				continue;
			return output_error(errno);
		}
		/* POLLERR, the reader gone, is left to write() to report as EPIPE. */
		n = write_interruptible(cmd, buf, len);
		if (n < 0 && errno != EINTR && errno != EAGAIN)
			return output_error(errno);
		if (n > 0) {
			buf += n;
			len -= (size_t)n;
		}
	}
	return stopping(cmd) ? EXIT_OK : KEEP_WATCHING;
}

/*
 * For people, only what is known: an initial event has no port before it,
 * and with no client running no process either ("initial port 0").
 */
static void print_human_event(FILE *f, const struct teredo_port_event *ev, const char *when)
{
	bool initial = ev->type == TEREDO_PORT_INITIAL;
	bool more = !initial || ev->pid > 0 || ev->comm[0] || ev->netns;

	/* The port in a column when more follows; no trailing blanks. */
	fprintf(f, "%s %-7s port %-*u", when, teredo_port_event_type_name(ev->type), more ? 5 : 0,
		ev->port);
	if (!initial)
		fprintf(f, " (was %u)", ev->old_port);
	if (ev->pid > 0)
		fprintf(f, " pid %d", (int)ev->pid);
	if (ev->comm[0])
		fprintf(f, " comm %.*s", (int)sizeof(ev->comm), ev->comm);
	if (ev->netns)
		fprintf(f, " netns %u", ev->netns);
	fputc('\n', f);
}

/*
 * The event's line, in memory (malloc'd into *line, *len bytes) to be written
 * by write_output(). 0, or -errno.
 */
static int format_event(const struct command *cmd, const struct teredo_port_event *ev, char **line,
			size_t *len)
{
	char when[64];
	FILE *f;

	format_time(when, sizeof(when));
	/* The service's encoder (the library's): the same fields, the same bytes of comm. */
	if (cmd->json) {
		*line = teredo_event_json_line(ev, when);
		*len = *line ? strlen(*line) : 0;
		return *line ? 0 : -ENOMEM;
	}
	f = open_memstream(line, len);
	if (!f)
		return -errno;
	print_human_event(f, ev, when);
	return fclose(f) ? -errno : 0;
}

static int print_event(const struct command *cmd, const struct teredo_port_event *ev)
{
	char *line = NULL;
	size_t len = 0;
	int status, err;

	err = format_event(cmd, ev, &line, &len);
	if (err) {
		fprintf(stderr, "teredo-observer: cannot format an event: %s\n", strerror(-err));
		status = EXIT_FAILURE_;
	} else {
		status = write_output(cmd, line, len);
	}
	free(line);
	return status;
}

/* Under systemd, `systemctl status` shows the current port. */
static void notify_status(uint16_t port)
{
	char state[64];
	int err;

	snprintf(state, sizeof(state), "STATUS=Teredo port %u%s", port, port ? "" : " (none)");
	err = sd_notify_send(state);
	if (err)
		fprintf(stderr, "teredo-observer: cannot notify systemd: %s\n", strerror(-err));
}

/* Type=notify: ready once the initial state is out, so dependents see it. */
static int notify_ready(void)
{
	int err = sd_notify_send("READY=1");

	if (!err)
		return KEEP_WATCHING;
	fprintf(stderr, "teredo-observer: cannot tell systemd we are ready ($NOTIFY_SOCKET): %s\n",
		strerror(-err));
	return EXIT_FAILURE_;
}

static int handle_event(const struct command *cmd, const struct teredo_port_event *ev)
{
	int status;

	/* The firewall first: it is what the port is waited for by. */
	if (firewall_job_set(cmd->firewall, ev))
		return EXIT_USAGE;
	status = print_event(cmd, ev);

	if (status != KEEP_WATCHING)
		return status;
	notify_status(ev->port);
	/* A failing or hanging command was reported; it never stops the observer. */
	if (cmd->exec.command)
		(void)event_exec_run(&cmd->exec, ev);
	return KEEP_WATCHING;
}

/* Handle every event waiting, in order. KEEP_WATCHING or the exit status. */
static int drain_events(const struct command *cmd, struct teredo_observer *obs)
{
	struct teredo_port_event ev;
	int n, status;

	while (!stop_requested) {
		n = teredo_observer_receive(obs, &ev);
		if (n == 0)
			break;
		if (n < 0) {
			fprintf(stderr, "teredo-observer: %s\n", teredo_observer_last_error());
			return EXIT_FAILURE_;
		}
		status = handle_event(cmd, &ev);
		if (status != KEEP_WATCHING)
			return status;
	}
	return KEEP_WATCHING;
}

/*
 * Wait for events, and for the reader of our stdout to go away: a pipe's
 * write end reports POLLERR then, so `... | head -1` ends us without waiting
 * for the next event to fail to write.
 */
static int wait_events(const struct command *cmd, struct pollfd pfd[3], const sigset_t *wait_mask)
{
	pfd[2].fd = firewall_job_fd(cmd->firewall, &pfd[2].events);
	if (ppoll(pfd, 3, firewall_job_retry_after(cmd->firewall), wait_mask) < 0 &&
	    errno != EINTR) {
		fprintf(stderr, "teredo-observer: poll: %s\n", strerror(errno));
		return EXIT_FAILURE_;
	}
	if (pfd[1].revents & POLLNVAL)
		pfd[1].fd = -1; /* no stdout at all: writing will say so */
	else if (pfd[1].revents & (POLLERR | POLLHUP))
		return EXIT_OK;
	return KEEP_WATCHING;
}

static int watch(const struct command *cmd, struct teredo_observer *obs, const sigset_t *wait_mask)
{
	struct pollfd pfd[3] = {
		{ .fd = teredo_observer_get_fd(obs), .events = POLLIN },
		{ .fd = STDOUT_FILENO, .events = 0 },
		{ .fd = -1 }, /* the firewall's, set before each wait */
	};
	int status;

	/* The observer starts with the initial event queued: print it, then say ready. */
	status = drain_events(cmd, obs);
	if (status == KEEP_WATCHING)
		status = notify_ready();
	while (status == KEEP_WATCHING && !stop_requested) {
		status = wait_events(cmd, pfd, wait_mask);
		firewall_job_service(cmd->firewall);
		if (status == KEEP_WATCHING)
			status = drain_events(cmd, obs);
	}
	return status == KEEP_WATCHING ? EXIT_OK : status;
}

static int run_get(const struct command *cmd)
{
	char line[8];
	uint16_t port;
	int status, found, n;

	found = teredo_get_port(cmd->sel, &port);
	if (found < 0) {
		fprintf(stderr, "teredo-observer: %s\n", teredo_observer_last_error());
		return EXIT_FAILURE_;
	}
	if (!found) {
		fprintf(stderr, "teredo-observer: no Teredo client is running\n");
		return EXIT_NO_CLIENT;
	}
	n = snprintf(line, sizeof(line), "%u\n", port);
	status = write_output(cmd, line, (size_t)n);
	return status == KEEP_WATCHING ? EXIT_OK : status;
}

/*
 * SIGINT/SIGTERM only set a flag: with SA_RESTART while the library loads, so
 * its system calls go on; without once watching, when they stay blocked
 * except inside ppoll() (one arriving just before we wait is not missed) and
 * a write to stdout, which they must interrupt (write_interruptible()).
 */
static int catch_stop_signals(int flags)
{
	struct sigaction sa = { .sa_handler = request_stop, .sa_flags = flags };
	struct sigaction ignore = { .sa_handler = SIG_IGN };

	sigemptyset(&sa.sa_mask);
	sigemptyset(&ignore.sa_mask);
	/* A closed stdout pipe ends us quietly through the write error, not a signal. */
	if (sigaction(SIGINT, &sa, NULL) || sigaction(SIGTERM, &sa, NULL) ||
	    sigaction(SIGPIPE, &ignore, NULL))
		return -errno;
	return 0;
}

static int block_stop_signals(sigset_t *wait_mask)
{
	sigset_t stop;

	sigemptyset(&stop);
	sigaddset(&stop, SIGINT);
	sigaddset(&stop, SIGTERM);
	if (sigprocmask(SIG_BLOCK, &stop, wait_mask))
		return -errno;
	sigdelset(wait_mask, SIGINT);
	sigdelset(wait_mask, SIGTERM);
	return 0;
}

static int serve(struct command *cmd)
{
	sigset_t wait_mask;
	int err = block_stop_signals(&wait_mask);

	if (err) {
		fprintf(stderr, "teredo-observer: sigprocmask: %s\n", strerror(-err));
		return EXIT_FAILURE_;
	}
	return serve_run(cmd->sel, &cmd->service, &stop_requested, &wait_mask);
}

static int observe(struct command *cmd)
{
	struct firewall_job firewall = {
		.zone = cmd->firewalld_zone,
		.nft_set = cmd->nft_set,
		.nft_keep_on_exit = cmd->nft_keep_on_exit,
		.all_netns = teredo_selection_all_netns(cmd->sel),
	};
	struct teredo_observer *obs;
	sigset_t wait_mask;
	int status, err;

	if (teredo_observer_new(cmd->sel, &obs)) {
		fprintf(stderr, "teredo-observer: %s\n", teredo_observer_last_error());
		return EXIT_FAILURE_;
	}
	cmd->firewall = &firewall;
	if (firewall_job_open(&firewall, obs)) {
		teredo_observer_free(obs);
		return EXIT_USAGE;
	}
	teredo_ask_short_slice();
	err = block_stop_signals(&wait_mask);
	if (!err)
		err = catch_stop_signals(0);
	if (err) {
		fprintf(stderr, "teredo-observer: cannot handle SIGINT and SIGTERM: %s\n",
			strerror(-err));
		status = EXIT_FAILURE_;
	} else {
		cmd->wait_mask = &wait_mask;
		cmd->exec.stop = &stop_requested;
		cmd->exec.wait_mask = &wait_mask;
		status = watch(cmd, obs, &wait_mask);
	}
	/* Fail closed: the port goes with us (unless we die by SIGKILL). */
	if (firewall_job_close(&firewall) && status == EXIT_OK)
		status = EXIT_FAILURE_;
	teredo_observer_free(obs);
	return status;
}

/*
 * A standard fd closed at start (`teredo-observer >&-`) would be taken by the
 * first file we open, a BPF object perhaps, and our output would go there.
 * /dev/null takes its place. 0, or -errno.
 */
static int occupy_standard_fds(void)
{
	for (int fd = STDIN_FILENO; fd <= STDERR_FILENO; fd++) {
		if (fcntl(fd, F_GETFD) >= 0 || errno != EBADF)
			continue;
		/* The lowest free fd: this one, as those below are taken. */
		if (open("/dev/null", O_RDWR) < 0)
			return -errno;
	}
	return 0;
}

static int run(struct command *cmd)
{
	int err = catch_stop_signals(SA_RESTART);

	if (err) {
		fprintf(stderr, "teredo-observer: sigaction: %s\n", strerror(-err));
		return EXIT_FAILURE_;
	}
	if (cmd->serve)
		return serve(cmd);
	return cmd->get ? run_get(cmd) : observe(cmd);
}

int main(int argc, char **argv)
{
	struct command cmd = { 0 };
	bool done;
	int status, err;

	err = occupy_standard_fds();
	if (err) {
		fprintf(stderr,
			"teredo-observer: cannot open /dev/null for a closed standard fd: %s\n",
			strerror(-err));
		return EXIT_FAILURE_;
	}
	teredo_observer_no_own_copy_notice();
	status = parse_args(&cmd, argc, argv, &done);
	if (status == EXIT_OK && !done)
		status = run(&cmd);
	teredo_selection_free(cmd.sel);
	return status;
}
