#!/usr/bin/env bash
# test_call_app.sh - URL dialing with stock RTMP tools: ffmpeg publishes to call/<destination>,
# the signaler places a real SIP call (sofia-sip) to SIPp, the media goes through a mediaworker,
# and an ffmpeg player of the same name records the far end (SIPp echoes the RTP back).
#
#   call_speex_tone        Speex 16 kHz publisher, SIP side negotiated PCMU: the tone comes back
#   call_pcmu_tone         G.711 u-law publisher (pass-through to PCMU): the tone comes back
#   call_record_codec      a Speex publisher and a PCMU callee: the call record (relayctl calls)
#                          says codec PCMU, transcoding 1 once answered
#   call_pcmu_2048_tone    G.711 u-law in 2048-sample messages (2049 bytes each, dropped whole by
#                          the old 1500-byte MEDIA bound): the tone comes back at its pitch
#   call_pcmu_16k_tone     G.711 u-law published at 16 kHz (ffmpeg without -ar 8000; its
#                          onMetaData says the rate): the tone comes back at its pitch
#   call_pcmu_stereo_tone  ffmpeg's stereo u-law (flagged mono; onMetaData says stereo): likewise
#   call_pcmu_16k_refused  G.711 u-law at 16 kHz from a publisher without metadata: onStatus
#                          NetConnection.Call.Failed naming the measured 16000 Hz and the fix, a
#                          warn line, no leg left
#   call_sip_signalling    the signaler logged INVITE sent, 180, answered, and BYE on unpublish
#   call_busy              a callee answering 486: the call fails with the status in the log,
#                          no leg left
#   call_callee_bye        a callee that hangs up: the call ends by the peer's BYE
#   call_bad_destination   call/<garbage>: onStatus NetStream.Publish.BadName, signaler alive
#   call_credentials       a callee challenging the INVITE with 401: the publisher's ?user=&pass=
#                          (percent-encoded) answer it, the call is answered, the password is
#                          never logged (sipp/call_uas_auth.xml verifies the digest)
#   call_bad_params        a lone user, a control character, a bad escape, a repeated or an
#                          over-long value: refused with the reason, no call placed
#   call_no_leftovers      no leg records left in Redis
#   call_metrics           the signaler's /metrics counted the calls above: started, answered,
#                          ended completed and busy (call_busy); none active, as many ended as
#                          started (the refused publishes are no calls)
#
# Then with CALL_SRTP=required (the signaler restarted):
#   call_srtp_tone         the INVITE offers RTP/SAVP + a=crypto; SIPp answers with the offered
#                          key and echoes the SRTP packets (sipp/call_uas_srtp_echo.xml): they
#                          decrypt and the tone comes back
#   call_srtp_refused      a callee answering plain RTP/AVP: the call fails with the reason, no leg
#                          left in Redis
#
# Then with CALL_TOKEN_SECRET set (restarted again):
#   call_token             no token (publisher or player), a bad token, an expired token, one
#                          too far ahead: refused with the reason; a valid token: the tone call
#                          works (a bad-token publisher of the same destination meanwhile
#                          changes nothing); the signaler stays up
#   call_token_no_leftovers no leg records left in Redis
#   call_token_file_missing CALL_TOKEN_SECRET_FILE naming no file stops the signaler at start (the
#                          token cases read the secret from CALL_TOKEN_SECRET_FILE)
#
# Then, restarted for each:
#   call_auth_unset        no CALL_AUTH (nor secret): every publish refused with the reason, an
#                          error at start, the refusal counted (reason "auth")
#   call_auth_sip          CALL_AUTH=sip: a publish without ?user=&pass= is refused; with them the
#                          tone call works, and a player giving other credentials is refused
#   call_limits            CALL_DESTINATIONS: a destination off the list is refused;
#                          CALL_MAX_ACTIVE_PER_CLIENT=1: a second call up is refused;
#                          CALL_ATTEMPTS_PER_MINUTE_PER_CLIENT=3: the fourth attempt is refused;
#                          each counted by reason in /metrics
#
# The parameters (?user=&pass=, ?expires=&token=) need an RTMP core that hands publish and play
# names to the call app with their query.
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MW="$T_MW"
need_tools call ffmpeg sipp redis-cli python3 openssl
for bin in "$MW" "$WAVCHECK"; do
	[[ -x $bin ]] || { fail call_setup "$bin not built"; finish; }
done
start_redis || { fail call_setup "redis did not start"; finish; }

FF=(ffmpeg -nostdin -hide_banner -loglevel error -y)
SIPP_DIR="$(dirname "${BASH_SOURCE[0]}")/sipp"

base=$((36000 + RANDOM % 4000 / 2 * 2))
spawn "$T_TMP/worker.log" env WORKER_ID=cw1 RTP_PORT_MIN="$base" RTP_PORT_MAX=$((base + 999)) \
	LOG_LEVEL=info RTP_BIND_IP=127.0.0.1 "$MW"
wait_log "$T_TMP/worker.log" 'mediaworker ready' 5
# wait_worker: the worker registers in Redis; the signaler finds it within a second or so.
wait_worker() {
	wait_log "$SIGNALER_LOG" 'mediaworker up' 10
}

# restart_signaler LOG VAR=value...: a new signaler (fresh ports, its own log) with the variables.
restart_signaler() {
	local log=$1
	shift
	stop_signaler
	SIGNALER_LOG="$T_TMP/$log"
	# shellcheck disable=SC2034 # start_signaler (lib.sh) picks a free port when it is empty
	SIP_PORT=""
	start_signaler "$@" && wait_worker && URL="rtmp://127.0.0.1:$RTMP_PORT/call"
}

METRICS_PORT=$(free_port)
start_signaler SIGNALER_ID=sig-call-test METRICS_PORT="$METRICS_PORT" ||
	{ fail call_setup "the signaler did not start"; finish; }
URL="rtmp://127.0.0.1:$RTMP_PORT/call"
wait_worker || { fail call_setup "the signaler found no worker"; finish; }

# legs_left: leg records in Redis, after waiting (bounded) for them to go.
legs_left() {
	local i n
	for ((i = 0; i < 50; i++)); do
		n=$(redis-cli -p "$REDIS_PORT" --scan --pattern 'rs:v1:leg:*' | wc -l)
		((n == 0)) && break
		sleep 0.2
	done
	echo "$n"
}

# job_running PID: true while PID is a running job of this shell (a child that is gone is never
# probed or signalled by its pid: another process may have been given it since).
job_running() {
	[[ " $(jobs -pr | tr '\n' ' ') " == *" $1 "* ]]
}

# stop_job PID: SIGTERM to PID if it is still a running job.
stop_job() {
	job_running "$1" && kill "$1" 2>/dev/null
	return 0
}

# wait_pid PID SECONDS: waits for job PID to end; its exit status, or 124 after SECONDS.
wait_pid() {
	local i
	for ((i = 0; i < $2 * 10; i++)); do
		job_running "$1" || { wait "$1"; return; }
		sleep 0.1
	done
	return 124
}

# tone_call NAME CODEC-ARGS FREQ [QUERY-FN [SCENARIO]]: SIPp UAS with RTP echo (its built-in uas,
# or sipp/SCENARIO for one call, messages traced to $T_TMP/NAME.msg) on port TONE_SPORT (default:
# a free one), a player and a publisher of its destination, with "?<what QUERY-FN DEST prints>"
# when QUERY-FN is given; checks the WAV (TONE_WHY says why not). SIPP_RC is SIPp's exit status
# with a SCENARIO (124: still running).
tone_call() {
	local name=$1 freq=$3 query=${4:-} scenario=${5:-} sport mport out="$T_TMP/$1.wav" dest
	local -a codec sipp_args=(-sn uas)
	read -r -a codec <<<"$2"
	[[ -n $scenario ]] && sipp_args=(-sf "$SIPP_DIR/$scenario" -m 1 -trace_msg
		-message_file "$T_TMP/$name.msg")
	sport=${TONE_SPORT:-$(free_port)} mport=$(udp_port)
	spawn "$T_TMP/$name.sipp.log" sipp "${sipp_args[@]}" -rtp_echo -mp "$mport" -p "$sport" \
		-i 127.0.0.1 -nostdin
	local sipp_pid=$SPAWNED_PID
	sleep 0.5
	dest="service@127.0.0.1:$sport"
	[[ -n $query ]] && query="?$($query "$dest")"
	timeout 30 "${FF[@]}" -analyzeduration 1000000 -i "$URL/$dest$query" -t 5 "$out" \
		>"$T_TMP/$name.play.log" 2>&1 &
	local player=$!
	sleep 1
	timeout 30 "${FF[@]}" -re -f lavfi -i "sine=frequency=$freq:sample_rate=16000:duration=7" \
		"${codec[@]}" -f flv "$URL/$dest$query" >"$T_TMP/$name.pub.log" 2>&1
	wait "$player"
	if [[ -n $scenario ]]; then
		wait_pid "$sipp_pid" 10
		SIPP_RC=$?
	fi
	stop_job "$sipp_pid"
	if "$WAVCHECK" "$out" --expect-freq "$freq" --tol 30 --min-duration 4 --min-rms-dbfs -30 \
		>"$T_TMP/$name.check" 2>&1; then
		return 0
	fi
	TONE_WHY="$(cat "$T_TMP/$name.check") $(tail -2 "$T_TMP/$name.play.log" | tr '\n' ' ')"
	return 1
}

# tone_case NAME CODEC-ARGS FREQ: a tone call through SIPp's built-in uas, as one test case.
# echo_callee LABEL: a SIPp callee answering PCMU and echoing the RTP; ECHO_PORT, ECHO_PID.
echo_callee() {
	ECHO_PORT=$(free_port)
	spawn "$T_TMP/$1.sipp.log" sipp -sn uas -rtp_echo -mp "$(udp_port)" -p "$ECHO_PORT" \
		-i 127.0.0.1 -nostdin
	ECHO_PID=$SPAWNED_PID
	sleep 0.5
}

tone_case() {
	if tone_call "$@"; then
		pass "$1"
	else
		fail "$1" "$TONE_WHY"
	fi
}

tone_case call_speex_tone "-c:a libspeex -ac 1 -ar 16000" 1000
tone_case call_pcmu_tone "-c:a pcm_mulaw -ac 1 -ar 8000" 700
# The call record says what runs after the answer: a Speex publisher and a PCMU callee is a
# transcoded call (its leg was made before the answer, on a pass-through codec).
why=""
echo_callee rec
sport=$ECHO_PORT rec_sipp=$ECHO_PID
timeout 20 "${FF[@]}" -re -f lavfi -i "sine=frequency=700:sample_rate=16000:duration=5" \
	-c:a libspeex -ac 1 -ar 16000 -f flv "$URL/rec@127.0.0.1:$sport" >"$T_TMP/rec.pub.log" 2>&1 &
rec_pub=$!
rec=""
for ((i = 0; i < 40; i++)); do
	sleep 0.1
	key=$(redis-cli -p "$REDIS_PORT" --scan --pattern 'rs:v1:call:*' | head -n 1)
	[[ -n $key ]] || continue
	rec=$(redis-cli -p "$REDIS_PORT" HMGET "$key" state codec transcoding | tr '\n' ' ')
	[[ $rec == "up "* ]] && break
done
sleep 1 # the worker's answer to the codec update
[[ -n $key ]] && rec=$(redis-cli -p "$REDIS_PORT" HMGET "$key" state codec transcoding | tr '\n' ' ')
wait "$rec_pub"
stop_job "$rec_sipp"
note "call record during the call: ${rec:-none}"
[[ $rec == "up PCMU 1 " ]] || why="the record says '${rec:-nothing}', not 'up PCMU 1'"
if [[ -z $why ]]; then
	pass call_record_codec
else
	fail call_record_codec "$why"
fi

tone_case call_pcmu_2048_tone "-c:a pcm_mulaw -ac 1 -ar 8000 -af aresample=8000,asetnsamples=n=2048" 700

# G.711 at 16 kHz, and ffmpeg's stereo (written as mono): the FLV header cannot say so, ffmpeg's
# onMetaData does; the worker decodes and resamples, the tone comes back at its pitch.
tone_case call_pcmu_16k_tone "-c:a pcm_mulaw -ac 1 -ar 16000" 700
tone_case call_pcmu_stereo_tone "-c:a pcm_mulaw -ac 2 -ar 8000" 700

# Without metadata (a raw publisher), G.711 at 16 kHz is told by its timestamps: refused.
why=""
echo_callee rate
sport=$ECHO_PORT rate_sipp=$ECHO_PID
out=$(python3 "$T_ROOT/tests/tools/rtmp_bad.py" publish --port "$RTMP_PORT" --app call \
	--stream "rate@127.0.0.1:$sport" --audio-byte 0x82 --bytes 2049 --count 24 --step 128 2>&1)
rc=$?
stop_job "$rate_sipp"
err=$(grep -m1 'onStatus error' <<<"$out")
note "u-law at 16 kHz without metadata: exit $rc, ${err:-no server error}"
[[ $err == *"call: G.711 audio measured at 16000 Hz"*"publish G.711 at 8000 Hz, e.g. ffmpeg -ar 8000"* ]] ||
	why+="no NetConnection.Call.Failed naming 16000 Hz and the fix (${err:-none}); "
grep -q "warn .*call/rate@127.0.0.1:$sport: publisher refused: G.711 audio measured at 16000 Hz" \
	"$SIGNALER_LOG" || why+="no warn line for the refusal; "
left=$(legs_left)
[[ $left -eq 0 ]] || why+="$left leg records left in Redis; "
if [[ -z $why ]] && signaler_alive; then
	pass call_pcmu_16k_refused
else
	fail call_pcmu_16k_refused "${why:-the signaler died}"
fi

if grep -q 'INVITE sent' "$SIGNALER_LOG" && grep -q '180 Ringing' "$SIGNALER_LOG" &&
	grep -q 'answered: PCMU/8000' "$SIGNALER_LOG" && grep -q 'BYE sent' "$SIGNALER_LOG"; then
	pass call_sip_signalling
else
	fail call_sip_signalling "missing INVITE/180/answer/BYE lines in the signaler log"
fi

# A busy callee: the call fails with 486, nothing is left. A player that comes for it afterwards
# (the publisher has left, as clients do when a call fails) is told why at once: StreamNotFound
# with the reason, never a wait for a publisher that will not come.
sport=$(free_port)
spawn "$T_TMP/busy.sipp.log" sipp -sf "$SIPP_DIR/uas_busy.xml" -p "$sport" -i 127.0.0.1 -nostdin -m 1
timeout 20 "${FF[@]}" -re -f lavfi -i "sine=frequency=500:sample_rate=16000:duration=3" \
	-c:a libspeex -ac 1 -ar 16000 -f flv "$URL/busy@127.0.0.1:$sport" >"$T_TMP/busy.pub.log" 2>&1
why=""
grep -q "busy@127.0.0.1:$sport failed: 486" "$SIGNALER_LOG" ||
	why+="no 'failed: 486' for the busy callee in the signaler log; "
timeout 6 "${FF[@]}" -i "$URL/busy@127.0.0.1:$sport" -t 1 "$T_TMP/busy_play.wav" \
	>"$T_TMP/busy.play.log" 2>&1
[[ $? == 124 ]] && why+="the player of the failed call was left waiting; "
grep -q "play 'busy@127.0.0.1:$sport' refused: call .*failed: 486" "$SIGNALER_LOG" ||
	why+="the late player was not told the call failed; "
if [[ -z $why ]]; then pass call_busy; else fail call_busy "$why"; fi

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
if grep -qE "refused: '[^']*' is (neither a SIP URI|not a SIP destination)" "$SIGNALER_LOG" && signaler_alive; then
	pass call_bad_destination
else
	fail call_bad_destination "no refusal logged, or the signaler died"
fi

# A callee that challenges the INVITE: the publisher's credentials answer it ("s%65cret" is
# "secret" percent-encoded).
sport=$(free_port)
spawn "$T_TMP/auth.sipp.log" sipp -sf "$SIPP_DIR/call_uas_auth.xml" -p "$sport" -i 127.0.0.1 \
	-nostdin -m 1
auth_sipp=$SPAWNED_PID
sleep 0.5
timeout 20 "${FF[@]}" -re -f lavfi -i "sine=frequency=500:sample_rate=16000:duration=3" \
	-c:a libspeex -ac 1 -ar 16000 -f flv "$URL/service@127.0.0.1:$sport?user=bob&pass=s%65cret" \
	>"$T_TMP/auth.pub.log" 2>&1
wait_pid "$auth_sipp" 10
auth_rc=$?
if ! grep -q "service@127.0.0.1:$sport answered" "$SIGNALER_LOG"; then
	fail call_credentials "no answer logged (SIPp exit $auth_rc)"
elif awk '$2 != "debug"' "$SIGNALER_LOG" | grep -q 'secret\|s%65cret'; then
	# (debug lines are left out: the RTMP core's dump of raw commands shows whole arguments)
	fail call_credentials "the password shows in the signaler log"
elif [[ $auth_rc -ne 0 ]]; then
	fail call_credentials "SIPp's scenario failed (exit $auth_rc, see auth.sipp.log)"
else
	pass call_credentials
fi

# Malformed parameters are refused with the reason, without quoting the value.
bad_params() {
	timeout 20 "${FF[@]}" -re -f lavfi -i "sine=frequency=500:sample_rate=16000:duration=2" \
		-c:a libspeex -ac 1 -ar 16000 -f flv "$URL/params@127.0.0.1:9?$1" \
		>>"$T_TMP/params.pub.log" 2>&1
	grep -q "refused: call: $2" "$SIGNALER_LOG" || echo "no '$2' for '$1'; "
}
why=""
why+=$(bad_params "user=bob" "parameters 'user' and 'pass' go together")
why+=$(bad_params "user=bob&pass=ab%0Acd" "parameter 'pass' is malformed")
why+=$(bad_params "user=b%2" "parameter 'user' is malformed")
why+=$(bad_params "user=bob&user=eve&pass=x" "parameter 'user' given twice")
why+=$(bad_params "user=bob&pass=$(printf 'x%.0s' {1..129})" "parameter 'pass' is malformed")
if awk '$2 != "debug"' "$SIGNALER_LOG" | grep -q 'params@127.0.0.1:9: INVITE\|ab%0Acd'; then
	why+="a call was placed, or a value was logged; "
fi
if grep -q "publishing 'params@127.0.0.1:9'" "$SIGNALER_LOG"; then
	note "the RTMP core cut the stream names' ?query before the call app saw it:" \
		"parameters cannot work (signaler/rtmp_cmd.c arg_name)"
fi
if [[ -z $why ]]; then
	pass call_bad_params
else
	fail call_bad_params "$why"
fi

left=$(legs_left)
if [[ $left -eq 0 ]]; then
	pass call_no_leftovers
else
	fail call_no_leftovers "$left leg records left in Redis"
fi

# The tone calls, call_callee_bye and call_credentials answered, call_busy; the refused
# publishes are no calls.
calls_case call_metrics "$METRICS_PORT" call started:direction=out:1 answered:direction=out:1 \
	ended:reason=completed:1 ended:reason=busy:1
check_alive call_signaler_alive

# --- SRTP required ----------------------------------------------------------------------------
if ! restart_signaler signaler-srtp.log SIGNALER_ID=sig-call-srtp CALL_SRTP=required; then
	fail call_srtp_setup "the signaler did not restart with CALL_SRTP=required"
	finish
fi

SIPP_RC=""
if ! tone_call call_srtp_tone "-c:a libspeex -ac 1 -ar 16000" 1000 "" call_uas_srtp_echo.xml; then
	fail call_srtp_tone "$TONE_WHY"
elif ! grep -q 'm=audio [0-9]* RTP/SAVP ' "$T_TMP/call_srtp_tone.msg" ||
	! grep -q 'a=crypto:1 AES_CM_128_HMAC_SHA1_80 inline:' "$T_TMP/call_srtp_tone.msg"; then
	fail call_srtp_tone "SIPp saw no RTP/SAVP offer with a=crypto (call_srtp_tone.msg)"
elif ! grep -q 'answered: PCMU/8000 to .*, SRTP AES_CM_128_HMAC_SHA1_80' "$SIGNALER_LOG"; then
	fail call_srtp_tone "no SRTP answer in the signaler log"
elif [[ $SIPP_RC -ne 0 ]]; then
	fail call_srtp_tone "SIPp's scenario failed (exit $SIPP_RC, see call_srtp_tone.sipp.log)"
else
	pass call_srtp_tone
fi

# A callee that answers plain RTP/AVP to our RTP/SAVP offer.
sport=$(free_port)
spawn "$T_TMP/plain.sipp.log" sipp -sn uas -p "$sport" -i 127.0.0.1 -nostdin
plain_sipp=$SPAWNED_PID
sleep 0.5
timeout 20 "${FF[@]}" -re -f lavfi -i "sine=frequency=500:sample_rate=16000:duration=3" \
	-c:a libspeex -ac 1 -ar 16000 -f flv "$URL/plain@127.0.0.1:$sport" >"$T_TMP/plain.pub.log" 2>&1
stop_job "$plain_sipp"
left=$(legs_left)
mismatch="the answer is RTP/AVP but we offered RTP/SAVP"
if ! grep -q "plain@127.0.0.1:$sport: unusable answer: $mismatch" "$SIGNALER_LOG"; then
	fail call_srtp_refused "no refusal of the plain answer in the signaler log"
elif grep -q "plain@127.0.0.1:$sport answered" "$SIGNALER_LOG"; then
	fail call_srtp_refused "the plain answer was accepted"
elif [[ $left -ne 0 ]]; then
	fail call_srtp_refused "$left leg records left in Redis"
else
	pass call_srtp_refused
fi
check_alive call_srtp_signaler_alive

# --- signed tokens ----------------------------------------------------------------------------
SECRET="call-test-secret-$RANDOM$RANDOM"
# CALL_AUTH empty (unset): a secret alone chooses signed tokens. The secret from a file (a
# missing one stops the signaler at start).
printf '%s\n' "$SECRET" >"$T_TMP/token.secret"
chmod 600 "$T_TMP/token.secret"
env CALL_AUTH=token CALL_TOKEN_SECRET_FILE="$T_TMP/no-such-file" RTMP_PORT="$(free_port)" \
	SIP_PORT=0 METRICS_PORT=0 timeout 10 "$BUILD/signaler" >"$T_TMP/token-missing.log" 2>&1
rc=$?
if ((rc == 2)) && grep -q "config: CALL_TOKEN_SECRET_FILE" "$T_TMP/token-missing.log"; then
	pass call_token_file_missing
else
	fail call_token_file_missing "exit $rc: $(tail -2 "$T_TMP/token-missing.log" | tr '\n' ' ')"
fi
if ! restart_signaler signaler-token.log SIGNALER_ID=sig-call-token \
	CALL_TOKEN_SECRET_FILE="$T_TMP/token.secret" CALL_TOKEN_MAX_AGE=3600 CALL_AUTH=; then
	fail call_token_setup "the signaler did not restart with CALL_TOKEN_SECRET"
	finish
fi

# sign DESTINATION EXPIRES: the token, as docs/configuration.md computes it.
sign() {
	printf '%s' "$1:$2" | openssl dgst -sha256 -hmac "$SECRET" | awk '{print $NF}'
}
valid_query() {
	local exp=$(($(date +%s) + 600))
	echo "expires=$exp&token=$(sign "$1" "$exp")"
}

# refused_publish NAME QUERY REASON: a publish with ?QUERY must be refused with REASON.
refused_publish() {
	local name=$1 dest="nobody@127.0.0.1:9" rc
	timeout 20 "${FF[@]}" -re -f lavfi -i "sine=frequency=500:sample_rate=16000:duration=2" \
		-c:a libspeex -ac 1 -ar 16000 -f flv "$URL/$dest$2" >"$T_TMP/$name.pub.log" 2>&1
	rc=$?
	if ! grep -q "refused: call: $3" "$SIGNALER_LOG"; then
		echo "no '$3' refusal logged; "
	elif [[ $rc -eq 0 ]]; then
		echo "ffmpeg published despite '$3'; "
	elif grep -q "nobody@127.0.0.1:9: INVITE" "$SIGNALER_LOG"; then
		echo "a call was placed despite '$3'; "
	fi
}

why=""
exp_past=$(($(date +%s) - 60))
exp_future=$(($(date +%s) + 600))
why+=$(refused_publish token_none "" "token required")
other_token=$(sign other@127.0.0.1:9 "$exp_future")
past_token=$(sign nobody@127.0.0.1:9 "$exp_past")
why+=$(refused_publish token_bad "?expires=$exp_future&token=$other_token" "bad token")
why+=$(refused_publish token_expired "?expires=$exp_past&token=$past_token" "token expired")
timeout 20 "${FF[@]}" -i "$URL/nobody@127.0.0.1:9" -t 1 "$T_TMP/token_play.wav" \
	>"$T_TMP/token_play.log" 2>&1
grep -q "play 'nobody@127.0.0.1:9' refused: call: token required" "$SIGNALER_LOG" ||
	why+="a player without a token was not refused; "
exp_far=$((exp_future + 7200))
far_token=$(sign nobody@127.0.0.1:9 "$exp_far")
why+=$(refused_publish token_far "?expires=$exp_far&token=$far_token" \
	"bad token (expires more than 3600 s ahead)")
# While the valid call runs, a publisher of the same destination with a bad token is refused.
TONE_SPORT=$(free_port)
(
	sleep 3
	timeout 20 "${FF[@]}" -re -f lavfi -i "sine=frequency=500:sample_rate=16000:duration=2" \
		-c:a libspeex -ac 1 -ar 16000 -f flv \
		"$URL/service@127.0.0.1:$TONE_SPORT?expires=$exp_future&token=$(printf '%064d' 0)" \
		>"$T_TMP/token_intruder.pub.log" 2>&1
) &
intruder=$!
if ! tone_call call_token_tone "-c:a libspeex -ac 1 -ar 16000" 1000 valid_query; then
	why+="the call with a valid token failed: $TONE_WHY; "
fi
wait "$intruder"
if ! grep -q "call/service@127.0.0.1:$TONE_SPORT from .* refused: call: bad token" \
	"$SIGNALER_LOG"; then
	why+="the bad-token publisher of the running call was not refused; "
fi
TONE_SPORT=""
if [[ -n $why ]]; then
	fail call_token "$why"
elif ! signaler_alive; then
	fail call_token "the signaler died"
else
	pass call_token
fi

left=$(legs_left)
if [[ $left -eq 0 ]]; then
	pass call_token_no_leftovers
else
	fail call_token_no_leftovers "$left leg records left in Redis"
fi
check_alive call_token_signaler_alive

# --- who may call: nothing chosen, SIP credentials ---------------------------------------------
# refused_publish (above) publishes to nobody@127.0.0.1:9; publish_to DEST QUERY NAME: the same to
# any destination, ffmpeg's exit status.
publish_to() {
	timeout 20 "${FF[@]}" -re -f lavfi -i "sine=frequency=500:sample_rate=16000:duration=${4:-2}" \
		-c:a libspeex -ac 1 -ar 16000 -f flv "$URL/$1$2" >"$T_TMP/$3.pub.log" 2>&1
}
# refused_count REASON: rtmp2sip_signaler_calls_refused_total{reason=REASON} now.
refused_count() {
	curl -s -m 3 -o "$T_TMP/refused.prom" "http://127.0.0.1:$METRICS_PORT/metrics"
	metric "$T_TMP/refused.prom" "rtmp2sip_signaler_calls_refused_total{reason=\"$1\"}"
}

why=""
if restart_signaler signaler-noauth.log SIGNALER_ID=sig-call-noauth CALL_AUTH= \
	METRICS_PORT="$METRICS_PORT"; then
	grep -q "no caller authentication chosen" "$SIGNALER_LOG" ||
		why+="no error about the missing CALL_AUTH at start; "
	why+=$(refused_publish noauth "" "no caller authentication configured")
	[[ $(refused_count auth) -ge 1 ]] 2>/dev/null || why+="auth refusal not counted; "
else
	why+="the signaler did not start without CALL_AUTH; "
fi
if [[ -z $why ]] && signaler_alive; then pass call_auth_unset; else fail call_auth_unset "$why"; fi

why=""
if restart_signaler signaler-sipauth.log SIGNALER_ID=sig-call-sipauth CALL_AUTH=sip \
	METRICS_PORT="$METRICS_PORT"; then
	why+=$(refused_publish sipauth_none "" "SIP credentials required")
	# The caller's credentials own the call; a player with others may not listen in.
	creds() { echo "user=carol&pass=c4rol"; }
	TONE_SPORT=$(free_port)
	(
		sleep 3
		timeout 10 "${FF[@]}" -i "$URL/service@127.0.0.1:$TONE_SPORT?user=mallory&pass=x" \
			-t 1 "$T_TMP/eavesdrop.wav" >"$T_TMP/eavesdrop.log" 2>&1
	) &
	eavesdropper=$!
	tone_call call_sipauth_tone "-c:a libspeex -ac 1 -ar 16000" 1000 creds ||
		why+="the call with credentials failed: $TONE_WHY; "
	wait "$eavesdropper"
	grep -q "play call/service@127.0.0.1:$TONE_SPORT from .* refused: call: .* held with other SIP credentials" \
		"$SIGNALER_LOG" || why+="a player with other credentials was not refused; "
	TONE_SPORT=""
else
	why+="the signaler did not start with CALL_AUTH=sip; "
fi
if [[ -z $why ]] && signaler_alive; then pass call_auth_sip; else fail call_auth_sip "$why"; fi

# --- destinations and limits --------------------------------------------------------------------
why=""
lport=$(free_port)
if restart_signaler signaler-limits.log SIGNALER_ID=sig-call-limits \
	CALL_DESTINATIONS="allowed.example,*@127.0.0.1:$lport,+4930" CALL_MAX_ACTIVE_PER_CLIENT=1 \
	CALL_ATTEMPTS_PER_MINUTE_PER_CLIENT=3 METRICS_PORT="$METRICS_PORT"; then
	publish_to "someone@127.0.0.1:9" "" dest_refused
	grep -q "refused: call: destination sip:someone@127.0.0.1:9 is not allowed (CALL_DESTINATIONS)" \
		"$SIGNALER_LOG" || why+="a destination off the list was not refused; "
	# One call up (SIPp answers and echoes for 6 s): a second one from this client is refused.
	spawn "$T_TMP/limits.sipp.log" sipp -sn uas -rtp_echo -mp "$(udp_port)" -p "$lport" \
		-i 127.0.0.1 -nostdin
	sleep 0.5
	publish_to "one@127.0.0.1:$lport" "" limits_first 6 &
	first=$!
	wait_log "$SIGNALER_LOG" "one@127.0.0.1:$lport answered" 10 || why+="the first call was not answered; "
	publish_to "two@127.0.0.1:$lport" "" limits_second
	grep -q "two@127.0.0.1:$lport from .* refused: call: this client has 1 calls up already" \
		"$SIGNALER_LOG" || why+="a second call up from one client was not refused; "
	wait "$first"
	# Attempts: the first call spent one of three a minute; two more pass, the next is refused.
	publish_to "three@127.0.0.1:$lport" "" limits_third 1
	publish_to "four@127.0.0.1:$lport" "" limits_fourth 1
	publish_to "five@127.0.0.1:$lport" "" limits_fifth 1
	grep -q "five@127.0.0.1:$lport from .* refused: call: more than 3 call attempts a minute" \
		"$SIGNALER_LOG" || why+="a fourth attempt within the minute was not refused; "
	grep -q "four@127.0.0.1:$lport: INVITE sent" "$SIGNALER_LOG" || why+="the third attempt made no call; "
	for r in destination client_active client_rate; do
		[[ $(refused_count "$r") -ge 1 ]] 2>/dev/null || why+="no '$r' refusal counted; "
	done
else
	why+="the signaler did not start with the limits; "
fi
if [[ -z $why ]] && signaler_alive; then pass call_limits; else fail call_limits "$why"; fi
finish
