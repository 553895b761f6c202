#!/usr/bin/env bash
# test_rtmps.sh - RTMP over TLS: the RTMPS port with a self-signed certificate made here.
#
#   rtmps_echo            ffmpeg publishes a 1000 Hz Speex tone to rtmps://.../echo/x and an
#                         ffmpeg player of the same rtmps:// URL records it: 1000 +- 30 Hz >= 3 s;
#                         the log names the TLS version and cipher
#   rtmps_burst           rtmp_bad.py --tls burst: 1 MB of data messages and a ping in one write,
#                         the ping is answered (TLS input read to the end)
#   rtmps_plain_client    a plain RTMP client on the RTMPS port is closed, logged "TLS handshake
#                         failed" with its address
#   rtmps_tls_garbage     a TLS record header and random bytes: closed, logged
#   rtmps_garbage_in_tls  a TLS client sending random RTMP bytes: closed, logged
#   rtmps_old_tls         a TLS 1.1 client is refused (TLS 1.2 minimum)
#   rtmps_tls_timeout     clients that stop inside the TLS handshake are closed after
#                         RTMP_HANDSHAKE_TIMEOUT (2 s here)
#   rtmps_plain_alongside plain RTMP on RTMP_PORT still works (burst without TLS)
#   rtmps_metrics         accepted, handshake failures and the certificate's expiry on /metrics
#   rtmps_reload          SIGHUP after the files were replaced: a new connection is served the
#                         new certificate (SHA-256 fingerprint seen by openssl s_client)
#   rtmps_reload_bad      SIGHUP with a broken certificate file: an error line, and new
#                         connections keep the certificate loaded before; counted as failed
#   rtmps_only            RTMP_PORT=0 with RTMPS_PORT: a signaler that serves RTMPS only
#   rtmps_no_listener     RTMP_PORT=0 without RTMPS_PORT: refused at start (status 2)
#
# Every client runs under `timeout`; env BUILD selects the build (default build).
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_tools rtmps ffmpeg openssl python3 curl
if [[ ! -x $WAVCHECK ]]; then
	fail rtmps "$WAVCHECK not built (make tools)"
	finish
fi

BAD=(timeout 60 python3 "$T_ROOT/tests/tools/rtmp_bad.py")
FFMPEG=(timeout -k 5 40 ffmpeg -nostdin -hide_banner -loglevel error -y)

# make_cert NAME CN: a self-signed certificate and key, $T_TMP/NAME.crt and NAME.key.
make_cert() {
	openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=$2" \
		-keyout "$T_TMP/$1.key" -out "$T_TMP/$1.crt" >"$T_TMP/$1.openssl.log" 2>&1
}

# fingerprint_of FILE: the SHA-256 fingerprint of the PEM certificate in FILE.
fingerprint_of() {
	openssl x509 -in "$1" -noout -fingerprint -sha256 | sed 's/.*=//'
}

# served_fingerprint PORT: the SHA-256 fingerprint of the certificate 127.0.0.1:PORT serves.
served_fingerprint() {
	timeout 10 openssl s_client -connect "127.0.0.1:$1" </dev/null 2>/dev/null |
		openssl x509 -noout -fingerprint -sha256 2>/dev/null | sed 's/.*=//'
}

# closed_and_logged NAME OUT REGEX: the rtmp_bad.py run whose output is OUT was closed (its
# status in BAD_RC), and the signaler logged a line about its address matching REGEX.
closed_and_logged() {
	local addr i
	[[ $BAD_RC -eq 0 ]] || why "not closed by the server: $(tail -n 1 "$2")"
	addr=$(sed -n 's/^local //p' "$2" | head -n 1)
	for ((i = 0; i < 30; i++)); do
		grep -F "$addr" "$SIGNALER_LOG" | grep -qE -- "$3" && break
		sleep 0.1
	done
	grep -F "${addr:-none}" "$SIGNALER_LOG" | grep -qE -- "$3" ||
		why "no log line for ${addr:-?} matching /$3/"
	verdict "$1"
}

make_cert one rtmps-one.test && make_cert two rtmps-two.test || {
	fail rtmps "openssl req could not make a certificate"
	log_tail "$T_TMP/one.openssl.log"
	finish
}
cp "$T_TMP/one.crt" "$T_TMP/server.crt"
cp "$T_TMP/one.key" "$T_TMP/server.key"
FP_ONE=$(fingerprint_of "$T_TMP/one.crt")
FP_TWO=$(fingerprint_of "$T_TMP/two.crt")

TLS_PORT=$(free_port)
METRICS_PORT=$(free_port)
start_signaler RTMPS_PORT="$TLS_PORT" RTMPS_CERT_FILE="$T_TMP/server.crt" \
	RTMPS_KEY_FILE="$T_TMP/server.key" METRICS_PORT="$METRICS_PORT" RTMP_HANDSHAKE_TIMEOUT=2 || {
	fail rtmps "the signaler did not start"
	finish
}
if ! wait_port "$TLS_PORT" "$SIGNALER_PID" 10; then
	fail rtmps "the signaler does not listen on the RTMPS port $TLS_PORT"
	finish
fi
URL="rtmps://127.0.0.1:$TLS_PORT/echo"

# --- rtmps_echo
spawn "$T_TMP/player.log" "${FFMPEG[@]}" -rw_timeout 20000000 -analyzeduration 1000000 \
	-i "$URL/x" -t 4 "$T_TMP/echo.wav"
PLAY=$SPAWNED_PID
sleep 1
spawn "$T_TMP/publisher.log" "${FFMPEG[@]}" -re -f lavfi \
	-i "sine=frequency=1000:sample_rate=16000:duration=5" -c:a libspeex -ac 1 -ar 16000 \
	-f flv "$URL/x"
PUB=$SPAWNED_PID
wait "$PUB" || { why "the rtmps:// publisher failed"; log_tail "$T_TMP/publisher.log" 10; }
wait "$PLAY" || { why "the rtmps:// player failed"; log_tail "$T_TMP/player.log" 10; }
if [[ -s $T_TMP/echo.wav ]]; then
	if out=$("$WAVCHECK" --expect-freq 1000 --tol 30 --min-duration 3 --min-rms-dbfs -40 \
		"$T_TMP/echo.wav" 2>&1); then
		note "echo.wav: $out"
	else
		why "echo.wav: $(grep -m1 FAIL <<<"$out")"
	fi
else
	why "no recording from the rtmps:// player"
fi
grep -qE 'TLS handshake done: TLSv1\.[23] ' "$SIGNALER_LOG" ||
	why "no debug line naming the TLS version and cipher"
verdict rtmps_echo

# --- rtmps_burst, and plain RTMP beside it
"${BAD[@]}" burst --tls --port "$TLS_PORT" --count 10 --bytes 100000 --timeout 20 \
	>"$T_TMP/burst.log" 2>&1 || why "$(tail -n 1 "$T_TMP/burst.log")"
verdict rtmps_burst
"${BAD[@]}" burst --port "$RTMP_PORT" --count 10 --bytes 100000 --timeout 20 \
	>"$T_TMP/burst-plain.log" 2>&1 || why "$(tail -n 1 "$T_TMP/burst-plain.log")"
verdict rtmps_plain_alongside

# --- hostile clients on the RTMPS port
"${BAD[@]}" garbage --port "$TLS_PORT" --timeout 5 >"$T_TMP/plain-client.log" 2>&1
BAD_RC=$?
closed_and_logged rtmps_plain_client "$T_TMP/plain-client.log" 'TLS handshake failed'
"${BAD[@]}" tls-garbage --port "$TLS_PORT" --timeout 5 >"$T_TMP/tls-garbage.log" 2>&1
BAD_RC=$?
closed_and_logged rtmps_tls_garbage "$T_TMP/tls-garbage.log" 'TLS handshake failed'
"${BAD[@]}" garbage --tls --port "$TLS_PORT" --timeout 5 >"$T_TMP/garbage-in-tls.log" 2>&1
BAD_RC=$?
closed_and_logged rtmps_garbage_in_tls "$T_TMP/garbage-in-tls.log" 'closing: '

timeout 10 openssl s_client -connect "127.0.0.1:$TLS_PORT" -tls1_1 \
	-cipher 'DEFAULT@SECLEVEL=0' </dev/null >"$T_TMP/tls11.log" 2>&1 &&
	why "openssl s_client -tls1_1 connected"
grep -q 'New, TLSv1.1' "$T_TMP/tls11.log" && why "a TLS 1.1 session was set up"
wait_log "$SIGNALER_LOG" 'TLS handshake failed: .*unsupported protocol' 5 ||
	why "no 'unsupported protocol' handshake failure in the log"
verdict rtmps_old_tls

python3 "$T_ROOT/tests/tools/conn_flood.py" --port "$TLS_PORT" --count 3 --send tls-hello \
	--settle 5 --hold 5 >"$T_TMP/tls-stall.log" 2>&1
grep -q '^held open=0 closed=3 failed=0' "$T_TMP/tls-stall.log" ||
	why "3 clients stalled in the TLS handshake, want all closed after 2 s: $(head -n 1 "$T_TMP/tls-stall.log")"
grep -q 'TLS handshake not completed within 2 s' "$SIGNALER_LOG" || why "no timeout line in the log"
verdict rtmps_tls_timeout

# --- metrics
curl -s -m 5 -o "$T_TMP/metrics.prom" "http://127.0.0.1:$METRICS_PORT/metrics" || why "no /metrics"
v=$(metric "$T_TMP/metrics.prom" rtmp2sip_signaler_rtmps_connections_accepted_total)
[[ -n $v ]] && ((${v%.*} >= 8)) || why "rtmps_connections_accepted_total is '$v', want >= 8"
v=$(metric "$T_TMP/metrics.prom" rtmp2sip_signaler_rtmps_handshake_failures_total)
[[ -n $v ]] && ((${v%.*} >= 6)) || why "rtmps_handshake_failures_total is '$v', want >= 6 (plain client, TLS garbage, TLS 1.1, 3 stalled)"
v=$(metric "$T_TMP/metrics.prom" rtmp2sip_signaler_rtmps_certificate_expiry_timestamp_seconds)
now=$(date +%s)
[[ -n $v ]] && ((${v%.*} > now && ${v%.*} < now + 3 * 86400)) ||
	why "certificate expiry '$v' is not within the 2 days the test certificate lasts"
verdict rtmps_metrics

# --- reload
fp=$(served_fingerprint "$TLS_PORT")
[[ $fp == "$FP_ONE" ]] || why "before the reload the served fingerprint is '$fp', not the first certificate's"
cp "$T_TMP/two.crt" "$T_TMP/server.crt"
cp "$T_TMP/two.key" "$T_TMP/server.key"
kill -HUP "$SIGNALER_PID"
wait_log "$SIGNALER_LOG" "certificate .*server.crt loaded (SHA-256 $FP_TWO)" 10 ||
	why "no log line for the new certificate after SIGHUP"
fp=$(served_fingerprint "$TLS_PORT")
[[ $fp == "$FP_TWO" ]] || why "after SIGHUP a new connection got '$fp', not the new certificate's $FP_TWO"
verdict rtmps_reload

echo "not a certificate" >"$T_TMP/server.crt"
kill -HUP "$SIGNALER_PID"
wait_log "$SIGNALER_LOG" 'reload failed' 10 || why "no error line for the broken certificate file"
fp=$(served_fingerprint "$TLS_PORT")
[[ $fp == "$FP_TWO" ]] || why "after a failed reload a new connection got '$fp', not the certificate in use before"
"${BAD[@]}" burst --tls --port "$TLS_PORT" --count 1 --bytes 1000 --timeout 10 \
	>"$T_TMP/burst-after.log" 2>&1 || why "RTMPS after the failed reload: $(tail -n 1 "$T_TMP/burst-after.log")"
curl -s -m 5 -o "$T_TMP/metrics2.prom" "http://127.0.0.1:$METRICS_PORT/metrics"
[[ $(metric "$T_TMP/metrics2.prom" 'rtmp2sip_signaler_rtmps_certificate_reloads_total{result="ok"}') == 1 ]] ||
	why "reloads ok is not 1"
[[ $(metric "$T_TMP/metrics2.prom" 'rtmp2sip_signaler_rtmps_certificate_reloads_total{result="failed"}') == 1 ]] ||
	why "reloads failed is not 1"
verdict rtmps_reload_bad

stop_signaler
rc=$?
[[ $rc -eq 0 ]] || why "the signaler exited with status $rc on SIGTERM"
verdict rtmps_clean_exit stopped

# --- RTMPS only, and no listener at all
cp "$T_TMP/one.crt" "$T_TMP/server.crt"
cp "$T_TMP/one.key" "$T_TMP/server.key"
ONLY_PORT=$(free_port)
spawn "$T_TMP/only.log" env RTMP_PORT=0 RTMPS_PORT="$ONLY_PORT" RTMP_BIND=127.0.0.1 \
	RTMPS_CERT_FILE="$T_TMP/server.crt" RTMPS_KEY_FILE="$T_TMP/server.key" SIP_PORT=0 \
	METRICS_PORT=0 LOG_LEVEL=debug T_NO_REDIS=1 "$BUILD/signaler"
ONLY_PID=$SPAWNED_PID
if wait_port "$ONLY_PORT" "$ONLY_PID" 10; then
	"${BAD[@]}" burst --tls --port "$ONLY_PORT" --count 2 --bytes 5000 --timeout 10 \
		>"$T_TMP/only-burst.log" 2>&1 || why "RTMPS only: $(tail -n 1 "$T_TMP/only-burst.log")"
	grep -q 'rtmp: listening' "$T_TMP/only.log" && why "RTMP_PORT=0 still listened for plain RTMP"
else
	why "RTMP_PORT=0 RTMPS_PORT=$ONLY_PORT: not listening"
	log_tail "$T_TMP/only.log" 10
fi
stop_pid "$ONLY_PID" 5 || why "the RTMPS-only signaler did not exit cleanly"
verdict rtmps_only stopped

timeout 10 env RTMP_PORT=0 SIP_PORT=0 METRICS_PORT=0 "$BUILD/signaler" >"$T_TMP/none.log" 2>&1
rc=$?
[[ $rc -eq 2 ]] || why "RTMP_PORT=0 without RTMPS_PORT: status $rc, want 2"
grep -q 'nothing to listen on' "$T_TMP/none.log" || why "no line saying why"
verdict rtmps_no_listener stopped
finish
