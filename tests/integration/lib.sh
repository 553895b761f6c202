# lib.sh - helpers for the integration tests (source it; do not run it).
#
#   . "$(dirname "$0")/lib.sh"
#   start_signaler || { finish; }      # private redis + $BUILD/signaler on a free port
#   ... pass NAME | fail NAME REASON | skip NAME REASON ...
#   check_alive NAME                   # the signaler must still run: a crash is a failure
#   signaler_alive                     # the same as a predicate (fails nothing)
#   why REASON; verdict NAME           # PASS or FAIL NAME from the reasons noted
#   finish                             # exit status 1 if anything failed
#
# Shared helpers: udp_port, wait_log, rcli / rkeys (the test's Redis), sipp_run / sipp_wait,
# metric / metric_sum (a saved /metrics), calls_case (the signaler's call counters).
#
# Output follows scripts/test.sh: "PASS name", "FAIL name: reason", "SKIP name: reason", one line
# each. Everything started through these helpers is stopped, and the temporary directory removed,
# when the script exits (KEEP_TMP=1 keeps it for a post-mortem; it is kept anyway after a failure).
#
# Variables set for the test: T_TMP (temp dir), RTMP_PORT, REDIS_PORT, SIGNALER_PID,
# SIGNALER_LOG, SIGNALER_DIED, WAVCHECK (path of the wavcheck tool), T_KEYS and T_MW (CURVE,
# below).
#
# CURVE: every daemon a script starts authenticates its ZeroMQ connections, as in production
# (docs/configuration.md). Each script gets its own key set, made with relayctl keygen in T_KEYS:
# signaler.key / .pub for the signalers (and wdrive, which drives workers as a signaler does) and
# worker.key / .pub for the mediaworkers, each side allowing the other's public key. The
# signalers' settings are exported (CURVE_SECRET_KEY_FILE, CURVE_ALLOWED_KEYS_FILE); mediaworkers
# get theirs from T_MW, a wrapper the scripts start instead of $BUILD/mediaworker.

set -u

T_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BUILD:-build}
[[ $BUILD == /* ]] || BUILD="$T_ROOT/$BUILD"
export BUILD
# shellcheck disable=SC2034 # used by the scripts that source this file
WAVCHECK="$BUILD/tools/wavcheck"

T_NAME=$(basename "$0" .sh)
T_TMP=$(mktemp -d "${TMPDIR:-/tmp}/$T_NAME.XXXXXX") || exit 1
T_PIDS=()
T_PASSED=0
T_FAILED=0
T_SKIPPED=0
SIGNALER_PID=""
SIGNALER_STARTED=""
SIGNALER_LOG="$T_TMP/signaler.log"
REDIS_PID=""

# curve_keys: makes the script's key set and T_MW (see the top); false when relayctl cannot.
curve_keys() {
	T_KEYS="$T_TMP/keys"
	# shellcheck disable=SC2034 # used by the scripts that source this file
	T_MW="$BUILD/mediaworker"
	# Nothing to do where the daemons are not built: the scripts report that themselves.
	[[ -x $BUILD/relayctl && -x $BUILD/mediaworker ]] || return 0
	mkdir -p "$T_KEYS" &&
		"$BUILD/relayctl" keygen --dir "$T_KEYS" signaler >/dev/null &&
		"$BUILD/relayctl" keygen --dir "$T_KEYS" worker >/dev/null || return 1
	export CURVE_SECRET_KEY_FILE="$T_KEYS/signaler.key"
	export CURVE_ALLOWED_KEYS_FILE="$T_KEYS/worker.pub"
	# shellcheck disable=SC2016 # $@ is the wrapper's
	printf '#!/bin/sh\n# a mediaworker with the workers'"'"' keys (tests/integration/lib.sh)\n%s\n%s\nexec %q "$@"\n' \
		"export CURVE_SECRET_KEY_FILE=$(printf %q "$T_KEYS/worker.key")" \
		"export CURVE_ALLOWED_KEYS_FILE=$(printf %q "$T_KEYS/signaler.pub")" \
		"$BUILD/mediaworker" >"$T_KEYS/mediaworker" && chmod 755 "$T_KEYS/mediaworker" || return 1
	# shellcheck disable=SC2034 # used by the scripts that source this file
	T_MW="$T_KEYS/mediaworker"
}

pass() {
	echo "PASS $1"
	T_PASSED=$((T_PASSED + 1))
}

# fail NAME REASON...
fail() {
	local name=$1
	shift
	echo "FAIL $name: $*"
	T_FAILED=$((T_FAILED + 1))
}

# skip NAME REASON...
skip() {
	local name=$1
	shift
	echo "SKIP $name: $*"
	T_SKIPPED=$((T_SKIPPED + 1))
}

# note TEXT...: a progress line that test.sh does not count.
note() {
	echo "  [$T_NAME] $*"
}

# free_port: prints a TCP port on 127.0.0.1 that nothing listens on now.
free_port() {
	if command -v python3 >/dev/null 2>&1; then
		python3 -c 'import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()'
		return
	fi
	local p i
	for ((i = 0; i < 100; i++)); do
		p=$((20000 + RANDOM % 40000))
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return 0
		fi
	done
	return 1
}

# port_open PORT: true when something accepts TCP connections on 127.0.0.1:PORT.
port_open() {
	(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# wait_port PORT PID SECONDS: waits until PORT accepts connections; false if PID dies or time runs out.
wait_port() {
	local port=$1 pid=$2 i
	for ((i = 0; i < $3 * 10; i++)); do
		port_open "$port" && return 0
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# spawn LOG CMD...: starts CMD in the background (stdin closed, output to LOG), tracked for
# cleanup; its pid is left in SPAWNED_PID.
spawn() {
	local log=$1
	shift
	"$@" </dev/null >"$log" 2>&1 &
	SPAWNED_PID=$!
	T_PIDS+=("$SPAWNED_PID")
}

# log_tail FILE [N]: shows the last N (40) lines of FILE, indented, for a failure report.
log_tail() {
	[[ -s $1 ]] || return 0
	echo "  --- last lines of $(basename "$1"):"
	tail -n "${2:-40}" "$1" | sed 's/^/  | /'
}

# start_redis: a private redis-server on a free port (no persistence); sets REDIS_PORT. With
# T_REDIS_AUTH=1 it requires a random password, given as make run gives it (a config file, never
# the command line; REDIS_PASSWORD_FILE for the daemons and relayctl, REDISCLI_AUTH for
# redis-cli, both exported).
start_redis() {
	local conf=()
	if ! command -v redis-server >/dev/null 2>&1; then
		echo "lib: redis-server not installed (scripts/deps.sh install)"
		return 1
	fi
	REDIS_PORT=$(free_port) || return 1
	mkdir -p "$T_TMP/redis"
	if [[ ${T_REDIS_AUTH:-0} == 1 ]]; then
		(umask 077 && head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$T_TMP/redis.pass" &&
			printf 'requirepass %s\n' "$(cat "$T_TMP/redis.pass")" >"$T_TMP/redis.conf") || return 1
		conf=("$T_TMP/redis.conf")
		REDISCLI_AUTH=$(cat "$T_TMP/redis.pass")
		export REDIS_PASSWORD_FILE="$T_TMP/redis.pass" REDISCLI_AUTH
	fi
	spawn "$T_TMP/redis.log" redis-server "${conf[@]}" --port "$REDIS_PORT" --bind 127.0.0.1 \
		--dir "$T_TMP/redis" --save '' --appendonly no --daemonize no
	REDIS_PID=$SPAWNED_PID
	if ! wait_port "$REDIS_PORT" "$REDIS_PID" 10; then
		echo "lib: redis-server did not start on port $REDIS_PORT"
		log_tail "$T_TMP/redis.log"
		return 1
	fi
	export REDIS_HOST=127.0.0.1 REDIS_PORT
}

# What the tests open that a deployment keeps shut (docs/security.md): the echo app, callers
# without a token
# or credentials on the call app, unregistered callers on the sip app, and per-client call
# limits far above what one test places from 127.0.0.1. A case that checks a default passes the
# variable empty (VAR=), which the daemons read as unset.
TEST_SIGNALER_ENV=(ECHO_APP=1 CALL_AUTH=none SIP_ANONYMOUS_CALLS=1 CALL_MAX_ACTIVE_PER_CLIENT=100000
	CALL_ATTEMPTS_PER_MINUTE_PER_CLIENT=1000000 CALL_ATTEMPTS_PER_MINUTE=1000000)

# start_signaler [VAR=value...]: starts redis (unless T_NO_REDIS=1) and $BUILD/signaler with
# RTMP_PORT=<free port> RTMP_BIND=127.0.0.1 LOG_LEVEL=debug, TEST_SIGNALER_ENV (plus the given
# variables, which win), logging
# to SIGNALER_LOG, and waits up to 10 s until the port accepts connections. Returns 1 (after
# printing why) when it cannot.
start_signaler() {
	if [[ ! -x $BUILD/signaler ]]; then
		echo "lib: $BUILD/signaler not built (run make)"
		return 1
	fi
	if [[ ${T_NO_REDIS:-0} != 1 && -z $REDIS_PID ]]; then
		start_redis || return 1
	fi
	RTMP_PORT=$(free_port) || return 1
	SIP_PORT=${SIP_PORT:-$(free_port)}
	spawn "$SIGNALER_LOG" env RTMP_PORT="$RTMP_PORT" RTMP_BIND=127.0.0.1 LOG_LEVEL=debug \
		SIP_PORT="$SIP_PORT" "${TEST_SIGNALER_ENV[@]}" "$@" "$BUILD/signaler"
	SIGNALER_PID=$SPAWNED_PID
	SIGNALER_STARTED=1
	if ! wait_port "$RTMP_PORT" "$SIGNALER_PID" 10; then
		echo "lib: signaler did not listen on 127.0.0.1:$RTMP_PORT within 10 s"
		log_tail "$SIGNALER_LOG"
		return 1
	fi
	note "signaler pid $SIGNALER_PID on rtmp://127.0.0.1:$RTMP_PORT (log $SIGNALER_LOG)"
	return 0
}

# signaler_alive: true while the signaler runs. The first time it finds it gone, it records how
# in SIGNALER_DIED ("exit status N" / "killed by signal N") and shows the end of its log.
SIGNALER_DIED=""
signaler_alive() {
	local rc
	if [[ -n $SIGNALER_PID ]] && kill -0 "$SIGNALER_PID" 2>/dev/null; then
		return 0
	fi
	if [[ -n $SIGNALER_PID ]]; then
		wait "$SIGNALER_PID" 2>/dev/null
		rc=$?
		SIGNALER_DIED="exit status $rc"
		((rc > 128)) && SIGNALER_DIED="killed by signal $((rc - 128))"
		echo "  [$T_NAME] the signaler is gone ($SIGNALER_DIED)"
		log_tail "$SIGNALER_LOG" 60
		SIGNALER_PID=""
	fi
	return 1
}

# check_alive NAME: fails NAME (and returns 1) when the signaler is no longer running.
check_alive() {
	signaler_alive && return 0
	fail "$1" "the signaler is not running (${SIGNALER_DIED:-never started})"
	return 1
}

# --- helpers shared by the test scripts ----------------------------------------------------------

# need_tools NAME CMD...: when a CMD is not installed, skips NAME and ends the script.
need_tools() {
	local name=$1 cmd
	shift
	for cmd in "$@"; do
		if ! command -v "$cmd" >/dev/null 2>&1; then
			skip "$name" "$cmd not installed (scripts/deps.sh install)"
			finish
		fi
	done
}

# udp_port: prints an even UDP port on 127.0.0.1 that was free a moment ago (for SIPp's -mp, whose
# RTP port must be even: the RTCP one follows).
udp_port() {
	python3 -c 'import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]
print(p if p % 2 == 0 else p + 1)'
}

# wait_log FILE TEXT SECONDS [PID]: true once FILE has a line matching TEXT (grep pattern); false
# after SECONDS, or as soon as PID (when given) is gone.
wait_log() {
	local i
	for ((i = 0; i < $3 * 10; i++)); do
		grep -q -- "$2" "$1" 2>/dev/null && return 0
		[[ -z ${4:-} ]] || kill -0 "$4" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# rcli ARGS...: redis-cli on the test's Redis, port REDIS_PORT: on 127.0.0.1, or inside the
# network namespace of host REDIS_NS when that is set (netns.sh).
rcli() {
	if [[ -n ${REDIS_NS:-} ]]; then
		nsx "$REDIS_NS" redis-cli -p "$REDIS_PORT" "$@"
	else
		redis-cli -p "$REDIS_PORT" "$@"
	fi
}

# rkeys PATTERN: the keys of the test's Redis matching PATTERN (tests only; the gateway itself
# never scans).
rkeys() {
	rcli --scan --pattern "$1"
}

# sipp_run NAME ARGS...: SIPp in the background, tracked for cleanup, its messages and errors
# traced to $T_TMP/NAME.msg and NAME.err (output in NAME.sipp.log); its pid in SIPP_PID. Binds
# SIPP_IP (default 127.0.0.1); with SIPP_NS set, runs inside that host's network namespace
# (netns.sh's nspawn).
sipp_run() {
	local name=$1 launch=(spawn)
	shift
	[[ -z ${SIPP_NS:-} ]] || launch=(nspawn "$SIPP_NS")
	"${launch[@]}" "$T_TMP/$name.sipp.log" sipp "$@" -i "${SIPP_IP:-127.0.0.1}" -nostdin \
		-trace_msg -message_file "$T_TMP/$name.msg" -trace_err -error_file "$T_TMP/$name.err"
	# shellcheck disable=SC2034 # used by the scripts that source this file
	SIPP_PID=$SPAWNED_PID
}

# sipp_wait PID SECONDS: SIPp's exit status; 124 when it still ran after SECONDS (it is then
# stopped with SIGTERM and reaped).
sipp_wait() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		kill -0 "$1" 2>/dev/null || { wait "$1"; return; }
		sleep 0.1
	done
	kill "$1" 2>/dev/null
	wait "$1" 2>/dev/null
	return 124
}

# why TEXT...: notes a reason for the current case to fail (in WHY), for verdict.
WHY=()
why() { WHY+=("$*"); }

# verdict NAME [stopped]: PASS NAME when why noted nothing since the last verdict, else FAIL NAME
# with the reasons ("; "-separated); then forgets them. Unless "stopped", a signaler that
# start_signaler started must still run (signaler_alive).
verdict() {
	if [[ ${2:-} != stopped && -n $SIGNALER_STARTED ]]; then
		signaler_alive || why "the signaler died (${SIGNALER_DIED})"
	fi
	if [[ ${#WHY[@]} -eq 0 ]]; then
		pass "$1"
	else
		fail "$1" "$(printf '%s; ' "${WHY[@]}" | sed 's/; $//')"
	fi
	WHY=()
}

# metric FILE SERIES: the value of one exact series (name and labels as printed) in FILE, or "".
metric() {
	awk -v s="$2" '$1 == s { print $2; exit }' "$1"
}

# metric_sum FILE PREFIX: the sum of the series of FILE whose name and labels start with PREFIX.
metric_sum() {
	awk -v p="$2" 'index($1, p) == 1 { n += $2 } END { print n + 0 }' "$1"
}

# calls_case NAME PORT APP SPEC...: the case NAME on the signaler's /metrics at 127.0.0.1:PORT
# once the calls of APP are over. Each SPEC, KIND:LABEL=VALUE:N, asks for
# rtmp2sip_signaler_calls_KIND_total{app="APP",LABEL="VALUE"} >= N (KIND started, answered or
# ended); and no call of APP may be active, nor fewer ended than started. Skipped without curl.
calls_case() {
	local name=$1 port=$2 app=$3 file="$T_TMP/$1.prom" s=rtmp2sip_signaler_calls
	local spec kind label n series v active started ended
	shift 3
	if ! command -v curl >/dev/null 2>&1; then
		skip "$name" "curl not installed"
		return
	fi
	curl -s -m 3 -o "$file" "http://127.0.0.1:$port/metrics" || why "no /metrics on port $port"
	for spec in "$@"; do
		IFS=: read -r kind label n <<<"$spec"
		series="${s}_${kind}_total{app=\"$app\",${label%%=*}=\"${label#*=}\"}"
		v=$(metric "$file" "$series")
		if [[ -z $v ]]; then
			why "$series missing from /metrics"
		elif ! awk -v v="$v" -v n="$n" 'BEGIN { exit !(v >= n) }'; then
			why "$series is $v, expected at least $n"
		fi
	done
	active=$(metric "$file" "${s}_active{app=\"$app\"}")
	[[ $active == 0 ]] || why "${s}_active{app=\"$app\"} is '$active' with no call left, not 0"
	started=$(metric_sum "$file" "${s}_started_total{app=\"$app\",")
	ended=$(metric_sum "$file" "${s}_ended_total{app=\"$app\",")
	[[ $started == "$ended" ]] || why "$app calls: $started started but $ended ended"
	# the counters that moved, for a failure
	((${#WHY[@]} == 0)) || grep "^${s}_.*app=\"$app\"" "$file" | grep -v ' 0$' | sed 's/^/  | /'
	verdict "$name"
}

# asan_build: true when $BUILD is an AddressSanitizer build (its quarantine keeps freed memory,
# so resident-size checks do not apply).
asan_build() { [[ $BUILD == *-address* ]] || ldd "$BUILD/signaler" 2>/dev/null | grep -q libasan; }

# stop_pid PID [SECONDS]: SIGTERM, then SIGKILL after SECONDS (5); returns the exit status.
stop_pid() {
	local pid=$1 i
	kill -TERM "$pid" 2>/dev/null
	for ((i = 0; i < ${2:-5} * 10; i++)); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
		return 137
	fi
	wait "$pid" 2>/dev/null
}

# stop_signaler: stops the signaler with SIGTERM; returns its exit status (137: had to be killed).
stop_signaler() {
	local rc
	[[ -n $SIGNALER_PID ]] || return 0
	stop_pid "$SIGNALER_PID" 5
	rc=$?
	SIGNALER_PID=""
	return "$rc"
}

# stop_all: stops everything started here that still runs (SIGTERM, SIGKILL after 3 s) and
# removes T_TMP (kept after failures or with KEEP_TMP=1). Only pids that are still jobs of this
# shell are signalled, so a pid reused by another process is never hit.
stop_all() {
	local pid i live alive mine=()
	live=" $(jobs -p | tr '\n' ' ') "
	for pid in "${T_PIDS[@]}"; do
		[[ $live == *" $pid "* ]] && mine+=("$pid")
	done
	for pid in "${mine[@]}"; do
		kill -TERM "$pid" 2>/dev/null
	done
	for ((i = 0; i < 30; i++)); do
		alive=0
		for pid in "${mine[@]}"; do
			kill -0 "$pid" 2>/dev/null && alive=1
		done
		((alive)) || break
		sleep 0.1
	done
	for pid in "${mine[@]}"; do
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	T_PIDS=()
	if [[ ${KEEP_TMP:-0} == 1 || $T_FAILED -gt 0 ]]; then
		echo "  [$T_NAME] logs kept in $T_TMP"
	else
		rm -rf "$T_TMP"
	fi
}

trap stop_all EXIT
trap 'echo "  [$T_NAME] interrupted"; exit 143' INT TERM

curve_keys || {
	echo "FAIL ${T_NAME}_keys: relayctl keygen could not make the CURVE keys in $T_TMP/keys"
	exit 1
}

# finish: reports the counts (not in the "N passed, N failed" form: that line is test.sh's) and
# exits 1 if anything failed.
finish() {
	note "$T_PASSED passed, $T_FAILED failed, $T_SKIPPED skipped"
	if [[ $T_FAILED -gt 0 ]]; then
		exit 1
	fi
	exit 0
}
