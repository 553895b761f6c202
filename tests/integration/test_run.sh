#!/usr/bin/env bash
# test_run.sh - what `make run` sets up (scripts/run.sh, here with RUN_DIR in the test's
# directory and free ports): secrets made once and reused, Redis behind a password that no
# command line shows, CURVE between the daemons, and relayctl finding the stack by itself.
#
#   run_secrets        run/secrets (0700) holds redis.pass, the key pairs (0600) and the allowed
#                      lists; run/rtmp2sip.env (0600) names REDIS_HOST, REDIS_PORT,
#                      REDIS_PASSWORD_FILE; no password on redis-server's command line
#   run_redis_password Redis refuses a client without the password
#   run_curve          the signaler and the worker say they run CURVE, and the worker is up at
#                      the signaler
#   run_relayctl       relayctl with no REDIS_* variable and no flag, from the directory that holds
#                      run/ (and with RTMP2SIP_ENV from anywhere), lists the worker and the signaler
#   run_supervise      a worker killed with SIGKILL is started again, with a line saying how it
#                      ended; run.sh and the signaler run on
#   run_supervise_signaler  the signaler killed with SIGKILL is started again and sees the worker
#                      up again; run.sh and the worker run on
#   run_ctrl_c         SIGINT (Ctrl-C) to run.sh: every process stopped, exit 0, "run: stopped
#                      cleanly", no process seen ending on its own meanwhile
#   run_make_ctrl_c    `make run` on a pseudo-terminal, then Ctrl-C typed on it: make exits 0 with
#                      "run: stopped cleanly" and no "Interrupt" or "Error" from make
#   run_reuse          a second start reuses the same password and key pairs
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

RUN_SH="$T_ROOT/scripts/run.sh"
RELAYCTL="$BUILD/relayctl"
need_tools run redis-server redis-cli
for bin in "$BUILD/signaler" "$BUILD/mediaworker" "$RELAYCTL"; do
	[[ -x $bin ]] || { fail run_setup "$bin not built"; finish; }
done

RUN="$T_TMP/run"
S="$RUN/secrets"
base=$((44000 + RANDOM % 4000 / 2 * 2))
RTMP=$(free_port) SIP=$(free_port) RPORT=$(free_port)

# start_stack N: scripts/run.sh in the background (output $T_TMP/run.N.out); its pid in RUN_PID;
# false unless it says it runs within 20 s.
start_stack() {
	# As from a terminal: a process group of its own (a Ctrl-C is sent to the whole group), and
	# SIGINT not ignored (a script's background job starts with it ignored, which bash cannot
	# trap: python gives run.sh the default disposition a foreground job has).
	spawn "$T_TMP/run.$1.out" setsid python3 -c 'import os, signal, sys
signal.signal(signal.SIGINT, signal.SIG_DFL)
os.execvp(sys.argv[1], sys.argv[1:])' env -u CURVE_SECRET_KEY_FILE -u CURVE_ALLOWED_KEYS_FILE \
		RUN_DIR="$RUN" BUILD="$BUILD" RTMP_PORT="$RTMP" SIP_PORT="$SIP" REDIS_PORT="$RPORT" \
		WORKERS=1 RTP_PORT_MIN="$base" RTP_PORT_MAX=$((base + 99)) METRICS_PORT=0 RUN_TAIL=0 \
		STOP_GRACE=3 bash "$RUN_SH"
	RUN_PID=$SPAWNED_PID
	wait_log "$T_TMP/run.$1.out" 'rtmp2sip is running' 20 "$RUN_PID"
}

# mode PATH: the file's permission bits, octal.
mode() { stat -c %a "$1"; }

start_stack 1 || { fail run_setup "run.sh did not start: $(tail -5 "$T_TMP/run.1.out" | tr '\n' ' ')"; finish; }

[[ $(mode "$S") == 700 ]] || why "secrets/ is $(mode "$S")"
for f in redis.pass redis.conf signaler.key worker.key; do
	[[ -s $S/$f && $(mode "$S/$f") == 600 ]] || why "secrets/$f missing or mode $(mode "$S/$f" 2>/dev/null)"
done
for f in signaler.allowed worker.allowed; do [[ -s $S/$f ]] || why "secrets/$f missing"; done
[[ $(mode "$RUN/rtmp2sip.env") == 600 ]] || why "rtmp2sip.env mode $(mode "$RUN/rtmp2sip.env")"
grep -qx "REDIS_PASSWORD_FILE='$S/redis.pass'" "$RUN/rtmp2sip.env" &&
	grep -qx "REDIS_PORT='$RPORT'" "$RUN/rtmp2sip.env" || why "rtmp2sip.env: $(tr '\n' ' ' <"$RUN/rtmp2sip.env")"
PASS1=$(cat "$S/redis.pass")
rpid=$(cat "$RUN/redis/redis.pid" 2>/dev/null)
[[ -n $rpid ]] && grep -qF -- "$PASS1" "/proc/$rpid/cmdline" && why "the password is on redis-server's command line"
((${#PASS1} >= 32)) || why "a short password (${#PASS1} characters)"
verdict run_secrets

r=$(redis-cli -p "$RPORT" ping 2>&1)
[[ $r == *NOAUTH* ]] || why "Redis answered '$r' without the password"
[[ $(REDISCLI_AUTH=$PASS1 redis-cli -p "$RPORT" --no-auth-warning ping) == PONG ]] || why "no PONG with the password"
verdict run_redis_password

wait_log "$RUN/logs/mediaworker-1.log" 'ZeroMQ CURVE on' 5 || why "the worker does not say CURVE"
wait_log "$RUN/logs/signaler.log" 'ZeroMQ CURVE on' 5 || why "the signaler does not say CURVE"
wait_log "$RUN/logs/signaler.log" 'mediaworker up' 10 || why "the worker did not come up at the signaler"
verdict run_curve

# relayctl as README and docs/relayctl.md show it: no flags, no variables.
out=$(cd "$T_TMP" && env -u REDIS_HOST -u REDIS_PORT -u REDIS_PASSWORD -u REDIS_PASSWORD_FILE \
	"$RELAYCTL" workers 2>&1) || why "relayctl workers: $out"
grep -q '^mw-1 .* yes ' <<<"$out" || why "relayctl workers does not list mw-1 alive: $out"
out=$(cd "$T_TMP" && env -u REDIS_HOST -u REDIS_PORT "$RELAYCTL" signalers 2>&1) || why "relayctl signalers: $out"
grep -q ' yes ' <<<"$out" || why "relayctl signalers: $out"
out=$(cd / && env -u REDIS_HOST -u REDIS_PORT RTMP2SIP_ENV="$RUN/rtmp2sip.env" "$RELAYCTL" calls 2>&1) ||
	why "relayctl calls with RTMP2SIP_ENV: $out"
verdict run_relayctl

# A worker killed as the README's failover claim invites is started again; the rest runs on.
wpid=$(sed -n 's/^run: started mediaworker-1 (pid \([0-9]*\).*/\1/p' "$T_TMP/run.1.out")
spid=$(sed -n 's/^run: started signaler (pid \([0-9]*\).*/\1/p' "$T_TMP/run.1.out")
if [[ -z $wpid || -z $spid ]]; then
	why "no worker or signaler pid in run.sh's output"
else
	kill -KILL "$wpid"
	wait_log "$T_TMP/run.1.out" 'mediaworker-1 started again' 10 "$RUN_PID" ||
		why "the killed worker was not started again: $(tail -3 "$T_TMP/run.1.out" | tr '\n' ' ')"
	grep -q "mediaworker-1 (pid $wpid) killed by SIGKILL" "$T_TMP/run.1.out" ||
		why "no line saying how the worker ended"
	kill -0 "$RUN_PID" 2>/dev/null || why "run.sh stopped"
	kill -0 "$spid" 2>/dev/null || why "the signaler was stopped too"
	for ((i = 0; i < 100; i++)); do
		(($(grep -c 'mediaworker ready' "$RUN/logs/mediaworker-1.log") >= 2)) && break
		sleep 0.1
	done
	((i < 100)) || why "the new worker is not ready"
fi
verdict run_supervise

# The signaler killed the same way: started again, the worker (not restarted) reconnects to it.
wpid2=$(sed -n 's/^run: mediaworker-1 started again (pid \([0-9]*\).*/\1/p' "$T_TMP/run.1.out" | tail -1)
if [[ -z $spid || -z $wpid2 ]]; then
	why "no signaler pid, or no restarted worker's pid, in run.sh's output"
else
	kill -KILL "$spid"
	wait_log "$T_TMP/run.1.out" 'signaler started again' 10 "$RUN_PID" ||
		why "the killed signaler was not started again: $(tail -3 "$T_TMP/run.1.out" | tr '\n' ' ')"
	grep -q "signaler (pid $spid) killed by SIGKILL" "$T_TMP/run.1.out" ||
		why "no line saying how the signaler ended"
	for ((i = 0; i < 150; i++)); do
		awk '/=== .* starting signaler/ { s = "" } { s = s $0 "\n" } END { printf "%s", s }' \
			"$RUN/logs/signaler.log" | grep -q 'mediaworker up' && break
		sleep 0.1
	done
	((i < 150)) || why "the new signaler does not see the worker up"
	kill -0 "$RUN_PID" 2>/dev/null || why "run.sh stopped"
	kill -0 "$wpid2" 2>/dev/null || why "the worker was stopped too"
fi
verdict run_supervise_signaler

# Ctrl-C, as a terminal sends it: SIGINT to run.sh's whole process group. run.sh alone gets it
# (its processes have sessions of their own) and stops them all in order.
before_int=$(wc -l <"$T_TMP/run.1.out")
kill -INT -- "-$RUN_PID"
for ((i = 0; i < 100; i++)); do kill -0 "$RUN_PID" 2>/dev/null || break; sleep 0.1; done
if kill -0 "$RUN_PID" 2>/dev/null; then
	why "run.sh still runs 10 s after SIGINT"
	stop_pid "$RUN_PID" 10
	rc=0
else
	wait "$RUN_PID" 2>/dev/null
	rc=$?
fi
((rc == 0)) || why "run.sh exited with status $rc after SIGINT"
grep -q '^run: stopped cleanly$' "$T_TMP/run.1.out" || why "no 'stopped cleanly' line"
grep -q 'exited with status\|starting it again' <(tail -n +$((before_int + 1)) "$T_TMP/run.1.out") &&
	why "a process was seen ending on its own while stopping"
for pid in $(sed -n 's/^run: .*(pid \([0-9]*\).*/\1/p' "$T_TMP/run.1.out"); do
	kill -0 "$pid" 2>/dev/null && why "pid $pid still runs"
done
verdict run_ctrl_c

start_stack 2 || why "the second start failed: $(tail -5 "$T_TMP/run.2.out" | tr '\n' ' ')"
[[ $(cat "$S/redis.pass") == "$PASS1" ]] || why "a new password"
grep -q 'generated' "$T_TMP/run.2.out" && why "secrets generated again: $(grep generated "$T_TMP/run.2.out")"
# the second signaler's log (run.sh appends, after a "starting" line) must see the worker up
for ((i = 0; i < 100; i++)); do
	awk '/=== .* starting signaler/ { s = "" } { s = s $0 "\n" } END { printf "%s", s }' \
		"$RUN/logs/signaler.log" | grep -q 'mediaworker up' && break
	sleep 0.1
done
((i < 100)) || why "no worker up after the restart"
verdict run_reuse
stop_pid "$RUN_PID" 10

# `make run` as a newcomer types it, on a terminal (a pseudo-terminal here), then Ctrl-C: the
# terminal sends SIGINT to its foreground process group, which must be run.sh's alone.
san=${BUILD##*/build}
san=${san#-}
RUN3="$T_TMP/run3" T_ROOT="$T_ROOT" BUILD="$BUILD" SAN="$san" RTMP="$RTMP" SIP="$SIP" RPORT="$RPORT" \
	BASE="$base" python3 - "$T_TMP/make_run.out" >"$T_TMP/make_run.rc" 2>&1 <<'PY'
import os, pty, select, sys, time
e = os.environ
env = dict(e, RUN_DIR=e["RUN3"], RTMP_PORT=e["RTMP"], SIP_PORT=e["SIP"], REDIS_PORT=e["RPORT"],
           WORKERS="1", RTP_PORT_MIN=e["BASE"], RTP_PORT_MAX=str(int(e["BASE"]) + 99),
           METRICS_PORT="0", RTMPS_PORT="0", RUN_TAIL="0", STOP_GRACE="3")
for k in ("CURVE_SECRET_KEY_FILE", "CURVE_ALLOWED_KEYS_FILE"):
    env.pop(k, None)
pid, fd = pty.fork()
if pid == 0:
    os.execvpe("make", ["make", "-C", e["T_ROOT"], "--no-print-directory", "run",
                        "BUILD=" + e["BUILD"], "SANITIZER=" + e["SAN"]], env)
out = b""
def pump(seconds, until=None):
    global out
    end = time.time() + seconds
    while time.time() < end:
        if until and until in out:
            return True
        if not select.select([fd], [], [], 0.2)[0]:
            continue
        try:
            data = os.read(fd, 4096)
        except OSError:
            return False
        if not data:
            return False
        out += data
    return until is None
up = pump(90, b"rtmp2sip is running")
time.sleep(1)
os.write(fd, b"\x03")
pump(20)
_, status = os.waitpid(pid, 0)
open(sys.argv[1], "wb").write(out)
print("up" if up else "not-up", os.waitstatus_to_exitcode(status))
PY
read -r up rc <"$T_TMP/make_run.rc"
[[ $up == up ]] || why "make run did not say it runs: $(tail -5 "$T_TMP/make_run.out" | tr '\r\n' '  ')"
[[ $rc == 0 ]] || why "make run exited with $rc after Ctrl-C (a signal when negative)"
grep -q 'run: stopped cleanly' "$T_TMP/make_run.out" || why "no 'stopped cleanly' line"
grep -q 'Interrupt\|Error' "$T_TMP/make_run.out" && why "make says: $(grep 'Interrupt\|Error' "$T_TMP/make_run.out")"
verdict run_make_ctrl_c
finish
