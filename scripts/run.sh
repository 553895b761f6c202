#!/usr/bin/env bash
# run.sh - run rtmp2sip locally in the foreground: a private redis-server, the signaler and, once
# it exists, WORKERS mediaworkers. Used by `make run` (which installs dependencies and builds
# first). Ctrl-C or SIGTERM stops everything and exits 0; if one process dies, the others are
# stopped and the exit status is 1.
#
# Environment (all passed through to the daemons):
#   BUILD          build directory holding signaler and mediaworker       (build)
#   RTMP_BIND      address the RTMP listener binds                        (127.0.0.1)
#   RTMP_PORT      RTMP port                                              (1935)
#   RTMPS_PORT     RTMPS port (0: none); without RTMPS_CERT_FILE / RTMPS_KEY_FILE a self-signed
#                  certificate is made once under run/secrets/                  (1936)
#   SIP_PORT       SIP port (UDP and TCP), for the SIP side               (5060)
#   REDIS_PORT     port of the private redis-server (bound to 127.0.0.1)  (6380)
#   WORKERS        number of mediaworkers to start                        (2)
#   RTP_PORT_MIN   lowest RTP port the mediaworkers use                   (20000)
#   RTP_PORT_MAX   highest RTP port the mediaworkers use                  (29999)
#                  (split into one even-aligned slice per worker; worker N gets WORKER_ID=mw-N)
#   LOG_LEVEL      error | warn | info | debug                            (info)
#   METRICS_PORT   HTTP port of the signaler's /metrics, /healthz, /readyz; worker N gets
#                  METRICS_PORT + N (0: no metrics endpoints)              (9100)
#   RUN_TAIL       1: also show the logs on the terminal (tail -F); 0: only write them   (1)
#   STOP_GRACE     seconds to wait after SIGTERM before SIGKILL when stopping (workers drain)  (10)
#   RUN_DIR        where the state below lives                            (./run)
#   ZMQ_INSECURE   1: the daemons talk plain ZeroMQ, no CURVE keys (trusted hosts only)
#
# Files (in RUN_DIR): redis/ (redis data dir and pid file), logs/*.log (one log per process),
# secrets/ (mode 0700, made once and reused): redis.pass (the Redis password, random),
# redis.conf (requirepass: the password never appears on a command line), signaler.key /
# worker.key (CURVE key pairs, relayctl keygen), signaler.allowed (the worker keys signalers
# accept) and worker.allowed (the signaler keys workers accept) - edit these to rotate keys, then
# SIGHUP the daemons (docs/configuration.md); rtmp2sip.env (0600): REDIS_HOST, REDIS_PORT,
# REDIS_PASSWORD_FILE of this stack, which relayctl reads by itself.
set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1

BUILD=${BUILD:-build}
[[ $BUILD == /* ]] || BUILD="$ROOT/$BUILD"
export RTMP_BIND=${RTMP_BIND:-127.0.0.1}
export RTMP_PORT=${RTMP_PORT:-1935}
export SIP_PORT=${SIP_PORT:-5060}
export REDIS_HOST=127.0.0.1
export REDIS_PORT=${REDIS_PORT:-6380}
export WORKERS=${WORKERS:-2}
export RTP_PORT_MIN=${RTP_PORT_MIN:-20000}
export RTP_PORT_MAX=${RTP_PORT_MAX:-29999}
export LOG_LEVEL=${LOG_LEVEL:-info}
export METRICS_PORT=${METRICS_PORT:-9100}
RUN_TAIL=${RUN_TAIL:-1}
STOP_GRACE=${STOP_GRACE:-10}

RUN_DIR=${RUN_DIR:-$ROOT/run}
[[ $RUN_DIR == /* ]] || RUN_DIR="$ROOT/$RUN_DIR"
LOG_DIR="$RUN_DIR/logs"
SECRETS="$RUN_DIR/secrets"

die() {
	echo "run: $*" >&2
	exit 1
}

# --- validate the settings before starting anything
for var in RTMP_PORT SIP_PORT REDIS_PORT RTP_PORT_MIN RTP_PORT_MAX; do
	val=${!var}
	if ! [[ $val =~ ^[0-9]+$ ]] || ((val < 1 || val > 65535)); then
		die "$var=$val is not a port (1..65535)"
	fi
done
[[ $STOP_GRACE =~ ^[0-9]+$ ]] || die "STOP_GRACE=$STOP_GRACE is not a number of seconds"
if ! [[ $WORKERS =~ ^[0-9]+$ ]] || ((WORKERS > 64)); then
	die "WORKERS=$WORKERS is not a number in 0..64"
fi
((RTP_PORT_MIN < RTP_PORT_MAX)) || die "RTP_PORT_MIN=$RTP_PORT_MIN must be below RTP_PORT_MAX=$RTP_PORT_MAX"
case $LOG_LEVEL in
error | warn | info | debug) ;;
*) die "LOG_LEVEL=$LOG_LEVEL: use error, warn, info or debug" ;;
esac
((RTMP_PORT != REDIS_PORT)) || die "RTMP_PORT and REDIS_PORT are both $RTMP_PORT"
[[ -x $BUILD/signaler ]] || die "$BUILD/signaler is not built: run 'make' (or 'make run')"
[[ -x $BUILD/relayctl ]] || die "$BUILD/relayctl is not built: run 'make' (or 'make run')"
command -v redis-server >/dev/null 2>&1 || die "redis-server not found: run 'make deps'"

# tcp_in_use PORT / udp_in_use PORT: something listens on PORT (any address).
tcp_in_use() {
	if command -v ss >/dev/null 2>&1; then
		[[ -n $(ss -Hltn "sport = :$1" 2>/dev/null) ]]
	else
		(exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
	fi
}
udp_in_use() {
	command -v ss >/dev/null 2>&1 || return 1
	[[ -n $(ss -Hlun "sport = :$1" 2>/dev/null) ]]
}

# port_taken VAR: dies with a hint when the port in variable VAR is taken.
port_taken() {
	local port=${!1} alt
	alt=$((port + 10000 <= 65535 ? port + 10000 : port - 10000))
	die "port $port in use: set $1=... (for example: $1=$alt make run)"
}
tcp_in_use "$RTMP_PORT" && port_taken RTMP_PORT
tcp_in_use "$REDIS_PORT" && port_taken REDIS_PORT
{ udp_in_use "$SIP_PORT" || tcp_in_use "$SIP_PORT"; } && port_taken SIP_PORT

mkdir -p "$RUN_DIR/redis" "$LOG_DIR" || die "cannot create $RUN_DIR"

# --- RTMPS on RTMPS_PORT: a self-signed certificate for localhost unless one is given.
export RTMPS_PORT=${RTMPS_PORT:-1936}
if ! [[ $RTMPS_PORT =~ ^[0-9]+$ ]] || ((RTMPS_PORT > 65535 || RTMPS_PORT == RTMP_PORT)); then
	die "RTMPS_PORT=$RTMPS_PORT is not a port (0 for none) other than RTMP_PORT"
fi
if ((RTMPS_PORT)); then
	tcp_in_use "$RTMPS_PORT" && port_taken RTMPS_PORT
	if [[ -z ${RTMPS_CERT_FILE:-} || -z ${RTMPS_KEY_FILE:-} ]]; then
		export RTMPS_CERT_FILE="$RUN_DIR/secrets/rtmps.crt" RTMPS_KEY_FILE="$RUN_DIR/secrets/rtmps.key"
		if [[ ! -s $RTMPS_CERT_FILE || ! -s $RTMPS_KEY_FILE ]]; then
			command -v openssl >/dev/null 2>&1 || die "openssl not found: run 'make deps' (or RTMPS_PORT=0)"
			(umask 077 && mkdir -p "$RUN_DIR/secrets" &&
				openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj /CN=localhost \
					-addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
					-keyout "$RTMPS_KEY_FILE" -out "$RTMPS_CERT_FILE" >/dev/null 2>&1) ||
				die "cannot make a self-signed certificate in run/secrets/"
			echo "run: made a self-signed RTMPS certificate: run/secrets/rtmps.crt"
		fi
	fi
fi

# --- secrets: made once, reused by every run (never in the repository, never on a command line)
( umask 077 && mkdir -p "$SECRETS" ) || die "cannot create $SECRETS"
chmod 700 "$SECRETS" || die "cannot protect $SECRETS"
if [[ ! -s $SECRETS/redis.pass ]]; then
	( umask 077 && head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$SECRETS/redis.pass" ) ||
		die "cannot write $SECRETS/redis.pass"
	echo "run: generated the Redis password ($SECRETS/redis.pass)"
fi
# requirepass through a config file (mode 0600): ps shows a command line to everyone.
( umask 077 && printf '# written by scripts/run.sh from redis.pass\nrequirepass %s\n' \
	"$(cat "$SECRETS/redis.pass")" >"$SECRETS/redis.conf" ) || die "cannot write $SECRETS/redis.conf"
if [[ ${ZMQ_INSECURE:-0} != 1 ]]; then
	for role in signaler worker; do
		[[ -s $SECRETS/$role.key ]] && continue
		"$BUILD/relayctl" keygen --dir "$SECRETS" --force "$role" >/dev/null ||
			die "relayctl keygen could not write $SECRETS/$role.key"
		echo "run: generated the CURVE key pair $SECRETS/$role.key"
	done
	# The allowed lists start with the other side's key; operators add and remove keys there.
	[[ -s $SECRETS/signaler.allowed ]] || cp "$SECRETS/worker.pub" "$SECRETS/signaler.allowed"
	[[ -s $SECRETS/worker.allowed ]] || cp "$SECRETS/signaler.pub" "$SECRETS/worker.allowed"
fi
unset REDIS_PASSWORD REDIS_USERNAME CURVE_SECRET_KEY CURVE_ALLOWED_KEYS
export REDIS_PASSWORD_FILE="$SECRETS/redis.pass"
# What relayctl (and an operator's shell: set -a; . run/rtmp2sip.env) needs to find this stack.
for v in REDIS_HOST REDIS_PORT REDIS_PASSWORD_FILE; do
	[[ ${!v} != *"'"* && ${!v} != *$'\n'* ]] || die "$v=${!v}: no quotes or newlines, please"
done
( umask 077 && printf "# scripts/run.sh: this stack's settings (relayctl reads them)\nREDIS_HOST='%s'\nREDIS_PORT='%s'\nREDIS_PASSWORD_FILE='%s'\n" \
	"$REDIS_HOST" "$REDIS_PORT" "$REDIS_PASSWORD_FILE" >"$RUN_DIR/rtmp2sip.env" ) ||
	die "cannot write $RUN_DIR/rtmp2sip.env"

# The CURVE variables of each role, for env (none with ZMQ_INSECURE=1).
SIG_KEYS=() WORKER_KEYS=()
if [[ ${ZMQ_INSECURE:-0} != 1 ]]; then
	SIG_KEYS=(CURVE_SECRET_KEY_FILE="$SECRETS/signaler.key"
		CURVE_ALLOWED_KEYS_FILE="$SECRETS/signaler.allowed")
	WORKER_KEYS=(CURVE_SECRET_KEY_FILE="$SECRETS/worker.key"
		CURVE_ALLOWED_KEYS_FILE="$SECRETS/worker.allowed")
fi

# --- process bookkeeping
declare -A NAME_OF=()    # pid -> name
declare -A CMD_OF=()     # name -> its command line (quoted), to start it again
declare -A RESTARTS=()   # name -> restarts in a row (the backoff's exponent)
declare -A STARTED_AT=() # name -> when it was last started (s since the epoch)
declare -A DUE_AT=()     # name -> when a restart is due, while one is pending
declare -A PENDING_OF=() # index in PIDS -> name, while its restart is pending (pid 0)
PIDS=()
TAIL_PID=""
STOPPING=0

# launch NAME CMD...: CMD in the background, output appended to run/logs/NAME.log, in a session
# of its own (setsid): a Ctrl-C on the terminal reaches this script only, which stops everything
# in order, rather than every process at once. Sets LAUNCHED to its pid.
launch() {
	local name=$1
	shift
	echo "=== $(date '+%F %T') starting $name: $*" >>"$LOG_DIR/$name.log"
	setsid "$@" </dev/null >>"$LOG_DIR/$name.log" 2>&1 &
	LAUNCHED=$!
	NAME_OF[$LAUNCHED]=$name
	CMD_OF[$name]=$(printf '%q ' "$@")
	STARTED_AT[$name]=$(date +%s)
}

# start NAME CMD...: launch, and keep the pid among the processes watched and stopped.
start() {
	launch "$@"
	PIDS+=("$LAUNCHED")
	echo "run: started $1 (pid $LAUNCHED, log run/logs/$1.log)"
}

# wait_tcp PORT PID SECONDS: true once 127.0.0.1:PORT (or RTMP_BIND) accepts connections.
wait_tcp() {
	local port=$1 pid=$2 i host=127.0.0.1
	[[ $port == "$RTMP_PORT" && $RTMP_BIND != 0.0.0.0 && $RTMP_BIND != "::" ]] && host=$RTMP_BIND
	for ((i = 0; i < $3 * 10; i++)); do
		(exec 3<>"/dev/tcp/$host/$port") 2>/dev/null && return 0
		kill -0 "$pid" 2>/dev/null || return 1
		sleep 0.1
	done
	return 1
}

# stop_all: SIGTERM to every process (newest first), SIGKILL to what is left after STOP_GRACE s.
stop_all() {
	local pid i alive
	STOPPING=1
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		[[ ${PIDS[i]} == 0 ]] || kill -TERM "${PIDS[i]}" 2>/dev/null
	done
	for ((i = 0; i < STOP_GRACE * 10; i++)); do
		alive=0
		for pid in "${PIDS[@]}"; do
			kill -0 "$pid" 2>/dev/null && alive=1
		done
		((alive)) || break
		sleep 0.1
	done
	for pid in "${PIDS[@]}"; do
		[[ $pid == 0 ]] && continue
		if kill -0 "$pid" 2>/dev/null; then
			echo "run: ${NAME_OF[$pid]} (pid $pid) did not stop in ${STOP_GRACE} s: killing it"
			kill -KILL "$pid" 2>/dev/null
		fi
		wait "$pid" 2>/dev/null
	done
	if [[ -n $TAIL_PID ]]; then
		kill -TERM "$TAIL_PID" 2>/dev/null
		wait "$TAIL_PID" 2>/dev/null
	fi
}

# shellcheck disable=SC2317 # called through the trap
on_signal() {
	((STOPPING)) && return
	echo
	stop_all
	echo "run: stopped cleanly"
	exit 0
}
trap on_signal INT TERM HUP

# fail_start NAME PID: a process did not come up: show its log and stop the rest.
fail_start() {
	echo "run: $1 did not start; last lines of run/logs/$1.log:" >&2
	tail -n 20 "$LOG_DIR/$1.log" | sed 's/^/  | /' >&2
	stop_all
	exit 1
}

# --- who may call: anonymous callers only while the gateway listens on loopback alone
case $RTMP_BIND in
127.* | ::1 | localhost) LOOPBACK=1 ;;
*) LOOPBACK=0 ;;
esac
if ((LOOPBACK)); then
	# docs/security.md: the explicit opt-outs, for a gateway nobody else can reach
	export CALL_AUTH=${CALL_AUTH:-none} SIP_ANONYMOUS_CALLS=${SIP_ANONYMOUS_CALLS:-1}
	export ECHO_APP=${ECHO_APP:-1}
elif [[ ${CALL_AUTH:-token} == token && -z ${CALL_TOKEN_SECRET:-} ]]; then
	secret_file="$SECRETS/call-token.secret"
	if [[ ! -s $secret_file ]]; then
		(umask 077 && head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' >"$secret_file") ||
			die "cannot write $secret_file"
	fi
	export CALL_AUTH=token CALL_TOKEN_SECRET
	CALL_TOKEN_SECRET=$(cat "$secret_file")
fi

# --- start
start redis redis-server "$SECRETS/redis.conf" --port "$REDIS_PORT" --bind 127.0.0.1 \
	--dir "$RUN_DIR/redis" --pidfile "$RUN_DIR/redis/redis.pid" --save '' --appendonly no \
	--daemonize no
wait_tcp "$REDIS_PORT" "${PIDS[-1]}" 10 || fail_start redis

start signaler env "${SIG_KEYS[@]}" "$BUILD/signaler"
wait_tcp "$RTMP_PORT" "${PIDS[-1]}" 10 || fail_start signaler

if [[ -x $BUILD/mediaworker ]]; then
	# Workers on one host must not share RTP ports: each gets an even-aligned slice of the range.
	span=$(((RTP_PORT_MAX - RTP_PORT_MIN + 1) / (WORKERS > 0 ? WORKERS : 1) / 2 * 2))
	if ((WORKERS > 0 && span < 2)); then
		echo "run: RTP_PORT_MIN..RTP_PORT_MAX is too small for $WORKERS workers" >&2
		stop_all
		exit 1
	fi
	for ((w = 1; w <= WORKERS; w++)); do
		lo=$((RTP_PORT_MIN + (w - 1) * span))
		# (its settings on the command line itself: a restart runs the same line)
		start "mediaworker-$w" env WORKER_ID="mw-$w" RTP_PORT_MIN=$lo \
			RTP_PORT_MAX=$((lo + span - 1)) \
			METRICS_PORT=$((METRICS_PORT > 0 ? METRICS_PORT + w : 0)) \
			"${WORKER_KEYS[@]}" "$BUILD/mediaworker"
	done
else
	echo "run: no mediaworker yet ($BUILD/mediaworker not built): running without workers"
fi

HOST=$RTMP_BIND
[[ $HOST == 0.0.0.0 || $HOST == "::" ]] && HOST=127.0.0.1
[[ $HOST == *:* ]] && HOST="[$HOST]"
URL="rtmp://$HOST:$RTMP_PORT"
cat <<EOF

rtmp2sip is running (LOG_LEVEL=$LOG_LEVEL; logs in run/logs/). Try the echo app (ECHO_APP=${ECHO_APP:-0}; on by default on loopback):
  publish:  ffmpeg -re -f lavfi -i sine=frequency=1000:sample_rate=16000 -c:a libspeex -ac 1 -f flv $URL/echo/me
  play:     ffplay -analyzeduration 1000000 $URL/echo/me
  record:   ffmpeg -analyzeduration 1000000 -i $URL/echo/me -t 5 out.wav
  (-analyzeduration: ffmpeg otherwise waits 5 s for a video stream before playing audio-only RTMP)
Place a SIP call by publishing to $URL/call/<user@host[:port]> (play the same name to hear the far
end), e.g. against a test callee (sipp -sn uas -rtp_echo -p 5070 -i 127.0.0.1):
  $URL/call/service@127.0.0.1:5070
  Callers: $(if [[ $CALL_AUTH == none ]]; then echo "anyone (CALL_AUTH=none: loopback only)"; else echo "CALL_AUTH=$CALL_AUTH (docs/configuration.md: signed tokens; the secret is in run/secrets/)"; fi)
The rtp app (RTP_APP=1 make run; off by default) sends audio through a mediaworker to an RTP peer
on loopback and plays what comes back: publish and play $URL/rtp/127.0.0.1:40000
Flash-era softphones (and build/tools/sipphone) use the sip app: connect to
  $URL/sip/<user@domain> with (authName, authPass, displayName); an empty password skips REGISTER
  (SIP_REGISTRAR=sip:host:port picks the registrar); calls to sip:<user>@127.0.0.1:$SIP_PORT reach it.
  API: docs/sip-app.md
Redis (password in ${SECRETS#"$ROOT"/}/redis.pass):
  REDISCLI_AUTH="\$(cat ${SECRETS#"$ROOT"/}/redis.pass)" redis-cli -p $REDIS_PORT
SIP port: $SIP_PORT    RTP ports: $RTP_PORT_MIN-$RTP_PORT_MAX
Metrics: curl http://127.0.0.1:$METRICS_PORT/metrics (signaler; worker N: port $METRICS_PORT + N;
  also /healthz and /readyz; METRICS_PORT=0 turns them off)
Operator's tool: ${BUILD#"$ROOT"/}/relayctl workers | signalers | calls | drain <worker>
  (it finds this stack's Redis and password in ${RUN_DIR#"$ROOT"/}/rtmp2sip.env; docs/relayctl.md)
ZeroMQ: $([[ ${ZMQ_INSECURE:-0} == 1 ]] && echo "ZMQ_INSECURE=1: no authentication" ||
	echo "CURVE, keys in ${SECRETS#"$ROOT"/}/ (rotation: docs/configuration.md)")
RTMPS: $( ((RTMPS_PORT)) && echo "every URL above over TLS as rtmps://$HOST:$RTMPS_PORT/..., e.g. rtmps://$HOST:$RTMPS_PORT/echo/me
  (certificate ${RTMPS_CERT_FILE#"$ROOT"/}; after replacing it: kill -HUP <signaler pid>)" || echo "off (RTMPS_PORT=0)")
Ctrl-C stops everything.

EOF

if [[ $RUN_TAIL == 1 ]]; then
	tail -n 0 -F "$LOG_DIR"/*.log 2>/dev/null &
	TAIL_PID=$!
fi

# --- watch, as a small init: a process that exits is started again (the same command, its log
# appended), after a backoff that grows with each exit in a row (0, 1, 2, 4 ... 30 s; a run of
# 60 s resets it), with a line saying how it ended. Only Ctrl-C or SIGTERM stops everything. Polled
# (bash may reap a child at any time, and `wait -n` then forgets it); `wait` on the short sleep
# lets a signal's trap run at once.
# ended RC: how a process with wait status RC ended, in words.
ended() {
	if (($1 > 128)); then
		echo "killed by SIG$(kill -l $(($1 - 128)) 2>/dev/null || echo $(($1 - 128)))"
	else
		echo "exited with status $1"
	fi
}
while true; do
	now=$(date +%s)
	for i in "${!PIDS[@]}"; do
		pid=${PIDS[i]}
		if [[ $pid == 0 ]]; then # a restart pending
			name=${PENDING_OF[$i]}
			((now >= DUE_AT[$name])) || continue
			eval "launch $name ${CMD_OF[$name]}"
			PIDS[i]=$LAUNCHED
			echo "run: $name started again (pid $LAUNCHED)" >&2
			continue
		fi
		kill -0 "$pid" 2>/dev/null && continue
		((STOPPING)) && exit 0
		wait "$pid" 2>/dev/null
		rc=$?
		name=${NAME_OF[$pid]}
		unset "NAME_OF[$pid]"
		((now - STARTED_AT[$name] >= 60)) && RESTARTS[$name]=0
		n=${RESTARTS[$name]:-0}
		delay=$((n >= 6 ? 30 : (1 << n) / 2))
		RESTARTS[$name]=$((n + 1))
		echo "run: $name (pid $pid) $(ended "$rc"); starting it again in ${delay:-0} s" \
			"(last lines of run/logs/$name.log below)" >&2
		tail -n 10 "$LOG_DIR/$name.log" | sed 's/^/  | /' >&2
		DUE_AT[$name]=$((now + delay))
		PENDING_OF[$i]=$name
		PIDS[i]=0
	done
	sleep 0.5 &
	wait $!
done
