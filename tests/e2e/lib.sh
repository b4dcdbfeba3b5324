# shellcheck shell=bash
# Helpers of the end-to-end suite (sourced by tests/e2e/run).
#
# Everything the suite makes is recorded here and removed by e2e_cleanup:
# network namespaces (te2e-*-$$), processes (by pid, only those it started and,
# as a last resort, what is left inside its own namespaces), the work directory.
# Traffic goes only between the namespaces made here (192.0.2.0/24, TEST-NET-1).

E2E_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
E2E_TOP=$(cd "$E2E_DIR/../.." && pwd)
# shellcheck source=tests/helpers/host.sh
source "$E2E_TOP/tests/helpers/host.sh"
OBSERVER=${E2E_OBSERVER:-$E2E_TOP/build/teredo-observer}
WIN_CLIENT=${E2E_WIN_CLIENT:-$E2E_TOP/build/tests/win_port_client}

TAG=$$
NS_SRV=te2e-srv-$TAG
NS_CLI=te2e-cli-$TAG
NS_OTH=te2e-oth-$TAG
SRV_ADDR=192.0.2.1
SRV_ADDR2=192.0.2.2
CLI_ADDR=192.0.2.100

# Bounds of every wait, in seconds.
T_START=20   # a Teredo client qualified after a (re)start
T_EVENT=10   # an event after the change that causes it
T_QUIET=1.5  # how long "nothing more comes" is watched
T_STOP=5     # a process to end after SIGTERM

WORK=
CLI_NETNS_INODE=
MIREDO_PID=   # the miredo parent of the current group, started by us
SERVER_PID=
declare -a STARTED_PIDS=()
declare -a NETNS_MADE=()
declare -A PID_OF=() CURSOR=()

PASSED=0
FAILED=0
declare -a FAILED_NAMES=()

say() { printf '%s\n' "$*"; }
info() { printf '    . %s\n' "$*"; }
# Failure detail: what was expected and what came. Always returns 1.
fail() {
	printf '%s\n' "$@" | sed 's/^/    ! /'
	return 1
}

now() { date +%s.%N; }
# elapsed START: seconds since START, 0.1 s resolution
elapsed() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f", b - a }'; }
# past DEADLINE: true once the clock passed it
past() { awk -v d="$1" -v n="$(now)" 'BEGIN { exit !(n > d) }'; }
deadline_in() { awk -v s="$1" -v n="$(now)" 'BEGIN { printf "%.3f", n + s }'; }

# poll_until SECONDS CMD...: run CMD every 0.1 s until it succeeds (0) or the
# time is up (1).
poll_until() {
	local limit
	limit=$(deadline_in "$1")
	shift
	while :; do
		"$@" && return 0
		past "$limit" && return 1
		sleep 0.1
	done
}

# in_ns NS CMD...: CMD in network namespace NS only. Not `ip netns exec`:
# that also makes a mount namespace with a fresh /sys, which hides cgroup2
# and bpffs from the observer.
in_ns() {
	local ns=$1
	shift
	nsenter --net="/run/netns/$ns" -- "$@"
}

pid_alive() {
	local state
	[[ -r /proc/$1/stat ]] || return 1
	state=$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null) || return 1
	[[ -n $state && $state != Z && $state != X ]]
}
pid_dead() { ! pid_alive "$1"; }

# stop_pid PID [SIGNAL]: SIGNAL (TERM) to a process we started, wait for it
# to end (bounded), KILL it after that. Reaps it when it is our child.
stop_pid() {
	local pid=$1 sig=${2:-TERM}
	[[ -n $pid ]] || return 0
	if pid_alive "$pid"; then
		kill "-$sig" "$pid" 2>/dev/null
		if ! poll_until "$T_STOP" pid_dead "$pid"; then
			say "    ! pid $pid did not end within ${T_STOP}s of SIG$sig; sending SIGKILL"
			kill -KILL "$pid" 2>/dev/null
			poll_until "$T_STOP" pid_dead "$pid"
		fi
	fi
	wait "$pid" 2>/dev/null
	return 0
}

# start_bg NAME NS CMD...: CMD in the background inside NS, stdout to
# $WORK/NAME.out and stderr to $WORK/NAME.err; its pid in PID_OF[NAME].
start_bg() {
	local name=$1 ns=$2
	shift 2
	: >"$WORK/$name.out"
	: >"$WORK/$name.err"
	# A simple command, not the in_ns function: $! is then the program itself
	# (bash forks, nsenter execs it), which is what stop_pid must signal.
	nsenter --net="/run/netns/$ns" -- "$@" >"$WORK/$name.out" 2>"$WORK/$name.err" &
	PID_OF[$name]=$!
	STARTED_PIDS+=("$!")
	CURSOR[$name]=0
}

stop_bg() {
	stop_pid "${PID_OF[$1]:-}"
}

# ---------------------------------------------------------------- setup

e2e_setup() {
	WORK=$(mktemp -d /tmp/te2e.XXXXXX) || return 1
	local ns
	for ns in "$NS_SRV" "$NS_CLI" "$NS_OTH"; do
		ip netns add "$ns" || return 1
		NETNS_MADE+=("$ns")
		ip -n "$ns" link set lo up || {
			say "lo up in $ns failed$(netns_cause)"
			return 1
		}
	done
	# The veth pair is made inside the namespaces: nothing appears in the root one.
	ip link add "te2e-s$TAG" netns "$NS_SRV" type veth peer name "te2e-c$TAG" \
		netns "$NS_CLI" || return 1
	ip -n "$NS_SRV" addr add "$SRV_ADDR/24" dev "te2e-s$TAG" &&
		ip -n "$NS_SRV" addr add "$SRV_ADDR2/24" dev "te2e-s$TAG" &&
		ip -n "$NS_SRV" link set "te2e-s$TAG" up &&
		ip -n "$NS_CLI" addr add "$CLI_ADDR/24" dev "te2e-c$TAG" &&
		ip -n "$NS_CLI" link set "te2e-c$TAG" up || return 1

	CLI_NETNS_INODE=$(stat -L -c %i "/run/netns/$NS_CLI") || return 1
	local inside
	inside=$(in_ns "$NS_CLI" stat -L -c %i /proc/self/ns/net) || return 1
	[[ $inside == "$CLI_NETNS_INODE" ]] ||
		fail "netns inode of $NS_CLI: /run/netns says $CLI_NETNS_INODE, inside $inside" ||
		return 1

	printf 'ServerBindAddress %s\n' "$SRV_ADDR" >"$WORK/server.conf"
	write_client_conf "$WORK/client.conf" || return 1
	start_bg server "$NS_SRV" miredo-server -f -c "$WORK/server.conf" -p "$WORK/server.pid"
	SERVER_PID=${PID_OF[server]}
	if ! poll_until "$T_START" server_listening; then
		fail "miredo-server did not listen on $SRV_ADDR:3544 and $SRV_ADDR2:3544 within ${T_START}s" \
			"its output: $(tr '\n' '|' <"$WORK/server.err")"
		return 1
	fi
	return 0
}

server_listening() {
	local s
	s=$(in_ns "$NS_SRV" ss -uanpH 2>/dev/null) || return 1
	grep -q "$SRV_ADDR:3544 .*miredo-server" <<<"$s" &&
		grep -q "$SRV_ADDR2:3544 .*miredo-server" <<<"$s"
}

# write_client_conf FILE [BINDPORT]
write_client_conf() {
	{
		printf 'RelayType client\n'
		printf 'InterfaceName teredo\n'
		printf 'ServerAddress %s\n' "$SRV_ADDR"
		[[ -z ${2:-} ]] || printf 'BindPort %s\n' "$2"
	} >"$1"
}

# Leftovers inside our own namespaces can only come from what we started
# (the miredo worker and miredo-privproc): end those, by pid.
kill_leftovers_in() {
	local ns=$1 pid comm
	for pid in $(ip netns pids "$ns" 2>/dev/null); do
		comm=$(cat "/proc/$pid/comm" 2>/dev/null) || continue
		case $comm in
		miredo | miredo-privproc | miredo-server | teredo-observer | win_port_client | \
			stable_table_cl)
			say "    ! left over in $ns: pid $pid ($comm); killing it"
			kill -KILL "$pid" 2>/dev/null
			;;
		*)
			say "    ! left over in $ns: pid $pid ($comm), not ours by name; left alone"
			;;
		esac
	done
}

e2e_cleanup() {
	local i ns
	trap - INT TERM
	for ((i = ${#STARTED_PIDS[@]} - 1; i >= 0; i--)); do
		stop_pid "${STARTED_PIDS[i]}"
	done
	for ns in "${NETNS_MADE[@]}"; do
		kill_leftovers_in "$ns"
		ip netns del "$ns" 2>/dev/null || say "    ! could not delete netns $ns"
	done
	if [[ -n $WORK && -d $WORK ]]; then
		if [[ -n ${E2E_KEEP:-} ]]; then
			say "(kept $WORK)"
		else
			rm -rf "$WORK"
		fi
	fi
}

# ---------------------------------------------------------------- miredo

# start_miredo [CONF]: the Teredo client in $NS_CLI, in the foreground (-f)
# with its own config and pidfile. MIREDO_PID is the parent.
start_miredo() {
	local conf=${1:-$WORK/client.conf}
	rm -f "$WORK/client.pid"
	# ip netns exec, as in the checked recipe: it execs, so $! is miredo itself.
	ip netns exec "$NS_CLI" miredo -f -c "$conf" -p "$WORK/client.pid" \
		>>"$WORK/miredo.log" 2>&1 &
	MIREDO_PID=$!
	STARTED_PIDS+=("$MIREDO_PID")
}

# The miredo worker(s): children of our parent named miredo.
miredo_workers() {
	local pid
	for pid in $(pgrep -P "$MIREDO_PID" 2>/dev/null); do
		[[ $(cat "/proc/$pid/comm" 2>/dev/null) == miredo ]] && printf '%s\n' "$pid"
	done
}

# ss_miredo NS: "PORT PID" per UDP socket of a process named miredo in NS.
ss_miredo() {
	in_ns "$1" ss -uanpH 2>/dev/null | awk '
		match($0, /\("miredo",pid=[0-9]+/) {
			p = substr($0, RSTART, RLENGTH); sub(/.*pid=/, "", p)
			port = $4; sub(/.*:/, "", port)
			print port, p
		}'
}

# expand_ipv6 ADDR: the 8 groups, space separated, each 4 hex digits.
expand_ipv6() {
	local a=$1 head tail g out=()
	local -a h=() t=()
	if [[ $a == *::* ]]; then
		head=${a%%::*}
		tail=${a#*::}
		[[ -z $head ]] || IFS=: read -ra h <<<"$head"
		[[ -z $tail ]] || IFS=: read -ra t <<<"$tail"
		out=("${h[@]}")
		for ((g = ${#h[@]} + ${#t[@]}; g < 8; g++)); do
			out+=(0)
		done
		out+=("${t[@]}")
	else
		IFS=: read -ra out <<<"$a"
	fi
	for g in "${out[@]}"; do
		printf '%04x ' "0x$g"
	done
	printf '\n'
}

# teredo_addr NS: the 2001:0::/32 address on the teredo interface in NS.
teredo_addr() {
	ip -n "$1" -6 -o addr show dev teredo scope global 2>/dev/null |
		awk '{ for (i = 1; i <= NF; i++) if ($i == "inet6") { sub(/\/.*/, "", $(i + 1)); print $(i + 1) } }' |
		grep -i '^2001:0:' | head -n 1
}

# decode_teredo ADDR: "PORT SERVER CLIENT" as RFC 4380 encodes them
# (2001:0:SSSS:SSSS:FFFF:PPPP:CCCC:CCCC, port and client inverted).
decode_teredo() {
	local -a g
	read -ra g <<<"$(expand_ipv6 "$1")"
	local s1=$((0x${g[2]})) s2=$((0x${g[3]}))
	local c1=$((0x${g[6]} ^ 0xffff)) c2=$((0x${g[7]} ^ 0xffff))
	printf '%d %d.%d.%d.%d %d.%d.%d.%d\n' $((0x${g[5]} ^ 0xffff)) \
		$((s1 >> 8)) $((s1 & 255)) $((s2 >> 8)) $((s2 & 255)) \
		$((c1 >> 8)) $((c1 & 255)) $((c2 >> 8)) $((c2 & 255))
}

# The two truths, filled by client_qualified / wait_client_up.
TRUTH_PORT=
TRUTH_WORKER=
TRUTH_ADDR=
LAST_SEEN=

# client_qualified [NOT_WORKER]: true when both truths agree on one port:
# exactly one miredo UDP socket in $NS_CLI, owned by a worker of our miredo
# (not NOT_WORKER), and the teredo address encodes that port, our server and
# our client address (no NAT in between).
client_qualified() {
	local not=${1:-} sockets n port pid addr aport aserver aclient
	sockets=$(ss_miredo "$NS_CLI")
	addr=$(teredo_addr "$NS_CLI")
	LAST_SEEN="ss miredo sockets: [${sockets//$'\n'/, }], teredo address: [${addr}]"
	n=$(grep -c . <<<"$sockets")
	[[ $n == 1 ]] || return 1
	read -r port pid <<<"$sockets"
	[[ $pid != "$not" ]] || return 1
	[[ $(awk '{ print $4 }' "/proc/$pid/stat" 2>/dev/null) == "$MIREDO_PID" ]] || return 1
	[[ -n $addr ]] || return 1
	read -r aport aserver aclient <<<"$(decode_teredo "$addr")"
	LAST_SEEN+=" (port $aport, server $aserver, client $aclient)"
	[[ $aport == "$port" && $aserver == "$SRV_ADDR" && $aclient == "$CLI_ADDR" ]] || return 1
	TRUTH_PORT=$port
	TRUTH_WORKER=$pid
	TRUTH_ADDR=$addr
}

# wait_client_up [NOT_WORKER]: bounded wait for client_qualified.
wait_client_up() {
	local t0
	t0=$(now)
	if ! poll_until "$T_START" client_qualified "${1:-}"; then
		fail "expected the Teredo client qualified within ${T_START}s (one miredo socket," \
			"its port in the teredo address${1:+, worker other than $1})" \
			"got: $LAST_SEEN" "miredo said: $(tail -n 5 "$WORK/miredo.log" | tr '\n' '|')"
		return 1
	fi
	info "client up: port $TRUTH_PORT (ss, pid $TRUTH_WORKER) = address $TRUTH_ADDR, $(elapsed "$t0")s"
	# What the observer trusts by default: the worker runs as the miredo user, not root.
	local uid
	uid=$(awk '/^Uid:/ { print $2 }' "/proc/$TRUTH_WORKER/status" 2>/dev/null)
	[[ $uid == "$(id -u miredo 2>/dev/null)" ]] ||
		fail "the miredo worker $TRUTH_WORKER runs as uid ${uid:-?}, not as user miredo" ||
		return 1
}

client_gone() {
	local sockets addr
	sockets=$(ss_miredo "$NS_CLI")
	addr=$(teredo_addr "$NS_CLI")
	LAST_SEEN="ss miredo sockets: [${sockets//$'\n'/, }], teredo address: [${addr}]"
	[[ -z $sockets && -z $addr ]]
}

wait_client_gone() {
	if ! poll_until "$T_START" client_gone; then
		fail "expected no miredo socket and no teredo address within ${T_START}s" \
			"got: $LAST_SEEN"
		return 1
	fi
}

# stop_miredo: SIGTERM to our parent, bounded wait, then the truths say none.
stop_miredo() {
	[[ -n $MIREDO_PID ]] || return 0
	local pid=$MIREDO_PID
	kill -TERM "$pid" 2>/dev/null
	if ! poll_until "$T_STOP" pid_dead "$pid"; then
		stop_pid "$pid"
		fail "expected miredo (pid $pid) to end within ${T_STOP}s of SIGTERM; it did not"
		return 1
	fi
	wait "$pid" 2>/dev/null
	wait_client_gone
}

# ---------------------------------------------------------------- observers

# start_observer NAME NS [ARGS...]: `teredo-observer --json ARGS` in NS; waits
# (bounded) for its first line.
start_observer() {
	local name=$1 ns=$2
	shift 2
	start_bg "$name" "$ns" "$OBSERVER" --json "$@"
	wait_lines "$name" 1 "$T_EVENT" "its initial line"
}

# start_watcher NAME NS: `win_port_client watch` in NS; waits for its first line.
start_watcher() {
	start_bg "$1" "$2" "$WIN_CLIENT" watch
	wait_lines "$1" 1 "$T_EVENT" "its initial notification"
}

lines_of() { wc -l <"$WORK/$1.out"; }
has_lines() { (($(lines_of "$1") >= $2)); }
# Once the process has ended it writes no more: no use waiting for it (an
# observer that cannot start on this kernel fails its test at once).
has_lines_or_ended() { has_lines "$1" "$2" || pid_dead "${PID_OF[$1]}"; }

wait_lines() {
	local name=$1 n=$2 secs=$3 what=$4
	if ! poll_until "$secs" has_lines_or_ended "$name" "$n" || ! has_lines "$name" "$n"; then
		fail "$name: expected $what within ${secs}s; got nothing" \
			"(pid ${PID_OF[$name]} $(pid_alive "${PID_OF[$name]}" && echo running || echo ended)," \
			"stderr: $(tr '\n' '|' <"$WORK/$name.err"))"
		return 1
	fi
}

# next_line NAME [SECONDS]: the next unread line of NAME into LINE (bounded).
LINE=
next_line() {
	local name=$1 secs=${2:-$T_EVENT}
	local want=$((CURSOR[$name] + 1))
	wait_lines "$name" "$want" "$secs" "line $want" || return 1
	LINE=$(sed -n "${want}p" "$WORK/$name.out")
	CURSOR[$name]=$want
}

# json_get LINE KEY: the value of KEY (number or string) in a flat JSON line.
json_get() {
	local v
	v=$(sed -n "s/.*\"$2\": *\"\([^\"]*\)\".*/\1/p" <<<"$1")
	[[ -n $v ]] || v=$(sed -n "s/.*\"$2\": *\([-0-9][0-9]*\).*/\1/p" <<<"$1")
	printf '%s' "$v"
}

# expect_event NAME TYPE PORT OLD_PORT [PID]: the next event of observer NAME
# is exactly that, from a process named miredo in our client's namespace.
expect_event() {
	local name=$1 type=$2 port=$3 old=$4 pid=${5:-}
	local want="type=$type port=$port old_port=$old comm=miredo netns=$CLI_NETNS_INODE${pid:+ pid=$pid}"
	next_line "$name" || {
		fail "  (waiting for $want)"
		return 1
	}
	local got_type got_port got_old got_pid got_comm got_netns
	got_type=$(json_get "$LINE" type)
	got_port=$(json_get "$LINE" port)
	got_old=$(json_get "$LINE" old_port)
	got_pid=$(json_get "$LINE" pid)
	got_comm=$(json_get "$LINE" comm)
	got_netns=$(json_get "$LINE" netns)
	if [[ $got_type != "$type" || $got_port != "$port" || $got_old != "$old" ||
		$got_comm != miredo || $got_netns != "$CLI_NETNS_INODE" ||
		(-n $pid && $got_pid != "$pid") ]]; then
		fail "$name: expected event $want" "$name: got $LINE"
		return 1
	fi
}

# expect_initial NAME PORT [PID]: the observer's first line.
expect_initial() {
	local name=$1 port=$2 pid=${3:-}
	next_line "$name" || return 1
	local t p w
	t=$(json_get "$LINE" type)
	p=$(json_get "$LINE" port)
	w=$(json_get "$LINE" pid)
	if [[ $t != initial || $p != "$port" || (-n $pid && $w != "$pid") ]]; then
		fail "$name: expected first line type=initial port=$port${pid:+ pid=$pid}" \
			"$name: got $LINE"
		return 1
	fi
	if [[ $port != 0 ]]; then
		[[ $(json_get "$LINE" netns) == "$CLI_NETNS_INODE" ]] ||
			fail "$name: expected the initial port's netns $CLI_NETNS_INODE" \
				"$name: got $LINE" || return 1
	fi
}

# expect_notify NAME TYPE PORT: the next callback line of a win_port_client.
expect_notify() {
	local name=$1 want="notify $2 $3"
	next_line "$name" || {
		fail "  (waiting for '$want')"
		return 1
	}
	[[ $LINE == "$want" ]] || fail "$name: expected '$want'" "$name: got '$LINE'"
}

# expect_quiet SECONDS NAME...: nothing more comes from any of them. What
# came anyway is shown and passed over, so that the next test starts afresh.
expect_quiet() {
	local secs=$1 name ok=0
	shift
	sleep "$secs"
	for name in "$@"; do
		if has_lines "$name" $((CURSOR[$name] + 1)); then
			fail "$name: expected nothing more; got:" \
				"$(sed -n "$((CURSOR[$name] + 1)),\$p" "$WORK/$name.out")"
			CURSOR[$name]=$(lines_of "$name")
			ok=1
		fi
	done
	return $ok
}

# expect_get NS WANT: `teredo-observer get` prints WANT (exit 0), or exits 3
# for WANT=none.
expect_get() {
	local ns=$1 want=$2 out rc
	out=$(in_ns "$ns" "$OBSERVER" get 2>"$WORK/get.err")
	rc=$?
	if [[ $want == none ]]; then
		[[ $rc == 3 && -z $out ]] && return 0
		fail "teredo-observer get: expected exit 3, no output (no client)" \
			"got exit $rc, output '$out', stderr '$(tr '\n' '|' <"$WORK/get.err")'"
		return 1
	fi
	[[ $rc == 0 && $out == "$want" ]] && return 0
	fail "teredo-observer get: expected '$want' and exit 0" \
		"got exit $rc, output '$out', stderr '$(tr '\n' '|' <"$WORK/get.err")'"
}

# expect_win_get NS WANT: `win_port_client get` (GetTeredoPort) prints WANT:
# a port (exit 0) or ERROR_NOT_READY (exit 3); and `win_port_client fwpm`
# (FwpmSystemPortsGet0, the API Windows now tells firewalls to use) agrees:
# the same port, or no port for the Teredo type.
expect_win_get() {
	local ns=$1 want=$2 out rc code=0 fwant
	out=$(in_ns "$ns" "$WIN_CLIENT" get 2>"$WORK/wget.err")
	rc=$?
	[[ $want == ERROR_NOT_READY ]] && code=3
	if [[ $rc != "$code" || $out != "$want" ]]; then
		fail "GetTeredoPort: expected '$want' (exit $code)" \
			"got '$out' (exit $rc), stderr '$(tr '\n' '|' <"$WORK/wget.err")'"
		return 1
	fi
	fwant=$want
	[[ $want == ERROR_NOT_READY ]] && fwant=none
	out=$(in_ns "$ns" "$WIN_CLIENT" fwpm 2>"$WORK/wget.err")
	rc=$?
	[[ $rc == "$code" && $out == "$fwant" ]] && return 0
	fail "FwpmSystemPortsGet0: expected '$fwant' (exit $code), as GetTeredoPort said" \
		"got '$out' (exit $rc), stderr '$(tr '\n' '|' <"$WORK/wget.err")'"
}

# event_ms NAME LINE_NO: the ktime of an observer's event, in ms.
event_ms() {
	local l
	l=$(sed -n "${2}p" "$WORK/$1.out")
	echo $(($(json_get "$l" ktime_ns) / 1000000))
}

# ---------------------------------------------------------------- runner

# run_test NAME FUNC: one named test; FUNC returns 0 for a pass.
run_test() {
	local name=$1 t0
	shift
	t0=$(now)
	say "--- $name"
	if "$@"; then
		PASSED=$((PASSED + 1))
		say "ok   $name ($(elapsed "$t0")s)"
	else
		FAILED=$((FAILED + 1))
		FAILED_NAMES+=("$name")
		say "FAIL $name ($(elapsed "$t0")s)"
	fi
}

# The processes of one scenario group, ended at its close whatever happened.
end_group() {
	local name
	for name in "$@"; do
		stop_bg "$name"
	done
	if [[ -n $MIREDO_PID ]] && pid_alive "$MIREDO_PID"; then
		stop_pid "$MIREDO_PID"
	fi
	MIREDO_PID=
	poll_until "$T_START" client_gone >/dev/null
}
