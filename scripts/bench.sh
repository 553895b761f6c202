#!/usr/bin/env bash
# make bench: benchmarks that print figures (never pass/fail).
#
# echo fan-out: N ffmpeg publishers send Speex (pre-encoded, -c copy, real-time pacing) to
# echo/s<i>, each with one ffmpeg player; the signaler's CPU time over a steady window is read from
# /proc and divided by streams and by messages. Sizes: BENCH_STREAMS (default "10 50 100"),
# BENCH_SECONDS (default 10).
#
# Sections: echo (above), worker (mediaworker legs, below), video (one H.264 call through the
# worker's video path: CPU per call at 720p30 2 Mb/s, capacity, delay per picture), rtpengine (the same media load through
# rtpengine, the peer we measure against, and ours against it), curve (the CPU cost of CURVE on the
# media channel: transcoded legs with CURVE and with ZMQ_INSECURE=1, side by side), calls (calls
# end to end through the sip app, below), cluster (calls per worker as workers go 1 -> 2,
# failover gap over repeated kills; below). BENCH_ONLY="calls" (or any space-separated list of
# them) runs only those; by default all run.
#
# ZeroMQ is authenticated as in production: a key set made here with relayctl keygen, the
# signaler's side exported (the signaler, wdrive), the workers' given by start_worker.
set -u
BUILD=${BUILD:-build}
STREAMS=${BENCH_STREAMS:-10 50 100}
SECS=${BENCH_SECONDS:-10}
tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	uncap_all
	if [[ ${BENCH_KEEP:-0} == 1 ]]; then echo "(kept: $tmp)"; else rm -rf "$tmp"; fi
}
trap cleanup EXIT INT TERM
# The binaries run from a copy: a rebuild of the tree during the run (the tree is shared) would
# otherwise swap them midway, or make an exec fail on a half-linked file.
BUILD_SRC=$BUILD
mkdir -p "$tmp/build/tools"
for b in signaler mediaworker relayctl tools/callbench tools/wdrive tools/bench_codec tools/bench_video tools/rtpe_drive; do
	for _ in $(seq 10); do # a linker at work leaves the file without its x bit
		[[ -x $BUILD_SRC/$b ]] && cp "$BUILD_SRC/$b" "$tmp/build/$b" && break
		[[ -e $BUILD_SRC/$b ]] || break
		sleep 1
	done
done
BUILD=$tmp/build

keys=$tmp/keys
mkdir -p "$keys"
"$BUILD/relayctl" keygen --dir "$keys" signaler >/dev/null &&
	"$BUILD/relayctl" keygen --dir "$keys" worker >/dev/null || { echo "bench: relayctl keygen failed"; exit 1; }
export CURVE_SECRET_KEY_FILE=$keys/signaler.key CURVE_ALLOWED_KEYS_FILE=$keys/worker.pub
WORKER_KEYS=(CURVE_SECRET_KEY_FILE="$keys/worker.key" CURVE_ALLOWED_KEYS_FILE="$keys/signaler.pub")

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
msgs_total() { grep 'stats: connections=' "$1" | tail -1 | sed -E 's/.*msgs_in=([0-9]+) msgs_out=([0-9]+).*/\1 \2/' | awk '{print $1 + $2}'; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
user_ticks() { awk '{print $14}' "/proc/$1/stat"; }
# want SECTION: true when SECTION is to run (BENCH_ONLY unset, or it names SECTION).
want() { [[ -z ${BENCH_ONLY:-} || " $BENCH_ONLY " == *" $1 "* ]]; }
# stop_all: ends every process started so far (SIGTERM; SIGKILL what is left after 5 s).
stop_all() {
	local p i alive
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	for i in $(seq 50); do
		alive=0
		for p in "${pids[@]}"; do kill -0 "$p" 2>/dev/null && alive=1; done
		((alive)) || break
		sleep 0.1
	done
	for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
	wait 2>/dev/null
	pids=()
	uncap_all
}
# cap_cpu PID PCT: limits PID to PCT % of one core with a CPU cgroup of its own (v1 cfs quota or
# v2 cpu.max, 20 ms periods so a throttled worker waits at most a few ms at a time); the cgroup is
# removed by uncap_all. False (with CAP_WHY set) where no CPU controller is writable here.
cgroups=()
cap_cpu() {
	local pid=$1 pct=$2 g
	if [[ -w /sys/fs/cgroup/cpu && -e /sys/fs/cgroup/cpu/cpu.cfs_quota_us ]]; then
		g=/sys/fs/cgroup/cpu/rtmp2sip-bench-$$-$pid
		mkdir -p "$g" 2>/dev/null && echo 20000 >"$g/cpu.cfs_period_us" &&
			echo $((pct * 200)) >"$g/cpu.cfs_quota_us" && echo "$pid" >"$g/cgroup.procs" &&
			{ cgroups+=("$g"); return 0; }
	elif grep -qw cpu /sys/fs/cgroup/cgroup.subtree_control 2>/dev/null; then
		g=/sys/fs/cgroup/rtmp2sip-bench-$$-$pid
		mkdir -p "$g" 2>/dev/null && echo "$((pct * 200)) 20000" >"$g/cpu.max" &&
			echo "$pid" >"$g/cgroup.procs" && { cgroups+=("$g"); return 0; }
	fi
	[[ -n ${g:-} ]] && rmdir "$g" 2>/dev/null
	CAP_WHY="no writable CPU cgroup controller (needs root and cgroup v1 cpu or v2 cpu.max)"
	return 1
}
uncap_all() {
	local g
	for g in "${cgroups[@]}"; do rmdir "$g" 2>/dev/null; done
	cgroups=()
}
# free_udp_pair [FROM]: an even UDP port P >= FROM (50000) with P + 2 free too (SIPp's RTP echo
# uses both).
free_udp_pair() {
	python3 -c 'import socket, sys
for p in range(int(sys.argv[1]), 60000, 4):
    try:
        a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); a.bind(("127.0.0.1", p))
        b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); b.bind(("127.0.0.1", p + 2))
        print(p); break
    except OSError:
        pass' "${1:-50000}"
}
# kv FILE KEY: the value of KEY in FILE's RESULT line.
kv() { grep '^RESULT' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1; }
# start_redis LOG: a private redis-server; sets rport.
start_redis() {
	rport=$(free_port)
	redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no >"$1" 2>&1 &
	pids+=($!)
	for _ in $(seq 50); do redis-cli -p "$rport" ping >/dev/null 2>&1 && return 0; sleep 0.1; done
	return 1
}
# start_worker ID PORT_MIN PORT_MAX LOG: a mediaworker on Redis $rport, ready; sets W_PID, W_EP
# ("ctl,media" as wdrive takes it) and W_METRICS (its metrics port). False when it did not
# become ready within 5 s.
start_worker() {
	W_METRICS=$(free_port)
	env "${WORKER_KEYS[@]}" REDIS_PORT="$rport" WORKER_ID="$1" LOG_LEVEL=info RTP_PORT_MIN="$2" \
		RTP_PORT_MAX="$3" METRICS_PORT="$W_METRICS" "$BUILD/mediaworker" >"$4" 2>&1 &
	W_PID=$!
	pids+=("$W_PID")
	for _ in $(seq 50); do grep -q 'mediaworker ready' "$4" 2>/dev/null && break; sleep 0.1; done
	W_EP="$(grep -o 'ctl=[^ ]*' "$4" 2>/dev/null | head -1 | cut -d= -f2),$(grep -o 'media=[^ ]*' "$4" 2>/dev/null | head -1 | cut -d= -f2)"
	[[ $W_EP == tcp://*,tcp://* ]]
}
# start_uas LOG [FROM]: SIPp answering every INVITE and echoing RTP (on a port from FROM); sets
# uas, uas_port (SIP) and echo_port (RTP).
start_uas() {
	uas_port=$(free_port)
	echo_port=$(free_udp_pair "${2:-50000}")
	sipp -sn uas -p "$uas_port" -i 127.0.0.1 -nostdin -rtp_echo -mp "$echo_port" >"$1" 2>&1 &
	uas=$!
	pids+=("$uas")
}
# start_signaler LOG: a signaler (sip app) on Redis $rport; sets sig and port (RTMP) once the
# RTMP port accepts.
start_signaler() {
	port=$(free_port)
	# The load comes from one address: the per-address connection, handshake and call limits are
	# lifted, and callbench's clients call without registering (SIP_ANONYMOUS_CALLS).
	REDIS_PORT=$rport RTMP_PORT=$port RTMP_BIND=127.0.0.1 SIP_PORT=$(free_port) SIGNALER_ID=bench \
		LOG_LEVEL=info RTMP_MAX_CONN_PER_IP=100000 RTMP_MAX_HANDSHAKES=100000 \
		RTMP_MAX_HANDSHAKES_PER_IP=100000 SIP_ANONYMOUS_CALLS=1 CALL_AUTH=none \
		CALL_MAX_ACTIVE=100000 CALL_MAX_ACTIVE_PER_CLIENT=100000 \
		CALL_ATTEMPTS_PER_MINUTE=1000000 CALL_ATTEMPTS_PER_MINUTE_PER_CLIENT=1000000 \
		"$BUILD/signaler" >"$1" 2>&1 &
	sig=$!
	pids+=("$sig")
	for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
}
# calls_stack N TAG [UAS]: what callbench needs - Redis, N workers, a signaler, UAS SIPp UASs
# (default 1; invites take them in turn) (logs $tmp/TAG_*.log). Sets cw (worker pids), cm (their
# metrics ports), cb and common (callbench's command and its common options, a --pid per
# process) and c_names, c_pids, c_logs (one per process, for all_alive; the UASs are sipp, or
# sipp1.. when more than one).
# False (after saying which process is gone) when one did not start.
calls_stack() {
	local n=$1 t=$2 nu=${3:-1} i ok=0 targets=() name
	start_redis "$tmp/${t}_redis.log" || ok=1
	cw=() cm=()
	c_names=(signaler) c_pids=() c_logs=("$tmp/${t}_sig.log")
	for ((i = 1; i <= n; i++)); do
		start_worker "call$i" $((40000 + (i - 1) * 4000)) $((43999 + (i - 1) * 4000)) "$tmp/${t}_w$i.log" || ok=1
		cw+=("$W_PID")
		cm+=("$W_METRICS")
		c_names+=("worker$i")
		c_logs+=("$tmp/${t}_w$i.log")
	done
	start_signaler "$tmp/${t}_sig.log"
	c_pids=("$sig" "${cw[@]}")
	for ((i = 1; i <= nu; i++)); do
		start_uas "$tmp/${t}_sipp$i.log" $((50000 + (i - 1) * 200))
		name=sipp
		((nu > 1)) && name=sipp$i
		c_names+=("$name")
		c_pids+=("$uas")
		c_logs+=("$tmp/${t}_sipp$i.log")
		targets+=(--target "sip:svc@127.0.0.1:$uas_port")
	done
	sleep 1.5 # the signaler finds the workers through Redis within a second
	cb=("$BUILD/tools/callbench")
	common=(--url "rtmp://127.0.0.1:$port/sip" "${targets[@]}")
	for i in "${!c_names[@]}"; do common+=(--pid "${c_names[i]}=${c_pids[i]}"); done
	all_alive || return 1
	((ok == 0)) || echo "  Redis or a worker did not become ready within 5 s"
	return $ok
}
# all_alive: false (after saying which, with the end of its log) when a process of calls_stack
# is gone.
all_alive() {
	local i ok=0
	for i in "${!c_pids[@]}"; do
		kill -0 "${c_pids[i]}" 2>/dev/null && continue
		echo "  ${c_names[i]} (pid ${c_pids[i]}) is gone; the end of its log:"
		tail -n 5 "${c_logs[i]}" | cut -c1-200 | sed 's/^/  | /'
		ok=1
	done
	return $ok
}
# warm_up FILE: one client, one second of set-ups through calls_stack (checks the chain); false
# when no call could be set up (then says why).
warm_up() {
	"${cb[@]}" setup "${common[@]}" --clients 1 --seconds 1 >"$1" 2>&1
	[[ -n $(kv "$1" setups) && $(kv "$1" setups) != 0 ]] && return 0
	failures "$1"
	grep -v '^RESULT\|^FAILURE' "$1" | tail -3 | sed 's/^/  /'
	return 1
}
# hold FILE CALLS SECONDS CODEC: callbench hold through calls_stack (stderr to FILE.err); false
# (after showing the end of its stderr) when it gave no result.
hold() {
	timeout $(($2 / 50 + $3 + 120)) "${cb[@]}" hold "${common[@]}" --calls "$2" --seconds "$3" \
		--codec "$4" >"$1" 2>"$1.err"
	local rc=$?
	[[ -n $(kv "$1" loss_pct) ]] && return 0
	echo "  callbench hold failed (exit $rc):"
	tail -5 "$1.err" | sed 's/^/  | /'
	return 1
}
# cpu_sum FILE NAME_RE: the CPU (% of one core) of the processes of FILE's RESULT line whose
# name matches NAME_RE (an awk regular expression), together; -1 (unreadable) counts as 0.
cpu_sum() {
	grep '^RESULT' "$1" | tr ' ' '\n' |
		awk -F= -v re="^cpu_$2_pct=" '$0 ~ re && $2 > 0 { s += $2 } END { print s + 0 }'
}
# cpu_table FILE UNIT DIVISOR: one row per process; UNIT column = cpu% * 1e4 / DIVISOR.
cpu_table() {
	printf '  %-10s %12s %14s\n' process cpu_%_1core "$2"
	for p in "${c_names[@]}" callbench; do
		kv "$1" "cpu_${p}_pct" | awk -v p="$p" -v d="$3" \
			'{ printf "  %-10s %12.1f %14.1f\n", p, $1, (d > 0 && $1 >= 0 ? $1 * 1e4 / d : 0) }'
	done
}
# udp_drops PID: the datagrams dropped so far on PID's UDP sockets (full receive buffers).
udp_drops() {
	local inodes
	inodes=$(find "/proc/$1/fd" -lname 'socket:*' -printf '%l\n' 2>/dev/null | tr -dc '0-9\n' | tr '\n' ' ')
	awk -v l=" $inodes " 'FNR > 1 && index(l, " " $10 " ") { s += $NF } END { print s + 0 }' \
		/proc/net/udp /proc/net/udp6 2>/dev/null
}
# media_frames PORT: a worker's counters (its /metrics), in this order: media frames from the
# signalers, to them; RTP packets in, out; RTP packets behind the sequence (dropped); frames
# concealed; RTP send errors; (unused); ZeroMQ sends dropped.
media_frames() {
	curl -s --max-time 2 "http://127.0.0.1:$1/metrics" | awk '
		$1 ~ /media_frames_total\{direction="from_signaler"\}/ { v[1] = $2 }
		$1 ~ /media_frames_total\{direction="to_signaler"\}/ { v[2] = $2 }
		$1 ~ /rtp_packets_total\{direction="in"\}/ { v[3] = $2 }
		$1 ~ /rtp_packets_total\{direction="out"\}/ { v[4] = $2 }
		$1 ~ /_worker_rtp_late_total$/ { v[5] = $2 }
		$1 ~ /_worker_rtp_concealed_total$/ { v[6] = $2 }
		$1 ~ /_worker_rtp_send_errors_total$/ { v[7] = $2 }
		$1 ~ /_worker_zmq_send_drops_total$/ { v[9] = $2 }
		END { for (i = 1; i <= 9; i++) printf "%d ", v[i]; print "" }'
}
# busy_ticks: the CPU time the whole machine has spent busy so far, in ticks.
busy_ticks() { awk '$1 == "cpu" { print $2 + $3 + $4 + $7 + $8 + $9 }' /proc/stat; }
# failures FILE: the FAILURE lines, indented, at most 8.
failures() { grep '^FAILURE' "$1" | head -8 | sed 's/^/  /'; }

hz=$(getconf CLK_TCK)
if want echo; then
	ffmpeg -nostdin -loglevel error -f lavfi -i sine=frequency=1000:sample_rate=16000:duration=120 \
		-c:a libspeex -ac 1 -ar 16000 -f flv "$tmp/tone.flv" || { echo "bench: cannot make the Speex source"; exit 1; }

	echo "== echo app: signaler CPU per stream (Speex 16 kHz, 1 publisher + 1 player per stream) =="
	printf '%8s %10s %12s %12s %16s %12s\n' streams msgs/s cpu_%_1core user_%_1core us_per_stream_s us_per_msg
	for n in $STREAMS; do
		port=$(free_port)
		RTMP_PORT=$port LOG_LEVEL=info RTMP_MAX_CONN_PER_IP=100000 RTMP_MAX_HANDSHAKES=100000 \
			RTMP_MAX_HANDSHAKES_PER_IP=100000 ECHO_APP=1 "$BUILD/signaler" \
			2>"$tmp/sig.log" &
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
fi

# == mediaworker: N legs at real-time 20 ms pacing, through 2 workers (one per core) ==
# tests/tools/wdrive creates the legs in pairs that send RTP to each other on one worker, feeds
# every leg one RTMP frame per 20 ms over ZeroMQ and counts what comes back; the codec-only cost
# of the same frames is measured in the same run (transcode_bench). Pass-through pairs carry a
# send time in their G.711 bytes, which gives their round trip. Among the legs, 10 probe legs
# have wdrive itself as their SIP peer (a UDP socket of its own): their one-way delay through
# the worker, each direction (DELAY lines, uncapped histograms: p50 ... max and the number of
# samples; LOSS lines: frames not back within 2 s). Loads: 10 legs, 50 %, 90 % and 100 % of
# BENCH_PT_CAPACITY (3000, pass-through PCMU <-> PCMU) and BENCH_TC_CAPACITY (450, transcoded
# Speex WB <-> PCMU); BENCH_PASSTHROUGH_LEGS / BENCH_TRANSCODE_LEGS give other loads. Each point
# streams 2 s of warm-up, BENCH_WORKER_SECONDS (BENCH_SECONDS) measured, 2 s of drain.
if want worker; then
	W_SECS=${BENCH_WORKER_SECONDS:-$SECS}
	PT_CAP=${BENCH_PT_CAPACITY:-3000}
	TC_CAP=${BENCH_TC_CAPACITY:-450}
	W_TRANSCODE=${BENCH_TRANSCODE_LEGS:-10 $((TC_CAP / 2)) $((TC_CAP * 9 / 10)) $TC_CAP}
	W_PASS=${BENCH_PASSTHROUGH_LEGS:-10 $((PT_CAP / 2)) $((PT_CAP * 9 / 10)) $PT_CAP}
	W_PROBES=10
	start_redis "$tmp/redis.log"
	wpids=()
	weps=()
	for i in 1 2; do
		start_worker "bench$i" $((20000 + (i - 1) * 8000)) $((27999 + (i - 1) * 8000)) "$tmp/w$i.log"
		wpids+=("$W_PID")
		weps+=("$W_EP")
	done
	echo
	echo "== mediaworker: legs through 2 workers at 20 ms pacing (targets: >= $TC_CAP transcoded, >= $PT_CAP pass-through, no loss, CPU/leg <= 1.2 x codec-only) =="
	printf '%6s %-12s %9s %12s %16s %14s %7s %9s %9s  %s\n' legs mode loss_% workers_cpu% us/leg/20ms codec_only_us ratio rt_p50 rt_p99 load
	: >"$tmp/worker_delay.txt"
	# run_w N MODE CAPACITY: one wdrive bench of N legs in all (probes included): its row, and
	# its DELAY/LOSS lines after a header into $tmp/worker_delay.txt.
	run_w() {
		local n=$1 mode=$2 cap=$3 extra=() np=$W_PROBES load f="$tmp/w_run.txt"
		[[ $mode == passthrough ]] && extra=(--rtmp-codec PCMU --sip-codecs PCMU/8000 --passthrough)
		[[ $mode == transcode ]] && extra=(--rtmp-codec speex --sip-codecs PCMU/8000)
		((np > n)) && np=$n
		(((n - np) % 2)) && np=$((np + 1)) # the load legs go in pairs: every leg is used
		load=$(awk -v n="$n" -v c="$cap" 'BEGIN { printf "%.0f%%_of_%d", (c > 0 ? n * 100 / c : 0), c }')
		timeout 600 "$BUILD/tools/wdrive" --worker "${weps[0]}" --worker "${weps[1]}" \
			--pid "${wpids[0]}" --pid "${wpids[1]}" --legs $((n - np)) --probe-legs "$np" \
			--seconds "$W_SECS" "${extra[@]}" bench >"$f" 2>"$f.err"
		if [[ -z $(kv "$f" loss_pct) ]]; then
			echo "  $n legs $mode: wdrive gave no result:"
			tail -3 "$f.err" | sed 's/^/  | /'
			return
		fi
		grep RESULT "$f" | tr ' ' '\n' | awk -F= -v n="$n" -v m="$mode" -v l="$load" '
			{ v[$1] = $2 }
			END { printf "%6d %-12s %9s %12s %16s %14s %7s %9s %9s  %s\n", n, m, v["loss_pct"],
				v["worker_cpu_pct"], v["cpu_us_per_leg_per_20ms"], v["codec_only_us_per_frame_pair"],
				v["ratio"], v["latency_p50_ms"], v["latency_p99_ms"], l }' | tee -a "$tmp/worker_bench.txt"
		{
			echo "  -- $mode, $n legs ($np probes) = $load (capacity $cap):"
			grep '^DELAY\|^LOSS' "$f" | sed 's/^/  /'
		} >>"$tmp/worker_delay.txt"
	}
	for n in $W_TRANSCODE; do run_w "$n" transcode "$TC_CAP"; done
	for n in $W_PASS; do run_w "$n" passthrough "$PT_CAP"; done
	echo "(workers_cpu%: both workers together, 200% = both cores; the load generator shares the cores."
	echo " us/leg/20ms: over every leg, probes included. rt_p50/rt_p99: the pass-through pairs' round trip"
	echo " in ms (frame in -> RTP to the other leg -> frame out), -1 when transcoded or no pairs."
	echo " Codec-only limits measured on this machine kind: Speex WB<->PCMU >= 81 us/frame pair (full"
	echo " 16 kHz path); the default narrowband core halves it - see docs/architecture.md.)"
	echo
	echo "== mediaworker: added one-way delay through the worker, per direction (probe legs; ms) =="
	cat "$tmp/worker_delay.txt"
	echo "(rtmp_to_rtp: frame handed to ZeroMQ -> its RTP packet at the probe's peer socket; rtp_to_rtmp:"
	echo " RTP packet sent -> its frame back over ZeroMQ (handled on arrival; held only behind a gap,"
	echo " one frame at most); one process's clock. Frames are named by an index in the G.711 bytes"
	echo " (pass-through) or by their RTP / RTMP timestamps (transcoded; resyncs: re-anchored after a"
	echo " marked gap or a clock jump; fallbacks: taken in arrival order). n: samples in the window;"
	echo " LOSS: window frames not back within 2 s; unmatched: frames back that named none"
	echo " (concealment, duplicates).)"
	# every codec's cost per 20 ms and every codec pair's transcoded legs per 2 cores
	"$BUILD/tools/bench_codec" 2>/dev/null | sed 's/^/  /'
fi

# == video: one H.264 call through the worker's video path ==
# tests/tools/bench_video runs a 720p30 2 Mb/s x264 stream (made here by ffmpeg: 20 s, a key
# frame every 2 s, B-frames) through the worker's video path both ways in one process over
# loopback (FLV -> RFC 6184 packets -> video leg -> socket -> video leg -> pictures -> FLV ->
# MEDIA pieces), plain and SRTP: CPU per second of video (= one call), the calls 2 cores could
# carry on that work alone, and the delay per picture (uncapped histogram, n pictures).
if want video; then
	echo
	echo "== video: one H.264 call (720p30, 2 Mb/s) through the worker's video path =="
	if ffmpeg -nostdin -hide_banner -loglevel error -y -f lavfi -i "testsrc2=s=1280x720:r=30" \
		-t 20 -c:v libx264 -preset veryfast -b:v 2M -maxrate 2M -bufsize 4M -g 60 \
		-pix_fmt yuv420p -f flv "$tmp/v720.flv" 2>"$tmp/v720.err"; then
		for mode in "" --srtp; do
			"$BUILD/tools/bench_video" "$tmp/v720.flv" $mode --repeat 3 | sed 's/^/  /'
		done
		echo "(cpu_us_per_video_s: the thread's CPU, sockets included, per second of video, one"
		echo " picture each way; calls_per_2_cores: 2 s of CPU / that, the worker's video path"
		echo " alone (ZeroMQ, the signaler's RTMP side and the network are not in it: at 2 Mb/s"
		echo " each way, 1,000 calls are 4 Gb/s). DELAY: per picture, handed to the packetizer ->"
		echo " its FLV message built on the other side; n pictures.)"
	else
		echo "  skipped: ffmpeg could not make the 720p source ($(tail -1 "$tmp/v720.err"))"
	fi
fi

# == rtpengine: the same media load through rtpengine, the peer we measure against ==
# tests/tools/rtpe_drive sets up the calls in a fresh rtpengine (userspace, in the foreground, on
# 127.0.0.1) with its ng protocol, sends one RTP packet per call each way every 20 ms and prints
# the delay rtpengine adds per direction (DELAY lines, delay_hist.h's format), loss, and the CPU
# of rtpengine and its own per call (CPU line) over BENCH_RTPE_SECONDS (BENCH_SECONDS) after 2 s
# of warm-up. Modes: passthrough (PCMU both sides) and transcode (Speex WB 16 kHz on side A,
# PCMU on side B, the offer's codec dict asking rtpengine to transcode). Loads: 10 calls, and 50 %
# and 90 % of our capacity (BENCH_PT_CAPACITY, 3000 legs; BENCH_TC_CAPACITY, 450 legs): one
# rtpengine call stands for one of our legs. CPU conditions as the worker section's: nothing
# capped, both cores, the load generator on the same cores; rtpengine gets BENCH_RTPE_THREADS (2)
# worker threads as our section gets 2 worker processes. Ports BENCH_RTPE_PORTS ("30000 53999":
# 4 per call, 2 x 2700 calls with room to spare). Then, when the worker section ran in this run
# too, ours against theirs (compare_paths).

# compare_paths FILE...: ours (path=worker) against rtpengine (path=rtpengine) from the DELAY and
# CPU lines found in FILEs (repeated lines count once): per mode and load, p50 and p99 of each
# direction and the ratio ours/theirs, then CPU per leg (per call) and its ratio. The directions
# pair as rtmp_to_rtp ~ a_to_b (toward SIP: Speex in, PCMU out when transcoding) and
# rtp_to_rtmp ~ b_to_a. A figure missing on either side prints n/a. Our CPU is read from a
# "CPU path=worker ..." line (us_per_leg_per_20ms or us_per_call_per_20ms), else from the worker
# section's table ($tmp/worker_bench.txt: legs mode loss cpu us/leg/20ms ...).
compare_paths() {
	cat "$@" 2>/dev/null | awk '
		function kv(k, i) { for (i = 1; i <= NF; i++) if (index($i, k "=") == 1) return substr($i, length(k) + 2); return "" }
		function us(i, v) { for (i = 1; i <= NF; i++) if ($i ~ /^us_per_(leg|call)_per_20ms=/) { v = $i; sub(/^[^=]*=/, "", v); return v }; return "" }
		function side(p) { return p == "worker" ? "ours" : p == "rtpengine" ? "theirs" : "" }
		function dirp(d) { return d == "a_to_b" ? "rtmp_to_rtp" : d == "b_to_a" ? "rtp_to_rtmp" : d }
		function fmt(v) { return v == "" ? "n/a" : v }
		function ratio(a, b) { return (a == "" || b == "" || b + 0 == 0) ? "n/a" : sprintf("%.2f", a / b) }
		{ sub(/^[ \t]+/, "") } # the worker section indents its lines
		seen[$0]++ { next }
		/^(DELAY|CPU) path=/ {
			s = side(kv("path")); m = kv("mode"); n = kv("legs")
			if (s == "" || m == "" || n == "") next
			load[m " " n] = 1
			if ($1 == "DELAY") { d = dirp(kv("dir")); p50[s, m, n, d] = kv("p50_ms"); p99[s, m, n, d] = kv("p99_ms") }
			else if (us() != "") cpu[s, m, n] = us()
			next
		}
		# the worker section table: legs mode loss_% workers_cpu% us/leg/20ms ...
		NF >= 5 && $1 ~ /^[0-9]+$/ && ($2 == "passthrough" || $2 == "transcode") && $5 ~ /^[0-9.]+$/ {
			load[$2 " " $1] = 1
			if (!(("ours", $2, $1) in cpu)) cpu["ours", $2, $1] = $5
		}
		END {
			k = 0
			for (l in load) keys[++k] = l
			for (i = 2; i <= k; i++) for (j = i; j > 1; j--) {   # by mode, then legs
				split(keys[j - 1], a, " "); split(keys[j], b, " ")
				if (a[1] < b[1] || (a[1] == b[1] && a[2] + 0 <= b[2] + 0)) break
				t = keys[j]; keys[j] = keys[j - 1]; keys[j - 1] = t
			}
			printf "%-12s %6s %-12s %9s %9s %6s %9s %9s %6s\n", "mode", "legs", "dir", "ours_p50", "rtpe_p50",
				"ratio", "ours_p99", "rtpe_p99", "ratio"
			for (i = 1; i <= k; i++) {
				split(keys[i], a, " "); m = a[1]; n = a[2]
				for (x = 1; x <= 2; x++) {
					d = x == 1 ? "rtmp_to_rtp" : "rtp_to_rtmp"
					o5 = p50["ours", m, n, d]; t5 = p50["theirs", m, n, d]
					o9 = p99["ours", m, n, d]; t9 = p99["theirs", m, n, d]
					printf "%-12s %6s %-12s %9s %9s %6s %9s %9s %6s\n", m, n, d, fmt(o5), fmt(t5), ratio(o5, t5),
						fmt(o9), fmt(t9), ratio(o9, t9)
				}
			}
			printf "%-12s %6s %22s %22s %6s\n", "mode", "legs", "ours_us/leg/20ms", "rtpe_us/call/20ms", "ratio"
			for (i = 1; i <= k; i++) {
				split(keys[i], a, " "); m = a[1]; n = a[2]
				printf "%-12s %6s %22s %22s %6s\n", m, n, fmt(cpu["ours", m, n]), fmt(cpu["theirs", m, n]),
					ratio(cpu["ours", m, n], cpu["theirs", m, n])
			}
		}'
}
if want rtpengine; then
	stop_all # the worker section's workers would share the cores
	echo
	if ! command -v rtpengine >/dev/null 2>&1; then
		echo "== rtpengine: skipped (not installed; make bench installs the Debian package rtpengine-daemon) =="
	elif [[ ! -x $BUILD/tools/rtpe_drive ]]; then
		echo "== rtpengine: skipped (needs $BUILD_SRC/tools/rtpe_drive) =="
	else
		R_SECS=${BENCH_RTPE_SECONDS:-$SECS}
		R_THREADS=${BENCH_RTPE_THREADS:-2}
		read -r R_PMIN R_PMAX <<<"${BENCH_RTPE_PORTS:-30000 53999}"
		R_PT=${BENCH_PT_CAPACITY:-3000}
		R_TC=${BENCH_TC_CAPACITY:-450}
		echo "== rtpengine $(rtpengine --version 2>&1 | sed -n 's/^Version: //p'): the same load through rtpengine (userspace, $R_THREADS worker threads, nothing capped, as our 2 workers); ${R_SECS} s at 20 ms pacing after 2 s of warm-up =="
		echo "   one rtpengine call (A <-> rtpengine <-> B, one packet each way per 20 ms) = one of our legs;"
		echo "   loads: 10, 50 % and 90 % of our capacity (pass-through $R_PT legs, transcoded $R_TC legs)"
		: >"$tmp/rtpe_lines.txt"
		# rtpe_run MODE CALLS: a fresh rtpengine, rtpe_drive through it; its lines on stdout and in
		# $tmp/rtpe_lines.txt.
		rtpe_run() {
			local mode=$1 n=$2 ng rp try f="$tmp/rtpe_$1_$2.txt" log="$tmp/rtpe_$1_$2.log"
			# --config-file=none: the package's /etc/rtpengine/rtpengine.conf (kernel table, more
			# listeners) stays out. The ng port is a free UDP port; the machine is shared, so a
			# start that lost it to someone else is tried again on another.
			for try in 1 2 3; do
				ng=$(python3 -c 'import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
				rtpengine --config-file=none --foreground --log-stderr --table=-1 \
					--interface=127.0.0.1 --listen-ng="127.0.0.1:$ng" --port-min="$R_PMIN" \
					--port-max="$R_PMAX" --num-threads="$R_THREADS" --delete-delay=0 >"$log" 2>&1 &
				rp=$!
				pids+=("$rp")
				for _ in $(seq 50); do
					grep -q 'Startup complete' "$log" 2>/dev/null && break
					kill -0 "$rp" 2>/dev/null || break
					sleep 0.1
				done
				kill -0 "$rp" 2>/dev/null && grep -q 'Startup complete' "$log" && break
			done
			if ! kill -0 "$rp" 2>/dev/null || ! grep -q 'Startup complete' "$log"; then
				echo "  $mode $n: rtpengine did not start: $(tail -n 2 "$log" | tr '\n' ' ' | cut -c1-200)"
				stop_all
				return
			fi
			timeout $((R_SECS + n / 100 + 90)) "$BUILD/tools/rtpe_drive" --ng "127.0.0.1:$ng" --pid "$rp" \
				--calls "$n" --seconds "$R_SECS" --mode "$mode" >"$f" 2>"$f.err"
			if grep -q '^RESULT' "$f"; then
				grep '^DELAY\|^CPU' "$f" | tee -a "$tmp/rtpe_lines.txt"
				grep '^RESULT' "$f" | tr ' ' '\n' | awk -F= '{ v[$1] = $2 } END {
					printf "  calls up %s of %s; loss a_to_b %s %%, b_to_a %s %%; window %s s nominal, %s s wall;",
						v["calls_up"], v["calls"], v["loss_a_to_b_pct"], v["loss_b_to_a_pct"], v["seconds"], v["wall_s"]
					printf " sends late up to %s ms\n", v["send_late_max_ms"] }'
			else
				echo "  $mode $n: rtpe_drive gave no result: $(tail -n 3 "$f.err" | tr '\n' ' ' | cut -c1-200)"
			fi
			stop_all
		}
		for n in 10 $((R_PT / 2)) $((R_PT * 9 / 10)); do rtpe_run passthrough "$n"; done
		for n in 10 $((R_TC / 2)) $((R_TC * 9 / 10)); do rtpe_run transcode "$n"; done
		echo "(DELAY: from the send of a packet to its arrival back at the tool's socket (kernel receive time),"
		echo " CLOCK_MONOTONIC, per direction: a_to_b = side A -> rtpengine -> side B, which is Speex -> PCMU when"
		echo " transcoding; every frame sent in the window counts, however late. Transcoded frames are matched by"
		echo " RTP timestamp from the first; a frame not back 5 s after the window counts as lost. CPU:"
		echo " us_per_call_per_20ms = rtpengine's CPU (user+system, /proc) over the window / the call periods it"
		echo " relayed in that time; tool_: the load generator's own, per period sent; pace_pct < 100: the"
		echo " generator fell behind 20 ms pacing (the machine is full) and offered less than the nominal load."
		echo " Transcoded, rtpengine sends each frame out when the next one comes in (about 20 ms; its log says"
		echo " \"1 frames left in the queue\" as each call ends).)"
		echo
		echo "== ours vs rtpengine (one rtpengine call = one of our legs; rtmp_to_rtp ~ rtpengine a_to_b, rtp_to_rtmp ~ b_to_a; ratio = ours / rtpengine) =="
		compare_paths "$tmp"/*.txt
	fi
fi

# == the cost of CURVE on the media channel ==
# The same transcoded legs (Speex WB <-> PCMU) through 2 fresh workers, with CURVE (every ZeroMQ
# message encrypted and authenticated both ways) and with ZMQ_INSECURE=1 on both ends, in
# alternation BENCH_CURVE_RUNS times (3; the medians are shown: the cost is small next to the
# noise of a shared machine); wdrive measures the workers' CPU and its own (it stands for the
# signaler's ZeroMQ side). Sizes: BENCH_CURVE_LEGS (default "100 300"), BENCH_CURVE_SECONDS (10).
# cv_run N MODE RUN: one wdrive bench of N legs, ZeroMQ MODE (curve or insecure), into
# $tmp/cv_N_MODE_RUN.txt.
cv_run() {
	local ins=0 cpids=() ceps=() i
	[[ $2 == insecure ]] && ins=1
	start_redis "$tmp/cv_redis.log"
	for i in 1 2; do
		if ! ZMQ_INSECURE=$ins start_worker "cv$i" $((36000 + (i - 1) * 2000)) \
			$((37999 + (i - 1) * 2000)) "$tmp/cv_w$i.$2.$3.log"; then
			echo "  ($2, run $3: worker cv$i did not start; the run is left out)"
			stop_all
			return
		fi
		cpids+=("$W_PID")
		ceps+=("$W_EP")
	done
	ZMQ_INSECURE=$ins timeout 600 "$BUILD/tools/wdrive" --worker "${ceps[0]}" --worker "${ceps[1]}" \
		--pid "${cpids[0]}" --pid "${cpids[1]}" --legs "$1" --seconds "$CV_SECS" \
		--rtmp-codec speex --sip-codecs PCMU/8000 bench >"$tmp/cv_$1_$2_$3.txt" 2>&1
	[[ -n $(kv "$tmp/cv_$1_$2_$3.txt" loss_pct) ]] || tail -3 "$tmp/cv_$1_$2_$3.txt" | sed 's/^/  | /'
	stop_all
}
# cv_median N MODE KEY: the median of KEY over the runs of N legs in MODE.
cv_median() {
	local f
	for f in "$tmp"/cv_"$1"_"$2"_*.txt; do kv "$f" "$3"; done | sort -g |
		awk '{ v[NR] = $1 } END { if (NR) print (NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2) }'
}
if want curve; then
	CV_SECS=${BENCH_CURVE_SECONDS:-10}
	CV_RUNS=${BENCH_CURVE_RUNS:-3}
	stop_all
	echo
	echo "== CURVE vs ZMQ_INSECURE=1: CPU per transcoded leg (Speex WB <-> PCMU, 2 workers, ${CV_SECS} s at 20 ms pacing, median of $CV_RUNS runs) =="
	printf '%6s %-9s %8s %13s %16s %13s %16s\n' legs zmq loss_% workers_cpu% us/leg/20ms \
		driver_cpu% drv_us/leg/20ms
	for n in ${BENCH_CURVE_LEGS:-100 300}; do
		for ((r = 1; r <= CV_RUNS; r++)); do
			cv_run "$n" curve "$r"
			cv_run "$n" insecure "$r"
		done
		for mode in curve insecure; do
			printf '%6s %-9s %8s %13s %16s %13s %16s\n' "$n" "$mode" "$(cv_median "$n" $mode loss_pct)" \
				"$(cv_median "$n" $mode worker_cpu_pct)" "$(cv_median "$n" $mode cpu_us_per_leg_per_20ms)" \
				"$(cv_median "$n" $mode driver_cpu_pct)" "$(cv_median "$n" $mode driver_us_per_leg_per_20ms)"
		done
		awk -v c="$(cv_median "$n" curve cpu_us_per_leg_per_20ms)" \
			-v i="$(cv_median "$n" insecure cpu_us_per_leg_per_20ms)" \
			-v dc="$(cv_median "$n" curve driver_us_per_leg_per_20ms)" \
			-v di="$(cv_median "$n" insecure driver_us_per_leg_per_20ms)" -v n="$n" 'BEGIN {
			if (c == "" || i == "" || i == 0) exit
			printf "%6s %-9s %8s %13s %16s %13s %16s\n", n, "CURVE +", "", "",
				sprintf("%+.2f (%+.1f%%)", c - i, (c - i) * 100 / i), "",
				(di > 0 ? sprintf("%+.2f (%+.0f%%)", dc - di, (dc - di) * 100 / di) : "") }'
	done
	echo "(us/leg/20ms: both workers' CPU per leg per 20 ms frame period; drv: wdrive's, the signaler's side of"
	echo " the channel. ZeroMQ carries one MEDIA_BATCH per worker per 20 ms each way, so CURVE costs per batch"
	echo " and per byte, not per message; the load generator shares the 2 cores with the workers)"
fi

# == calls end to end: RTMP clients -> signaler (sip app) -> SIP -> SIPp, media through 2 workers ==
# tests/tools/callbench is the client side (librtmp): `setup` loops invite -> accepted -> bye on
# BENCH_SETUP_CLIENTS connections for BENCH_SETUP_SECONDS; `hold` keeps BENCH_CALLS calls up with
# audio both ways at 20 ms pacing (SIPp echoes the RTP) and measures BENCH_CALL_SECONDS of them,
# once per codec of BENCH_CALL_CODECS (speex: the client sends Speex WB and the gateway
# transcodes to PCMU; pcmu: the client sends G.711, pass-through). callbench reads the CPU of every
# process from /proc over the measured period itself (--pid).
# Then the added one-way delay end to end, each direction: `hold --e2e` makes callbench the far
# end's media (a SIPp UAS on tests/integration/sipp/bench_uas_port.xml answers each call with the
# port of callbench's socket for it; callbench echoes the RTP) at 10 calls and at 50 % and 90 % of
# BENCH_E2E_CAPACITY (300), pass-through (G.711 u-law) and transcoded (Speex WB -> PCMU), for
# BENCH_E2E_SECONDS (BENCH_SECONDS) each: DELAY lines (path=e2e; legs = calls up), LOSS lines.
# e2e_delays: the end-to-end DELAY/LOSS lines on calls_stack's gateway, through a SIPp UAS of
# its own (bench_uas_port.xml: the SDP port is the one callbench puts in the Request-URI).
e2e_delays() {
	local cap=${BENCH_E2E_CAPACITY:-300} secs=${BENCH_E2E_SECONDS:-$SECS} codec n f e_port e_sipp
	local args=() loads
	loads=${BENCH_E2E_CALLS:-10 $((cap / 2)) $((cap * 9 / 10))}
	echo
	echo "== calls end to end: added one-way delay per direction (callbench is the far end's media; ${secs} s windows; ms) =="
	e_port=$(free_port)
	sipp -sf "$(dirname "$0")/../tests/integration/sipp/bench_uas_port.xml" -p "$e_port" -i 127.0.0.1 -nostdin \
		>"$tmp/c_e2e_sipp.log" 2>&1 &
	e_sipp=$!
	pids+=("$e_sipp")
	sleep 0.5
	args=(--url "rtmp://127.0.0.1:$port/sip" --target "sip:svc@127.0.0.1:$e_port" --pid "sipp=$e_sipp")
	for i in "${!c_names[@]}"; do
		[[ ${c_names[i]} == sipp* ]] || args+=(--pid "${c_names[i]}=${c_pids[i]}")
	done
	for codec in pcmu speex; do
		for n in $loads; do
			f="$tmp/c_e2e_${codec}_$n.txt"
			if ! kill -0 "$sig" 2>/dev/null || ! kill -0 "$e_sipp" 2>/dev/null; then
				echo "  the signaler or the e2e SIPp is gone: $(tail -n 2 "$tmp/c_e2e_sipp.log" | tr '\n' ' ' | cut -c1-200)"
				return
			fi
			timeout $((n / 50 + secs + 120)) "${cb[@]}" hold "${args[@]}" --calls "$n" --seconds "$secs" \
				--codec "$codec" --e2e >"$f" 2>"$f.err"
			awk -v n="$n" -v c="$cap" -v m="$codec" 'BEGIN {
				printf "  -- %s, %d calls = %.0f%% of %d (BENCH_E2E_CAPACITY):\n",
					(m == "pcmu" ? "pass-through G.711 u-law" : "Speex WB -> PCMU"), n, n * 100 / c, c }'
			if [[ -z $(kv "$f" loss_pct) ]]; then
				echo "  callbench hold --e2e gave no result:"
				tail -3 "$f.err" | sed 's/^/  | /'
				continue
			fi
			echo "  calls_up=$(kv "$f" calls_up) setup_failed=$(kv "$f" setup_failed) held-call loss_pct=$(kv "$f" loss_pct)"
			grep '^DELAY\|^LOSS' "$f" | sed 's/^/  /'
			failures "$f"
		done
	done
	echo "(one clock, callbench's: rtmp_to_rtp: RTMP publish of a frame -> its RTP packet at the call's"
	echo " socket; rtp_to_rtmp: that packet echoed -> the RTMP audio message at the player; round_trip:"
	echo " publish -> back at the player. Through the signaler, a worker and both ZeroMQ hops; callbench,"
	echo " SIPp and the gateway share the 2 cores. Frames are named by an index in the G.711 bytes, or"
	echo " (Speex) by RTP and RTMP timestamps; LOSS: window frames not back within 2 s.)"
}

if want calls; then
	C_CLIENTS=${BENCH_SETUP_CLIENTS:-32}
	C_SETUP_SECS=${BENCH_SETUP_SECONDS:-15}
	C_CALLS=${BENCH_CALLS:-300}
	C_SECS=${BENCH_CALL_SECONDS:-60}
	C_CODECS=${BENCH_CALL_CODECS:-speex}
	C_TARGET_RATE=300
	stop_all # the worker section's processes would share the cores
	echo
	if ! command -v sipp >/dev/null 2>&1 || [[ ! -x $BUILD/tools/callbench ]]; then
		echo "== calls end to end: skipped (needs sipp and $BUILD_SRC/tools/callbench) =="
	else
		# Warm-up, which also checks the chain: one client, one second.
		if ! calls_stack 2 c; then
			echo "== calls end to end: the gateway did not start; skipped =="
		elif ! warm_up "$tmp/c_warm.txt" >"$tmp/c_warm.why"; then
			echo "== calls end to end: no call could be set up; skipped =="
			cat "$tmp/c_warm.why"
		else
			echo "== calls end to end: set-up rate ($C_CLIENTS clients, ${C_SETUP_SECS} s, invite 'wideband ulaw' to a SIPp UAS; target >= $C_TARGET_RATE set-ups/s) =="
			timeout $((C_SETUP_SECS + 120)) "${cb[@]}" setup "${common[@]}" --clients "$C_CLIENTS" \
				--seconds "$C_SETUP_SECS" >"$tmp/c_setup.txt" 2>"$tmp/c_setup.err"
			rc=$?
			if [[ -n $(kv "$tmp/c_setup.txt" rate) ]]; then
				printf '%8s %8s %9s %7s %8s %8s %8s %8s %7s\n' clients setups setups/s target p50_ms p95_ms p99_ms max_ms failed
				rate=$(kv "$tmp/c_setup.txt" rate)
				printf '%8s %8s %9s %7s %8s %8s %8s %8s %7s\n' "$C_CLIENTS" "$(kv "$tmp/c_setup.txt" setups)" \
					"$rate" "$(awk -v r="$rate" -v t=$C_TARGET_RATE 'BEGIN { print (r >= t ? "met" : "MISSED") }')" \
					"$(kv "$tmp/c_setup.txt" p50_ms)" "$(kv "$tmp/c_setup.txt" p95_ms)" \
					"$(kv "$tmp/c_setup.txt" p99_ms)" "$(kv "$tmp/c_setup.txt" max_ms)" \
					"$(kv "$tmp/c_setup.txt" failed)"
				cpu_table "$tmp/c_setup.txt" us_per_setup "$rate"
				failures "$tmp/c_setup.txt"
			else
				echo "  callbench setup failed (exit $rc):"
				tail -5 "$tmp/c_setup.err" | sed 's/^/  | /'
			fi
			all_alive

			for codec in $C_CODECS; do
				echo
				if ! kill -0 "$sig" 2>/dev/null; then
					echo "== calls end to end: hold ($codec) skipped: the signaler is gone =="
					continue
				fi
				case $codec in
				pcmu) what="G.711 u-law from the client, pass-through PCMU" ;;
				*) what="Speex WB from the client, transcoded to PCMU" ;;
				esac
				echo "== calls end to end: $C_CALLS held calls, $what, SIPp echoes the RTP; ${C_SECS} s window =="
				hold "$tmp/c_hold.txt" "$C_CALLS" "$C_SECS" "$codec" || continue
				up=$(kv "$tmp/c_hold.txt" calls_up)
				printf '%7s %8s %13s %10s %10s %8s %7s %17s\n' calls calls_up setup_failed tx_frames rx_frames \
					loss_% silent send_late_max_ms
				printf '%7s %8s %13s %10s %10s %8s %7s %17s\n' "$C_CALLS" "$up" "$(kv "$tmp/c_hold.txt" setup_failed)" \
					"$(kv "$tmp/c_hold.txt" tx_frames)" "$(kv "$tmp/c_hold.txt" rx_frames)" \
					"$(kv "$tmp/c_hold.txt" loss_pct)" "$(kv "$tmp/c_hold.txt" silent_calls)" \
					"$(kv "$tmp/c_hold.txt" send_late_max_ms)"
				# us per call per 20 ms = cpu% / 100 * 0.02 s / calls * 1e6 = cpu% * 1e4 / (calls * 50)
				cpu_table "$tmp/c_hold.txt" us/call/20ms "$((up * 50))"
				awk -v w="$(cpu_sum "$tmp/c_hold.txt" 'worker[0-9]+')" -v n="$up" 'BEGIN {
					printf "  %-10s %12.1f %14.1f\n", "workers", w, (n > 0 ? w * 1e4 / (n * 50) : 0) }'
				mode=transcode
				[[ $codec == pcmu ]] && mode=passthrough
				if [[ -s $tmp/worker_bench.txt ]] && grep -q " $mode " "$tmp/worker_bench.txt"; then
					awk -v m="$mode" '$2 == m { s = s (s ? ", " : "") sprintf("%s us/leg/20ms at %s legs (loss %s%%)", $5, $1, $3) }
						END { print "  (mediaworker section, the same legs without the signaler: " s ")" }' "$tmp/worker_bench.txt"
				fi
				failures "$tmp/c_hold.txt"
				all_alive
			done
			echo "(cpu_%_1core over the measured period, 100% = one core; us_per_setup and us/call/20ms divide it by"
			echo " the set-ups per second or the calls; callbench and SIPp share the 2 cores with the gateway."
			echo " LOG_LEVEL=info as in production: the signaler logs each call.)"
			e2e_delays
		fi
	fi
fi

# == cluster: calls per worker as workers go 1 -> 2, and the failover gap over repeated kills ==
# Scaling: for 1 worker, then 2, the calls section's stack (calls_stack, fresh for each load) holds
# transcoded calls (Speex WB -> PCMU, callbench hold, SIPp echoing the RTP) for BENCH_SCALE_SECONDS
# (10), from BENCH_SCALE_START (100) calls per worker up in steps of BENCH_SCALE_STEP (25) per
# worker, until a call fails or loss reaches 1 % (at most BENCH_SCALE_MAX, 500, per worker;
# BENCH_SCALE_WORKERS picks the worker counts). Then the same search with each worker held to
# BENCH_SCALE_CAP (35) % of a core by a CPU cgroup (0: not run), from BENCH_SCALE_CAP_START (40)
# in steps of BENCH_SCALE_CAP_STEP (10): the workers are then the bottleneck, not the machine. Two SIPp UASs per worker share the calls: SIPp's RTP echo socket keeps
# its default receive buffer (~200 datagrams), which one 20 ms burst of 300 calls overflows
# whenever SIPp is scheduled late. Everything shares the machine's 2 cores; the summary says where
# the CPU went.
# Failover: BENCH_FAILOVER_RUNS rounds of wdrive's failover scenario (one leg with a tone toward
# SIPp's RTP echo, through the signaler's dispatcher code; the worker carrying it is SIGKILLed 2 s
# in and the other adopts the leg from Redis); wdrive reports the time without audio frames back
# from the workers across the move (gap_ms) and the longest silence from the kill on
# (silence_max_ms). The killed worker is restarted with its ID for the next round, and the rounds
# alternate which worker dies.
if want cluster; then
	S_START=${BENCH_SCALE_START:-100}
	S_STEP=${BENCH_SCALE_STEP:-25}
	S_MAX=${BENCH_SCALE_MAX:-500}
	S_SECS=${BENCH_SCALE_SECONDS:-10}
	C_CAP=${BENCH_SCALE_CAP:-35}
	C_START=${BENCH_SCALE_CAP_START:-40}
	C_STEP=${BENCH_SCALE_CAP_STEP:-10}
	F_RUNS=${BENCH_FAILOVER_RUNS:-10}
	F_TARGET_MS=1500
	stop_all # the calls section's processes would share the cores
	echo
	if ! command -v sipp >/dev/null 2>&1 || [[ ! -x $BUILD/tools/callbench ]]; then
		echo "== cluster: calls per worker: skipped (needs sipp and $BUILD_SRC/tools/callbench) =="
	else
		echo "== cluster: calls per worker as workers go 1 -> 2: the most transcoded calls (Speex WB -> PCMU, SIPp echoes the RTP) held ${S_SECS} s with loss < 1 % and every call up; from $S_START calls per worker in steps of $S_STEP per worker =="
		printf '%8s %6s %9s %8s %16s %12s %14s %14s %8s\n' workers calls calls_up loss_% workers_cpu_% per_worker_% us/call/20ms signaler_cpu_% machine_%
		# scale_phase NW CALLS: the row of NW workers holding CALLS calls and its details, the row
		# alone also in $tmp/sNW_row.txt; false when the stack did not start or a call failed.
		scale_phase() {
			local nw=$1 n=$2 f="$tmp/s$1_hold.txt" hp i b0 b1 t0 t1 drops="" d0=() legs=() m0=() m1=()
			rm -f "$tmp/s${nw}_row.txt"
			if ! calls_stack "$nw" "s$nw" $((2 * nw)); then
				echo "  $nw worker(s): the gateway did not start"
				return 1
			fi
			if ((S_CAP > 0)); then
				for i in "${cw[@]}"; do
					cap_cpu "$i" "$S_CAP" || { echo "  capped workers: skipped: $CAP_WHY"; return 2; }
				done
			fi
			if ! warm_up "$tmp/s${nw}_warm.txt" >"$tmp/s${nw}_warm.why"; then
				echo "  $nw worker(s): no call could be set up"
				sed 's/^/  /' "$tmp/s${nw}_warm.why"
				return 1
			fi
			# While callbench measures (its ramp at 50 calls/s, 2 s to settle, then the window):
			# the legs each worker carries (its Redis record), each worker's counters, the UDP
			# datagrams dropped on each process's sockets and the CPU of the whole machine.
			hold "$f" "$n" "$S_SECS" speex &
			hp=$!
			sleep $((n / 50 + 3))
			for i in "${!c_pids[@]}"; do d0[i]=$(udp_drops "${c_pids[i]}"); done
			for ((i = 1; i <= nw; i++)); do m0[i]=$(media_frames "${cm[i - 1]}"); done
			b0=$(busy_ticks) t0=$(date +%s.%N)
			sleep $((S_SECS / 2))
			for ((i = 1; i <= nw; i++)); do
				legs[i]=$(redis-cli -p "$rport" hget "rs:v1:worker:call$i" legs 2>/dev/null)
			done
			sleep $((S_SECS > 4 ? S_SECS - S_SECS / 2 - 2 : 0))
			b1=$(busy_ticks) t1=$(date +%s.%N)
			for ((i = 1; i <= nw; i++)); do m1[i]=$(media_frames "${cm[i - 1]}"); done
			for i in "${!c_pids[@]}"; do
				drops+="${drops:+, }${c_names[i]} $(($(udp_drops "${c_pids[i]}") - d0[i]))"
			done
			wait "$hp" || return 1

			awk -v nw="$nw" -v n="$n" -v up="$(kv "$f" calls_up)" -v loss="$(kv "$f" loss_pct)" \
				-v w="$(cpu_sum "$f" 'worker[0-9]+')" -v s="$(kv "$f" cpu_signaler_pct)" \
				-v b0="$b0" -v b1="$b1" -v t0="$t0" -v t1="$t1" -v hz="$hz" 'BEGIN {
				printf "%8d %6d %9d %8.2f %16.1f %12.1f %14.1f %14.1f %8.0f\n", nw, n, up, loss, w, w / nw,
					(up > 0 ? w * 1e4 / (up * 50) : 0), s, (b1 - b0) / hz / (t1 - t0) * 100 }' |
				tee "$tmp/s${nw}_row.txt"
			for ((i = 1; i <= nw; i++)); do
				awk -v i="$i" -v l="${legs[i]:-?}" -v c="$(kv "$f" "cpu_worker${i}_pct")" 'BEGIN {
					printf "%8s worker%d: %s legs, %.1f %% of one core, %.1f us/leg/20ms\n", "", i, l, c,
						(l > 0 ? c * 1e4 / (l * 50) : 0) }'
				echo "${m0[i]} ${m1[i]}" | awk '{ for (k = 1; k <= 9; k++) d[k] = $(k + 9) - $k
					printf "%8s   frames: %d from the signaler, %d back to it (%+.1f %%)\n", "", d[1], d[2],
						(d[1] > 0 ? (d[2] - d[1]) * 100 / d[1] : 0)
					printf "%8s   RTP: %d sent, %d received, %d late, %d frames concealed, %d send errors;", "",
						d[4], d[3], d[5], d[6], d[7]
					printf " %d ZeroMQ sends dropped\n", d[9] }'
			done
			# The rest of the machine: its busy time less what callbench measured for the stack.
			awk -v b0="$b0" -v b1="$b1" -v t0="$t0" -v t1="$t1" -v hz="$hz" -v ours="$(cpu_sum "$f" '.*')" \
				-v sp="$(cpu_sum "$f" 'sipp[0-9]*')" -v cb="$(kv "$f" cpu_callbench_pct)" -v d="$drops" 'BEGIN {
				o = (b1 - b0) / hz / (t1 - t0) * 100 - ours
				printf "%8s during the window: the SIPps %.0f %%, callbench %.0f %%, the rest of the machine", "", sp, cb
				printf " %.0f %% (200 %% = both cores);\n", (o > 0 ? o : 0)
				printf "%8s UDP datagrams dropped on full receive buffers: %s\n", "", d }'
			failures "$f"
			all_alive
		}
		# search START STEP: for 1 then 2 workers, more calls (from START per worker, STEP more
		# per worker each round) while every call is up and loss stays below 1 %; the best row of
		# NW workers in $tmp/best_NW.txt, then the summary.
		search() {
			local start=$1 step=$2 n ok
			for nw in ${BENCH_SCALE_WORKERS:-1 2}; do
				rm -f "$tmp/best_$nw.txt"
				for ((n = start * nw; n <= S_MAX * nw; n += step * nw)); do
					ok=0
					scale_phase "$nw" "$n" || ok=$?
					stop_all
					((ok == 2)) && return
					[[ -s $tmp/s${nw}_row.txt ]] || break
					awk -v n="$n" '{ exit !($3 == n && $4 < 1) }' "$tmp/s${nw}_row.txt" || ok=1
					((ok == 0)) || break
					cp "$tmp/s${nw}_row.txt" "$tmp/best_$nw.txt"
				done
			done
			if [[ -s $tmp/best_1.txt && -s $tmp/best_2.txt ]]; then
				awk -v cap="$S_CAP" 'FNR == 1 { n[NR] = $2; per[NR] = $7; w[NR] = $5; s[NR] = $8; m[NR] = $9 }
					END {
					printf "  most calls with loss < 1 %%: 1 worker %d, 2 workers %d: %.2f x (2.00 = linear)%s\n",
						n[1], n[2], (n[1] > 0 ? n[2] / n[1] : 0),
						(cap > 0 ? (n[1] > 0 && n[2] / n[1] >= 1.8 ? "; near-linear: yes" : "; near-linear: NO") : "")
					printf "  at those loads: workers %.0f %% and %.0f %% of a core, signaler %.0f %% and %.0f %%,", w[1], w[2], s[1], s[2]
					printf " whole machine %.0f %% and %.0f %% (200 %% = both cores)\n", m[1], m[2]
					printf "  worker CPU per call: %.1f us/20ms with 1 worker, %.1f with 2 (%.2f x; 1.00 = no cost to adding a worker)\n",
						per[1], per[2], (per[1] > 0 ? per[2] / per[1] : 0) }' "$tmp/best_1.txt" "$tmp/best_2.txt"
			else
				echo "  no load below 1 % loss found for 1 or 2 workers (from $start calls per worker)"
			fi
		}
		S_CAP=0
		search "$S_START" "$S_STEP"
		echo "(All processes - signaler, workers, SIPp, callbench - share the same 2 cores. With 1 worker the"
		echo " limit is that worker's one core; with 2 the whole machine is the limit (machine_% near 200),"
		echo " so the calls cannot double here: what shows whether adding a worker costs anything is the"
		echo " worker CPU per call, and where the cores go. workers_cpu_%: the workers together, 100% = one"
		echo " core; us/call/20ms divides it by the calls up; machine_%: the busy time of the whole machine."
		echo " frames: each worker's counters (/metrics) over the window, its round trip through SIPp's echo"
		echo " included; concealed ticks: the worker had nothing to play (a frame late or lost on its way);"
		echo " skipped ticks: the worker stalled over 300 ms. The first row over the limit is shown too.)"
		if ((C_CAP > 0)); then
			echo
			echo "== cluster: calls per worker with each worker held to $C_CAP % of a core (a CPU cgroup each): 1 -> 2 workers, from $C_START calls per worker in steps of $C_STEP; ${S_SECS} s windows =="
			printf '%8s %6s %9s %8s %16s %12s %14s %14s %8s\n' workers calls calls_up loss_% workers_cpu_% per_worker_% us/call/20ms signaler_cpu_% machine_%
			S_CAP=$C_CAP
			search "$C_START" "$C_STEP"
			S_CAP=0
			echo "(The same search with every worker limited to $C_CAP % of one core: a worker is then the"
			echo " bottleneck, as it would be with a core of its own, and the machine keeps room for the"
			echo " signaler, SIPp and callbench; the ratio of the two capacities is the scaling of the pool.)"
		fi
	fi

	echo
	if ! command -v sipp >/dev/null 2>&1 || [[ ! -x $BUILD/tools/wdrive ]]; then
		echo "== cluster: failover gap: skipped (needs sipp and $BUILD_SRC/tools/wdrive) =="
	else
		echo "== cluster: failover gap over $F_RUNS SIGKILLs (one leg, Speex WB -> PCMU toward SIPp's echo; target <= $F_TARGET_MS ms) =="
		start_redis "$tmp/f_redis.log"
		start_uas "$tmp/f_sipp.log"
		fpid=() fep=() flog=()
		for v in 0 1; do
			# disown: bash would otherwise report each SIGKILLed worker on stderr
			start_worker "fo$v" $((30000 + v * 2000)) $((31999 + v * 2000)) "$tmp/f_w$v.0.log" && disown "$W_PID"
			fpid[v]=$W_PID fep[v]=$W_EP flog[v]="$tmp/f_w$v.0.log"
		done
		sleep 0.5 # SIPp's echo binds
		printf '%5s %-8s %11s %11s %8s %16s %s\n' run killed noticed_ms adopted_ms gap_ms longest_silence result
		gaps=() silences=()
		for ((r = 1; r <= F_RUNS; r++)); do
			v=$(((r - 1) % 2)) s=$((r % 2))
			o="$tmp/f_run$r.out"
			timeout 30 "$BUILD/tools/wdrive" --worker "${fep[v]}" --worker "${fep[s]}" --kill-pid "${fpid[v]}" \
				--remote "127.0.0.1:$echo_port" --seconds 4 failover >"$o" 2>&1
			rc=$?
			noticed=$(sed -n 's/^worker down noticed \([0-9]*\) ms.*/\1/p' "$o")
			adopted=$(sed -n 's/.*(\([0-9]*\) ms after the kill)$/\1/p' "$o")
			gap=$(kv "$o" gap_ms) silence=$(kv "$o" silence_max_ms)
			if [[ $rc == 0 && -n $gap ]] && grep -q '^RESULT adopted=1 ssrc_same=1' "$o"; then
				res="adopted, same SSRC"
				gaps+=("$gap")
				silences+=("$silence")
			else
				res="FAILED (exit $rc): $(grep -v '^leg \|^RESULT' "$o" | tail -2 | tr '\n' ' ' | cut -c1-120)"
				gap=- silence=-
			fi
			printf '%5d %-8s %11s %11s %8s %16s %s\n' "$r" "fo$v" "${noticed:--}" "${adopted:--}" "$gap" \
				"${silence:--}" "$res"
			# The next round needs the killed worker back (and the survivor alive).
			kill -KILL "${fpid[v]}" 2>/dev/null
			for _ in $(seq 20); do kill -0 "${fpid[v]}" 2>/dev/null || break; sleep 0.05; done
			if ((r < F_RUNS)); then
				if ! start_worker "fo$v" $((30000 + v * 2000)) $((31999 + v * 2000)) "$tmp/f_w$v.$r.log"; then
					echo "  fo$v did not restart: $(tail -n 2 "$tmp/f_w$v.$r.log" | tr '\n' ' ')"
					break
				fi
				disown "$W_PID"
				fpid[v]=$W_PID fep[v]=$W_EP flog[v]="$tmp/f_w$v.$r.log"
				if ! kill -0 "${fpid[s]}" 2>/dev/null; then
					echo "  the surviving worker fo$s (pid ${fpid[s]}) is gone: $(tail -n 2 "${flog[s]}" | tr '\n' ' ' | cut -c1-200)"
					break
				fi
			fi
		done
		if ((${#gaps[@]})); then
			# summary NAME VALUES...: p50 (nearest rank), max and every value against the target.
			summary() {
				local name=$1
				shift
				printf '%s\n' "$@" | sort -n | awk -v t=$F_TARGET_MS -v runs="$F_RUNS" -v name="$name" '
					{ g[NR] = $1; all = all (all ? " " : "") $1 }
					END {
					printf "  %-16s p50 %4d  max %4d  over %d of %d runs, target %d: %-6s all (sorted): %s\n",
						name, g[int((NR + 1) / 2)], g[NR], NR, runs, t,
						(g[NR] <= t && NR == runs ? "met" : "MISSED"), all }'
			}
			summary gap_ms "${gaps[@]}"
			summary longest_silence "${silences[@]}"
		else
			echo "  no round completed"
		fi
		echo "(gap_ms: wdrive's time without audio frames back from the workers, from the last frame before the"
		echo " kill to the first after the adoption; longest_silence: the longest time without a frame from the"
		echo " kill to the end of the run (a stall of the loaded machine after the move counts too); all in ms."
		echo " noticed_ms: the dispatcher declares the worker down (its ZeroMQ connection closes; the 1.5 s"
		echo " heartbeat timeout is the fallback); adopted_ms: the survivor's answer to ADOPT_LEG; both after"
		echo " the kill. p50: the nearest-rank median.)"
		stop_all
	fi
fi
