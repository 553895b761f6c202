#!/usr/bin/env bash
# test_cluster.sh - the gateway as a cluster of hosts: every daemon in a network namespace of its
# own (tests/integration/netns.sh), talking over a private bridge as separate machines would.
#
#   redis 10.R.0.2   sig1, sig2 (signalers)   w1, w2, w3 (mediaworkers)   peer (SIPp)   client
#
# Signalers bind RTMP and SIP on their own address (SIP_ADVERTISED_IP too) and find the workers
# through Redis only; workers bind RTP and both ZeroMQ endpoints on their own address (fixed ports,
# so a restarted worker is found at the same endpoints) and advertise those in Redis. The RTMP
# clients are sipphone (tests/tools/sipphone.c) in the client namespace: Speex tone out, the
# far end's audio recorded to a WAV; SIPp in the peer namespace answers and echoes RTP.
#
#   cluster_two_signalers  four calls at once, two through each signaler: the tone of each comes
#                          back (its own frequency); the leg records in Redis show both signalers
#                          as owners and both workers carrying legs
#   cluster_worker_joins   w1 and w2 stop gracefully (SIGTERM, no calls); w3 starts: both
#                          signalers find it through Redis within 10 s and the next three calls
#                          (two through sig1, one through sig2) land on it
#   cluster_failover       w1 and w2 come back; the worker carrying those three calls (w3, G.711
#                          clients: a Speex decoder that an adopted leg starts mid-stream can
#                          diverge on a steady tone, see docs/architecture.md) is
#                          killed with SIGKILL: every leg is adopted by a survivor (the leg records
#                          name w1/w2), SIPp gets a re-INVITE for each call whose SDP names the new
#                          worker, and the tone comes back: the longest time without audio at the
#                          RTMP client is measured on the wire (target 1.5 s; above 2.0 s fails)
#                          and each call's tone goes on (the last 3 s of its recording). For the
#                          diagnosis, the RTP reaching SIPp is recorded per SSRC too (the up
#                          direction alone: its gap and its tone before and after the move)
#   cluster_relayctl       during the failover, once the legs moved: relayctl --json calls lists
#                          the three calls, each with a survivor as worker_id and that worker's pid
#                          as worker_pid; relayctl --json workers shows w3 alive=false (within 12 s
#                          of the kill), w1 and w2 alive=true
#   cluster_no_leftovers   once the calls ended: no call or leg record, no call index entry, every
#                          worker record says 0 legs (the killed worker's record expired; its legs
#                          index may only wait for its documented 60 s expiry), and no RTP socket
#                          open in any worker namespace (ss saw the calls' sockets during case 1)
#   cluster_drain          a G.711 call on worker Wx (w1 or w2); relayctl drain Wx --deadline 2: the
#                          leg record names the other worker, SIPp gets a re-INVITE naming it, the
#                          tone goes on (last 3 s of the recording) and Wx exits within 10 s of the
#                          drain; Wx is then started again
#   cluster_redis_restart  a G.711 call up; redis-server killed (SIGKILL) and started again empty
#                          3 s later: no gap above 1 s in the call's RTMP audio (wire sniffer), its
#                          tone in the last 3 s, its call and leg records and the worker records
#                          back within 6 s of the restart; a call placed while Redis is down is
#                          noted (it may work or fail), a call placed after it is back must work,
#                          and signalers and workers stay up
#   cluster_signaler_kill  a G.711 call through sig1 (SIPp waits for a BYE); sig1 killed (SIGKILL):
#                          SIPp gets its BYE (sig2's orphan cleanup) and exits 0 within 15 s, and
#                          no call record, leg record or worker legs index entry of it remains
#                          (sig1 stays down: the last case)
#
# Why the gap is measured on the wire: sipphone appends the audio it decodes to its WAV as it
# arrives (it does not insert silence for time without audio), so an outage does not show as
# silence in the recording and wavcheck --max-gap cannot see it. A sniffer (AF_PACKET, python3, in
# the client namespace) notes when RTMP data from the signalers arrives; the gap of a call is the
# longest time between two arrivals on its connection from 1 s before the kill to 5.5 s after.
# wavcheck checks the tone before and after, and its --max-gap view of the WAV is printed.
#
# Needs root (network namespaces), sipp, redis-server, redis-cli, python3, ss; otherwise every
# case is skipped with the reason. Env: BUILD (default build), KEEP_TMP=1 keeps the logs.

# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/netns.sh
. "$(dirname "${BASH_SOURCE[0]}")/netns.sh"

CASES=(cluster_two_signalers cluster_worker_joins cluster_failover cluster_relayctl cluster_no_leftovers
	cluster_drain cluster_redis_restart cluster_signaler_kill)
MW="$T_MW"
SIG="$BUILD/signaler"
PHONE="$BUILD/tools/sipphone"
RELAYCTL="$BUILD/relayctl"
SIPP_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/sipp"
REDIS_P=6379
RTMP_P=1935
SIP_P=5060
RTP_MIN=20000
RTP_MAX=20999
GAP_TARGET=1.5 # the product's stated target
GAP_FAIL=2.0   # what this test tolerates
FAILOVER_SECS=16

skip_all() {
	local c
	for c in "${CASES[@]}"; do
		skip "$c" "$1"
	done
	finish
}

for cmd in sipp redis-server redis-cli python3 ss; do
	command -v "$cmd" >/dev/null 2>&1 || skip_all "$cmd not installed (scripts/deps.sh install)"
done
for bin in "$MW" "$SIG" "$WAVCHECK" "$PHONE" "$RELAYCTL"; do
	[[ -x $bin ]] || { fail cluster_setup "$bin not built (make)"; finish; }
done
netns_setup redis sig1 sig2 w1 w2 w3 peer client || skip_all "no network namespaces: $NETNS_WHY"

# lib.sh's helpers reach the daemons in their namespaces: rcli / rkeys the redis host's Redis,
# sipp_run a SIPp in the peer namespace.
# shellcheck disable=SC2034 # read by lib.sh's functions
REDIS_NS=redis REDIS_PORT=$REDIS_P
# shellcheck disable=SC2034
SIPP_NS=peer SIPP_IP=${NS_IP[peer]}

# cluster_verdict NAME: lib.sh's verdict, once the signalers were found still running.
cluster_verdict() {
	local s
	for s in sig1 sig2; do
		kill -0 "${PID[$s]}" 2>/dev/null || why "$s is not running: $(tail -n 3 "$T_TMP/$s.log" | tr '\n' ' ')"
	done
	verdict "$1"
}

# legs_by FIELD: "leg-id=value" for every leg record, sorted.
legs_by() {
	local k
	for k in $(rkeys 'rs:v1:leg:*'); do
		echo "${k#rs:v1:leg:}=$(rcli hget "$k" "$1")"
	done | sort
}

# count_lines FILE PATTERN: how many lines of FILE match PATTERN (0 when none or no file).
count_lines() {
	grep -c -- "$2" "$1" 2>/dev/null || true
}

# rtp_sockets HOST: the UDP sockets in HOST's namespace bound in the workers' RTP range.
rtp_sockets() {
	nsx "$1" ss -Huanp | awk -v lo=$RTP_MIN -v hi=$((RTP_MAX + 1)) \
		'{ n = split($4, a, ":"); p = a[n] + 0; if (p >= lo && p <= hi) print $4, $NF }'
}

declare -A PID=()

# start_worker NAME: a mediaworker in NAME's namespace, everything bound on its address;
# waits for its ready line (5 s).
start_worker() {
	local name=$1 ip=${NS_IP[$1]} log n=1
	while [[ -e $T_TMP/$name.$n.log ]]; do n=$((n + 1)); done
	log="$T_TMP/$name.$n.log"
	nspawn "$name" "$log" env WORKER_ID="$name" RTP_BIND_IP="$ip" RTP_PORT_MIN=$RTP_MIN \
		RTP_PORT_MAX=$RTP_MAX WORKER_CTL_BIND="tcp://$ip:7001" WORKER_MEDIA_BIND="tcp://$ip:7002" \
		WORKER_CAPACITY=8 REDIS_HOST="${NS_IP[redis]}" REDIS_PORT=$REDIS_P LOG_LEVEL=info "$MW"
	PID[$name]=$SPAWNED_PID
	wait_log "$log" 'mediaworker ready' 5 "$SPAWNED_PID" && return 0
	echo "  [$T_NAME] $name did not start"
	log_tail "$log" 10
	return 1
}

# start_sig NAME: a signaler in NAME's namespace: RTMP and SIP on its address; waits until its
# RTMP port answers from the client namespace (10 s).
start_sig() {
	local name=$1 ip=${NS_IP[$1]}
	nspawn "$name" "$T_TMP/$name.log" env SIGNALER_ID="$name" RTMP_BIND="$ip" RTMP_PORT=$RTMP_P \
		SIP_BIND="$ip" SIP_PORT=$SIP_P SIP_ADVERTISED_IP="$ip" REDIS_HOST="${NS_IP[redis]}" \
		REDIS_PORT=$REDIS_P LOG_LEVEL=debug SIP_TRUSTED_SOURCES="${NS_IP[peer]}" \
		"${TEST_SIGNALER_ENV[@]}" "$SIG"
	PID[$name]=$SPAWNED_PID
	ns_wait_tcp client "$ip" $RTMP_P "$SPAWNED_PID" 10 && return 0
	echo "  [$T_NAME] $name did not listen on $ip:$RTMP_P"
	log_tail "$T_TMP/$name.log" 10
	return 1
}

# wait_up WORKER SECONDS [BASE1 BASE2]: until both signalers logged "WORKER: mediaworker up" more
# often than BASE1 / BASE2 times (default 0).
wait_up() {
	local w=$1 i b1=${3:-0} b2=${4:-0}
	for ((i = 0; i < $2 * 10; i++)); do
		(($(count_lines "$T_TMP/sig1.log" " $w: mediaworker up") > b1 &&
			$(count_lines "$T_TMP/sig2.log" " $w: mediaworker up") > b2)) && return 0
		sleep 0.1
	done
	return 1
}

# phone_bg NAME SIGNALER AOR SCRIPT: sipphone in the client namespace through SIGNALER's sip app,
# in the background (pid in PHONE_PID[NAME]), output in $T_TMP/NAME.out.
declare -A PHONE_PID=()
phone_bg() {
	local name=$1 sig=$2 aor=$3 script=$4
	nsx client timeout -k 5 60 "$PHONE" --timeout 50 "rtmp://${NS_IP[$sig]}:$RTMP_P/sip/$aor" "" "" \
		<<<"$script" >"$T_TMP/$name.out" 2>&1 &
	PHONE_PID[$name]=$!
}

# phone_wait NAME: the phone's exit status is 0, or a reason is noted.
phone_wait() {
	local rc
	wait "${PHONE_PID[$1]}"
	rc=$?
	((rc == 0)) && return 0
	why "phone $1 exited $rc: $(grep -v '^event\|^audio\|^result' "$T_TMP/$1.out" | tail -n 2 | tr '\n' ' ')"
	return 1
}

# tone_ok NAME FREQ [wavcheck options]: $T_TMP/NAME.wav holds FREQ (+-30 Hz); notes why not.
tone_ok() {
	local name=$1 freq=$2 out
	shift 2
	if [[ ! -s $T_TMP/$name.wav ]]; then
		why "no recording $name.wav"
		return 1
	fi
	out=$("$WAVCHECK" --expect-freq "$freq" --tol 30 --min-rms-dbfs -35 "$@" "$T_TMP/$name.wav" 2>&1) && return 0
	why "$name.wav ($freq Hz): $(grep -m1 FAIL <<<"$out" | sed 's/^wavcheck: FAIL: //')"
	return 1
}

# call_script URI FREQ SECONDS WAV [pcmu]: a call from the sip app: Speex out (FREQ Hz for
# SECONDS; transcoded to PCMU), or G.711 u-law out with "pcmu" (pass-through), the far end into
# WAV, then bye.
call_script() {
	local tokens="wideband ulaw" accepted=ulaw codec=speex
	[[ ${5:-} == pcmu ]] && tokens=pcmu accepted=pcmu codec=pcmu
	cat <<EOF
invite $1 $tokens
wait-arg accepted 0 $accepted 15
publish local $codec $2 $3
play remote $4
sleep $3
bye
EOF
}

# The sniffer (AF_PACKET on eth0 of the namespace it runs in), one line "TIME FLOW BYTES" per
# packet of interest:
#   tcp ADDR:PORT...  TCP segments with data from those addresses (the signalers' RTMP ports);
#                     FLOW is SRC>DSTPORT, one per RTMP connection
#   rtp PORT DIR      RTP arriving at UDP PORT (SIPp's media port); FLOW is the SSRC (kept across
#                     a failover); PCMU payloads are also decoded into DIR/<ssrc>.raw (8 kHz s16le)
cat >"$T_TMP/sniff.py" <<'EOF'
import os, signal, socket, struct, sys, time
iface, out, mode = sys.argv[1], sys.argv[2], sys.argv[3]
srcs, port, rawdir = set(), 0, None
if mode == "tcp":
    for a in sys.argv[4:]:
        ip, p = a.rsplit(":", 1)
        srcs.add((socket.inet_aton(ip), int(p)))
else:
    port, rawdir = int(sys.argv[4]), sys.argv[5]
def ulaw(b):
    b = ~b & 0xFF
    t = (((b & 0x0F) << 3) + 0x84) << ((b & 0x70) >> 4)
    return (0x84 - t) if b & 0x80 else (t - 0x84)
ULAW = [struct.pack("<h", ulaw(i)) for i in range(256)]
raws = {}
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.ntohs(0x0800))
s.bind((iface, 0))
f = open(out, "w", buffering=1)
signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
print("ready", flush=True)
while True:
    pkt, addr = s.recvfrom(65535)
    t = time.time()
    if addr[2] == socket.PACKET_OUTGOING or len(pkt) < 42:
        continue
    ip = pkt[14:]
    if ip[0] >> 4 != 4:
        continue
    ihl = (ip[0] & 15) * 4
    total = struct.unpack("!H", ip[2:4])[0]
    l4 = ip[ihl:total]
    sport, dport = struct.unpack("!HH", l4[:4])
    if mode == "tcp" and ip[9] == 6:
        data = len(l4) - (l4[12] >> 4) * 4
        if data > 0 and (ip[12:16], sport) in srcs:
            f.write("%.4f %s:%d>%d %d\n" % (t, socket.inet_ntoa(ip[12:16]), sport, dport, data))
    elif mode == "rtp" and ip[9] == 17 and dport == port and len(l4) >= 20:
        rtp = l4[8:]
        if rtp[0] >> 6 != 2:
            continue
        off = 12 + 4 * (rtp[0] & 15)
        if rtp[0] & 0x10 and len(rtp) >= off + 4:
            off += 4 + 4 * struct.unpack("!H", rtp[off + 2:off + 4])[0]
        ssrc = "%08x" % struct.unpack("!I", rtp[8:12])[0]
        f.write("%.4f %s %d\n" % (t, ssrc, len(rtp) - off))
        if rtp[1] & 0x7F == 0:
            if ssrc not in raws:
                raws[ssrc] = open(os.path.join(rawdir, ssrc + ".raw"), "wb")
            raws[ssrc].write(b"".join(ULAW[b] for b in rtp[off:]))
            raws[ssrc].flush()
EOF

# sniffer HOST NAME ARGS...: sniff.py in HOST's namespace (arrivals in $T_TMP/NAME.txt); waits
# until it listens (3 s).
sniffer() {
	local host=$1 name=$2 i
	shift 2
	nspawn "$host" "$T_TMP/$name.log" python3 -u "$T_TMP/sniff.py" eth0 "$T_TMP/$name.txt" "$@"
	for ((i = 0; i < 30; i++)); do
		grep -q ready "$T_TMP/$name.log" && return 0
		sleep 0.1
	done
	note "sniffer $name did not start: $(tail -n 2 "$T_TMP/$name.log" | tr '\n' ' ')"
	return 1
}

# The gaps: for each flow with data between T_FROM and T_KILL, the longest time without data in
# [T_FROM, T_TO], edges included (nothing after the last arrival up to T_TO is a gap too). One line
# per flow: "FLOW gap=S at=+S last=+S" (times after T_FROM), then "max=S flows=N".
cat >"$T_TMP/gaps.py" <<'EOF'
import sys
path, t_from, t_kill, t_to = sys.argv[1], float(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
flows = {}
for line in open(path):
    t, flow, _ = line.split()
    flows.setdefault(flow, []).append(float(t))
worst, n = 0.0, 0
for flow, ts in sorted(flows.items()):
    ts = [t for t in ts if t_from <= t <= t_to]
    if not any(t <= t_kill for t in ts):
        continue
    n += 1
    edges = ts + [t_to]
    gap, at = max((edges[i + 1] - edges[i], edges[i] - t_from) for i in range(len(edges) - 1))
    print("%s gap=%.3f at=+%.3f last=+%.3f" % (flow, gap, at, ts[-1] - t_from))
    worst = max(worst, gap)
print("max=%.3f flows=%d" % (worst, n))
EOF

# The INVITEs SIPp received (its -trace_msg file): "CALL-ID SDP-ADDRESS" for each.
cat >"$T_TMP/invites.py" <<'EOF'
import re, sys
text = open(sys.argv[1], errors="replace").read()
for block in re.split(r"\n-{20,} [^\n]*\n", "\n" + text):
    head, _, msg = block.partition("\n\n")
    if "message received" not in head or not msg.startswith("INVITE "):
        continue
    lines = msg.splitlines()
    cid = next((l.split(":", 1)[1].strip() for l in lines if l.lower().startswith(("call-id:", "i:"))), "?")
    conn = next((l[len("c=IN IP4 "):].strip() for l in lines if l.startswith("c=IN IP4 ")), "?")
    print(cid, conn)
EOF

# wav_cut IN OUT START SECONDS: OUT is SECONDS of IN from START (negative: from the end).
wav_cut() {
	python3 -c 'import sys, wave
r = wave.open(sys.argv[1]); rate = r.getframerate(); n = r.getnframes()
start = float(sys.argv[3]); start = start + n / rate if start < 0 else start
first = max(0, min(n, int(start * rate))); count = max(0, min(n - first, int(float(sys.argv[4]) * rate)))
r.setpos(first); data = r.readframes(count)
w = wave.open(sys.argv[2], "wb"); w.setparams(r.getparams()); w.writeframes(data); w.close()' "$@"
}

# wav_figures WAV: wavcheck's measurement line (duration, dominant frequency, level).
wav_figures() {
	"$WAVCHECK" "$1" 2>&1 | head -n 1
}

# raw2wav RAW WAV: 8 kHz s16le mono to a WAV.
raw2wav() {
	python3 -c 'import sys, wave
w = wave.open(sys.argv[2], "wb"); w.setnchannels(1); w.setsampwidth(2); w.setframerate(8000)
w.writeframes(open(sys.argv[1], "rb").read()); w.close()' "$1" "$2"
}

# since T: seconds from T (date +%s.%N) to now, one decimal.
since() {
	date +%s.%N | awk -v t="$1" '{ printf "%.1f", $1 - t }'
}

# rctl ARGS...: relayctl in the client namespace, on the redis host's Redis.
rctl() {
	nsx client "$RELAYCTL" --redis "${NS_IP[redis]}:$REDIS_P" "$@"
}

# rctl_rows KIND FIELD...: relayctl --json KIND as one line per object, the FIELDs blank-separated
# (null and missing as "-", booleans as true/false); "ERROR ..." when it fails or does not parse.
rctl_rows() {
	local kind=$1 out
	shift
	out=$(rctl --json "$kind" 2>&1) || { echo "ERROR relayctl $kind: $(head -n 2 <<<"$out" | tr '\n' ' ')"; return 1; }
	python3 -c 'import json, sys
try:
    rows = json.loads(sys.argv[1])
except ValueError as e:
    print("ERROR not JSON: %s" % e); sys.exit(1)
def v(x):
    return "-" if x is None else ("true" if x is True else "false" if x is False else str(x))
for r in rows:
    print(" ".join(v(r.get(f)) for f in sys.argv[2:]))' "$out" "$@"
}

# relayctl_check: cluster_relayctl, right after the failover's adoption (the three calls still
# up): every call is listed with a survivor as its worker and that worker's pid; w3 turns
# alive=false within 8 s of the kill while w1 and w2 stay alive. Reasons go to RWHY.
RWHY=()
relayctl_check() {
	local rows n=0 cid wid wpid i ok=0
	rows=$(rctl_rows calls call_id worker_id worker_pid leg_id)
	while read -r cid wid wpid _; do
		[[ -n $cid ]] || continue
		[[ $cid == ERROR ]] && { RWHY+=("$rows"); return; }
		n=$((n + 1))
		if [[ $wid != w1 && $wid != w2 ]]; then
			RWHY+=("call $cid: worker_id $wid, not a survivor")
		elif [[ $wpid != "${PID[$wid]}" ]]; then
			RWHY+=("call $cid: worker_pid $wpid, but $wid is pid ${PID[$wid]}")
		fi
	done <<<"$rows"
	note "relayctl calls: $(tr '\n' ';' <<<"$rows")"
	((n == 3)) || RWHY+=("relayctl calls listed $n calls, not 3")
	# Until 12 s after the kill (w3's last heartbeat is at most 5 s old for about 5 s).
	while :; do
		rows=$(rctl_rows workers worker_id alive pid seen_ago_ms)
		grep -q '^w3 false' <<<"$rows" && grep -q '^w1 true' <<<"$rows" && grep -q '^w2 true' <<<"$rows" && { ok=1; break; }
		awk -v t="$(since "$t_kill")" 'BEGIN { exit !(t < 12) }' || break
		sleep 0.2
	done
	note "relayctl workers $(since "$t_kill") s after the kill: $(tr '\n' ';' <<<"$rows")"
	((ok)) || RWHY+=("relayctl workers 12 s after the kill: $(tr '\n' ';' <<<"$rows") (want w3 false, w1 and w2 true)")
}

# --- the cluster -------------------------------------------------------------------------------

mkdir -p "$T_TMP/redis"
nspawn redis "$T_TMP/redis.log" redis-server --bind "${NS_IP[redis]} 127.0.0.1" --port $REDIS_P \
	--protected-mode no --dir "$T_TMP/redis" --save '' --appendonly no --daemonize no
PID[redis]=$SPAWNED_PID
ns_wait_tcp redis 127.0.0.1 $REDIS_P "${PID[redis]}" 10 || { fail cluster_setup "redis did not start"; finish; }
if ! start_worker w1 || ! start_worker w2; then
	fail cluster_setup "a worker did not start"
	finish
fi
if ! start_sig sig1 || ! start_sig sig2; then
	fail cluster_setup "a signaler did not start"
	finish
fi
if ! wait_up w1 10 || ! wait_up w2 10; then
	fail cluster_setup "the signalers did not find w1 and w2 through Redis within 10 s"
	for s in sig1 sig2; do grep -E 'mediaworker|discovery' "$T_TMP/$s.log" | tail -n 4 | sed "s/^/  | $s: /"; done
	finish
fi
note "sig1 ${NS_IP[sig1]}, sig2 ${NS_IP[sig2]}, w1 ${NS_IP[w1]}, w2 ${NS_IP[w2]}, peer ${NS_IP[peer]}"

# RTMP data reaching the clients, from here to the end.
sniffer client rtmp tcp "${NS_IP[sig1]}:$RTMP_P" "${NS_IP[sig2]}:$RTMP_P"

# --- cluster_two_signalers ---------------------------------------------------------------------
# Two calls at once (one per signaler), then two more a second later: each signaler spreads its
# own calls (least loaded, WORKER_CAPACITY=8), so both workers get legs whatever the first picks.

name=cluster_two_signalers
sipp_run uas -sn uas -rtp_echo -mp 6000 -p $SIP_P -m 4
uas_pid=$SIPP_PID
sleep 0.3
freqs=(500 700 1000 1300)
sigs=(sig1 sig2 sig1 sig2)
for k in 0 1 2 3; do
	phone_bg "two$k" "${sigs[$k]}" "user$k@example.com" \
		"$(call_script "sip:svc@${NS_IP[peer]}:$SIP_P" "${freqs[$k]}" 5 "$T_TMP/two$k.wav")"
	((k == 1)) && sleep 1
done
legs=""
for ((i = 0; i < 80; i++)); do
	legs=$(legs_by worker)
	[[ $(grep -c = <<<"$legs") -ge 4 ]] && break
	sleep 0.1
done
owners=$(legs_by owner)
# The positive control of cluster_no_leftovers' socket check: the calls' RTP sockets are seen.
socks_during=$( (rtp_sockets w1; rtp_sockets w2) | grep -c .)
note "RTP sockets in w1 and w2 during the calls: $socks_during"
note "legs: $(tr '\n' ' ' <<<"$legs")"
for k in 0 1 2 3; do
	phone_wait "two$k" && tone_ok "two$k" "${freqs[$k]}" --min-duration 2
done
sipp_wait "$uas_pid" 10 || why "SIPp (uas) exited $?: $(tail -n 2 "$T_TMP/uas.err" 2>/dev/null | tr '\n' ' ')"
[[ $(grep -c = <<<"$legs") -eq 4 ]] || why "$(grep -c = <<<"$legs") leg records while the four calls were up"
for w in w1 w2; do
	grep -q "=$w$" <<<"$legs" || why "no leg on $w ($(tr '\n' ' ' <<<"$legs"))"
done
for s in sig1 sig2; do
	grep -q "=$s$" <<<"$owners" || why "no leg owned by $s ($(tr '\n' ' ' <<<"$owners"))"
done
cluster_verdict "$name"

# --- cluster_worker_joins ----------------------------------------------------------------------
# w1 and w2 leave gracefully (SIGTERM with no legs: drained at once); w3 starts; both signalers
# must find it in Redis, and the next calls can only land on it.

name=cluster_worker_joins
for w in w1 w2; do
	stop_pid "${PID[$w]}" 10
	rc=$?
	((rc == 0)) || why "$w exited $rc on SIGTERM with no legs"
done
for ((i = 0; i < 50; i++)); do
	(($(count_lines "$T_TMP/sig1.log" " w2: mediaworker down") > 0 &&
		$(count_lines "$T_TMP/sig2.log" " w2: mediaworker down") > 0 &&
		$(count_lines "$T_TMP/sig1.log" " w1: mediaworker down") > 0 &&
		$(count_lines "$T_TMP/sig2.log" " w1: mediaworker down") > 0)) && break
	sleep 0.1
done
((i < 50)) || why "the signalers did not see w1 and w2 go down within 5 s"
t_start=$(date +%s%3N)
if ! start_worker w3; then
	why "w3 did not start"
elif ! wait_up w3 10; then
	why "the signalers did not find w3 within 10 s"
else
	note "w3 found by both signalers $(($(date +%s%3N) - t_start)) ms after it was started"
fi
# The RTP reaching SIPp's media port for these calls, by SSRC (a moved leg keeps its SSRC).
mkdir -p "$T_TMP/rtp"
sniffer peer rtp rtp 6100 "$T_TMP/rtp"
sipp_run reinv -sf "$SIPP_DIR/cluster_uas_reinvite.xml" -rtp_echo -mp 6100 -p 5062 -m 3
reinv_pid=$SIPP_PID
sleep 0.3
freqs=(600 900 1200)
sigs=(sig1 sig2 sig1)
t_calls=$(date +%s.%N)
for k in 0 1 2; do
	phone_bg "fo$k" "${sigs[$k]}" "caller$k@example.com" \
		"$(call_script "sip:svc@${NS_IP[peer]}:5062" "${freqs[$k]}" $FAILOVER_SECS "$T_TMP/fo$k.wav" pcmu)"
done
legs=""
for ((i = 0; i < 80; i++)); do
	legs=$(legs_by worker)
	[[ $(grep -c = <<<"$legs") -ge 3 ]] && break
	sleep 0.1
done
note "legs: $(tr '\n' ' ' <<<"$legs")"
[[ $(grep -c =w3 <<<"$legs") -eq 3 ]] || why "the three new calls are not all on w3: $(tr '\n' ' ' <<<"$legs")"
cluster_verdict "$name"

# --- cluster_failover --------------------------------------------------------------------------
# w1 and w2 come back (same addresses and endpoints, new instances); then w3, carrying the three
# calls, is killed. The kill must leave at least 6 s of each call to observe.

name=cluster_failover
b1=$(count_lines "$T_TMP/sig1.log" " w1: mediaworker up")
b2=$(count_lines "$T_TMP/sig2.log" " w1: mediaworker up")
c1=$(count_lines "$T_TMP/sig1.log" " w2: mediaworker up")
c2=$(count_lines "$T_TMP/sig2.log" " w2: mediaworker up")
killed=0
if ! start_worker w1 || ! start_worker w2; then
	why "w1/w2 did not restart"
elif ! wait_up w1 5 "$b1" "$b2" || ! wait_up w2 5 "$c1" "$c2"; then
	why "the signalers did not see w1 and w2 back within 5 s"
elif [[ $(grep -c =w3 <<<"$legs") -eq 0 ]]; then
	why "no call on w3 to fail over"
else
	sleep 0.5 # a leg state write (LEG_STATE_INTERVAL_MS=1000) since the calls were answered
	t_kill=$(date +%s.%N)
	late=$(awk -v k="$t_kill" -v c="$t_calls" 'BEGIN { print (k - c > 8.5) }')
	if ((late)); then
		why "setup took too long: the kill would come $(awk -v k="$t_kill" -v c="$t_calls" 'BEGIN { printf "%.1f", k - c }') s into the calls"
	else
		kill -KILL "${PID[w3]}"
		wait "${PID[w3]}" 2>/dev/null
		killed=1
		note "w3 (pid ${PID[w3]}) killed $(awk -v k="$t_kill" -v c="$t_calls" 'BEGIN { printf "%.1f", k - c }') s into the calls"
	fi
fi
moved=""
if ((killed)); then
	for ((i = 0; i < 100; i++)); do
		moved=$(legs_by worker)
		[[ $(grep -c '=w[12]$' <<<"$moved") -eq 3 ]] && break
		sleep 0.1
	done
	note "legs after the kill: $(tr '\n' ' ' <<<"$moved")"
	# When each signaler declared w3 down (log times are UTC ms), relative to the kill.
	for s in sig1 sig2; do
		t_down=$(grep -m1 ' w3: mediaworker down' "$T_TMP/$s.log" | cut -d' ' -f1)
		[[ -n $t_down ]] && t_down=$(date -d "$t_down" +%s.%N 2>/dev/null)
		[[ -n $t_down ]] && note "$s declared w3 down $(awk -v d="$t_down" -v k="$t_kill" 'BEGIN { printf "%d", (d - k) * 1000 }') ms after the kill"
	done
	[[ $(grep -c '=w[12]$' <<<"$moved") -eq 3 ]] ||
		why "the leg records do not all name a survivor 10 s after the kill: $(tr '\n' ' ' <<<"$moved")"
	relayctl_check
fi
for k in 0 1 2; do
	phone_wait "fo$k"
done
sipp_wait "$reinv_pid" 15 || why "SIPp (re-INVITE UAS) exited $?: $(tail -n 3 "$T_TMP/reinv.err" 2>/dev/null | tr '\n' ' ')"
if ((killed)); then
	for s in sig1 sig2; do
		grep -E 'w3: mediaworker down|leg moved to|ADOPT_LEG .* failed|leg failed|re-INVITE' "$T_TMP/$s.log" |
			sed "s/^[^ ]* //; s/^/  | $s: /" | head -n 12
	done
	# The re-INVITEs SIPp received: the Call-ID of each INVITE and the address its SDP names.
	invites=$(python3 "$T_TMP/invites.py" "$T_TMP/reinv.msg")
	n_calls=$(awk '{ print $1 }' <<<"$invites" | sort -u | grep -c .)
	n_re=$(awk '{ n[$1]++ } END { for (c in n) if (n[c] > 1) r++; print r + 0 }' <<<"$invites")
	new_ip=$(awk '{ if (seen[$1]++) print $2 }' <<<"$invites" | sort -u | tr '\n' ' ')
	note "SIPp got INVITEs for $n_calls calls, re-INVITEs for $n_re of them (SDP addresses: ${new_ip:-none})"
	((n_re == 3)) || why "SIPp saw a re-INVITE for $n_re of the 3 calls"
	for ip in $new_ip; do
		[[ $ip == "${NS_IP[w1]}" || $ip == "${NS_IP[w2]}" ]] || why "a re-INVITE offers $ip, not a survivor's address"
	done
	# Audio on the wire from 1 s before the kill to 5.5 s after it: the verdict is the RTMP side
	# (what the caller hears); the RTP reaching SIPp is shown for the diagnosis.
	t_from=$(awk -v k="$t_kill" 'BEGIN { printf "%.4f", k - 1 }')
	t_to=$(awk -v k="$t_kill" 'BEGIN { printf "%.4f", k + 5.5 }')
	gaps=$(python3 "$T_TMP/gaps.py" "$T_TMP/rtmp.txt" "$t_from" "$t_kill" "$t_to")
	while read -r line; do echo "  | RTMP audio at the client: $line"; done <<<"$gaps"
	while read -r line; do echo "  | RTP at SIPp, by SSRC: $line"; done < <(python3 "$T_TMP/gaps.py" "$T_TMP/rtp.txt" "$t_from" "$t_kill" "$t_to")
	gap=$(sed -n 's/^max=\([0-9.]*\) .*/\1/p' <<<"$gaps")
	n_conn=$(sed -n 's/.* flows=//p' <<<"$gaps")
	[[ $n_conn == 3 ]] || why "${n_conn:-no} RTMP connections carried audio before the kill (3 calls)"
	if [[ -z $gap ]]; then
		why "no gap measured"
	else
		note "failover gap: $gap s (longest time without audio at an RTMP client; target $GAP_TARGET s, fails above $GAP_FAIL s)"
		awk -v g="$gap" -v m="$GAP_FAIL" 'BEGIN { exit !(g <= m) }' ||
			why "the audio was gone for $gap s (> $GAP_FAIL s; the target is $GAP_TARGET s)"
	fi
	# The tone before the kill (the first second) and after the failover (the last 3 s): first in
	# the RTP that reached SIPp (the up direction alone; matched to its call by frequency), then
	# in each recording (up, SIPp's echo, and down).
	declare -A UP_AFTER=()
	for raw in "$T_TMP"/rtp/*.raw; do
		[[ -s $raw ]] || continue
		ssrc=$(basename "$raw" .raw)
		raw2wav "$raw" "$T_TMP/rtp-$ssrc.wav"
		wav_cut "$T_TMP/rtp-$ssrc.wav" "$T_TMP/rtp-$ssrc-before.wav" 0.2 1
		wav_cut "$T_TMP/rtp-$ssrc.wav" "$T_TMP/rtp-$ssrc-after.wav" -3 3
		before=$(wav_figures "$T_TMP/rtp-$ssrc-before.wav")
		after=$(wav_figures "$T_TMP/rtp-$ssrc-after.wav")
		note "RTP to SIPp, ssrc $ssrc (PCMU): before $before; after $after"
		bf=$(sed -n 's/.* freq=\([0-9]*\) .*/\1/p' <<<"$before")
		for f in "${freqs[@]}"; do
			((${bf:-0} > f - 30 && ${bf:-0} < f + 30)) && UP_AFTER[$f]="ssrc $ssrc ${after#* rate=* }"
		done
	done
	for k in 0 1 2; do
		f=${freqs[$k]}
		[[ -s $T_TMP/fo$k.wav ]] || { why "no recording fo$k.wav"; continue; }
		wav_cut "$T_TMP/fo$k.wav" "$T_TMP/fo$k-before.wav" 0.2 1
		wav_cut "$T_TMP/fo$k.wav" "$T_TMP/fo$k-after.wav" -3 3
		note "fo$k.wav ($f Hz): before $(wav_figures "$T_TMP/fo$k-before.wav"); after $(wav_figures "$T_TMP/fo$k-after.wav"); longest silence in the file $("$WAVCHECK" --verbose "$T_TMP/fo$k.wav" 2>/dev/null | sed -n 's/.*longest_gap=\([0-9.]*\).*/\1/p') s (sipphone does not fill outages)"
		tone_ok "fo$k-before" "$f" --min-duration 0.8
		tone_ok "fo$k-after" "$f" --min-duration 2.5 ||
			WHY[-1]="the tone did not go on after the failover: ${WHY[-1]} (the RTP this call sent SIPp after the move: ${UP_AFTER[$f]:-not found})"
	done
fi
cluster_verdict "$name"

# --- cluster_relayctl --------------------------------------------------------------------------
# Checked during the failover above (relayctl_check), judged here.

name=cluster_relayctl
((killed)) || RWHY+=("no failover to look at")
WHY=(${RWHY[@]+"${RWHY[@]}"})
cluster_verdict "$name"

# --- cluster_no_leftovers ----------------------------------------------------------------------

name=cluster_no_leftovers
# leftovers: what is still in Redis; a dead worker's legs index may outlive it by its documented
# expiry (STATE_WORKER_INDEX_TTL_S, 60 s): it is listed in STALE_INDEX, not failed, unless its
# expiry is longer.
leftovers() {
	local k n ttl
	rkeys 'rs:v1:call:*'
	rkeys 'rs:v1:leg:*'
	for k in $(rkeys 'rs:v1:signaler:*:calls'); do
		[[ $(rcli scard "$k") == 0 ]] || echo "$k($(rcli smembers "$k" | tr '\n' ',' | sed 's/,$//'))"
	done
	STALE_INDEX=""
	for k in $(rkeys 'rs:v1:worker:*:legs'); do
		[[ $(rcli scard "$k") == 0 ]] && continue
		ttl=$(rcli ttl "$k")
		if [[ $(rcli exists "${k%:legs}") == 0 ]] && ((ttl >= 0 && ttl <= 60)); then
			STALE_INDEX+="$k (ttl ${ttl} s: $(rcli smembers "$k" | tr '\n' ',' | sed 's/,$//')) "
			continue
		fi
		echo "$k(ttl $ttl: $(rcli smembers "$k" | tr '\n' ',' | sed 's/,$//'))"
	done
	for k in $(rkeys 'rs:v1:worker:*'); do
		[[ $k == *:legs ]] && continue
		n=$(rcli hget "$k" legs)
		[[ $n == 0 || -z $n ]] || echo "$k(legs=$n)"
	done
}
left=""
for ((i = 0; i < 80; i++)); do
	left=$(leftovers)
	[[ -z $left ]] && break
	sleep 0.1
done
leftovers >/dev/null # for STALE_INDEX, which the subshell above cannot set
[[ -z $left ]] || why "left in Redis 8 s after the calls: $(head -n 8 <<<"$left" | tr '\n' ' ')"
[[ -z $STALE_INDEX ]] || note "a dead worker's legs index, expiring: $STALE_INDEX"
for w in w1 w2 w3; do
	socks=$(rtp_sockets "$w")
	[[ -z $socks ]] || why "$w still has RTP sockets: $(tr '\n' ' ' <<<"$socks")"
done
((socks_during > 0)) || why "ss saw no RTP socket in w1/w2 even during calls: the socket check is blind"
note "worker records: $(for k in $(rkeys 'rs:v1:worker:*'); do [[ $k == *:legs ]] || printf '%s legs=%s ' "${k#rs:v1:worker:}" "$(rcli hget "$k" legs)"; done)"
cluster_verdict "$name"

# wait_legs N: until there are N leg records (8 s); they are left in LEGS ("leg=worker" lines).
wait_legs() {
	local i
	for ((i = 0; i < 80; i++)); do
		LEGS=$(legs_by worker)
		[[ $(grep -c = <<<"$LEGS") -ge $1 ]] && return 0
		sleep 0.1
	done
	return 1
}

# --- cluster_drain -----------------------------------------------------------------------------
# One G.711 call through sig1 on worker Wx (w1 or w2); relayctl drain Wx --deadline 2: at the
# deadline the leg moves to the other worker (leg record, re-INVITE to SIPp naming it), the tone
# goes on to the end, and Wx exits within 10 s of the drain. Wx is started again afterwards.

name=cluster_drain
sipp_run drain -sf "$SIPP_DIR/cluster_uas_reinvite.xml" -rtp_echo -mp 6200 -p 5064 -m 1
drain_sipp=$SIPP_PID
sleep 0.3
phone_bg dr0 sig1 "drainer@example.com" \
	"$(call_script "sip:svc@${NS_IP[peer]}:5064" 700 10 "$T_TMP/dr0.wav" pcmu)"
wx=""
if wait_legs 1; then
	wx=${LEGS#*=}
	[[ $wx == w1 || $wx == w2 ]] || why "the call is on '$wx', not w1/w2"
else
	why "no leg record 8 s after the call was placed"
fi
if [[ $wx == w1 || $wx == w2 ]]; then
	wy=w1
	[[ $wx == w1 ]] && wy=w2
	sleep 1 # some tone before the drain
	t_drain=$(date +%s.%N)
	out=$(rctl drain "$wx" --deadline 2 2>&1) || why "relayctl drain $wx failed: $(tr '\n' ' ' <<<"$out")"
	note "relayctl drain $wx --deadline 2: $(tr '\n' ' ' <<<"$out")"
	for ((i = 0; i < 100; i++)); do
		LEGS=$(legs_by worker)
		[[ $LEGS == *=$wy && $(grep -c = <<<"$LEGS") -eq 1 ]] && break
		sleep 0.1
	done
	note "legs $(since "$t_drain") s after the drain: $(tr '\n' ' ' <<<"$LEGS")"
	[[ $LEGS == *=$wy && $(grep -c = <<<"$LEGS") -eq 1 ]] ||
		why "the leg did not move to $wy within 10 s of the drain: $(tr '\n' ' ' <<<"$LEGS")"
	while kill -0 "${PID[$wx]}" 2>/dev/null && awk -v t="$(since "$t_drain")" 'BEGIN { exit !(t < 10) }'; do
		sleep 0.1
	done
	if kill -0 "${PID[$wx]}" 2>/dev/null; then
		why "$wx (pid ${PID[$wx]}) still runs $(since "$t_drain") s after the drain"
	else
		wait "${PID[$wx]}" 2>/dev/null
		note "$wx exited (status $?) within $(since "$t_drain") s of the drain"
	fi
fi
phone_wait dr0
sipp_wait "$drain_sipp" 15 || why "SIPp (drain UAS) exited $?: $(tail -n 3 "$T_TMP/drain.err" 2>/dev/null | tr '\n' ' ')"
if [[ $wx == w1 || $wx == w2 ]]; then
	invites=$(python3 "$T_TMP/invites.py" "$T_TMP/drain.msg")
	note "INVITEs at SIPp (call-id, SDP address): $(tr '\n' ';' <<<"$invites")"
	re_ip=$(awk '{ if (seen[$1]++) print $2 }' <<<"$invites" | sort -u | tr '\n' ' ')
	[[ -n $re_ip ]] || why "SIPp got no re-INVITE"
	[[ -z $re_ip || $re_ip == "${NS_IP[$wy]} " ]] || why "the re-INVITE offers ${re_ip% }, not $wy (${NS_IP[$wy]})"
	if [[ -s $T_TMP/dr0.wav ]]; then
		wav_cut "$T_TMP/dr0.wav" "$T_TMP/dr0-after.wav" -3 3
		note "dr0.wav: whole $(wav_figures "$T_TMP/dr0.wav"); last 3 s $(wav_figures "$T_TMP/dr0-after.wav")"
	fi
	tone_ok dr0-after 700 --min-duration 2.5 || WHY[-1]="the tone did not go on after the drain: ${WHY[-1]}"
	b1=$(count_lines "$T_TMP/sig1.log" " $wx: mediaworker up")
	b2=$(count_lines "$T_TMP/sig2.log" " $wx: mediaworker up")
	if kill -0 "${PID[$wx]}" 2>/dev/null; then
		why "$wx not restarted: it still runs"
	elif ! start_worker "$wx" || ! wait_up "$wx" 10 "$b1" "$b2"; then
		why "$wx did not come back after the drain"
	fi
fi
cluster_verdict "$name"

# --- cluster_redis_restart ---------------------------------------------------------------------
# A G.711 call through sig1; Redis is killed (SIGKILL) for 3 s and started again, empty. The
# call's audio goes on (no gap above 1 s at the RTMP client, the tone in its last 3 s); its call
# record, its leg record and the worker records are back within 6 s of the restart. A call placed
# while Redis is down may work or fail (noted); signalers and workers stay up, and a call placed
# once Redis is back works.

name=cluster_redis_restart
start_redis_ns() {
	local n=1
	while [[ -e $T_TMP/redis.$n.log ]]; do n=$((n + 1)); done
	nspawn redis "$T_TMP/redis.$n.log" redis-server --bind "${NS_IP[redis]} 127.0.0.1" --port $REDIS_P \
		--protected-mode no --dir "$T_TMP/redis" --save '' --appendonly no --daemonize no
	PID[redis]=$SPAWNED_PID
	ns_wait_tcp redis 127.0.0.1 $REDIS_P "${PID[redis]}" 10
}
sipp_run rr -sf "$SIPP_DIR/cluster_uas_reinvite.xml" -rtp_echo -mp 6300 -p 5066
rr_sipp=$SIPP_PID
sleep 0.3
phone_bg rr0 sig1 "keeper@example.com" \
	"$(call_script "sip:svc@${NS_IP[peer]}:5066" 800 12 "$T_TMP/rr0.wav" pcmu)"
rr_down=0
if ! wait_legs 1; then
	why "no leg record 8 s after the call was placed"
else
	rr_leg=${LEGS%%=*}
	rr_call=$(rkeys 'rs:v1:call:*' | head -n 1)
	sleep 1
	t_kill=$(date +%s.%N)
	kill -KILL "${PID[redis]}"
	wait "${PID[redis]}" 2>/dev/null
	rr_down=1
	sleep 0.5
	# A call while Redis is down: short waits, whatever happens is noted.
	nsx client timeout -k 5 30 "$PHONE" --timeout 25 "rtmp://${NS_IP[sig2]}:$RTMP_P/sip/downcall@example.com" "" "" \
		>"$T_TMP/rr1.out" 2>&1 <<EOF &
invite sip:svc@${NS_IP[peer]}:5066 pcmu
wait-arg accepted 0 pcmu 6
publish local pcmu 900 1
sleep 1
bye
EOF
	rr1_pid=$!
	sleep 2.5
	if ! start_redis_ns; then
		why "redis-server did not start again"
	else
		t_back=$(date +%s.%N)
		note "Redis down for $(awk -v a="$t_kill" -v b="$t_back" 'BEGIN { printf "%.1f", b - a }') s"
		missing=""
		for ((i = 0; i < 60; i++)); do
			missing=""
			for k in "$rr_call" "rs:v1:leg:$rr_leg" rs:v1:worker:w1 rs:v1:worker:w2; do
				[[ $(rcli exists "$k" 2>/dev/null) == 1 ]] || missing+="$k "
			done
			[[ -z $missing ]] && break
			sleep 0.1
		done
		if [[ -n $missing ]]; then
			why "6 s after Redis came back, still missing: $missing"
		else
			note "call, leg and worker records back $(since "$t_back") s after the restart"
		fi
	fi
fi
phone_wait rr0
if ((rr_down)); then
	wait "$rr1_pid"
	rc=$?
	note "the call placed while Redis was down: exit $rc, $(grep -m1 -E '^event (accepted|rejected|hangup|failed)' "$T_TMP/rr1.out" || echo 'no answer event'); $(grep -v '^event\|^audio\|^result' "$T_TMP/rr1.out" | tail -n 1)"
	t_from=$(awk -v k="$t_kill" 'BEGIN { printf "%.4f", k - 1 }')
	t_to=$(awk -v k="${t_back:-$t_kill}" 'BEGIN { printf "%.4f", k + 3 }')
	gaps=$(python3 "$T_TMP/gaps.py" "$T_TMP/rtmp.txt" "$t_from" "$t_kill" "$t_to")
	while read -r line; do echo "  | RTMP audio at the client: $line"; done <<<"$gaps"
	gap=$(sed -n 's/^max=\([0-9.]*\) .*/\1/p' <<<"$gaps")
	[[ $(sed -n 's/.* flows=//p' <<<"$gaps") == 1 ]] || why "not one RTMP connection with audio before the Redis kill: $(tail -n 1 <<<"$gaps")"
	awk -v g="${gap:-99}" 'BEGIN { exit !(g <= 1.0) }' || why "the audio stopped for ${gap:-?} s around the Redis restart (> 1.0 s)"
	if [[ -s $T_TMP/rr0.wav ]]; then
		wav_cut "$T_TMP/rr0.wav" "$T_TMP/rr0-after.wav" -3 3
		note "rr0.wav: whole $(wav_figures "$T_TMP/rr0.wav"); last 3 s $(wav_figures "$T_TMP/rr0-after.wav")"
	fi
	tone_ok rr0-after 800 --min-duration 2.5
	# A call once Redis is back.
	phone_bg rr2 sig2 "after@example.com" \
		"$(call_script "sip:svc@${NS_IP[peer]}:5066" 1000 3 "$T_TMP/rr2.wav" pcmu)"
	phone_wait rr2 && tone_ok rr2 1000 --min-duration 2 || WHY[-1]="the call after the restart: ${WHY[-1]}"
fi
stop_pid "$rr_sipp" 2 >/dev/null
for w in w1 w2; do
	kill -0 "${PID[$w]}" 2>/dev/null || why "$w is not running: $(tail -n 2 "$(ls -t "$T_TMP/$w".*.log | head -n 1)" | tr '\n' ' ')"
done
cluster_verdict "$name"

# --- cluster_signaler_kill ---------------------------------------------------------------------
# A G.711 call through sig1; sig1 is killed (SIGKILL): sig2's orphan finder ends the call within
# 15 s (SIPp gets its BYE and exits 0) and no call or leg record of it remains.

name=cluster_signaler_kill
sipp_run sk -sf "$SIPP_DIR/cluster_uas_reinvite.xml" -rtp_echo -mp 6400 -p 5068 -m 1
sk_sipp=$SIPP_PID
sleep 0.3
phone_bg sk0 sig1 "orphan@example.com" \
	"$(call_script "sip:svc@${NS_IP[peer]}:5068" 600 30 "$T_TMP/sk0.wav" pcmu)"
sk_killed=0
if ! wait_legs 1; then
	why "no leg record 8 s after the call was placed"
else
	sk_leg=${LEGS%%=*}
	sk_call=$(rkeys 'rs:v1:call:*' | tr '\n' ' ')
	sleep 1
	t_kill=$(date +%s.%N)
	kill -KILL "${PID[sig1]}"
	wait "${PID[sig1]}" 2>/dev/null
	sk_killed=1
	note "sig1 killed; its call: ${sk_call:-no record} (leg $sk_leg)"
fi
if ((sk_killed)); then
	sipp_wait "$sk_sipp" 15
	rc=$?
	if ((rc == 0)); then
		note "SIPp got its BYE and exited $(since "$t_kill") s after the kill"
	else
		why "SIPp exited $rc (124: no BYE within 15 s of the kill): $(tail -n 2 "$T_TMP/sk.err" 2>/dev/null | tr '\n' ' ')"
	fi
	for ((i = 0; i < 50; i++)); do
		left=$( (rkeys 'rs:v1:call:*'; rkeys 'rs:v1:leg:*'
			for k in $(rkeys 'rs:v1:worker:*:legs'); do
				rcli sismember "$k" "$sk_leg" | grep -q '^1' && echo "$k"
			done) | tr '\n' ' ')
		[[ -z $left ]] && break
		sleep 0.1
	done
	[[ -z $left ]] || why "left in Redis after the orphan cleanup: $left"
	grep -E 'orphan|sig1' "$T_TMP/sig2.log" | grep -v 'mediaworker' | sed "s/^[^ ]* //; s/^/  | sig2: /" | tail -n 4
else
	stop_pid "$sk_sipp" 2 >/dev/null
fi
wait "${PHONE_PID[sk0]}" 2>/dev/null
kill -0 "${PID[sig2]}" 2>/dev/null || why "sig2 is not running: $(tail -n 3 "$T_TMP/sig2.log" | tr '\n' ' ')"
verdict "$name"

finish
