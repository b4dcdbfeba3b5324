# shellcheck shell=bash
# The shipped ruleset (share/teredo-observer/teredo.nft) with real traffic
# through real Miredo. The client's namespace gets a table whose chains drop
# by default, as a hardened Debian /etc/nftables.conf does, with the ruleset
# included and jumped to; teredo-observer --nft-set keeps its set. A second
# Teredo client, the peer, in a namespace of its own (198.51.100.0/24, routed
# by the server's namespace), sends through the tunnel:
# - the client qualifies through that firewall, and the set holds its port;
# - ICMPv6 echo both ways;
# - an unsolicited UDP datagram over the tunnel, to a port the host's own
#   table opens, is dropped by the ruleset's edge traversal rule (its counter
#   moves, the listener hears nothing);
# - a port put in teredo_open gets through, and no longer once removed;
# - after a restart of Miredo on a new port the set and the tunnel follow;
# - the observer's SIGTERM empties the set (fail closed).

NS_PEER=te2e-peer-$TAG
PEER_GW=198.51.100.1 # TEST-NET-2: the server's namespace, routing
PEER_ADDR=198.51.100.2
FW_SET="inet filter teredo_port"
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

fw_unload() {
	in_ns "$NS_CLI" nft delete table inet filter 2>/dev/null
	ip -n "$NS_CLI" route del 198.51.100.0/24 2>/dev/null
}

# fw_counter COMMENT: the packets the ruleset's rule with that comment counted.
fw_counter() {
	in_ns "$NS_CLI" nft -j list table inet filter | python3 -c 'import json, sys
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
	local rc=0 n c
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
	# Qualification went through the ruleset's rules for the port, not around them.
	for c in "Teredo: UDP to the client's port" "Teredo: UDP from the client's port"; do
		n=$(fw_counter "$c")
		((${n:-0} > 0)) || fail "the rule '$c' counted ${n:-nothing}" || rc=1
	done
	return $rc
}

fw_echo() {
	local rc=0 before after
	before=$(fw_counter "ICMPv6 from the Teredo tunnel: errors, echo, discovery")
	# The peer's echo request is unsolicited: only the ICMPv6 rule lets it in.
	ping6_from "$NS_PEER" "$FW_CLI6" || rc=1
	after=$(fw_counter "ICMPv6 from the Teredo tunnel: errors, echo, discovery")
	((after > before)) || fail "the ICMPv6 rule counted nothing ($before, then $after)" || rc=1
	ping6_from "$NS_CLI" "$FW_PEER6" || rc=1
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
	in_ns "$NS_CLI" nft add element inet filter teredo_open "{ udp . $FW_LISTEN_PORT }" || return 1
	peer_sends opened || return 1
	poll_until "$T_EVENT" heard opened ||
		fail "udp/$FW_LISTEN_PORT in teredo_open: the datagram did not arrive" || return 1
	in_ns "$NS_CLI" nft delete element inet filter teredo_open "{ udp . $FW_LISTEN_PORT }" ||
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
	end_group fw listen
	stop_pid "$PEER_PID"
	PEER_PID=
	fw_unload
}
