#!/usr/bin/env bash
# test_relayctl.sh - the operator's tool against a real Redis and real mediaworkers:
#
#   workers: the running workers with their pids, alive in the table and in --json; a worker
#   killed with SIGKILL turns alive=false once its 5 s liveness window has passed
#   calls / signalers: call records written by hand in the documented format (docs/architecture.md
#   "Redis keys"), joined with the leg's packet counters and the worker's pid; hostile strings
#   stay valid JSON and never reach the terminal raw
#   drain / undrain / hangup / signaler-drain: a well-formed command in the daemon's queue, with
#   its bound (100) and expiry (60 s); the acknowledgment protocol ("done", "unknown target",
#   "timeout" with the command withdrawn), played by redis-cli in the daemon's place
#   exit status 1 for an unknown target or an unreachable Redis, 2 for usage errors; AUTH
. "$(dirname "$0")/lib.sh"

RELAYCTL="$BUILD/relayctl"
MW="$T_MW"
for bin in "$RELAYCTL" "$MW"; do
	[[ -x $bin ]] || { fail relayctl_setup "$bin not built"; finish; }
done
command -v python3 >/dev/null || { fail relayctl_setup "python3 not installed"; finish; }
start_redis || { fail relayctl_setup "redis did not start"; finish; }
RCLI=(redis-cli -p "$REDIS_PORT")

# rc ARGS...: runs relayctl, output in $T_TMP/out (stdout) and $T_TMP/err; sets RC.
rc() {
	"$RELAYCTL" "$@" >"$T_TMP/out" 2>"$T_TMP/err"
	RC=$?
}

# json_check PYTHON-EXPR: evaluates EXPR with d = the JSON in $T_TMP/out; true when truthy.
json_check() {
	python3 -c 'import json, sys
d = json.load(open(sys.argv[1]))
sys.exit(0 if eval("(" + sys.argv[2] + ")") else 1)' "$T_TMP/out" "$1" 2>>"$T_TMP/err"
}

now_ms() { date +%s%3N; }

# start_worker NAME PORTMIN: sets W_PID once the worker said it is ready.
start_worker() {
	local log="$T_TMP/$1.log"
	spawn "$log" env WORKER_ID="$1" RTP_PORT_MIN="$2" RTP_PORT_MAX=$(($2 + 99)) \
		RTP_BIND_IP=127.0.0.1 METRICS_PORT=0 LOG_LEVEL=info "$MW"
	W_PID=$SPAWNED_PID
	wait_log "$log" 'mediaworker ready' 5 "$W_PID" && return 0
	log_tail "$log"
	return 1
}

base=$((34000 + RANDOM % 8000 / 2 * 2))
start_worker rw-1 "$base" || { fail relayctl_setup "worker rw-1 did not start"; finish; }
W1_PID=$W_PID
start_worker rw-2 $((base + 100)) || { fail relayctl_setup "worker rw-2 did not start"; finish; }
W2_PID=$W_PID
note "workers rw-1 (pid $W1_PID), rw-2 (pid $W2_PID); redis on $REDIS_PORT"

# Both heartbeats in Redis (once a second).
for ((i = 0; i < 50; i++)); do
	rc --json workers
	[[ $RC -eq 0 ]] && json_check 'sum(1 for w in d if w["alive"]) == 2' && break
	sleep 0.1
done

# --- workers: table
rc workers
row1=$(awk '$1 == "rw-1"' "$T_TMP/out")
row2=$(awk '$1 == "rw-2"' "$T_TMP/out")
alive_col=$(head -1 "$T_TMP/out" | tr -s ' ' '\n' | grep -n '^ALIVE$' | cut -d: -f1)
if [[ $RC -eq 0 && $(head -1 "$T_TMP/out") == WORKER* && -n $alive_col ]] &&
	[[ $(awk '{print $2}' <<<"$row1") == "$W1_PID" && $(awk '{print $2}' <<<"$row2") == "$W2_PID" ]] &&
	[[ $(awk -v c="$alive_col" '{print $c}' <<<"$row1") == yes && $(awk -v c="$alive_col" '{print $c}' <<<"$row2") == yes ]]; then
	pass relayctl_workers_table
else
	fail relayctl_workers_table "rc=$RC $(tr '\n' '|' <"$T_TMP/out") $(cat "$T_TMP/err")"
fi

# --- workers: JSON
rc --json workers
if [[ $RC -eq 0 ]] && json_check "
sorted((w['worker_id'], w['pid'], w['alive']) for w in d) == [('rw-1', $W1_PID, True), ('rw-2', $W2_PID, True)]
and all(isinstance(w['legs'], int) and w['host'] and w['draining'] is False and w['record'] for w in d)"; then
	pass relayctl_workers_json
else
	fail relayctl_workers_json "rc=$RC $(cat "$T_TMP/out" "$T_TMP/err")"
fi

# --- a worker killed: alive=false once its last heartbeat is 5 s old, the other stays alive
kill -KILL "$W2_PID"
wait "$W2_PID" 2>/dev/null
t0=$(now_ms)
dead_after=""
for ((i = 0; i < 150; i++)); do
	rc workers
	if [[ $RC -eq 0 && $(awk -v c="$alive_col" '$1 == "rw-2" {print $c}' "$T_TMP/out") == no ]]; then
		dead_after=$(($(now_ms) - t0))
		break
	fi
	sleep 0.1
done
rc --json workers
if [[ -n $dead_after && $dead_after -ge 3000 && $dead_after -le 10000 ]] && json_check "
[(w['alive'], w['seen_ago_ms'] > 5000) for w in d if w['worker_id'] == 'rw-2'] == [(False, True)]
and [w['alive'] for w in d if w['worker_id'] == 'rw-1'] == [True]"; then
	pass relayctl_killed_worker_not_alive
	note "rw-2 shown dead ${dead_after} ms after SIGKILL"
else
	fail relayctl_killed_worker_not_alive "after=${dead_after:-never} ms $(cat "$T_TMP/out" "$T_TMP/err")"
fi

# --- calls and signalers, from records written by hand in the documented format
now=$(now_ms)
"${RCLI[@]}" zadd rs:v1:signalers "$now" sig-t "$((now - 2000))" sig-u >/dev/null
"${RCLI[@]}" hset rs:v1:signaler:sig-t v 1 pid 4242 host gw1 sip 'sip:127.0.0.1:5060' \
	rtmp 127.0.0.1:1935 started $((now - 3600000)) seen "$now" >/dev/null
"${RCLI[@]}" expire rs:v1:signaler:sig-t 60 >/dev/null
# call_record ID STATE WORKER LEG FROM ANSWERED: one rs:v1:call:<id> hash, every field.
call_record() {
	"${RCLI[@]}" hset "rs:v1:call:$1" v 1 sip_call_id "a84b4c76e66710@pc33.$1" signaler sig-t \
		app call direction out from "$5" to 'sip:service@127.0.0.1:5070' \
		rtmp_client 'c12 127.0.0.1:5555' leg "$4" worker "$3" state "$2" codec PCMU \
		transcoding 1 srtp 0 created $((now - 65000)) answered "$6" updated "$now" >/dev/null
	"${RCLI[@]}" expire "rs:v1:call:$1" 7200 >/dev/null
}
call_record sig-t.c1.1 up rw-1 L-1 'sip:alice@example.com' $((now - 60000))
call_record sig-t.c1.2 ringing rw-2 L-2 'sip:bob@example.com' 0
call_record sig-t.c1.3 setup "" "" $'sip:"q\\uote\x1b[31m\xc3\xa9\xff@x' 0
"${RCLI[@]}" hset rs:v1:leg:L-1 v 1 worker rw-1 pkts_in 3000 pkts_out 2990 pkts_lost 4 >/dev/null
"${RCLI[@]}" sadd rs:v1:signaler:sig-t:calls sig-t.c1.1 sig-t.c1.2 sig-t.c1.3 sig-t.expired >/dev/null
"${RCLI[@]}" sadd rs:v1:signaler:sig-u:calls sig-t.c1.1 >/dev/null # listed twice: shown once

rc --json calls
if [[ $RC -eq 0 ]] && json_check "
len(d) == 3 and [c['call_id'] for c in d] == ['sig-t.c1.1', 'sig-t.c1.2', 'sig-t.c1.3']
and (d[0]['worker_id'], d[0]['worker_pid'], d[0]['state'], d[0]['packets']) == ('rw-1', $W1_PID, 'up', {'in': 3000, 'out': 2990, 'lost': 4})
and d[0]['duration_s'] in (59, 60, 61) and d[0]['app'] == 'call' and d[0]['from'] == 'sip:alice@example.com'
and (d[1]['worker_id'], d[1]['worker_pid'], d[1]['duration_s'], d[1]['packets']) == ('rw-2', None, None, None)
and (d[2]['worker_id'], d[2]['worker_pid']) == (None, None)
and d[2]['from'] == 'sip:\"q\\\\uote\x1b[31m\u00e9\ufffd@x'"; then
	pass relayctl_calls_json
else
	fail relayctl_calls_json "rc=$RC $(cat "$T_TMP/out" "$T_TMP/err")"
fi

rc calls
wpid_col=$(head -1 "$T_TMP/out" | tr -s ' ' '\n' | grep -n '^WPID$' | cut -d: -f1)
if [[ $RC -eq 0 && -n $wpid_col && $(grep -c '^sig-t\.c1\.' "$T_TMP/out") -eq 3 ]] &&
	[[ $(awk -v c="$wpid_col" '$1 == "sig-t.c1.1" {print $c}' "$T_TMP/out") == "$W1_PID" ]] &&
	grep -q '3000/2990/4' "$T_TMP/out" && ! grep -q $'\x1b' "$T_TMP/out"; then
	pass relayctl_calls_table
else
	fail relayctl_calls_table "rc=$RC $(tr '\n' '|' <"$T_TMP/out") $(cat "$T_TMP/err")"
fi

rc --json signalers
if [[ $RC -eq 0 ]] && json_check "
[(s['signaler_id'], s['pid'], s['alive'], s['calls']) for s in d] == [('sig-t', 4242, True, 4), ('sig-u', None, True, 1)]
and d[0]['rtmp'] == '127.0.0.1:1935' and d[1]['record'] is False"; then
	pass relayctl_signalers_json
else
	fail relayctl_signalers_json "rc=$RC $(cat "$T_TMP/out" "$T_TMP/err")"
fi

# --- drain: a well-formed command in the worker's queue, bounded, expiring. The real workers poll
# their queues (and would take the commands), so these go to rw-q, a worker record with no daemon.
fake_worker() {
	"${RCLI[@]}" zadd rs:v1:workers "$(now_ms)" rw-q >/dev/null
	"${RCLI[@]}" hset rs:v1:worker:rw-q v 1 instance 00000000000000aa pid 4343 host fakehost \
		ctl tcp://127.0.0.1:1 media tcp://127.0.0.1:2 legs 0 cpu 0 draining 0 \
		started "$(now_ms)" seen "$(now_ms)" >/dev/null
	"${RCLI[@]}" expire rs:v1:worker:rw-q 5 >/dev/null
}
fake_worker
Q=rs:v1:cmd:worker:rw-q
"${RCLI[@]}" del "$Q" >/dev/null
t0=$(now_ms)
rc --json --no-wait drain rw-q --deadline 30
cmd=$("${RCLI[@]}" lrange "$Q" 0 -1)
ttl=$("${RCLI[@]}" ttl "$Q")
rid=${cmd%% *}
deadline=${cmd##* }
if [[ $RC -eq 0 && $(wc -l <<<"$cmd") -eq 1 && $cmd =~ ^[A-Za-z0-9_.@-]{1,64}\ drain\ [1-9][0-9]*$ &&
	${#cmd} -le 256 && $deadline -ge $((t0 + 29000)) && $deadline -le $((t0 + 32000)) &&
	$ttl -gt 0 && $ttl -le 60 ]] &&
	json_check "d['result'] == 'queued' and d['request_id'] == '$rid' and d['command'] == '$cmd'"; then
	pass relayctl_drain_queues_command
else
	fail relayctl_drain_queues_command "rc=$RC cmd='$cmd' ttl=$ttl $(cat "$T_TMP/out" "$T_TMP/err")"
fi

fake_worker
rc --no-wait drain rw-q
cmd=$("${RCLI[@]}" lindex "$Q" -1)
if [[ $RC -eq 0 && $cmd =~ ^[A-Za-z0-9_.@-]+\ drain\ 0$ && ${cmd%% *} != "$rid" ]]; then
	pass relayctl_drain_without_deadline
else
	fail relayctl_drain_without_deadline "rc=$RC cmd='$cmd'"
fi

fake_worker
for ((i = 0; i < 105; i++)); do
	"$RELAYCTL" --no-wait undrain rw-q >/dev/null 2>&1
done
len=$("${RCLI[@]}" llen "$Q")
last=$("${RCLI[@]}" lindex "$Q" -1)
if [[ $len -eq 100 && $last =~ \ undrain$ && $("${RCLI[@]}" lindex "$Q" 0) =~ \ undrain$ ]]; then
	pass relayctl_queue_bounded
else
	fail relayctl_queue_bounded "length $len, last '$last'"
fi
"${RCLI[@]}" del "$Q" >/dev/null

# --- the acknowledgment, with redis-cli in the daemon's place
# answer_cmd RESULT: plays the daemon: takes the next command off $Q (waits up to 5 s) into
# taken, and answers it with RESULT.
answer_cmd() {
	local i
	taken=""
	for ((i = 0; i < 50; i++)); do
		taken=$("${RCLI[@]}" lpop "$Q")
		[[ -n $taken ]] && break
		sleep 0.1
	done
	[[ -n $taken ]] && "${RCLI[@]}" rpush "rs:v1:cmd:result:${taken%% *}" "$1" >/dev/null
}

fake_worker
"$RELAYCTL" --timeout 5 undrain rw-q >"$T_TMP/ack.out" 2>&1 &
ctl=$!
answer_cmd "ok undrained"
wait "$ctl"
ack_rc=$?
if [[ $taken =~ ^[A-Za-z0-9_.@-]+\ undrain$ && $ack_rc -eq 0 ]] && grep -q '^done: undrain worker rw-q' "$T_TMP/ack.out" &&
	grep -q 'undrained' "$T_TMP/ack.out"; then
	pass relayctl_ack_done
else
	fail relayctl_ack_done "taken='$taken' rc=$ack_rc $(cat "$T_TMP/ack.out")"
fi

"$RELAYCTL" --json --timeout 5 drain rw-q >"$T_TMP/out" 2>&1 &
ctl=$!
answer_cmd "invalid drain: deadline too far"
wait "$ctl"
ack_rc=$?
if [[ $ack_rc -eq 1 ]] && json_check "d['result'] == 'rejected' and d['detail'] == 'drain: deadline too far'"; then
	pass relayctl_ack_rejected
else
	fail relayctl_ack_rejected "rc=$ack_rc $(cat "$T_TMP/out")"
fi

# Nobody takes the command: timeout, and it is withdrawn so it cannot run later.
t0=$(now_ms)
rc --timeout 1 undrain rw-q
took=$(($(now_ms) - t0))
if [[ $RC -eq 1 && $took -ge 900 && $took -le 4000 && $("${RCLI[@]}" llen "$Q") -eq 0 ]] &&
	grep -q '^timeout: undrain worker rw-q' "$T_TMP/out" && grep -q 'withdrawn' "$T_TMP/out"; then
	pass relayctl_ack_timeout_withdrawn
else
	fail relayctl_ack_timeout_withdrawn "rc=$RC took=${took} ms $(cat "$T_TMP/out" "$T_TMP/err")"
fi

# --- hangup and signaler-drain go to the owning signaler's queue (alive: its heartbeat is fresh)
"${RCLI[@]}" zadd rs:v1:signalers "$(now_ms)" sig-t >/dev/null
rc --no-wait hangup sig-t.c1.2
cmd=$("${RCLI[@]}" lrange rs:v1:cmd:signaler:sig-t 0 -1)
if [[ $RC -eq 0 && $cmd =~ ^[A-Za-z0-9_.@-]+\ hangup\ sig-t\.c1\.2$ ]] &&
	grep -q 'hangup call sig-t.c1.2 (signaler sig-t)' "$T_TMP/out"; then
	pass relayctl_hangup_queues_to_owner
else
	fail relayctl_hangup_queues_to_owner "rc=$RC cmd='$cmd' $(cat "$T_TMP/out" "$T_TMP/err")"
fi
rc --no-wait signaler-drain sig-t --deadline 10
cmd=$("${RCLI[@]}" lindex rs:v1:cmd:signaler:sig-t -1)
if [[ $RC -eq 0 && $cmd =~ ^[A-Za-z0-9_.@-]+\ drain\ [1-9][0-9]*$ ]]; then
	pass relayctl_signaler_drain_queued
else
	fail relayctl_signaler_drain_queued "rc=$RC cmd='$cmd'"
fi

# --- unknown targets: exit 1, nothing queued
"${RCLI[@]}" del rs:v1:cmd:worker:rw-2 rs:v1:cmd:worker:nosuch >/dev/null
bad=""
for args in "drain nosuch" "drain rw-2" "undrain bad/id" "hangup sig-t.nosuch" "signaler-drain nosuch"; do
	# shellcheck disable=SC2086 # word splitting intended
	rc --no-wait $args
	[[ $RC -eq 1 ]] && grep -q '^unknown target' "$T_TMP/out" || bad+=" [$args: rc=$RC $(head -2 "$T_TMP/out" | tr '\n' ' ')]"
done
queued=$("${RCLI[@]}" exists rs:v1:cmd:worker:rw-2 rs:v1:cmd:worker:nosuch rs:v1:cmd:signaler:nosuch)
if [[ -z $bad && $queued -eq 0 ]]; then
	pass relayctl_unknown_target
else
	fail relayctl_unknown_target "$bad queued=$queued"
fi

# --- Redis unreachable: exit 1 with a clear message
closed=$(free_port)
rc --redis "127.0.0.1:$closed" workers
if [[ $RC -eq 1 ]] && grep -q "cannot reach Redis at 127.0.0.1:$closed" "$T_TMP/err"; then
	pass relayctl_redis_down
else
	fail relayctl_redis_down "rc=$RC $(cat "$T_TMP/err")"
fi

# --- usage errors: exit 2
bad=""
for args in "" "bogus" "workers extra" "drain" "undrain rw-q --deadline 5" "--timeout abc workers" \
	"drain rw-q --deadline -1" "--redis nohost workers" "--frobnicate workers"; do
	# shellcheck disable=SC2086 # word splitting intended
	rc $args
	[[ $RC -eq 2 ]] || bad+=" [$args: rc=$RC]"
done
REDIS_PORT=notaport "$RELAYCTL" workers >/dev/null 2>&1
env_rc=$?
if [[ -z $bad && $env_rc -eq 2 ]]; then
	pass relayctl_usage_errors
else
	fail relayctl_usage_errors "$bad env=$env_rc"
fi

# The fake worker has served its purpose: later cases count the live workers.
"${RCLI[@]}" zrem rs:v1:workers rw-q >/dev/null
"${RCLI[@]}" del rs:v1:worker:rw-q >/dev/null

# --- AUTH: a password-protected Redis
AUTH_PORT=$(free_port)
spawn "$T_TMP/redis-auth.log" redis-server --port "$AUTH_PORT" --bind 127.0.0.1 --save '' \
	--appendonly no --requirepass s3cret --dir "$T_TMP"
if wait_port "$AUTH_PORT" "$SPAWNED_PID" 10; then
	"$RELAYCTL" --redis "127.0.0.1:$AUTH_PORT" workers >/dev/null 2>"$T_TMP/noauth.err"
	noauth_rc=$?
	rc --redis "127.0.0.1:$AUTH_PORT" --password s3cret workers
	if [[ $noauth_rc -eq 1 && $RC -eq 0 ]] && grep -q 'no workers' "$T_TMP/out" &&
		REDIS_PASSWORD=s3cret "$RELAYCTL" --redis "127.0.0.1:$AUTH_PORT" workers >/dev/null 2>&1; then
		pass relayctl_auth
	else
		fail relayctl_auth "without password rc=$noauth_rc, with rc=$RC $(cat "$T_TMP/out" "$T_TMP/err")"
	fi
else
	fail relayctl_auth "the password-protected redis-server did not start"
fi

# --- Sentinel: REDIS_SENTINELS + REDIS_MASTER_NAME, as the daemons read them
SENT_PORT=$(free_port)
printf 'port %s\nbind 127.0.0.1\nsentinel monitor relaymaster 127.0.0.1 %s 1\n' "$SENT_PORT" \
	"$REDIS_PORT" >"$T_TMP/sentinel.conf"
spawn "$T_TMP/sentinel.log" redis-server "$T_TMP/sentinel.conf" --sentinel --dir "$T_TMP"
if wait_port "$SENT_PORT" "$SPAWNED_PID" 10; then
	dead_sentinel=$(free_port)
	REDIS_SENTINELS="127.0.0.1:$dead_sentinel,127.0.0.1:$SENT_PORT" REDIS_MASTER_NAME=relaymaster \
		REDIS_PORT=1 "$RELAYCTL" --json workers >"$T_TMP/out" 2>"$T_TMP/err"
	RC=$?
	if [[ $RC -eq 0 ]] && json_check "[w['worker_id'] for w in d if w['alive']] == ['rw-1']"; then
		pass relayctl_sentinel
	else
		fail relayctl_sentinel "rc=$RC $(cat "$T_TMP/out" "$T_TMP/err")"
	fi
else
	fail relayctl_sentinel "redis-server --sentinel did not start"
fi

finish
