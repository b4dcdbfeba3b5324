// SPDX-License-Identifier: MIT
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "actor.h"

/* As root: the program itself. As another user: through setpriv, as a real user would be. */
static void exec_actor(const char *exe, const char *user)
{
	struct passwd *pw;
	char uid[16], gid[16];

	if (!user) {
		execl(exe, exe, (char *)NULL);
		_exit(127);
	}
	pw = getpwnam(user);
	if (!pw)
		_exit(126);
	snprintf(uid, sizeof(uid), "%u", (unsigned)pw->pw_uid);
	snprintf(gid, sizeof(gid), "%u", (unsigned)pw->pw_gid);
	execlp("setpriv", "setpriv", "--reuid", uid, "--regid", gid, "--clear-groups", "--", exe,
	       (char *)NULL);
	_exit(127);
}

struct actor *actor_start_as(const char *exe, const char *comm, const char *user)
{
	int in[2], out[2];
	struct actor *a = calloc(1, sizeof(*a));

	cr_assert(a && pipe(in) == 0 && pipe(out) == 0);
	a->pid = fork();
	cr_assert(a->pid >= 0);
	if (a->pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		close(in[1]);
		close(out[0]);
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		exec_actor(exe ? exe : UDP_ACTOR, user);
	}
	close(in[0]);
	close(out[1]);
	a->to = fdopen(in[1], "w");
	a->from = fdopen(out[0], "r");
	cr_assert(a->to && a->from);
	if (comm)
		actor_do(a, "comm %s", comm);
	else
		actor_do(a, "pid"); /* started: the program answers */
	return a;
}

struct actor *actor_start(const char *comm)
{
	return actor_start_as(NULL, comm, NULL);
}

long actor_do(struct actor *a, const char *fmt, ...)
{
	char line[256], word[32];
	long value = 0;
	va_list ap;

	va_start(ap, fmt);
	vfprintf(a->to, fmt, ap);
	va_end(ap);
	fputc('\n', a->to);
	fflush(a->to);
	cr_assert(fgets(line, sizeof(line), a->from), "udp-actor gave no answer");
	if (!strncmp(line, "ok", 2))
		return 0;
	cr_assert_eq(sscanf(line, "%31s %ld", word, &value), 2, "udp-actor said: %s", line);
	cr_assert(strcmp(word, "error"), "udp-actor said: %s", line);
	return value;
}

long actor_new_bound(struct actor *a, const char *socket_cmd)
{
	actor_do(a, "%s", socket_cmd);
	return actor_do(a, "bind 0");
}

void kill_and_wait(pid_t pid)
{
	kill(pid, SIGKILL);
	/* Not our child: wait until the kernel has torn it down. */
	for (int i = 0; i < 2000 && kill(pid, 0) == 0; i++) {
		char path[64], state = 0;
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%d/stat", pid);
		f = fopen(path, "r");
		if (!f)
			break;
		if (fscanf(f, "%*d %*s %c", &state) == 1 && state == 'Z') {
			fclose(f);
			break;
		}
		fclose(f);
		usleep(1000);
	}
}

static void reap(struct actor *a)
{
	waitpid(a->pid, NULL, 0);
	fclose(a->to);
	fclose(a->from);
	free(a);
}

void actor_kill(struct actor *a)
{
	if (!a)
		return;
	kill(a->pid, SIGKILL);
	reap(a);
}

void actor_exit(struct actor *a)
{
	fputs("exit\n", a->to);
	fflush(a->to);
	reap(a);
}
