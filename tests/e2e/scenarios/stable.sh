# shellcheck shell=bash
# NotifyStableUnicastIpAddressTable on Miredo's qualification (issue 12):
# Miredo started while its server is down makes its `teredo` interface,
# down and without address; the table is not stable. Once miredo-server runs,
# Miredo qualifies within seconds (it retries every 4 s for 12 s, then waits
# much longer: the server is started well within that) and the pending
# request calls back once with the address `ip -6 addr` shows.
#
# stable_table_client prints JSON lines; unicast_rows.py compares its rows
# with `ip -j addr` taken right after, field by field.

ST_CLIENT=${E2E_STABLE_CLIENT:-$E2E_TOP/build/tests/stable_table_client}
ST_ROWS=$E2E_DIR/unicast_rows.py
# Miredo (libteredo/maintain.c) probes its server for about 24 s (cone,
# then restricted: 3 router solicitations 4 s apart each), then says "No
# reply from Teredo server" and sleeps its RestartDelay of 100 s (96 s past
# the last timeout) before the next round. A server started after the first
# round (a slow guest, a busy host) is seen at the next one: up to about
# 120 s after the client's start, so wait that, and a margin.
T_QUALIFY=140
ST_SERVER_START=

# st_has NAME N TEXT...: line N of NAME's output holds every TEXT (flat JSON).
st_has() {
	local line t
	line=$(sed -n "${2}p" "$WORK/$1.out")
	shift 2
	for t in "$@"; do
		[[ $line == *"$t"* ]] || return 1
	done
}

filetime_now() {
	local ns
	ns=$(date +%s%N)
	echo $((ns / 100 + 116444736000000000))
}

# st_expect_return NAME STATUS TABLE HANDLE: the call's first line.
st_expect_return() {
	local name=$1
	next_line "$name" || return 1
	st_has "$name" "${CURSOR[$name]}" "\"status\": \"$2\"" "\"table\": $3" "\"handle\": $4" ||
		fail "$name: expected status $2, table $3, handle $4" "$name: got $LINE"
}

# st_rows_match NAME SECTION FAMILY [ARGS...]: its rows against `ip -j addr` now.
st_rows_match() {
	local name=$1 section=$2 family=$3 out
	shift 3
	ip -n "$NS_CLI" -j addr >"$WORK/ip-addr.json" || fail "ip -j addr failed" || return 1
	if out=$(python3 "$ST_ROWS" "$WORK/$name.out" "$section" "$family" "$WORK/ip-addr.json" "$@"); then
		info "$name ($family): $out"
		return 0
	fi
	fail "$name ($family): the rows differ from ip -j addr:" "$out"
}

# st_run NAME FAMILY: a one-shot `notify FAMILY` (stable now), waited for.
st_run() {
	start_bg "$1" "$NS_CLI" "$ST_CLIENT" notify "$2"
	if ! poll_until "$T_EVENT" pid_dead "${PID_OF[$1]}"; then
		fail "$1: notify $2 did not return within ${T_EVENT}s"
		return 1
	fi
	wait "${PID_OF[$1]}" 2>/dev/null
}

teredo_link_exists() { ip -n "$NS_CLI" link show teredo >/dev/null 2>&1; }

# The shared server, stopped: its pid leaves the list, never to be signalled again.
stop_server() {
	local pid=$SERVER_PID i
	stop_pid "$pid"
	for i in "${!STARTED_PIDS[@]}"; do
		[[ ${STARTED_PIDS[i]} != "$pid" ]] || unset 'STARTED_PIDS[i]'
	done
	STARTED_PIDS=("${STARTED_PIDS[@]}")
	SERVER_PID=
}

start_server() {
	ST_SERVER_START=$(filetime_now)
	start_bg server "$NS_SRV" miredo-server -f -c "$WORK/server.conf" -p "$WORK/server.pid"
	SERVER_PID=${PID_OF[server]}
	poll_until "$T_START" server_listening ||
		fail "miredo-server did not listen again within ${T_START}s"
}

st_pending() {
	local rc=0
	stop_server
	start_miredo
	poll_until "$T_START" teredo_link_exists ||
		fail "miredo made no teredo interface within ${T_START}s" || return 1
	[[ -z $(teredo_addr "$NS_CLI") ]] ||
		fail "teredo has an address with the server down: $(teredo_addr "$NS_CLI")" || return 1
	start_bg stwait "$NS_CLI" "$ST_CLIENT" notify unspec
	start_bg stcancel "$NS_CLI" "$ST_CLIENT" notify unspec
	st_expect_return stwait ERROR_IO_PENDING false true || rc=1
	st_expect_return stcancel ERROR_IO_PENDING false true || rc=1
	# The IPv4 table does not wait for Teredo: at once, IPv4 rows only.
	st_run st4early inet || rc=1
	st_expect_return st4early NO_ERROR true false || rc=1
	st_rows_match st4early return inet || rc=1
	return $rc
}

st_cancel_early() {
	local rc=0
	kill -USR1 "${PID_OF[stcancel]}" 2>/dev/null || fail "stcancel is not running" || return 1
	next_line stcancel || return 1
	has_lines stwait 2 && fail "stwait: called back before qualification" "$(cat "$WORK/stwait.out")" && rc=1
	st_has stcancel "${CURSOR[stcancel]}" '"event": "cancel", "status": "NO_ERROR"' ||
		fail "stcancel: expected CancelMibChangeNotify2 NO_ERROR" "got $LINE" || rc=1
	return $rc
}

st_qualified() {
	local rc=0 before after
	start_server || return 1
	if ! poll_until "$T_QUALIFY" client_qualified; then
		fail "expected Miredo qualified within ${T_QUALIFY}s of the server's start" \
			"got: $LAST_SEEN" "miredo said: $(tail -n 5 "$WORK/miredo.log" | tr '\n' '|')"
		return 1
	fi
	info "qualified: $TRUTH_ADDR (port $TRUTH_PORT), $(ip -n "$NS_CLI" -6 addr show dev teredo | grep -c inet6) IPv6 addresses on teredo"
	next_line stwait || return 1
	st_has stwait "${CURSOR[stwait]}" '"event": "callback"' ||
		fail "stwait: expected the callback" "got $LINE" || return 1
	after=$(filetime_now)
	before=$ST_SERVER_START
	st_rows_match stwait callback unspec --teredo "$TRUTH_ADDR" \
		--created-after "$((before - 10000000))" --created-before "$after" || rc=1
	# It released its handle, then reports one callback in all.
	poll_until "$T_EVENT" pid_dead "${PID_OF[stwait]}" || fail "stwait did not exit" || rc=1
	grep -q '"event": "cancel", "status": "NO_ERROR"' "$WORK/stwait.out" ||
		fail "stwait: CancelMibChangeNotify2 after the callback was not NO_ERROR" || rc=1
	grep -q '"event": "exit", "callbacks": 1}' "$WORK/stwait.out" ||
		fail "stwait: expected exactly one callback" "$(tail -n 2 "$WORK/stwait.out")" || rc=1
	return $rc
}

st_cancelled_saw_nothing() {
	local rc=0
	kill -TERM "${PID_OF[stcancel]}" 2>/dev/null
	poll_until "$T_STOP" pid_dead "${PID_OF[stcancel]}" || fail "stcancel did not exit" || rc=1
	grep -q '"event": "exit", "callbacks": 0}' "$WORK/stcancel.out" ||
		fail "stcancel: a callback came after its cancel" "$(cat "$WORK/stcancel.out")" || rc=1
	return $rc
}

st_later() {
	local rc=0 ms
	st_run stlater unspec || return 1
	st_expect_return stlater NO_ERROR true false || rc=1
	ms=$(sed -n '1s/.*"call_ms": \([0-9.]*\).*/\1/p' "$WORK/stlater.out")
	info "NO_ERROR in $ms ms"
	awk -v m="$ms" 'BEGIN { exit !(m < 1000) }' || fail "NO_ERROR took $ms ms, not at once" || rc=1
	st_rows_match stlater return unspec --teredo "$TRUTH_ADDR" || rc=1
	return $rc
}

st_families() {
	local rc=0 fam
	for fam in inet inet6; do
		st_run "st$fam" "$fam" || return 1
		st_expect_return "st$fam" NO_ERROR true false || rc=1
		st_rows_match "st$fam" return "$fam" || rc=1
	done
	start_bg stget "$NS_CLI" "$ST_CLIENT" get unspec
	poll_until "$T_EVENT" pid_dead "${PID_OF[stget]}" || fail "get did not return" || return 1
	st_expect_return stget NO_ERROR true false || rc=1
	st_rows_match stget return unspec --teredo "$TRUTH_ADDR" || rc=1
	return $rc
}

group_stable() {
	run_test "server unreachable: ERROR_IO_PENDING (AF_INET: NO_ERROR, IPv4 rows)" st_pending
	run_test "a cancel before qualification: NO_ERROR" st_cancel_early
	run_test "the server starts: one callback, the Teredo address of ip -6 addr" st_qualified
	run_test "the cancelled request had no callback" st_cancelled_saw_nothing
	run_test "a later call: NO_ERROR at once, rows as ip -j addr" st_later
	run_test "AF_INET, AF_INET6, GetUnicastIpAddressTable: rows as ip -j addr" st_families
	end_group stwait stcancel
	[[ -n $SERVER_PID ]] || start_server
}
