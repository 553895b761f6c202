#!/usr/bin/env bash
# test_zmq_auth.sh - ZeroMQ authentication (CURVE) and leg ownership with real daemons: two
# mediaworkers, signalers A and B with keys of their own, a Redis that requires a password, SIPp;
# the attacks come from tests/tools/zprobe (a raw ZeroMQ client, any key, any id).
#
#   zmq_auth_rotation          B's key, not in the workers' allowed list yet: no reply; added to
#                              the file and the workers SIGHUPed: HELLO_OK (the probe works)
#   zmq_auth_no_key            a client without CURVE gets no reply; the worker counts it (no_curve,
#                              or handshake: such a client closes when it sees the CURVE greeting)
#   zmq_auth_unlisted_key      a valid key the worker does not list: no reply; counted (key), and
#                              the worker's log names the key
#   zmq_auth_wrong_worker_key  a client that expects another worker key: no reply; counted (crypto)
#   zmq_auth_signalers_up      A and B find both workers through Redis (their keys in the records)
#   zmq_auth_not_owner         with B's key: UPDATE_LEG (RTP to the attacker's port), LEG_STATS,
#                              SEND_DTMF, DESTROY_LEG, ADOPT_LEG of A's live leg and a CREATE_LEG
#                              naming A: EPERM each, and ADOPT_LEG of it on the other worker (its
#                              record in Redis) too; counted by reason; no RTP reaches the attacker
#   zmq_auth_impostor_hello    B's key says HELLO as A's signaler id on the control and the media
#                              socket: EPERM, counted (id_bound)
#   zmq_auth_call_keeps_audio  A's call heard its echoed tone through the attacks, without a gap
#   zmq_auth_dead_owner_adopt  A killed: B's ADOPT_LEG of A's other leg is refused while A's
#                              heartbeat lives, accepted once it is gone; B may then use the leg
#   zmq_auth_dead_owner_orphan B's orphan finder ends A's call: the BYE reaches SIPp and the worker
#                              destroys the leg of a signaler that is dead now
#   zmq_auth_redis_password    Redis refuses a client without the password; relayctl, given
#                              REDIS_PASSWORD_FILE, lists the workers
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PROBE="$BUILD/tools/zprobe"
PHONE="$BUILD/tools/sipphone"
RELAYCTL="$BUILD/relayctl"
SIPP_DIR="$(dirname "${BASH_SOURCE[0]}")/sipp"
need_tools zmq_auth sipp redis-cli python3 curl ffmpeg
for bin in "$PROBE" "$PHONE" "$RELAYCTL" "$WAVCHECK" "$BUILD/mediaworker" "$BUILD/signaler"; do
	[[ -x $bin ]] || { fail zmq_auth_setup "$bin not built"; finish; }
done
T_REDIS_AUTH=1 start_redis || { fail zmq_auth_setup "redis did not start"; finish; }
R() { redis-cli -p "$REDIS_PORT" --no-auth-warning "$@"; }

# Keys: the lib's set (A is "signaler", the workers "worker"), B's own pair and one nobody lists.
"$RELAYCTL" keygen --dir "$T_KEYS" sig-b >/dev/null && "$RELAYCTL" keygen --dir "$T_TMP" rogue >/dev/null ||
	{ fail zmq_auth_setup "relayctl keygen failed"; finish; }
cp "$T_KEYS/signaler.pub" "$T_TMP/workers.allowed" # B's key comes with the rotation case
WKEY=$(awk '!/^#/ { print $1; exit }' "$T_KEYS/worker.pub")
ROGUE_PUB=$(awk '!/^#/ { print $1; exit }' "$T_TMP/rogue.pub")

# start_worker NAME PORTMIN: a worker allowing the keys of $T_TMP/workers.allowed, metrics on a
# free port (W_METRICS[NAME]); its pid in W_PID[NAME], its endpoints in W_CTL[NAME], W_MEDIA[NAME].
declare -A W_PID W_CTL W_MEDIA W_METRICS
start_worker() {
	local name=$1 log="$T_TMP/$1.log"
	W_METRICS[$name]=$(free_port)
	spawn "$log" env WORKER_ID="$name" RTP_PORT_MIN="$2" RTP_PORT_MAX=$(($2 + 999)) LOG_LEVEL=info \
		RTP_BIND_IP=127.0.0.1 METRICS_PORT="${W_METRICS[$name]}" \
		CURVE_SECRET_KEY_FILE="$T_KEYS/worker.key" CURVE_ALLOWED_KEYS_FILE="$T_TMP/workers.allowed" \
		"$BUILD/mediaworker"
	W_PID[$name]=$SPAWNED_PID
	wait_log "$log" 'mediaworker ready' 10 "$SPAWNED_PID" || return 1
	W_CTL[$name]=$(grep -o 'ctl=[^ ]*' "$log" | head -1 | cut -d= -f2)
	W_MEDIA[$name]=$(grep -o 'media=[^ ]*' "$log" | head -1 | cut -d= -f2)
}

# start_sig NAME ID KEYNAME: a signaler with key $T_KEYS/KEYNAME.key; pid in S_PID[NAME], RTMP port
# in S_RTMP[NAME].
declare -A S_PID S_RTMP
start_sig() {
	S_RTMP[$1]=$(free_port)
	spawn "$T_TMP/$1.log" env SIGNALER_ID="$2" RTMP_PORT="${S_RTMP[$1]}" RTMP_BIND=127.0.0.1 \
		SIP_PORT="$(free_port)" SIP_BIND=127.0.0.1 METRICS_PORT=0 LOG_LEVEL=debug RTP_APP=1 \
		"${TEST_SIGNALER_ENV[@]}" CURVE_SECRET_KEY_FILE="$T_KEYS/$3.key" "$BUILD/signaler"
	S_PID[$1]=$SPAWNED_PID
	wait_port "${S_RTMP[$1]}" "$SPAWNED_PID" 10 && wait_log "$T_TMP/$1.log" 'mediaworker up: 2 live' 10
}

# probe NAME ARGS...: zprobe's output in $T_TMP/NAME.probe (also returned).
probe() {
	local name=$1
	shift
	timeout 60 "$PROBE" "$@" >"$T_TMP/$name.probe" 2>&1
	cat "$T_TMP/$name.probe"
}
# step_is FILE STEP REPLY: the line of STEP in FILE starts with REPLY.
step_is() { grep -q "^STEP $2: $3" "$1"; }

# scrape NAME: the worker's /metrics into $T_TMP/NAME.prom.
scrape() { curl -s -m 3 -o "$T_TMP/$1.prom" "http://127.0.0.1:${W_METRICS[$1]}/metrics"; }
refused() { metric "$T_TMP/$1.prom" "rtmp2sip_worker_$2{reason=\"$3\"}"; }

base=$((36000 + RANDOM % 6000 / 2 * 2))
start_worker zw1 "$base" || { fail zmq_auth_setup "worker zw1 did not start"; log_tail "$T_TMP/zw1.log"; finish; }
start_worker zw2 $((base + 1000)) || { fail zmq_auth_setup "worker zw2 did not start"; finish; }

# --- who may connect -----------------------------------------------------------------------------

probe before --endpoint "${W_CTL[zw1]}" --key-file "$T_KEYS/sig-b.key" --server-key "$WKEY" \
	--id probe-ok hello >/dev/null
step_is "$T_TMP/before.probe" hello NO_REPLY || why "B's key before it is allowed: $(cat "$T_TMP/before.probe")"
cat "$T_KEYS/sig-b.pub" >>"$T_TMP/workers.allowed"
for w in zw1 zw2; do
	kill -HUP "${W_PID[$w]}"
	wait_log "$T_TMP/$w.log" 'reload: .* 2 signalers allowed (1 added, 0 removed)' 5 ||
		why "$w did not re-read its allowed list"
done
probe allowed --endpoint "${W_CTL[zw1]}" --key-file "$T_KEYS/sig-b.key" --server-key "$WKEY" \
	--id probe-ok hello >/dev/null
step_is "$T_TMP/allowed.probe" hello HELLO_OK || why "after the reload: $(cat "$T_TMP/allowed.probe")"
verdict zmq_auth_rotation

probe nokey --endpoint "${W_CTL[zw1]}" --id probe-nokey hello >/dev/null
probe rogue --endpoint "${W_CTL[zw1]}" --key-file "$T_TMP/rogue.key" --server-key "$WKEY" \
	--id probe-rogue hello create rogue-leg probe-rogue >/dev/null
probe wrongkey --endpoint "${W_MEDIA[zw1]}" --key-file "$T_KEYS/sig-b.key" \
	--server-key "$ROGUE_PUB" --id probe-wrong hello >/dev/null
scrape zw1
step_is "$T_TMP/nokey.probe" hello NO_REPLY || why "without a key: $(cat "$T_TMP/nokey.probe")"
n=$(($(refused zw1 zmq_handshakes_refused_total no_curve) + $(refused zw1 zmq_handshakes_refused_total handshake)))
((n >= 1)) || why "no no_curve or handshake refusal counted"
verdict zmq_auth_no_key
step_is "$T_TMP/rogue.probe" hello NO_REPLY && step_is "$T_TMP/rogue.probe" create NO_REPLY ||
	why "unlisted key: $(tr '\n' ' ' <"$T_TMP/rogue.probe")"
[[ $(refused zw1 zmq_handshakes_refused_total key) -ge 1 ]] ||
	why "key refusals: '$(refused zw1 zmq_handshakes_refused_total key)'"
grep -qF "CURVE key $ROGUE_PUB is not allowed" "$T_TMP/zw1.log" || why "the worker log does not name the key"
verdict zmq_auth_unlisted_key
step_is "$T_TMP/wrongkey.probe" hello NO_REPLY || why "wrong worker key: $(cat "$T_TMP/wrongkey.probe")"
[[ $(refused zw1 zmq_handshakes_refused_total crypto) -ge 1 ]] ||
	why "crypto refusals: '$(refused zw1 zmq_handshakes_refused_total crypto)'"
verdict zmq_auth_wrong_worker_key

# --- two signalers, a call and an rtp leg through A ----------------------------------------------

start_sig a sig-a signaler || why "signaler A did not see both workers: $(tail -3 "$T_TMP/a.log")"
start_sig b sig-b sig-b || why "signaler B did not see both workers: $(tail -3 "$T_TMP/b.log")"
[[ $(R hget rs:v1:worker:zw1 curve) == "$WKEY" ]] || why "zw1's record does not announce its key"
verdict zmq_auth_signalers_up

sport=$(free_port) mport=$(udp_port) eport=$(udp_port)
sipp_run call -sf "$SIPP_DIR/orphan_uas.xml" -m 1 -rtp_echo -mp "$mport" -p "$sport"
CALL_SIPP=$SIPP_PID
spawn "$T_TMP/echo.sipp.log" sipp -sn uas -rtp_echo -mp "$eport" -p "$(free_port)" -i 127.0.0.1 -nostdin
sleep 0.3
printf '%s\n' "invite sip:svc@127.0.0.1:$sport wideband ulaw" "wait accepted" \
	"publish local speex 1000 60" "play remote $T_TMP/call.wav" "sleep 60" >"$T_TMP/phone.script"
spawn "$T_TMP/phone.out" timeout -k 5 90 "$PHONE" --timeout 80 --script "$T_TMP/phone.script" \
	"rtmp://127.0.0.1:${S_RTMP[a]}/sip/alice@example.com" "" ""
spawn "$T_TMP/rtp_pub.log" timeout -k 5 90 ffmpeg -nostdin -hide_banner -loglevel error -re -f lavfi \
	-i "sine=frequency=700:sample_rate=8000:duration=80" -c:a pcm_mulaw -ar 8000 -f flv \
	"rtmp://127.0.0.1:${S_RTMP[a]}/rtp/127.0.0.1:$eport"
CALL_LEG="" CALL_W="" RTP_LEG="" RTP_W=""
for ((i = 0; i < 100; i++)); do
	RTP_LEG="" RTP_W=""
	for k in $(R smembers rs:v1:signaler:sig-a:calls); do
		[[ $(R hget "rs:v1:call:$k" state) == up ]] || continue
		CALL_LEG=$(R hget "rs:v1:call:$k" leg)
		CALL_W=$(R hget "rs:v1:call:$k" worker)
	done
	for w in zw1 zw2; do
		[[ -n $CALL_LEG ]] || break
		for l in $(R smembers "rs:v1:worker:$w:legs"); do
			[[ $l != "$CALL_LEG" && $(R hget "rs:v1:leg:$l" owner) == sig-a ]] && RTP_LEG=$l RTP_W=$w
		done
	done
	[[ -n $CALL_LEG && -n $RTP_LEG ]] && break
	sleep 0.1
done
note "A's call leg $CALL_LEG on $CALL_W, rtp leg $RTP_LEG on $RTP_W"
[[ -n $CALL_LEG && -n $RTP_LEG ]] || { fail zmq_auth_setup "A's legs did not come up"; log_tail "$T_TMP/a.log"; finish; }
OTHER_W=zw1
[[ $CALL_W == zw1 ]] && OTHER_W=zw2
sleep 2 # some audio before the attacks

# --- B attacks A's live leg ----------------------------------------------------------------------

aport=$(udp_port)
python3 - "$aport" >"$T_TMP/attacker_rx" <<'PY' &
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", int(sys.argv[1])))
s.settimeout(0.2)
n, end = 0, time.time() + 6
while time.time() < end:
    try:
        s.recv(2048)
        n += 1
    except socket.timeout:
        pass
print(n)
PY
listener=$!
BKEY=(--key-file "$T_KEYS/sig-b.key" --server-key "$WKEY")
probe attack --endpoint "${W_CTL[$CALL_W]}" "${BKEY[@]}" --id sig-b-probe hello \
	update "$CALL_LEG" 127.0.0.1 "$aport" stats "$CALL_LEG" dtmf "$CALL_LEG" \
	destroy "$CALL_LEG" adopt "$CALL_LEG" create zprobe-leg-1 sig-a >/dev/null
probe attack2 --endpoint "${W_CTL[$OTHER_W]}" "${BKEY[@]}" --id sig-b-probe hello \
	adopt "$CALL_LEG" >/dev/null
wait "$listener"
scrape "$CALL_W"
scrape "$OTHER_W"
step_is "$T_TMP/attack.probe" hello HELLO_OK || why "no HELLO_OK: $(head -1 "$T_TMP/attack.probe")"
for s in update stats dtmf destroy adopt create; do
	step_is "$T_TMP/attack.probe" "$s" "ERROR 1 " || why "$s: $(grep "^STEP $s:" "$T_TMP/attack.probe")"
done
step_is "$T_TMP/attack2.probe" adopt "ERROR 1 " ||
	why "adopt on $OTHER_W: $(grep "^STEP adopt:" "$T_TMP/attack2.probe")"
[[ $(refused "$CALL_W" requests_refused_total not_owner) -ge 3 ]] ||
	why "not_owner refusals: '$(refused "$CALL_W" requests_refused_total not_owner)'"
[[ $(refused "$CALL_W" requests_refused_total owner_alive) -ge 2 ]] ||
	why "owner_alive refusals: '$(refused "$CALL_W" requests_refused_total owner_alive)'"
[[ $(refused "$CALL_W" requests_refused_total owner_field) -ge 1 ]] ||
	why "owner_field refusals: '$(refused "$CALL_W" requests_refused_total owner_field)'"
[[ $(refused "$OTHER_W" requests_refused_total owner_alive) -ge 1 ]] ||
	why "owner_alive refusals on $OTHER_W: '$(refused "$OTHER_W" requests_refused_total owner_alive)'"
[[ $(cat "$T_TMP/attacker_rx") == 0 ]] || why "$(cat "$T_TMP/attacker_rx") RTP packets reached the attacker"
[[ $(R hget "rs:v1:leg:$CALL_LEG" owner) == sig-a ]] || why "the leg record's owner changed"
grep -q "refused (not_owner): leg $CALL_LEG belongs to signaler sig-a" "$T_TMP/$CALL_W.log" ||
	why "no refusal line in the worker log"
verdict zmq_auth_not_owner

probe impostor --endpoint "${W_CTL[$CALL_W]}" "${BKEY[@]}" --id sig-a hello >/dev/null
probe impostor_media --endpoint "${W_MEDIA[$CALL_W]}" "${BKEY[@]}" --id sig-a hello >/dev/null
scrape "$CALL_W"
step_is "$T_TMP/impostor.probe" hello "ERROR 1 " || why "control: $(cat "$T_TMP/impostor.probe")"
step_is "$T_TMP/impostor_media.probe" hello "ERROR 1 " || why "media: $(cat "$T_TMP/impostor_media.probe")"
[[ $(refused "$CALL_W" requests_refused_total id_bound) -ge 2 ]] ||
	why "id_bound refusals: '$(refused "$CALL_W" requests_refused_total id_bound)'"
verdict zmq_auth_impostor_hello

sleep 1
cp "$T_TMP/call.wav" "$T_TMP/call_attacked.wav" 2>/dev/null
if out=$("$WAVCHECK" "$T_TMP/call_attacked.wav" --expect-freq 1000 --tol 30 --min-duration 6 \
	--min-rms-dbfs -35 --max-gap 0.3 2>&1); then
	note "A's call during the attacks: $out"
else
	why "$(grep -m1 FAIL <<<"$out")"
fi
verdict zmq_auth_call_keeps_audio

# --- A dies --------------------------------------------------------------------------------------

kill -KILL "${S_PID[a]}"
wait "${S_PID[a]}" 2>/dev/null
probe early --endpoint "${W_CTL[$RTP_W]}" "${BKEY[@]}" --id sig-b-probe hello adopt "$RTP_LEG" >/dev/null
for ((i = 0; i < 100; i++)); do
	[[ $(R exists rs:v1:signaler:sig-a) == 0 ]] && break
	sleep 0.1
done
note "A's heartbeat hash gone $((i / 10)).$((i % 10)) s after the early probe"
probe late --endpoint "${W_CTL[$RTP_W]}" "${BKEY[@]}" --id sig-b-probe hello adopt "$RTP_LEG" \
	stats "$RTP_LEG" destroy "$RTP_LEG" >/dev/null
step_is "$T_TMP/early.probe" adopt "ERROR 1 leg $RTP_LEG belongs to signaler sig-a, which is alive" ||
	why "while A's heartbeat lives: $(tr '\n' ' ' <"$T_TMP/early.probe")"
step_is "$T_TMP/late.probe" adopt OK || why "after: $(tr '\n' ' ' <"$T_TMP/late.probe")"
step_is "$T_TMP/late.probe" stats OK && step_is "$T_TMP/late.probe" destroy OK ||
	why "B does not own the leg: $(tr '\n' ' ' <"$T_TMP/late.probe")"
grep -q "$RTP_LEG: leg now owned by signaler sig-b-probe (was sig-a)" "$T_TMP/$RTP_W.log" ||
	why "no ownership line in the worker log"
verdict zmq_auth_dead_owner_adopt

sipp_wait "$CALL_SIPP" 20
rc=$?
((rc == 0)) || why "SIPp did not get the BYE (status $rc)"
wait_log "$T_TMP/$CALL_W.log" "$CALL_LEG: destroyed for signaler sig-b: its owner sig-a is gone" 5 ||
	why "the worker did not destroy A's call leg for B"
[[ $(R exists "rs:v1:leg:$CALL_LEG") == 0 ]] || why "the leg record is still there"
verdict zmq_auth_dead_owner_orphan

# --- Redis -----------------------------------------------------------------------------------------

r=$(env -u REDISCLI_AUTH redis-cli -p "$REDIS_PORT" ping 2>&1)
[[ $r == *NOAUTH* ]] || why "Redis answered '$r' without the password"
out=$("$RELAYCTL" workers 2>&1) || why "relayctl: $out"
grep -q '^zw1 ' <<<"$out" && grep -q '^zw2 ' <<<"$out" || why "relayctl workers: $out"
verdict zmq_auth_redis_password
finish
