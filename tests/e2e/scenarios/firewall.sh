# shellcheck shell=bash
# The shipped ruleset (share/teredo-observer/teredo.nft) with real traffic
# through real Miredo. The client's namespace gets a table whose chains drop
# by default, as a hardened Debian /etc/nftables.conf does, with the ruleset
# included and jumped to; teredo-observer --nft-set keeps its set. A second
# Teredo client, the peer, in a namespace of its own (198.51.100.0/24, routed
# by the server's namespace), sends through the tunnel:
# - the client qualifies through that firewall, and the set holds its port;
# - ICMPv6 echo both ways, carried by the rules for the port (both ways) and
#   let in by the ICMPv6 rule;
# - an unsolicited UDP datagram over the tunnel, to a port the host's own
#   table opens, is dropped by the ruleset's edge traversal rule (its counter
#   moves, the listener hears nothing);
# - a port put in teredo_open gets through, and no longer once removed;
# - after a restart of Miredo on a new port the set and the tunnel follow;
# - the observer's SIGTERM empties the set (fail closed);
# - in a table of its own whose chains accept by default (the header's other
#   form), the unsolicited datagram is still dropped, the opened port and
#   echo still pass.

NS_PEER=te2e-peer-$TAG
PEER_GW=198.51.100.1 # TEST-NET-2: the server's namespace, routing
PEER_ADDR=198.51.100.2
FW_TABLE="inet filter" # the table that includes the ruleset, and its set
FW_SET="$FW_TABLE teredo_port"
FW_LISTEN_PORT=9000
PEER_PID=
FW_CLI6=  # the client's and the peer's Teredo addresses
FW_PEER6=
FW_PROBE=$E2E_DIR/teredo_probe.py

# The peer: a namespace joined to the server's by a veth pair of its own.
fw_network() {
	ip netns add "$NS_PEER" || return 1
	NETNS_MADE+=("$NS_PEER")
	ip -n "$NS_PEER" link set lo up &&
		ip link add "te2e-sp$TAG" netns "$NS_SRV" type veth peer name "te2e-p$TAG" \
			netns "$NS_PEER" &&
		ip -n "$NS_SRV" addr add "$PEER_GW/24" dev "te2e-sp$TAG" &&
		ip -n "$NS_SRV" link set "te2e-sp$TAG" up &&
		ip -n "$NS_PEER" addr add "$PEER_ADDR/24" dev "te2e-p$TAG" &&
		ip -n "$NS_PEER" link set "te2e-p$TAG" up &&
		ip -n "$NS_PEER" route add default via "$PEER_GW" &&
		ip -n "$NS_CLI" route add 198.51.100.0/24 via "$SRV_ADDR" &&
		in_ns "$NS_SRV" sysctl -qw net.ipv4.ip_forward=1
}

# What a hardened /etc/nftables.conf holds: everything dropped unless said,
# and a service of the host's (udp/FW_LISTEN_PORT, as "tcp dport 22 accept"
# opens ssh) that the tunnel must not reach unless teredo_open says so.
fw_load() {
	cat >"$WORK/nftables.conf" <<EOF
table inet filter {
	include "$E2E_TOP/share/teredo-observer/teredo.nft"

	chain input {
		type filter hook input priority filter; policy drop;
		jump teredo_input
		ct state established,related accept
		iif lo accept
		udp dport $FW_LISTEN_PORT accept
	}
	chain output {
		type filter hook output priority filter; policy drop;
		jump teredo_output
		ct state established,related accept
		oif lo accept
	}
}
EOF
	in_ns "$NS_CLI" nft -f "$WORK/nftables.conf" ||
		fail "the ruleset does not load: nft -f $WORK/nftables.conf" || return 1
}

# The header's other form: a table of its own, accepting by default.
fw_load_own_table() {
	in_ns "$NS_CLI" nft delete table "$FW_TABLE" || return 1
	FW_TABLE="inet teredo"
	FW_SET="$FW_TABLE teredo_port"
	in_ns "$NS_CLI" nft -f - <<EOF || fail "the ruleset does not load in a table of its own"
table inet teredo {
	include "$E2E_TOP/share/teredo-observer/teredo.nft"
	chain input {
		type filter hook input priority filter; policy accept;
		jump teredo_input
	}
	chain output {
		type filter hook output priority filter; policy accept;
		jump teredo_output
	}
}
EOF
}

fw_unload() {
	in_ns "$NS_CLI" nft delete table inet filter 2>/dev/null
	in_ns "$NS_CLI" nft delete table inet teredo 2>/dev/null
	ip -n "$NS_CLI" route del 198.51.100.0/24 2>/dev/null
}

# fw_counter COMMENT: the packets the ruleset's rule with that comment counted.
fw_counter() {
	in_ns "$NS_CLI" nft -j list table "$FW_TABLE" | python3 -c 'import json, sys
for o in json.load(sys.stdin)["nftables"]:
    r = o.get("rule")
    if r and r.get("comment") == sys.argv[1]:
        print(next(e["counter"]["packets"] for e in r["expr"] if "counter" in e))' "$1"
}

fw_set_elements() {
	in_ns "$NS_CLI" nft -j list set "$FW_SET" | python3 -c 'import json, sys
for o in json.load(sys.stdin)["nftables"]:
    if "set" in o:
        print(" ".join(str(e) for e in sorted(o["set"].get("elem", []))))'
}

fw_set_is() { [[ $(fw_set_elements) == "$1" ]]; }

expect_fw_set() {
	poll_until "$T_EVENT" fw_set_is "$1" ||
		fail "expected the set $FW_SET to hold '$1'" "it holds '$(fw_set_elements)'"
}

start_peer() {
	ip netns exec "$NS_PEER" miredo -f -c "$WORK/client.conf" -p "$WORK/peer.pid" \
		>>"$WORK/peer-miredo.log" 2>&1 &
	PEER_PID=$!
	STARTED_PIDS+=("$PEER_PID")
}

peer_qualified() {
	FW_PEER6=$(teredo_addr "$NS_PEER")
	[[ -n $FW_PEER6 ]]
}

# ping FROM_NS TO_ADDR: an ICMPv6 echo answered within T_EVENT.
ping6_from() {
	in_ns "$1" python3 "$FW_PROBE" ping "$2" "$T_EVENT" >"$WORK/ping.out" 2>&1 ||
		fail "ICMPv6 echo from $1 to $2: $(cat "$WORK/ping.out")"
}

# peer_sends PAYLOAD: one UDP datagram from the peer to the listener, through the tunnel.
peer_sends() {
	in_ns "$NS_PEER" python3 "$FW_PROBE" send "$FW_CLI6" "$FW_LISTEN_PORT" "$1"
}

heard() { grep -q "^got $1 from $FW_PEER6\$" "$WORK/listen.out"; }

fw_qualifies() {
	local rc=0
	fw_network || fail "the peer's namespace and routes could not be made" || return 1
	fw_load || return 1
	start_observer fw "$NS_CLI" --nft-set "$FW_SET" || return 1
	expect_initial fw 0 || rc=1
	start_peer
	start_miredo
	wait_client_up || return 1
	FW_CLI6=$TRUTH_ADDR
	poll_until "$T_START" peer_qualified ||
		fail "the peer did not qualify within ${T_START}s" \
			"it said: $(tail -n 5 "$WORK/peer-miredo.log" | tr '\n' '|')" || return 1
	info "peer up: $FW_PEER6"
	expect_fw_set "$TRUTH_PORT" || rc=1
	return $rc
}

# The packets of the rules with these comments, one line ("none" for a rule
# not there).
fw_counters() {
	local c n
	for c in "$@"; do
		n=$(fw_counter "$c")
		printf '%s ' "${n:-none}"
	done
}

# Rules that must carry the echo: the tunnel's UDP both ways (the set, now
# that it holds the port; qualification may have gone before it did) and
# ICMPv6 in.
FW_ECHO_RULES=("Teredo: UDP to the client's port" "Teredo: UDP from the client's port"
	"ICMPv6 from the Teredo tunnel: errors, echo, discovery")

fw_echo() {
	local rc=0 i
	local -a before after
	read -ra before <<<"$(fw_counters "${FW_ECHO_RULES[@]}")"
	# The peer's echo request is unsolicited: only the ICMPv6 rule lets it in.
	ping6_from "$NS_PEER" "$FW_CLI6" || rc=1
	ping6_from "$NS_CLI" "$FW_PEER6" || rc=1
	read -ra after <<<"$(fw_counters "${FW_ECHO_RULES[@]}")"
	for i in "${!FW_ECHO_RULES[@]}"; do
		[[ ${after[i]} =~ ^[0-9]+$ && ${before[i]} =~ ^[0-9]+$ ]] && ((after[i] > before[i])) ||
			fail "the rule '${FW_ECHO_RULES[i]}' counted nothing (${before[i]}, then ${after[i]})" ||
			rc=1
	done
	return $rc
}

fw_unsolicited_dropped() {
	local before after i
	start_bg listen "$NS_CLI" python3 -u "$FW_PROBE" listen "$FW_LISTEN_PORT"
	poll_until "$T_EVENT" grep -q '^listening$' "$WORK/listen.out" ||
		fail "the listener did not start: $(cat "$WORK/listen.err")" || return 1
	before=$(fw_counter "unsolicited inbound IPv6 over Teredo (edge traversal)")
	for i in 1 2 3; do
		peer_sends "closed-$i" || fail "the peer could not send" || return 1
	done
	sleep "$T_QUIET"
	after=$(fw_counter "unsolicited inbound IPv6 over Teredo (edge traversal)")
	! grep -q '^got' "$WORK/listen.out" ||
		fail "an unsolicited datagram got through:" "$(grep '^got' "$WORK/listen.out")" ||
		return 1
	# They did reach the tunnel, and the edge traversal rule is what dropped them.
	((after >= before + 3)) ||
		fail "the edge traversal rule counted $((after - before)) of 3 datagrams"
}

fw_opened_port() {
	in_ns "$NS_CLI" nft add element "$FW_TABLE" teredo_open "{ udp . $FW_LISTEN_PORT }" || return 1
	peer_sends opened || return 1
	poll_until "$T_EVENT" heard opened ||
		fail "udp/$FW_LISTEN_PORT in teredo_open: the datagram did not arrive" || return 1
	in_ns "$NS_CLI" nft delete element "$FW_TABLE" teredo_open "{ udp . $FW_LISTEN_PORT }" ||
		return 1
	peer_sends closed-again || return 1
	sleep "$T_QUIET"
	! heard closed-again || fail "udp/$FW_LISTEN_PORT removed from teredo_open still gets through"
}

fw_restart() {
	local rc=0 old=$TRUTH_WORKER
	kill -HUP "$MIREDO_PID" 2>/dev/null || fail "our miredo is not running" || return 1
	wait_client_up "$old" || return 1
	FW_CLI6=$TRUTH_ADDR
	expect_fw_set "$TRUTH_PORT" || rc=1
	ping6_from "$NS_PEER" "$FW_CLI6" || rc=1
	return $rc
}

fw_stop_empties() {
	stop_bg fw
	fw_set_is "" || fail "after the observer's SIGTERM the set holds '$(fw_set_elements)'"
}

# Nothing else drops here: the edge traversal rule alone keeps the tunnel out.
fw_own_table() {
	local rc=0 before after
	fw_load_own_table || return 1
	start_observer fw2 "$NS_CLI" --nft-set "$FW_SET" || return 1
	expect_fw_set "$TRUTH_PORT" || rc=1
	ping6_from "$NS_PEER" "$FW_CLI6" || rc=1
	before=$(fw_counter "unsolicited inbound IPv6 over Teredo (edge traversal)")
	peer_sends own-closed || return 1
	sleep "$T_QUIET"
	after=$(fw_counter "unsolicited inbound IPv6 over Teredo (edge traversal)")
	! heard own-closed || fail "in a table of its own, an unsolicited datagram got through" ||
		rc=1
	((after > before)) || fail "the edge traversal rule counted nothing" || rc=1
	in_ns "$NS_CLI" nft add element "$FW_TABLE" teredo_open "{ udp . $FW_LISTEN_PORT }" || return 1
	peer_sends own-opened || return 1
	poll_until "$T_EVENT" heard own-opened ||
		fail "in a table of its own, udp/$FW_LISTEN_PORT in teredo_open did not get through" ||
		rc=1
	return $rc
}

group_firewall() {
	command -v nft >/dev/null || {
		SKIPPED+="firewall: needs nft (apt-get install nftables) "
		return 0
	}
	run_test "behind a drop-by-default table with teredo.nft, miredo qualifies; the set holds its port" \
		fw_qualifies
	run_test "ICMPv6 echo through the tunnel, both ways" fw_echo
	run_test "an unsolicited datagram over the tunnel is dropped by the edge traversal rule" \
		fw_unsolicited_dropped
	run_test "a port in teredo_open gets through; removed, it no longer does" fw_opened_port
	run_test "miredo restarted on a new port: the set and the tunnel follow" fw_restart
	run_test "SIGTERM to the observer empties the set" fw_stop_empties
	run_test "in a table of its own that accepts by default: unsolicited dropped, opened port and echo pass" \
		fw_own_table
	end_group fw fw2 listen
	stop_pid "$PEER_PID"
	PEER_PID=
	fw_unload
}
