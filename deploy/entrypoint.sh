#!/bin/bash
# rtmp2sip-entrypoint - starts one rtmp2sip program with the defaults of where it runs; installed
# as /usr/bin/rtmp2sip-entrypoint in the image (deploy/Containerfile) and as
# /usr/local/lib/rtmp2sip/rtmp2sip-entrypoint by the systemd units (deploy/systemd/).
#
#   rtmp2sip-entrypoint signaler | mediaworker     exec the daemon (it becomes PID 1 in a container)
#   rtmp2sip-entrypoint relayctl ARGS...           the operator's CLI (docs/relayctl.md)
#   rtmp2sip-entrypoint healthcheck [PATH]         exit 0 when the running daemon's PATH (/healthz)
#                                                  answers 200 (the image's HEALTHCHECK)
#   rtmp2sip-entrypoint prestop                    drain the running daemon through Redis before it
#                                                  gets SIGTERM (Kubernetes preStop hook)
#   rtmp2sip-entrypoint reloader PATH...           SIGHUP the daemon of this pod when a file of
#                                                  PATH (files, or directories: their files) changes;
#                                                  every RELOAD_INTERVAL s (10): Kubernetes sidecar
#   rtmp2sip-entrypoint CMD ARGS...                exec anything else (sh, for a look inside)
#
# Configuration is by the daemons' own environment variables (docs/configuration.md); this script
# only fills in defaults for what is unset or empty, and never overrides a value.
#
# The signaler does not start without CALL_AUTH (token, sip or none: who may place calls with the
# call app; the daemon alone would start and refuse every call). With CALL_AUTH=token it needs
# CALL_TOKEN_SECRET_FILE (a file holding the token secret: a compose secret, a file on a host),
# which the signaler reads itself, or CALL_TOKEN_SECRET.
#
# In a container (RTMP2SIP_CONTAINER=1, set by the image) two addresses of the container matter:
#   ADDR     the one peers outside reach (SIP, RTP): POD_IP (Kubernetes downward API) when set,
#            else the source address of the default route, else the host name's address, else
#            the first non-loopback local address in /proc/net/fib_trie
#   BACKEND  the one facing Redis, on the network of Redis, ZeroMQ and metrics (compose's
#            internal network): POD_IP when set, else the source address toward REDIS_HOST (or
#            the first of REDIS_SENTINELS), else ADDR
#   both         REDIS_HOST=redis  METRICS_BIND=BACKEND (probes and scrapers come from outside)
#   signaler     SIGNALER_ID=sig-<hostname>  RTMP_BIND=0.0.0.0  SIP_ADVERTISED_IP=ADDR
#   mediaworker  WORKER_ID=<hostname> (a container's or pod's name: unique per replica, stable
#                across restarts of the process)  WORKER_CTL_BIND=tcp://BACKEND:7001
#                WORKER_MEDIA_BIND=tcp://BACKEND:7002  RTP_BIND_IP=0.0.0.0  RTP_ADVERTISED_IP=ADDR
#
# On a host (systemd units), with WORKER_INSTANCE=N (1..64, from mediaworker@N.service):
#   WORKER_ID=<hostname>-mw-N  METRICS_PORT=METRICS_PORT_BASE+N (base 9100, so 9101, 9102, ...)
#   RTP_PORT_MIN/MAX: slice N of RTP_PORT_BASE (20000) .. RTP_PORT_BASE + 64*RTP_PORT_SLICE,
#   RTP_PORT_SLICE (default 2500) ports each, like `make run` gives its workers distinct ranges.
set -u

die() {
	echo "rtmp2sip-entrypoint: $*" >&2
	exit 2
}

# id_of TEXT: TEXT with every character outside [A-Za-z0-9._-] replaced by '-', cut to 48.
id_of() {
	local s=${1//[^A-Za-z0-9._-]/-}
	printf '%s' "${s:0:48}"
}

host_name() {
	local h
	h=$(cat /proc/sys/kernel/hostname 2>/dev/null) || h=""
	printf '%s' "${h:-rtmp2sip}"
}

# addr_toward HOST PORT: the local IPv4 address the kernel sends from to reach HOST:PORT. A UDP
# socket connected there (nothing is sent) has its line in /proc/net/udp, found by the socket's
# inode; the address is printed there in the machine's byte order (little-endian assumed, as on
# x86 and arm64). Fails when HOST does not resolve or no route leads to it.
addr_toward() {
	local ip ino hex
	ip=$(getent ahostsv4 "$1" 2>/dev/null | awk '{ print $1; exit }')
	[[ -n $ip ]] || return 1
	{ exec 3<>"/dev/udp/$ip/$2"; } 2>/dev/null || return 1
	ino=$(readlink "/proc/$BASHPID/fd/3")
	ino=${ino//[^0-9]/}
	hex=$(awk -v ino="$ino" '$10 == ino { split($2, a, ":"); print a[1]; exit }' /proc/net/udp)
	exec 3>&-
	[[ $hex =~ ^[0-9A-F]{8}$ ]] || return 1
	printf '%d.%d.%d.%d' "0x${hex:6:2}" "0x${hex:4:2}" "0x${hex:2:2}" "0x${hex:0:2}"
}

# my_addr: ADDR, the address others reach this container at (see above); empty when none is found.
my_addr() {
	local a
	if [[ -n ${POD_IP:-} ]]; then
		printf '%s' "$POD_IP"
		return
	fi
	# (a documentation address: any address off the container's own networks takes the default route)
	a=$(addr_toward 198.51.100.1 9)
	[[ -n $a ]] || a=$(getent ahostsv4 "$(host_name)" 2>/dev/null | awk '$1 !~ /^127\./ { print $1; exit }')
	if [[ -z $a ]]; then
		a=$(awk '/^ *\|-- / { ip = $2 } /\/32 host LOCAL/ && ip !~ /^127\./ { print ip; exit }' \
			/proc/net/fib_trie 2>/dev/null)
	fi
	printf '%s' "$a"
}

# backend_addr: BACKEND, the address facing Redis (see above). Redis's name may resolve a moment
# after this container starts: it is asked for 10 s.
backend_addr() {
	local host port i a
	if [[ -n ${POD_IP:-} ]]; then
		printf '%s' "$POD_IP"
		return
	fi
	host=${REDIS_HOST:-redis} port=${REDIS_PORT:-6379}
	if [[ -n ${REDIS_SENTINELS:-} ]]; then
		host=${REDIS_SENTINELS%%,*} && port=${host##*:} && host=${host%:*}
	fi
	for ((i = 0; i < 50; i++)); do
		a=$(addr_toward "$host" "$port") && break
		getent ahostsv4 "$host" >/dev/null 2>&1 && break
		sleep 0.2
	done
	[[ -n $a ]] || a=$(my_addr)
	printf '%s' "$a"
}

# setdef VAR VALUE: exports VAR=VALUE unless VAR is set to a non-empty value (compose files
# pass an unset host variable on as an empty one).
setdef() {
	[[ -n ${!1:-} ]] || export "$1=$2"
}

container_defaults() {
	local daemon=$1 addr back host
	[[ ${RTMP2SIP_CONTAINER:-0} == 1 ]] || return 0
	host=$(id_of "$(host_name)")
	setdef REDIS_HOST redis
	case $daemon in
	signaler)
		addr=$(my_addr)
		setdef SIGNALER_ID "sig-$host"
		setdef RTMP_BIND 0.0.0.0
		[[ -n $addr ]] && setdef SIP_ADVERTISED_IP "$addr"
		if [[ -z ${METRICS_BIND:-} ]]; then
			back=$(backend_addr)
			export METRICS_BIND="$back"
		fi
		;;
	mediaworker)
		addr=$(my_addr)
		[[ -n $addr ]] || die "cannot find this container's address: set POD_IP or RTP_ADVERTISED_IP, WORKER_CTL_BIND and WORKER_MEDIA_BIND"
		back=$(backend_addr)
		setdef WORKER_ID "$host"
		setdef WORKER_CTL_BIND "tcp://$back:7001"
		setdef WORKER_MEDIA_BIND "tcp://$back:7002"
		setdef METRICS_BIND "$back"
		setdef RTP_BIND_IP 0.0.0.0
		setdef RTP_ADVERTISED_IP "$addr"
		;;
	esac
}

# call_auth: the signaler's CALL_AUTH must be chosen; CALL_TOKEN_SECRET_FILE read (see the top).
call_auth() {
	[[ -n ${CALL_AUTH:-} ]] || die "CALL_AUTH is not set: choose who may place calls through the call app: token (signed URLs; CALL_TOKEN_SECRET or CALL_TOKEN_SECRET_FILE), sip (the caller's SIP credentials) or none (anyone: an explicit opt-out). docs/deploy.md"
	# The signaler reads CALL_TOKEN_SECRET_FILE itself (the secret stays out of its environment).
	[[ $CALL_AUTH != token || -n ${CALL_TOKEN_SECRET:-} || -n ${CALL_TOKEN_SECRET_FILE:-} ]] ||
		die "CALL_AUTH=token needs CALL_TOKEN_SECRET_FILE (deploy/mksecrets.sh makes one) or CALL_TOKEN_SECRET"
}

instance_defaults() {
	local n=${WORKER_INSTANCE:-} base slice
	[[ -n $n ]] || return 0
	if ! [[ $n =~ ^[1-9][0-9]?$ ]] || ((n > 64)); then
		die "WORKER_INSTANCE=$n: use 1..64 (mediaworker@N)"
	fi
	base=${RTP_PORT_BASE:-20000}
	slice=${RTP_PORT_SLICE:-2500}
	if ! [[ $base =~ ^[0-9]+$ && $slice =~ ^[0-9]+$ ]] || ((slice < 4)); then
		die "RTP_PORT_BASE=$base RTP_PORT_SLICE=$slice: numbers, a slice of 4 ports or more"
	fi
	((base + n * slice - 1 <= 65535)) || die "RTP slice $n of $slice ports from $base passes 65535"
	setdef WORKER_ID "$(id_of "$(host_name)")-mw-$n"
	setdef METRICS_PORT $((${METRICS_PORT_BASE:-9100} + n))
	setdef RTP_PORT_MIN $((base + (n - 1) * slice))
	setdef RTP_PORT_MAX $((base + n * slice - 1))
}

# bin NAME: the program's path: next to this script, in /usr/local/bin or /usr/bin, else in PATH.
bin() {
	local d
	for d in "$(dirname "${BASH_SOURCE[0]}")" /usr/local/bin /usr/bin; do
		[[ -x $d/$1 ]] && { printf '%s' "$d/$1"; return; }
	done
	command -v "$1" || die "$1 not found"
}

# daemon_pid: the pid of the signaler or mediaworker running here (PID 1 in a container).
daemon_pid() {
	local p c
	for p in /proc/1 /proc/[0-9]*; do
		c=$(cat "$p/comm" 2>/dev/null) || continue
		[[ $c == signaler || $c == mediaworker ]] && { printf '%s' "${p#/proc/}"; return 0; }
	done
	return 1
}

# env_of PID VAR: VAR as the process PID was started with (empty when unset).
env_of() {
	tr '\0' '\n' <"/proc/$1/environ" 2>/dev/null | sed -n "s/^$2=//p" | head -n 1
}

# http_get HOST PORT PATH: prints the status line's code (bash /dev/tcp: no curl in the image).
http_get() {
	local line
	exec 3<>"/dev/tcp/$1/$2" || return 1
	printf 'GET %s HTTP/1.0\r\nHost: %s\r\n\r\n' "$3" "$1" >&3
	IFS=' ' read -r -t 3 _ line _ <&3 || return 1
	exec 3<&-
	printf '%s' "$line"
}

# metric PORT NAME: the sum of every sample of NAME from http://127.0.0.1:PORT/metrics.
metric() {
	local body
	body=$(exec 3<>"/dev/tcp/127.0.0.1/$1" && printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3 &&
		timeout 3 cat <&3) || return 1
	awk -v n="$2" '$1 == n || index($1, n "{") == 1 { s += $NF; f = 1 } END { if (!f) exit 1; print s }' \
		<<<"$body"
}

# target PID: "HOST PORT" of the daemon's metrics endpoint (port 0: none).
target() {
	local comm port bind
	comm=$(cat "/proc/$1/comm")
	port=$(env_of "$1" METRICS_PORT)
	[[ -n $port ]] || { [[ $comm == signaler ]] && port=9100 || port=9101; }
	bind=$(env_of "$1" METRICS_BIND)
	[[ -z $bind || $bind == 0.0.0.0 || $bind == :: ]] && bind=127.0.0.1
	printf '%s %s' "$bind" "$port"
}

healthcheck() {
	local pid host port code
	pid=$(daemon_pid) || { echo "no signaler or mediaworker running"; exit 1; }
	read -r host port <<<"$(target "$pid")"
	((port > 0)) || { echo "METRICS_PORT=0: no health endpoint; the process runs"; exit 0; }
	code=$(timeout 5 bash -c "$(declare -f http_get); http_get '$host' '$port' '${1:-/healthz}'") || code=""
	[[ $code == 200 ]] && exit 0
	echo "http://$host:$port${1:-/healthz}: ${code:-no answer}"
	exit 1
}

# prestop: mark the daemon draining in Redis (relayctl) so no signaler sends it new work, then
# for a signaler wait (at most PRESTOP_DEADLINE + 5 s) until its calls have ended. A worker
# returns at once: its SIGTERM, which follows, waits for its legs (WORKER_DRAIN_TIMEOUT) and
# hands over what is left. Failures are reported and ignored: SIGTERM still comes.
prestop() {
	local pid comm id port deadline=${PRESTOP_DEADLINE:-60} i n m
	pid=$(daemon_pid) || exit 0
	comm=$(cat "/proc/$pid/comm")
	while IFS= read -r line; do
		export "${line?}"
	done < <(tr '\0' '\n' <"/proc/$pid/environ" | grep -E '^REDIS_[A-Z_]+=')
	if [[ $comm == mediaworker ]]; then
		id=$(env_of "$pid" WORKER_ID)
		"$(bin relayctl)" --timeout 5 drain "$id" || true
		exit 0
	fi
	id=$(env_of "$pid" SIGNALER_ID)
	"$(bin relayctl)" --timeout 5 signaler-drain "$id" --deadline "$deadline" || exit 0
	read -r _ port <<<"$(target "$pid")"
	((port > 0)) || exit 0
	# Calls of the sip and call apps from set-up on (calls_active), and media legs of any app
	# (calls: the rtp app's streams too).
	for ((i = 0; i < deadline + 5; i++)); do
		n=$(metric "$port" rtmp2sip_signaler_calls_active) || break
		m=$(metric "$port" rtmp2sip_signaler_calls) || break
		((${n%.*} + ${m%.*} == 0)) && break
		sleep 1
	done
	exit 0
}

# sums PATH...: one checksum line per file of PATH (a directory: its files, not the hidden ones,
# following symlinks as a Kubernetes Secret volume has them).
sums() {
	local p
	for p in "$@"; do
		if [[ -d $p ]]; then
			cksum "$p"/* 2>&1
		else
			cksum "$p" 2>&1
		fi
	done
}

# reloader PATH...: SIGHUP the daemon (signaler or mediaworker) when what PATH holds changes: a
# sidecar sharing the pod's process namespace (the daemon re-reads its allowed keys and, for the
# signaler, the RTMPS certificate). Checked every RELOAD_INTERVAL seconds (10).
reloader() {
	local every=${RELOAD_INTERVAL:-10} was now pid
	[[ $# -gt 0 ]] || die "reloader: name the files or directories to watch"
	[[ $every =~ ^[1-9][0-9]*$ ]] || die "RELOAD_INTERVAL=$every: a number of seconds"
	trap 'exit 0' TERM INT
	was=$(sums "$@")
	echo "rtmp2sip-entrypoint: reloader: watching $*, every $every s"
	while sleep "$every" & wait $!; do
		now=$(sums "$@")
		[[ $now == "$was" ]] && continue
		if pid=$(daemon_pid); then
			kill -HUP "$pid" && was=$now &&
				echo "rtmp2sip-entrypoint: reloader: $* changed: SIGHUP to $(cat "/proc/$pid/comm") (pid $pid)"
		else
			echo "rtmp2sip-entrypoint: reloader: $* changed, but no daemon runs here (shareProcessNamespace?)"
		fi
	done
}

cmd=${1:-signaler}
[[ $# -gt 0 ]] && shift
case $cmd in
signaler | mediaworker)
	container_defaults "$cmd"
	[[ $cmd == mediaworker ]] && instance_defaults
	[[ $cmd == signaler ]] && call_auth
	exec "$(bin "$cmd")" "$@"
	;;
relayctl)
	container_defaults relayctl
	exec "$(bin relayctl)" "$@"
	;;
healthcheck) healthcheck "$@" ;;
prestop) prestop ;;
reloader) reloader "$@" ;;
*) exec "$cmd" "$@" ;;
esac
