#!/usr/bin/env bash
# make bench: benchmarks that print figures (never pass/fail).
#
# echo fan-out: N ffmpeg publishers send Speex (pre-encoded, -c copy, real-time pacing) to
# echo/s<i>, each with one ffmpeg player; the signaler's CPU time over a steady window is read from
# /proc and divided by streams and by messages. Sizes: BENCH_STREAMS (default "10 50 100"),
# BENCH_SECONDS (default 10).
#
# Sections: echo (above), worker (mediaworker legs, below), calls (calls end to end through the
# sip app, below). BENCH_ONLY="calls" (or any space-separated list of them) runs only those;
# by default all run.
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
# want SECTION: true when SECTION is to run (BENCH_ONLY unset, or it names SECTION).
want() { [[ -z ${BENCH_ONLY:-} || " $BENCH_ONLY " == *" $1 "* ]]; }

hz=$(getconf CLK_TCK)
if want echo; then
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
fi

# == mediaworker: N legs at real-time 20 ms pacing, through 2 workers (one per core) ==
# tests/tools/wdrive creates the legs in pairs that send RTP to each other on one worker, feeds
# every leg one RTMP frame per 20 ms over ZeroMQ and counts what comes back; the codec-only cost
# of the same frames is measured in the same run (transcode_bench). Pass-through legs carry a
# send time in their G.711 bytes, which gives the added latency.
if want worker; then
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
				v["ratio"], v["latency_p50_ms"], v["latency_p99_ms"] }' | tee -a "$tmp/worker_bench.txt"
	}
	for n in $W_TRANSCODE; do run_w "$n" transcode; done
	for n in $W_PASS; do run_w "$n" passthrough; done
	echo "(workers_cpu%: both workers together, 200% = both cores; the load generator shares the cores."
	echo " Codec-only limits measured on this machine kind: Speex WB<->PCMU >= 81 us/frame pair (full"
	echo " 16 kHz path); the default narrowband core halves it - see docs/architecture.md.)"
	"$BUILD/tools/bench_codec" 2>/dev/null | sed 's/^/  /' | head -20
fi

# == calls end to end: RTMP clients -> signaler (sip app) -> SIP -> SIPp, media through 2 workers ==
# tests/tools/callbench is the client side (librtmp): `setup` loops invite -> accepted -> bye on
# BENCH_SETUP_CLIENTS connections for BENCH_SETUP_SECONDS; `hold` keeps BENCH_CALLS calls up with
# audio both ways at 20 ms pacing (SIPp echoes the RTP) and measures BENCH_CALL_SECONDS of them,
# once per codec of BENCH_CALL_CODECS (speex: the client sends Speex WB and the gateway
# transcodes to PCMU; pcmu: the client sends G.711, pass-through). callbench reads the CPU of every
# process from /proc over the measured period itself (--pid).
if want calls; then
	C_CLIENTS=${BENCH_SETUP_CLIENTS:-32}
	C_SETUP_SECS=${BENCH_SETUP_SECONDS:-15}
	C_CALLS=${BENCH_CALLS:-200}
	C_SECS=${BENCH_CALL_SECONDS:-20}
	C_CODECS=${BENCH_CALL_CODECS:-speex}
	C_TARGET_RATE=300
	# The worker section's processes would share the cores: stop them first.
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
	wait 2>/dev/null
	pids=()
	echo
	if ! command -v sipp >/dev/null 2>&1 || [[ ! -x $BUILD/tools/callbench ]]; then
		echo "== calls end to end: skipped (needs sipp and $BUILD/tools/callbench) =="
	else
		# free_udp_pair: an even UDP port P with P + 2 free too (SIPp's RTP echo uses both).
		free_udp_pair() {
			python3 -c 'import socket
for p in range(50000, 60000, 4):
    try:
        a = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); a.bind(("127.0.0.1", p))
        b = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); b.bind(("127.0.0.1", p + 2))
        print(p); break
    except OSError:
        pass'
		}
		# kv FILE KEY: the value of KEY in FILE's RESULT line.
		kv() { grep '^RESULT' "$1" | tr ' ' '\n' | sed -n "s/^$2=//p" | head -1; }
		rport=$(free_port)
		redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no >"$tmp/c_redis.log" 2>&1 &
		pids+=($!)
		sleep 0.3
		cw=()
		for i in 1 2; do
			REDIS_PORT=$rport WORKER_ID=call$i LOG_LEVEL=info RTP_PORT_MIN=$((40000 + (i - 1) * 4000)) \
				RTP_PORT_MAX=$((43999 + (i - 1) * 4000)) "$BUILD/mediaworker" >"$tmp/c_w$i.log" 2>&1 &
			cw+=($!)
			pids+=($!)
		done
		for i in 1 2; do
			for _ in $(seq 50); do grep -q 'mediaworker ready' "$tmp/c_w$i.log" && break; sleep 0.1; done
		done
		port=$(free_port)
		sip_port=$(free_port)
		REDIS_PORT=$rport RTMP_PORT=$port RTMP_BIND=127.0.0.1 SIP_PORT=$sip_port SIGNALER_ID=bench \
			LOG_LEVEL=info RTMP_MAX_CONN_PER_IP=100000 "$BUILD/signaler" >"$tmp/c_sig.log" 2>&1 &
		sig=$!
		pids+=("$sig")
		for _ in $(seq 50); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
		uas_port=$(free_port)
		sipp -sn uas -p "$uas_port" -i 127.0.0.1 -nostdin -rtp_echo -mp "$(free_udp_pair)" \
			>"$tmp/c_sipp.log" 2>&1 &
		uas=$!
		pids+=("$uas")
		sleep 1.5 # the signaler finds the workers through Redis within a second
		cb=("$BUILD/tools/callbench")
		common=(--url "rtmp://127.0.0.1:$port/sip" --target "sip:svc@127.0.0.1:$uas_port"
			--pid "signaler=$sig" --pid "worker1=${cw[0]}" --pid "worker2=${cw[1]}" --pid "sipp=$uas")
		# cpu_table FILE UNIT DIVISOR: one row per process; UNIT column = cpu% * 1e4 / DIVISOR.
		cpu_table() {
			printf '  %-10s %12s %14s\n' process cpu_%_1core "$2"
			for p in signaler worker1 worker2 sipp callbench; do
				kv "$1" "cpu_${p}_pct" | awk -v p="$p" -v d="$3" \
					'{ printf "  %-10s %12.1f %14.1f\n", p, $1, (d > 0 && $1 >= 0 ? $1 * 1e4 / d : 0) }'
			done
		}
		# failures FILE: the FAILURE lines, indented, at most 8.
		failures() { grep '^FAILURE' "$1" | head -8 | sed 's/^/  /'; }
		# all_alive: false (after saying which, with the end of its log) when a process is gone.
		c_names=(signaler worker1 worker2 sipp)
		c_pids=("$sig" "${cw[0]}" "${cw[1]}" "$uas")
		c_logs=("$tmp/c_sig.log" "$tmp/c_w1.log" "$tmp/c_w2.log" "$tmp/c_sipp.log")
		all_alive() {
			local i ok=0
			for i in 0 1 2 3; do
				kill -0 "${c_pids[i]}" 2>/dev/null && continue
				echo "  ${c_names[i]} (pid ${c_pids[i]}) is gone; the end of its log:"
				tail -n 5 "${c_logs[i]}" | cut -c1-200 | sed 's/^/  | /'
				ok=1
			done
			return $ok
		}

		# Warm-up, which also checks the chain: one client, one second.
		"${cb[@]}" setup "${common[@]}" --clients 1 --seconds 1 >"$tmp/c_warm.txt" 2>&1
		if [[ $(kv "$tmp/c_warm.txt" setups) == 0 || -z $(kv "$tmp/c_warm.txt" setups) ]]; then
			echo "== calls end to end: no call could be set up; skipped =="
			failures "$tmp/c_warm.txt"
			grep -v '^RESULT\|^FAILURE' "$tmp/c_warm.txt" | tail -3 | sed 's/^/  /'
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
				timeout $((C_CALLS / 50 + C_SECS + 120)) "${cb[@]}" hold "${common[@]}" --calls "$C_CALLS" \
					--seconds "$C_SECS" --codec "$codec" >"$tmp/c_hold.txt" 2>"$tmp/c_hold.err"
				rc=$?
				if [[ -z $(kv "$tmp/c_hold.txt" loss_pct) ]]; then
					echo "  callbench hold failed (exit $rc):"
					tail -5 "$tmp/c_hold.err" | sed 's/^/  | /'
					continue
				fi
				up=$(kv "$tmp/c_hold.txt" calls_up)
				printf '%7s %8s %13s %10s %10s %8s %7s %17s\n' calls calls_up setup_failed tx_frames rx_frames \
					loss_% silent send_late_max_ms
				printf '%7s %8s %13s %10s %10s %8s %7s %17s\n' "$C_CALLS" "$up" "$(kv "$tmp/c_hold.txt" setup_failed)" \
					"$(kv "$tmp/c_hold.txt" tx_frames)" "$(kv "$tmp/c_hold.txt" rx_frames)" \
					"$(kv "$tmp/c_hold.txt" loss_pct)" "$(kv "$tmp/c_hold.txt" silent_calls)" \
					"$(kv "$tmp/c_hold.txt" send_late_max_ms)"
				# us per call per 20 ms = cpu% / 100 * 0.02 s / calls * 1e6 = cpu% * 1e4 / (calls * 50)
				cpu_table "$tmp/c_hold.txt" us/call/20ms "$((up * 50))"
				awk -v a="$(kv "$tmp/c_hold.txt" cpu_worker1_pct)" -v b="$(kv "$tmp/c_hold.txt" cpu_worker2_pct)" \
					-v n="$up" 'BEGIN { w = a + b
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
		fi
	fi
fi
