// SPDX-License-Identifier: MIT
/*
 * Subscriptions at scale (tests/stress/subscription_stress.c), their sharing
 * of one loaded copy of the programs, and the native callback API.
 */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <dirent.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <errno.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <pthread.h>
#include <pwd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "actor.h"
#include "observe.h"
#include "teredo_netioapi.h"
#include "teredo_observer.h"

TestSuite(subscriptions, .fini = fixture_teardown, .timeout = 180);

static VOID ignore_call(PVOID ctx, USHORT port, MIB_NOTIFICATION_TYPE type)
{
	(void)ctx;
	(void)port;
	(void)type;
}

/* The scenario lives in a program of its own, which ThreadSanitizer also runs. */
Test(subscriptions, hundreds_from_many_threads_each_get_every_event)
{
	int status;

	need_root();
	status = system(SUBSCRIPTION_STRESS);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0,
		  "subscription-stress failed (status %d): see its output above", status);
}

static int bpf_program_fds(void)
{
	char link[64], path[300];
	struct dirent *d;
	DIR *dir = opendir("/proc/self/fd");
	int n = 0;

	cr_assert_not_null(dir);
	while ((d = readdir(dir))) {
		ssize_t len;

		snprintf(path, sizeof(path), "/proc/self/fd/%s", d->d_name);
		len = readlink(path, link, sizeof(link) - 1);
		if (len <= 0)
			continue;
		link[len] = '\0';
		if (!strcmp(link, "anon_inode:bpf-prog"))
			n++;
	}
	closedir(dir);
	return n;
}

Test(subscriptions, one_loaded_copy_serves_every_registration)
{
	HANDLE a, b;
	int loaded;

	need_root();
	cr_assert_eq(bpf_program_fds(), 0);
	cr_assert_eq(NotifyTeredoPortChange(ignore_call, NULL, TRUE, &a), NO_ERROR);
	loaded = bpf_program_fds();
	cr_assert_gt(loaded, 0, "the first registration loads the programs");
	cr_assert_eq(NotifyTeredoPortChange(ignore_call, NULL, FALSE, &b), NO_ERROR);
	cr_assert_eq(bpf_program_fds(), loaded, "the second shares them");
	cr_assert_eq(CancelMibChangeNotify2(a), NO_ERROR);
	cr_assert_eq(bpf_program_fds(), loaded, "still in use by the second");
	cr_assert_eq(CancelMibChangeNotify2(b), NO_ERROR);
	cr_assert_eq(bpf_program_fds(), 0, "the last cancel detaches and unloads");
}

struct native_log {
	pthread_mutex_t lock;
	struct teredo_port_event evs[8];
	int n;
};

static void log_native(void *ctx, const struct teredo_port_event *ev)
{
	struct native_log *log = ctx;

	pthread_mutex_lock(&log->lock);
	if (log->n < 8)
		log->evs[log->n++] = *ev;
	pthread_mutex_unlock(&log->lock);
}

static int logged(struct native_log *log)
{
	int n;

	pthread_mutex_lock(&log->lock);
	n = log->n;
	pthread_mutex_unlock(&log->lock);
	return n;
}

Test(subscriptions, native_callback_with_full_detail)
{
	struct native_log log = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct teredo_subscription *sub;
	struct teredo_selection *o;
	long port;

	need_root();
	client = actor_start("miredo");
	port = actor_new_bound(client, "socket6");
	o = new_selection();
	cr_assert_eq(teredo_subscribe(o, log_native, &log, true, &sub), 0, "%s",
		     teredo_observer_last_error());
	for (int i = 0; i < 500 && logged(&log) < 1; i++)
		usleep(10 * 1000);
	cr_assert_eq(log.evs[0].type, TEREDO_PORT_INITIAL);
	cr_assert_eq(log.evs[0].port, port, "the native initial event carries the current port");
	actor_do(client, "close");
	for (int i = 0; i < 500 && logged(&log) < 2; i++)
		usleep(10 * 1000);
	cr_assert_eq(log.evs[1].type, TEREDO_PORT_DELETED);
	cr_assert_eq(log.evs[1].old_port, port);
	cr_assert_eq(log.evs[1].pid, client->pid);
	cr_assert_eq(log.evs[1].family, AF_INET6);
	cr_assert_eq(log.evs[1].netns, own_netns());
	cr_assert_eq(teredo_unsubscribe(sub), 0);
	cr_assert_eq(teredo_unsubscribe(sub), -EBADF);
	cr_assert_eq(teredo_unsubscribe(NULL), -EINVAL);
	cr_assert_eq(teredo_subscribe(o, NULL, NULL, true, &sub), -EINVAL);
	cr_assert_null(sub);
}

/* The first event of log, waiting for it; false when none came in time. */
static bool first_logged(struct native_log *log, struct teredo_port_event *ev, int want)
{
	for (int i = 0; i < EVENT_TIMEOUT_MS / 10 && logged(log) < want; i++)
		usleep(10 * 1000);
	pthread_mutex_lock(&log->lock);
	if (log->n >= want)
		*ev = log->evs[want - 1];
	pthread_mutex_unlock(&log->lock);
	return logged(log) >= want;
}

/*
 * Two registrations in one process whose selections differ only in the
 * users: each must see its own client. Sharing one loaded copy is only
 * right for equal selections; a narrower one joining a wider one's copy
 * would report a port its selection excludes.
 */
Test(subscriptions, registrations_with_other_users_see_only_their_client)
{
	struct native_log root_log = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct native_log nobody_log = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct teredo_subscription *as_root, *as_nobody;
	struct teredo_selection *root_sel, *nobody_sel;
	struct teredo_port_event ev;
	uint16_t port;
	long root_port, nobody_port;

	need_root();
	if (!getpwnam("nobody"))
		cr_skip_test("no user nobody to act as an ordinary user");
	client = actor_start("miredo");
	root_port = actor_new_bound(client, "socket4");
	other = actor_start_as(NULL, "miredo", "nobody");
	nobody_port = actor_new_bound(other, "socket4");
	root_sel = new_selection();
	nobody_sel = new_selection();
	cr_assert_eq(teredo_selection_add_user(nobody_sel, "nobody"), 0, "%s",
		     teredo_observer_last_error());

	cr_assert_eq(teredo_subscribe(root_sel, log_native, &root_log, true, &as_root), 0, "%s",
		     teredo_observer_last_error());
	cr_assert_eq(teredo_subscribe(nobody_sel, log_native, &nobody_log, true, &as_nobody), 0,
		     "%s", teredo_observer_last_error());
	cr_assert(first_logged(&root_log, &ev, 1), "no initial event for the default users");
	cr_assert_eq(ev.port, root_port, "the default users' client is root's");
	cr_assert(first_logged(&nobody_log, &ev, 1), "no initial event for user nobody");
	cr_assert_eq(ev.port, nobody_port,
		     "the registration for nobody sees nobody's client (%ld), not root's (%ld)",
		     nobody_port, root_port);
	cr_assert_eq(teredo_get_port(nobody_sel, &port), 1);
	cr_assert_eq(port, nobody_port, "teredo_get_port answers from nobody's selection");
	cr_assert_eq(teredo_get_port(root_sel, &port), 1);
	cr_assert_eq(port, root_port);

	actor_do(other, "close");
	cr_assert(first_logged(&nobody_log, &ev, 2), "nobody's client closing is not reported");
	cr_assert_eq(ev.type, TEREDO_PORT_DELETED);
	cr_assert_eq(ev.old_port, nobody_port);
	cr_assert_eq(logged(&root_log), 1, "root's registration saw nobody's close");
	cr_assert_eq(teredo_unsubscribe(as_nobody), 0);
	cr_assert_eq(teredo_unsubscribe(as_root), 0);
}

static long elapsed_ms(const struct timespec *since)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (now.tv_sec - since->tv_sec) * 1000 + (now.tv_nsec - since->tv_nsec) / 1000000;
}

struct slow_registration {
	struct teredo_selection *sel;
	struct teredo_subscription *sub;
	int err;
};

static void *register_slowly(void *arg)
{
	struct slow_registration *r = arg;

	r->err = teredo_subscribe(r->sel, log_native, NULL, false, &r->sub);
	return NULL;
}

/* A listening socket at path that never answers: a service stuck before its first reply. */
static int silent_service(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	cr_assert(fd >= 0);
	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof(a)), 0, "bind %s: %s", path,
		     strerror(errno));
	cr_assert_eq(listen(fd, 4), 0);
	return fd;
}

/*
 * Issue 16, item 7: while one registration's hub is being made (here its
 * service takes its time to answer, as it may for up to 5 s), another
 * registration's teredo_get_port and cancel must not wait for it.
 */
Test(subscriptions, a_slow_hub_creation_blocks_no_other_registration)
{
	struct native_log log = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct slow_registration slow = { 0 };
	struct teredo_subscription *fast;
	struct teredo_selection *o;
	struct timespec t0;
	char dir[64], path[96];
	pthread_t thread;
	uint16_t port;
	int listener, conn;
	long ms;

	need_root();
	setenv("TEREDO_OBSERVER_SOURCE", "kernel", 1);
	o = new_selection();
	cr_assert_eq(teredo_subscribe(o, log_native, &log, false, &fast), 0, "%s",
		     teredo_observer_last_error());
	snprintf(dir, sizeof(dir), "/tmp/races-slow-hub-%d", getpid());
	cr_assert_eq(mkdir(dir, 0700), 0, "mkdir %s: %s", dir, strerror(errno));
	snprintf(path, sizeof(path), "%s/sock", dir);
	listener = silent_service(path);
	setenv("TEREDO_OBSERVER_SOURCE", "service", 1);
	setenv("TEREDO_OBSERVER_SOCKET", path, 1);
	slow.sel = new_selection();
	cr_assert_eq(teredo_selection_add_user(slow.sel, "nobody"), 0); /* a hub of its own */
	cr_assert_eq(pthread_create(&thread, NULL, register_slowly, &slow), 0);
	conn = accept(listener, NULL, NULL); /* it waits for our first reply now */
	cr_assert(conn >= 0);

	clock_gettime(CLOCK_MONOTONIC, &t0);
	cr_assert_geq(teredo_get_port(o, &port), 0, "%s", teredo_observer_last_error());
	ms = elapsed_ms(&t0);
	cr_expect_lt(ms, 1000, "teredo_get_port waited %ld ms for another hub's creation", ms);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	cr_assert_eq(teredo_unsubscribe(fast), 0);
	ms = elapsed_ms(&t0);
	cr_expect_lt(ms, 1000, "a cancel waited %ld ms for another hub's creation", ms);

	close(conn); /* the slow registration fails now: its service went away */
	pthread_join(thread, NULL);
	close(listener);
	unlink(path);
	rmdir(dir);
	unsetenv("TEREDO_OBSERVER_SOCKET");
	unsetenv("TEREDO_OBSERVER_SOURCE");
	cr_assert_neq(slow.err, 0, "a registration through a service that hung up worked");
}

struct slow_log {
	struct native_log log;
	int sleep_ms; /* each call sleeps this long, after logging */
};

static void log_slowly(void *ctx, const struct teredo_port_event *ev)
{
	struct slow_log *slow = ctx;

	log_native(&slow->log, ev);
	usleep(slow->sleep_ms * 1000);
}

/*
 * Issue 16, item 8: one registration's callback blocks for seconds; another
 * registration of the same process (the same options: one shared copy) gets
 * its calls meanwhile, and the slow one still gets all of its own, in order.
 */
Test(subscriptions, a_slow_callback_delays_no_other_registration)
{
	struct slow_log slow = { .log = { .lock = PTHREAD_MUTEX_INITIALIZER }, .sleep_ms = 3000 };
	struct native_log fast_log = { .lock = PTHREAD_MUTEX_INITIALIZER };
	struct teredo_subscription *slow_sub, *fast_sub;
	struct teredo_port_event ev;
	struct teredo_selection *o;
	struct timespec t0;
	long port, ms;

	need_root();
	o = new_selection();
	cr_assert_eq(teredo_subscribe(o, log_slowly, &slow, false, &slow_sub), 0, "%s",
		     teredo_observer_last_error());
	cr_assert_eq(teredo_subscribe(o, log_native, &fast_log, false, &fast_sub), 0, "%s",
		     teredo_observer_last_error());
	client = actor_start("miredo");
	port = actor_new_bound(client, "socket4");
	cr_assert(first_logged(&slow.log, &ev, 1), "the slow registration got nothing");
	clock_gettime(CLOCK_MONOTONIC, &t0); /* its callback sleeps from now on */
	actor_do(client, "close");
	cr_assert(first_logged(&fast_log, &ev, 2), "the other registration got no DELETED");
	ms = elapsed_ms(&t0);
	cr_expect_lt(ms, 1500, "the other registration waited %ld ms for a slow callback", ms);
	cr_assert_eq(ev.type, TEREDO_PORT_DELETED);
	cr_assert(first_logged(&slow.log, &ev, 2), "the slow registration lost its DELETED");
	cr_assert_eq(ev.type, TEREDO_PORT_DELETED);
	cr_assert_eq(ev.old_port, port);
	cr_assert_eq(slow.log.evs[0].type, TEREDO_PORT_ADDED, "the slow one's calls out of order");
	cr_assert_eq(teredo_unsubscribe(fast_sub), 0);
	cr_assert_eq(teredo_unsubscribe(slow_sub), 0); /* waits for its call in flight */
	cr_assert_eq(logged(&slow.log), 2);
}

/* What a child that opens observers says on its stderr, with TEREDO_OBSERVER_SOURCE=source. */
static void stderr_of_observers(const char *source, char *out, size_t len)
{
	int pipefd[2], status;
	ssize_t n, got = 0;
	pid_t pid;

	cr_assert_eq(pipe(pipefd), 0);
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		struct teredo_observer *a = NULL, *b = NULL;
		uint16_t port;

		dup2(pipefd[1], STDERR_FILENO);
		close(pipefd[0]);
		setenv("TEREDO_OBSERVER_SOCKET", "/nonexistent/teredo-observer.sock", 1);
		if (source)
			setenv("TEREDO_OBSERVER_SOURCE", source, 1);
		else
			unsetenv("TEREDO_OBSERVER_SOURCE");
		/* One look loads no copy that stays: nothing to say about it. */
		if (teredo_get_port(NULL, &port) < 0 || teredo_observer_new(NULL, &a) ||
		    teredo_observer_new(NULL, &b))
			_exit(1);
		teredo_observer_free(a);
		teredo_observer_free(b);
		_exit(0);
	}
	close(pipefd[1]);
	while (got < (ssize_t)len - 1 && (n = read(pipefd[0], out + got, len - 1 - got)) > 0)
		got += n;
	out[got] = '\0';
	close(pipefd[0]);
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0, "the child failed: %s", out);
}

/*
 * Issue 20 item 3: with no service, the root consumers of the host share
 * one attached copy (test_shared_set.c), so one that shares, or makes the
 * copy the next ones share, has nothing to say; the notice is for a copy
 * nobody can share (test_shared_set.c, every place taken).
 */
Test(subscriptions, a_process_that_shares_the_programs_says_nothing)
{
	char out[4096];

	need_root();
	stderr_of_observers(NULL, out, sizeof(out));
	cr_assert_str_eq(out, "", "told, with no service: %s", out);
	stderr_of_observers("kernel", out, sizeof(out));
	cr_assert_str_eq(out, "", "told, asking for the kernel: %s", out);
}
