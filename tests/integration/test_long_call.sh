#!/usr/bin/env bash
# test_long_call.sh - a player of a long call hears the far end with no growing delay.
#
# One call through the real stack, held for LONG_CALL_SECONDS (default 600):
#
#   rtmp_client --publish/--play call/<dest> --RTMP--> signaler --SIP--> SIPp (uas_media_port.xml)
#        ^                                        |                   answers with audio port P
#        | RTMP audio (markers found)             v
#        +------------ signaler <--- mediaworker <--RTP (PCMU)--- rtp_probe marks, bound on P
#
# The far end (rtp_probe marks) sends G.711 u-law at real-time pacing: low noise with a numbered
# marker frame every second (tests/tools/audio_mark.h), printing the CLOCK_MONOTONIC time it sent
# each one. The player (rtmp_client, one connection publishing silence to and playing the call,
# reading every message as soon as it arrives) prints the time each marker arrived on the same
# clock. Delay of marker k = arrival - send. The first and the last LONG_CALL_WINDOW (30) seconds
# of markers are compared:
#
#   long_call_delay   fails when the last window's median delay exceeds the first's by more than
#                     LONG_CALL_MAX_GROWTH_MS (20), when either median exceeds
#                     LONG_CALL_MAX_MEDIAN_MS (50: the worker keeps no playout buffer and a
#                     call here hears the far end within a few ms; a median of tens of ms means
#                     a buffer came back), or when more than 5 % of the markers sent
#                     are missing (overall or in either window); prints a line
#                     "long call: start median X ms (n=..., p95 ..., max ...), end median Y ms
#                     (...), growth Z ms, ..." for the CI log
#   long_call_ended   the player's session ran to its end without an error status, the callee
#                     got the BYE, no leg record is left in Redis
#
# LONG_CALL_SECONDS may be smaller for a quick run (at least 20). LONG_CALL_FAR_PPM (default 0)
# runs the far end's clock that many parts per million fast (negative: slow), as a real peer's
# may (rtp_probe marks --ppm). LONG_CALL_SELFCHECK_SLOW_PPM is
# for a one-off self-check only, never for CI: the player reads that many parts per million slower
# than real time (rtmp_client --slow-read), a player falling behind, and long_call_delay must fail.
#
# Every process is started through lib.sh (spawn, sipp_run) and stopped when the script ends.

# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

LONG_CALL_SECONDS=${LONG_CALL_SECONDS:-600}
LONG_CALL_WINDOW=${LONG_CALL_WINDOW:-30}
LONG_CALL_MAX_GROWTH_MS=${LONG_CALL_MAX_GROWTH_MS:-20}
LONG_CALL_MAX_MEDIAN_MS=${LONG_CALL_MAX_MEDIAN_MS:-50}
SIPP_DIR="$(dirname "${BASH_SOURCE[0]}")/sipp"
CLIENT="$BUILD/tools/rtmp_client"
PROBE="$BUILD/tools/rtp_probe"

need_tools long_call sipp redis-cli python3
for bin in "$T_MW" "$CLIENT" "$PROBE"; do
	[[ -x $bin ]] || { fail long_call_setup "$bin not built"; finish; }
done
if ! [[ $LONG_CALL_SECONDS =~ ^[0-9]+$ ]] || ((LONG_CALL_SECONDS < 20)); then
	fail long_call_setup "LONG_CALL_SECONDS must be a whole number of seconds, at least 20"
	finish
fi
start_redis || { fail long_call_setup "redis did not start"; finish; }

# The worker's RTP ports below the ephemeral range, where udp_port picks the far end's; a wide
# range, as other tests on the machine may hold ports of it.
base=$((20000 + RANDOM % 11000 / 2 * 2))
spawn "$T_TMP/worker.log" env WORKER_ID=lw1 RTP_PORT_MIN="$base" RTP_PORT_MAX=$((base + 999)) \
	LOG_LEVEL=info RTP_BIND_IP=127.0.0.1 "$T_MW"
wait_log "$T_TMP/worker.log" 'mediaworker ready' 5 || { fail long_call_setup "the worker did not start"; finish; }
# free_port checks TCP only: a SIP port taken for UDP leaves the signaler without SIP; another.
for try in 1 2 3; do
	SIP_PORT=""
	start_signaler SIGNALER_ID=sig-long-call LOG_LEVEL=info ||
		{ fail long_call_setup "the signaler did not start"; finish; }
	grep -q 'running without SIP' "$SIGNALER_LOG" || break
	stop_signaler
	((try < 3)) || { fail long_call_setup "the signaler found no free SIP port"; finish; }
done
wait_log "$SIGNALER_LOG" 'mediaworker up' 10 ||
	{ fail long_call_setup "the signaler found no worker"; finish; }

# The callee: SIPp answers with the far end's port, which rtp_probe binds once the worker's
# port is known from the INVITE.
FAR_PORT=$(udp_port)
sport=$(free_port)
sipp_run callee -sf "$SIPP_DIR/uas_media_port.xml" -m 1 -key audio_port "$FAR_PORT" -p "$sport"
callee=$SIPP_PID
sleep 0.5
dest="longcall@127.0.0.1:$sport"

slow=()
[[ -n ${LONG_CALL_SELFCHECK_SLOW_PPM:-} ]] && slow=(--slow-read "$LONG_CALL_SELFCHECK_SLOW_PPM")
# The player outlives the far end by a few seconds: the last markers are still on their way.
spawn "$T_TMP/player.log" "$CLIENT" --timeout 10 --play "$dest" --publish "$dest" \
	--seconds $((LONG_CALL_SECONDS + 6)) "${slow[@]}" "rtmp://127.0.0.1:$RTMP_PORT/call"
player=$SPAWNED_PID

# The worker's RTP port, from the INVITE's SDP (the first m=audio SIPp received).
worker_port=""
if wait_log "$T_TMP/callee.msg" '^m=audio ' 10 "$callee"; then
	worker_port=$(awk '/^m=audio / { print $2; exit }' "$T_TMP/callee.msg")
fi
if [[ -z $worker_port ]]; then
	fail long_call_setup "no INVITE with an SDP reached the callee"
	log_tail "$T_TMP/player.log"
	finish
fi
spawn "$T_TMP/far.log" "$PROBE" marks --to "$worker_port" --ports "$FAR_PORT-$((FAR_PORT + 1))" \
	--seconds "$LONG_CALL_SECONDS" --ppm "${LONG_CALL_FAR_PPM:-0}"
far=$SPAWNED_PID
note "call to $dest: worker RTP 127.0.0.1:$worker_port, far end 127.0.0.1:$FAR_PORT," \
	"$LONG_CALL_SECONDS s, far clock ${LONG_CALL_FAR_PPM:-0} ppm${slow[*]:+ (self-check: ${slow[*]})}"

# (sipp_wait serves any job: its exit status, or 124 once it had to be stopped.)
sipp_wait "$far" $((LONG_CALL_SECONDS + 30))
far_rc=$?
sipp_wait "$player" 30
player_rc=$?
sipp_wait "$callee" 15
callee_rc=$?

# --- the delay, marker by marker
grep -q "^PORT $FAR_PORT\$" "$T_TMP/far.log" || why "the far end did not bind port $FAR_PORT"
[[ $far_rc -eq 0 ]] || why "the far end exited with status $far_rc"
figures=$(awk -v window="$LONG_CALL_WINDOW" '
	BEGIN { last = 0 }
	# median, p95 (nearest rank) and max of v[1..n], in ms
	function stats(v, n, out,   i, j, x, med) {
		for (i = 2; i <= n; i++) {
			x = v[i]
			for (j = i - 1; j >= 1 && v[j] > x; j--)
				v[j + 1] = v[j]
			v[j + 1] = x
		}
		if (n == 0) {
			out["med"] = out["p95"] = out["max"] = -1
			return
		}
		med = n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
		out["med"] = med / 1000
		out["p95"] = v[int(0.95 * n + 0.999999)] / 1000
		out["max"] = v[n] / 1000
	}
	FILENAME == ARGV[1] && $1 == "MARK" { sent[$2] = $3; if ($2 > last) last = $2; nsent++ }
	FILENAME == ARGV[2] && $1 == "MARK" && !($2 in got) { got[$2] = $3 }
	FILENAME == ARGV[2] && $1 == "BADMARK" { bad++ }
	END {
		if (!nsent) { print "none"; exit }
		t0 = sent[0]; tl = sent[last]
		for (k = 0; k <= last; k++) {
			if (!(k in sent))
				continue
			in_s = sent[k] - t0 < window * 1e6
			in_e = tl - sent[k] < window * 1e6
			ns += in_s; ne += in_e
			if (!(k in got)) {
				missing++; ms += in_s; me += in_e
				continue
			}
			d = got[k] - sent[k]
			if (in_s) s[++cs] = d
			if (in_e) e[++ce] = d
		}
		stats(s, cs, S); stats(e, ce, E)
		printf "%.1f %d %.1f %.1f %.1f %d %.1f %.1f %d %d %d %d %d %d %d\n", S["med"], cs,
			S["p95"], S["max"], E["med"], ce, E["p95"], E["max"], nsent, missing + 0,
			ns, ms + 0, ne, me + 0, bad + 0
	}' "$T_TMP/far.log" "$T_TMP/player.log")
if [[ $figures == none || -z $figures ]]; then
	why "the far end sent no marker"
else
	read -r s_med s_n s_p95 s_max e_med e_n e_p95 e_max n_sent n_miss n_s m_s n_e m_e n_bad \
		<<<"$figures"
	growth=$(awk -v a="$s_med" -v b="$e_med" 'BEGIN { printf "%.1f", b - a }')
	echo "long call: start median $s_med ms (n=$s_n, p95 $s_p95, max $s_max)," \
		"end median $e_med ms (n=$e_n, p95 $e_p95, max $e_max), growth $growth ms;" \
		"$n_miss of $n_sent markers missing, $n_bad bad; $LONG_CALL_SECONDS s call," \
		"windows of $LONG_CALL_WINDOW s"
	# more_than A B: A > B (decimals)
	more_than() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a > b) }'; }
	((s_n >= 5 && e_n >= 5)) || why "too few markers measured (start $s_n, end $e_n)"
	more_than "$growth" "$LONG_CALL_MAX_GROWTH_MS" &&
		why "the delay grew by $growth ms (start median $s_med ms, end $e_med ms; at most" \
			"$LONG_CALL_MAX_GROWTH_MS ms)"
	while read -r name med; do
		more_than "$med" "$LONG_CALL_MAX_MEDIAN_MS" &&
			why "the $name window's median delay is $med ms (at most $LONG_CALL_MAX_MEDIAN_MS ms)"
	done <<<"start $s_med
end $e_med"
	while read -r name miss of; do
		((of > 0 && miss * 100 > of * 5)) && why "$miss of $of markers missing ($name, at most 5 %)"
	done <<<"overall $n_miss $n_sent
start $m_s $n_s
end $m_e $n_e"
fi
if ((${#WHY[@]})); then
	log_tail "$T_TMP/far.log" 5
	grep -v '^MARK ' "$T_TMP/player.log" | tail -n 20 | sed 's/^/  | /'
fi
verdict long_call_delay

# --- the call itself
[[ $player_rc -eq 0 ]] || why "the player exited with status $player_rc: $(grep -v '^MARK ' \
	"$T_TMP/player.log" | tail -n 3 | tr '\n' ' ')"
grep -q 'NetConnection.Call.Accepted' "$T_TMP/player.log" || why "no NetConnection.Call.Accepted"
grep -q "^MEDIA " "$T_TMP/player.log" && note "player: $(grep '^MEDIA ' "$T_TMP/player.log")"
[[ $callee_rc -eq 0 ]] || why "SIPp's callee did not end with the BYE (exit $callee_rc)"
for ((i = 0; i < 25; i++)); do
	left=$(rkeys 'rs:v1:leg:*' | wc -l)
	((left == 0)) && break
	sleep 0.2
done
((left == 0)) || why "$left leg records left in Redis"
verdict long_call_ended
finish
