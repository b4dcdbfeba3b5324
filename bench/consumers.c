// SPDX-License-Identifier: MIT
/*
 * Consumers: the processes that learn of the Teredo client's binds, each its
 * own way, and tell the driver when (struct report through a pipe). The time
 * is taken first thing where the application would get the event: at the
 * start of the callback, when receive() returns it, when read() returns the
 * line. Telling the driver comes after, so it is not in the measurement.
 *
 * Each runs in a process of its own, forked from the driver before any BPF
 * is loaded there, as a firewall manager or a script would be.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <bpf/libbpf.h>

#include "bench.h"
#include "cgroup2.h"
#include "floor.bpf.skel.h"
#include "floor_event.h"
#include "teredo_netioapi.h"
#include "teredo_observer.h"

#define START_TIMEOUT_MS 60000
#define SERVE_READY_TIMEOUT_MS 20000

/*
 * The process that observes, told in the initial report: this one, or the
 * service it started (so that the driver can read the service's memory).
 */
static pid_t observing_pid;

static int fail(const char *what, const char *why)
{
	fprintf(stderr, "tbench: %s: %s\n", what, why);
	return 1;
}

static void wait_for_end(void)
{
	for (;;)
		pause();
}

/* ---- the floor ---- */

/* The floor with a pipe hop: where it writes its lines, or -1 to report directly. */
static int floor_line_fd = -1;

static int on_floor_event(void *ctx, void *data, size_t size)
{
	uint64_t t = now_ns();
	const struct floor_event *e = data;
	char line[64];
	int len;

	(void)ctx;
	if (size < sizeof(*e))
		return 0;
	if (floor_line_fd < 0) {
		send_report(t, e->ktime_ns, TEREDO_PORT_ADDED, (pid_t)e->pid, e->port);
		return 0;
	}
	/* The least a command printing lines can do: format, one write(). */
	len = snprintf(line, sizeof(line), "%u %u 0 %llu\n", e->pid, e->port,
		       (unsigned long long)e->ktime_ns);
	if (write_full(floor_line_fd, line, (size_t)len))
		_exit(0);
	return 0;
}

/* The empty programs, at the cgroup PATH (from the cgroup2 root) names. */
static int attach_empty_hooks(struct floor_bpf *skel, const char *path)
{
	struct bpf_program *progs[] = {
		skel->progs.floor_empty_bind4,	  skel->progs.floor_empty_bind6,
		skel->progs.floor_empty_release,  skel->progs.floor_empty_send4,
		skel->progs.floor_empty_send6,	  skel->progs.floor_empty_connect4,
		skel->progs.floor_empty_connect6,
	};
	char dir[PATH_MAX];
	int cg, err = 0;

	if (!path || cgroup2_mount_point(dir, sizeof(dir)) ||
	    strlen(dir) + strlen(path) >= sizeof(dir))
		return -EINVAL;
	strcat(dir, path);
	cg = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg < 0)
		return -errno;
	/* Held until the process ends: this consumer does nothing else. */
	for (size_t i = 0; i < sizeof(progs) / sizeof(progs[0]) && !err; i++)
		if (!bpf_program__attach_cgroup(progs[i], cg))
			err = -errno;
	close(cg);
	return err;
}

static int floor_attach(struct floor_bpf *skel, const struct consumer *c)
{
	unsigned int progs = c->floor_progs;
	struct bpf_link *link;
	int cg, err;

	if (progs & FLOOR_SYSCALL_TP) {
		link = bpf_program__attach(skel->progs.floor_connect_enter);
		if (!link)
			return -errno;
		skel->links.floor_connect_enter = link;
	}
	if (progs & FLOOR_OLD_SEND) {
		link = bpf_program__attach(skel->progs.floor_old_send);
		if (!link)
			return -errno;
		skel->links.floor_old_send = link;
	}
	if (progs & FLOOR_EMPTY_HOOKS) {
		err = attach_empty_hooks(skel, c->cgroup);
		if (err)
			return err;
	}
	if (!(progs & (FLOOR_POST_BIND | FLOOR_HEAVY)))
		return 0;
	/* Where the observer attaches, found as it finds it: the cgroup v2 root. */
	cg = cgroup2_root_fd();
	if (cg < 0)
		return cg;
	if (progs & FLOOR_HEAVY) {
		link = bpf_program__attach_cgroup(skel->progs.floor_heavy_bind4, cg);
		skel->links.floor_heavy_bind4 = link;
	} else {
		link = bpf_program__attach_cgroup(skel->progs.floor_post_bind4, cg);
		skel->links.floor_post_bind4 = link;
	}
	err = link ? 0 : -errno;
	close(cg);
	return err;
}

static void set_empty_hooks_autoload(struct floor_bpf *skel, bool load)
{
	struct bpf_program *prog;

	bpf_object__for_each_program(
		prog, skel->obj) if (!strncmp(bpf_program__name(prog), "floor_empty_", 12))
		bpf_program__set_autoload(prog, load);
}

static int run_floor(const struct consumer *c)
{
	struct floor_bpf *skel = floor_bpf__open();
	struct ring_buffer *rb;
	int err;

	if (!skel)
		return fail("floor", "cannot open the BPF object");
	/* NUL-padded: the rest of the rodata is zero. */
	memcpy((char *)skel->rodata->comm_words, c->comm, strnlen(c->comm, COMM_LEN - 1));
	skel->rodata->heavy_update = !(c->floor_progs & FLOOR_NO_UPDATE);
	bpf_program__set_autoload(skel->progs.floor_post_bind4, c->floor_progs & FLOOR_POST_BIND);
	bpf_program__set_autoload(skel->progs.floor_connect_enter,
				  c->floor_progs & FLOOR_SYSCALL_TP);
	bpf_program__set_autoload(skel->progs.floor_old_send, c->floor_progs & FLOOR_OLD_SEND);
	bpf_program__set_autoload(skel->progs.floor_heavy_bind4, c->floor_progs & FLOOR_HEAVY);
	set_empty_hooks_autoload(skel, c->floor_progs & FLOOR_EMPTY_HOOKS);
	err = floor_bpf__load(skel);
	if (!err)
		err = floor_attach(skel, c);
	if (err)
		return fail("floor: load/attach", strerror(-err));
	rb = ring_buffer__new(bpf_map__fd(skel->maps.floor_events), on_floor_event, NULL, NULL);
	if (!rb)
		return fail("floor: ring buffer", strerror(errno));
	if (floor_line_fd >= 0 && write_full(floor_line_fd, "ready\n", 6))
		return 1;
	if (floor_line_fd < 0)
		send_report(now_ns(), 0, TEREDO_PORT_INITIAL, getpid(), 0);
	/* The floor's reader: one thread blocked in epoll_wait on the ring buffer. */
	for (;;) {
		err = ring_buffer__poll(rb, -1);
		if (err < 0 && err != -EINTR)
			return fail("floor: ring buffer poll", strerror(-err));
	}
}

/* ---- the library's faces ---- */

/* The consumer's name (and cgroup, if any); NULL (the library said why) when it cannot be made. */
static struct teredo_selection *selection_for(const struct consumer *c)
{
	struct teredo_selection *sel = teredo_selection_new();

	if (sel && (teredo_selection_add_comm(sel, c->comm) ||
		    (c->cgroup && teredo_selection_set_cgroup(sel, c->cgroup)))) {
		teredo_selection_free(sel);
		sel = NULL;
	}
	return sel;
}

/* Deletes carry port 0 and the port that went away in old_port: report that one. */
static unsigned int reported_port(const struct teredo_port_event *ev)
{
	return ev->type == TEREDO_PORT_DELETED ? ev->old_port : ev->port;
}

static void on_callback(void *ctx, const struct teredo_port_event *ev)
{
	uint64_t t = now_ns();

	(void)ctx;
	send_report(t, ev->ktime_ns, ev->type,
		    ev->type == TEREDO_PORT_INITIAL ? observing_pid : ev->pid, reported_port(ev));
}

static int run_callback(const struct consumer *c)
{
	struct teredo_selection *sel = selection_for(c);
	struct teredo_subscription *sub;
	int err = sel ? teredo_subscribe(sel, on_callback, NULL, true, &sub) : -ENOMEM;

	teredo_selection_free(sel);
	if (err)
		return fail("teredo_subscribe", teredo_observer_last_error());
	wait_for_end();
	return 0;
}

/* ---- through the service: teredo-observer serve, a client of it ---- */

/* Private to this run and this consumer: never the host's service. */
static void service_paths(const char *comm, char *sock, size_t sock_len, char *notify,
			  size_t notify_len)
{
	snprintf(sock, sock_len, "/tmp/tbench-%d-%s.sock", (int)getppid(), comm);
	snprintf(notify, notify_len, "@tbench-notify-%d-%s", (int)getppid(), comm);
}

/* A datagram socket at the abstract address notify ("@name"), as systemd's NOTIFY_SOCKET. */
static int notify_listen(const char *notify)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	size_t n = strlen(notify);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -errno;
	memcpy(sa.sun_path + 1, notify + 1, n - 1);
	if (bind(fd, (struct sockaddr *)&sa,
		 (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n))) {
		int err = -errno;

		close(fd);
		return err;
	}
	return fd;
}

/* The service says READY=1 once its socket takes connections and its state is built. */
static int wait_ready(int fd)
{
	char msg[512];
	ssize_t n;
	int got;

	for (;;) {
		got = wait_readable(fd, SERVE_READY_TIMEOUT_MS);
		if (got <= 0)
			return got ? got : -ETIMEDOUT;
		n = recv(fd, msg, sizeof(msg) - 1, 0);
		if (n < 0)
			return -errno;
		msg[n] = '\0';
		if (strstr(msg, "READY=1"))
			return 0;
	}
}

static pid_t start_service(const struct consumer *c, const struct bench_env *env, const char *sock,
			   const char *notify)
{
	struct spawn_io io = { .in = -1, .out = -1, .err = -1, .fd3 = -1 };
	/* With a cgroup, as the shipped unit runs it: `--cgroup PATH serve`. */
	char *argv[] = { (char *)env->observer,
			 "--socket",
			 (char *)sock,
			 "--comm",
			 (char *)c->comm,
			 c->cgroup ? "--cgroup" : "serve",
			 (char *)c->cgroup,
			 c->cgroup ? "serve" : NULL,
			 NULL };
	int fd = notify_listen(notify), err;
	pid_t pid;

	if (fd < 0) {
		errno = -fd;
		return -1;
	}
	/* What a killed run left; the service will not remove what it did not make. */
	if (unlink(sock) && errno != ENOENT)
		fprintf(stderr, "tbench: cannot remove %s: %s\n", sock, strerror(errno));
	if (setenv("NOTIFY_SOCKET", notify, 1)) {
		close(fd);
		return -1;
	}
	pid = spawn(argv, &io, NULL);
	unsetenv("NOTIFY_SOCKET");
	err = pid < 0 ? -errno : wait_ready(fd);
	close(fd);
	if (err) {
		if (pid > 0)
			proc_stop(pid, 1000);
		errno = -err;
		return -1;
	}
	return pid;
}

/* Stop the service with SIGTERM, so that it removes its socket, then go. */
static int end_with_service(pid_t serve, const char *sock)
{
	sigset_t term;
	int sig;

	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	if (sigwait(&term, &sig))
		return fail("sigwait", "failed");
	proc_stop(serve, 3000);
	(void)unlink(sock); /* gone already unless it was killed */
	_exit(0);
}

static int run_service(const struct consumer *c, const struct bench_env *env)
{
	struct teredo_subscription *sub;
	struct teredo_selection *sel;
	char sock[108], notify[64];
	int err;
	sigset_t term;
	pid_t serve;

	service_paths(c->comm, sock, sizeof(sock), notify, sizeof(notify));
	serve = start_service(c, env, sock, notify);
	if (serve < 0)
		return fail("teredo-observer serve", strerror(errno));
	observing_pid = serve;
	/* Blocked before the library starts its threads: they inherit the mask. */
	sigemptyset(&term);
	sigaddset(&term, SIGTERM);
	if (pthread_sigmask(SIG_BLOCK, &term, NULL) || setenv("TEREDO_OBSERVER_SOCKET", sock, 1) ||
	    setenv("TEREDO_OBSERVER_SOURCE", "service", 1)) {
		proc_stop(serve, 1000);
		return fail("service consumer", "cannot set its signal mask or environment");
	}
	/* The service serves one selection: its own --comm, the same as ours. */
	sel = selection_for(c);
	err = sel ? teredo_subscribe(sel, on_callback, NULL, true, &sub) : -ENOMEM;
	teredo_selection_free(sel);
	if (err) {
		proc_stop(serve, 1000);
		return fail("teredo_subscribe (service)", teredo_observer_last_error());
	}
	return end_with_service(serve, sock);
}

/* Another client of the service a CONSUMER_SERVICE of this comm started (job 2's ten). */
static int run_service_client(const struct consumer *c)
{
	struct teredo_subscription *sub;
	struct teredo_selection *sel;
	char sock[108], notify[64];

	service_paths(c->comm, sock, sizeof(sock), notify, sizeof(notify));
	if (setenv("TEREDO_OBSERVER_SOCKET", sock, 1) ||
	    setenv("TEREDO_OBSERVER_SOURCE", "service", 1))
		return fail("service client", "cannot set its environment");
	sel = selection_for(c);
	if (!sel || teredo_subscribe(sel, on_callback, NULL, true, &sub))
		return fail("teredo_subscribe (service client)", teredo_observer_last_error());
	teredo_selection_free(sel);
	wait_for_end();
	return 0;
}

static VOID on_windows(PVOID ctx, USHORT port, MIB_NOTIFICATION_TYPE type)
{
	uint64_t t = now_ns();

	(void)ctx;
	send_report(t, 0, type, type == MibInitialNotification ? observing_pid : 0, port);
}

static int run_windows(const struct consumer *c)
{
	HANDLE handle;
	DWORD err;

	/* A Windows caller cannot pass options: the environment is the only way. */
	unsetenv("TEREDO_OBSERVER_PID");
	unsetenv("TEREDO_OBSERVER_CGROUP");
	unsetenv("TEREDO_OBSERVER_MATCH_TRAFFIC");
	unsetenv("TEREDO_OBSERVER_ALL_NETNS");
	if (setenv("TEREDO_OBSERVER_COMM", c->comm, 1))
		return fail("setenv", strerror(errno));
	err = NotifyTeredoPortChange(on_windows, NULL, TRUE, &handle);
	if (err != NO_ERROR)
		return fail("NotifyTeredoPortChange", teredo_observer_last_error());
	wait_for_end();
	return 0;
}

static int receive_all(struct teredo_observer *obs)
{
	struct teredo_port_event ev;
	int n;

	while ((n = teredo_observer_receive(obs, &ev)) == 1) {
		uint64_t t = now_ns();

		send_report(t, ev.ktime_ns, ev.type,
			    ev.type == TEREDO_PORT_INITIAL ? observing_pid : ev.pid,
			    reported_port(&ev));
	}
	return n;
}

static int run_fd(const struct consumer *c)
{
	struct epoll_event ev = { .events = EPOLLIN };
	struct teredo_selection *sel = selection_for(c);
	struct teredo_observer *obs;
	int ep, n, err;

	err = sel ? teredo_observer_new(sel, &obs) : -ENOMEM;
	teredo_selection_free(sel);
	if (err)
		return fail("teredo_observer_new", teredo_observer_last_error());
	ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, teredo_observer_get_fd(obs), &ev))
		return fail("epoll", strerror(errno));
	/* An application's own event loop, with the observer's fd in it. */
	for (;;) {
		n = epoll_wait(ep, &ev, 1, -1);
		if (n < 0 && errno != EINTR)
			return fail("epoll_wait", strerror(errno));
		if (receive_all(obs) < 0)
			return fail("teredo_observer_receive", teredo_observer_last_error());
	}
}

/* ---- programs whose stdout lines are the events ---- */

/* `{"type": "add", "port": 4242, "old_port": 0, ..., "pid": 17, ...}` */
static bool parse_json(const char *line, struct report *r)
{
	static const char *const types[] = { "change", "add", "delete", "initial" };
	unsigned int port = 0, old_port = 0;
	unsigned long long ktime = 0;
	const char *p;
	int pid = 0;

	p = strstr(line, "\"type\": \"");
	if (!p)
		return false;
	p += strlen("\"type\": \"");
	r->type = -1;
	for (int i = 0; i < 4; i++)
		if (!strncmp(p, types[i], strlen(types[i])) && p[strlen(types[i])] == '"')
			r->type = i;
	if ((p = strstr(line, "\"port\": ")))
		sscanf(p, "\"port\": %u", &port);
	if ((p = strstr(line, "\"old_port\": ")))
		sscanf(p, "\"old_port\": %u", &old_port);
	if ((p = strstr(line, "\"pid\": ")))
		sscanf(p, "\"pid\": %d", &pid);
	if ((p = strstr(line, "\"ktime_ns\": ")))
		sscanf(p, "\"ktime_ns\": %llu", &ktime);
	r->k_ns = ktime;
	r->port = r->type == TEREDO_PORT_DELETED ? old_port : port;
	r->pid = pid;
	return r->type >= 0;
}

/* `ready` once attached, then `PID PORT RET [KTIME]` per bind (bpftrace, floor+pipe). */
static bool parse_plain(const char *line, struct report *r)
{
	unsigned long long ktime = 0;
	unsigned int port;
	int pid, ret;

	if (!strcmp(line, "ready")) {
		r->type = TEREDO_PORT_INITIAL;
		return true;
	}
	if (sscanf(line, "%d %u %d %llu", &pid, &port, &ret, &ktime) < 3 || ret != 0)
		return false;
	r->type = TEREDO_PORT_ADDED;
	r->pid = pid;
	r->port = port;
	r->k_ns = ktime;
	return true;
}

static bool benign_line(const char *line)
{
	return !strncmp(line, "Attaching ", 10) || strstr(line, "RLIMIT_MEMLOCK") || !line[0];
}

static void handle_line(const struct consumer *c, char *line, uint64_t t, pid_t child)
{
	struct report r = { 0 };
	bool ok = c->kind == CONSUMER_JSON ? parse_json(line, &r) : parse_plain(line, &r);

	if (!ok) {
		if (!benign_line(line))
			fprintf(stderr, "tbench: %s said: %s\n", c->label, line);
		return;
	}
	send_report(t, r.k_ns, r.type, r.type == TEREDO_PORT_INITIAL ? child : r.pid, r.port);
}

/* Split what was read into lines, all read at time t; keep a partial last line. */
static size_t handle_lines(const struct consumer *c, char *buf, size_t len, uint64_t t, pid_t child)
{
	char *start = buf, *nl;

	while ((nl = memchr(start, '\n', len - (size_t)(start - buf)))) {
		*nl = '\0';
		handle_line(c, start, t, child);
		start = nl + 1;
	}
	len -= (size_t)(start - buf);
	memmove(buf, start, len);
	return len;
}

/* The floor in a process of its own, writing lines into out as a command would. */
static pid_t start_floor_lines(const struct consumer *c, int out)
{
	pid_t pid = fork_child();

	if (pid == 0) {
		floor_line_fd = out;
		set_comm("tbcons-flpipe");
		_exit(run_floor(c));
	}
	return pid;
}

/* The bpftrace consumer's program (job 7c compares bpftrace with us). */
void bpftrace_script(const char *comm, char *buf, size_t len)
{
	snprintf(buf, len,
		 "BEGIN { printf(\"ready\\n\"); }\n"
		 "tracepoint:syscalls:sys_enter_bind /comm == \"%s\"/ "
		 "{ @fd[tid] = args->fd + 1; }\n"
		 "tracepoint:syscalls:sys_exit_bind /@fd[tid]/ {\n"
		 "  $f = (struct file *)*(curtask->files->fdt->fd + (@fd[tid] - 1));\n"
		 "  printf(\"%%d %%d %%d\\n\", pid,\n"
		 "    ((struct socket *)$f->private_data)->sk->__sk_common.skc_num, args->ret);\n"
		 "  delete(@fd[tid]);\n"
		 "}\n",
		 comm);
}

static pid_t start_line_program(const struct consumer *c, const struct bench_env *env, int out)
{
	struct spawn_io io = { .in = -1, .out = out, .err = -1, .fd3 = -1 };
	char script[1024];
	char *json_argv[] = {
		(char *)env->observer,	       "--json",	  "--comm", (char *)c->comm,
		c->cgroup ? "--cgroup" : NULL, (char *)c->cgroup, NULL
	};
	char *bt_argv[] = { (char *)env->bpftrace, "-B", "line", "-e", script, NULL };

	if (c->kind == CONSUMER_JSON)
		return spawn(json_argv, &io, NULL);
	if (c->kind == CONSUMER_FLOOR_PIPE)
		return start_floor_lines(c, out);
	bpftrace_script(c->comm, script, sizeof(script));
	/* Its warnings come in the same pipe: we pass on all but the known ones. */
	io.err = out;
	return spawn(bt_argv, &io, NULL);
}

/* The lines' carrier: a pipe, or (a diagnostic of the floor) a unix stream socketpair. */
static int line_carrier(const struct consumer *c, int fds[2])
{
	if (c->kind == CONSUMER_FLOOR_PIPE && (c->floor_progs & FLOOR_LINE_UNIX))
		return socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds);
	return pipe2(fds, O_CLOEXEC);
}

/*
 * The library's service client waits so: poll() on its observer's epoll
 * set, which holds the service source's, which holds the socket. A wake-up
 * through a nested set comes without the writer's hint that it is about to
 * sleep (WF_SYNC), which a reader blocked in read() gets. -1: wait in read().
 */
static int nested_wait_set(const struct consumer *c, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN };
	int inner, outer;

	if (c->kind != CONSUMER_FLOOR_PIPE || !(c->floor_progs & FLOOR_LINE_NESTED))
		return -1;
	inner = epoll_create1(EPOLL_CLOEXEC);
	outer = epoll_create1(EPOLL_CLOEXEC);
	if (inner < 0 || outer < 0 || epoll_ctl(inner, EPOLL_CTL_ADD, fd, &ev) ||
	    epoll_ctl(outer, EPOLL_CTL_ADD, inner, &ev))
		_exit(fail("nested epoll", strerror(errno)));
	return outer;
}

static void wait_nested(int outer)
{
	struct pollfd pfd = { .fd = outer, .events = POLLIN };

	if (outer >= 0 && poll(&pfd, 1, -1) < 0 && errno != EINTR)
		_exit(fail("poll", strerror(errno)));
}

static int run_line_reader(const struct consumer *c, const struct bench_env *env)
{
	char buf[16384];
	size_t len = 0;
	int pipefd[2], outer;
	pid_t child;

	if (line_carrier(c, pipefd))
		return fail("pipe", strerror(errno));
	child = start_line_program(c, env, pipefd[1]);
	if (child < 0)
		return fail("fork", strerror(errno));
	close(pipefd[1]);
	outer = nested_wait_set(c, pipefd[0]);
	/* A script's `while read line`: blocked in read() on the pipe. */
	for (;;) {
		ssize_t n;
		uint64_t t;

		wait_nested(outer);
		n = read(pipefd[0], buf + len, sizeof(buf) - 1 - len);
		t = now_ns();

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return fail(c->label, "its output ended");
		len = handle_lines(c, buf, len + (size_t)n, t, child);
		if (len == sizeof(buf) - 1)
			len = 0; /* a line longer than the buffer: not ours */
	}
}

/* ---- starting, reading, stopping ---- */

static int run_consumer(const struct consumer *c, const struct bench_env *env)
{
	switch (c->kind) {
	case CONSUMER_FLOOR:
		return run_floor(c);
	case CONSUMER_CALLBACK:
		return run_callback(c);
	case CONSUMER_SERVICE:
		return run_service(c, env);
	case CONSUMER_SERVICE_CLIENT:
		return run_service_client(c);
	case CONSUMER_WINDOWS:
		return run_windows(c);
	case CONSUMER_FD:
		return run_fd(c);
	case CONSUMER_JSON:
	case CONSUMER_BPFTRACE:
	case CONSUMER_FLOOR_PIPE:
		return run_line_reader(c, env);
	case CONSUMER_POLL_PROC:
	case CONSUMER_POLL_SS:
		return run_poller(c);
	}
	return 1;
}

static void describe(struct consumer *c)
{
	c->reports_deletes = c->kind == CONSUMER_CALLBACK || c->kind == CONSUMER_WINDOWS ||
			     c->kind == CONSUMER_FD || c->kind == CONSUMER_JSON ||
			     c->kind == CONSUMER_SERVICE || c->kind == CONSUMER_SERVICE_CLIENT;
	c->reports_pid = c->kind != CONSUMER_WINDOWS;
}

/*
 * A consumer is this same program run again (or another build of it, to try
 * a change of the library side by side): `tbench --consumer KIND COMM
 * INTERVAL PROGS`, its reports on fd 3. Exec'd, not just forked, so that its
 * memory and CPU are its own.
 */
static pid_t spawn_consumer(const struct consumer *c, const struct bench_env *env, int fd3)
{
	char kind[16], interval[16], progs[16];
	char *argv[] = { (char *)(c->exe ? c->exe : env->self),
			 "--consumer",
			 kind,
			 (char *)c->comm,
			 interval,
			 progs,
			 (char *)c->cgroup, /* only when set: a variant's tbench takes six */
			 NULL };
	struct spawn_io io = { .in = -1, .out = -1, .err = -1, .fd3 = fd3 };

	snprintf(kind, sizeof(kind), "%d", (int)c->kind);
	snprintf(interval, sizeof(interval), "%u", c->interval_ms);
	snprintf(progs, sizeof(progs), "%u", c->floor_progs);
	return spawn(argv, &io, NULL);
}

int consumer_start(struct consumer *c, const struct bench_env *env)
{
	struct report r;
	int pipefd[2], got;

	describe(c);
	if (pipe2(pipefd, O_CLOEXEC))
		return -errno;
	c->pid = spawn_consumer(c, env, pipefd[1]);
	close(pipefd[1]);
	c->report_fd = pipefd[0];
	if (c->pid < 0) {
		close(pipefd[0]);
		c->report_fd = -1;
		return -errno;
	}
	got = consumer_next(c, &r, START_TIMEOUT_MS);
	if (got == 1 && r.type == TEREDO_PORT_INITIAL) {
		c->observer_pid = r.pid;
		return 0;
	}
	fprintf(stderr, "tbench: %s did not start (%s)\n", c->label,
		got == 1 ? "first event not initial"
		: got	 ? strerror(-got)
			 : "timed out");
	consumer_stop(c);
	return got < 0 ? got : -EIO;
}

/* In the consumer process: argv as spawn_consumer() wrote it. */
int consumer_main(int argc, char **argv, const struct bench_env *env)
{
	struct consumer c = { .label = "consumer" };
	char name[COMM_LEN];

	if (argc < 6 || argc > 7 || strlen(argv[3]) >= COMM_LEN) {
		fprintf(stderr, "tbench --consumer: KIND COMM INTERVAL PROGS [CGROUP] expected\n");
		return 2;
	}
	c.cgroup = argc == 7 ? argv[6] : NULL;
	c.kind = (enum consumer_kind)atoi(argv[2]);
	memcpy(c.comm, argv[3], strlen(argv[3]) + 1);
	c.interval_ms = (unsigned int)atoi(argv[4]);
	c.floor_progs = (unsigned int)atoi(argv[5]);
	/* Ours alone: what this consumer starts (the command, ss) must not hold it. */
	if (fcntl(3, F_SETFD, FD_CLOEXEC))
		return fail("fd 3", strerror(errno));
	report_to(3);
	snprintf(name, sizeof(name), "tbcons-%d", (int)c.kind);
	set_comm(name);
	observing_pid = getpid();
	/*
	 * In-process means our own BPF, even where a service runs on this host
	 * (the automatic choice would take it); the service consumer says so itself.
	 */
	if (setenv("TEREDO_OBSERVER_SOURCE", "kernel", 1))
		return fail("setenv", strerror(errno));
	return run_consumer(&c, env);
}

int consumer_next(struct consumer *c, struct report *r, int timeout_ms)
{
	int err = read_full(c->report_fd, r, sizeof(*r), timeout_ms);

	if (err == -ETIMEDOUT)
		return 0;
	return err ? err : 1;
}

void consumer_drain(struct consumer *c)
{
	struct report r;

	while (wait_readable(c->report_fd, 0) == 1 &&
	       read(c->report_fd, &r, sizeof(r)) == (ssize_t)sizeof(r))
		;
}

void consumer_stop(struct consumer *c)
{
	if (c->pid > 0)
		proc_stop(c->pid, 3000);
	if (c->report_fd >= 0)
		close(c->report_fd);
	c->pid = 0;
	c->report_fd = -1;
}
