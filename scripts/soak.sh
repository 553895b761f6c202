#!/usr/bin/env bash
# soak.sh - `make soak`: SOAK_CALLS calls held for SOAK_MINUTES through a `make run` stack, with
# the stack's and the clients' figures sampled every SOAK_SAMPLE_S seconds; a table and a verdict.
#
# The stack is scripts/run.sh in the background (Redis + signaler + WORKERS=2 workers, its
# defaults but for the ports below, the per-client call limits - every client is 127.0.0.1 - and
# RUN_DIR=build/soak/run); it runs copies of the binaries (build/soak/bin), so a rebuild meanwhile
# changes nothing. The far end is one SIPp UAS echoing the RTP (sipp -sn uas -rtp_echo). Two kinds
# of RTMP client:
#
#   librtmp  tests/tools/callbench hold: SOAK_CALLS - SOAK_FFMPEG_CALLS calls of the sip app, Speex
#            WB both ways at 20 ms pacing (--progress: per-call frames, bytes, gaps)
#   ffmpeg   tests/tools/soak_ffmpeg.py: SOAK_FFMPEG_CALLS calls of the call app, each an ffmpeg
#            player and an ffmpeg publisher of a lavfi tone (Speex 16 kHz), as test_call_app.sh
#
# Each sample: VmRSS and open fds of the signaler and each worker (/proc), UDP sockets bound in
# the workers' RTP range (/proc/net/udp), Redis keys (DBSIZE; call and leg records), calls alive
# (Redis call records; clients up), and per call the frames received against the 50 a second
# expected and the pauses > 100 ms between received frames. Rows: base (idle, before the calls),
# one per sample, end (the last sample with the calls up), after (once hung up), and the deltas.
#
# Verdict (exit 1 when any bound is broken; every reason is printed):
#   - RSS of the signaler or a worker at the end > 110 % of its RSS at the reference sample, the
#     first taken SOAK_WARMUP_S (default: 5 minutes, or a quarter of the run when shorter) in
#   - fds of a daemon, UDP ports in the workers' range or Redis keys not back to base within
#     SOAK_SETTLE_S (30) seconds of the hang-up
#   - a client disconnected: a call not up at some sample or at the end (a librtmp connection
#     closed, a call hung up by the far end, an ffmpeg that exited), a call not set up, a bye
#     without its _result, a daemon restarted by run.sh
#   - a call's continuity < 99 %: frames received from the reference sample to the end, against
#     50 per second of that span
# Gaps > 100 ms are counted and shown, not judged.
#
# Environment: SOAK_CALLS (20), SOAK_FFMPEG_CALLS (half of SOAK_CALLS), SOAK_MINUTES (60),
# SOAK_SAMPLE_S (300), SOAK_WARMUP_S, SOAK_SETTLE_S (30), BUILD (build), SOAK_OUT (build/soak).
# Ports, away from `make run`'s and the tests' (they run alongside): SOAK_RTMP_PORT (19350),
# SOAK_RTMPS_PORT (19351; 0: none), SOAK_SIP_PORT (15070), SOAK_REDIS_PORT (16390),
# SOAK_RTP_PORT_MIN/MAX (42000/42999), SOAK_METRICS_PORT (19100; workers +1, +2; 0: none),
# SOAK_SIPP_PORT (15080), SOAK_SIPP_CONTROL_PORT (15089), SOAK_SIPP_MEDIA_PORT (15090; and +2).
# Output: stdout and build/soak/soak.txt (the table, per-call figures, verdict); raw samples in
# build/soak/samples.txt; the daemons' logs in build/soak/run/logs/, the clients' in build/soak/.
set -euo pipefail

# Everything runs from main, read whole before it starts: an edit of this file meanwhile (the
# tree is shared) cannot change a run under way.
main() {
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BUILD=${BUILD:-build}
[[ $BUILD == /* ]] || BUILD="$ROOT/$BUILD"

CALLS=${SOAK_CALLS:-20}
FF_CALLS=${SOAK_FFMPEG_CALLS:-$((CALLS / 2))}
LR_CALLS=$((CALLS - FF_CALLS))
MINUTES=${SOAK_MINUTES:-60}
SAMPLE_S=${SOAK_SAMPLE_S:-300}
HOLD_S=$((MINUTES * 60))
WARMUP_S=${SOAK_WARMUP_S:-$((HOLD_S / 4 < 300 ? HOLD_S / 4 : 300))}
SETTLE_S=${SOAK_SETTLE_S:-30}
RTMP_PORT=${SOAK_RTMP_PORT:-19350}
SIP_PORT=${SOAK_SIP_PORT:-15070}
REDIS_PORT=${SOAK_REDIS_PORT:-16390}
RTP_MIN=${SOAK_RTP_PORT_MIN:-42000}
RTP_MAX=${SOAK_RTP_PORT_MAX:-42999}
METRICS_PORT=${SOAK_METRICS_PORT:-19100}
SIPP_PORT=${SOAK_SIPP_PORT:-15080}
SIPP_CONTROL_PORT=${SOAK_SIPP_CONTROL_PORT:-15089}
SIPP_MEDIA_PORT=${SOAK_SIPP_MEDIA_PORT:-15090}
RTMPS_PORT=${SOAK_RTMPS_PORT:-19351}
WORKERS=2
PROGRESS_S=5 # the clients' progress lines; a sample takes the latest

OUT=${SOAK_OUT:-$ROOT/build/soak}
[[ $OUT == /* ]] || OUT="$ROOT/$OUT"
REPORT="$OUT/soak.txt"
SAMPLES="$OUT/samples.txt"

die() {
	echo "soak: $*" >&2
	exit 2
}
for v in CALLS FF_CALLS MINUTES SAMPLE_S WARMUP_S SETTLE_S; do
	[[ ${!v} =~ ^[0-9]+$ ]] || die "$v=${!v} is not a whole number"
done
((LR_CALLS >= 0 && CALLS > 0)) || die "SOAK_FFMPEG_CALLS=$FF_CALLS is more than SOAK_CALLS=$CALLS"
((MINUTES >= 1 && SAMPLE_S >= 10)) || die "SOAK_MINUTES >= 1 and SOAK_SAMPLE_S >= 10, please"
for cmd in sipp ffmpeg python3 redis-server redis-cli; do
	command -v "$cmd" >/dev/null || die "$cmd not found (scripts/deps.sh install)"
done
for b in signaler mediaworker relayctl tools/callbench; do
	[[ -x $BUILD/$b ]] || die "$BUILD/$b is not built: make all tools"
done

# (what an earlier run left; other files in build/soak/, e.g. a nohup log, stay)
rm -rf "${OUT:?}/run" "${OUT:?}/bin" "${OUT:?}/ffmpeg"
rm -f "$OUT"/{soak.txt,samples.txt,progress.txt,run.out,sipp.log,callbench.out,callbench.err} \
	"$OUT"/{ffmpeg.out,ffmpeg.err} "$OUT"/uas_*_errors.log
mkdir -p "$OUT/bin/tools" "$OUT/ffmpeg"
for b in signaler mediaworker relayctl tools/callbench; do cp "$BUILD/$b" "$OUT/bin/$b"; done
: >"$REPORT"
: >"$SAMPLES"

RUN_PID="" SIPP_PID="" CB_PID="" FF_PID=""
# shellcheck disable=SC2317 # called through the trap
cleanup() {
	local p
	trap - EXIT INT TERM
	for p in "$FF_PID" "$CB_PID" "$SIPP_PID"; do
		[[ -z $p ]] || kill -TERM "$p" 2>/dev/null || true
	done
	for p in "$FF_PID" "$CB_PID" "$SIPP_PID"; do
		[[ -z $p ]] || wait "$p" 2>/dev/null || true
	done
	if [[ -n $RUN_PID ]]; then # run.sh stops redis, the signaler and the workers in order
		kill -TERM "$RUN_PID" 2>/dev/null || true
		wait "$RUN_PID" 2>/dev/null || true
	fi
}
trap cleanup EXIT
trap 'echo "soak: interrupted" >&2; exit 130' INT TERM

# say TEXT...: a line on stdout and in the report.
say() { printf '%s\n' "$*" | tee -a "$REPORT"; }

# --- the stack: run.sh as `make run` starts it, in the background
env RUN_DIR="$OUT/run" BUILD="$OUT/bin" RTMP_PORT="$RTMP_PORT" RTMPS_PORT="$RTMPS_PORT" \
	SIP_PORT="$SIP_PORT" REDIS_PORT="$REDIS_PORT" RTP_PORT_MIN="$RTP_MIN" RTP_PORT_MAX="$RTP_MAX" \
	METRICS_PORT="$METRICS_PORT" WORKERS="$WORKERS" RUN_TAIL=0 \
	CALL_MAX_ACTIVE_PER_CLIENT=100000 CALL_ATTEMPTS_PER_MINUTE_PER_CLIENT=1000000 \
	bash scripts/run.sh </dev/null >"$OUT/run.out" 2>&1 &
RUN_PID=$!
for ((i = 0; i < 300; i++)); do
	grep -q 'rtmp2sip is running' "$OUT/run.out" && break
	kill -0 "$RUN_PID" 2>/dev/null || break
	sleep 0.1
done
grep -q 'rtmp2sip is running' "$OUT/run.out" || { cat "$OUT/run.out" >&2; die "run.sh did not start"; }
SIG_LOG="$OUT/run/logs/signaler.log"
for ((i = 0; i < 150; i++)); do
	(($(grep -c 'mediaworker up' "$SIG_LOG" || true) >= WORKERS)) && break
	sleep 0.1
done
(($(grep -c 'mediaworker up' "$SIG_LOG" || true) >= WORKERS)) || die "the signaler did not see $WORKERS workers up"
export REDISCLI_AUTH
REDISCLI_AUTH=$(cat "$OUT/run/secrets/redis.pass")
rcli() { redis-cli -p "$REDIS_PORT" --no-auth-warning "$@"; }

# pid_of NAME: the current pid of run.sh's process NAME (the last started).
pid_of() {
	sed -n "s/^run: started $1 (pid \([0-9]*\).*/\1/p; s/^run: $1 started again (pid \([0-9]*\)).*/\1/p" \
		"$OUT/run.out" | tail -n 1
}
restarts() { grep -c 'started again' "$OUT/run.out" || true; }
# (the figures below print -1 when they cannot be read, and never fail)
rss_kb() {
	local v
	v=$(awk '/^VmRSS:/ { print $2 }' "/proc/${1:-0}/status" 2>/dev/null) || true
	echo "${v:--1}"
}
fds() {
	[[ -n $1 && -d /proc/$1/fd ]] || { echo -1; return 0; }
	find "/proc/$1/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l || true
}
# udp_ports PID...: UDP sockets of these processes bound to a port of the workers' RTP range (v4
# and v6); the range lies among the ephemeral ports, where other programs' sockets may be.
udp_ports() {
	local inodes="" p
	for p in "$@"; do
		[[ -n $p ]] || continue
		inodes+=" $(find "/proc/$p/fd" -lname 'socket:*' -printf '%l ' 2>/dev/null | tr -dc '0-9 ' || true)"
	done
	awk -v l=" $inodes " -v lo="$RTP_MIN" -v hi="$RTP_MAX" '
		function hex(h,   i, v) { v = 0; for (i = 1; i <= length(h); i++) v = v * 16 + index("0123456789ABCDEF", substr(h, i, 1)) - 1; return v }
		FNR > 1 && index(l, " " $10 " ") { n = split($2, a, ":"); p = hex(a[n]); if (p >= lo && p <= hi) c++ }
		END { print c + 0 }' /proc/net/udp /proc/net/udp6 2>/dev/null || echo -1
}
keys_like() { { rcli --scan --pattern "$1" || true; } | wc -l; }
dbsize() {
	local v
	v=$(rcli dbsize 2>/dev/null) || true
	[[ $v =~ ^[0-9]+$ ]] && echo "$v" || echo -1
}
keys_by_prefix() {
	{ rcli --scan || true; } | awk -F: '{ print $1 ":" $2 ":" $3 }' | sort | uniq -c |
		awk '{ printf "%s=%s ", $2, $1 }'
}

# --- the far end
(cd "$OUT" && exec sipp -sn uas -rtp_echo -i 127.0.0.1 -p "$SIPP_PORT" -mp "$SIPP_MEDIA_PORT" \
	-cp "$SIPP_CONTROL_PORT" -nostdin -trace_err) >"$OUT/sipp.log" 2>&1 &
SIPP_PID=$!
sleep 1
kill -0 "$SIPP_PID" 2>/dev/null || { cat "$OUT/sipp.log" >&2; die "SIPp did not start"; }

# sample LABEL: one line of raw figures in SAMPLES (key=value; the clients' latest progress).
SIG=$(pid_of signaler)
sample() {
	local label=$1 s w p line wp
	s=$(pid_of signaler)
	line="label=$label wall=$(date -u +%H:%M:%S) t=$((SECONDS - T0)) sig_rss=$(rss_kb "$s") sig_fds=$(fds "$s")"
	wp=()
	for ((w = 1; w <= WORKERS; w++)); do
		p=$(pid_of "mediaworker-$w")
		wp+=("$p")
		line+=" w${w}_rss=$(rss_kb "$p") w${w}_fds=$(fds "$p")"
	done
	line+=" udp=$(udp_ports "${wp[@]}") keys=$(dbsize) call_keys=$(keys_like 'rs:v1:call:*')"
	line+=" leg_keys=$(keys_like 'rs:v1:leg:*') restarts=$(restarts)"
	line+=" load=$(cut -d' ' -f1 /proc/loadavg)"
	echo "$line" >>"$SAMPLES"
	# the clients' latest complete progress blocks, tagged with this sample's label
	for f in "$OUT/callbench.out" "$OUT/ffmpeg.out"; do
		[[ -s $f ]] || continue
		awk -v label="$label" -v kind="$(basename "$f" .out)" '
			/^PROGRESS / { blk = blk label " " kind " " $0 "\n" }
			/^PROGRESS_END/ { last = blk; blk = "" }
			END { printf "%s", last }' "$f" >>"$OUT/progress.txt"
	done
}
T0=$SECONDS
sleep 2
sample base
BASE_KEYS=$(keys_by_prefix)

# --- the clients: up within UP_S seconds (callbench at 5 calls/s, then 5 s to settle; ffmpeg
# calls every 0.5 s, each playing ~2 s later); the hold counts from there
UP_S=$((LR_CALLS / 5 + FF_CALLS / 2 + 8))
END_S=$((UP_S + HOLD_S))
URL="rtmp://127.0.0.1:$RTMP_PORT"
: >"$OUT/callbench.out"
: >"$OUT/ffmpeg.out"
: >"$OUT/progress.txt"
T0=$SECONDS
if ((LR_CALLS > 0)); then
	"$OUT/bin/tools/callbench" hold --url "$URL/sip" --target "sip:soak@127.0.0.1:$SIPP_PORT" \
		--calls "$LR_CALLS" --ramp 5 --settle 5 --seconds $((END_S + 300)) --timeout 10 \
		--progress "$PROGRESS_S" --pid "signaler=$SIG" >"$OUT/callbench.out" 2>"$OUT/callbench.err" &
	CB_PID=$!
fi
if ((FF_CALLS > 0)); then
	python3 tests/tools/soak_ffmpeg.py --url "$URL/call" --callee "127.0.0.1:$SIPP_PORT" \
		--calls "$FF_CALLS" --progress "$PROGRESS_S" --logs "$OUT/ffmpeg" \
		>"$OUT/ffmpeg.out" 2>"$OUT/ffmpeg.err" &
	FF_PID=$!
fi
say "soak: $LR_CALLS librtmp (callbench) + $FF_CALLS ffmpeg calls for $MINUTES min, a row every" \
	"$SAMPLE_S s, reference at $WARMUP_S s; stack: scripts/run.sh (RTMP $RTMP_PORT, SIP $SIP_PORT," \
	"Redis $REDIS_PORT, RTP $RTP_MIN-$RTP_MAX, $WORKERS workers); far end: SIPp RTP echo on $SIPP_PORT"
say "started $(date -u '+%F %T') UTC; raw figures in ${OUT#"$ROOT"/}/samples.txt and progress.txt"

# --- the hold: a sample at the reference, then every SAMPLE_S, and at the end of the hold (the
# calls take up to ~10 s to come up and settle: the hold counts from then)
times=$( { echo "$((UP_S + WARMUP_S))"; for ((t = SAMPLE_S; t < END_S; t += SAMPLE_S)); do echo "$t"; done; } | sort -nu)
for t in $times; do
	((t < END_S - 5)) || continue
	while ((SECONDS - T0 < t)); do sleep 1; done
	if ((t == UP_S + WARMUP_S)); then sample ref; else sample "s$t"; fi
done
while ((SECONDS - T0 < END_S)); do sleep 1; done
sample end

# --- hang up: SIGTERM ends callbench's window (it byes every call and prints its RESULT) and
# stops the ffmpeg publishers (they unpublish: the call app hangs up), then the players
for p in "$CB_PID" "$FF_PID"; do
	[[ -z $p ]] || kill -TERM "$p" 2>/dev/null || true
done
for p in "$CB_PID" "$FF_PID"; do
	[[ -n $p ]] && { wait "$p" || echo "soak: a client driver exited with status $?" | tee -a "$REPORT"; }
done
FF_PID="" CB_PID=""
# back to base: fds, ports, keys, within SETTLE_S seconds (the last try is the row kept)
# same_as_base: the last sample's daemon fds, UDP ports and Redis keys are those of base.
same_as_base() {
	local f b a base_line after_line
	base_line=$(grep '^label=base ' "$SAMPLES")
	after_line=$(tail -n 1 "$SAMPLES")
	for f in sig_fds w1_fds w2_fds udp keys; do
		[[ " $base_line " =~ \ $f=([^ ]*) ]] && b=${BASH_REMATCH[1]}
		[[ " $after_line " =~ \ $f=([^ ]*) ]] && a=${BASH_REMATCH[1]}
		[[ $b == "$a" ]] || return 1
	done
}
for ((i = 1; i <= SETTLE_S; i++)); do
	sample after
	same_as_base && break
	((i == SETTLE_S)) && break
	sed -i '$d' "$SAMPLES"
	sleep 1
done
AFTER_KEYS=$(keys_by_prefix)

# --- the report
rc=0
python3 - "$SAMPLES" "$OUT/progress.txt" "$OUT/callbench.out" "$WORKERS" "$LR_CALLS" "$FF_CALLS" \
	"$SETTLE_S" "$BASE_KEYS" "$AFTER_KEYS" <<'EOF' | tee -a "$REPORT" || rc=$?
import sys
samples_f, prog_f, cb_f, workers, n_lr, n_ff, settle_s, base_keys, after_keys = sys.argv[1:]
workers, n_lr, n_ff = int(workers), int(n_lr), int(n_ff)
rows = []
for ln in open(samples_f):
    rows.append(dict(kv.split("=", 1) for kv in ln.split()))
prog = {}  # label -> {(kind, call): dict}
for ln in open(prog_f):
    p = ln.split()
    label, kind = p[0], p[1]
    d = dict(kv.split("=", 1) for kv in p[3:])
    prog.setdefault(label, {})[(kind, int(d["call"]))] = d
cb = {}
for ln in open(cb_f):
    if ln.startswith("RESULT "):
        cb = dict(kv.split("=", 1) for kv in ln.split()[1:])
fails = []
procs = ["sig"] + [f"w{w}" for w in range(1, workers + 1)]
mb = lambda kb: f"{int(kb) / 1024:.1f}" if int(kb) >= 0 else "gone"
calls = [("callbench", i) for i in range(n_lr)] + [("ffmpeg", i) for i in range(n_ff)]

def rate(a, b, c):
    """continuity of call c between progress blocks a and b, in %; None when not measurable"""
    if a is None or b is None or c not in a or c not in b:
        return None
    dt = float(b[c]["t"]) - float(a[c]["t"])
    if dt <= 0:
        return None
    return 100.0 * (int(b[c]["rx"]) - int(a[c]["rx"])) / (dt * 50)

hdr = ("row", "time", "t_s") + tuple(f"{p}_rss_MB" for p in procs) + tuple(f"{p}_fds" for p in procs) + \
      ("udp", "keys", "call", "leg", "up_lr", "up_ff", "cont_min%", "gaps", "lr_MB_in_min", "load")
prev_gaps = 0
table = []
prev = None
for r in rows:
    pb = prog.get(r["label"]) if r["label"] != "after" else None
    up_lr = sum(1 for c in calls if c[0] == "callbench" and pb and c in pb and pb[c]["up"] == "1") if pb else 0
    up_ff = sum(1 for c in calls if c[0] == "ffmpeg" and pb and c in pb and pb[c]["up"] == "1") if pb else 0
    conts = [rate(prog.get(prev), pb, c) for c in calls] if pb and prev else []
    conts = [x for x in conts if x is not None]
    gaps = sum(int(pb[c]["gaps"]) for c in calls if c in pb) if pb else 0
    gaps, prev_gaps = gaps - prev_gaps, (gaps if pb else prev_gaps)
    lr_in = [int(pb[c]["bytes_in"]) for c in calls if c[0] == "callbench" and c in pb] if pb else []
    table.append((r["label"], r["wall"], r["t"]) + tuple(mb(r[f"{p}_rss"]) for p in procs) +
                 tuple(r[f"{p}_fds"] for p in procs) +
                 (r["udp"], r["keys"], r["call_keys"], r["leg_keys"],
                  f"{up_lr}/{n_lr}" if pb else "-", f"{up_ff}/{n_ff}" if pb else "-",
                  f"{min(conts):.1f}" if conts else "-", str(gaps) if pb else "-",
                  f"{min(lr_in) / 1e6:.2f}" if lr_in else "-", r["load"]))
    if pb and r["label"] != "after":
        prev = r["label"]
    if r["label"] != "after" and pb:
        for c in calls:
            if c not in pb or pb[c]["up"] != "1" or pb[c].get("dead") == "1" or pb[c].get("byed") == "1":
                fails.append(f"{c[0]} call {c[1]} not up at sample {r['label']} (t={r['t']} s)")
by = {r["label"]: r for r in rows}
base, ref, end, after = by.get("base"), by.get("ref"), by.get("end"), by.get("after")
def delta(a, b, name):
    out = [name, "", ""]
    for p in procs:
        x, y = int(a[f"{p}_rss"]), int(b[f"{p}_rss"])
        out.append(f"{100.0 * (y - x) / x:+.1f}%" if x > 0 and y >= 0 else "-")
    for k in [f"{p}_fds" for p in procs] + ["udp", "keys", "call_keys", "leg_keys"]:
        out.append(f"{int(b[k]) - int(a[k]):+d}")
    return tuple(out) + ("",) * (len(hdr) - len(out))
if ref and end:
    table.append(delta(ref, end, "d_end-ref"))
if base and after:
    table.append(delta(base, after, "d_after-base"))
w = [max(len(str(x)) for x in col) for col in zip(hdr, *table)]
fmt = lambda row: "  ".join(str(x).rjust(n) for x, n in zip(row, w))
print(fmt(hdr))
for row in table:
    print(fmt(row))
print("(rss in MB (VmRSS); fds: open fds; udp: UDP sockets bound in the workers' RTP range; keys: Redis DBSIZE,")
print(" call/leg: rs:v1:call:* / rs:v1:leg:* records; up_lr/up_ff: calls up at the librtmp/ffmpeg clients;")
print(" cont_min%: the lowest per-call continuity over the interval since the row before (frames received /")
print(" 50 per s); gaps: pauses > 100 ms between received frames in that interval, all calls together;")
print(" lr_MB_in_min: bytes the least-fed librtmp client had received; d_end-ref: RSS growth from the")
print(" reference sample to the end (judged: <= 10 %); d_after-base: after the hang-up against the idle stack")
print(" before the calls (fds, udp, keys judged: +0; RSS there is not judged: freed memory stays mapped))")
print(f"Redis keys by prefix: base {base_keys}")
print(f"                      after {after_keys}")

# per call: from the reference sample (the first after the warm-up) to the end
print()
print("per call, reference sample -> end (gaps: pauses > 100 ms in that span; max_gap_ms: the longest")
print("pause of the whole call; bytes_in: all the call's connection received; acks: librtmp's")
print("Acknowledgements, one per window/10 bytes received: bytes_acked / (window / 10)):")
print(f"  {'client':9} {'call':>4} {'rx_frames':>9} {'expected':>9} {'cont%':>6} {'gaps':>5} {'max_gap_ms':>10} {'bytes_in':>11} {'bytes_acked':>11} {'acks':>5}  notes")
pr, pe = prog.get("ref"), prog.get("end")
for c in calls:
    a, b = (pr or {}).get(c), (pe or {}).get(c)
    if not a or not b:
        print(f"  {c[0]:9} {c[1]:4d} (no progress at the reference or the end)")
        fails.append(f"{c[0]} call {c[1]}: no progress figures")
        continue
    dt = float(b["t"]) - float(a["t"])
    rx = int(b["rx"]) - int(a["rx"])
    cont = 100.0 * rx / (dt * 50) if dt > 0 else 0
    gaps = int(b["gaps"]) - int(a["gaps"])
    if c[0] == "ffmpeg":
        acked, acks, notes = "-", "-", f"ts_gaps={b.get('ts_gaps')} (payload bytes)"
    else:
        win = int(b.get("window", 0))
        acked = b.get("bytes_acked", "-")
        acks = str(int(int(acked) / (win / 10))) if win > 0 and acked != "-" else "-"
        notes = f"window={win}"
    print(f"  {c[0]:9} {c[1]:4d} {rx:9d} {dt * 50:9.0f} {cont:6.2f} {gaps:5d} {b['max_gap_ms']:>10} {int(b['bytes_in']):11d} {acked:>11} {acks:>5}  {notes}")
    if cont < 99.0:
        fails.append(f"{c[0]} call {c[1]}: continuity {cont:.2f} % < 99 %")
if cb:
    print(f"callbench: calls_up={cb.get('calls_up')}/{cb.get('calls')} setup_failed={cb.get('setup_failed')} "
          f"calls_lost={cb.get('calls_lost')} byed={cb.get('byed')} loss_pct={cb.get('loss_pct')} "
          f"window_s={cb.get('window_s')} bye_failed={cb.get('bye_failed')}")
    for k in ("setup_failed", "connect_failed", "calls_lost", "byed", "bye_failed"):
        if cb.get(k, "0") != "0":
            fails.append(f"callbench {k}={cb[k]}")
    if cb.get("calls_up") != str(n_lr):
        fails.append(f"callbench: {cb.get('calls_up')} of {n_lr} calls up")
elif n_lr:
    fails.append("callbench gave no RESULT line")

# bounds on the stack
if ref and end:
    for p in procs:
        x, y = int(ref[f"{p}_rss"]), int(end[f"{p}_rss"])
        if x <= 0 or y <= 0:
            fails.append(f"{p}: gone (RSS unreadable)")
        elif y > x * 1.10:
            fails.append(f"{p}: RSS grew {100.0 * (y - x) / x:.1f} % from the reference ({x} kB -> {y} kB; bound 10 %)")
else:
    fails.append("no reference or end sample")
if base and after:
    for k in [f"{p}_fds" for p in procs] + ["udp", "keys"]:
        if base[k] != after[k]:
            fails.append(f"{k}: {after[k]} {settle_s} s after the hang-up, {base[k]} before the calls")
    if after["restarts"] != "0":
        fails.append(f"run.sh restarted a daemon {after['restarts']} time(s)")
print()
for f in fails:
    print(f"  FAIL: {f}")
print(("soak: FAIL (" + str(len(fails)) + " bound(s) broken)") if fails else
      "soak: PASS (RSS within 10 % of the reference, fds/ports/keys back to base, every call up throughout, continuity >= 99 %)")
sys.exit(1 if fails else 0)
EOF
exit "$rc"
}
main "$@"
