#!/usr/bin/env bash
# test_sip_ua.sh - signaler/sip_ua (through build/tools/sipua_probe) against SIPp, loopback only.
#
#   register_digest        registrar challenges with 401, checks the Authorization of the retry,
#                          grants 600 s; then the un-REGISTER (sipp/registrar_digest.xml)
#   register_bad_password  the same registrar refuses wrong credentials: FAILED 403
#   call_hold_dtmf         180/200 with SDP, re-INVITE a=sendonly answered recvonly, INFO DTMF,
#                          BYE from us (sipp/uas_reinvite.xml)
#   call_peer_bye          the callee hangs up (sipp/uas_bye.xml)
#   call_auth_invite       REGISTER, then the call as that AOR: the INVITE is challenged with
#                          407 and retried with Proxy-Authorization (sipp/uas_auth_invite.xml)
#   call_busy              486 Busy Here -> FAILED 486 (sipp/uas_busy.xml)
#   call_cancel            CANCEL on 180 -> FAILED 487 (sipp/uas_cancel.xml)
#   call_sipp_uas          SIPp's built-in uas scenario (-sn uas)
#   call_tcp               a call over TCP (;transport=tcp), the callee hangs up
#   call_advertise         Via and Contact carry the advertised address, not the bound one
#   call_refer_out         blind transfer: REFER, 202, NOTIFY 200, BYE (sipp/uas_refer.xml)
#   answer_dtmf            SIPp calls the probe: 180, 200 + SDP, INFO DTMF 5 and #, BYE
#                          (sipp/uac_dtmf.xml)
#   answer_488             an offer without PCMU is refused with 488 before any 180
#                          (sipp/uac_no_pcmu.xml)
#   answer_sipp_uac        SIPp's built-in uac scenario (-sn uac) calls the probe
#   answer_refer_in        SIPp transfers the probe's call to a second SIPp (uas): the probe
#                          accepts, INVITEs the target, nua NOTIFYs 100 then 200
#                          (sipp/uac_refer.xml)
#   call_tls               probe to probe over SIP/TLS (sips:), with a throw-away certificate

# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PROBE="$BUILD/tools/sipua_probe"
SCEN="$T_ROOT/tests/integration/sipp"

if ! command -v sipp >/dev/null 2>&1; then
	skip sip_ua "sipp not installed (apt-get install sip-tester)"
	finish
fi
if [[ ! -x $PROBE ]]; then
	fail sip_ua "$PROBE not built (make tools)"
	finish
fi

# free_udp_port: a port on 127.0.0.1 free for both UDP and TCP now.
free_udp_port() {
	python3 - <<'EOF'
import random, socket
for _ in range(200):
    p = random.randrange(30000, 45000)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    t = socket.socket()
    try:
        u.bind(("127.0.0.1", p))
        t.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        u.close()
        t.close()
    print(p)
    break
EOF
}

# sipp_args SCENARIO: the scenario options for SCENARIO ("builtin:uas" or a file in sipp/).
sipp_args() {
	if [[ $1 == builtin:* ]]; then
		echo "-sn ${1#builtin:}"
	else
		echo "-sf $SCEN/$1"
	fi
}

# start_sipp NAME SCENARIO PORT [SIPP ARGS...]: SIPp for one call ($SIPP_CALLS) on 127.0.0.1:PORT in
# the background (logs under T_TMP/NAME.*); its pid is left in SIPP_PID.
start_sipp() {
	local name=$1 scen=$2 port=$3
	shift 3
	# shellcheck disable=SC2046 # word splitting of the scenario options is wanted
	spawn "$T_TMP/$name.sipp.log" timeout 40 sipp $(sipp_args "$scen") -i 127.0.0.1 -p "$port" \
		-m "${SIPP_CALLS:-1}" -nostdin -timeout 30s -timeout_error -trace_msg -message_file "$T_TMP/$name.sipp.msg" \
		-trace_err -error_file "$T_TMP/$name.sipp.err" "$@"
	SIPP_PID=$SPAWNED_PID
}

# expect_lines NAME FILE REGEX...: true when every REGEX matches a whole line of FILE; otherwise
# leaves the first missing one in MISSING.
expect_lines() {
	local file=$2 re
	shift 2
	MISSING=""
	for re in "$@"; do
		if ! grep -Eqx -- "$re" "$file"; then
			MISSING=$re
			return 1
		fi
	done
	return 0
}

# report NAME SIPP_RC PROBE_RC REGEX...: PASS when SIPp exited 0, the probe with $PROBE_RC (0) and
# the probe printed every line.
report() {
	local name=$1 src=$2 prc=$3
	shift 3
	if [[ $src -ne 0 ]]; then
		fail "$name" "SIPp exited $src"
	elif [[ $prc -ne ${PROBE_RC:-0} ]]; then
		fail "$name" "sipua_probe exited $prc (expected ${PROBE_RC:-0})"
	elif ! expect_lines "$name" "$T_TMP/$name.out" "$@"; then
		fail "$name" "sipua_probe did not print a line matching '$MISSING'"
	else
		pass "$name"
		return 0
	fi
	echo "  --- sipua_probe output:"
	sed 's/^/  | /' "$T_TMP/$name.out"
	log_tail "$T_TMP/$name.err" 30
	log_tail "$T_TMP/$name.sipp.log" 15
	[[ -s $T_TMP/$name.sipp.err ]] && log_tail "$T_TMP/$name.sipp.err" 15
	return 1
}

# uas_case NAME SCENARIO "PROBE ARGS" REGEX...: SIPp plays a UAS scenario, the probe calls it
# (the placeholder PORT in the probe arguments is SIPp's port).
uas_case() {
	local name=$1 scen=$2 args=$3 port prc src
	shift 3
	port=$(free_udp_port)
	start_sipp "$name" "$scen" "$port" ${SIPP_EXTRA:-}
	sleep 0.3
	# shellcheck disable=SC2086 # the probe arguments are split on purpose
	timeout 40 "$PROBE" ${args//PORT/$port} --timeout 30 >"$T_TMP/$name.out" 2>"$T_TMP/$name.err"
	prc=$?
	wait "$SIPP_PID"
	src=$?
	report "$name" "$src" "$prc" "$@"
}

# uac_case NAME SCENARIO "PROBE ARGS" REGEX...: the probe answers, SIPp plays a UAC scenario
# towards it.
uac_case() {
	local name=$1 scen=$2 args=$3 pport sport ppid prc src
	shift 3
	pport=$(free_udp_port)
	sport=$(free_udp_port)
	# shellcheck disable=SC2086
	timeout 40 "$PROBE" answer --port "$pport" $args --timeout 30 >"$T_TMP/$name.out" \
		2>"$T_TMP/$name.err" &
	ppid=$!
	sleep 0.3
	start_sipp "$name" "$scen" "$sport" -s alice "127.0.0.1:$pport" ${SIPP_EXTRA:-}
	wait "$SIPP_PID"
	src=$?
	wait "$ppid"
	prc=$?
	report "$name" "$src" "$prc" "$@"
}

uas_case register_digest registrar_digest.xml \
	"register --aor alice@127.0.0.1 --user alice --password secret --registrar sip:127.0.0.1:PORT" \
	'REGISTERED expires=600'
if [[ -f $T_TMP/register_digest.sipp.msg ]] &&
	! grep -q '^Authorization: Digest username="alice"' "$T_TMP/register_digest.sipp.msg"; then
	fail register_digest_authorization "no Authorization header seen by the registrar"
fi

PROBE_RC=1 uas_case register_bad_password registrar_digest.xml \
	"register --aor alice@127.0.0.1 --user alice --password wrong --registrar sip:127.0.0.1:PORT" \
	'FAILED 403 Forbidden'

uas_case call_hold_dtmf uas_reinvite.xml \
	"call --target sip:service@127.0.0.1:PORT --sdp-port 40000 --hold-ms 2000 --dtmf 5" \
	'PROGRESS 180' 'ANSWERED port=6000' 'REINVITE 200 port=6002 dir=recvonly' 'DTMF-SENT 5' \
	'ENDED local .*'

uas_case call_peer_bye uas_bye.xml "call --target sip:service@127.0.0.1:PORT --hold-ms 5000" \
	'PROGRESS 180' 'ANSWERED port=6000' 'ENDED peer .*'

SIPP_CALLS=2 uas_case call_auth_invite uas_auth_invite.xml \
	"call --target sip:service@127.0.0.1:PORT --aor alice@127.0.0.1 --user alice --password secret --registrar sip:127.0.0.1:PORT --no-reinvite --hold-ms 300" \
	'REGISTERED expires=600' 'PROGRESS 180' 'ANSWERED port=6000' 'ENDED local .*'

uas_case call_busy uas_busy.xml "busy --target sip:service@127.0.0.1:PORT" 'FAILED 486 Busy Here'

uas_case call_cancel uas_cancel.xml "cancel --target sip:service@127.0.0.1:PORT" \
	'PROGRESS 180' 'CANCEL-SENT' 'FAILED 487 .*'

uas_case call_sipp_uas builtin:uas \
	"call --target sip:service@127.0.0.1:PORT --no-reinvite --hold-ms 300" \
	'PROGRESS 180' 'ANSWERED port=[0-9]+' 'ENDED local .*'

# Over TCP the callee hangs up: SIPp counts a connection closed under a running call (the
# built-in uas pauses after the BYE) as a failure, so the probe must not be the one leaving first.
SIPP_EXTRA="-t t1" uas_case call_tcp uas_bye.xml \
	"call --target sip:service@127.0.0.1:PORT;transport=tcp --hold-ms 5000" \
	'ANSWERED port=6000' 'ENDED peer .*'
if [[ -f $T_TMP/call_tcp.sipp.msg ]] && ! grep -q '^Via: SIP/2.0/TCP' "$T_TMP/call_tcp.sipp.msg"; then
	fail call_tcp_via "the INVITE did not come over TCP"
fi

uas_case call_advertise builtin:uas \
	"call --target sip:service@127.0.0.1:PORT --advertise 127.0.0.2 --no-reinvite --hold-ms 300" \
	'ANSWERED port=[0-9]+' 'ENDED local .*'
if [[ -f $T_TMP/call_advertise.sipp.msg ]]; then
	if grep -q '^Contact: <sip:127.0.0.2:' "$T_TMP/call_advertise.sipp.msg" &&
		grep -q '^Via: SIP/2.0/UDP 127.0.0.2:' "$T_TMP/call_advertise.sipp.msg"; then
		pass call_advertise_headers
	else
		fail call_advertise_headers "Via/Contact do not carry 127.0.0.2"
	fi
fi

uas_case call_refer_out uas_refer.xml \
	"call --target sip:service@127.0.0.1:PORT --no-reinvite --hold-ms 300 --refer sip:carol@127.0.0.1:9" \
	'ANSWERED port=6000' 'TRANSFER 202' 'TRANSFER 200' 'ENDED local .*'

uac_case answer_dtmf uac_dtmf.xml "--ring-ms 200" \
	'INCOMING from=sip:sipp@127.0.0.1:[0-9]+' 'CONFIRMED' 'DTMF 5' 'DTMF #' 'ENDED peer .*'

uac_case answer_488 uac_no_pcmu.xml "" 'REJECTED 488' 'FAILED 488 .*'
if [[ -f $T_TMP/answer_488.sipp.msg ]] && grep -q '^SIP/2.0 18[03]' "$T_TMP/answer_488.sipp.msg"; then
	fail answer_488_no_ringing "a provisional 18x was sent before the 488"
fi

uac_case answer_sipp_uac builtin:uac "" 'CONFIRMED' 'ENDED peer .*'

# The transfer target: SIPp's built-in uas.
CAROL_PORT=$(free_udp_port)
start_sipp carol builtin:uas "$CAROL_PORT"
CAROL_PID=$SIPP_PID
SIPP_EXTRA="-set xfer_port $CAROL_PORT" uac_case answer_refer_in uac_refer.xml "--accept-refer" \
	"REFER to=sip:carol@127.0.0.1:$CAROL_PORT" 'XFER-ANSWERED port=[0-9]+' 'XFER-ENDED local .*' \
	'ENDED peer .*'
wait "$CAROL_PID"
rc=$?
if [[ $rc -ne 0 ]]; then
	fail answer_refer_in_target "the transfer target (SIPp uas) exited $rc"
	log_tail "$T_TMP/carol.sipp.log" 15
fi

# SIP over TLS, probe to probe (SIPp would need its own TLS set-up): a self-signed certificate
# in agent.pem (key + certificate), as sofia-sip expects it in the TLS directory.
if command -v openssl >/dev/null 2>&1 &&
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$T_TMP/tls.key" -out "$T_TMP/tls.crt" \
		-days 2 -subj "/CN=127.0.0.1" >/dev/null 2>&1; then
	mkdir -p "$T_TMP/tls"
	cat "$T_TMP/tls.key" "$T_TMP/tls.crt" >"$T_TMP/tls/agent.pem"
	cp "$T_TMP/tls.crt" "$T_TMP/tls/cafile.pem"
	APORT=$(free_udp_port)
	ATLS=$(free_udp_port)
	CTLS=$(free_udp_port)
	timeout 40 "$PROBE" answer --port "$APORT" --tls-dir "$T_TMP/tls" --tls-port "$ATLS" \
		--timeout 20 >"$T_TMP/tls_answer.out" 2>"$T_TMP/tls_answer.err" &
	apid=$!
	sleep 0.5
	timeout 40 "$PROBE" call --target "sips:bob@127.0.0.1:$ATLS" --tls-dir "$T_TMP/tls" \
		--tls-port "$CTLS" --no-reinvite --hold-ms 300 --timeout 20 >"$T_TMP/call_tls.out" \
		2>"$T_TMP/call_tls.err"
	crc=$?
	wait "$apid"
	arc=$?
	if [[ $crc -eq 0 && $arc -eq 0 ]] && expect_lines call_tls "$T_TMP/call_tls.out" \
		'ANSWERED port=40000' 'ENDED local .*' &&
		expect_lines call_tls "$T_TMP/tls_answer.out" 'CONFIRMED' 'ENDED peer .*'; then
		pass call_tls
	else
		fail call_tls "caller exited $crc, callee $arc${MISSING:+, missing '$MISSING'}"
		sed 's/^/  | caller: /' "$T_TMP/call_tls.out"
		sed 's/^/  | callee: /' "$T_TMP/tls_answer.out"
		log_tail "$T_TMP/call_tls.err" 20
	fi
else
	skip call_tls "openssl cannot make a test certificate"
fi

finish
