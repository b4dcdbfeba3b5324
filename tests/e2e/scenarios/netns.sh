# shellcheck shell=bash
# Scope: observers in other namespaces (a third one, and the server's) see
# nothing of the client; one with --all-netns sees it, each event carrying the
# client's namespace inode.
#
# The --all-netns observer may also see other people's processes named
# miredo elsewhere on the machine (other tests run alongside). Its port is
# the one most recently bound of all it sees, so such strangers can turn our
# delete into a "change" to their port, or hide it. Hence: events that carry
# our inode must match the truths, our new port's arrival must be seen, and
# the exact sequence is asserted only when no stranger showed up.

NS_PORT=
NS_WORKER=
NS_OLD_PORT=
NS_OLD_WORKER=

ns_setup() {
	local rc=0
	start_miredo
	wait_client_up || return 1
	NS_PORT=$TRUTH_PORT
	NS_WORKER=$TRUTH_WORKER
	start_observer oth "$NS_OTH" || return 1
	start_observer srv "$NS_SRV" || return 1
	start_observer all "$NS_OTH" --all-netns || return 1
	expect_initial oth 0 || rc=1
	expect_initial srv 0 || rc=1
	expect_get "$NS_OTH" none || rc=1
	expect_get "$NS_SRV" none || rc=1
	expect_win_get "$NS_OTH" ERROR_NOT_READY || rc=1
	next_line all || return 1
	if [[ $(json_get "$LINE" netns) == "$CLI_NETNS_INODE" ]]; then
		[[ $(json_get "$LINE" type) == initial && $(json_get "$LINE" port) == "$NS_PORT" &&
			$(json_get "$LINE" pid) == "$NS_WORKER" ]] ||
			fail "all: expected initial port $NS_PORT pid $NS_WORKER (our client)" \
				"all: got $LINE" || rc=1
	else
		info "all: initial is not ours (another namespace's client): $LINE"
	fi
	return $rc
}

# all_lines_from N: the --all-netns observer's lines from line N on.
all_lines_from() { sed -n "$1,\$p" "$WORK/all.out"; }

# Have we seen our new port arrive (add or change, our inode, the new worker)?
all_saw_new_port() {
	local l
	while IFS= read -r l; do
		[[ $(json_get "$l" netns) == "$CLI_NETNS_INODE" &&
			$(json_get "$l" port) == "$NS_PORT" &&
			$(json_get "$l" pid) == "$NS_WORKER" ]] && return 0
	done < <(all_lines_from "$1")
	return 1
}

# check_all_lines FROM ALLOWED_PORTS...: every line from FROM that carries
# our inode is an add/change/delete from miredo whose port is among the
# ports the truths showed (or 0). Sets ALL_STRANGERS when other namespaces
# appear.
ALL_STRANGERS=0
check_all_lines() {
	local from=$1 l rc=0 t p
	shift
	local allowed=" 0 $* "
	while IFS= read -r l; do
		if [[ $(json_get "$l" netns) != "$CLI_NETNS_INODE" ]]; then
			ALL_STRANGERS=1
			info "all: from another namespace (ignored): $l"
			continue
		fi
		# Not old_port: with strangers about it can be a stranger's port.
		t=$(json_get "$l" type)
		p=$(json_get "$l" port)
		[[ $t =~ ^(add|change|delete)$ && $allowed == *" $p "* &&
			$(json_get "$l" comm) == miredo ]] ||
			fail "all: expected an event of our client with its port among {${allowed# }}" \
				"all: got $l" || rc=1
	done < <(all_lines_from "$from")
	return $rc
}

ns_restart() {
	local rc=0 from
	[[ -n $NS_PORT ]] || fail "no running client from the previous test" || return 1
	[[ -n ${PID_OF[all]:-} ]] || fail "no --all-netns observer from the previous test" || return 1
	from=$((${CURSOR[all]:-0} + 1))
	NS_OLD_PORT=$NS_PORT
	NS_OLD_WORKER=$NS_WORKER
	kill -HUP "$MIREDO_PID" 2>/dev/null || fail "kill -HUP $MIREDO_PID failed: our miredo is not running" || return 1
	wait_client_up "$NS_OLD_WORKER" || return 1
	NS_PORT=$TRUTH_PORT
	NS_WORKER=$TRUTH_WORKER
	info "SIGHUP: port $NS_OLD_PORT -> $NS_PORT, client netns inode $CLI_NETNS_INODE"
	if ! poll_until "$T_EVENT" all_saw_new_port "$from"; then
		fail "all (--all-netns): expected add/change port $NS_PORT pid $NS_WORKER netns $CLI_NETNS_INODE within ${T_EVENT}s" \
			"all: got: $(all_lines_from "$from" | tr '\n' '|')"
		rc=1
	fi
	check_all_lines "$from" "$NS_OLD_PORT" "$NS_PORT" || rc=1
	if [[ $ALL_STRANGERS == 0 ]]; then
		expect_event all delete 0 "$NS_OLD_PORT" "$NS_OLD_WORKER" || rc=1
		expect_event all add "$NS_PORT" 0 "$NS_WORKER" || rc=1
	else
		info "all: other namespaces' clients seen; exact sequence not asserted"
		CURSOR[all]=$(lines_of all)
	fi
	expect_quiet "$T_QUIET" oth srv || rc=1
	return $rc
}

ns_stop() {
	local rc=0 from
	[[ -n $NS_PORT ]] || fail "no running client from the previous test" || return 1
	[[ -n ${PID_OF[all]:-} ]] || fail "no --all-netns observer from the previous test" || return 1
	from=$((${CURSOR[all]:-0} + 1))
	stop_miredo || rc=1
	MIREDO_PID=
	check_all_lines "$from" "$NS_PORT" || rc=1
	if [[ $ALL_STRANGERS == 0 ]]; then
		expect_event all delete 0 "$NS_PORT" "$NS_WORKER" || rc=1
	fi
	expect_quiet "$T_QUIET" oth srv || rc=1
	# oth and srv said exactly one thing all along: initial 0.
	[[ $(lines_of oth) == 1 && $(lines_of srv) == 1 ]] ||
		fail "oth/srv: expected only their initial line" \
			"got: $(cat "$WORK/oth.out" "$WORK/srv.out" | tr '\n' '|')" || rc=1
	return $rc
}

group_netns() {
	run_test "observers in other netns start empty; --all-netns sees our client" ns_setup
	run_test "SIGHUP seen only by --all-netns, with the client's netns inode" ns_restart
	run_test "stop seen only by --all-netns; the others said nothing at all" ns_stop
	end_group oth srv all
}
