#!/usr/bin/env bash
# test_metrics.sh - the metrics and health endpoints of both daemons, with curl against the real
# binaries: Redis, one signaler, one mediaworker (found through Redis), ffmpeg publishing to the
# rtp app to make a leg, a Python UDP sink as the RTP peer.
#
#   metrics_signaler_alone   signaler without workers: /healthz 200, /readyz 503 "no live
#                            mediaworker", /metrics says live_workers 0; 404 and 405
#   metrics_worker_up        worker: /healthz 200, /readyz 200, rtmp2sip_worker_legs 0
#   metrics_signaler_ready   once the worker is up: signaler /readyz 200, live_workers 1,
#                            worker_up{worker="mtw1"} 1
#   metrics_exposition       every line of both /metrics is HELP, TYPE or a valid sample; every
#                            sample's family has a TYPE; Content-Type is text format 0.0.4
#   metrics_leg              during an rtp-app call: worker legs 1, packets out growing,
#                            packets from a stranger counted as from an unexpected source;
#                            signaler calls{app="rtp"} 1, legs{state="ready"} 1; afterwards legs 0,
#                            legs created/destroyed 1 each and the packet counters kept
#   metrics_port_config      METRICS_PORT=0: no endpoint; METRICS_PORT=abc: exit 2; a port
#                            already taken: the worker runs without metrics
#   metrics_draining         SIGTERM with a leg up: worker /readyz 503 "draining", the
#                            signaler 503 (no worker that takes legs)
#   metrics_redis_down       Redis stopped: both /readyz 503 "Redis down", redis_up 0
#
# Env: BUILD selects the build (default build).

# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MW="$T_MW"
need_tools metrics curl ffmpeg python3 redis-server
[[ -x $MW ]] || { fail metrics_setup "$MW not built"; finish; }

# http PORT PATH [curl options]: prints "<status> <body>" (status 000 when nothing answers).
http() {
	local port=$1 path=$2
	shift 2
	curl -s -m 3 -o "$T_TMP/body" -w '%{http_code}' "$@" "http://127.0.0.1:$port$path" >"$T_TMP/code" 2>/dev/null
	printf '%s %s' "$(cat "$T_TMP/code")" "$(cat "$T_TMP/body" 2>/dev/null)"
}

# metrics PORT: the /metrics text.
metrics() {
	curl -s -m 3 "http://127.0.0.1:$1/metrics"
}

# value PORT SERIES: the value of one exact series ("name" or 'name{label="v"}'), or "".
value() {
	metrics "$1" | awk -v s="$2" '$1 == s { print $2; exit }'
}

# wait_value PORT SERIES VALUE SECONDS: true once SERIES has VALUE.
wait_value() {
	local i
	for ((i = 0; i < $4 * 10; i++)); do
		[[ $(value "$1" "$2") == "$3" ]] && return 0
		sleep 0.1
	done
	return 1
}

# wait_status PORT PATH CODE SECONDS: true once PATH answers CODE.
wait_status() {
	local i
	for ((i = 0; i < $4 * 10; i++)); do
		[[ $(http "$1" "$2") == "$3"* ]] && return 0
		sleep 0.1
	done
	return 1
}

# exposition_ok NAME PORT: checks the format of PORT's /metrics (python, strict enough).
exposition_ok() {
	local out
	curl -s -m 3 -D "$T_TMP/$1.head" -o "$T_TMP/$1.prom" "http://127.0.0.1:$2/metrics"
	grep -qi '^Content-Type: text/plain; version=0.0.4; charset=utf-8' "$T_TMP/$1.head" ||
		why "$1: Content-Type $(grep -i '^content-type' "$T_TMP/$1.head" | tr -d '\r')"
	if ! out=$(python3 - "$T_TMP/$1.prom" <<'EOF'
import re, sys
text = open(sys.argv[1], encoding="utf-8").read()
assert text.endswith("\n"), "no final newline"
name = r"[a-zA-Z_:][a-zA-Z0-9_:]*"
label = r'[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\[\\"n])*"'
value = r"(?:[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+)|NaN|[+-]Inf)"
sample = re.compile(rf"^({name})(?:\{{{label}(?:,{label})*\}})? {value}$")
typed, samples = {}, 0
for n, line in enumerate(text.splitlines(), 1):
    if line.startswith("# HELP "):
        continue
    m = re.match(rf"^# TYPE ({name}) (counter|gauge)$", line)
    if m:
        assert m.group(1) not in typed, f"line {n}: second TYPE for {m.group(1)}"
        typed[m.group(1)] = m.group(2)
        continue
    m = sample.match(line)
    assert m, f"line {n}: not a sample: {line!r}"
    assert m.group(1).startswith("rtmp2sip_"), f"line {n}: no rtmp2sip_ prefix"
    assert m.group(1) in typed, f"line {n}: {m.group(1)} has no TYPE before it"
    if typed[m.group(1)] == "counter":
        assert m.group(1).endswith("_total"), f"line {n}: counter {m.group(1)} without _total"
    samples += 1
print(f"{len(typed)} families, {samples} samples")
EOF
	); then
		why "$1: $(tail -n 1 <<<"$out")"
		return 1
	fi
	note "$1 /metrics: $out"
}

start_redis || { fail metrics_setup "redis did not start"; finish; }
SIG_MPORT=$(free_port)
W_MPORT=$(free_port)

# --- the signaler alone
if ! start_signaler SIGNALER_ID=sig-metrics-test METRICS_PORT="$SIG_MPORT" RTP_APP=1; then
	fail metrics_setup "the signaler did not start"
	finish
fi
wait_status "$SIG_MPORT" /healthz 200 5 || why "/healthz: $(http "$SIG_MPORT" /healthz)"
r=$(http "$SIG_MPORT" /healthz)
[[ $r == "200 ok" ]] || why "/healthz answered '$r'"
r=$(http "$SIG_MPORT" /readyz)
[[ $r == "503 not ready: no live mediaworker" ]] || why "/readyz without workers answered '$r'"
[[ $(value "$SIG_MPORT" rtmp2sip_signaler_live_workers) == 0 ]] ||
	why "live_workers is '$(value "$SIG_MPORT" rtmp2sip_signaler_live_workers)', not 0"
[[ $(value "$SIG_MPORT" rtmp2sip_signaler_ready) == 0 ]] || why "signaler_ready is not 0"
r=$(http "$SIG_MPORT" /nope)
[[ $r == 404* ]] || why "/nope answered '$r'"
r=$(http "$SIG_MPORT" /metrics -X POST -d x=1)
[[ $r == 405* ]] || why "POST /metrics answered '$r'"
r=$(http "$SIG_MPORT" /metrics -I)
[[ $r == 200* ]] || why "HEAD /metrics answered '$r'"
grep -q "metrics on http://127.0.0.1:$SIG_MPORT/metrics" "$SIGNALER_LOG" || why "no 'metrics on' line in the log"
verdict metrics_signaler_alone

# --- a worker
start_worker() { # NAME LOG [VAR=value...]: sets W_PID
	local name=$1 log=$2 base
	shift 2
	base=$((32000 + RANDOM % 8000 / 2 * 2))
	spawn "$log" env WORKER_ID="$name" RTP_PORT_MIN="$base" RTP_PORT_MAX=$((base + 199)) \
		LOG_LEVEL=info RTP_BIND_IP=127.0.0.1 WORKER_HEARTBEAT_MS=100 "$@" "$MW"
	W_PID=$SPAWNED_PID
}
W_LOG="$T_TMP/mtw1.log"
start_worker mtw1 "$W_LOG" METRICS_PORT="$W_MPORT"
W1_PID=$W_PID
wait_log "$W_LOG" 'mediaworker ready' 5 || why "the worker did not start: $(tail -n 3 "$W_LOG" | tr '\n' ' ')"
wait_status "$W_MPORT" /healthz 200 5 || why "worker /healthz: $(http "$W_MPORT" /healthz)"
r=$(http "$W_MPORT" /readyz)
[[ $r == "200 ready" ]] || why "worker /readyz answered '$r'"
[[ $(value "$W_MPORT" rtmp2sip_worker_legs) == 0 ]] || why "worker_legs is not 0"
[[ $(value "$W_MPORT" rtmp2sip_worker_redis_up) == 1 ]] || why "worker_redis_up is not 1"
[[ $(value "$W_MPORT" rtmp2sip_worker_draining) == 0 ]] || why "worker_draining is not 0"
for m in rtp_late_total rtp_concealed_total rtp_send_errors_total \
	rtp_unexpected_source_total rtp_latch_changes_total; do
	[[ $(value "$W_MPORT" "rtmp2sip_worker_$m") =~ ^[0-9]+$ ]] || why "worker_$m is missing"
done
verdict metrics_worker_up

wait_status "$SIG_MPORT" /readyz 200 10 || why "signaler /readyz: $(http "$SIG_MPORT" /readyz)"
[[ $(value "$SIG_MPORT" rtmp2sip_signaler_live_workers) == 1 ]] || why "live_workers is not 1"
wait_value "$SIG_MPORT" 'rtmp2sip_signaler_worker_up{worker="mtw1"}' 1 3 || why "worker_up{worker=\"mtw1\"} is not 1"
[[ $(value "$SIG_MPORT" rtmp2sip_signaler_redis_up) == 1 ]] || why "signaler_redis_up is not 1"
[[ $(value "$SIG_MPORT" rtmp2sip_signaler_ready) == 1 ]] || why "signaler_ready is not 1"
metrics "$SIG_MPORT" | grep -q '^rtmp2sip_signaler_live_workers 1$' || why "no 'rtmp2sip_signaler_live_workers 1' line"
verdict metrics_signaler_ready

exposition_ok signaler "$SIG_MPORT"
exposition_ok worker "$W_MPORT"
verdict metrics_exposition

# --- a leg: ffmpeg publishes G.711 to rtp/<sink>; the worker sends RTP to a UDP sink.
SINK_PORT=$(python3 -c 'import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]
print(p if p % 2 == 0 else p + 1)')
spawn "$T_TMP/sink.log" python3 -c "import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(('127.0.0.1', $SINK_PORT))
while True: s.recv(2048)"
URL="rtmp://127.0.0.1:$RTMP_PORT/rtp/127.0.0.1:$SINK_PORT"
publish() { # LABEL SECONDS: a 1 kHz tone in G.711 u-law; sets PUB_PID
	spawn "$T_TMP/$1.log" timeout -k 5 $(($2 + 20)) ffmpeg -nostdin -hide_banner -loglevel error -re \
		-f lavfi -i "sine=frequency=1000:sample_rate=8000:duration=$2" -c:a pcm_mulaw -ar 8000 \
		-ac 1 -f flv "$URL"
	PUB_PID=$SPAWNED_PID
}
publish leg 5
wait_value "$W_MPORT" rtmp2sip_worker_legs 1 5 || why "worker_legs never 1"
[[ $(value "$W_MPORT" rtmp2sip_worker_passthrough_legs) == 1 ]] || why "passthrough_legs is not 1"
wait_value "$SIG_MPORT" 'rtmp2sip_signaler_calls{app="rtp"}' 1 3 || why "calls{app=\"rtp\"} never 1"
[[ $(value "$SIG_MPORT" 'rtmp2sip_signaler_legs{state="ready"}') == 1 ]] || why "legs{state=\"ready\"} is not 1"
wait_value "$SIG_MPORT" 'rtmp2sip_signaler_worker_legs{worker="mtw1"}' 1 3 || why "worker_legs{worker=\"mtw1\"} never 1 at the signaler"
sleep 1
out1=$(value "$W_MPORT" 'rtmp2sip_worker_rtp_packets_total{direction="out"}')
sleep 1
out2=$(value "$W_MPORT" 'rtmp2sip_worker_rtp_packets_total{direction="out"}')
note "RTP packets out during the call: $out1, then $out2"
[[ -n $out1 && -n $out2 ]] && ((out2 > out1)) || why "RTP packets out not growing ($out1, $out2)"
# Five packets from a stranger to the leg's port (the sink, the signalled peer, sends nothing):
# dropped by strict latching and counted.
leg_port=$(grep -o 'leg created: .* local 127\.0\.0\.1:[0-9]*' "$W_LOG" | tail -1 | sed 's/.*://')
if [[ -n $leg_port ]]; then
	python3 - "$leg_port" <<'PY'
import random, socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for i in range(5):
    hdr = struct.pack("!BBHII", 0x80, 0, random.randrange(65536), 0, random.randrange(1 << 32))
    s.sendto(hdr + b"\x55" * 160, ("127.0.0.1", int(sys.argv[1])))
PY
fi
for ((i = 0; i < 30; i++)); do
	foreign=$(value "$W_MPORT" rtmp2sip_worker_rtp_unexpected_source_total)
	((${foreign:-0} >= 5)) && break
	sleep 0.1
done
((${foreign:-0} >= 5)) || why "unexpected_source_total is ${foreign:-missing} after 5 packets from a stranger (leg port ${leg_port:-?})"
tw=$(value "$SIG_MPORT" 'rtmp2sip_signaler_worker_media_frames_total{worker="mtw1",direction="to_worker"}')
[[ -n $tw ]] && ((tw > 0)) || why "no media frames to the worker counted ($tw)"
wait "$PUB_PID" || why "the publisher failed: $(tail -n 2 "$T_TMP/leg.log" | tr '\n' ' ')"
wait_value "$W_MPORT" rtmp2sip_worker_legs 0 5 || why "worker_legs not back to 0"
wait_value "$W_MPORT" rtmp2sip_worker_legs_destroyed_total 1 3 || why "legs_destroyed_total is not 1"
[[ $(value "$W_MPORT" rtmp2sip_worker_legs_created_total) == 1 ]] || why "legs_created_total is not 1"
out3=$(value "$W_MPORT" 'rtmp2sip_worker_rtp_packets_total{direction="out"}')
[[ -n $out3 ]] && ((out3 >= out2 && out3 > 100)) || why "RTP packets out not kept after the leg ($out3 after $out2)"
wait_value "$SIG_MPORT" 'rtmp2sip_signaler_calls{app="rtp"}' 0 3 || why "calls{app=\"rtp\"} not back to 0"
[[ $(value "$SIG_MPORT" rtmp2sip_signaler_legs_created_total) == 1 ]] || why "signaler legs_created_total is not 1"
verdict metrics_leg

# --- port settings
log="$T_TMP/mtw0.log"
start_worker mtw0 "$log" METRICS_PORT=0
wait_log "$log" 'mediaworker ready' 5 || why "a worker with METRICS_PORT=0 did not start"
grep -q 'METRICS_PORT=0: no metrics' "$log" || why "METRICS_PORT=0 not logged"
stop_pid "$W_PID" 3
log="$T_TMP/mtwbad.log"
start_worker mtwbad "$log" METRICS_PORT=abc
for ((i = 0; i < 50; i++)); do kill -0 "$W_PID" 2>/dev/null || break; sleep 0.1; done
wait "$W_PID" 2>/dev/null
rc=$?
[[ $rc == 2 ]] || why "METRICS_PORT=abc: exit status $rc, not 2"
grep -q 'METRICS_PORT="abc"' "$log" || why "METRICS_PORT=abc not named in the log"
log="$T_TMP/mtwtaken.log"
start_worker mtwtaken "$log" METRICS_PORT="$W_MPORT"
wait_log "$log" 'mediaworker ready' 5 || why "a worker whose METRICS_PORT is taken did not start"
grep -q "cannot listen on 127.0.0.1:$W_MPORT" "$log" || why "the taken port is not logged"
stop_pid "$W_PID" 3
[[ $(http "$W_MPORT" /healthz) == "200 ok" ]] || why "the first worker's endpoint is gone"
# The extra workers registered in Redis too: wait until the signaler sees only mtw1 alive.
wait_value "$SIG_MPORT" rtmp2sip_signaler_live_workers 1 5 ||
	why "live_workers not back to 1 after the extra workers stopped"
verdict metrics_port_config

# --- draining: SIGTERM while a leg is up
publish drain 6
wait_value "$W_MPORT" rtmp2sip_worker_legs 1 5 || why "no leg before the drain"
kill -TERM "$W1_PID"
wait_status "$W_MPORT" /readyz 503 3 || why "worker /readyz during the drain: $(http "$W_MPORT" /readyz)"
r=$(http "$W_MPORT" /readyz)
[[ $r == "503 not ready: draining"* ]] || why "worker /readyz answered '$r'"
[[ $(value "$W_MPORT" rtmp2sip_worker_draining) == 1 ]] || why "worker_draining is not 1"
[[ $(http "$W_MPORT" /healthz) == "200 ok" ]] || why "worker /healthz not 200 while draining"
wait_status "$SIG_MPORT" /readyz 503 3 || why "signaler /readyz with only a draining worker: $(http "$SIG_MPORT" /readyz)"
wait_value "$SIG_MPORT" 'rtmp2sip_signaler_worker_draining{worker="mtw1"}' 1 3 || why "worker_draining{worker=\"mtw1\"} is not 1 at the signaler"
wait "$PUB_PID"
for ((i = 0; i < 50; i++)); do kill -0 "$W1_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$W1_PID" 2>/dev/null && why "the drained worker did not exit"
wait "$W1_PID" 2>/dev/null
verdict metrics_draining

# --- Redis down: a fresh worker, then Redis stops.
log="$T_TMP/mtw2.log"
start_worker mtw2 "$log" METRICS_PORT="$W_MPORT"
wait_log "$log" 'mediaworker ready' 5 || why "worker mtw2 did not start"
wait_status "$SIG_MPORT" /readyz 200 10 || why "signaler not ready with mtw2: $(http "$SIG_MPORT" /readyz)"
stop_pid "$REDIS_PID" 3
wait_status "$W_MPORT" /readyz 503 5 || why "worker /readyz with Redis down: $(http "$W_MPORT" /readyz)"
r=$(http "$W_MPORT" /readyz)
[[ $r == "503 not ready: Redis down" ]] || why "worker /readyz answered '$r'"
wait_status "$SIG_MPORT" /readyz 503 5 || why "signaler /readyz with Redis down: $(http "$SIG_MPORT" /readyz)"
r=$(http "$SIG_MPORT" /readyz)
[[ $r == *"Redis down"* ]] || why "signaler /readyz answered '$r'"
[[ $(value "$SIG_MPORT" rtmp2sip_signaler_redis_up) == 0 ]] || why "signaler_redis_up is not 0"
dc=$(value "$SIG_MPORT" rtmp2sip_signaler_redis_disconnects_total)
[[ -n $dc ]] && ((dc >= 1)) || why "signaler redis_disconnects_total is '$dc'"
verdict metrics_redis_down

stop_signaler
rc=$?
[[ $rc == 0 ]] || why "the signaler exited with status $rc"
verdict metrics_sigterm_exit stopped
finish
