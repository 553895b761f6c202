#!/usr/bin/env bash
# test_soak.sh - `make soak` in small: scripts/soak.sh with 2 librtmp and 2 ffmpeg calls held for
# one minute, on free ports, its output in the test's directory (about 90 s).
#
#   soak_smoke   soak.sh exits 0 with its "soak: PASS" line, and its table has the base, ref, end
#                and after rows and the per-call lines of all 4 calls
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_tools soak sipp ffmpeg python3 redis-server redis-cli
for bin in signaler mediaworker relayctl tools/callbench; do
	[[ -x $BUILD/$bin ]] || { fail soak_setup "$BUILD/$bin not built"; finish; }
done

# The workers' RTP ports: a slice of their own, as the other scripts pick theirs.
base=$((48000 + RANDOM % 4000 / 2 * 2))
# run.sh makes its own keys (RUN_DIR under SOAK_OUT): not the test's (lib.sh exports those).
spawn "$T_TMP/soak.out" env -u CURVE_SECRET_KEY_FILE -u CURVE_ALLOWED_KEYS_FILE \
	SOAK_OUT="$T_TMP/soak" SOAK_CALLS=4 SOAK_FFMPEG_CALLS=2 SOAK_MINUTES=1 SOAK_SAMPLE_S=20 \
	SOAK_WARMUP_S=10 SOAK_SETTLE_S=15 SOAK_RTMP_PORT="$(free_port)" SOAK_RTMPS_PORT=0 \
	SOAK_SIP_PORT="$(free_port)" SOAK_REDIS_PORT="$(free_port)" SOAK_RTP_PORT_MIN="$base" \
	SOAK_RTP_PORT_MAX=$((base + 199)) SOAK_METRICS_PORT=0 SOAK_SIPP_PORT="$(free_port)" \
	SOAK_SIPP_CONTROL_PORT="$(udp_port)" SOAK_SIPP_MEDIA_PORT="$(udp_port)" \
	bash "$T_ROOT/scripts/soak.sh"
wait "$SPAWNED_PID"
rc=$?
((rc == 0)) || why "soak.sh exited with status $rc"
grep -q '^soak: PASS' "$T_TMP/soak.out" || why "no 'soak: PASS' line"
for row in base ref end after; do
	grep -Eq "^ *$row +[0-9]{2}:" "$T_TMP/soak.out" || why "no $row row in the table"
done
n=$(grep -Ec '^  (callbench|ffmpeg) +[0-9]+ +[0-9]+ ' "$T_TMP/soak.out")
((n == 4)) || why "$n per-call lines, not 4"
((${#WHY[@]})) && log_tail "$T_TMP/soak.out" 60
verdict soak_smoke
finish
