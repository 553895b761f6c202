#!/usr/bin/env bash
# deps.sh - check or install the Debian (bookworm) packages rtmp2sip needs to build, run and test.
#
#   scripts/deps.sh check     exit 0 when every package and command is present, else list what is
#                             missing and exit 1
#   scripts/deps.sh install   apt-get update + apt-get install -y --no-install-recommends (as root)
#   scripts/deps.sh list      print the package list
#   ... SET                   the same for a set: "bench" adds what only `make bench` needs (the
#                             peer it measures against, rtpengine); "codecs" what only
#                             tests/integration/test_codecs.sh needs (baresip, its callee): test
#                             installs it, run never asks for either
#
# Used by `make deps`, `make check-deps` (run, test, bench), `make check-deps-bench` and .ci/run.
set -u

PACKAGES=(
	build-essential pkg-config
	libzmq3-dev libsofia-sip-ua-dev libsrtp2-dev libortp-dev
	libspeex-dev libspeexdsp-dev libhiredis-dev libssl-dev libmicrohttpd-dev
	libavcodec-dev libavutil-dev libopus-dev
	redis-server sip-tester ffmpeg librtmp-dev rtmpdump
	clang libclang-rt-14-dev
	python3 python3-yaml iproute2 procps curl
)

# `make bench` only: rtpengine, the media relay our workers are compared with (scripts/bench.sh,
# section rtpengine). The package enables a system service; install disables it (bench.sh starts
# its own in the foreground, on ports of its own).
BENCH_PACKAGES=(rtpengine-daemon)
BENCH_SERVICES=(rtpengine-daemon.service)
# tests/integration/test_codecs.sh and test_video.sh only (`make test` installs them): baresip, the
# softphone their callees are (tests/integration/baresip.sh), and its FFmpeg modules (H.264 video).
CODECS_PACKAGES=(baresip baresip-ffmpeg)
# Commands the build and the tests call directly (package in brackets for the message).
COMMANDS=(
	"cc:build-essential" "make:build-essential" "pkg-config:pkg-config"
	"redis-server:redis-server" "redis-cli:redis-server"
	"sipp:sip-tester" "ffmpeg:ffmpeg" "ffprobe:ffmpeg" "rtmpdump:rtmpdump"
	"clang:clang" "python3:python3" "ss:iproute2" "pgrep:procps" "timeout:coreutils"
	"curl:curl"
)
if [[ ${2:-} == bench ]]; then
	PACKAGES=("${BENCH_PACKAGES[@]}")
	COMMANDS=("rtpengine:rtpengine-daemon")
elif [[ ${2:-} == codecs ]]; then
	PACKAGES=("${CODECS_PACKAGES[@]}")
	COMMANDS=("baresip:baresip")
elif [[ -n ${2:-} ]]; then
	echo "usage: $0 check|install|list [bench|codecs]" >&2
	exit 2
fi

export DEBIAN_FRONTEND=noninteractive

missing_packages() {
	local p status
	for p in "${PACKAGES[@]}"; do
		status=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null)
		[[ $status == "install ok installed" ]] || printf '%s\n' "$p"
	done
}

missing_commands() {
	local entry
	for entry in "${COMMANDS[@]}"; do
		command -v "${entry%%:*}" >/dev/null 2>&1 || printf '%s\n' "$entry"
	done
}

do_check() {
	local pk cm
	pk=$(missing_packages)
	cm=$(missing_commands)
	if [[ -z $pk && -z $cm ]]; then
		echo "deps: all ${#PACKAGES[@]} packages installed"
		return 0
	fi
	[[ -n $pk ]] && echo "deps: missing packages: $(tr "\n" " " <<<"$pk")"
	[[ -n $cm ]] && echo "deps: missing commands (command:package): $(tr "\n" " " <<<"$cm")"
	echo "deps: run 'make deps' (or scripts/deps.sh install) as root"
	return 1
}

do_install() {
	if [[ $(id -u) -ne 0 ]]; then
		echo "deps: run as root or install: ${PACKAGES[*]}" >&2
		return 1
	fi
	if ! command -v apt-get >/dev/null 2>&1; then
		echo "deps: apt-get not found: this script supports Debian bookworm; install: ${PACKAGES[*]}" >&2
		return 1
	fi
	echo "deps: apt-get update"
	if ! apt-get update --error-on=any; then
		echo "deps: apt-get update failed (no network or no reachable mirror?);" \
			"trying the install with the package lists already here" >&2
	fi
	echo "deps: apt-get install -y --no-install-recommends ${PACKAGES[*]}"
	if ! apt-get install -y --no-install-recommends "${PACKAGES[@]}"; then
		echo "deps: apt-get install failed (no network, or a package missing from this" \
			"release?); install by hand: ${PACKAGES[*]}" >&2
		return 1
	fi
	# A package's service must not stay up on ports of its own (bench sets only; the base set
	# has none that starts).
	if [[ ${2:-} == bench ]] && command -v systemctl >/dev/null 2>&1; then
		systemctl disable --now "${BENCH_SERVICES[@]}" >/dev/null 2>&1 || true
	fi
	do_check
}

case "${1:-check}" in
check) do_check ;;
install) do_install "$@" ;;
list) printf '%s\n' "${PACKAGES[@]}" ;;
*)
	echo "usage: $0 check|install|list [bench|codecs]" >&2
	exit 2
	;;
esac
