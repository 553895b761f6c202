#!/usr/bin/env bash
# test_sipphone.sh - the scripted softphone (tests/tools/sipphone.c) against the signaler's `echo`
# app, so the tool the sip-app tests rely on is itself known to work and to fail when it should:
#
#   sipphone_speex_echo      play + publish the same echo stream on one connection, a 1000 Hz
#                            Speex tone for 3 s: the recording (16 kHz) holds the tone
#   sipphone_pcmu_echo       the same with G.711 u-law, 700 Hz: an 8 kHz recording of the tone
#   sipphone_pcma_echo       the same with G.711 A-law, 440 Hz
#   sipphone_invoke          the echo app's `echo` invoke with typed arguments comes back as
#                            `result echo TXID null ...`; connect arguments are accepted
#   sipphone_invoke_error    an unknown method: invoke-error passes (exit 0, `error` line); a
#                            script expecting invoke of it exits 1
#   sipphone_wait_timeout    `wait never 1` exits 1 within 1-2 s, naming the event
#   sipphone_connect_rejected  an unknown app: `expect-connect rejected` + expect-close passes;
#                            without it the run exits 1
#   sipphone_usage           a script error exits 2 before connecting
#   sipphone_alive           the signaler is still running after all that
#
# Every run is bounded by `timeout`; env BUILD selects the build (default build).
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PHONE="$BUILD/tools/sipphone"
for tool in "$PHONE" "$WAVCHECK"; do
	if [[ ! -x $tool ]]; then
		skip sipphone "$tool not built (make tools)"
		finish
	fi
done
# shellcheck disable=SC2119 # no extra environment for the signaler
start_signaler || {
	fail sipphone-start "the signaler did not start"
	finish
}
URL="rtmp://127.0.0.1:$RTMP_PORT"

# phone NAME [sipphone args...] <script: runs sipphone (bounded by timeout) with the script on
# stdin; stdout in $T_TMP/NAME.stdout, both streams in $T_TMP/NAME.out, the time taken in SECS.
# Returns its exit status.
phone() {
	local name=$1 rc t0
	shift
	t0=$EPOCHREALTIME
	timeout -k 5 60 "$PHONE" --timeout 30 "$@" >"$T_TMP/$name.stdout" 2>"$T_TMP/$name.stderr"
	rc=$?
	SECS=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.2f", b - a }')
	cat "$T_TMP/$name.stdout" "$T_TMP/$name.stderr" >"$T_TMP/$name.out"
	return $rc
}

# report NAME: the run's output, indented, for a failure.
report() {
	sed 's/^/  | /' "$T_TMP/$1.out" | tail -n 30
}

# has NAME TEXT: true when the run's stdout has TEXT literally.
has() {
	grep -qF -- "$2" "$T_TMP/$1.stdout"
}

# echo_tone NAME STREAM CODEC FREQ RATE: one connection plays echo/x STREAM into a WAV and
# publishes a 3 s tone on it; the WAV must be at RATE and hold FREQ for >= 2.5 s.
echo_tone() {
	local name=$1 stream=$2 codec=$3 freq=$4 rate=$5 wav="$T_TMP/$1.wav" out line
	if ! phone "$name" "$URL/echo/x" <<-EOF; then
		# the player first: it waits for the publisher of the same name
		play $stream $wav
		publish $stream $codec $freq 3
		sleep 3.5
		stop-publish
	EOF
		fail "$name" "sipphone exit status $?"
		report "$name"
	elif ! has "$name" "audio $stream first codec=$codec"; then
		fail "$name" "no 'audio $stream first codec=$codec' line"
		report "$name"
	elif ! out=$("$WAVCHECK" --expect-freq "$freq" --tol 30 --min-duration 2.5 \
		--max-duration 3.5 --min-rms-dbfs -30 "$wav" 2>&1); then
		fail "$name" "$(grep -m1 FAIL <<<"$out")"
		while IFS= read -r line; do echo "  | $line"; done <<<"$out"
	elif ! grep -q "rate=$rate " <<<"$out"; then
		fail "$name" "recorded at the wrong rate (want $rate): $out"
	else
		note "$name: $out"
		pass "$name"
	fi
}

echo_tone sipphone_speex_echo t1 speex 1000 16000
echo_tone sipphone_pcmu_echo t2 pcmu 700 8000
echo_tone sipphone_pcma_echo t3 pcma 440 8000

name=sipphone_invoke
if ! phone $name "$URL/echo/x" alice "" "Alice A" wideband <<-'EOF'; then
	invoke echo s:hi n:3.5 b:true null bare "two words" s:null
EOF
	fail $name "sipphone exit status $?"
	report $name
elif ! has $name 'result echo 2 null "hi" 3.5 true null "bare" "two words" "null"'; then
	fail $name "unexpected reply"
	report $name
elif ! has $name OK; then
	fail $name "no OK line"
	report $name
else
	pass $name
fi

name=sipphone_invoke_error
if ! phone $name-ok "$URL/echo/x" <<-'EOF'; then
	invoke-error noSuchMethod x
	invoke echo again
EOF
	fail $name "invoke-error of an unknown method: sipphone exit status $?"
	report $name-ok
elif ! has $name-ok "error noSuchMethod 2 \"Method 'noSuchMethod' not found\""; then
	fail $name "no error line with the description"
	report $name-ok
else
	phone $name-bad "$URL/echo/x" <<<"invoke noSuchMethod x"
	rc=$?
	if [[ $rc -ne 1 ]]; then
		fail $name "invoke of an unknown method: exit status $rc, want 1"
		report $name-bad
	elif has $name-bad OK; then
		fail $name "a failed run printed OK"
		report $name-bad
	else
		pass $name
	fi
fi

name=sipphone_wait_timeout
phone $name "$URL/echo/x" <<<"wait never 1"
rc=$?
if [[ $rc -ne 1 ]]; then
	fail $name "exit status $rc, want 1"
	report $name
elif ! grep -q "never" "$T_TMP/$name.stderr"; then
	fail $name "the message does not name the event"
	report $name
elif ! awk -v s="$SECS" 'BEGIN { exit !(s >= 0.9 && s <= 2.5) }'; then
	fail $name "took $SECS s, want about 1"
else
	note "$name: $(cat "$T_TMP/$name.stderr") ($SECS s)"
	pass $name
fi

name=sipphone_connect_rejected
if ! phone $name-expected "$URL/noSuchApp/x" <<-'EOF'; then
	expect-connect rejected "Unknown application"
	expect-close 3
EOF
	fail $name "expect-connect rejected: sipphone exit status $?"
	report $name-expected
else
	phone $name-unexpected "$URL/noSuchApp/x" <<<"sleep 0.1"
	rc=$?
	if [[ $rc -ne 1 ]]; then
		fail $name "a rejected connect without expect-connect: exit status $rc, want 1"
		report $name-unexpected
	else
		pass $name
	fi
fi

name=sipphone_usage
phone $name "$URL/echo/x" <<<"publish t9 opus 1000 1"
rc=$?
if [[ $rc -eq 2 ]] && grep -q "line 1" "$T_TMP/$name.stderr"; then
	pass $name
else
	fail $name "exit status $rc, want 2 with the line named"
	report $name
fi

check_alive sipphone_alive && pass sipphone_alive
finish
