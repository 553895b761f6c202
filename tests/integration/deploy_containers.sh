# deploy_containers.sh - the container part of the deploy tests, for one engine (source it from a
# test after lib.sh, with ENGINE=podman or ENGINE=docker; it ends with finish).
#
# podman (test_deploy.sh): images built with buildah, the cluster run by podman-compose.
# docker (test_deploy_docker.sh): images built with `docker build` (BuildKit), the cluster run by
# `docker compose` where that plugin is installed, else docker-compose; the daemon is the
# machine's own when one answers, else a private dockerd started (and stopped) by the test.
# Case names: deploy_* with podman, deploy_docker_* with docker.
#
# DEPLOY_CONTAINERS=1 installs what is missing with apt-get (root); unset, the part runs only where
# the engine's tools are already installed (DEPLOY_AUTO_WHY says why not); 0 never runs it.

DEPLOY="$T_ROOT/deploy"
SIPP_DIR="$T_ROOT/tests/integration/sipp"
if [[ $ENGINE == docker ]]; then P=deploy_docker; else P=deploy; fi

figure() {
	echo "figure: $*"
}

CASES=(image up_ready healthcheck redis_auth zmq_auth call_tone call_auth reload drain_scale_in failover_kill
	bridge_mac no_leftovers down)
skip_containers() {
	local c
	for c in "${CASES[@]}"; do
		skip "${P}_$c" "$1"
	done
	finish
}
if [[ ${DEPLOY_CONTAINERS:-0} != 1 ]]; then
	skip "${P}_containers" "${DEPLOY_AUTO_WHY:+$DEPLOY_AUTO_WHY; }run make test-deploy as root (installs $ENGINE, builds the image: minutes)"
	finish
fi
[[ $(id -u) -eq 0 ]] || skip_containers "not root: a rootless $ENGINE is not set up by this test"
for cmd in ffmpeg sipp curl python3 openssl; do
	command -v "$cmd" >/dev/null 2>&1 || skip_containers "$cmd not installed (scripts/deps.sh install)"
done
for bin in "$WAVCHECK" "$BUILD/tools/zprobe"; do
	[[ -x $bin ]] || { fail "${P}_setup" "$bin not built (make)"; finish; }
done

# need_pkgs EXE:PACKAGE...: the packages whose program (a name on PATH or an absolute path) is
# missing.
need_pkgs() {
	local pc c
	for pc in "$@"; do
		c=${pc%%:*}
		if [[ $c == /* ]]; then [[ -x $c ]] || echo "${pc#*:}"; else command -v "$c" >/dev/null || echo "${pc#*:}"; fi
	done
}
# install_pkgs PACKAGE...: apt-get install (after an update when the lists are stale); the
# packages' services are not started (a policy-rc.d that refuses, for the time of the install;
# on_exit removes it too, should the test be interrupted). Under `make test` (DEPLOY_AUTO=1:
# DEPLOY_CONTAINERS was not set) nothing is installed: the part is skipped instead.
POLICY_RC=/usr/sbin/policy-rc.d
POLICY_OWN=0
install_pkgs() {
	local rc=0
	[[ $# -eq 0 ]] && return 0
	if [[ ${DEPLOY_AUTO:-0} == 1 ]]; then
		echo "not installed: $* (DEPLOY_CONTAINERS=1 installs them)" >"$T_TMP/apt.log"
		return 1
	fi
	note "installing $*"
	command -v apt-get >/dev/null || { echo "no apt-get" >"$T_TMP/apt.log"; return 1; }
	if [[ ! -e $POLICY_RC ]]; then
		printf '#!/bin/sh\nexit 101\n' >"$POLICY_RC" && chmod 755 "$POLICY_RC" && POLICY_OWN=1
	fi
	{ DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "$@" ||
		{ apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y \
			--no-install-recommends "$@"; }; } >"$T_TMP/apt.log" 2>&1 || rc=1
	if ((POLICY_OWN)); then
		rm -f "$POLICY_RC"
		POLICY_OWN=0
	fi
	return $rc
}

PROJECT="rtmp2sip-t$$"
IMAGE=localhost/rtmp2sip:test
REDIS_IMAGE=localhost/rtmp2sip-redis:test
LABEL="com.docker.compose.project=$PROJECT"
DOCKERD_PID=""
DOCKERD_CHILD=0
SIPP_PID=""
# stop_dockerd: the private dockerd this test started (or found left by an earlier run): SIGTERM,
# SIGKILL after 15 s.
stop_dockerd() {
	local i
	[[ -n $DOCKERD_PID ]] || return 0
	kill "$DOCKERD_PID" 2>/dev/null
	for ((i = 0; i < 150; i++)); do
		kill -0 "$DOCKERD_PID" 2>/dev/null || break
		sleep 0.1
	done
	kill -0 "$DOCKERD_PID" 2>/dev/null && kill -KILL "$DOCKERD_PID" 2>/dev/null
	((DOCKERD_CHILD)) && wait "$DOCKERD_PID" 2>/dev/null
	DOCKERD_PID=""
}
# shellcheck disable=SC2317 # called through the trap
on_exit() {
	if ((POLICY_OWN)); then
		rm -f "$POLICY_RC"
	fi
	if [[ -n $SIPP_PID ]]; then
		kill "$SIPP_PID" 2>/dev/null
	fi
	if declare -F pc >/dev/null && declare -F cleanup_project >/dev/null; then
		if [[ ${DEPLOY_KEEP:-0} == 1 ]]; then
			note "DEPLOY_KEEP=1: project $PROJECT left up; remove it with: ${DOCKER_HOST:+DOCKER_HOST=$DOCKER_HOST }${COMPOSE_CMD[*]} -p $PROJECT -f $DEPLOY/compose.yaml down${DOCKERD_PID:+ (and kill the private dockerd, pid $DOCKERD_PID)}"
		else
			pc down -t 2 >/dev/null 2>&1
			cleanup_project "$PROJECT"
		fi
	fi
	[[ ${DEPLOY_KEEP:-0} == 1 ]] || stop_dockerd
	stop_all
}
trap on_exit EXIT

if [[ $ENGINE == podman ]]; then
	# netavark runs iptables for the bridge network but does not depend on it: without it every
	# container of the compose network fails to start ("netavark: No such file or directory").
	mapfile -t pkgs < <(need_pkgs podman:podman buildah:buildah podman-compose:podman-compose \
		debootstrap:debootstrap /usr/lib/podman/netavark:netavark \
		/usr/lib/podman/aardvark-dns:aardvark-dns iptables:iptables)
	install_pkgs "${pkgs[@]}" ||
		skip_containers "cannot install ${pkgs[*]}: $(tail -n 2 "$T_TMP/apt.log" | tr '\n' ' ')"
	ENGINE_BIN=podman
	COMPOSE_CMD=(podman-compose)
	COMPOSE_VERSION=$(podman-compose version 2>/dev/null | awk '/podman-compose/ { print $NF; exit }')
	ENGINE_VERSION=$(podman --version)
	image_exists() {
		podman image exists "$1"
	}
	net_bridge() {
		podman network inspect "$1" --format '{{.NetworkInterface}}' 2>/dev/null
	}
	net_gateway() {
		podman network inspect "$1" --format '{{range .Subnets}}{{.Gateway}}{{end}}' 2>/dev/null
	}
	image_healthcheck() {
		podman image inspect --format '{{if .HealthCheck}}{{.HealthCheck.Test}}{{end}}' "$1" 2>/dev/null
	}
	# (podman adds a writable tmpfs to a read-only root unless told not to)
	READ_ONLY=(--read-only --read-only-tmpfs=false)
	# build_image CONTAINERFILE TAG CONTEXT LOG
	build_image() {
		local ignore=()
		[[ -f $1.dockerignore ]] && ignore=(--ignorefile "$1.dockerignore")
		buildah bud --isolation chroot --layers --format docker --pull=never \
			--build-arg "BASE_IMAGE=$BASE" "${ignore[@]}" -f "$1" -t "$2" "$3" >"$4" 2>&1
	}
else
	# docker.io's own client first (a newer one elsewhere on PATH may want a buildx plugin that
	# is not there), else any.
	docker_client() {
		if [[ -x /usr/bin/docker ]]; then echo /usr/bin/docker; else command -v docker; fi
	}
	DOCKER=$(docker_client)
	pkgs=()
	# Debian's docker.io only where no Docker engine is installed: it conflicts with Docker's
	# own packages (docker-ce, whose dockerd is /usr/bin/dockerd).
	if ! command -v dockerd >/dev/null && ! { [[ -n $DOCKER ]] && "$DOCKER" info >/dev/null 2>&1; }; then
		pkgs+=(docker.io)
		# dockerd 20.10 starts no container on a kernel with AppArmor on when apparmor_parser is
		# missing (docker.io only recommends the package).
		[[ $(cat /sys/module/apparmor/parameters/enabled 2>/dev/null) == Y ]] &&
			! command -v apparmor_parser >/dev/null && pkgs+=(apparmor)
	fi
	# docker-compose (1.x) where the compose plugin is missing, as on Debian bookworm.
	if ! { [[ -n $DOCKER ]] && "$DOCKER" compose version >/dev/null 2>&1; } &&
		! command -v docker-compose >/dev/null; then
		pkgs+=(docker-compose)
	fi
	mapfile -t more < <(need_pkgs debootstrap:debootstrap iptables:iptables)
	pkgs+=("${more[@]}")
	install_pkgs "${pkgs[@]}" ||
		skip_containers "cannot install ${pkgs[*]}: $(tail -n 2 "$T_TMP/apt.log" | tr '\n' ' ')"
	DOCKER=$(docker_client)
	[[ -n $DOCKER ]] || skip_containers "no docker client after the install"
	# The machine's daemon when one answers; else a private one, with its own socket, state and
	# data (kept between runs: the image layers are cached there), leaving the host's firewall
	# alone (no iptables rules: published ports go through docker-proxy, enough for loopback).
	if ! "$DOCKER" info >/dev/null 2>&1; then
		export DOCKER_HOST=unix:///run/rtmp2sip-docker.sock
		if "$DOCKER" info >/dev/null 2>&1; then
			# One left by an earlier run (killed, or DEPLOY_KEEP=1): used, and stopped at the end.
			DOCKERD_PID=$(cat /run/rtmp2sip-docker.pid 2>/dev/null)
			[[ $DOCKERD_PID =~ ^[0-9]+$ && $(cat "/proc/$DOCKERD_PID/comm" 2>/dev/null) == dockerd ]] ||
				DOCKERD_PID=""
			note "a private dockerd of an earlier run answers (pid ${DOCKERD_PID:-?}): used"
		else
			command -v dockerd >/dev/null || skip_containers "no docker daemon answers and dockerd is not installed"
			mkdir -p /var/lib/rtmp2sip-docker /run/rtmp2sip-docker
			dockerd --host "$DOCKER_HOST" --data-root /var/lib/rtmp2sip-docker \
				--exec-root /run/rtmp2sip-docker --pidfile /run/rtmp2sip-docker.pid \
				--iptables=false --ip-forward=false --ip-masq=false --bridge=none \
				>"$T_TMP/dockerd.log" 2>&1 &
			DOCKERD_PID=$!
			DOCKERD_CHILD=1
			for ((i = 0; i < 300; i++)); do
				"$DOCKER" info >/dev/null 2>&1 && break
				kill -0 "$DOCKERD_PID" 2>/dev/null || break
				sleep 0.1
			done
			if ! "$DOCKER" info >/dev/null 2>&1; then
				err="$(grep -iE 'level=(error|fatal)|failed' "$T_TMP/dockerd.log" | tail -n 2 | tr '\n' ' ')"
				stop_dockerd
				skip_containers "dockerd does not start here: $err"
			fi
			note "started a private dockerd ($DOCKER_HOST, data in /var/lib/rtmp2sip-docker)"
		fi
	fi
	ENGINE_BIN=$DOCKER
	if "$DOCKER" compose version >/dev/null 2>&1; then
		COMPOSE_CMD=("$DOCKER" compose)
	else
		COMPOSE_CMD=(docker-compose)
	fi
	COMPOSE_VERSION=$("${COMPOSE_CMD[@]}" version --short 2>/dev/null)
	ENGINE_VERSION="dockerd $("$DOCKER" version --format '{{.Server.Version}}' 2>/dev/null)"
	image_exists() {
		"$DOCKER" image inspect "$1" >/dev/null 2>&1
	}
	net_bridge() {
		local b
		b=$("$DOCKER" network inspect "$1" --format '{{index .Options "com.docker.network.bridge.name"}}' 2>/dev/null)
		[[ -n $b ]] || b=br-$("$DOCKER" network inspect "$1" --format '{{.Id}}' 2>/dev/null | cut -c1-12)
		echo "$b"
	}
	net_gateway() {
		"$DOCKER" network inspect "$1" --format '{{range .IPAM.Config}}{{.Gateway}}{{end}}' 2>/dev/null
	}
	image_healthcheck() {
		"$DOCKER" image inspect --format '{{if .Config.Healthcheck}}{{.Config.Healthcheck.Test}}{{end}}' "$1" 2>/dev/null
	}
	READ_ONLY=(--read-only)
	# build_image CONTAINERFILE TAG CONTEXT LOG. BuildKit reads deploy/Containerfile.dockerignore
	# (the file name plus .dockerignore); the build's apt-get reaches the Debian archive over the
	# host's network.
	build_image() {
		DOCKER_BUILDKIT=1 "$DOCKER" build --network host --build-arg "BASE_IMAGE=$BASE" \
			-f "$1" -t "$2" "$3" >"$4" 2>&1
	}
fi
COMPOSE="${COMPOSE_CMD[*]##*/} $COMPOSE_VERSION"
note "engine: $ENGINE_VERSION; compose: $COMPOSE"
eng() {
	"$ENGINE_BIN" "$@"
}
# Every compose call goes through pc, with the test's override file.
pc() {
	"${COMPOSE_CMD[@]}" -p "$PROJECT" -f "$DEPLOY/compose.yaml" -f "$T_TMP/compose.test.yaml" "$@"
}

# labelled ID LABEL: the value of a container's label.
labelled() {
	eng inspect --format "{{index .Config.Labels \"$2\"}}" "$1" 2>/dev/null
}

# Leftovers of an earlier run that was killed: removed (podman: from the mount namespace their
# containers live in, as their network namespaces are mounted there only), else as well as it goes.
cleanup_project() {
	local p=$1 ctr conmon
	for ctr in $(eng ps -aq --filter "label=com.docker.compose.project=$p" 2>/dev/null); do
		if [[ $ENGINE == podman ]]; then
			conmon=$(eng inspect --format '{{.State.ConmonPid}}' "$ctr" 2>/dev/null)
			if [[ -n $conmon && $conmon != 0 && -e /proc/$conmon/ns/mnt ]]; then
				nsenter -t "$conmon" -m podman rm -f -t 0 "$ctr" >/dev/null 2>&1
			fi
		fi
		eng rm -f "$ctr" >/dev/null 2>&1
	done
	for net in frontend backend default; do
		eng network rm "${p}_$net" >/dev/null 2>&1
	done
	# netavark 1.4 leaves one empty NETAVARK-DN-* chain behind per removed network: drop the
	# empty ones (iptables refuses to delete a chain that still has rules or references).
	if [[ $ENGINE == podman ]] && command -v iptables >/dev/null; then
		for chain in $(iptables -t nat -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^NETAVARK-DN-/ { print $2 }'); do
			iptables -t nat -S "$chain" 2>/dev/null | grep -qv '^-N' ||
				iptables -t nat -X "$chain" 2>/dev/null
		done
	fi
	return 0
}
for old in $(for c in $(eng ps -aq --filter label=com.docker.compose.project 2>/dev/null); do
	labelled "$c" com.docker.compose.project
done | grep -E '^rtmp2sip-t[0-9]+$' | sort -u); do
	# (a run still going, on the same engine, keeps its own)
	kill -0 "${old#rtmp2sip-t}" 2>/dev/null && continue
	note "removing the containers of an earlier run ($old)"
	cleanup_project "$old"
done

# --- what this host allows: a throw-away container tells (after the base exists)
BASE=${BASE_IMAGE:-}
if [[ -z $BASE ]]; then
	if image_exists docker.io/library/debian:bookworm-slim; then
		BASE=docker.io/library/debian:bookworm-slim
	else
		BASE=localhost/rtmp2sip-base:bookworm
		if ! image_exists "$BASE"; then
			t0=$(date +%s)
			if ! ENGINE=$(command -v "$ENGINE_BIN") bash "$DEPLOY/mkbase.sh" "$BASE" >"$T_TMP/mkbase.log" 2>&1; then
				skip_containers "no base image: docker.io/library/debian:bookworm-slim is not in local storage (no registry is contacted) and deploy/mkbase.sh failed: $(tail -n 3 "$T_TMP/mkbase.log" | tr '\n' ' ')"
			fi
			figure "base image $BASE made in $(($(date +%s) - t0)) s (deploy/mkbase.sh)"
		fi
	fi
elif ! image_exists "$BASE"; then
	skip_containers "BASE_IMAGE=$BASE is not in local storage"
fi
note "base image: $BASE"

ULIMITS=()
probe_run() {
	eng run --rm --network none "${ULIMITS[@]}" "$BASE" true >"$T_TMP/probe.log" 2>&1
}
if ! probe_run; then
	if grep -qi 'setrlimit\|rlimit' "$T_TMP/probe.log"; then
		# No CAP_SYS_RESOURCE: the runtime cannot set the default limits; ask for ones within ours.
		nofile=$(ulimit -Hn)
		[[ $nofile == unlimited || $nofile -gt 1048576 ]] && nofile=1048576
		ULIMITS=(--ulimit "nofile=$nofile:$nofile" --ulimit nproc=32768:32768)
		note "the runtime cannot raise rlimits here: running with ${ULIMITS[*]}"
	fi
	if ! probe_run; then
		skip_containers "containers cannot run here: $(grep -v '^time=' "$T_TMP/probe.log" | tail -n 2 | tr '\n' ' ')"
	fi
fi

# --- image: both images built from their Containerfiles (layers cached between runs).
t0=$(date +%s)
if ! build_image "$DEPLOY/Containerfile" "$IMAGE" "$T_ROOT" "$T_TMP/build.log"; then
	fail "${P}_image" "the image did not build: $(grep -iE 'error|fail' "$T_TMP/build.log" | tail -n 3 | tr '\n' ' ')"
	log_tail "$T_TMP/build.log" 30
	skip_containers "no image"
fi
build_s=$(($(date +%s) - t0))
if ! build_image "$DEPLOY/redis.Containerfile" "$REDIS_IMAGE" "$DEPLOY" "$T_TMP/build-redis.log"; then
	fail "${P}_image" "the Redis image did not build: $(tail -n 3 "$T_TMP/build-redis.log" | tr '\n' ' ')"
	skip_containers "no Redis image"
fi
size=$(eng image inspect --format '{{.Size}}' "$IMAGE")
size_mb=$(awk -v s="$size" 'BEGIN { printf "%.1f", s / 1e6 }')
base_mb=$(awk -v s="$(eng image inspect --format '{{.Size}}' "$BASE")" 'BEGIN { printf "%.1f", s / 1e6 }')
figure "$ENGINE image $IMAGE: $size_mb MB (base $base_mb MB), built in $build_s s (layers cached between runs)"
why=()
cfg=$(eng image inspect --format '{{.Config.User}}|{{.Config.StopSignal}}|{{.Config.Entrypoint}}|{{.Config.Cmd}}' "$IMAGE")
[[ $cfg == "10001:10001|SIGTERM|[/usr/bin/rtmp2sip-entrypoint]|[signaler]" ]] || why+=("config: $cfg")
hc=$(image_healthcheck "$IMAGE")
[[ $hc == *healthcheck* ]] || why+=("no HEALTHCHECK in the image config ($hc)")
uid=$(eng run --rm --network none --no-healthcheck "${ULIMITS[@]}" "$IMAGE" id -u 2>/dev/null)
[[ $uid == 10001 ]] || why+=("runs as uid '$uid'")
v=$(eng run --rm --network none --no-healthcheck "${ULIMITS[@]}" "$IMAGE" relayctl --help 2>/dev/null | head -n 1)
[[ $v == usage:* ]] || why+=("relayctl: $v")
# ~100 MB before the worker's codecs; Debian's libavcodec59 (mediaworker/acodec.c) brings the
# libraries of all its codecs, ~190 MB installed (apt's Installed-Size over what it adds).
((size < 350000000)) || why+=("image is $size_mb MB")
# The deployment's secrets, made as docs/deploy.md says, with the image's own relayctl for the keys.
t0=$(date +%s.%N)
SECRETS="$T_TMP/compose-secrets"
if ENGINE="$ENGINE_BIN" ENGINE_OPTS="${ULIMITS[*]}" bash "$DEPLOY/mksecrets.sh" --dir "$SECRETS" \
	--cn localhost --image "$IMAGE" >"$T_TMP/mksecrets.log" 2>&1 && grep -q 'made in' "$T_TMP/mksecrets.log"; then
	figure "deploy/mksecrets.sh (keys by the image's relayctl, a 2048-bit RSA certificate): $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') s"
else
	why+=("mksecrets.sh: $(tail -n 2 "$T_TMP/mksecrets.log" | tr '\n' ' ')")
fi
for f in signaler.key worker.key redis.pass call-token.secret tls/rtmps.key; do
	st=$(stat -c '%a %u' "$SECRETS/$f" 2>/dev/null)
	[[ $st == "600 10001" ]] || why+=("secrets/$f: mode and owner '$st', not '600 10001'")
done
REDIS_PASS=$(cat "$SECRETS/redis.pass" 2>/dev/null)
# Both daemons start on a read-only root without a writable tmpfs (READ_ONLY), as
# readOnlyRootFilesystem in Kubernetes: nothing is written to the file system. With their keys
# mounted as compose mounts them: read without a warning about their modes.
for d in signaler mediaworker; do
	[[ $d == signaler ]] && k=signaler || k=worker
	timeout 20 "$ENGINE_BIN" run --rm --network none --no-healthcheck "${READ_ONLY[@]}" \
		"${ULIMITS[@]}" -e POD_IP=127.0.0.1 -e REDIS_HOST=127.0.0.1 -e CALL_AUTH=none --stop-timeout 2 \
		-e CURVE_SECRET_KEY_FILE=/run/secrets/key -e CURVE_ALLOWED_KEYS_FILE=/etc/rtmp2sip/allowed/$k.allowed \
		-v "$SECRETS/$k.key:/run/secrets/key:ro" -v "$SECRETS/allowed:/etc/rtmp2sip/allowed:ro" \
		--entrypoint /bin/bash "$IMAGE" -c "timeout -s INT 2 rtmp2sip-entrypoint $d" \
		>"$T_TMP/ro-$d.log" 2>&1
	grep -q "$d ready\|signaler .* ready" "$T_TMP/ro-$d.log" ||
		why+=("$d on a read-only root: $(grep -v '^time=' "$T_TMP/ro-$d.log" | tail -n 2 | tr '\n' ' ')")
	grep -q 'readable by others' "$T_TMP/ro-$d.log" && why+=("$d: $(grep -m1 'readable by others' "$T_TMP/ro-$d.log")")
done
if [[ ${#why[@]} -eq 0 ]]; then
	pass "${P}_image ($size_mb MB)"
else
	fail "${P}_image" "$(printf '%s; ' "${why[@]}")"
fi

# --- deploy_up_ready
RTMPS_PUB=$(free_port)
SIP_PUB=$(free_port)
METRICS_PUB=$(free_port)
{
	echo "services:"
	for s in redis signaler mediaworker; do
		echo "  $s:"
		if [[ ${#ULIMITS[@]} -gt 0 ]]; then
			echo "    ulimits:"
			echo "      nofile: {soft: ${nofile:-20000}, hard: ${nofile:-20000}}"
			echo "      nproc: {soft: 32768, hard: 32768}"
		fi
		# What the Kubernetes manifests ask for: a read-only root file system. No restart policy:
		# a daemon drained by relayctl exits by itself, and its exit status is checked.
		if [[ $s != redis ]]; then
			echo "    read_only: true"
			echo "    restart: \"no\""
		fi
	done
} >"$T_TMP/compose.test.yaml"
export RTMP2SIP_IMAGE=$IMAGE REDIS_IMAGE RTMPS_PUBLISH=$RTMPS_PUB SIP_PUBLISH=$SIP_PUB \
	METRICS_PUBLISH=$METRICS_PUB WORKERS=3 WORKER_DRAIN_TIMEOUT=5 LOG_LEVEL=info RTMP2SIP_SECRETS=$SECRETS
why=()
# Without CALL_AUTH compose refuses to go on (podman-compose 1.0.x has no `config`: any command
# reads the file).
unset CALL_AUTH
if [[ $ENGINE == podman ]]; then pc ps >"$T_TMP/noauth.log" 2>&1; else pc config -q >"$T_TMP/noauth.log" 2>&1; fi
noauth_rc=$?
((noauth_rc != 0)) && grep -q 'CALL_AUTH' "$T_TMP/noauth.log" ||
	why+=("compose without CALL_AUTH: exit $noauth_rc: $(tail -n 2 "$T_TMP/noauth.log" | tr '\n' ' ')")
export CALL_AUTH=token
TOKEN_SECRET=$(cat "$SECRETS/call-token.secret")
# The documented commands: WORKERS=3 for podman-compose (deploy.replicas; 1.0.x has no --scale),
# --scale for docker compose / docker-compose (1.x reads deploy.replicas only with --compatibility).
UP=(up -d)
[[ $ENGINE == docker ]] && UP+=(--scale mediaworker=3)
t0=$(date +%s.%N)
pc "${UP[@]}" >"$T_TMP/up.log" 2>&1
up_rc=$?
up_s=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
ready=""
for ((i = 0; i < 300; i++)); do
	if [[ $(curl -s -m 1 "http://127.0.0.1:$METRICS_PUB/readyz") == ready ]]; then
		ready=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
		break
	fi
	sleep 0.1
done
ctr() { # ctr SERVICE: the service's container names, in replica order
	local c
	for c in $(eng ps -aq --filter "label=$LABEL" --filter "label=com.docker.compose.service=$1"); do
		eng inspect --format '{{index .Config.Labels "com.docker.compose.container-number"}} {{.Name}}' "$c"
	done | sort -n | awk '{ sub("^/", "", $2); print $2 }'
}
SIG_CTR=$(ctr signaler)
REDIS_CTR=$(ctr redis)
mapfile -t WORKERS_CTR < <(ctr mediaworker)
# rcli ARGS...: redis-cli in the Redis container, authenticated from the secret there (the
# password on no command line).
rcli() {
	# shellcheck disable=SC2016 # expanded in the container
	eng exec "$REDIS_CTR" sh -c 'REDISCLI_AUTH=$(cat /run/secrets/redis_password) exec redis-cli --no-auth-warning "$@"' \
		rcli "$@"
}
relayctl() {
	eng exec "$SIG_CTR" rtmp2sip-entrypoint relayctl "$@"
}
# alive_workers: the ids of the live workers, per relayctl.
alive_workers() {
	relayctl --json workers 2>/dev/null | python3 -c 'import json, sys
print(" ".join(sorted(w["worker_id"] for w in json.load(sys.stdin) if w.get("alive"))))' 2>/dev/null
}
worker_id() { # worker_id CONTAINER: its WORKER_ID (the container host name)
	eng inspect --format '{{.Config.Hostname}}' "$1"
}
# ip_on CONTAINER NETWORK (frontend or backend): the container's address there.
ip_on() {
	eng inspect --format "{{with index .NetworkSettings.Networks \"${PROJECT}_$2\"}}{{.IPAddress}}{{end}}" "$1" 2>/dev/null
}
worker_ip() {
	ip_on "$1" frontend
}
# fingerprint: the SHA-256 fingerprint of the certificate in a PEM on stdin.
fingerprint() {
	openssl x509 -noout -fingerprint -sha256 2>/dev/null
}
# served_cert: the fingerprint of the certificate the published RTMPS port presents.
served_cert() {
	openssl s_client -connect "127.0.0.1:$RTMPS_PUB" -servername localhost </dev/null 2>/dev/null | fingerprint
}
((up_rc == 0)) || why+=("$COMPOSE up exited $up_rc: $(grep -iv '^podman\|^\[' "$T_TMP/up.log" | grep -i err | tail -n 2 | tr '\n' ' ')")
[[ -n $ready ]] || why+=("signaler /readyz not 200 within 30 s: $(curl -s -m 1 "http://127.0.0.1:$METRICS_PUB/readyz")")
[[ ${#WORKERS_CTR[@]} -eq 3 ]] || why+=("${#WORKERS_CTR[@]} worker containers, not 3")
for ((i = 0; i < 50; i++)); do
	alive=$(alive_workers)
	[[ $(wc -w <<<"$alive") -eq 3 ]] && break
	sleep 0.2
done
[[ $(wc -w <<<"$alive") -eq 3 ]] || why+=("relayctl sees live workers '$alive'")
# Workers' metrics are on their backend address only: asked from inside (the image's healthcheck).
for w in "${WORKERS_CTR[@]}"; do
	r=$(eng exec "$w" rtmp2sip-entrypoint healthcheck /readyz 2>&1) || why+=("$w /readyz: '$r'")
done
# RTMPS on the published port with the certificate of the secrets; no plain RTMP listener.
served=$(served_cert)
[[ -n $served && $served == "$(fingerprint <"$SECRETS/tls/rtmps.crt")" ]] ||
	why+=("RTMPS on 127.0.0.1:$RTMPS_PUB does not present secrets/tls/rtmps.crt ('$served')")
eng logs "$SIG_CTR" >"$T_TMP/signaler-up.log" 2>&1
grep -q 'rtmps: listening on 0.0.0.0:1936' "$T_TMP/signaler-up.log" || why+=("no 'rtmps: listening on 0.0.0.0:1936' in the signaler log")
grep -q 'rtmp: listening' "$T_TMP/signaler-up.log" && why+=("plain RTMP on by default: $(grep -m1 'rtmp: listening' "$T_TMP/signaler-up.log")")
# What docs/deploy.md asks of podman users with netavark before 1.9: the bridge's MAC fixed, else
# the first container to go away that holds the bridge's lowest port MAC cuts the others off.
# Docker sets a MAC of its own on the bridges it makes: fixed already, nothing to do.
BRIDGE=$(net_bridge "${PROJECT}_frontend")
if [[ $ENGINE == podman ]]; then
	for net in frontend backend; do
		pin=$(sh "$DEPLOY/podman-pin-bridge.sh" "${PROJECT}_$net" 2>&1) || why+=("$pin")
		note "$pin"
	done
else
	t=$(cat "/sys/class/net/$BRIDGE/addr_assign_type" 2>/dev/null)
	[[ $t == 3 ]] || why+=("docker left the MAC of bridge '$BRIDGE' unset (addr_assign_type '$t', not 3)")
fi
BRIDGE_MAC=$(cat "/sys/class/net/$BRIDGE/address" 2>/dev/null)
if [[ ${#why[@]} -eq 0 ]]; then
	figure "$COMPOSE up (redis, signaler, 3 workers) to signaler /readyz 200: $ready s (up itself returned after $up_s s)"
	pass "${P}_up_ready ($ready s)"
else
	fail "${P}_up_ready" "$(printf '%s; ' "${why[@]}")"
	for c in "$SIG_CTR" "${WORKERS_CTR[@]}"; do
		[[ -n $c ]] && eng logs "$c" >"$T_TMP/$c.log" 2>&1 && log_tail "$T_TMP/$c.log" 10
	done
	skip_containers "the cluster did not come up"
fi

# --- deploy_healthcheck
why=()
for c in "$SIG_CTR" "${WORKERS_CTR[0]}"; do
	if [[ $ENGINE == podman ]]; then
		# Podman without systemd does not schedule the checks (it logs so: time=... lines): one
		# is run here.
		podman healthcheck run "$c" >"$T_TMP/hc.log" 2>&1
		rc=$?
		out=$(grep -v '^time=' "$T_TMP/hc.log" | tr '\n' ' ')
		[[ $rc -eq 0 ]] || why+=("$c: exit $rc ${out:-unhealthy}")
	else
		# Docker runs the image's HEALTHCHECK itself, every 10 s: its verdict is awaited.
		for ((i = 0; i < 300; i++)); do
			h=$(eng inspect --format '{{if .State.Health}}{{.State.Health.Status}}{{end}}' "$c")
			[[ $h == healthy || $h == unhealthy ]] && break
			sleep 0.1
		done
		[[ $h == healthy ]] ||
			why+=("$c: health '$h': $(eng inspect --format '{{range .State.Health.Log}}{{.ExitCode}} {{.Output}} {{end}}' "$c" 2>/dev/null | tr '\n' ' ' | cut -c1-200)")
	fi
done
if [[ ${#why[@]} -eq 0 ]]; then
	pass "${P}_healthcheck"
else
	fail "${P}_healthcheck" "$(printf '%s; ' "${why[@]}")"
fi

# --- deploy_redis_auth: Redis wants the password, which no command line shows, and is on the
# backend network only: nothing published, and nothing on the frontend network (where SIP and RTP
# peers are) reaches it, while the same probe from the backend network does.
why=()
out=$(eng exec "$REDIS_CTR" redis-cli ping 2>&1)
[[ $out == *NOAUTH* ]] || why+=("redis-cli without the password: '$out'")
out=$(rcli ping 2>&1)
[[ $out == PONG ]] || why+=("redis-cli with the password: '$out'")
# shellcheck disable=SC2016 # expanded in the container
cmdlines=$(eng exec "$REDIS_CTR" sh -c 'cat /proc/[0-9]*/cmdline' 2>/dev/null | tr '\0' ' ')
[[ $cmdlines == *redis-server* ]] || why+=("cannot read the command lines of the Redis container: '$cmdlines'")
[[ -n $REDIS_PASS && $cmdlines != *"$REDIS_PASS"* ]] || why+=("the Redis password is on a command line in its container")
# (matched by bash itself: a grep given the password would show it on its own command line)
cmdlines=$(cat /proc/[0-9]*/cmdline 2>/dev/null | tr '\0' ' ')
[[ $cmdlines == *"$REDIS_PASS"* ]] && why+=("the Redis password is on a command line of this host")
[[ -z $(eng port "$REDIS_CTR" 2>/dev/null) ]] || why+=("Redis publishes ports: $(eng port "$REDIS_CTR" | tr '\n' ' ')")
[[ -z $(ip_on "$REDIS_CTR" frontend) ]] || why+=("Redis is on the frontend network")
REDIS_IP=$(ip_on "$REDIS_CTR" backend)
# reach NETWORK ADDRESS PORT: "reached" or "unreachable", from a throwaway container on NETWORK.
reach() {
	timeout 30 "$ENGINE_BIN" run --rm --no-healthcheck "${ULIMITS[@]}" --network "${PROJECT}_$1" \
		--entrypoint /bin/bash "$IMAGE" -c "timeout 3 bash -c 'exec 3<>/dev/tcp/$2/$3' 2>/dev/null && echo reached || echo unreachable" 2>&1 |
		grep -v '^time='
}
# Docker isolates internal networks with its iptables rules only (its containers there still get a
# default route): the private dockerd of this test runs without them, so there a frontend
# container does reach Redis, and only the rest of this case is checked.
isolated=""
if [[ $ENGINE == docker && -n $DOCKERD_PID ]]; then
	isolated="frontend isolation not checked: the private dockerd runs with --iptables=false"
else
	out=$(reach frontend "$REDIS_IP" 6379)
	[[ $out == unreachable ]] || why+=("Redis at $REDIS_IP:6379 from the frontend network: $out")
fi
out=$(reach backend "$REDIS_IP" 6379)
[[ $out == reached ]] || why+=("Redis at $REDIS_IP:6379 from the backend network (the control): $out")
if [[ ${#why[@]} -eq 0 ]]; then
	pass "${P}_redis_auth${isolated:+ ($isolated)}"
else
	fail "${P}_redis_auth" "$(printf '%s; ' "${why[@]}")"
fi

# --- deploy_zmq_auth: a worker's ZeroMQ sockets, from a throwaway container on the backend
# network running zprobe (the host's build: it needs only libzmq, which the image has): a client
# without a key gets no reply on either socket, one with the signalers' key pair gets HELLO_OK;
# from the frontend network they are not reachable at all (bound to the backend address only).
why=()
W0=${WORKERS_CTR[0]}
W0_BACK=$(ip_on "$W0" backend)
WKEY=$(awk '!/^#/ { print $1; exit }' "$SECRETS/worker.pub")
# zprobe_in NETWORK [--key NAME] ARGS...: zprobe's output, with the key pair $SECRETS/NAME.key
zprobe_in() {
	local net=$1 key=()
	shift
	if [[ $1 == --key ]]; then
		key=(-v "$2:/run/secrets/probe_key:ro")
		shift 2
		set -- --key-file /run/secrets/probe_key --server-key "$WKEY" "$@"
	fi
	timeout 60 "$ENGINE_BIN" run --rm --no-healthcheck "${ULIMITS[@]}" --network "${PROJECT}_$net" \
		-v "$BUILD/tools/zprobe:/usr/local/bin/zprobe:ro" "${key[@]}" --entrypoint /usr/local/bin/zprobe \
		"$IMAGE" "$@" 2>&1 | grep -v '^time='
}
for port in 7001 7002; do
	out=$(zprobe_in backend --endpoint "tcp://$W0_BACK:$port" --id deploy-nokey hello)
	[[ $out == "STEP hello: NO_REPLY"* ]] || why+=("no key, port $port: $out")
done
out=$(zprobe_in backend --key "$SECRETS/signaler.key" --endpoint "tcp://$W0_BACK:7001" --id deploy-probe hello)
[[ $out == "STEP hello: HELLO_OK"* ]] || why+=("the signalers' key pair (the control): $out")
out=$(reach frontend "$(worker_ip "$W0")" 7001)
[[ $out == unreachable ]] || why+=("the worker's ZeroMQ port on its frontend address: $out")
if [[ ${#why[@]} -eq 0 ]]; then
	pass "${P}_zmq_auth"
else
	fail "${P}_zmq_auth" "$(printf '%s; ' "${why[@]}")"
fi

# --- calls. SIPp answers on the host, on the frontend network's gateway address (the containers
# reach it; its RTP echo goes back to each worker's frontend address). Every call goes through the
# published RTMPS port (ffmpeg does not check the self-signed certificate) with a signed token.
GW=$(net_gateway "${PROJECT}_frontend")
SIPP_PORT=$(free_port)
SIPP_MPORT=$(free_port)
SIPP_MPORT=$((SIPP_MPORT / 2 * 2))
URL="rtmps://127.0.0.1:$RTMPS_PUB/call"
# token_query DEST: the query signing call/DEST for ten minutes (docs/configuration.md).
token_query() {
	local exp=$(($(date +%s) + 600))
	printf 'expires=%s&token=%s' "$exp" \
		"$(printf '%s' "$1:$exp" | openssl dgst -sha256 -hmac "$TOKEN_SECRET" | awk '{ print $NF }')"
}
FF=(ffmpeg -nostdin -hide_banner -loglevel error -y)
# The callee takes re-INVITEs (media moving to another worker) and echoes RTP to its source.
(cd "$T_TMP" && exec sipp -sf "$SIPP_DIR/cluster_uas_reinvite.xml" -rtp_echo -mp "$SIPP_MPORT" \
	-p "$SIPP_PORT" -i "$GW" -nostdin -trace_msg -message_file "$T_TMP/uas.msg" \
	-trace_err -error_file "$T_TMP/uas.err") >"$T_TMP/sipp.log" 2>&1 &
SIPP_PID=$!
T_PIDS+=("$SIPP_PID")
sleep 0.5
CALLS=0

# call_bg NAME CODEC FREQ SECONDS: a player recording NAME.wav (SECONDS - 2 s) and a publisher of
# a FREQ tone (SECONDS s) on call/NAME@<SIPp> (one call per destination); pids in CALL_PIDS.
declare -A CALL_PIDS=()
call_bg() {
	local name=$1 codec freq=$3 secs=$4 u="$URL/$1@$GW:$SIPP_PORT"
	u+="?$(token_query "$1@$GW:$SIPP_PORT")"
	[[ $2 == speex ]] && codec=(-c:a libspeex -ac 1 -ar 16000) || codec=(-c:a pcm_mulaw -ac 1 -ar 8000)
	timeout $((secs + 20)) "${FF[@]}" -analyzeduration 1000000 -i "$u" -t $((secs - 2)) \
		"$T_TMP/$name.wav" >"$T_TMP/$name.play.log" 2>&1 &
	CALL_PIDS[$name.play]=$!
	sleep 1
	timeout $((secs + 20)) "${FF[@]}" -re -f lavfi -i "sine=frequency=$freq:sample_rate=16000:duration=$secs" \
		"${codec[@]}" -f flv "$u" >"$T_TMP/$name.pub.log" 2>&1 &
	CALL_PIDS[$name.pub]=$!
	CALLS=$((CALLS + 1))
}
# call_wait NAME: waits for both ends of the call.
call_wait() {
	wait "${CALL_PIDS[$1.pub]}" 2>/dev/null
	wait "${CALL_PIDS[$1.play]}" 2>/dev/null
}
# tone NAME FREQ MIN-SECONDS [wavcheck options]: NAME.wav holds FREQ; prints why not.
tone() {
	local name=$1 freq=$2 min=$3
	shift 3
	[[ -s $T_TMP/$name.wav ]] || { echo "$name: no recording ($(tail -n 1 "$T_TMP/$name.play.log"))"; return 1; }
	"$WAVCHECK" "$T_TMP/$name.wav" --expect-freq "$freq" --tol 30 --min-duration "$min" \
		--min-rms-dbfs -35 "$@" >"$T_TMP/$name.check" 2>&1 && return 0
	echo "$name: $(grep -m1 FAIL "$T_TMP/$name.check" || tail -n 1 "$T_TMP/$name.check")"
	return 1
}
# legs_on: "worker=count ..." of the leg records in Redis.
legs_on() {
	local k
	for k in $(rcli --scan --pattern 'rs:v1:leg:*'); do
		rcli hget "$k" worker
	done | sort | uniq -c | awk '{ printf "%s=%s ", $2, $1 }'
}

# --- deploy_call_tone
call_bg tone speex 1000 8
call_wait tone
if out=$(tone tone 1000 4); then
	pass "${P}_call_tone"
else
	fail "${P}_call_tone" "$out; $(grep -i 'call\|sip' <(eng logs "$SIG_CTR" 2>&1) | tail -n 3 | tr '\n' ' ')"
fi

# --- deploy_call_auth: CALL_AUTH=token (compose.yaml takes CALL_AUTH from the shell): a publish
# without a token is refused and no call is placed.
why=()
timeout 20 "${FF[@]}" -re -f lavfi -i "sine=frequency=500:sample_rate=16000:duration=2" \
	-c:a pcm_mulaw -ac 1 -ar 8000 -f flv "$URL/notoken@$GW:$SIPP_PORT" >"$T_TMP/notoken.pub.log" 2>&1 &&
	why+=("ffmpeg published call/notoken without a token")
eng logs "$SIG_CTR" 2>&1 | grep -q 'refused: call: token required' ||
	why+=("no 'token required' refusal in the signaler log")
grep -q 'notoken@' "$T_TMP/uas.msg" 2>/dev/null && why+=("an INVITE for call/notoken reached SIPp")
if [[ ${#why[@]} -eq 0 ]]; then
	pass "${P}_call_auth"
else
	fail "${P}_call_auth" "$(printf '%s; ' "${why[@]}")"
fi

# --- deploy_reload: a certificate renewal and the second step of a key rotation, as
# docs/deploy.md gives them for compose: files renamed over the old ones in the mounted
# directories, then SIGHUP. The signaler serves the new certificate (and the calls below go
# through it); the workers re-read their allowed list and take the new signaler key.
why=()
openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj /CN=localhost \
	-keyout "$SECRETS/tls/next.key" -out "$SECRETS/tls/next.crt" >/dev/null 2>&1 &&
	chown 10001:10001 "$SECRETS/tls/next.key" "$SECRETS/tls/next.crt" &&
	mv "$SECRETS/tls/next.key" "$SECRETS/tls/rtmps.key" && mv "$SECRETS/tls/next.crt" "$SECRETS/tls/rtmps.crt" ||
	why+=("cannot make the next certificate")
want=$(fingerprint <"$SECRETS/tls/rtmps.crt")
t0=$(date +%s.%N)
eng kill -s HUP "$SIG_CTR" >/dev/null 2>&1
for ((i = 0; i < 50; i++)); do
	served=$(served_cert)
	[[ $served == "$want" ]] && break
	sleep 0.1
done
if [[ -n $want && $served == "$want" ]]; then
	figure "certificate renewal: '$ENGINE_BIN kill -s HUP' to the new certificate served on the published port: $(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.2f", b - a }') s (the kill command included)"
else
	why+=("after SIGHUP the signaler serves '$served', not the new certificate '$want'")
fi
"$BUILD/relayctl" keygen --dir "$T_TMP" sig-next >/dev/null && chown 10001:10001 "$T_TMP/sig-next.key" &&
	cat "$SECRETS/allowed/worker.allowed" "$T_TMP/sig-next.pub" >"$SECRETS/allowed/.next" &&
	chmod 644 "$SECRETS/allowed/.next" && mv "$SECRETS/allowed/.next" "$SECRETS/allowed/worker.allowed" ||
	why+=("cannot add a signaler key to allowed/worker.allowed")
for w in "${WORKERS_CTR[@]}"; do
	eng kill -s HUP "$w" >/dev/null 2>&1
done
for w in "${WORKERS_CTR[@]}"; do
	for ((i = 0; i < 50; i++)); do
		eng logs "$w" 2>&1 | grep -q 'reload: .* 2 signalers allowed (1 added, 0 removed)' && break
		sleep 0.1
	done
	((i < 50)) || why+=("$w: no reload of its allowed list: $(eng logs "$w" 2>&1 | grep -i 'reload\|allowed' | tail -n 1)")
done
out=$(zprobe_in backend --key "$T_TMP/sig-next.key" --endpoint "tcp://$W0_BACK:7001" --id deploy-next hello)
[[ $out == "STEP hello: HELLO_OK"* ]] || why+=("the new signaler key after the reload: $out")
if [[ ${#why[@]} -eq 0 ]]; then
	pass "${P}_reload"
else
	fail "${P}_reload" "$(printf '%s; ' "${why[@]}")"
fi

# --- deploy_drain_scale_in: three G.711 calls (pass-through: a steady tone across a handover,
# see docs/architecture.md on adopted Speex decoders), then two workers stopped at once.
GRACE=20
for f in 500 700 900; do
	call_bg "drain$f" pcmu "$f" 22
done
sleep 4
before=$(legs_on)
# Stop two workers, those carrying legs first: the third takes their legs when the drain ends.
mapfile -t order < <(for w in "${WORKERS_CTR[@]}"; do
	n=$(grep -o "$(worker_id "$w")=[0-9]*" <<<"$before" | cut -d= -f2)
	echo "${n:-0} $w"
done | sort -rn | awk '{ print $2 }')
STOPPED=("${order[0]}" "${order[1]}")
KEPT=${order[2]}
why=()
# The first one as Kubernetes would: the preStop hook (relayctl drain), then SIGTERM.
pre=$(timeout 20 "$ENGINE_BIN" exec "${STOPPED[0]}" rtmp2sip-entrypoint prestop 2>&1)
pre_rc=$?
[[ $pre_rc -eq 0 && $pre == *"done: drain worker"* ]] || why+=("prestop hook: exit $pre_rc: $pre")
t0=$(date +%s.%N)
for w in "${STOPPED[@]}"; do
	eng stop -t "$GRACE" "$w" >"$T_TMP/stop-$w.log" 2>&1 &
done
wait_stops=()
for w in "${STOPPED[@]}"; do
	for ((i = 0; i < (GRACE + 5) * 10; i++)); do
		[[ $(eng inspect --format '{{.State.Status}}' "$w") == exited ]] && break
		sleep 0.1
	done
	wait_stops+=("$w:$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')")
done
after=$(legs_on)
for f in 500 700 900; do
	call_wait "drain$f"
done
for w in "${STOPPED[@]}"; do
	st=$(eng inspect --format '{{.State.ExitCode}}' "$w")
	[[ $st == 0 ]] || why+=("$w exited $st (137: killed at the grace period)")
	eng logs "$w" >"$T_TMP/$w.log" 2>&1
	grep -q 'SIGTERM: draining\|relayctl: drain' "$T_TMP/$w.log" || why+=("$w: no drain in its log")
done
alive=$(alive_workers)
[[ $alive == "$(worker_id "$KEPT")" ]] || why+=("live workers after the scale-in: '$alive', not $(worker_id "$KEPT")")
[[ $after == "$(worker_id "$KEPT")=3 " ]] || why+=("legs after the drain: '$after', not all 3 on $(worker_id "$KEPT")")
for f in 500 700 900; do
	out=$(tone "drain$f" "$f" 15) || why+=("$out")
	# The part after the handover (5 s drain timeout + up to 3 s handover, from second 4).
	out=$(tone "drain$f" "$f" 5 --ignore-start 13) || why+=("after the handover: $out")
done
note "legs before the stop: $before; after: ${after:-none}; stopped after: ${wait_stops[*]} s"
if [[ ${#why[@]} -eq 0 ]]; then
	pass "${P}_drain_scale_in (3 calls; workers stopped in ${wait_stops[*]} s)"
else
	fail "${P}_drain_scale_in" "$(printf '%s; ' "${why[@]}")"
fi

# --- deploy_failover_kill: a stopped worker comes back; a call lands; its worker is killed.
eng start "${STOPPED[0]}" >/dev/null 2>&1
for ((i = 0; i < 100; i++)); do
	[[ $(wc -w <<<"$(alive_workers)") -eq 2 ]] && break
	sleep 0.2
done
why=()
[[ $(wc -w <<<"$(alive_workers)") -eq 2 ]] || why+=("the restarted worker is not live: '$(alive_workers)'")
moves0=$(curl -s -m 2 "http://127.0.0.1:$METRICS_PUB/metrics" | awk '$1 == "rtmp2sip_signaler_leg_moves_total" { print $2 }')
call_bg kill pcmu 600 20
sleep 5
victim_id=$(legs_on | awk '{ split($1, a, "="); print a[1] }')
victim=""
for w in "${STOPPED[0]}" "$KEPT"; do
	[[ $(worker_id "$w") == "$victim_id" ]] && victim=$w
done
survivor=""
if [[ -z $victim ]]; then
	why+=("no leg of the call on a live worker (legs: $(legs_on))")
else
	[[ $victim == "$KEPT" ]] && survivor=${STOPPED[0]} || survivor=$KEPT
	survivor_ip=$(worker_ip "$survivor")
	sdp0=$(grep -c "c=IN IP4 $survivor_ip" "$T_TMP/uas.msg")
	eng kill -s KILL "$victim" >/dev/null 2>&1
	note "killed $victim ($victim_id) carrying the call; $(worker_id "$survivor") at $survivor_ip is left"
fi
call_wait kill
if [[ -n $survivor ]]; then
	# The gateway re-INVITEs the callee with the adopting worker's address.
	sdp1=$(grep -c "c=IN IP4 $survivor_ip" "$T_TMP/uas.msg")
	((sdp1 > sdp0)) || why+=("no re-INVITE naming the survivor's address $survivor_ip reached SIPp")
fi
moves1=$(curl -s -m 2 "http://127.0.0.1:$METRICS_PUB/metrics" | awk '$1 == "rtmp2sip_signaler_leg_moves_total" { print $2 }')
((${moves1:-0} > ${moves0:-0})) || why+=("leg_moves_total $moves0 -> $moves1")
# The recording starts with the call; the kill comes 5 s in: the tone is back within 1.5 s of it
# and lasts to the end (18 s recorded).
out=$(tone kill 600 15) || why+=("$out")
out=$(tone kill 600 10 --ignore-start 6.5) || why+=("after the kill: $out")
if [[ ${#why[@]} -ne 0 && -n $survivor ]]; then
	why+=("the adopted leg: $(eng logs "$survivor" 2>&1 | grep -F 'leg destroyed' | tail -n 1 | cut -c1-300)")
fi
if [[ ${#why[@]} -eq 0 ]]; then
	pass "${P}_failover_kill"
else
	fail "${P}_failover_kill" "$(printf '%s; ' "${why[@]}")"
fi

# --- deploy_bridge_mac: fixed before the first stop, so unchanged now; whether a port holding the
# fixed MAC left (what would have moved an unfixed bridge) is said.
now_mac=$(cat "/sys/class/net/$BRIDGE/address" 2>/dev/null)
now_type=$(cat "/sys/class/net/$BRIDGE/addr_assign_type" 2>/dev/null)
held="the port it came from: gone"
for port in /sys/class/net/"$BRIDGE"/brif/*; do
	[[ $(cat "/sys/class/net/${port##*/}/address" 2>/dev/null) == "$BRIDGE_MAC" ]] &&
		held="the port it came from: present"
done
[[ $ENGINE == docker ]] && held="set by docker, no port's"
if [[ -n $BRIDGE_MAC && $now_mac == "$BRIDGE_MAC" && $now_type == 3 ]]; then
	pass "${P}_bridge_mac ($BRIDGE kept $BRIDGE_MAC; $held)"
else
	fail "${P}_bridge_mac" "$BRIDGE: MAC '$BRIDGE_MAC' -> '$now_mac', addr_assign_type '$now_type' (3: fixed)"
fi

# --- deploy_no_leftovers (Redis must answer: an empty scan of a Redis that is gone proves nothing)
n=""
for ((i = 0; i < 50; i++)); do
	[[ $(rcli ping 2>/dev/null) == PONG ]] || { n=""; sleep 0.2; continue; }
	n=$(rcli --scan --pattern 'rs:v1:leg:*' | wc -l)
	((n == 0)) && break
	sleep 0.2
done
if [[ $n == 0 ]]; then
	pass "${P}_no_leftovers"
elif [[ -z $n ]]; then
	fail "${P}_no_leftovers" "Redis in $REDIS_CTR does not answer: $(rcli ping 2>&1 | tail -n 1)"
else
	fail "${P}_no_leftovers" "$n leg records left: $(legs_on)"
fi
figure "calls through the containerised cluster: $CALLS placed over RTMPS with signed tokens (1 Speex->PCMU, 4 PCMU pass-through; 2 workers drained and 1 killed under calls)"

# --- deploy_down (every container's log is kept in T_TMP first, for a post-mortem)
for c in $(eng ps -a --filter "label=$LABEL" --format '{{.Names}}'); do
	eng logs "$c" >"$T_TMP/$c.log" 2>&1
done
eng logs "$SIG_CTR" >"$T_TMP/signaler.log" 2>&1
if [[ ${DEPLOY_KEEP:-0} == 1 ]]; then
	skip "${P}_down" "DEPLOY_KEEP=1"
else
	why=()
	# SIGTERM: the signaler ends its calls and exits 0 within 2 s.
	t0=$(date +%s)
	eng stop -t 10 "$SIG_CTR" >/dev/null 2>&1
	sig_rc=$(eng inspect --format '{{.State.ExitCode}}' "$SIG_CTR" 2>/dev/null)
	[[ $sig_rc == 0 ]] || why+=("the signaler exited ${sig_rc:-?} on SIGTERM")
	(($(date +%s) - t0 <= 5)) || why+=("the signaler took $(($(date +%s) - t0)) s to stop")
	# Started again, then its preStop hook: relayctl signaler-drain, then a wait for the calls
	# to end (none here: the signaler stops by itself at once, which may cut the hook short).
	eng start "$SIG_CTR" >/dev/null 2>&1
	for ((i = 0; i < 100; i++)); do
		[[ $(curl -s -m 1 "http://127.0.0.1:$METRICS_PUB/readyz") == ready ]] && break
		sleep 0.1
	done
	t0=$(date +%s)
	timeout 30 "$ENGINE_BIN" exec "$SIG_CTR" rtmp2sip-entrypoint prestop >"$T_TMP/prestop.log" 2>&1
	for ((i = 0; i < 100; i++)); do
		[[ $(eng inspect --format '{{.State.Status}}' "$SIG_CTR") == exited ]] && break
		sleep 0.1
	done
	(($(date +%s) - t0 <= 15)) || why+=("the signaler's prestop hook took $(($(date +%s) - t0)) s without calls")
	eng logs "$SIG_CTR" >"$T_TMP/signaler.log" 2>&1
	grep -q 'relayctl: drain: no new RTMP clients' "$T_TMP/signaler.log" ||
		why+=("prestop: no drain in the signaler log ($(tr '\n' ' ' <"$T_TMP/prestop.log"))")
	st=$(eng inspect --format '{{.State.Status}} {{.State.ExitCode}}' "$SIG_CTR" 2>/dev/null)
	[[ $st == "exited 0" ]] || why+=("after the drain the signaler is '$st', not 'exited 0'")
	pc down -t 10 >"$T_TMP/down.log" 2>&1
	if ! left=$(eng ps -aq --filter "label=$LABEL"); then
		why+=("$ENGINE ps failed after down")
	elif [[ -n $left ]]; then
		why+=("$(wc -l <<<"$left") containers left after down")
	fi
	if [[ ${#why[@]} -eq 0 ]]; then
		pass "${P}_down"
	else
		fail "${P}_down" "$(printf '%s; ' "${why[@]}")"
	fi
fi
finish
