# shellcheck shell=bash disable=SC2034 # NETNS_WHY, NS_IP: for the scripts that source this file
# netns.sh - a private multi-host network for the integration tests (source it after lib.sh).
#
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#   . "$(dirname "${BASH_SOURCE[0]}")/netns.sh"
#   netns_setup redis sig1 sig2 w1 peer client || { skip NAME "$NETNS_WHY"; finish; }
#   nspawn w1 "$T_TMP/w1.log" env RTP_BIND_IP="${NS_IP[w1]}" "$BUILD/mediaworker"
#   nsx client "$BUILD/tools/sipphone" ... "rtmp://${NS_IP[sig1]}:1935/sip/..."
#
# Layout: one "hub" namespace holds a Linux bridge; every host NAME is a namespace of its own with
# lo up and eth0 (a veth whose other end is a port of the bridge) at 10.R.0.K/24, K = 2, 3, ... in
# the order given. Nothing is created in the root namespace but the namespace names, so parallel
# runs cannot clash on addresses or interfaces; the names carry the runner's pid and a random
# suffix (rsc<pid>-<rand>-<host>), so they cannot clash either.
#
#          hub: br0
#      /    |     |     \
#   redis  sig1  sig2  ...     eth0 10.R.0.2, 10.R.0.3, ...
#
# Clean-up runs on EXIT (after lib.sh's stop_all): whatever still runs inside our namespaces is
# killed (only processes in namespaces this run created, i.e. its own), then the namespaces are
# deleted, also after a failure or an interrupt. A run killed with SIGKILL leaves its namespaces:
# netns_setup deletes such leftovers when they are empty and their runner is gone.
#
# Variables: NS_NAME[host] (namespace name), NS_IP[host] (address), NETNS_WHY (why setup failed).

NETNS_PREFIX=rsc
NETNS_RUN="$NETNS_PREFIX$$-$(printf '%04x' $((RANDOM % 65536)))"
NETNS_HUB="$NETNS_RUN-hub"
NETNS_NET="10.$((64 + RANDOM % 128))"
NETNS_CREATED=()
NETNS_WHY=""
declare -gA NS_NAME=() NS_IP=()

# netns_available: true when namespaces can be made here; NETNS_WHY says why not.
netns_available() {
	if [[ $(id -u) != 0 ]]; then
		NETNS_WHY="not root (network namespaces need CAP_SYS_ADMIN)"
		return 1
	fi
	if ! command -v ip >/dev/null 2>&1; then
		NETNS_WHY="iproute2 (ip) not installed"
		return 1
	fi
	return 0
}

# netns_sweep_stale: deletes namespaces of earlier runs whose runner is gone and in which nothing
# runs any more (a namespace with processes left is reported, never touched).
netns_sweep_stale() {
	local ns pid
	while read -r ns _; do
		[[ $ns =~ ^${NETNS_PREFIX}([0-9]+)-[0-9a-f]{4}-[a-z0-9]+$ ]] || continue
		pid=${BASH_REMATCH[1]}
		kill -0 "$pid" 2>/dev/null && continue
		if [[ -n $(ip netns pids "$ns" 2>/dev/null) ]]; then
			note "stale namespace $ns still has processes: left alone"
			continue
		fi
		ip netns del "$ns" 2>/dev/null
	done < <(ip netns list 2>/dev/null)
}

# netns_add NS: creates namespace NS with lo up, recorded for the clean-up.
netns_add() {
	local err
	if ! err=$(ip netns add "$1" 2>&1); then
		NETNS_WHY="ip netns add $1: $err"
		return 1
	fi
	NETNS_CREATED+=("$1")
	ip -n "$1" link set lo up
}

# netns_setup HOST...: the hub with its bridge and one namespace per HOST (see the top). Returns
# 1 with NETNS_WHY set when something cannot be created (the caller skips or fails).
netns_setup() {
	local host ns k=2 err
	netns_available || return 1
	netns_sweep_stale
	netns_add "$NETNS_HUB" || return 1
	if ! err=$(ip -n "$NETNS_HUB" link add br0 type bridge 2>&1) ||
		! err=$(ip -n "$NETNS_HUB" link set br0 up 2>&1); then
		NETNS_WHY="cannot create a bridge: $err"
		return 1
	fi
	for host in "$@"; do
		ns="$NETNS_RUN-$host"
		netns_add "$ns" || return 1
		if ! err=$(ip -n "$NETNS_HUB" link add "p-$host" type veth peer name eth0 netns "$ns" 2>&1) ||
			! err=$(ip -n "$NETNS_HUB" link set "p-$host" master br0 up 2>&1) ||
			! err=$(ip -n "$ns" addr add "$NETNS_NET.0.$k/24" dev eth0 2>&1) ||
			! err=$(ip -n "$ns" link set eth0 up 2>&1); then
			NETNS_WHY="cannot wire $host: $err"
			return 1
		fi
		NS_NAME[$host]=$ns
		NS_IP[$host]="$NETNS_NET.0.$k"
		k=$((k + 1))
	done
	note "namespaces $NETNS_RUN-*: $(for host in "$@"; do printf '%s=%s ' "$host" "${NS_IP[$host]}"; done)"
}

# nsx HOST CMD...: runs CMD in HOST's namespace (in the foreground).
nsx() {
	local host=$1
	shift
	ip netns exec "${NS_NAME[$host]}" "$@"
}

# nspawn HOST LOG CMD...: lib.sh's spawn inside HOST's namespace (ip netns exec execs CMD, so
# SPAWNED_PID is CMD's own pid).
nspawn() {
	local host=$1 log=$2
	shift 2
	spawn "$log" ip netns exec "${NS_NAME[$host]}" "$@"
}

# ns_tcp_open FROM IP PORT: true when IP:PORT accepts TCP connections seen from FROM's namespace.
ns_tcp_open() {
	# shellcheck disable=SC2016 # expanded by the inner bash
	nsx "$1" timeout 2 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$2" "$3" 2>/dev/null
}

# ns_wait_tcp FROM IP PORT PID SECONDS: waits until IP:PORT accepts connections; false when PID
# dies or time runs out.
ns_wait_tcp() {
	local i
	for ((i = 0; i < $5 * 10; i++)); do
		ns_tcp_open "$1" "$2" "$3" && return 0
		kill -0 "$4" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# netns_cleanup: kills what still runs in our namespaces and deletes them (idempotent).
netns_cleanup() {
	local ns pids i
	((${#NETNS_CREATED[@]})) || return 0
	for ns in "${NETNS_CREATED[@]}"; do
		pids=$(ip netns pids "$ns" 2>/dev/null | tr '\n' ' ')
		# shellcheck disable=SC2086 # a list of pids
		[[ -n ${pids// /} ]] && kill -KILL $pids 2>/dev/null
	done
	for ns in "${NETNS_CREATED[@]}"; do
		for ((i = 0; i < 20; i++)); do
			[[ -z $(ip netns pids "$ns" 2>/dev/null) ]] && break
			sleep 0.1
		done
		ip netns del "$ns" 2>/dev/null || note "could not delete namespace $ns"
	done
	NETNS_CREATED=()
}

trap 'stop_all; netns_cleanup' EXIT
