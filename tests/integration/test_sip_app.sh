#!/usr/bin/env bash
# test_sip_app.sh - the sip app (the Flash VoIP call API) driven by a real RTMP client on librtmp
# (tests/tools/sipphone), against real SIP peers (SIPp) through a real mediaworker and Redis.
#
#   sip_register           connect with credentials: REGISTER answered by SIPp's digest
#                          registrar (401 then 200), _result only then; the registration record is
#                          in Redis while connected; un-REGISTER and no record after the client left
#   sip_register_refused   a wrong password: _error Connect.Rejected naming 403
#   sip_call_out           invite(sip uas, wideband ulaw dtmf): ringing, accepted("ulaw"); the Speex
#                          tone comes back through SIPp's RTP echo (transcoded to PCMU and back);
#                          sendDTMF('5') goes out as RFC 4733 and returns as dtmf("5"); the call
#                          record is in Redis while up; the unregistered client (no password)
#                          calls as its AOR (From: sip:bob@example.com); bye
#   sip_call_out_pcmu      a client sending G.711 itself (invite ... pcmu): accepted("pcmu"),
#                          pass-through, the tone comes back
#   sip_busy               a callee answering 486: rejected("486 Busy Here")
#   sip_hold_info_dtmf     hold(true) sends a re-INVITE with a=sendonly, holded(true); sendDTMF
#                          goes by INFO when telephone-event was not negotiated (SIPp checks both)
#   sip_call_in            SIPp calls the registered client: invited(from, to), accept, the tone
#                          comes back through SIPp's echo, SIPp hangs up: byed()
#   sip_call_in_client_bye SIPp calls, the client accepts and hangs up with bye(): SIPp gets the BYE
#   sip_call_in_cancel     SIPp calls and CANCELs before the answer: invited, then cancelled
#   sip_call_in_reject     the client answers an incoming call with reject("486 Gone Fishing"):
#                          SIPp gets 486 with that phrase
#   sip_transfer_out       transfer(uri) sends REFER: transferred("202 ..."), then the NOTIFYed
#                          "200 OK", and the gateway hangs up as the transferor: byed()
#   sip_transfer_in        the caller REFERs the client's call to a third SIPp: the gateway calls it
#                          from the same leg (a second accepted()), the old call ends, the tone
#                          comes back through the new peer
#   sip_session_timer      a caller asking for session timers (Session-Expires 90) refreshes the
#                          session with a re-INVITE: answered 200, the call goes on until its BYE
#   sip_options            OPTIONS answered 200 with Allow naming INVITE, BYE, REFER and INFO
#   sip_call_in_488        an offer with no codec the gateway has (G.729 only) and one with a broken
#                          SDP: 488 before any 180, the client never hears of them
#   sip_call_in_untrusted  SIPp calls the client from 127.0.0.2, neither a trusted source
#                          (SIP_TRUSTED_SOURCES) nor the registrar: 403, no invited(); counted
#   sip_bad_input          wrong argument types and counts, a malformed URI, commands without a
#                          call, a second invite during a call: _error each, while another client's
#                          call keeps its audio without a gap; the signaler stays up
#   sip_replace            a second connect for the same AOR replaces the first; an unregistered
#                          client cannot replace a registered one
#   sip_no_leftovers       no call, registration or leg records left in Redis
#   sip_call_metrics       the signaler's /metrics counted the calls above: started and answered
#                          both ways, ended completed, busy (sip_busy), not_acceptable (the two
#                          488s), cancelled (sip_call_in_cancel); none active, as many ended as
#                          started
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MW="$T_MW"
PHONE="$BUILD/tools/sipphone"
SIPP_DIR="$(dirname "${BASH_SOURCE[0]}")/sipp"
need_tools sip_app sipp redis-cli python3
for bin in "$MW" "$WAVCHECK" "$PHONE"; do
	[[ -x $bin ]] || { fail sip_setup "$bin not built"; finish; }
done
start_redis || { fail sip_setup "redis did not start"; finish; }

base=$((22000 + RANDOM % 4000 / 2 * 2))
TONE_WHY=""
spawn "$T_TMP/worker.log" env WORKER_ID=sipw1 RTP_PORT_MIN="$base" RTP_PORT_MAX=$((base + 999)) \
	LOG_LEVEL=info RTP_BIND_IP=127.0.0.1 "$MW"
REG_PORT=$(free_port)
METRICS_PORT=$(free_port)
# Trusted sources: a network no peer here uses, so only the registrar (127.0.0.1, from
# SIP_REGISTRAR and from its 200s) may call in; sip_call_in_untrusted calls from 127.0.0.2.
start_signaler SIGNALER_ID=sig-sip-test SIP_BIND=127.0.0.1 METRICS_PORT="$METRICS_PORT" \
	SIP_REGISTRAR="sip:127.0.0.1:$REG_PORT" SIP_TRUSTED_SOURCES=192.0.2.1 ||
	{ fail sip_setup "the signaler did not start"; finish; }
URL="rtmp://127.0.0.1:$RTMP_PORT/sip"
wait_log "$SIGNALER_LOG" 'mediaworker up' 10

# phone NAME AOR [connect args...] <script: sipphone for sip/AOR, output in $T_TMP/NAME.out.
phone() {
	local name=$1 aor=$2
	shift 2
	timeout -k 5 90 "$PHONE" --timeout 60 "$URL/$aor" "$@" >"$T_TMP/$name.out" 2>&1
}

# report NAME: the end of a run's output, for a failure.
report() {
	tail -n 25 "$T_TMP/$1.out" | sed 's/^/  | /'
}

# wav_ok NAME FILE FREQ: the recording has the tone (TONE_WHY says why not).
wav_ok() {
	TONE_WHY=""
	TONE_WHY=$("$WAVCHECK" --expect-freq "$3" --min-duration 1.5 --min-rms-dbfs -30 "$2" 2>&1) ||
		return 1
}

# --- registration ------------------------------------------------------------------------------

sipp_run reg -sf "$SIPP_DIR/registrar_digest.xml" -m 1 -p "$REG_PORT"
sleep 0.3
phone reg alice@example.com alice secret Alice <<<"sleep 2" &
phone_pid=$!
reg_key=""
for ((i = 0; i < 30; i++)); do
	reg_key=$(redis-cli -p "$REDIS_PORT" hget rs:v1:reg:alice@example.com signaler)
	[[ -n $reg_key ]] && break
	sleep 0.1
done
wait "$phone_pid"
phone_rc=$?
sipp_wait "$SIPP_PID" 10
sipp_rc=$?
sleep 0.3
if ((phone_rc == 0 && sipp_rc == 0)) && [[ $reg_key == sig-sip-test ]] &&
	[[ -z $(rkeys 'rs:v1:reg:*') ]] && grep -q 'un-REGISTER answered 200' "$SIGNALER_LOG"; then
	pass sip_register
else
	fail sip_register "phone rc $phone_rc, registrar rc $sipp_rc, record owner '$reg_key'"
	report reg
fi

sipp_run regbad -sf "$SIPP_DIR/registrar_digest.xml" -m 1 -p "$REG_PORT"
sleep 0.3
if phone regbad alice@example.com alice wrong Alice <<<"expect-connect rejected 403"; then
	pass sip_register_refused
else
	fail sip_register_refused "connect not rejected with 403"
	report regbad
fi
kill "$SIPP_PID" 2>/dev/null

# --- outgoing calls ------------------------------------------------------------------------------

# A bad-input client runs against this call (sip_bad_input below).
sport=$(free_port) mport=$(udp_port)
sipp_run out -sf "$SIPP_DIR/sipapp_uas_te_echo.xml" -m 1 -rtp_echo -mp "$mport" -p "$sport"
sleep 0.3
phone out bob@example.com "" "" Bob >/dev/null <<EOF &
invite sip:service@127.0.0.1:$sport wideband ulaw dtmf
wait-arg ringing 0 180
wait-arg accepted 0 ulaw
publish local speex 1000 7
play remote $T_TMP/out.wav
sleep 2.5
dtmf 5
wait-arg dtmf 0 5 5
sleep 3.5
bye
EOF
phone_pid=$!
sleep 2
call_state=$(for k in $(rkeys 'rs:v1:call:*'); do redis-cli -p "$REDIS_PORT" hget "$k" state; done)
call_codec=$(for k in $(rkeys 'rs:v1:call:*'); do redis-cli -p "$REDIS_PORT" hget "$k" codec; done)

# Meanwhile: bad input from another client.
phone bad carol@example.com "" "" Carol <<EOF
invoke-error invite n:42
invoke-error invite
invoke-error invite "sip:@@nowhere"
invoke-error invite "no spaces allowed"
invoke-error invite sip:x@127.0.0.1 martian
invoke-error accept
invoke-error reject
invoke-error bye
invoke-error sendDTMF 5
invoke-error hold b:true
invoke-error hold notabool
invoke-error transfer sip:x@127.0.0.1
invoke-error sendDTMF
EOF
bad_rc=$?
bport=$(free_port)
sipp_run bad2 -sf "$SIPP_DIR/uas_cancel.xml" -m 1 -p "$bport"
bad2_sipp=$SIPP_PID
sleep 0.3
phone bad2 carol@example.com "" "" Carol <<EOF
invite sip:nobody@127.0.0.1:$bport wideband
wait ringing
invoke-error invite sip:nobody@127.0.0.1:$bport wideband
invoke-error accept
bye
EOF
bad2_rc=$?
sipp_wait "$bad2_sipp" 10 || bad2_rc=$?
wait "$phone_pid"
phone_rc=$?
sipp_wait "$SIPP_PID" 10
sipp_rc=$?
from_ok=0
grep -q "sip: INVITE sip:service@127.0.0.1:$sport from sip:bob@example.com" "$SIGNALER_LOG" && from_ok=1
if ((phone_rc == 0 && sipp_rc == 0 && from_ok)) && wav_ok out "$T_TMP/out.wav" 1000 &&
	[[ $call_state == up && $call_codec == PCMU ]]; then
	pass sip_call_out
else
	fail sip_call_out "phone rc $phone_rc, SIPp rc $sipp_rc, record state '$call_state' codec '$call_codec', From the AOR: $from_ok, $TONE_WHY"
	report out
fi
if ((bad_rc == 0 && bad2_rc == 0)) && signaler_alive &&
	"$WAVCHECK" --max-gap 0.2 --ignore-start 0.5 "$T_TMP/out.wav" >/dev/null 2>&1; then
	pass sip_bad_input
else
	fail sip_bad_input "bad rc $bad_rc, bad2 rc $bad2_rc, or the good call's audio had a gap"
	report bad
	report bad2
fi

sport=$(free_port) mport=$(udp_port)
sipp_run pcmu -sn uas -rtp_echo -mp "$mport" -p "$sport"
sleep 0.3
if phone pcmu dave@example.com "" "" <<EOF && wav_ok pcmu "$T_TMP/pcmu.wav" 700; then
invite sip:service@127.0.0.1:$sport pcmu
wait-arg accepted 0 pcmu
publish local pcmu 700 4
play remote $T_TMP/pcmu.wav
sleep 3.5
bye
EOF
	pass sip_call_out_pcmu
else
	fail sip_call_out_pcmu "$TONE_WHY"
	report pcmu
fi
kill "$SIPP_PID" 2>/dev/null

sport=$(free_port)
sipp_run busy -sf "$SIPP_DIR/uas_busy.xml" -m 1 -p "$sport"
sleep 0.3
if phone busy erin@example.com "" "" <<EOF; then
invite sip:service@127.0.0.1:$sport
wait-arg rejected 0 "486 Busy Here"
EOF
	pass sip_busy
else
	fail sip_busy "no rejected(486)"
	report busy
fi
sipp_wait "$SIPP_PID" 5 >/dev/null

# uas_case CASE NAME AOR SCENARIO <SCRIPT: SIPp plays SCENARIO (one call) on port $sport while
# the client AOR runs SCRIPT (output NAME.out); CASE passes when both exit 0 (SIPp within 10 s).
uas_case() {
	local phone_rc sipp_rc
	sipp_run "$2" -sf "$SIPP_DIR/$4" -m 1 -p "$sport"
	sleep 0.3
	phone "$2" "$3" "" ""
	phone_rc=$?
	sipp_wait "$SIPP_PID" 10
	sipp_rc=$?
	if ((phone_rc == 0 && sipp_rc == 0)); then
		pass "$1"
	else
		fail "$1" "phone rc $phone_rc, SIPp rc $sipp_rc"
		report "$2"
		tail -n 5 "$T_TMP/$2.err" 2>/dev/null
	fi
}

sport=$(free_port)
uas_case sip_hold_info_dtmf hold frank@example.com uas_reinvite.xml <<EOF
invite sip:service@127.0.0.1:$sport pcmu wideband
wait accepted
hold true
wait-arg holded 0 true
dtmf 5
sleep 0.5
bye
EOF

sport=$(free_port)
uas_case sip_transfer_out xferout ivan@example.com uas_refer.xml <<EOF
invite sip:service@127.0.0.1:$sport pcmu
wait accepted
transfer sip:carol@127.0.0.1:5999
wait-arg transferred 0 202
wait-arg transferred 0 "200 OK"
wait byed
EOF

# --- incoming calls ------------------------------------------------------------------------------

# in_call NAME SCENARIO SIPP-ARGS SCRIPT: the client alice@example.com (registered through SIPp's
# registrar as alice/secret when REGISTERED=1) runs SCRIPT while SIPp calls it.
in_call() {
	local name=$1 scenario=$2 sipp_args=$3 script=$4 mport
	local -a creds=("" "")
	mport=$(udp_port)
	if [[ ${REGISTERED:-0} == 1 ]]; then
		sipp_run "$name-reg" -sf "$SIPP_DIR/registrar_digest.xml" -m 1 -p "$REG_PORT"
		creds=(alice secret)
		sleep 0.3
	fi
	phone "$name" alice@example.com "${creds[@]}" Alice <<<"$script" &
	local phone_pid=$!
	# SIPp calls once the client is connected (registered, when it registers).
	wait_log "$T_TMP/$name.out" 'result connect' 15 || true
	sleep 0.3
	# shellcheck disable=SC2086 # word splitting of the extra SIPp arguments is intended
	sipp_run "$name" -sf "$SIPP_DIR/$scenario" -m 1 -s alice -rtp_echo -mp "$mport" \
		-p "$(free_port)" $sipp_args "127.0.0.1:$SIP_PORT"
	IN_SIPP_RC=0
	sipp_wait "$SIPP_PID" 20 || IN_SIPP_RC=$?
	wait "$phone_pid"
	IN_PHONE_RC=$?
}

REGISTERED=1 in_call in sipapp_uac_echo_hangup.xml "-d 4000" "play remote $T_TMP/in.wav
wait-arg invited 0 sip:sipp@ 15
accept wideband ulaw dtmf
wait-arg accepted 0 ulaw
publish local speex 800 8
wait byed 15"
if ((IN_PHONE_RC == 0 && IN_SIPP_RC == 0)) && wav_ok in "$T_TMP/in.wav" 800; then
	pass sip_call_in
else
	fail sip_call_in "phone rc $IN_PHONE_RC, SIPp rc $IN_SIPP_RC, $TONE_WHY"
	report in
fi

in_call inbye sipapp_uac_echo.xml "" "wait invited 15
accept
wait accepted
sleep 1
bye"
if ((IN_PHONE_RC == 0 && IN_SIPP_RC == 0)); then
	pass sip_call_in_client_bye
else
	fail sip_call_in_client_bye "phone rc $IN_PHONE_RC, SIPp rc $IN_SIPP_RC"
	report inbye
fi

in_call cancel sipapp_uac_cancel.xml "" "wait invited 15
wait-arg cancelled 0 sip:sipp@ 10"
if ((IN_PHONE_RC == 0 && IN_SIPP_RC == 0)); then
	pass sip_call_in_cancel
else
	fail sip_call_in_cancel "phone rc $IN_PHONE_RC, SIPp rc $IN_SIPP_RC"
	report cancel
fi

in_call reject sipapp_uac_reject.xml "" "wait invited 15
invoke reject \"486 Gone Fishing\"
no-event byed 0.5"
if ((IN_PHONE_RC == 0 && IN_SIPP_RC == 0)); then
	pass sip_call_in_reject
else
	fail sip_call_in_reject "phone rc $IN_PHONE_RC, SIPp rc $IN_SIPP_RC"
	report reject
fi

in_call timer sipapp_uac_timer.xml "-d 1500" "wait invited 15
accept
wait accepted
no-event byed 1.5
wait byed 15"
if ((IN_PHONE_RC == 0 && IN_SIPP_RC == 0)); then
	pass sip_session_timer
else
	fail sip_session_timer "phone rc $IN_PHONE_RC, SIPp rc $IN_SIPP_RC"
	report timer
fi

sipp_run options -sf "$SIPP_DIR/sipapp_uac_options.xml" -m 1 -s alice -p "$(free_port)" \
	"127.0.0.1:$SIP_PORT"
if sipp_wait "$SIPP_PID" 10; then
	pass sip_options
else
	fail sip_options "OPTIONS not answered 200 with the expected Allow header"
	tail -n 5 "$T_TMP/options.err" 2>/dev/null
fi

in_call g729 uac_no_pcmu.xml "" "no-event invited 4"
g729_rc=$IN_SIPP_RC g729_phone=$IN_PHONE_RC
in_call badsdp sipapp_uac_bad_sdp.xml "" "no-event invited 4"
if ((g729_rc == 0 && g729_phone == 0 && IN_SIPP_RC == 0 && IN_PHONE_RC == 0)); then
	pass sip_call_in_488
else
	fail sip_call_in_488 "G.729: SIPp rc $g729_rc phone rc $g729_phone; broken SDP: SIPp rc $IN_SIPP_RC phone rc $IN_PHONE_RC"
	report g729
	report badsdp
fi

# An INVITE from a source that is neither trusted nor the registrar: 403, the client never hears.
SIPP_IP=127.0.0.2 in_call untrusted uac_untrusted.xml "" "no-event invited 4"
curl -s -m 3 -o "$T_TMP/untrusted.prom" "http://127.0.0.1:$METRICS_PORT/metrics"
untrusted=$(metric "$T_TMP/untrusted.prom" 'rtmp2sip_signaler_sip_refused_total{reason="untrusted"}')
if ((IN_SIPP_RC == 0 && IN_PHONE_RC == 0)) && [[ ${untrusted:-0} -ge 1 ]] &&
	grep -q 'nua_i_invite from 127.0.0.2 refused: not a trusted source' "$SIGNALER_LOG"; then
	pass sip_call_in_untrusted
else
	fail sip_call_in_untrusted "SIPp rc $IN_SIPP_RC phone rc $IN_PHONE_RC, untrusted count '${untrusted:-}'"
	report untrusted
fi

# A transfer of the client's call by the caller: SIPp REFERs it to carol (a SIPp UAS echoing RTP).
cport=$(free_port) cmport=$(udp_port)
sipp_run carol -sn uas -m 1 -rtp_echo -mp "$cmport" -p "$cport"
carol_pid=$SIPP_PID
in_call xferin uac_refer.xml "-set xfer_port $cport" "play remote $T_TMP/xferin.wav
wait invited 15
accept
wait accepted
publish local speex 600 8
wait accepted 15
sleep 3
bye"
sipp_wait "$carol_pid" 10
carol_rc=$?
if ((IN_PHONE_RC == 0 && IN_SIPP_RC == 0 && carol_rc == 0)) && wav_ok xferin "$T_TMP/xferin.wav" 600; then
	pass sip_transfer_in
else
	fail sip_transfer_in "phone rc $IN_PHONE_RC, transferor SIPp rc $IN_SIPP_RC, carol rc $carol_rc, $TONE_WHY"
	report xferin
fi

# --- replacing a client ------------------------------------------------------------------------

phone first henry@example.com "" "" <<<"expect-close 10" &
first_pid=$!
sleep 1
phone second henry@example.com "" "" <<<"sleep 1"
second_rc=$?
wait "$first_pid"
first_rc=$?
sipp_run rep -sf "$SIPP_DIR/registrar_digest.xml" -m 1 -p "$REG_PORT"
sleep 0.3
phone registered alice@example.com alice secret <<<"sleep 3" &
reg_pid=$!
sleep 1.5
phone intruder alice@example.com "" "" <<<"expect-connect rejected registered"
intruder_rc=$?
wait "$reg_pid"
reg_rc=$?
if ((first_rc == 0 && second_rc == 0 && intruder_rc == 0 && reg_rc == 0)); then
	pass sip_replace
else
	fail sip_replace "first $first_rc, second $second_rc, intruder $intruder_rc, registered $reg_rc"
	report first
	report intruder
fi
sipp_wait "$SIPP_PID" 5 >/dev/null

left=""
for ((i = 0; i < 30; i++)); do
	left=$(rkeys 'rs:v1:call:*'; rkeys 'rs:v1:reg:*'; rkeys 'rs:v1:leg:*'
		redis-cli -p "$REDIS_PORT" smembers rs:v1:signaler:sig-sip-test:calls)
	[[ -z $left ]] && break
	sleep 0.2
done
if [[ -z $left ]] && signaler_alive; then
	pass sip_no_leftovers
else
	fail sip_no_leftovers "left in Redis: $(echo "$left" | head -5 | tr '\n' ' ')"
fi

# --- call counters -------------------------------------------------------------------------------

# sip_call_out and sip_call_in answered, sip_busy, the two INVITEs of sip_call_in_488,
# sip_call_in_cancel, sip_call_in_reject.
calls_case sip_call_metrics "$METRICS_PORT" sip started:direction=out:1 started:direction=in:1 \
	answered:direction=out:1 answered:direction=in:1 ended:reason=completed:1 \
	ended:reason=busy:1 ended:reason=not_acceptable:2 ended:reason=cancelled:1 \
	ended:reason=rejected_by_client:1

finish
