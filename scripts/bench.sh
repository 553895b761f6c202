#!/usr/bin/env bash
# make bench: benchmarks that print figures (never pass/fail).
#
# echo fan-out: N ffmpeg publishers send Speex (pre-encoded, -c copy, real-time pacing) to
# echo/s<i>, each with one ffmpeg player; the signaler's CPU time over a steady window is read from
# /proc and divided by streams and by messages. Sizes: BENCH_STREAMS (default "10 50 100"),
# BENCH_SECONDS (default 10).
set -u
BUILD=${BUILD:-build}
STREAMS=${BENCH_STREAMS:-10 50 100}
SECS=${BENCH_SECONDS:-10}
tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
msgs_total() { grep 'stats: connections=' "$1" | tail -1 | sed -E 's/.*msgs_in=([0-9]+) msgs_out=([0-9]+).*/\1 \2/' | awk '{print $1 + $2}'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
user_ticks() { awk '{print $14}' "/proc/$1/stat"; }

hz=$(getconf CLK_TCK)
ffmpeg -nostdin -loglevel error -f lavfi -i sine=frequency=1000:sample_rate=16000:duration=120 \
	-c:a libspeex -ac 1 -ar 16000 -f flv "$tmp/tone.flv" || { echo "bench: cannot make the Speex source"; exit 1; }

echo "== echo app: signaler CPU per stream (Speex 16 kHz, 1 publisher + 1 player per stream) =="
printf '%8s %10s %12s %12s %16s %12s\n' streams msgs/s cpu_%_1core user_%_1core us_per_stream_s us_per_msg
for n in $STREAMS; do
	port=$(free_port)
	RTMP_PORT=$port LOG_LEVEL=info RTMP_MAX_CONN_PER_IP=100000 "$BUILD/signaler" 2>"$tmp/sig.log" &
	sig=$!
	pids=("$sig")
	for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
	for i in $(seq "$n"); do
		ffmpeg -nostdin -loglevel quiet -i "rtmp://127.0.0.1:$port/echo/s$i" -c copy -f null - &
		pids+=($!)
		ffmpeg -nostdin -loglevel quiet -re -i "$tmp/tone.flv" -c copy -f flv "rtmp://127.0.0.1:$port/echo/s$i" &
		pids+=($!)
	done
	sleep 5 # let every pair connect and settle
	kill -USR1 "$sig"; sleep 0.2
	m0=$(msgs_total "$tmp/sig.log")
	t0=$(cpu_ticks "$sig"); u0=$(user_ticks "$sig")
	sleep "$SECS"
	t1=$(cpu_ticks "$sig"); u1=$(user_ticks "$sig")
	kill -USR1 "$sig"; sleep 0.2
	m1=$(msgs_total "$tmp/sig.log")
	# Messages in and out as counted by the signaler itself (SIGUSR1 statistics line).
	awk -v t0="$t0" -v t1="$t1" -v u0="$u0" -v u1="$u1" -v hz="$hz" -v s="$SECS" -v n="$n" -v m0="$m0" -v m1="$m1" 'BEGIN {
		cpu = (t1 - t0) / hz / s;             # cores busy
		m = (m1 - m0) / s;
		printf "%8d %10d %12.2f %12.2f %16.1f %12.2f\n", n, m, cpu * 100, (u1 - u0) / hz / s * 100,
			cpu * 1e6 / n, (m > 0 ? cpu * 1e6 / m : 0) }'
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	pids=()
done
echo "(cpu_%_1core: signaler CPU (user+system) as a percentage of one core; user_%: the part spent in"
echo " our code and libc, the rest is the kernel's loopback TCP; the ffmpeg clients share the 2 cores)"

# == mediaworker: N legs at real-time 20 ms pacing, through 2 workers (one per core) ==
# tests/tools/wdrive creates the legs in pairs that send RTP to each other on one worker, feeds
# every leg one RTMP frame per 20 ms over ZeroMQ and counts what comes back; the codec-only cost
# of the same frames is measured in the same run (transcode_bench). Pass-through legs carry a
# send time in their G.711 bytes, which gives the added latency.
W_SECS=${BENCH_WORKER_SECONDS:-10}
W_TRANSCODE=${BENCH_TRANSCODE_LEGS:-100 450}
W_PASS=${BENCH_PASSTHROUGH_LEGS:-1000 3000}
rport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no >"$tmp/redis.log" 2>&1 &
pids+=($!)
sleep 0.3
wpids=()
weps=()
for i in 1 2; do
	REDIS_PORT=$rport WORKER_ID=bench$i LOG_LEVEL=info RTP_PORT_MIN=$((20000 + (i - 1) * 8000)) \
		RTP_PORT_MAX=$((27999 + (i - 1) * 8000)) "$BUILD/mediaworker" >"$tmp/w$i.log" 2>&1 &
	wpids+=($!)
	pids+=($!)
done
for i in 1 2; do
	for _ in $(seq 50); do grep -q 'mediaworker ready' "$tmp/w$i.log" && break; sleep 0.1; done
	weps+=("$(grep -o 'ctl=[^ ]*' "$tmp/w$i.log" | cut -d= -f2),$(grep -o 'media=[^ ]*' "$tmp/w$i.log" | cut -d= -f2)")
done
echo
echo "== mediaworker: legs through 2 workers at 20 ms pacing (targets: >= 450 transcoded, >= 3000 pass-through, no loss, CPU/leg <= 1.2 x codec-only) =="
printf '%6s %-12s %9s %12s %16s %14s %7s %9s %9s\n' legs mode loss_% workers_cpu% us/leg/20ms codec_only_us ratio lat_p50 lat_p99
run_w() {
	local n=$1 mode=$2 extra=()
	[[ $mode == passthrough ]] && extra=(--rtmp-codec PCMU --sip-codecs PCMU/8000 --passthrough)
	[[ $mode == transcode ]] && extra=(--rtmp-codec speex --sip-codecs PCMU/8000)
	timeout 600 "$BUILD/tools/wdrive" --worker "${weps[0]}" --worker "${weps[1]}" \
		--pid "${wpids[0]}" --pid "${wpids[1]}" --legs "$n" --seconds "$W_SECS" "${extra[@]}" bench |
		grep RESULT | tr ' ' '\n' | awk -F= -v n="$n" -v m="$mode" '
		{ v[$1] = $2 }
		END { printf "%6d %-12s %9s %12s %16s %14s %7s %9s %9s\n", n, m, v["loss_pct"],
			v["worker_cpu_pct"], v["cpu_us_per_leg_per_20ms"], v["codec_only_us_per_frame_pair"],
			v["ratio"], v["latency_p50_ms"], v["latency_p99_ms"] }'
}
for n in $W_TRANSCODE; do run_w "$n" transcode; done
for n in $W_PASS; do run_w "$n" passthrough; done
echo "(workers_cpu%: both workers together, 200% = both cores; the load generator shares the cores."
echo " Codec-only limits measured on this machine kind: Speex WB<->PCMU >= 81 us/frame pair (full"
echo " 16 kHz path); the default narrowband core halves it - see docs/architecture.md.)"
"$BUILD/tools/bench_codec" 2>/dev/null | sed 's/^/  /' | head -20
