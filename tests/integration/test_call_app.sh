#!/usr/bin/env bash
# test_call_app.sh - URL dialing with stock RTMP tools: ffmpeg publishes to call/<destination>,
# the signaler places a real SIP call (sofia-sip) to SIPp, the media goes through a mediaworker,
# and an ffmpeg player of the same name records the far end (SIPp echoes the RTP back).
#
#   call_speex_tone        Speex 16 kHz publisher, SIP side negotiated PCMU: the tone comes back
#   call_pcmu_tone         G.711 u-law publisher (pass-through to PCMU): the tone comes back
#   call_sip_signalling    the signaler logged INVITE sent, 180, answered, and BYE on unpublish
#   call_busy              a callee answering 486: the call fails with the status in the log,
#                          no leg left
#   call_callee_bye        a callee that hangs up: the call ends by the peer's BYE
#   call_bad_destination   call/<garbage>: onStatus NetStream.Publish.BadName, signaler alive
#   call_no_leftovers      no leg records left in Redis
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MW="$BUILD/mediaworker"
for cmd in ffmpeg sipp redis-cli python3; do
	command -v "$cmd" >/dev/null 2>&1 || { skip call "$cmd not installed (scripts/deps.sh install)"; finish; }
done
for bin in "$MW" "$WAVCHECK"; do
	[[ -x $bin ]] || { fail call_setup "$bin not built"; finish; }
done
start_redis || { fail call_setup "redis did not start"; finish; }

FF=(ffmpeg -nostdin -hide_banner -loglevel error -y)
SIPP_DIR="$(dirname "${BASH_SOURCE[0]}")/sipp"

base=$((36000 + RANDOM % 4000 / 2 * 2))
spawn "$T_TMP/worker.log" env WORKER_ID=cw1 RTP_PORT_MIN="$base" RTP_PORT_MAX=$((base + 999)) \
	LOG_LEVEL=info RTP_BIND_IP=127.0.0.1 "$MW"
for ((i = 0; i < 50; i++)); do grep -q 'mediaworker ready' "$T_TMP/worker.log" && break; sleep 0.1; done
start_signaler SIGNALER_ID=sig-call-test || { fail call_setup "the signaler did not start"; finish; }
URL="rtmp://127.0.0.1:$RTMP_PORT/call"
# The worker registers in Redis; the signaler finds it within a second.
sleep 1.5

udp_port() {
	python3 -c 'import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]
print(p if p % 2 == 0 else p + 1)'
}

# tone_call NAME CODEC-ARGS FREQ: SIPp UAS with RTP echo, a player, a publisher; checks the WAV.
tone_call() {
	local name=$1 freq=$3 sport mport out="$T_TMP/$1.wav" dest
	local -a codec
	read -r -a codec <<<"$2"
	sport=$(free_port) mport=$(udp_port)
	spawn "$T_TMP/$name.sipp.log" sipp -sn uas -rtp_echo -mp "$mport" -p "$sport" -i 127.0.0.1 -nostdin
	local sipp_pid=$SPAWNED_PID
	sleep 0.5
	dest="service@127.0.0.1:$sport"
	timeout 30 "${FF[@]}" -analyzeduration 1000000 -i "$URL/$dest" -t 5 "$out" \
		>"$T_TMP/$name.play.log" 2>&1 &
	local player=$!
	sleep 1
	timeout 30 "${FF[@]}" -re -f lavfi -i "sine=frequency=$freq:sample_rate=16000:duration=7" \
		"${codec[@]}" -f flv "$URL/$dest" >"$T_TMP/$name.pub.log" 2>&1
	wait "$player"
	kill "$sipp_pid" 2>/dev/null
	if "$WAVCHECK" "$out" --expect-freq "$freq" --tol 30 --min-duration 4 --min-rms-dbfs -30 \
		>"$T_TMP/$name.check" 2>&1; then
		pass "$name"
	else
		fail "$name" "$(cat "$T_TMP/$name.check") $(tail -2 "$T_TMP/$name.play.log" | tr '\n' ' ')"
	fi
}

tone_call call_speex_tone "-c:a libspeex -ac 1 -ar 16000" 1000
tone_call call_pcmu_tone "-c:a pcm_mulaw -ac 1 -ar 8000" 700

if grep -q 'INVITE sent' "$SIGNALER_LOG" && grep -q '180 Ringing' "$SIGNALER_LOG" &&
	grep -q 'answered: PCMU/8000' "$SIGNALER_LOG" && grep -q 'BYE sent' "$SIGNALER_LOG"; then
	pass call_sip_signalling
else
	fail call_sip_signalling "missing INVITE/180/answer/BYE lines in the signaler log"
fi

# A busy callee: the call fails with 486, nothing is left.
sport=$(free_port)
spawn "$T_TMP/busy.sipp.log" sipp -sf "$SIPP_DIR/uas_busy.xml" -p "$sport" -i 127.0.0.1 -nostdin -m 1
timeout 20 "${FF[@]}" -re -f lavfi -i "sine=frequency=500:sample_rate=16000:duration=3" \
	-c:a libspeex -ac 1 -ar 16000 -f flv "$URL/busy@127.0.0.1:$sport" >"$T_TMP/busy.pub.log" 2>&1
if grep -q "busy@127.0.0.1:$sport failed: 486" "$SIGNALER_LOG"; then
	pass call_busy
else
	fail call_busy "no 'failed: 486' for the busy callee in the signaler log"
fi

# A callee that hangs up (SIPp answers, then sends BYE).
sport=$(free_port)
spawn "$T_TMP/bye.sipp.log" sipp -sf "$SIPP_DIR/uas_bye.xml" -p "$sport" -i 127.0.0.1 -nostdin -m 1
timeout 20 "${FF[@]}" -re -f lavfi -i "sine=frequency=500:sample_rate=16000:duration=6" \
	-c:a libspeex -ac 1 -ar 16000 -f flv "$URL/hangup@127.0.0.1:$sport" >"$T_TMP/bye.pub.log" 2>&1
if grep -q "hangup@127.0.0.1:$sport ended by the peer" "$SIGNALER_LOG"; then
	pass call_callee_bye
else
	fail call_callee_bye "no 'ended by the peer' in the signaler log"
fi

# A destination that is not one.
timeout 20 "${FF[@]}" -re -f lavfi -i "sine=frequency=500:sample_rate=16000:duration=2" \
	-c:a libspeex -ac 1 -ar 16000 -f flv "$URL/no%20such%20thing" >"$T_TMP/bad.pub.log" 2>&1
if grep -q "refused: call: " "$SIGNALER_LOG" && signaler_alive; then
	pass call_bad_destination
else
	fail call_bad_destination "no refusal logged, or the signaler died"
fi

sleep 1
left=$(redis-cli -p "$REDIS_PORT" --scan --pattern 'rs:v1:leg:*' | wc -l)
if [[ $left -eq 0 ]]; then
	pass call_no_leftovers
else
	fail call_no_leftovers "$left leg records left in Redis"
fi
check_alive call_signaler_alive
finish
