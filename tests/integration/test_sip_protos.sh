#!/usr/bin/env bash
# test_sip_protos.sh - a PROTOS-style set of malformed SIP messages (tests/tools/sip_protos.py:
# thousands of requests with one field overflowed, format strings, integer boundaries, control
# and non-ASCII bytes; duplicated and conflicting headers; huge, negative and bogus
# Content-Length; broken SDP; over TCP also pipelined requests, split writes, bodies announced
# larger than what follows) sent over UDP and TCP while a real call is up.
#
#   protos_call_tone        an ffmpeg publisher's call to SIPp (RTP echo) through a mediaworker
#                           keeps its tone from before the first malformed message to after the
#                           last: no gap over 1 s, as long as the attack lasted
#   protos_healthz          /healthz answered 200 at every poll (every 0.5 s) during the attack
#   protos_signaler_up      the signaler ran through it all, its log has no sanitizer report
#   protos_pipelined_length each request with a Content-Length near 2^32 pipelined behind
#                           another one in the same TCP write (what crashed sofia-sip's parser)
#                           was refused as too large: counted in
#                           rtmp2sip_signaler_sip_refused_total{reason="too_large"}
#   protos_malformed_count  the malformed ones are counted too (reason="malformed")
#   protos_no_leak          open descriptors back to where they were (the TCP connections closed)
#                           and resident memory grew by less than 64 MB (not under ASan)
#   protos_untrusted        requests from a source outside SIP_TRUSTED_SOURCES get 403, counted
#   protos_sigterm_exit     the signaler still exits 0 on SIGTERM (under ASan: no leak report)
#
# The set goes twice over TCP: mixed on four connections (pipelined requests share a parser),
# then each case on a connection of its own (every case meets a parser in its first state).
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MW="$T_MW"
PROTOS="$(dirname "${BASH_SOURCE[0]}")/../tools/sip_protos.py"
need_tools protos ffmpeg sipp python3 curl
for bin in "$MW" "$WAVCHECK"; do
	[[ -x $bin ]] || { fail protos_setup "$bin not built"; finish; }
done
start_redis || { fail protos_setup "redis did not start"; finish; }

FF=(ffmpeg -nostdin -hide_banner -loglevel error -y)
base=$((30000 + RANDOM % 4000 / 2 * 2))
spawn "$T_TMP/worker.log" env WORKER_ID=pw1 RTP_PORT_MIN="$base" RTP_PORT_MAX=$((base + 99)) \
	LOG_LEVEL=info RTP_BIND_IP=127.0.0.1 "$MW"
wait_log "$T_TMP/worker.log" 'mediaworker ready' 5
METRICS_PORT=$(free_port)
# 127.0.0.1 is trusted (the attack comes from there: it reaches the parser and the apps);
# 127.0.0.2 is not (protos_untrusted).
start_signaler SIGNALER_ID=sig-protos METRICS_PORT="$METRICS_PORT" SIP_BIND=127.0.0.1 \
	SIP_TRUSTED_SOURCES=127.0.0.1 SIP_TCP_KEEPALIVE=2 LOG_LEVEL=info ||
	{ fail protos_setup "the signaler did not start"; finish; }
wait_log "$SIGNALER_LOG" 'mediaworker up' 10 || { fail protos_setup "no worker"; finish; }
METRICS="http://127.0.0.1:$METRICS_PORT"

# scrape NAME: /metrics into $T_TMP/NAME.prom.
scrape() {
	curl -s -m 3 -o "$T_TMP/$1.prom" "$METRICS/metrics"
}
refused() {
	metric "$T_TMP/$1.prom" "rtmp2sip_signaler_sip_refused_total{reason=\"$2\"}"
}
fds() {
	ls "/proc/$SIGNALER_PID/fd" 2>/dev/null | wc -l
}
rss_kb() {
	awk '/^VmRSS:/ { print $2 }' "/proc/$SIGNALER_PID/status" 2>/dev/null
}

# --- the call -------------------------------------------------------------------------------
sport=$(free_port) mport=$(udp_port)
spawn "$T_TMP/uas.sipp.log" sipp -sn uas -rtp_echo -mp "$mport" -p "$sport" -i 127.0.0.1 -nostdin
sleep 0.5
dest="service@127.0.0.1:$sport"
URL="rtmp://127.0.0.1:$RTMP_PORT/call/$dest"
"${FF[@]}" -analyzeduration 1000000 -i "$URL" -t 600 "$T_TMP/call.wav" >"$T_TMP/play.log" 2>&1 &
player=$!
T_PIDS+=("$player")
sleep 1
"${FF[@]}" -re -f lavfi -i "sine=frequency=1000:sample_rate=16000:duration=600" \
	-c:a libspeex -ac 1 -ar 16000 -f flv "$URL" >"$T_TMP/pub.log" 2>&1 &
publisher=$!
T_PIDS+=("$publisher")
if ! wait_log "$SIGNALER_LOG" "answered" 15; then
	fail protos_setup "the call was not answered"
	log_tail "$SIGNALER_LOG"
	finish
fi
sleep 2 # the tone is flowing both ways

# --- /healthz while the attack runs ---------------------------------------------------------
: >"$T_TMP/healthz.bad"
(
	while :; do
		code=$(curl -s -m 2 -o /dev/null -w '%{http_code}' "$METRICS/healthz")
		[[ $code == 200 ]] || echo "$(date +%T.%N) $code" >>"$T_TMP/healthz.bad"
		echo x >>"$T_TMP/healthz.polls"
		sleep 0.5
	done
) &
poller=$!
T_PIDS+=("$poller")

scrape before
fds_before=$(fds) rss_before=$(rss_kb)
attack_start=$SECONDS
note "sending the set: UDP and TCP on 4 connections, then TCP one case per connection"
python3 "$PROTOS" --port "$SIP_PORT" --transport both --connections 4 --gap-ms 1 \
	>"$T_TMP/protos1.log" 2>&1
python3 "$PROTOS" --port "$SIP_PORT" --transport tcp --fresh --gap-ms 0.5 \
	>"$T_TMP/protos2.log" 2>&1
attack_secs=$((SECONDS - attack_start))
note "$(tail -n 1 "$T_TMP/protos1.log")"
note "$(tail -n 1 "$T_TMP/protos2.log") ($attack_secs s in all)"

# --- untrusted: a source outside SIP_TRUSTED_SOURCES ----------------------------------------
untrusted_reply=$(python3 - "$SIP_PORT" <<'EOF'
import socket, sys
port = int(sys.argv[1])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.2", 0))
s.settimeout(3)
lp = s.getsockname()[1]
for method in ("OPTIONS", "INVITE"):
    msg = ("%s sip:service@127.0.0.1:%d SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:%d;rport;branch=z9hG4bKu%s\r\n"
           "From: <sip:x@127.0.0.2>;tag=u1\r\nTo: <sip:service@127.0.0.1>\r\nCall-ID: untrusted-%s\r\n"
           "CSeq: 1 %s\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n") % (method, port, lp, method, method, method)
    s.sendto(msg.encode(), ("127.0.0.1", port))
    try:
        while True:
            line = s.recv(65536).decode(errors="replace").split("\r\n")[0]
            if not line.startswith("SIP/2.0 1"):
                break
    except OSError:
        line = "no reply"
    print(method, line)
EOF
)

sleep 2 # the call goes on after the last message
kill -INT "$player" 2>/dev/null
wait "$player" 2>/dev/null
kill "$publisher" "$poller" 2>/dev/null
wait "$publisher" "$poller" 2>/dev/null

# --- verdicts ------------------------------------------------------------------------------
min=$((attack_secs + 2))
if "$WAVCHECK" "$T_TMP/call.wav" --expect-freq 1000 --tol 30 --min-duration "$min" \
	--max-gap 1.0 --min-rms-dbfs -30 --ignore-start 0.5 --verbose >"$T_TMP/wav.check" 2>&1; then
	pass protos_call_tone
else
	fail protos_call_tone "$(tr '\n' ' ' <"$T_TMP/wav.check") (needed $min s)"
fi
note "call: $(head -n 1 "$T_TMP/wav.check")"

polls=$(wc -l <"$T_TMP/healthz.polls" 2>/dev/null || echo 0)
if [[ ! -s $T_TMP/healthz.bad ]] && ((polls > 0)); then
	pass protos_healthz
else
	fail protos_healthz "$polls polls, not 200: $(head -n 3 "$T_TMP/healthz.bad" | tr '\n' ' ')"
fi
note "/healthz polled $polls times during the attack"

if signaler_alive && ! grep -q 'Sanitizer' "$SIGNALER_LOG"; then
	pass protos_signaler_up
else
	fail protos_signaler_up "${SIGNALER_DIED:-a sanitizer report in the log}"
fi

scrape after
tl_before=$(refused before too_large) tl_after=$(refused after too_large)
mf_before=$(refused before malformed) mf_after=$(refused after malformed)
huge=$(grep -c '^stream pipeline_huge_len' <(python3 "$PROTOS" --port 1 --list))
if [[ -n $tl_after ]] && ((tl_after - ${tl_before:-0} >= huge)); then
	pass protos_pipelined_length
else
	fail protos_pipelined_length "too_large went from '${tl_before:-}' to '${tl_after:-}', expected $huge more"
fi
if [[ -n $mf_after ]] && ((mf_after - ${mf_before:-0} > 0)); then
	pass protos_malformed_count
else
	fail protos_malformed_count "malformed went from '${mf_before:-}' to '${mf_after:-}'"
fi
note "refused: too_large ${tl_before:-?} -> ${tl_after:-?}, malformed ${mf_before:-?} -> ${mf_after:-?}"

# Descriptors: sofia closes its side of each connection once the peer has, or, where it stopped
# reading after an error, once its keepalive (SIP_TCP_KEEPALIVE=2 here) meets the reset.
for ((i = 0; i < 40; i++)); do
	(($(fds) <= fds_before + 2)) && break
	sleep 0.5
done
fds_after=$(fds) rss_after=$(rss_kb)
note "descriptors $fds_before -> $fds_after, RSS ${rss_before} kB -> ${rss_after} kB"
rss_ok=1
if asan_build; then
	note "ASan build: RSS not checked (its quarantine keeps freed memory)"
elif ((rss_after - rss_before >= 65536)); then
	rss_ok=0
fi
if ((fds_after <= fds_before + 2 && rss_ok)); then
	pass protos_no_leak
else
	fail protos_no_leak "descriptors $fds_before -> $fds_after, RSS $rss_before -> $rss_after kB"
fi

untrusted=$(refused after untrusted)
if [[ $untrusted_reply == *"OPTIONS SIP/2.0 403"*"INVITE SIP/2.0 403"* ]] &&
	[[ ${untrusted:-0} -ge 2 ]]; then
	pass protos_untrusted
else
	fail protos_untrusted "replies: $(tr '\n' ' ' <<<"$untrusted_reply"); untrusted count '${untrusted:-}'"
fi

stop_signaler
rc=$?
if ((rc == 0)); then
	pass protos_sigterm_exit
else
	fail protos_sigterm_exit "exit status $rc on SIGTERM (a leak report under ASan, 137: killed)"
	log_tail "$SIGNALER_LOG" 30
fi
finish
