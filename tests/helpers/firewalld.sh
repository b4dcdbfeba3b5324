# shellcheck shell=bash
# A firewalld of the test's own, never the host's: Debian's real firewalld in
# a network namespace the test made (its nftables table lives there and goes
# with it), in a private mount namespace in which /run is a fresh tmpfs
# (firewalld writes nothing into the host's /run), its configuration in the
# test's scratch directory (--system-config), on a D-Bus system bus of its
# own (a dbus-daemon whose socket is in that directory; exported in
# DBUS_SYSTEM_BUS_ADDRESS for firewalld, the observer and firewall-cmd).
# Both daemons are in PIDS, so harness.sh ends them by pid, and the namespace
# is removed, when a test ends and on exit.
#
# Sourced after harness.sh (by user/firewall/tests/run-firewalld and
# bench/firewalld-latency).

FWD= # the current test's firewalld directory: configuration, bus socket, logs

# The system bus' policy, as Debian's /usr/share/dbus-1/system.conf has it,
# with firewalld's own policy file: only root may own its names, and firewalld
# itself (no polkit here) lets only uid 0 change anything.
write_bus_config() {
	cat >"$FWD/bus.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <auth>EXTERNAL</auth>
  <listen>unix:path=$FWD/bus</listen>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
  </policy>
  <include>/usr/share/dbus-1/system.d/FirewallD.conf</include>
</busconfig>
EOF
}

# start_bus: a dbus-daemon on $FWD/bus, exported as the system bus.
start_bus() {
	command -v dbus-daemon >/dev/null || skip "dbus-daemon missing (apt-get install dbus)" ||
		return 1
	FWD=$W/firewalld
	mkdir -p "$FWD/etc" && write_bus_config || fail "cannot write $FWD" || return 1
	dbus-daemon --config-file="$FWD/bus.conf" --nofork --nosyslog 2>"$FWD/bus.log" &
	PIDS+=("$!")
	export DBUS_SYSTEM_BUS_ADDRESS=unix:path=$FWD/bus
	wait_until test -S "$FWD/bus" || fail "dbus-daemon made no socket: $(cat "$FWD/bus.log")"
}

# start_firewalld NS: the bus, then firewalld in NS with its configuration in
# $FWD/etc (a copy of Debian's firewalld.conf: nftables backend, zone public
# by default); returns once it answers on the bus.
start_firewalld() {
	local ns=$1
	command -v firewalld >/dev/null || skip "firewalld missing (apt-get install firewalld)" ||
		return 1
	start_bus || return 1
	cp /etc/firewalld/firewalld.conf "$FWD/etc/" || fail "no /etc/firewalld/firewalld.conf" ||
		return 1
	run_firewalld "$ns"
}

# run_firewalld NS: firewalld itself, on the bus start_bus made.
run_firewalld() {
	local ns=$1
	# ip netns exec and unshare exec, so $! is firewalld's own pid.
	# shellcheck disable=SC2016 # $1 is for the inner sh
	ip netns exec "$ns" unshare --mount -- sh -c \
		'mount -t tmpfs tmpfs /run && exec firewalld --nofork --nopid --system-config "$1" --log-target console' \
		sh "$FWD/etc" >"$FWD/firewalld.log" 2>&1 &
	FIREWALLD=$!
	PIDS+=("$FIREWALLD")
	wait_until firewalld_answers ||
		fail "firewalld did not answer within ${WAIT}s: $(tail -3 "$FWD/firewalld.log")"
}

firewalld_answers() {
	alive "$FIREWALLD" && [ "$(firewall-cmd --state 2>/dev/null)" = running ]
}

suite_cleanup() {
	unset DBUS_SYSTEM_BUS_ADDRESS
	FWD=
}

