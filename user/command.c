// SPDX-License-Identifier: MIT
/*
 * teredo-observer(8): the command root runs to watch the Teredo client's
 * port. A client of the library's native API and nothing more.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "teredo_observer.h"

enum exit_status {
	EXIT_OK = 0,
	EXIT_FAILURE_ = 1,
	EXIT_USAGE = 2,
	EXIT_NO_CLIENT = 3,
};

struct command {
	struct teredo_options opts;
	bool json;
	bool get;
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
		"Usage: teredo-observer [OPTION]... [get]\n"
		"Report the UDP port of the Teredo client (Miredo) and every change to it.\n"
		"\n"
		"  get                 print the current Teredo port and exit (3: no client)\n"
		"  --json              one JSON object per line\n"
		"  --comm NAME         processes named NAME are the client (repeatable;\n"
		"                      default: miredo)\n"
		"  --pid PID           process PID and its children are the client\n"
		"  --cgroup PATH       processes in cgroup v2 PATH are the client\n"
		"  --match-traffic     UDP sockets that send to port 3544 are the client\n"
		"  --all-netns         watch every network namespace, not just this one\n"
		"  -v, --verbose       show libbpf's diagnostics\n"
		"  -h, --help          show this help\n"
		"  -V, --version       show the version\n");
}

static int usage_error(const char *fmt, const char *arg)
{
	fprintf(stderr, "teredo-observer: ");
	fprintf(stderr, fmt, arg);
	fprintf(stderr, "\n");
	usage(stderr);
	return EXIT_USAGE;
}

enum { OPT_JSON = 256, OPT_COMM, OPT_PID, OPT_CGROUP, OPT_MATCH_TRAFFIC, OPT_ALL_NETNS };

static int parse_args(struct command *cmd, int argc, char **argv, bool *done)
{
	static const struct option longopts[] = {
		{ "json", no_argument, NULL, OPT_JSON },
		{ "comm", required_argument, NULL, OPT_COMM },
		{ "pid", required_argument, NULL, OPT_PID },
		{ "cgroup", required_argument, NULL, OPT_CGROUP },
		{ "match-traffic", no_argument, NULL, OPT_MATCH_TRAFFIC },
		{ "all-netns", no_argument, NULL, OPT_ALL_NETNS },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0 },
	};
	bool default_comms = true;
	int c;

	*done = false;
	teredo_options_init(&cmd->opts);
	if (teredo_options_from_env(&cmd->opts))
		return usage_error("%s", teredo_observer_last_error());
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":vhV", longopts, NULL)) != -1) {
		switch (c) {
		case OPT_JSON:
			cmd->json = true;
			break;
		case OPT_COMM:
			if (default_comms)
				cmd->opts.n_comms = 0;
			default_comms = false;
			if (teredo_options_add_comm(&cmd->opts, optarg))
				return usage_error("%s", teredo_observer_last_error());
			break;
		case OPT_PID:
			if (teredo_parse_pid(optarg, &cmd->opts.pid))
				return usage_error("%s", teredo_observer_last_error());
			break;
		case OPT_CGROUP:
			cmd->opts.cgroup = optarg;
			break;
		case OPT_MATCH_TRAFFIC:
			cmd->opts.match_traffic = true;
			break;
		case OPT_ALL_NETNS:
			cmd->opts.all_netns = true;
			break;
		case 'v':
			cmd->opts.verbose = true;
			break;
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
		default:
			return usage_error("unknown option %s", argv[optind - 1]);
		}
	}
	if (optind < argc && strcmp(argv[optind], "get") == 0) {
		cmd->get = true;
		optind++;
	}
	if (optind < argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	return EXIT_OK;
}

static void format_time(char *buf, size_t len)
{
	struct timespec now;
	struct tm tm;
	size_t n;

	clock_gettime(CLOCK_REALTIME, &now);
	localtime_r(&now.tv_sec, &tm);
	n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf + n, len - n, ".%03ld", now.tv_nsec / 1000000);
}

static void print_json_string(const char *s)
{
	putchar('"');
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\')
			printf("\\%c", c);
		else if (c < 0x20)
			printf("\\u%04x", c);
		else
			putchar(c);
	}
	putchar('"');
}

static void print_event(const struct command *cmd, const struct teredo_port_event *ev)
{
	const char *type = teredo_port_event_type_name(ev->type);
	char when[64];

	format_time(when, sizeof(when));
	if (cmd->json) {
		printf("{\"type\": \"%s\", \"port\": %u, \"old_port\": %u, \"family\": \"%s\", "
		       "\"pid\": %d, \"comm\": ",
		       type, ev->port, ev->old_port,
		       ev->family == 10 ? "ipv6" : ev->family == 2 ? "ipv4" : "", (int)ev->pid);
		print_json_string(ev->comm);
		printf(", \"netns\": %u, \"ktime_ns\": %llu, \"cookie\": %llu, \"time\": \"%s\"}\n",
		       ev->netns, (unsigned long long)ev->ktime_ns,
		       (unsigned long long)ev->cookie, when);
	} else {
		printf("%s %-7s port %-5u (was %u) pid %d comm %s netns %u\n", when, type,
		       ev->port, ev->old_port, (int)ev->pid, ev->comm[0] ? ev->comm : "-",
		       ev->netns);
	}
	fflush(stdout);
}

static int run_get(struct teredo_observer *obs)
{
	uint16_t port = teredo_observer_current_port(obs);

	if (!port) {
		fprintf(stderr, "teredo-observer: no Teredo client is running\n");
		return EXIT_NO_CLIENT;
	}
	printf("%u\n", port);
	return EXIT_OK;
}

static int drain_events(const struct command *cmd, struct teredo_observer *obs)
{
	struct teredo_port_event ev;
	int n;

	while ((n = teredo_observer_receive(obs, &ev)) > 0)
		print_event(cmd, &ev);
	if (n < 0)
		fprintf(stderr, "teredo-observer: %s\n", teredo_observer_last_error());
	return n;
}

static int watch(const struct command *cmd, struct teredo_observer *obs)
{
	struct pollfd pfd = { .fd = teredo_observer_get_fd(obs), .events = POLLIN };

	while (!stop_requested) {
		if (drain_events(cmd, obs) < 0)
			return EXIT_FAILURE_;
		if (poll(&pfd, 1, -1) < 0 && errno != EINTR) {
			fprintf(stderr, "teredo-observer: poll: %s\n", strerror(errno));
			return EXIT_FAILURE_;
		}
	}
	return EXIT_OK;
}

static void handle_signals(void)
{
	struct sigaction sa = { .sa_handler = request_stop };

	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	/* A closed stdout pipe ends us quietly through the write error, not a signal. */
	signal(SIGPIPE, SIG_IGN);
}

int main(int argc, char **argv)
{
	struct teredo_observer *obs;
	struct command cmd = { 0 };
	bool done;
	int status;

	status = parse_args(&cmd, argc, argv, &done);
	if (status != EXIT_OK || done)
		return status;
	handle_signals();
	if (teredo_observer_new(&cmd.opts, &obs)) {
		fprintf(stderr, "teredo-observer: %s\n", teredo_observer_last_error());
		return EXIT_FAILURE_;
	}
	status = cmd.get ? run_get(obs) : watch(&cmd, obs);
	teredo_observer_free(obs);
	return status;
}
