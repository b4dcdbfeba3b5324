# shellcheck shell=bash
# a_pid, b_pid...: set by start_actor through printf -v.
# shellcheck disable=SC2154,SC2034 # (SC2034: EXIT_RC, PORT are for the suites)
# What the suites that run the command against real processes share: the
# bookkeeping of what a test started (removed, by pid and by name, when it
# ends and on exit), bounded waits, network namespaces, observers and
# udp-actor clients driven through fifos, and the main loop.
#
# Sourced by user/command/tests/run-tests and user/firewall/tests/run-firewalld.
# The suite sets, before sourcing: CMD and ACTOR (absolute paths), NS_PREFIX
# (the start of its namespaces' names, unique to the suite), and may define
# suite_cleanup, run after each test's processes are gone. After its tests
# are defined it calls run_suite TESTS_ARRAY_NAME "$@".

# shellcheck source=tests/helpers/host.sh
. "$(dirname "${BASH_SOURCE[0]}")/host.sh"

WAIT=${WAIT:-15} # seconds: the bound of every wait for something that should happen
# An observer's start includes the verifier's pass over its programs: about
# 2.5 s on the host with --cgroup (the cgroup walk), ten times that under the
# kernel matrix's QEMU/TCG. So its first line has a bound of its own.
START_WAIT=${START_WAIT:-90}
passed=0
failed=0
skipped=0
W= # this run's scratch directory
STAGED= # what user nobody runs, out of the clone (host.sh), for the whole run
NS_SEQ=0
PIDS=()  # processes started by the current test
NSES=()  # network namespaces created by the current test
FDS=()   # fds of fifos opened by the current test
CGROUPS=() # cgroups made by the current test, removed after its processes
FAIL_MSG=


# --- bookkeeping -------------------------------------------------------------

fail() {
	FAIL_MSG="$*"
	return 1
}

# Stop what the current test started, by pid, then its namespaces. Closing
# the fifos ends the actors (end of input); observers end on SIGTERM.
test_cleanup() {
	local pid fd ns cg
	for fd in "${FDS[@]}"; do
		exec {fd}>&-
	done
	for pid in "${PIDS[@]}"; do
		kill -TERM "$pid" 2>/dev/null
	done
	for pid in "${PIDS[@]}"; do
		wait_gone "$pid" 5 || kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	for ns in "${NSES[@]}"; do
		ip netns del "$ns" 2>/dev/null
	done
	for cg in "${CGROUPS[@]}"; do
		rmdir "$cg" 2>/dev/null
	done
	PIDS=()
	NSES=()
	FDS=()
	CGROUPS=()
	if declare -F suite_cleanup >/dev/null; then
		suite_cleanup
	fi
}

on_exit() {
	test_cleanup
	[ -n "$W" ] && rm -rf "$W"
	[ -n "$STAGED" ] && rm -rf "$STAGED"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

run_test() {
	local name=$1
	FAIL_MSG=
	if "$name"; then
		echo "PASS $name"
		passed=$((passed + 1))
	elif [ "$FAIL_MSG" = SKIP ]; then
		skipped=$((skipped + 1))
		if [ "${CI:-}" = true ]; then
			echo "FAIL $name: skipped, and under CI nothing may be skipped"
			failed=$((failed + 1))
		fi
	else
		echo "FAIL $name: ${FAIL_MSG:-failed}"
		failed=$((failed + 1))
		for f in "$W"/obs.err "$W"/obs.out; do
			[ -s "$f" ] && sed "s|^|    ${f##*/}: |" "$f" | head -20
		done
	fi
	test_cleanup
	rm -rf "${W:?}"/*
}

skip() {
	echo "SKIP ${FUNCNAME[1]}: $*"
	FAIL_MSG=SKIP
	return 1
}

# --- waiting, always bounded -------------------------------------------------

# True once pid has exited (a zombie counts as exited), within seconds.
wait_gone() {
	local pid=$1 deadline=$((SECONDS + $2)) state
	while :; do
		state=$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null) || return 0
		[ "$state" = Z ] && return 0
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.05
	done
}

# Wait for pid (our child) to exit and put its status in EXIT_RC.
wait_exit() {
	local pid=$1 secs=${2:-$WAIT}
	EXIT_RC=
	wait_gone "$pid" "$secs" || return 1
	# (quietly: bash would report a killed job)
	{ wait "$pid"; } 2>/dev/null
	EXIT_RC=$?
}

# wait_lines FILE N [SECONDS [PID]]: until FILE has at least N lines. With
# PID, the writer: once it has ended no more can come, so stop waiting (an
# observer that cannot start on this kernel fails its test at once).
wait_lines() {
	local deadline=$((SECONDS + ${3:-$WAIT})) pid=${4:-}
	while [ "$(wc -l 2>/dev/null <"$1" || echo 0)" -lt "$2" ]; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		if [ -n "$pid" ] && ! alive "$pid"; then
			[ "$(wc -l 2>/dev/null <"$1" || echo 0)" -ge "$2" ]
			return
		fi
		sleep 0.05
	done
}

# wait_grep FILE REGEX: until a line of FILE matches.
wait_grep() {
	local deadline=$((SECONDS + ${3:-$WAIT}))
	until grep -Eq -- "$2" "$1" 2>/dev/null; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.05
	done
}

# wait_until COMMAND...: until it succeeds.
wait_until() {
	local deadline=$((SECONDS + WAIT))
	until "$@"; do
		[ "$SECONDS" -lt "$deadline" ] || return 1
		sleep 0.05
	done
}

alive() {
	local state
	state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) && [ "$state" != Z ]
}

# --- namespaces, observers, clients ------------------------------------------

# new_ns VAR: a fresh network namespace with lo up; its name in VAR.
new_ns() {
	local _name=${NS_PREFIX:?}-$$-$((NS_SEQ += 1))
	ip netns add "$_name" || fail "ip netns add $_name failed" || return 1
	NSES+=("$_name")
	ip -n "$_name" link set lo up || fail "lo up in $_name failed$(netns_cause)" || return 1
	printf -v "$1" %s "$_name"
}

ns_inode() {
	stat -L -c %i "/run/netns/$1"
}

# start_observer NS ARGS...: the command in NS, stdout obs.out, stderr
# obs.err, its pid in OBS; returns once the first line (initial) is out.
start_observer() {
	local ns=$1
	shift
	nsenter --net="/run/netns/$ns" "$CMD" "$@" >"$W/obs.out" 2>"$W/obs.err" &
	OBS=$!
	PIDS+=("$OBS")
	wait_lines "$W/obs.out" 1 "$START_WAIT" "$OBS" ||
		fail "no initial line within ${START_WAIT}s, or it ended: $(tr '\n' '|' <"$W/obs.err")"
}

# start_actor_as NAME NS USER EXE: the udp-actor program EXE in NS, run by
# USER ("root", or through setpriv as that user would run it), driven through
# fifos; NAME_pid, NAME_w, NAME_r hold its pid and our ends of its stdin and
# stdout. Its process name is EXE's file name.
start_actor_as() {
	local name=$1 ns=$2 user=$3 exe=$4 w r pid
	local -a as=()
	if [ "$user" != root ]; then
		as=(setpriv --reuid "$(id -u "$user")" --regid "$(id -g "$user")" --clear-groups --)
	fi
	mkfifo "$W/$name.in" "$W/$name.out" || return 1
	nsenter --net="/run/netns/$ns" "${as[@]}" "$exe" <"$W/$name.in" >"$W/$name.out" &
	pid=$!
	PIDS+=("$pid")
	exec {w}>"$W/$name.in" {r}<"$W/$name.out"
	FDS+=("$w" "$r")
	printf -v "${name}_pid" %s "$pid"
	printf -v "${name}_w" %s "$w"
	printf -v "${name}_r" %s "$r"
	actor "$name" pid || return 1
	[[ $REPLY == "pid "* ]] || fail "actor $name did not start: $REPLY"
}

# start_actor NAME NS: a udp-actor renamed miredo in NS, run by root.
start_actor() {
	start_actor_as "$1" "$2" root "$ACTOR" || return 1
	actor "$1" comm miredo || return 1
	[ "$REPLY" = ok ] || fail "actor $1: rename said $REPLY"
}

# actor NAME COMMAND...: one command, its answer in REPLY.
actor() {
	local name=$1 w r
	shift
	w=${name}_w
	r=${name}_r
	echo "$*" >&"${!w}" || return 1
	read -r -t "$WAIT" REPLY <&"${!r}" || fail "actor $name: no answer to '$*'"
}

# bind_actor NAME: a new IPv4 UDP socket bound by the kernel; port in PORT.
bind_actor() {
	actor "$1" socket4 && actor "$1" bind 0 || return 1
	case "$REPLY" in
	"port "[1-9]*) PORT=${REPLY#port } ;;
	*) fail "actor $1: bind said '$REPLY'" ;;
	esac
}

# kill_actor NAME: end it (its sockets go with it) and wait.
kill_actor() {
	local pid=${1}_pid w=${1}_w
	echo exit >&"${!w}"
	wait_exit "${!pid}" && return 0
	kill -KILL "${!pid}" 2>/dev/null
	fail "actor $1 did not exit"
}

# json LINE_NO KEY [FILE]: a member of a JSON line, failing on invalid JSON.
json() {
	python3 -c 'import json, sys
lines = open(sys.argv[1]).read().splitlines()
obj = json.loads(lines[int(sys.argv[2]) - 1])
assert "type" in obj and "port" in obj, "type and port are always there"
print(obj[sys.argv[3]])' "${3:-$W/obs.out}" "$1" "$2"
}

# expect_json LINE_NO TYPE PORT OLD_PORT: that line says so.
expect_json() {
	local got
	got="$(json "$1" type) $(json "$1" port) $(json "$1" old_port)" ||
		fail "line $1 is not JSON: $(sed -n "$1p" "$W/obs.out")" || return 1
	[ "$got" = "$2 $3 $4" ] || fail "line $1: expected '$2 $3 $4', got '$got'"
}


# --- main --------------------------------------------------------------------

# run_suite TESTS_ARRAY_NAME [CMD ACTOR [TEST...]]: every test of the array, or
# those named after the two paths; "N passed, M failed"; the exit status.
run_suite() {
	local -n tests=$1
	local t
	shift
	W=$(mktemp -d "/tmp/${NS_PREFIX:?}.XXXXXX") || exit 1
	export HOOK_DIR=$W
	# User nobody runs the actor: out of the clone, which may be in /root (0700),
	# and out of W, which each test empties.
	STAGED=$(mktemp -d "/tmp/${NS_PREFIX:?}-bin.XXXXXX") && stage_for_others "$STAGED" ACTOR || {
		echo "cannot stage the programs user nobody runs in $STAGED"
		exit 1
	}
	if [ "$(id -u)" != 0 ]; then
		echo "SKIP all: these tests need root (network namespaces, BPF)"
		skipped=${#tests[@]}
		[ "${CI:-}" = true ] && failed=$skipped
	else
		for t in "${tests[@]}"; do
			if [ $# -gt 2 ] && [[ " ${*:3} " != *" $t "* ]]; then
				continue
			fi
			run_test "$t"
		done
	fi
	[ "$skipped" = 0 ] || echo "($skipped skipped)"
	echo "$passed passed, $failed failed"
	[ "$failed" = 0 ]
}
