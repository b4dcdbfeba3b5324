// SPDX-License-Identifier: MIT
/*
 * teredo-observer --exec: one /bin/sh -c per event, in its own process group
 * so that a command that hangs can be killed with everything it started.
 * The observer waits for it (the library keeps queueing events meanwhile),
 * which is what keeps commands one at a time and in order.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <spawn.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "event_exec.h"

extern char **environ;

/* What the command is told, and what it must not inherit from us. */
static const char *const own_vars[] = {
	"TEREDO_EVENT",
	"TEREDO_PORT",
	"TEREDO_OLD_PORT",
	"TEREDO_PID",
	"TEREDO_COMM",
	"TEREDO_NETNS",
	/* Only the observer itself may talk to systemd (NotifyAccess=main). */
	"NOTIFY_SOCKET",
};
#define N_EVENT_VARS 6
#define VAR_LEN 48 /* "TEREDO_COMM=" and 15 characters fit */

struct exec_env {
	char vars[N_EVENT_VARS][VAR_LEN];
	char **envp;
};

/*
 * What /bin/sh runs without looking for a file: its reserved words and
 * builtins, POSIX's and the ones of dash and bash that scripts use most.
 */
static const char *const shell_words[] = {
	".",	  ":",	   "alias",   "bg",    "break",	 "case",  "cd",	     "command",	 "continue",
	"do",	  "done",  "echo",    "elif",  "else",	 "esac",  "eval",    "exec",	 "exit",
	"export", "false", "fc",      "fg",    "fi",	 "for",	  "getopts", "hash",	 "if",
	"in",	  "jobs",  "kill",    "local", "printf", "pwd",	  "read",    "readonly", "return",
	"set",	  "shift", "source",  "test",  "then",	 "times", "trap",    "true",	 "type",
	"ulimit", "umask", "unalias", "unset", "until",	 "wait",  "while",
};

/* Characters of a word the shell takes as it is: no quoting, no expansion. */
#define PLAIN_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-./+,:@%"
#define BLANKS " \t\n"
/* What may follow a command's first word (the terminating NUL too, for strchr). */
#define WORD_ENDS BLANKS ";&|"

static bool is_shell_word(const char *word)
{
	for (size_t i = 0; i < sizeof(shell_words) / sizeof(shell_words[0]); i++)
		if (!strcmp(word, shell_words[i]))
			return true;
	return false;
}

/* 0 when path is a file we may execute, else why not (ENOENT, EISDIR, EACCES...). */
static int executable_file(const char *path)
{
	struct stat st;

	if (stat(path, &st))
		return errno;
	if (S_ISDIR(st.st_mode))
		return EISDIR;
	return access(path, X_OK) ? errno : 0;
}

/* As the shell looks for a command: each directory of path, an empty one being ".". */
static bool found_in_path(const char *name, const char *path)
{
	char file[PATH_MAX];

	for (const char *dir = path;; dir++) {
		size_t n = strcspn(dir, ":");
		int len = snprintf(file, sizeof(file), "%.*s/%s", n ? (int)n : 1, n ? dir : ".",
				   name);

		if (len > 0 && (size_t)len < sizeof(file) && !executable_file(file))
			return true;
		dir += n;
		if (!*dir)
			return false;
	}
}

static int explain_file(const char *file, int err, char *why, size_t len)
{
	switch (err) {
	case 0:
		return 0;
	case ENOENT:
		snprintf(why, len, "--exec: %s does not exist: give the path of a program", file);
		break;
	case EISDIR:
		snprintf(why, len, "--exec: %s is a directory: give the path of a program", file);
		break;
	case EACCES:
		snprintf(why, len, "--exec: %s cannot be executed: chmod +x %s", file, file);
		break;
	default:
		snprintf(why, len, "--exec: %s: %s", file, strerror(err));
	}
	return -1;
}

/*
 * Only a plain first word is checked: one that is quoted, expanded or
 * followed by other syntax (a redirection, a function definition), a
 * builtin, or a name looked up without PATH set, is the shell's to judge,
 * and it will say what is wrong when it runs.
 */
int event_exec_check(const char *command, char *why, size_t len)
{
	const char *word = command + strspn(command, BLANKS);
	size_t n = strspn(word, PLAIN_CHARS);
	char file[PATH_MAX];
	const char *path;

	if (!*word) {
		snprintf(why, len, "--exec needs a command");
		return -1;
	}
	if (!n || !strchr(WORD_ENDS, word[n]) || n >= sizeof(file))
		return 0;
	memcpy(file, word, n);
	file[n] = '\0';
	if (strchr(file, '/'))
		return explain_file(file, executable_file(file), why, len);
	path = getenv("PATH");
	if (is_shell_word(file) || !path || found_in_path(file, path))
		return 0;
	snprintf(why, len,
		 "--exec: %s is not a shell builtin and not found in PATH: give its full path",
		 file);
	return -1;
}

int event_exec_parse_timeout(const char *text, unsigned int *seconds)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(text, &end, 10);
	if (errno || end == text || *end || v < 1 || v > EVENT_EXEC_MAX_TIMEOUT)
		return -EINVAL;
	*seconds = (unsigned int)v;
	return 0;
}

static bool is_own_var(const char *entry)
{
	for (size_t i = 0; i < sizeof(own_vars) / sizeof(own_vars[0]); i++) {
		size_t len = strlen(own_vars[i]);

		if (!strncmp(entry, own_vars[i], len) && entry[len] == '=')
			return true;
	}
	return false;
}

/* Our environment without stale copies of the event variables, then the event's. */
static int build_env(struct exec_env *env, const struct teredo_port_event *ev)
{
	size_t n = 0, i = 0;

	while (environ[n])
		n++;
	env->envp = calloc(n + N_EVENT_VARS + 1, sizeof(*env->envp));
	if (!env->envp)
		return -ENOMEM;
	for (char **e = environ; *e; e++)
		if (!is_own_var(*e))
			env->envp[i++] = *e;
	snprintf(env->vars[0], VAR_LEN, "TEREDO_EVENT=%s", teredo_port_event_type_name(ev->type));
	snprintf(env->vars[1], VAR_LEN, "TEREDO_PORT=%u", ev->port);
	snprintf(env->vars[2], VAR_LEN, "TEREDO_OLD_PORT=%u", ev->old_port);
	snprintf(env->vars[3], VAR_LEN, "TEREDO_PID=%d", (int)ev->pid);
	snprintf(env->vars[4], VAR_LEN, "TEREDO_COMM=%.*s", (int)sizeof(ev->comm), ev->comm);
	snprintf(env->vars[5], VAR_LEN, "TEREDO_NETNS=%u", ev->netns);
	for (int v = 0; v < N_EVENT_VARS; v++)
		env->envp[i++] = env->vars[v];
	return 0;
}

/*
 * The child gets /dev/null as stdin and our stderr as its stdout, so that
 * nothing it prints can break the stream of events (JSON) on our stdout.
 */
static int child_io(posix_spawn_file_actions_t *fa)
{
	int err = posix_spawn_file_actions_addopen(fa, STDIN_FILENO, "/dev/null", O_RDONLY, 0);

	return err ? err : posix_spawn_file_actions_adddup2(fa, STDERR_FILENO, STDOUT_FILENO);
}

/*
 * Its own process group, to be killed as a whole; the signals we block or
 * ignore (SIGPIPE) back at their defaults, as a shell command expects them.
 */
static int child_attributes(posix_spawnattr_t *attr)
{
	sigset_t defaults, none;
	int err;

	sigemptyset(&none);
	sigemptyset(&defaults);
	sigaddset(&defaults, SIGPIPE);
	sigaddset(&defaults, SIGINT);
	sigaddset(&defaults, SIGTERM);
	err = posix_spawnattr_setflags(attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
						     POSIX_SPAWN_SETSIGDEF);
	if (!err)
		err = posix_spawnattr_setpgroup(attr, 0);
	if (!err)
		err = posix_spawnattr_setsigmask(attr, &none);
	return err ? err : posix_spawnattr_setsigdefault(attr, &defaults);
}

static int spawn_shell(const char *command, char **envp, pid_t *pid)
{
	char *argv[] = { "/bin/sh", "-c", (char *)command, NULL };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	int err;

	err = posix_spawn_file_actions_init(&fa);
	if (err)
		return -err;
	err = posix_spawnattr_init(&attr);
	if (err) {
		posix_spawn_file_actions_destroy(&fa);
		return -err;
	}
	err = child_io(&fa);
	if (!err)
		err = child_attributes(&attr);
	if (!err)
		err = posix_spawn(pid, argv[0], &fa, &attr, argv, envp);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	return -err;
}

static int64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Wait for the command's exit, for at most its time. A stop request (SIGINT
 * or SIGTERM to us) passes SIGTERM on to its group, within the same limit.
 * Returns true when its time ran out and the group was killed.
 */
static bool wait_bounded(const struct event_exec *x, pid_t pid, int pidfd)
{
	struct pollfd pfd = { .fd = pidfd, .events = POLLIN };
	int64_t deadline = now_ms() + (int64_t)x->timeout_s * 1000;
	bool asked_to_end = false;

	for (;;) {
		int64_t left = deadline - now_ms();
		struct timespec ts = { .tv_sec = left / 1000, .tv_nsec = left % 1000 * 1000000 };
		int n;

		if (left <= 0)
			break;
		if (x->stop && *x->stop && !asked_to_end) {
			kill(-pid, SIGTERM);
			asked_to_end = true;
		}
		n = ppoll(&pfd, 1, &ts, x->wait_mask);
		if (n > 0)
			return false;
		if (n < 0 && errno != EINTR) {
			fprintf(stderr, "teredo-observer: --exec: waiting for the command: %s\n",
				strerror(errno));
			break;
		}
	}
	kill(-pid, SIGKILL);
	return true;
}

static int reap(pid_t pid, int *status)
{
	while (waitpid(pid, status, 0) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	return 0;
}

static int report(const struct event_exec *x, const struct teredo_port_event *ev, int status,
		  bool timed_out)
{
	const char *type = teredo_port_event_type_name(ev->type);

	if (timed_out)
		fprintf(stderr,
			"teredo-observer: --exec: command for event %s (port %u) still running "
			"after %u s: killed its process group\n",
			type, ev->port, x->timeout_s);
	else if (WIFSIGNALED(status))
		fprintf(stderr,
			"teredo-observer: --exec: command for event %s (port %u) was killed by "
			"signal %d (%s)\n",
			type, ev->port, WTERMSIG(status), strsignal(WTERMSIG(status)));
	else if (WEXITSTATUS(status))
		fprintf(stderr,
			"teredo-observer: --exec: command for event %s (port %u) failed with exit "
			"status %d\n",
			type, ev->port, WEXITSTATUS(status));
	else
		return 0;
	return -1;
}

static int run_child(const struct event_exec *x, const struct teredo_port_event *ev, pid_t pid)
{
	bool timed_out;
	int pidfd, status = 0, err;

	pidfd = pidfd_open(pid, 0);
	if (pidfd < 0) {
		/* Without a way to wait with a limit, do not wait unbounded either. */
		fprintf(stderr, "teredo-observer: --exec: pidfd_open: %s\n", strerror(errno));
		kill(-pid, SIGKILL);
		timed_out = true;
	} else {
		timed_out = wait_bounded(x, pid, pidfd);
		close(pidfd);
	}
	err = reap(pid, &status);
	if (err) {
		fprintf(stderr, "teredo-observer: --exec: waitpid: %s\n", strerror(-err));
		return -1;
	}
	return report(x, ev, status, timed_out);
}

int event_exec_run(const struct event_exec *x, const struct teredo_port_event *ev)
{
	struct exec_env env = { 0 };
	pid_t pid;
	int err;

	err = build_env(&env, ev);
	if (!err)
		err = spawn_shell(x->command, env.envp, &pid);
	free(env.envp);
	if (err) {
		fprintf(stderr, "teredo-observer: --exec: cannot run /bin/sh: %s\n",
			strerror(-err));
		return -1;
	}
	return run_child(x, ev, pid);
}
