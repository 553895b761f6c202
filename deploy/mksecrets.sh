#!/bin/bash
# mksecrets.sh - the secrets of an rtmp2sip deployment, made on the machine that deploys and never
# committed: CURVE key pairs of the signaler and worker roles and their allowed lists, the Redis
# password, an RTMPS certificate (self-signed until you put a real one in its place) and the call
# app's token secret. compose.yaml mounts them, the systemd env examples name them, and --k8s
# turns them into the Secrets of deploy/k8s.
#
#   deploy/mksecrets.sh [--dir DIR] [--owner UID:GID] [--cn NAME] [--image IMAGE]
#       makes what is missing in DIR (default deploy/secrets/); what exists is kept, so running
#       it again changes nothing (rotation is by hand: docs/deploy.md, "Secrets and rotation")
#   deploy/mksecrets.sh --k8s [--dir DIR] [--call-auth token|sip|none]
#       prints the Secret objects deploy/k8s reads, from DIR (pipe it to kubectl apply -f -)
#
# DIR (mode 0700):
#   redis.pass               the Redis password: 32 random bytes in hex (REDIS_PASSWORD_FILE,
#                            and Redis's requirepass)
#   signaler.key, .pub       the signalers' CURVE key pair (relayctl keygen)
#   worker.key, .pub         the mediaworkers' CURVE key pair
#   call-token.secret        CALL_TOKEN_SECRET for CALL_AUTH=token: 32 random bytes in hex
#   allowed/signaler.allowed the worker keys signalers accept (starts as worker.pub)
#   allowed/worker.allowed   the signaler keys workers accept (starts as signaler.pub)
#   tls/rtmps.crt, .key      the RTMPS certificate and key: self-signed for --cn (default: this
#                            host's name), 825 days
# allowed/ and tls/ are directories because they change while the daemons run (SIGHUP re-reads
# them): a container that mounts a single file keeps the file it started with once that file is
# replaced by a rename, while a mounted directory shows the new one.
#
# Secret files are 0600, public ones (.pub, allowed lists, the certificate) 0644. Run as root,
# everything is given to --owner (default 10001:10001, the image's user; systemd hosts use
# rtmp2sip:rtmp2sip); otherwise the files stay the caller's (rootless podman: `podman unshare
# chown -R 10001:10001 DIR`).
#
# Keys come from relayctl: $RELAYCTL, else build/relayctl of this repository, else relayctl on
# PATH, else the image (--image, default $RTMP2SIP_IMAGE or localhost/rtmp2sip:latest, run with
# $ENGINE: podman or docker, whichever is installed; $ENGINE_OPTS are added to its run). The
# password, the token secret and the certificate come from openssl.
set -u

die() {
	echo "mksecrets: $*" >&2
	exit 1
}

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
DIR="$HERE/secrets"
OWNER=10001:10001
CN=$(hostname -f 2>/dev/null || hostname)
IMAGE=""
MODE="make"
CALL_AUTH_CHOICE=""
while [[ $# -gt 0 ]]; do
	case $1 in
	--dir) DIR=${2:?--dir needs a directory}; shift ;;
	--owner) OWNER=${2:?--owner needs UID:GID}; shift ;;
	--cn) CN=${2:?--cn needs a name}; shift ;;
	--image) IMAGE=${2:?--image needs an image}; shift ;;
	--k8s) MODE=k8s ;;
	--call-auth) CALL_AUTH_CHOICE=${2:?--call-auth needs token, sip or none}; shift ;;
	-h | --help) sed -n '2,/^set -u/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
	*) die "unknown argument '$1' (--help)" ;;
	esac
	shift
done
[[ $DIR == /* ]] || DIR="$PWD/$DIR"
[[ ${CN:-} ]] || CN=localhost

# --- --k8s: the Secrets of deploy/k8s from DIR, as YAML on stdout
k8s() {
	local f
	command -v kubectl >/dev/null || die "kubectl not found"
	for f in signaler.key worker.key redis.pass call-token.secret allowed/signaler.allowed \
		allowed/worker.allowed tls/rtmps.crt tls/rtmps.key; do
		[[ -r $DIR/$f ]] || die "$DIR/$f missing or unreadable: run deploy/mksecrets.sh first (as root: sudo -E)"
	done
	case $CALL_AUTH_CHOICE in
	token | sip | none | "") ;;
	*) die "--call-auth $CALL_AUTH_CHOICE: token, sip or none" ;;
	esac
	secret() {
		kubectl create secret "$@" --dry-run=client -o yaml || die "kubectl create secret $2 failed"
		echo "---"
	}
	secret generic rtmp2sip-signaler-key --from-file=curve.key="$DIR/signaler.key"
	secret generic rtmp2sip-worker-key --from-file=curve.key="$DIR/worker.key"
	secret generic rtmp2sip-curve-allowed --from-file="$DIR/allowed/signaler.allowed" \
		--from-file="$DIR/allowed/worker.allowed"
	secret generic rtmp2sip-redis --from-file=password="$DIR/redis.pass"
	secret tls rtmp2sip-rtmps --cert="$DIR/tls/rtmps.crt" --key="$DIR/tls/rtmps.key"
	if [[ -n $CALL_AUTH_CHOICE ]]; then
		secret generic rtmp2sip-call-auth --from-literal=CALL_AUTH="$CALL_AUTH_CHOICE" \
			--from-file=CALL_TOKEN_SECRET="$DIR/call-token.secret"
	else
		echo "mksecrets: no --call-auth: create rtmp2sip-call-auth yourself (docs/deploy.md); the signalers do not start without it" >&2
	fi
}
if [[ $MODE == k8s ]]; then
	k8s
	exit 0
fi

# --- make what is missing
command -v openssl >/dev/null || die "openssl not found (apt-get install openssl)"
umask 077
mkdir -p "$DIR" "$DIR/allowed" "$DIR/tls" || die "cannot create $DIR"
chmod 700 "$DIR" "$DIR/tls" && chmod 755 "$DIR/allowed" || die "cannot set the modes of $DIR"

# relayctl_keygen NAME: DIR/NAME.key and DIR/NAME.pub, with the first relayctl found (see the top).
relayctl_keygen() {
	local r engine user
	if [[ -z $IMAGE ]]; then
		for r in "${RELAYCTL:-}" "$HERE/../build/relayctl" "$(command -v relayctl)"; do
			[[ -n $r && -x $r ]] && { "$r" keygen --dir "$DIR" "$1" >/dev/null; return; }
		done
	fi
	engine=${ENGINE:-$(command -v podman || command -v docker)}
	[[ -n $engine ]] || die "no relayctl (make, or build the image) and neither podman nor docker to run the image's"
	# podman: root in the container is the caller (rootless) or root; docker: the caller's ids.
	user=0:0
	[[ ${engine##*/} == docker ]] && user="$(id -u):$(id -g)"
	# shellcheck disable=SC2086 # ENGINE_OPTS: options, split on purpose
	"$engine" run --rm --network none --no-healthcheck ${ENGINE_OPTS:-} --user "$user" \
		--entrypoint /usr/bin/relayctl \
		-v "$DIR:/secrets:z" "${IMAGE:-${RTMP2SIP_IMAGE:-localhost/rtmp2sip:latest}}" \
		keygen --dir /secrets "$1" >/dev/null
}

made=()
for role in signaler worker; do
	[[ -s $DIR/$role.key ]] && continue
	rm -f "$DIR/$role.pub"
	relayctl_keygen "$role" || die "relayctl keygen $role failed"
	made+=("$role.key")
done
# The allowed lists start with the other side's key; rotation adds and removes lines.
[[ -s $DIR/allowed/signaler.allowed ]] || { cp "$DIR/worker.pub" "$DIR/allowed/signaler.allowed" && made+=(allowed/signaler.allowed); }
[[ -s $DIR/allowed/worker.allowed ]] || { cp "$DIR/signaler.pub" "$DIR/allowed/worker.allowed" && made+=(allowed/worker.allowed); }
for f in redis.pass call-token.secret; do
	[[ -s $DIR/$f ]] && continue
	# (no newline: the token secret reaches the signaler as it is in the Kubernetes Secret)
	openssl rand -hex 32 | tr -d '\n' >"$DIR/$f" && [[ -s $DIR/$f ]] || die "openssl rand failed"
	made+=("$f")
done
if [[ ! -s $DIR/tls/rtmps.crt || ! -s $DIR/tls/rtmps.key ]]; then
	san="DNS:$CN"
	[[ $CN != localhost ]] && san+=",DNS:localhost"
	openssl req -x509 -newkey rsa:2048 -nodes -days 825 -subj "/CN=$CN" \
		-addext "subjectAltName=$san,IP:127.0.0.1" \
		-keyout "$DIR/tls/rtmps.key" -out "$DIR/tls/rtmps.crt" >/dev/null 2>&1 ||
		die "openssl could not make the RTMPS certificate"
	made+=("tls/rtmps.crt (self-signed for $CN)")
fi

chmod 600 "$DIR"/*.key "$DIR/redis.pass" "$DIR/call-token.secret" "$DIR/tls/rtmps.key" &&
	chmod 644 "$DIR"/*.pub "$DIR"/allowed/*.allowed "$DIR/tls/rtmps.crt" || die "cannot set the file modes"
if [[ $(id -u) -eq 0 ]]; then
	chown -R "$OWNER" "$DIR" || die "chown $OWNER failed"
elif [[ ${#made[@]} -gt 0 ]]; then
	echo "mksecrets: not root: the files stay yours; the containers' uid 10001 cannot read them unless you give them to it (sudo chown -R 10001:10001 $DIR, or podman unshare chown -R 10001:10001 $DIR)" >&2
fi
if [[ ${#made[@]} -gt 0 ]]; then
	echo "mksecrets: made in $DIR: ${made[*]}"
else
	echo "mksecrets: $DIR complete, nothing made"
fi
