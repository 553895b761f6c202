#!/usr/bin/env bash
# test_worker.sh - the mediaworker against real peers, driven through the signaler's dispatcher
# (tests/tools/wdrive): Redis, SIPp as an RTP echo peer, two workers.
#
#   transcoding Speex WB <-> PCMU and pass-through, PCMU <-> PCMA, Speex <-> speex/16000,
#   through SIPp -rtp_echo: the tone comes back (frequency, duration)
#   the remote and the codec set (UPDATE_LEG, as on the answer) while a live Speex tone already
#   flows into the leg: the tone comes back at a steady level (no build-up to clipping)
#   SRTP between two legs, with an RFC 4733 DTMF digit reported as an EVENT
#   leg state in Redis while the leg lives, nothing left after
#   malformed ZeroMQ messages and malformed RTP while a call runs: the call keeps its audio
#   RTP bleed: a sprayer aims RTP at a small worker's whole port range from before a call
#   (single packets) and during it (well-formed streams): the tone still goes to the real peer,
#   the sprayer receives nothing, the latch never moves
#   10,000 legs created and destroyed: ports, fds and memory return
#   stalls of the worker: missed ticks caught up (no delay kept in the jitter buffer), frames
#   queued over MEDIA_MAX_DELAY_MS dropped
#   failover: SIGKILL the worker mid-call, the leg is adopted on the other worker from Redis
#   with the same SSRC and the tone continues
. "$(dirname "$0")/lib.sh"

WDRIVE="$BUILD/tools/wdrive"
MW="$T_MW"
for bin in "$WDRIVE" "$MW" "$WAVCHECK"; do
	[[ -x $bin ]] || { fail worker_setup "$bin not built"; finish; }
done
command -v sipp >/dev/null || { fail worker_setup "sipp not installed"; finish; }
start_redis || { fail worker_setup "redis did not start"; finish; }

# start_worker NAME PORTMIN PORTMAX: sets W_PID, W_EP ("ctl,media")
start_worker() {
	local name=$1 log="$T_TMP/$1.log" i
	# Under AddressSanitizer a small quarantine keeps freed memory from looking like growth in
	# the 10,000-leg check (leaks are still reported at exit).
	spawn "$log" env WORKER_ID="$name" RTP_PORT_MIN="$2" RTP_PORT_MAX="$3" LOG_LEVEL=info \
		RTP_BIND_IP=127.0.0.1 ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=4" \
		"$MW"
	W_PID=$SPAWNED_PID
	for ((i = 0; i < 50; i++)); do
		grep -q 'mediaworker ready' "$log" && break
		sleep 0.1
	done
	W_EP="$(grep -o 'ctl=[^ ]*' "$log" | head -1 | cut -d= -f2),$(grep -o 'media=[^ ]*' "$log" | head -1 | cut -d= -f2)"
	[[ $W_EP == tcp://*,tcp://* ]]
}

# A UDP port for SIPp's RTP echo that nothing holds.
ECHO_PORT=$(python3 -c 'import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]
print(p if p % 2 == 0 else p + 1)')
SIP_PORT=$(free_port)
spawn "$T_TMP/sipp.log" sipp -sn uas -rtp_echo -mp "$ECHO_PORT" -p "$SIP_PORT" -i 127.0.0.1 -nostdin
SIPP_PID=$SPAWNED_PID
sleep 0.5

base=$((32000 + RANDOM % 8000 / 2 * 2))
start_worker w1 "$base" $((base + 1999)) || { fail worker_setup "worker w1 did not start"; finish; }
W1_PID=$W_PID W1_EP=$W_EP
start_worker w2 $((base + 2000)) $((base + 3999)) || { fail worker_setup "worker w2 did not start"; finish; }
W2_PID=$W_PID W2_EP=$W_EP
note "workers: w1 $W1_EP (pid $W1_PID), w2 $W2_EP (pid $W2_PID); SIPp echo on $ECHO_PORT"

# echo_case NAME FREQ WDRIVE-ARGS...: a tone through SIPp's echo must come back.
echo_case() {
	local name=$1 freq=$2 out="$T_TMP/$1.wav"
	shift 2
	if ! timeout 30 "$WDRIVE" --worker "$W1_EP" --remote "127.0.0.1:$ECHO_PORT" --seconds 3 \
		--freq "$freq" --out "$out" "$@" tone >"$T_TMP/$name.out" 2>&1; then
		fail "$name" "wdrive: $(tail -3 "$T_TMP/$name.out" | tr '\n' ' ')"
		return
	fi
	if "$WAVCHECK" "$out" --expect-freq "$freq" --tol 30 --min-duration 2.5 --min-rms-dbfs -30 \
		>"$T_TMP/$name.check" 2>&1; then
		pass "$name"
	else
		fail "$name" "$(cat "$T_TMP/$name.check")"
	fi
}

echo_case worker_speex_to_pcmu_transcoded 1000 --rtmp-codec speex --sip-codecs PCMU/8000
echo_case worker_pcmu_passthrough 700 --rtmp-codec PCMU --sip-codecs PCMU/8000
echo_case worker_pcmu_to_pcma 900 --rtmp-codec PCMU --sip-codecs PCMA/8000
echo_case worker_speex_passthrough 1000 --rtmp-codec speex --sip-codecs speex/16000
echo_case worker_pcmu_to_speex_transcoded 800 --rtmp-codec PCMU --sip-codecs speex/16000

# late_case NAME FREQ WDRIVE-ARGS...: the leg is created without a remote while the tone (one live
# Speex encoder, as a real publisher) flows into it; after 1 s an UPDATE_LEG gives it the remote
# and, with --update-codec, a codec that decodes. The transcoder that takes over must continue the
# decoder that has followed the stream: a Speex decoder started in the middle of a stream makes a
# steady tone build up until it clips (the recording's dominant frequency then ends at 200 Hz).
late_case() {
	local name=$1 freq=$2 out="$T_TMP/$1.wav"
	shift 2
	if ! timeout 30 "$WDRIVE" --worker "$W1_EP" --remote "127.0.0.1:$ECHO_PORT" --seconds 4 \
		--late-ms 1000 --freq "$freq" --out "$out" "$@" late >"$T_TMP/$name.out" 2>&1; then
		fail "$name" "wdrive: $(tail -3 "$T_TMP/$name.out" | tr '\n' ' ')"
		return
	fi
	if "$WAVCHECK" "$out" --expect-freq "$freq" --tol 30 --min-duration 2.5 --min-rms-dbfs -30 \
		--max-peak-dbfs -3 --max-level-swing 3 >"$T_TMP/$name.check" 2>&1; then
		pass "$name"
	else
		fail "$name" "$(tr '\n' ' ' <"$T_TMP/$name.check")"
	fi
}

late_case worker_late_answer_passthrough_to_pcmu 600 --rtmp-codec speex \
	--sip-codecs speex/16000,PCMU/8000 --update-codec PCMU/8000
late_case worker_late_answer_pcmu_to_pcma 600 --rtmp-codec speex \
	--sip-codecs PCMU/8000,PCMA/8000 --update-codec PCMA/8000

# stalled_tone NAME STOP_S COUNT: a 5 s PCMU tone through SIPp's echo while w1 is stopped
# (SIGSTOP) COUNT times for STOP_S, from 1.5 s in; sets LEG_LINE to the leg's closing log line
# ("leg destroyed (media in ..., dropped late ...; RTP sent ..., received ..., late ...,
# concealed ...)"). False (after a FAIL line) when the run or the recording is not right.
stalled_tone() {
	local name=$1 out="$T_TMP/$1.wav" wp leg
	LEG_LINE=""
	timeout 30 "$WDRIVE" --worker "$W1_EP" --remote "127.0.0.1:$ECHO_PORT" --seconds 5 \
		--freq 700 --out "$out" --rtmp-codec PCMU --sip-codecs PCMU/8000 tone \
		>"$T_TMP/$name.out" 2>&1 &
	wp=$!
	sleep 1.5
	for ((i = 0; i < $3; i++)); do
		kill -STOP "$W1_PID"
		sleep "$2"
		kill -CONT "$W1_PID"
		sleep 0.6
	done
	if ! wait "$wp"; then
		fail "$name" "wdrive: $(tail -3 "$T_TMP/$name.out" | tr '\n' ' ')"
		return 1
	fi
	if ! "$WAVCHECK" "$out" --expect-freq 700 --tol 30 --min-duration 3 --min-rms-dbfs -30 \
		>"$T_TMP/$name.check" 2>&1; then
		fail "$name" "$(tr '\n' ' ' <"$T_TMP/$name.check")"
		return 1
	fi
	leg=$(awk '$1 == "leg" { print $2; exit }' "$T_TMP/$name.out")
	wait_log "$T_TMP/w1.log" "$leg: leg destroyed" 5 || true
	LEG_LINE=$(grep -F "$leg: leg destroyed" "$T_TMP/w1.log" | tail -1)
	[[ -n $LEG_LINE ]] || fail "$name" "no closing line for leg $leg in the worker log"
	[[ -n $LEG_LINE ]]
}
# counter NAME: the value of "NAME N" in LEG_LINE.
counter() { sed -nE "s/.*[(,;] ?$1 ([0-9]+).*/\1/p" <<<"$LEG_LINE"; }

# A worker stalled (SIGSTOP 200 ms, three times, as when it is short of CPU) catches up the
# ticks it missed: every packet the echo sent back is played toward the signaler (late, in a
# burst) instead of staying queued in the jitter buffer as added delay for the rest of the call.
# received - late - played (out - concealed) is what was still queued at the end; the nominal
# buffer holds 3 packets.
if stalled_tone worker_stall_catches_up 0.2 3; then
	rx=$(counter received) late=$(counter late) mo=$(counter out) conc=$(counter concealed)
	queued=$((rx - late - (mo - conc)))
	note "worker_stall_catches_up: received $rx, late $late, sent to the signaler $mo (concealed $conc): $queued left queued"
	if ((queued > 5)); then
		fail worker_stall_catches_up "$queued packets were left in the jitter buffer after the stalls (at most 5 expected)"
	else
		pass worker_stall_catches_up
	fi
fi

# A worker stalled for 1 s (under the heartbeat timeout, so no failover) finds a second of
# RTMP-side frames queued for it. Those that waited over MEDIA_MAX_DELAY_MS (200 ms) are dropped
# instead of reaching the peer a second late, and keeping the stream late, after the stall.
if stalled_tone worker_backlog_dropped 1 1; then
	mi=$(counter "media in") dl=$(counter "dropped late") sent=$(counter "RTP sent")
	note "worker_backlog_dropped: $mi frames in, $dl dropped as late, $sent RTP packets sent"
	if ((dl < 25)); then
		fail worker_backlog_dropped "only $dl of the ~50 frames queued during the stall were dropped"
	elif ((mi - dl - sent > 2 || sent + dl - mi > 2)); then
		fail worker_backlog_dropped "frames in ($mi) != dropped ($dl) + sent ($sent)"
	elif ! grep -q "RTMP frame [0-9]* ms late dropped" "$T_TMP/w1.log"; then
		fail worker_backlog_dropped "no 'RTMP frame ... late dropped' line in the worker log"
	else
		pass worker_backlog_dropped
	fi
fi

# The transcoding choice: pass-through wins when offered, whatever the order.
if grep -q 'TRANSCODING\|transcod' "$T_TMP/worker_speex_passthrough.out" 2>/dev/null; then :; fi
if grep -q 'speex/16000 <-> speex/16000' "$T_TMP/w1.log" && grep -q 'speex/16000 <-> PCMU/8000' "$T_TMP/w1.log"; then
	pass worker_codec_paths_logged
else
	fail worker_codec_paths_logged "the worker log does not show both a pass-through and a transcoded leg"
fi

# SRTP both ways between two legs, and a DTMF digit from A reported by B.
if timeout 30 "$WDRIVE" --worker "$W1_EP" --worker "$W2_EP" --srtp --dtmf 7 --seconds 3 \
	--out "$T_TMP/srtp.wav" pair >"$T_TMP/srtp.out" 2>&1 &&
	grep -q 'RESULT .*dtmf_events=1 dtmf_digit=7' "$T_TMP/srtp.out" &&
	grep -q 'SRTP' "$T_TMP/srtp.out" &&
	"$WAVCHECK" "$T_TMP/srtp.wav" --expect-freq 1000 --tol 30 --min-duration 2.5 >/dev/null 2>&1; then
	pass worker_srtp_pair_with_dtmf
else
	fail worker_srtp_pair_with_dtmf "$(tail -4 "$T_TMP/srtp.out" | tr '\n' ' ')"
fi
if grep -q 'srtp_auth_fail 0' "$T_TMP/srtp.out"; then
	pass worker_srtp_no_auth_failures
else
	fail worker_srtp_no_auth_failures "$(grep 'srtp_auth_fail' "$T_TMP/srtp.out" | tr '\n' ' ')"
fi

# Leg state in Redis while the leg lives; nothing after.
timeout 30 "$WDRIVE" --worker "$W1_EP" --remote "127.0.0.1:$ECHO_PORT" --seconds 3 tone \
	>"$T_TMP/state.out" 2>&1 &
drv=$!
sleep 1.5
keys=$(redis-cli -p "$REDIS_PORT" --scan --pattern 'rs:v1:leg:*' | head -5)
ver=""
[[ -n $keys ]] && ver=$(redis-cli -p "$REDIS_PORT" hget "$(echo "$keys" | head -1)" v)
worker_rec=$(redis-cli -p "$REDIS_PORT" hget rs:v1:worker:w1 ctl)
wait $drv
left=$(redis-cli -p "$REDIS_PORT" --scan --pattern 'rs:v1:leg:*' | wc -l)
if [[ -n $keys && $ver == 1 && $worker_rec == tcp://* && $left -eq 0 ]]; then
	pass worker_leg_state_in_redis
else
	fail worker_leg_state_in_redis "keys during='$keys' v='$ver' worker ctl='$worker_rec' keys after=$left"
fi

# Malformed ZeroMQ and malformed RTP while a call runs: the call keeps its audio.
timeout 40 "$WDRIVE" --worker "$W1_EP" --remote "127.0.0.1:$ECHO_PORT" --seconds 5 \
	--out "$T_TMP/busy.wav" tone >"$T_TMP/busy.out" 2>&1 &
drv=$!
sleep 1
leg_port=$(grep -o 'local 127.0.0.1:[0-9]*' "$T_TMP/busy.out" | head -1 | cut -d: -f2)
timeout 20 "$WDRIVE" --worker "$W1_EP" garbage >"$T_TMP/garbage.out" 2>&1
g_rc=$?
if [[ -n $leg_port ]]; then
	python3 - "$leg_port" <<'PY'
import os, socket, struct, sys
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
bad = [
    b"\x40" + b"\x00" * 20,                                # version 1
    b"\x80\x00\x00",                                      # shorter than a header
    b"\x8f\x00\x00\x01" + b"\x00" * 12,                   # 15 CSRCs, no room for them
    b"\x90\x00\x00\x01" + b"\x00" * 8 + b"\xbe\xde\xff\xff",  # extension past the end
    b"\xa0\x00\x00\x01" + b"\x00" * 8 + b"\x01\x02\xff",  # padding larger than the payload
]
for i in range(300):
    s.sendto(bad[i % len(bad)], ("127.0.0.1", port))
    s.sendto(os.urandom(1 + i % 200), ("127.0.0.1", port))
PY
fi
wait $drv
d_rc=$?
if [[ $g_rc -eq 0 ]] && grep -q 'worker_answers=1' "$T_TMP/garbage.out"; then
	pass worker_malformed_zmq_answered
else
	fail worker_malformed_zmq_answered "$(tail -2 "$T_TMP/garbage.out" | tr '\n' ' ')"
fi
if grep -q 'bad message\|wrong frame count\|malformed\|dropped' "$T_TMP/w1.log"; then
	pass worker_malformed_zmq_logged
else
	fail worker_malformed_zmq_logged "no log line about the malformed messages"
fi
bad_pkts=$(grep -o 'bad [0-9]*' "$T_TMP/busy.out" | awk '{print $2}' | tail -1)
if [[ $d_rc -eq 0 && -n $leg_port && ${bad_pkts:-0} -gt 0 ]] &&
	"$WAVCHECK" "$T_TMP/busy.wav" --expect-freq 1000 --tol 30 --min-duration 4.5 --max-gap 0.2 \
		>"$T_TMP/busy.check" 2>&1; then
	pass worker_call_survives_bad_input
else
	fail worker_call_survives_bad_input "rc=$d_rc port=$leg_port bad=${bad_pkts:-?} $(cat "$T_TMP/busy.check" 2>/dev/null)"
fi
kill -0 "$W1_PID" 2>/dev/null && pass worker_alive_after_bad_input || fail worker_alive_after_bad_input "w1 died"

# RTP bleed, on a worker whose port range holds two legs (an attacker knows the range). The
# leg is created without a remote, as when we offer, and the tone already flows into it; the
# answer (UPDATE_LEG with SIPp's echo as the remote) comes 1 s later. A sprayer on another
# port of the same host aims PCMU at both RTP ports from before the leg exists: first single
# packets (random SSRC and sequence), which used to latch a leg at once, so that the call's
# audio went to the sprayer; then, once the call is up, well-formed streams (one SSRC, rising
# sequence numbers, runs of 8 every 10 ms: twice what strict latching needs to learn a source
# other than the signalled one, were the peer silent). The peer (SIPp's echo, which sends only
# what it hears) keeps the leg: the tone comes back, the sprayer receives nothing, the worker
# drops and counts the sprayed packets and logs no latch change.
cat >"$T_TMP/sprayer.py" <<'PY'
import random, socket, struct, sys, time
ports = [int(p) for p in sys.argv[1].split(",")]
single_s, total_s = float(sys.argv[2]), float(sys.argv[3])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
s.setblocking(False)
sent = {p: 0 for p in ports}
seq = {p: random.randrange(65536) for p in ports}
got = 0
payload = b"\x55" * 160
def spray(port, sq, ssrc):
    hdr = struct.pack("!BBHII", 0x80, 0, sq & 0xFFFF, (sq * 160) & 0xFFFFFFFF, ssrc)
    s.sendto(hdr + payload, ("127.0.0.1", port))
    sent[port] += 1
def drain():
    n = 0
    while True:
        try:
            s.recv(2048)
            n += 1
        except BlockingIOError:
            return n
print("SPRAYING", flush=True)
start = time.monotonic()
while time.monotonic() < start + total_s:
    if time.monotonic() < start + single_s:
        for p in ports:
            spray(p, random.randrange(65536), random.randrange(1 << 32))
        time.sleep(0.005)
    else:
        for p in ports:
            for _ in range(8):
                spray(p, seq[p], 0x5BADF00D + p)
                seq[p] += 1
        time.sleep(0.01)
    got += drain()
time.sleep(0.5)
got += drain()
print("SPRAY sent=%s received=%d" % (",".join("%d:%d" % (p, n) for p, n in sent.items()), got),
      flush=True)
PY
bleed_min=$((base + 5000))
if ! start_worker w3 "$bleed_min" $((bleed_min + 3)); then
	fail worker_rtp_bleed "worker w3 did not start: $(tail -2 "$T_TMP/w3.log")"
else
	W3_PID=$W_PID
	spawn "$T_TMP/sprayer.log" timeout 30 python3 "$T_TMP/sprayer.py" \
		"$bleed_min,$((bleed_min + 2))" 2.5 5
	SPRAY_PID=$SPAWNED_PID
	wait_log "$T_TMP/sprayer.log" SPRAYING 5 || true
	sleep 0.3 # the sprayer has been at it before the leg exists
	timeout 40 "$WDRIVE" --worker "$W_EP" --remote "127.0.0.1:$ECHO_PORT" --seconds 5 \
		--late-ms 1000 --freq 600 --out "$T_TMP/spray.wav" --rtmp-codec PCMU \
		--sip-codecs PCMU/8000 late >"$T_TMP/spray.out" 2>&1
	d_rc=$?
	wait "$SPRAY_PID" 2>/dev/null
	leg_port=$(grep -o 'local 127.0.0.1:[0-9]*' "$T_TMP/spray.out" | head -1 | cut -d: -f2)
	spray_sent=$(sed -n "s/^SPRAY sent=.*\b${leg_port:-x}:\([0-9]*\).*/\1/p" "$T_TMP/sprayer.log")
	spray_got=$(sed -n 's/^SPRAY .* received=\([0-9]*\)/\1/p' "$T_TMP/sprayer.log")
	leg=$(awk '$1 == "leg" { print $2; exit }' "$T_TMP/spray.out")
	wait_log "$T_TMP/w3.log" "$leg: leg destroyed" 5 || true
	LEG_LINE=$(grep -F "$leg: leg destroyed" "$T_TMP/w3.log" | tail -1)
	dropped=$(counter source) moves=$(counter "latch changes")
	note "worker_rtp_bleed: leg port ${leg_port:-?}; sprayer: $(grep '^SPRAY ' "$T_TMP/sprayer.log"); the worker dropped ${dropped:-?} for their source, latch changes ${moves:-?}"
	if [[ $d_rc -ne 0 || -z $leg_port ]]; then
		fail worker_rtp_bleed "the call did not run: rc=$d_rc port=${leg_port:-?}: $(tail -2 "$T_TMP/spray.out" | tr '\n' ' ')"
	elif ! "$WAVCHECK" "$T_TMP/spray.wav" --expect-freq 600 --tol 30 --min-duration 3.5 \
		>"$T_TMP/spray.check" 2>&1; then
		fail worker_rtp_bleed "the tone did not come back: $(tr '\n' ' ' <"$T_TMP/spray.check")"
	elif [[ ${spray_sent:-0} -lt 1000 || ${spray_got:-1} -ne 0 ]]; then
		fail worker_rtp_bleed "the sprayer sent ${spray_sent:-?} packets to the leg's port and received ${spray_got:-?} (0 expected)"
	elif [[ ${moves:-1} -ne 0 ]] || grep -q "RTP latch on port $leg_port " "$T_TMP/w3.log"; then
		fail worker_rtp_bleed "the latch moved: $(grep "RTP latch on port $leg_port " "$T_TMP/w3.log" | head -2 | tr '\n' ' ')"
	elif ((${dropped:-0} < spray_sent / 2)); then
		fail worker_rtp_bleed "only ${dropped:-0} of the ${spray_sent} sprayed packets counted as from an unexpected source"
	else
		pass worker_rtp_bleed
	fi
	stop_pid "$W3_PID" 5
fi

# 10,000 legs: ports, fds and memory come back.
rss() { awk '/^VmRSS/ {print $2}' "/proc/$1/status"; }
fds() { ls "/proc/$1/fd" | wc -l; }
rss0=$(rss "$W1_PID") fds0=$(fds "$W1_PID")
timeout 300 "$WDRIVE" --worker "$W1_EP" --count 10000 --inflight 64 churn >"$T_TMP/churn.out" 2>&1
c_rc=$?
sleep 0.5
rss1=$(rss "$W1_PID") fds1=$(fds "$W1_PID")
legs_after=$(timeout 20 "$WDRIVE" --worker "$W1_EP" garbage 2>/dev/null | grep -o 'legs=[0-9]*' | cut -d= -f2)
note "10,000 legs: RSS ${rss0} -> ${rss1} KiB, fds ${fds0} -> ${fds1}, legs after ${legs_after:-?}"
if [[ $c_rc -eq 0 ]] && grep -q 'RESULT churned=10000 failures=0' "$T_TMP/churn.out" &&
	[[ $fds1 -le $((fds0 + 2)) && ${legs_after:-1} -eq 0 && $rss1 -le $((rss0 + 20480)) ]]; then
	pass worker_ten_thousand_legs_no_leak
else
	fail worker_ten_thousand_legs_no_leak "rc=$c_rc $(tail -1 "$T_TMP/churn.out") rss $rss0->$rss1 fds $fds0->$fds1 legs=${legs_after:-?}"
fi
if grep -q 'port_pool\|double release' "$T_TMP/w1.log" && grep -q 'double release' "$T_TMP/w1.log"; then
	fail worker_port_pool_consistent "double release logged"
else
	pass worker_port_pool_consistent
fi

# Failover: SIGKILL w1 mid-call; w2 adopts the leg from Redis, same SSRC, the tone goes on.
timeout 40 "$WDRIVE" --worker "$W1_EP" --worker "$W2_EP" --kill-pid "$W1_PID" \
	--remote "127.0.0.1:$ECHO_PORT" --seconds 6 --out "$T_TMP/failover.wav" failover \
	>"$T_TMP/failover.out" 2>&1
f_rc=$?
note "$(grep -E 'noticed|adopted on|RESULT' "$T_TMP/failover.out" | tr '\n' ';')"
if [[ $f_rc -eq 0 ]] && grep -q 'RESULT adopted=1 ssrc_same=1' "$T_TMP/failover.out" &&
	"$WAVCHECK" "$T_TMP/failover.wav" --expect-freq 1000 --tol 30 --min-duration 4 >/dev/null 2>&1; then
	pass worker_failover_adopts_leg
else
	fail worker_failover_adopts_leg "$(tail -3 "$T_TMP/failover.out" | tr '\n' ' ')"
fi
if grep -q 'adopted from worker w1' "$T_TMP/w2.log"; then
	pass worker_failover_logged
else
	fail worker_failover_logged "w2 did not log the adoption"
fi
kill -0 "$W2_PID" 2>/dev/null && pass worker_survivor_alive || fail worker_survivor_alive "w2 died"

# A worker bound to every address announces WORKER_ADVERTISED_HOST instead (its ready line and its
# Redis record), and a call through the announced endpoints works; a malformed value stops it.
if WORKER_CTL_BIND='tcp://0.0.0.0:*' WORKER_MEDIA_BIND='tcp://0.0.0.0:*' \
	WORKER_ADVERTISED_HOST=127.0.0.1 start_worker w4 $((base + 4000)) $((base + 4999)); then
	W4_EP=$W_EP
	rec=$(redis-cli -p "$REDIS_PORT" hget rs:v1:worker:w4 ctl 2>/dev/null)
	for _ in $(seq 20); do
		[[ -n $rec ]] && break
		sleep 0.1
		rec=$(redis-cli -p "$REDIS_PORT" hget rs:v1:worker:w4 ctl 2>/dev/null)
	done
	if [[ $W4_EP != tcp://127.0.0.1:*,tcp://127.0.0.1:* || $rec != tcp://127.0.0.1:* ]]; then
		fail worker_advertised_host "announced $W4_EP, Redis record ctl '$rec' (expected tcp://127.0.0.1:...)"
	elif ! timeout 30 "$WDRIVE" --worker "$W4_EP" --remote "127.0.0.1:$ECHO_PORT" --seconds 2 \
		--freq 700 --out "$T_TMP/adv.wav" --rtmp-codec PCMU --sip-codecs PCMU/8000 tone \
		>"$T_TMP/adv.out" 2>&1 ||
		! "$WAVCHECK" "$T_TMP/adv.wav" --expect-freq 700 --tol 30 --min-duration 1.5 >/dev/null 2>&1; then
		fail worker_advertised_host "no tone through $W4_EP: $(tail -2 "$T_TMP/adv.out" | tr '\n' ' ')"
	else
		pass worker_advertised_host
	fi
else
	fail worker_advertised_host "the worker bound to 0.0.0.0 did not start: $(tail -2 "$T_TMP/w4.log")"
fi
WORKER_ADVERTISED_HOST='a/b' timeout 10 "$MW" >"$T_TMP/w5.log" 2>&1
rc=$?
if [[ $rc -eq 2 ]] && grep -q 'WORKER_ADVERTISED_HOST' "$T_TMP/w5.log"; then
	pass worker_advertised_host_refused
else
	fail worker_advertised_host_refused "exit $rc: $(tail -1 "$T_TMP/w5.log")"
fi
finish
