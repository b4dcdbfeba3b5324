# shellcheck shell=bash
# A fixed BindPort in miredo.conf: that port is reported, and a restart that
# binds the same port again is still a delete and an add.

BIND_PORT=3999 # outside the ephemeral range, so the kernel never picks it
BP_WORKER=

bp_fixed() {
	local rc=0
	write_client_conf "$WORK/client-bindport.conf" "$BIND_PORT" || return 1
	start_observer bind "$NS_CLI" || return 1
	start_watcher wbind "$NS_CLI" || return 1
	expect_initial bind 0 || rc=1
	expect_notify wbind MibInitialNotification 0 || rc=1
	start_miredo "$WORK/client-bindport.conf"
	wait_client_up || return 1
	BP_WORKER=$TRUTH_WORKER
	[[ $TRUTH_PORT == "$BIND_PORT" ]] ||
		fail "miredo with BindPort $BIND_PORT: truths say port $TRUTH_PORT" || return 1
	expect_event bind add "$BIND_PORT" 0 "$BP_WORKER" || rc=1
	expect_notify wbind MibAddInstance "$BIND_PORT" || rc=1
	expect_get "$NS_CLI" "$BIND_PORT" || rc=1
	expect_win_get "$NS_CLI" "$BIND_PORT" || rc=1
	expect_quiet "$T_QUIET" bind wbind || rc=1
	return $rc
}

bp_same_port_again() {
	local rc=0 oldw=$BP_WORKER
	[[ -n $BP_WORKER ]] || fail "no running client from the previous test" || return 1
	kill -HUP "$MIREDO_PID" 2>/dev/null || fail "kill -HUP $MIREDO_PID failed: our miredo is not running" || return 1
	wait_client_up "$oldw" || return 1
	BP_WORKER=$TRUTH_WORKER
	[[ $TRUTH_PORT == "$BIND_PORT" ]] ||
		fail "after SIGHUP with BindPort $BIND_PORT: truths say port $TRUTH_PORT" || rc=1
	expect_event bind delete 0 "$BIND_PORT" "$oldw" || rc=1
	expect_event bind add "$BIND_PORT" 0 "$BP_WORKER" || rc=1
	expect_notify wbind MibDeleteInstance 0 || rc=1
	expect_notify wbind MibAddInstance "$BIND_PORT" || rc=1
	expect_get "$NS_CLI" "$BIND_PORT" || rc=1
	stop_miredo || rc=1
	MIREDO_PID=
	expect_event bind delete 0 "$BIND_PORT" "$BP_WORKER" || rc=1
	expect_notify wbind MibDeleteInstance 0 || rc=1
	expect_quiet "$T_QUIET" bind wbind || rc=1
	return $rc
}

group_bindport() {
	run_test "fixed BindPort $BIND_PORT is reported as that port" bp_fixed
	run_test "SIGHUP with BindPort: delete and add of the same port; then stop" bp_same_port_again
	end_group bind wbind
}
