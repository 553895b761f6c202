#!/usr/bin/env bash
# test_rtp_peers.sh - the RTP leg (through build/tools/rtp_probe) against independent peers,
# loopback only.
#
#   ffmpeg_recv_pcmu      our leg sends a 1000 Hz PCMU tone; ffmpeg (SDP input) records it
#   ffmpeg_send_pcmu      ffmpeg sends a 700 Hz PCMU tone over RTP; our leg pulls and records it,
#                         and receives ffmpeg's RTCP sender reports
#   ffmpeg_srtp_in_80     ffmpeg srtp:// (AES_CM_128_HMAC_SHA1_80) -> our leg
#   ffmpeg_srtp_out_80    our leg -> ffmpeg (SDP with a=crypto), same suite
#   ffmpeg_srtp_in_32     the same with AES_CM_128_HMAC_SHA1_32
#   ffmpeg_srtp_out_32
#   ffmpeg_srtp_wrong_key ffmpeg encrypts with another key: our leg counts auth failures and
#                         delivers nothing
#   sipp_rtp_echo         SIPp -rtp_echo echoes our 1200 Hz tone back to the same leg
#   nat_echo_learned      a peer "behind NAT" (a Python echo that answers from another port than
#                         the one our leg was told): strict latching learns it after exactly
#                         RTP_LEG_LATCH_PACKETS - 1 dropped packets, moves the media there, and
#                         the 900 Hz tone comes back
#
# Recordings are checked with build/tools/wavcheck (dominant frequency +-30 Hz, >= 2 s).

# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PROBE="$BUILD/tools/rtp_probe"
FFMPEG=(ffmpeg -nostdin -hide_banner -loglevel "${FFMPEG_LOGLEVEL:-error}" -y)
PORTS=${RTP_PROBE_PORTS:-52000-53999}

if [[ ! -x $PROBE ]]; then
	fail rtp_peers "$PROBE not built (make tools)"
	finish
fi
if [[ ! -x $WAVCHECK ]]; then
	fail rtp_peers "$WAVCHECK not built (make tools)"
	finish
fi
HAVE_FFMPEG=1
command -v ffmpeg >/dev/null 2>&1 || HAVE_FFMPEG=0
HAVE_SIPP=1
command -v sipp >/dev/null 2>&1 || HAVE_SIPP=0

# free_udp_pair: prints an even UDP port P on 127.0.0.1 with P and P + 1 both free now.
free_udp_pair() {
	python3 - <<'EOF'
import random, socket
for _ in range(200):
    p = random.randrange(46000, 49998, 2)
    socks = []
    try:
        for q in (p, p + 1):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            socks.append(s)
            s.bind(("127.0.0.1", q))
    except OSError:
        continue
    finally:
        for s in socks:
            s.close()
    print(p)
    break
EOF
}

# wav_ok NAME FILE FREQ: passes NAME when FILE holds FREQ Hz for at least 2 s.
wav_ok() {
	local name=$1 file=$2 freq=$3 out
	if [[ ! -s $file ]]; then
		fail "$name" "no recording ($file)"
		return 1
	fi
	if out=$("$WAVCHECK" "$file" --expect-freq "$freq" --tol 30 --min-duration 2 2>&1); then
		pass "$name"
		note "$name: $out"
		return 0
	fi
	fail "$name" "recording does not hold $freq Hz: $out"
	return 1
}

# probe_stat LOG KEY: the value of KEY= on the STATS line of an rtp_probe log.
probe_stat() {
	sed -n 's/^STATS .*\b'"$2"'=\([0-9]*\).*/\1/p' "$1" | tail -n 1
}

# probe_recv LABEL SECONDS [probe options...]: starts "rtp_probe recv" writing $T_TMP/LABEL.wav;
# sets RECV_PID and RECV_PORT (empty when it did not start).
probe_recv() {
	local label=$1 secs=$2 i
	shift 2
	spawn "$T_TMP/$label.log" timeout -k 5 $((secs + 10)) "$PROBE" recv --seconds "$secs" \
		--ports "$PORTS" --out "$T_TMP/$label.wav" --to "$FF_SRC" "$@"
	RECV_PID=$SPAWNED_PID
	RECV_PORT=""
	for ((i = 0; i < 50; i++)); do
		RECV_PORT=$(sed -n 's/^PORT //p' "$T_TMP/$label.log")
		[[ -n $RECV_PORT ]] && return 0
		sleep 0.1
	done
	return 1
}

# ffmpeg_rtp_out PORT URL_SCHEME [ffmpeg output options...]: 3 s of a 700 Hz PCMU tone in real
# time, 160-sample packets, to SCHEME://127.0.0.1:PORT.
ffmpeg_rtp_out() {
	local port=$1 scheme=$2
	shift 2
	timeout -k 5 20 "${FFMPEG[@]}" -re -f lavfi -i sine=frequency=700:sample_rate=8000:duration=3 \
		-af asetnsamples=n=160:p=0 -c:a pcm_mulaw -ar 8000 -ac 1 -f rtp "$@" \
		"$scheme://127.0.0.1:$port?pkt_size=200&localrtpport=$FF_SRC&localrtcpport=$((FF_SRC + 1))" \
		>/dev/null 2>>"$T_TMP/ffmpeg_out.log"
}
# The ports ffmpeg_rtp_out sends from: what its SDP would say, given to rtp_probe recv as the
# signalled remote (--to): a leg latches nothing before it knows its peer.
FF_SRC=$(free_udp_pair)

# ffmpeg_sdp_in LABEL PORT [SDP attribute lines...]: ffmpeg records 3 s from an SDP describing
# PCMU on PORT into $T_TMP/LABEL.wav; sets FF_PID.
ffmpeg_sdp_in() {
	local label=$1 port=$2 proto=RTP/AVP
	shift 2
	[[ $# -gt 0 ]] && proto=RTP/SAVP
	{
		printf 'v=0\r\no=- 0 0 IN IP4 127.0.0.1\r\ns=rtp_probe\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n'
		printf 'm=audio %s %s 0\r\na=rtpmap:0 PCMU/8000\r\n' "$port" "$proto"
		for line in "$@"; do
			printf '%s\r\n' "$line"
		done
	} >"$T_TMP/$label.sdp"
	spawn "$T_TMP/$label.ffmpeg.log" timeout -k 5 20 "${FFMPEG[@]}" \
		-protocol_whitelist file,udp,rtp,srtp -i "$T_TMP/$label.sdp" -t 3 -ar 8000 -ac 1 \
		"$T_TMP/$label.wav"
	FF_PID=$SPAWNED_PID
}

# ---------------------------------------------------------------- ffmpeg, plain RTP

if [[ $HAVE_FFMPEG == 0 ]]; then
	skip ffmpeg_rtp "ffmpeg not installed (scripts/deps.sh install)"
else
	# our leg -> ffmpeg
	port=$(free_udp_pair)
	ffmpeg_sdp_in ffmpeg_recv_pcmu "$port"
	sleep 1
	"$PROBE" send --to "$port" --seconds 5 --freq 1000 --ports "$PORTS" \
		>"$T_TMP/send_pcmu.log" 2>&1
	wait "$FF_PID" 2>/dev/null
	wav_ok ffmpeg_recv_pcmu "$T_TMP/ffmpeg_recv_pcmu.wav" 1000 ||
		log_tail "$T_TMP/ffmpeg_recv_pcmu.ffmpeg.log"

	# ffmpeg -> our leg
	if probe_recv ffmpeg_send_pcmu 6; then
		ffmpeg_rtp_out "$RECV_PORT" rtp
		wait "$RECV_PID" 2>/dev/null
		log="$T_TMP/ffmpeg_send_pcmu.log"
		if wav_ok ffmpeg_send_pcmu "$T_TMP/ffmpeg_send_pcmu.wav" 700; then
			note "ffmpeg_send_pcmu: $(grep '^STATS' "$log")"
			rtcp=$(probe_stat "$log" rtcp_received)
			if [[ ${rtcp:-0} -ge 1 ]]; then
				pass ffmpeg_rtcp_received
			else
				fail ffmpeg_rtcp_received "no RTCP from ffmpeg accepted ($(grep '^STATS' "$log"))"
			fi
		else
			log_tail "$log"
		fi
	else
		fail ffmpeg_send_pcmu "rtp_probe recv did not start"
		log_tail "$T_TMP/ffmpeg_send_pcmu.log"
	fi

	# ---------------------------------------------------------------- ffmpeg, SRTP
	for suite in 80 32; do
		name=AES_CM_128_HMAC_SHA1_$suite
		k_ff=$("$PROBE" keygen)
		k_us=$("$PROBE" keygen)

		if probe_recv "ffmpeg_srtp_in_$suite" 6 --suite "$name" --key "$k_us" \
			--peer-key "$k_ff"; then
			ffmpeg_rtp_out "$RECV_PORT" srtp -srtp_out_suite "$name" -srtp_out_params "$k_ff"
			wait "$RECV_PID" 2>/dev/null
			log="$T_TMP/ffmpeg_srtp_in_$suite.log"
			if wav_ok "ffmpeg_srtp_in_$suite" "$T_TMP/ffmpeg_srtp_in_$suite.wav" 700; then
				note "ffmpeg_srtp_in_$suite: $(grep '^STATS' "$log")"
			else
				log_tail "$log"
			fi
		else
			fail "ffmpeg_srtp_in_$suite" "rtp_probe recv did not start"
		fi

		port=$(free_udp_pair)
		ffmpeg_sdp_in "ffmpeg_srtp_out_$suite" "$port" "a=crypto:1 $name inline:$k_us"
		sleep 1
		"$PROBE" send --to "$port" --seconds 5 --freq 1000 --ports "$PORTS" --suite "$name" \
			--key "$k_us" --peer-key "$k_ff" >"$T_TMP/send_srtp_$suite.log" 2>&1
		wait "$FF_PID" 2>/dev/null
		wav_ok "ffmpeg_srtp_out_$suite" "$T_TMP/ffmpeg_srtp_out_$suite.wav" 1000 ||
			log_tail "$T_TMP/ffmpeg_srtp_out_$suite.ffmpeg.log"
	done

	# ffmpeg encrypts with a key our leg does not expect
	k_ff=$("$PROBE" keygen)
	k_other=$("$PROBE" keygen)
	if probe_recv ffmpeg_srtp_wrong_key 5 --suite AES_CM_128_HMAC_SHA1_80 --key "$k_other" \
		--peer-key "$k_other"; then
		ffmpeg_rtp_out "$RECV_PORT" srtp -srtp_out_suite AES_CM_128_HMAC_SHA1_80 \
			-srtp_out_params "$k_ff"
		wait "$RECV_PID" 2>/dev/null
		log="$T_TMP/ffmpeg_srtp_wrong_key.log"
		auth=$(probe_stat "$log" auth_fail)
		frames=$(probe_stat "$log" frames)
		if [[ ${auth:-0} -ge 100 && ${frames:-1} -eq 0 ]]; then
			pass ffmpeg_srtp_wrong_key
		else
			fail ffmpeg_srtp_wrong_key "expected auth failures and no frames: $(grep '^STATS' "$log")"
		fi
	else
		fail ffmpeg_srtp_wrong_key "rtp_probe recv did not start"
	fi
fi

# ---------------------------------------------------------------- SIPp -rtp_echo

if [[ $HAVE_SIPP == 0 ]]; then
	skip sipp_rtp_echo "sipp not installed (scripts/deps.sh install)"
else
	mp=$(free_udp_pair)
	sip_port=$(free_udp_pair)
	spawn "$T_TMP/sipp.log" timeout -k 5 30 sipp -sn uas -i 127.0.0.1 -p "$sip_port" \
		-mi 127.0.0.1 -mp "$mp" -rtp_echo -nostdin
	SIPP_PID=$SPAWNED_PID
	sleep 1
	if ! kill -0 "$SIPP_PID" 2>/dev/null; then
		fail sipp_rtp_echo "sipp did not start"
		log_tail "$T_TMP/sipp.log"
	else
		"$PROBE" echo --to "$mp" --seconds 4 --freq 1200 --ports "$PORTS" \
			--out "$T_TMP/sipp_echo.wav" >"$T_TMP/sipp_echo.log" 2>&1
		note "sipp_rtp_echo: $(grep '^STATS' "$T_TMP/sipp_echo.log")"
		wav_ok sipp_rtp_echo "$T_TMP/sipp_echo.wav" 1200 || log_tail "$T_TMP/sipp_echo.log"
		received=$(probe_stat "$T_TMP/sipp_echo.log" received)
		if [[ ${received:-0} -ge 150 ]]; then
			pass sipp_rtp_echo_packets
		else
			fail sipp_rtp_echo_packets "only ${received:-0} of 200 packets came back"
		fi
		stop_pid "$SIPP_PID" 3
	fi
fi

# ---------------------------------------------------------------- a peer behind NAT

# The "SDP" port (where our leg is told the peer is) receives, but every answer leaves from
# another port, as a NAT rewrites a peer's source. Counts what arrived on each port.
cat >"$T_TMP/nat_echo.py" <<'PY'
import select, socket, sys, time
sdp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
sdp.bind(("127.0.0.1", int(sys.argv[1])))
nat = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
nat.bind(("127.0.0.1", 0))
got = {sdp: 0, nat: 0}
print("READY nat=%d" % nat.getsockname()[1], flush=True)
end = time.monotonic() + 6
while time.monotonic() < end:
    r, _, _ = select.select([sdp, nat], [], [], 0.2)
    for s in r:
        data, src = s.recvfrom(2048)
        got[s] += 1
        nat.sendto(data, src)
print("ECHO sdp=%d nat=%d" % (got[sdp], got[nat]), flush=True)
PY
nat_port=$(free_udp_pair)
spawn "$T_TMP/nat_echo.log" timeout -k 2 12 python3 "$T_TMP/nat_echo.py" "$nat_port"
NAT_PID=$SPAWNED_PID
wait_log "$T_TMP/nat_echo.log" READY 5 || true
"$PROBE" echo --to "$nat_port" --seconds 4 --freq 900 --ports "$PORTS" \
	--out "$T_TMP/nat_echo.wav" >"$T_TMP/nat_echo_probe.log" 2>&1
wait "$NAT_PID" 2>/dev/null
note "nat_echo_learned: $(grep '^STATS' "$T_TMP/nat_echo_probe.log"); $(grep '^ECHO' "$T_TMP/nat_echo.log")"
wav_ok nat_echo_learned "$T_TMP/nat_echo.wav" 900 || log_tail "$T_TMP/nat_echo_probe.log"
dropped=$(probe_stat "$T_TMP/nat_echo_probe.log" unexpected_source)
moves=$(probe_stat "$T_TMP/nat_echo_probe.log" latch_changes)
at_sdp=$(sed -n 's/^ECHO sdp=\([0-9]*\) nat=.*/\1/p' "$T_TMP/nat_echo.log")
at_nat=$(sed -n 's/^ECHO .* nat=\([0-9]*\)/\1/p' "$T_TMP/nat_echo.log")
# Learned after 4 packets in a row (rtp_leg.h RTP_LEG_LATCH_PACKETS): 3 dropped, then the leg
# sends to the learned address; only the first few packets went to the SDP port.
if [[ $dropped == 3 && $moves == 1 && ${at_sdp:-0} -ge 4 && ${at_sdp:-99} -le 20 &&
	${at_nat:-0} -ge 150 ]]; then
	pass nat_echo_learned_latch
else
	fail nat_echo_learned_latch "unexpected_source=${dropped:-?} (3 expected), latch_changes=${moves:-?} (1), to the SDP port ${at_sdp:-?} (4-20), to the learned port ${at_nat:-?} (>= 150)"
fi

finish
