#!/usr/bin/env bash
# test_orphans.sh - a dead signaler's calls are ended cleanly by another signaler, or by its own
# restart (signaler/orphans.c), with a real Redis, a real mediaworker, SIPp and sipphone.
#
#   orphan_record          a call through signaler A (sipphone -> A -> SIPp orphan_uas.xml, RTP
#                          echo) is up: its record in Redis holds A's instance and the dialog (both
#                          tags, the peer's Contact, the route set from SIPp's Record-Route, the
#                          INVITE's CSeq); A's heartbeat hash and rs:v1:signalers entry exist
#   orphan_bye_by_other    A is killed (SIGKILL): within 9 s signaler B sends SIPp the BYE (SIPp
#                          checks the tags and the Route; here: the CSeq is the INVITE's + 1, the
#                          From tag the INVITE's), and the call record, A's calls index, the leg
#                          record and the worker's leg are gone; A leaves rs:v1:signalers
#   orphan_bad_records     a fake dead signaler whose index holds a malformed call record, a
#                          record without dialog data and a registration: B logs the first as
#                          skipped, deletes the second (no BYE: no dialog) and the registration
#                          record, and stays up
#   orphan_incoming       SIPp calls a client of signaler C (sipp/orphan_uac.xml), the client
#                          accepts; C is killed: B sends the BYE to SIPp's Contact (SIPp checks),
#                          with our 200's To tag as From tag (C sent no request in the dialog: the
#                          CSeq is a fresh one)
#   orphan_bye_by_restart  B is stopped; A (same SIGNALER_ID) places a call and is killed, then
#                          restarted at once: the new run ends its previous run's call (SIPp gets
#                          the BYE within 9 s of the kill), while a call placed through the new run
#                          right after its start is left alone, and ends normally with bye
#   orphan_no_leftovers    no call, leg or registration record left, no lock
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MW="$T_MW"
PHONE="$BUILD/tools/sipphone"
SIPP_DIR="$(dirname "${BASH_SOURCE[0]}")/sipp"
need_tools orphans sipp redis-cli python3
for bin in "$MW" "$PHONE" "$BUILD/signaler"; do
	[[ -x $bin ]] || { fail orphan_setup "$bin not built"; finish; }
done
start_redis || { fail orphan_setup "redis did not start"; finish; }

R() { redis-cli -p "$REDIS_PORT" "$@"; }

now_ms() { date +%s%3N; }

base=$((24000 + RANDOM % 4000 / 2 * 2))
WID=orphw1
spawn "$T_TMP/worker.log" env WORKER_ID=$WID METRICS_PORT=0 RTP_PORT_MIN="$base" RTP_PORT_MAX=$((base + 999)) \
	LOG_LEVEL=info RTP_BIND_IP=127.0.0.1 "$MW"

# start_sig NAME ID RTMP SIP: a signaler logging to $T_TMP/NAME.log; its pid in SIG_PID[NAME].
declare -A SIG_PID
start_sig() {
	local name=$1 id=$2 rtmp=$3 sip=$4
	spawn "$T_TMP/$name.log" env SIGNALER_ID="$id" RTMP_PORT="$rtmp" RTMP_BIND=127.0.0.1 \
		SIP_PORT="$sip" SIP_BIND=127.0.0.1 METRICS_PORT=0 LOG_LEVEL=debug \
		"${TEST_SIGNALER_ENV[@]}" "$BUILD/signaler"
	SIG_PID[$name]=$SPAWNED_PID
	wait_port "$rtmp" "$SPAWNED_PID" 10 && wait_log "$T_TMP/$name.log" 'mediaworker up' 10
}

# kill9 NAME: SIGKILL, reaped.
kill9() {
	kill -KILL "${SIG_PID[$1]}" 2>/dev/null
	wait "${SIG_PID[$1]}" 2>/dev/null
	SIG_PID[$1]=""
}

# phone_bg NAME RTMP-PORT SCRIPT: sipphone for sip/NAME@example.com in the background; pid in
# PHONE_PID, output in $T_TMP/NAME.out.
phone_bg() {
	printf '%s\n' "$3" >"$T_TMP/$1.script"
	spawn "$T_TMP/$1.out" timeout -k 5 120 "$PHONE" --timeout 100 --script "$T_TMP/$1.script" \
		"rtmp://127.0.0.1:$2/sip/$1@example.com" "" ""
	PHONE_PID=$SPAWNED_PID
}

# call_key ID: the key of the one call record of signaler ID (waits up to 10 s for it to be up
# with both tags known).
call_key() {
	local i k
	for ((i = 0; i < 100; i++)); do
		for k in $(R smembers "rs:v1:signaler:$1:calls"); do
			if [[ $(R hget "rs:v1:call:$k" state) == up && -n $(R hget "rs:v1:call:$k" ltag) &&
				-n $(R hget "rs:v1:call:$k" rtag) ]]; then
				echo "rs:v1:call:$k"
				return 0
			fi
		done
		sleep 0.1
	done
	return 1
}

# msg_field FILE START HEADER: the first HEADER line of the first message whose start line begins
# with START (a request method, or "SIP/2.0 200") in a SIPp trace.
msg_field() {
	awk -v m="$2" -v h="$3" '
		index($0, m" ") == 1 { inmsg = 1; next }
		inmsg && tolower($0) ~ "^"tolower(h)":" { sub(/\r$/, ""); print; exit }
		inmsg && /^\r?$/ { inmsg = 0 }' "$1"
}

tag_of() { sed -n 's/.*;tag=\([^;>]*\).*/\1/p' <<<"$1"; }

RTMP_A=$(free_port) SIP_A=$(free_port) RTMP_B=$(free_port) SIP_B=$(free_port)
start_sig a sig-orph-a "$RTMP_A" "$SIP_A" || { fail orphan_setup "signaler A did not start"; log_tail "$T_TMP/a.log"; finish; }
start_sig b sig-orph-b "$RTMP_B" "$SIP_B" || { fail orphan_setup "signaler B did not start"; log_tail "$T_TMP/b.log"; finish; }

# --- a call through A, A killed, B ends it -------------------------------------------------------

sport=$(free_port) mport=$(udp_port)
sipp_run one -sf "$SIPP_DIR/orphan_uas.xml" -m 1 -rtp_echo -mp "$mport" -p "$sport"
sleep 0.3
phone_bg alice "$RTMP_A" "invite sip:svc@127.0.0.1:$sport wideband ulaw
wait accepted
publish local speex 1000 60
sleep 60"
one_sipp=$SIPP_PID
key=$(call_key sig-orph-a)
rec_ok=1 why=""
if [[ -z $key ]]; then
	rec_ok=0 why="no call record up with both tags"
else
	leg=$(R hget "$key" leg)
	inst=$(R hget rs:v1:signaler:sig-orph-a instance)
	for f in ltag rtag luri ruri target route cseq transport instance leg worker; do
		[[ -n $(R hget "$key" $f) ]] || { rec_ok=0 why+=" field $f empty;"; }
	done
	[[ $(R hget "$key" instance) == "$inst" && -n $inst ]] || { rec_ok=0 why+=" instance differs from the heartbeat's;"; }
	[[ $(R hget "$key" route) == *orphan=rr* ]] || { rec_ok=0 why+=" route '$(R hget "$key" route)';"; }
	[[ -n $(R zscore rs:v1:signalers sig-orph-a) && $(R ttl rs:v1:signaler:sig-orph-a) -le 5 ]] ||
		{ rec_ok=0 why+=" no heartbeat;"; }
	[[ $(R hget "$key" worker) == "$WID" && -n $(R hget "rs:v1:leg:$leg" owner) ]] ||
		{ rec_ok=0 why+=" no leg record;"; }
fi
if ((rec_ok)); then
	pass orphan_record
else
	fail orphan_record "$why"
	R hgetall "$key" | paste - - | sed 's/^/  | /'
fi

sleep 1
t0=$(now_ms)
kill9 a
note "signaler A killed; waiting for B's BYE"
sipp_wait "$one_sipp" 15
sipp_rc=$?
elapsed=$(($(now_ms) - t0))
wait "$PHONE_PID" 2>/dev/null
sleep 0.5
why=""
inv_cseq=$(msg_field "$T_TMP/one.msg" INVITE CSeq | awk '{print $2}')
bye_cseq=$(msg_field "$T_TMP/one.msg" BYE CSeq | awk '{print $2}')
inv_from=$(tag_of "$(msg_field "$T_TMP/one.msg" INVITE From)")
bye_from=$(tag_of "$(msg_field "$T_TMP/one.msg" BYE From)")
((sipp_rc == 0)) || why+=" SIPp rc $sipp_rc;"
((elapsed <= 15000)) || why+=" BYE after $elapsed ms;"
[[ -n $inv_cseq && $bye_cseq == $((inv_cseq + 1)) ]] || why+=" CSeq INVITE '$inv_cseq' BYE '$bye_cseq';"
[[ -n $inv_from && $bye_from == "$inv_from" ]] || why+=" From tag INVITE '$inv_from' BYE '$bye_from';"
[[ -n $key && $(R exists "$key") == 0 ]] || why+=" call record left;"
grep -q "${key#rs:v1:call:}: sip: orphan BYE answered 200" "$T_TMP/b.log" || why+=" B did not see the 200;"
[[ $(R scard rs:v1:signaler:sig-orph-a:calls) == 0 ]] || why+=" A's calls index not empty;"
[[ -n $leg && $(R exists "rs:v1:leg:$leg") == 0 ]] || why+=" leg record left;"
[[ -n $leg && $(R sismember "rs:v1:worker:$WID:legs" "$leg") == 0 ]] || why+=" leg in the worker's index;"
grep -q "$leg: leg destroyed" "$T_TMP/worker.log" || why+=" the worker did not destroy the leg;"
grep -q "orphans: signaler sig-orph-a silent" "$T_TMP/b.log" || why+=" B did not log the cleanup;"
for ((i = 0; i < 30; i++)); do
	[[ -z $(R zscore rs:v1:signalers sig-orph-a) ]] && break
	sleep 0.1
done
[[ -z $(R zscore rs:v1:signalers sig-orph-a) ]] || why+=" A still in rs:v1:signalers;"
if [[ -z $why ]]; then
	pass orphan_bye_by_other
	note "BYE $elapsed ms after the kill (CSeq $bye_cseq)"
else
	fail orphan_bye_by_other "$why"
	grep -E 'orphans|BYE' "$T_TMP/b.log" | tail -n 20 | sed 's/^/  | /'
	tail -n 5 "$T_TMP/one.err" 2>/dev/null
fi

# --- malformed records of a dead signaler --------------------------------------------------------

old=$(($(now_ms) - 60000))
R hset rs:v1:call:sig-ghost.x.1 v 1 signaler sig-ghost state dancing >/dev/null
R hset rs:v1:call:sig-ghost.x.2 v 1 sip_call_id ghost-2@example.com signaler sig-ghost app sip \
	direction out from sip:g@example.com to sip:h@example.com rtmp_client "" leg "" worker "" \
	state up codec PCMU transcoding 0 srtp 0 created "$old" answered "$old" updated "$old" >/dev/null
R sadd rs:v1:signaler:sig-ghost:calls sig-ghost.x.1 sig-ghost.x.2 'bad/id' >/dev/null
R hset rs:v1:reg:ghost@example.com v 1 signaler sig-ghost contact "" registrar "" rtmp_client "" \
	display "" expires 60 registered "$old" updated "$old" >/dev/null
R sadd rs:v1:signaler:sig-ghost:regs ghost@example.com >/dev/null
R zadd rs:v1:signalers "$old" sig-ghost >/dev/null # last: B may look at once
for ((i = 0; i < 40; i++)); do
	[[ $(R exists rs:v1:call:sig-ghost.x.2) == 0 ]] && break
	sleep 0.1
done
why=""
[[ $(R exists rs:v1:call:sig-ghost.x.2) == 0 ]] || why+=" the record without dialog was not deleted;"
[[ $(R exists rs:v1:call:sig-ghost.x.1) == 1 ]] || why+=" the malformed record was deleted;"
for ((i = 0; i < 20; i++)); do
	[[ $(R exists rs:v1:reg:ghost@example.com) == 0 ]] && break
	sleep 0.1
done
[[ $(R exists rs:v1:reg:ghost@example.com) == 0 && $(R exists rs:v1:signaler:sig-ghost:regs) == 0 ]] ||
	why+=" the registration record or its index entry was not deleted;"
grep -q "sig-ghost.x.1: orphans: call record of sig-ghost skipped: .*'state'" "$T_TMP/b.log" ||
	why+=" no 'skipped' line naming the field;"
grep -q "sig-ghost.x.2: orphans: no BYE: " "$T_TMP/b.log" ||
	why+=" no 'no BYE' line;"
kill -0 "${SIG_PID[b]}" 2>/dev/null || why+=" B died;"
if [[ -z $why ]]; then
	pass orphan_bad_records
else
	fail orphan_bad_records "$why"
	grep -E 'ghost' "$T_TMP/b.log" | tail -n 10 | sed 's/^/  | /'
fi
R del rs:v1:call:sig-ghost.x.1 rs:v1:signaler:sig-ghost:calls >/dev/null

# --- an incoming call of a dead signaler ---------------------------------------------------------

RTMP_C=$(free_port) SIP_C=$(free_port)
start_sig c sig-orph-c "$RTMP_C" "$SIP_C" || { fail orphan_setup "signaler C did not start"; log_tail "$T_TMP/c.log"; finish; }
phone_bg dave "$RTMP_C" "wait-arg invited 0 sip:sipp@ 15
accept wideband ulaw
wait accepted
publish local speex 1000 60
sleep 60"
sleep 1.5
mport=$(udp_port)
sipp_run in -sf "$SIPP_DIR/orphan_uac.xml" -m 1 -s dave -rtp_echo -mp "$mport" -p "$(free_port)" \
	"127.0.0.1:$SIP_C"
in_sipp=$SIPP_PID
key=$(call_key sig-orph-c)
sleep 1
t0=$(now_ms)
kill9 c
sipp_wait "$in_sipp" 15
sipp_rc=$?
elapsed=$(($(now_ms) - t0))
wait "$PHONE_PID" 2>/dev/null
why=""
ok_to=$(tag_of "$(msg_field "$T_TMP/in.msg" "SIP/2.0 200" To)")
bye_from=$(tag_of "$(msg_field "$T_TMP/in.msg" BYE From)")
bye_cseq=$(msg_field "$T_TMP/in.msg" BYE CSeq | awk '{print $2}')
[[ -n $key ]] || why+=" no call record up with both tags;"
((sipp_rc == 0)) || why+=" SIPp rc $sipp_rc;"
((elapsed <= 15000)) || why+=" BYE after $elapsed ms;"
[[ -n $ok_to && $bye_from == "$ok_to" ]] || why+=" 200 To tag '$ok_to', BYE From tag '$bye_from';"
[[ $bye_cseq =~ ^[0-9]+$ ]] && ((bye_cseq > 0)) || why+=" BYE CSeq '$bye_cseq';"
[[ -n $key && $(R exists "$key") == 0 ]] || why+=" call record left;"
grep -q "${key#rs:v1:call:}: sip: orphan BYE answered 200" "$T_TMP/b.log" || why+=" B did not see the 200;"
if [[ -z $why ]]; then
	pass orphan_incoming
	note "BYE $elapsed ms after the kill"
else
	fail orphan_incoming "$why"
	grep -E 'orphans|BYE' "$T_TMP/b.log" | tail -n 20 | sed 's/^/  | /'
	tail -n 5 "$T_TMP/in.err" 2>/dev/null
fi

# --- A restarted with the same id ends its previous run's call -----------------------------------

stop_pid "${SIG_PID[b]}" 5
SIG_PID[b]=""
start_sig a1 sig-orph-a "$RTMP_A" "$SIP_A" || { fail orphan_setup "signaler A did not restart"; log_tail "$T_TMP/a1.log"; finish; }
sport=$(free_port) mport=$(udp_port)
sipp_run two -sf "$SIPP_DIR/orphan_uas.xml" -m 1 -rtp_echo -mp "$mport" -p "$sport"
two_sipp=$SIPP_PID
sleep 0.3
phone_bg bob "$RTMP_A" "invite sip:svc@127.0.0.1:$sport wideband ulaw
wait accepted
publish local speex 1000 60
sleep 60"
key=$(call_key sig-orph-a)
leg=$(R hget "$key" leg)
sleep 1
t0=$(now_ms)
kill9 a1
start_sig a2 sig-orph-a "$RTMP_A" "$SIP_A" || { fail orphan_bye_by_restart "signaler A did not restart"; log_tail "$T_TMP/a2.log"; finish; }
# A call through the new run, placed before it cleans up: it must be left alone.
sport3=$(free_port) mport3=$(udp_port)
sipp_run three -sf "$SIPP_DIR/orphan_uas.xml" -m 1 -rtp_echo -mp "$mport3" -p "$sport3"
three_sipp=$SIPP_PID
sleep 0.3
printf '%s\n' "invite sip:svc@127.0.0.1:$sport3 wideband ulaw" "wait accepted" \
	"publish local speex 1000 14" "sleep 14" "bye" >"$T_TMP/carol.script"
spawn "$T_TMP/carol.out" timeout -k 5 60 "$PHONE" --timeout 40 --script "$T_TMP/carol.script" \
	"rtmp://127.0.0.1:$RTMP_A/sip/carol@example.com" "" ""
carol_pid=$SPAWNED_PID
sipp_wait "$two_sipp" 15
sipp_rc=$?
elapsed=$(($(now_ms) - t0))
wait "$PHONE_PID" 2>/dev/null
why=""
((sipp_rc == 0)) || why+=" SIPp rc $sipp_rc;"
((elapsed <= 15000)) || why+=" BYE after $elapsed ms;"
[[ -n $key && $(R exists "$key") == 0 ]] || why+=" call record left;"
[[ -n $leg && $(R exists "rs:v1:leg:$leg") == 0 ]] || why+=" leg record left;"
grep -q "${key#rs:v1:call:}: sip: orphan BYE answered 200" "$T_TMP/a2.log" || why+=" A did not see the 200;"
grep -q "previous run .* of this id last seen" "$T_TMP/a2.log" || why+=" no 'previous run' line;"
grep -q "orphans: cleanup of our previous run done: 1 call(s) ended" "$T_TMP/a2.log" ||
	why+=" no cleanup line;"
kill -0 "$three_sipp" 2>/dev/null || why+=" the new run's call was ended too;"
if [[ -z $why ]]; then
	pass orphan_bye_by_restart
	note "BYE $elapsed ms after the kill, from the restarted signaler"
else
	fail orphan_bye_by_restart "$why"
	grep -E 'orphans|BYE|previous run' "$T_TMP/a2.log" | tail -n 20 | sed 's/^/  | /'
fi
wait "$carol_pid"
carol_rc=$?
sipp_wait "$three_sipp" 10
three_rc=$?
if ((carol_rc != 0 || three_rc != 0)); then
	fail orphan_bye_by_restart "the new run's call: phone rc $carol_rc, SIPp rc $three_rc"
	tail -n 10 "$T_TMP/carol.out" | sed 's/^/  | /'
fi

# --- nothing left ---------------------------------------------------------------------------------

sleep 1
left=$(R --scan --pattern 'rs:v1:call:*'; R --scan --pattern 'rs:v1:leg:*'; R --scan --pattern 'rs:v1:reg:*'
	R --scan --pattern 'rs:v1:lock:*'; R --scan --pattern 'rs:v1:signaler:*:calls')
if [[ -z $left ]] && kill -0 "${SIG_PID[a2]}" 2>/dev/null; then
	pass orphan_no_leftovers
else
	fail orphan_no_leftovers "left in Redis: $(tr '\n' ' ' <<<"$left")"
fi
stop_pid "${SIG_PID[a2]}" 5
finish
