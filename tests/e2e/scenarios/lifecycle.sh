# shellcheck shell=bash
# One Teredo client's life, watched from inside its namespace by observers
# started before and after it: the command (--json) and the Windows API.
#
# What miredo 1.2.6 does (checked): SIGHUP makes the parent end its worker
# (which closes the Teredo socket) and only then fork a new one, which binds
# a new ephemeral port; SIGKILL of the worker makes the parent start a new
# one about a second later. Between the two there is no Teredo port at all,
# so the truthful report is "delete" (port 0, old_port P) and then "add" Q,
# never a "change".

LC_PORT=
LC_WORKER=

lc_started_before() {
	local rc=0
	start_observer before "$NS_CLI" || return 1
	start_watcher wbefore "$NS_CLI" || return 1
	expect_initial before 0 || rc=1
	expect_notify wbefore MibInitialNotification 0 || rc=1
	expect_get "$NS_CLI" none || rc=1
	expect_win_get "$NS_CLI" ERROR_NOT_READY || rc=1

	start_miredo
	wait_client_up || return 1
	LC_PORT=$TRUTH_PORT
	LC_WORKER=$TRUTH_WORKER
	expect_event before add "$LC_PORT" 0 "$LC_WORKER" || rc=1
	expect_notify wbefore MibAddInstance "$LC_PORT" || rc=1
	expect_quiet "$T_QUIET" before wbefore || rc=1
	return $rc
}

lc_started_after() {
	local rc=0
	[[ -n $LC_PORT ]] || fail "no running client from the previous test" || return 1
	start_observer after "$NS_CLI" || return 1
	start_watcher wafter "$NS_CLI" || return 1
	expect_initial after "$LC_PORT" "$LC_WORKER" || rc=1
	# Windows passes port 0 with MibInitialNotification; GetTeredoPort gives the port.
	expect_notify wafter MibInitialNotification 0 || rc=1
	expect_get "$NS_CLI" "$LC_PORT" || rc=1
	expect_win_get "$NS_CLI" "$LC_PORT" || rc=1
	client_qualified && [[ $TRUTH_PORT == "$LC_PORT" ]] ||
		fail "the truths moved while nothing was done: $LAST_SEEN" || rc=1
	expect_quiet "$T_QUIET" before wbefore after wafter || rc=1
	return $rc
}

# lc_restarted HOW OLD_PORT OLD_WORKER: after the old worker went, every
# watcher reports its port's delete and then the new port's add.
lc_restarted() {
	local how=$1 old=$2 oldw=$3 rc=0 o w n
	wait_client_up "$oldw" || return 1
	pid_dead "$oldw" || fail "$how: the old worker $oldw still runs" || rc=1
	pid_alive "$MIREDO_PID" || fail "$how: the miredo parent $MIREDO_PID is gone" || rc=1
	LC_PORT=$TRUTH_PORT
	LC_WORKER=$TRUTH_WORKER
	info "$how: port $old (pid $oldw) -> $LC_PORT (pid $LC_WORKER)"
	n=$((${CURSOR[before]:-0} + 1))
	for o in before after; do
		expect_event "$o" delete 0 "$old" "$oldw" || rc=1
		expect_event "$o" add "$LC_PORT" 0 "$LC_WORKER" || rc=1
	done
	[[ $rc != 0 ]] ||
		info "$how: delete -> add $(($(event_ms before $((n + 1))) - $(event_ms before "$n"))) ms apart (kernel time)"
	for w in wbefore wafter; do
		expect_notify "$w" MibDeleteInstance 0 || rc=1
		expect_notify "$w" MibAddInstance "$LC_PORT" || rc=1
	done
	expect_get "$NS_CLI" "$LC_PORT" || rc=1
	expect_win_get "$NS_CLI" "$LC_PORT" || rc=1
	expect_quiet "$T_QUIET" before wbefore after wafter || rc=1
	return $rc
}

lc_sighup() {
	[[ -n $LC_PORT ]] || fail "no running client from the previous test" || return 1
	kill -HUP "$MIREDO_PID" 2>/dev/null || fail "kill -HUP $MIREDO_PID failed: our miredo is not running" || return 1
	lc_restarted SIGHUP "$LC_PORT" "$LC_WORKER"
}

lc_sigkill_worker() {
	[[ -n $LC_PORT ]] || fail "no running client from the previous test" || return 1
	# The worker is a child of the miredo we started (client_qualified checked it).
	kill -KILL "$LC_WORKER" 2>/dev/null || fail "kill -KILL $LC_WORKER failed: the worker is not running" || return 1
	lc_restarted "SIGKILL of the worker" "$LC_PORT" "$LC_WORKER"
}

# stop_watcher NAME: SIGTERM makes it call CancelMibChangeNotify2; it then
# says how many callbacks it had and exits 0.
stop_watcher() {
	local name=$1 pid=${PID_OF[$1]} rc calls
	kill -TERM "$pid" 2>/dev/null
	if ! poll_until "$T_STOP" pid_dead "$pid"; then
		stop_pid "$pid"
		fail "$name: expected to end within ${T_STOP}s of SIGTERM (CancelMibChangeNotify2)"
		return 1
	fi
	wait "$pid"
	rc=$?
	calls=$(grep -c '^notify ' "$WORK/$name.out")
	next_line "$name" 1 || return 1
	[[ $rc == 0 && $LINE == "cancelled after $calls calls" ]] && return 0
	fail "$name: expected 'cancelled after $calls calls' and exit 0" \
		"got '$LINE', exit $rc, stderr '$(tr '\n' '|' <"$WORK/$name.err")'"
}

lc_stopped() {
	local rc=0 old=$LC_PORT oldw=$LC_WORKER o
	[[ -n $LC_PORT ]] || fail "no running client from the previous test" || return 1
	stop_miredo || rc=1
	MIREDO_PID=
	for o in before after; do
		expect_event "$o" delete 0 "$old" "$oldw" || rc=1
	done
	expect_notify wbefore MibDeleteInstance 0 || rc=1
	expect_notify wafter MibDeleteInstance 0 || rc=1
	expect_get "$NS_CLI" none || rc=1
	expect_win_get "$NS_CLI" ERROR_NOT_READY || rc=1
	expect_quiet "$T_QUIET" before wbefore after wafter || rc=1
	stop_watcher wbefore || rc=1
	stop_watcher wafter || rc=1
	return $rc
}

group_lifecycle() {
	run_test "observer started before miredo: initial 0, then add P" lc_started_before
	run_test "observer started after miredo: initial P, GetTeredoPort P" lc_started_after
	run_test "SIGHUP to miredo's parent: delete P, then add Q" lc_sighup
	run_test "SIGKILL of the worker: delete Q, then add R from the new worker" lc_sigkill_worker
	run_test "miredo stopped: delete, get exits 3, ERROR_NOT_READY" lc_stopped
	end_group before wbefore after wafter
}
