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
msgs_total() { grep 'stats:' "$1" | tail -1 | sed -E 's/.*msgs_in=([0-9]+) msgs_out=([0-9]+).*/\1 \2/' | awk '{print $1 + $2}'; }
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
