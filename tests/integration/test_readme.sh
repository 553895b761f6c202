#!/usr/bin/env bash
# test_readme.sh - the README's examples, as printed, after `make run` (scripts/run.sh with its
# defaults: RTMP 1935, RTMPS 1936, SIP 5060). The commands are read from README.md's ```sh blocks
# of "Try it with ffmpeg" and run in a scratch directory (where build/ and tests/ lead to this
# checkout), so an example that stops working, or a README that stops matching the code, fails
# here. Publishers run until their recording is done; ffplay (a window) is not run.
#
#   readme_echo      each publisher of the echo block, then its recording command: out.wav holds
#                    the 1 kHz tone
#   readme_call      the URL-dialing block against its SIPp callee: far_end.wav holds the tone
#   readme_video     the H.264 block against its video-echoing SIPp callee: far_end.flv holds H.264
#                    pictures that decode without an error, and the tone
#   readme_sipphone  the scripted sip-app client against the same SIPp callee: far_end.wav holds
#                    the tone
#   readme_rtmps     the RTMPS block: out.wav holds the tone
#
# The examples name fixed ports: when one is taken on this machine the test skips (it cannot run
# them as printed).
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

WAVCHECK="$BUILD/tools/wavcheck"
need_tools readme ffmpeg ffprobe sipp redis-server python3
for bin in "$BUILD/signaler" "$BUILD/mediaworker" "$BUILD/tools/sipphone" "$WAVCHECK"; do
	[[ -x $bin ]] || { fail readme_setup "$bin not built"; finish; }
done

# The README's ports must be free (Redis and the metrics, which no example names, get free ones).
taken=$(python3 - <<'PY'
import socket
busy = []
for proto, port in (("tcp", 1935), ("tcp", 1936), ("udp", 5060), ("tcp", 5060), ("udp", 5070)):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM)
    try:
        s.bind(("127.0.0.1", port))
    except OSError:
        busy.append(f"{proto}/{port}")
    finally:
        s.close()
print(" ".join(busy))
PY
)
if [[ -n $taken ]]; then
	skip readme "the README's ports are taken here: $taken"
	finish
fi

# --- the examples, from README.md ----------------------------------------------------------------

# The commands of the ```sh blocks between "## Try it with ffmpeg" and the next "## " heading, one
# per line of $T_TMP/cmds, as "BLOCK<TAB>KIND<TAB>COMMAND": lines ending in a backslash are joined
# (comments too); a block's here-document stays one command (newlines as \n). KIND: pub (ffmpeg
# -re), rec (an ffmpeg that reads rtmp), callee (the "# (a ... callee ...: CMD)" comment), script
# (a command with a here-document), or other.
python3 - "$T_ROOT/README.md" >"$T_TMP/cmds" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
section = text.split("\n## Try it with ffmpeg\n", 1)[1].split("\n## ", 1)[0]
for b, block in enumerate(re.findall(r"```sh\n(.*?)```", section, re.S)):
    lines, joined = block.splitlines(), []
    i = 0
    while i < len(lines):
        line = lines[i]
        m = re.search(r"<<'(\w+)'$", line)
        if m:  # a here-document: up to its end marker
            end = lines.index(m.group(1), i + 1)
            joined.append("\n".join(lines[i:end + 1]))
            i = end + 1
            continue
        while line.endswith("\\") and i + 1 < len(lines):
            i += 1
            nxt = lines[i]
            line = line[:-1].rstrip() + " " + (nxt.lstrip("#").strip() if line.lstrip().startswith("#") else nxt.strip())
        joined.append(line)
        i += 1
    for cmd in joined:
        callee = re.match(r"#\s*\(a [^:]*callee[^:]*:\s*(.*)\)\s*$", cmd)
        if callee:
            kind, cmd = "callee", callee.group(1)
        elif cmd.startswith("#") or not cmd.strip():
            continue
        elif "<<'" in cmd:
            kind = "script"
        elif cmd.startswith("ffmpeg -re "):
            kind = "pub"
            cmd = re.sub(r"\s+#.*$", "", cmd)
        elif cmd.startswith("ffmpeg ") and "-i rtmp" in cmd:
            kind = "rec"
        else:
            kind = "other"
        print(f"{b}\t{kind}\t{cmd.encode('unicode_escape').decode()}")
PY
[[ -s $T_TMP/cmds ]] || { fail readme_setup "no commands found in README.md's 'Try it with ffmpeg'"; finish; }
sed 's/^/  | /' "$T_TMP/cmds"

# cmds BLOCK KIND: the block's commands of that kind, one per line (here-documents unescaped by
# the caller).
cmds() { awk -F'\t' -v b="$1" -v k="$2" '$1 == b && $2 == k { print $3 }' "$T_TMP/cmds"; }
# block_of TEXT: the first block with a command containing TEXT.
block_of() { awk -F'\t' -v t="$1" 'index($3, t) { print $1; exit }' "$T_TMP/cmds"; }

# scratch NAME: a fresh directory where build/ and tests/ lead to this checkout; cd into it.
scratch() {
	local d="$T_TMP/$1"
	mkdir -p "$d" && ln -sfn "$BUILD" "$d/build" && ln -sfn "$T_ROOT/tests" "$d/tests" && cd "$d" || exit 1
}

# tone FILE: the recording holds 1 kHz for at least 3 s.
tone() {
	local out
	if [[ ! -s $1 ]]; then
		why "no recording $(basename "$1")"
		return 1
	fi
	out=$("$WAVCHECK" --expect-freq 1000 --tol 30 --min-duration 3 --min-rms-dbfs -40 "$1" 2>&1) || {
		why "$(basename "$1"): $(grep -m1 FAIL <<<"$out")"
		return 1
	}
}

# pub_rec NAME PUB REC: PUB in the background, REC (bounded to 30 s) once it has had a second to
# start, then PUB stopped. In the scratch directory NAME.
pub_rec() {
	scratch "$1"
	spawn "$T_TMP/$1.pub.log" bash -c "$2"
	local pub=$SPAWNED_PID
	sleep 1.5
	timeout 30 bash -c "$3" </dev/null >"$T_TMP/$1.rec.log" 2>&1 || why "$1: the recording command failed (rc $?): $(tail -2 "$T_TMP/$1.rec.log" | tr '\n' ' ')"
	stop_pid "$pub" 3
	cd "$T_TMP" || exit 1
}

# callee_start NAME CMD: the SIPp callee as printed (it listens on 5070).
callee_start() {
	scratch "$1"
	spawn "$T_TMP/$1.callee.log" bash -c "$2"
	CALLEE_PID=$SPAWNED_PID
	sleep 1
	cd "$T_TMP" || exit 1
}

# --- make run ---------------------------------------------------------------------------------------

spawn "$T_TMP/run.out" env -u CURVE_SECRET_KEY_FILE -u CURVE_ALLOWED_KEYS_FILE -u RTMP_PORT \
	-u RTMPS_PORT -u SIP_PORT REDIS_PORT="$(free_port)" METRICS_PORT="$(free_port)" RUN_DIR="$T_TMP/run" BUILD="$BUILD" \
	RUN_TAIL=0 STOP_GRACE=3 bash "$T_ROOT/scripts/run.sh"
RUN_PID=$SPAWNED_PID
wait_log "$T_TMP/run.out" 'rtmp2sip is running' 30 "$RUN_PID" ||
	{ fail readme_setup "run.sh did not start: $(tail -5 "$T_TMP/run.out" | tr '\n' ' ')"; finish; }

# --- the examples ----------------------------------------------------------------------------------

b=$(block_of "/echo/me")
n=0
while IFS= read -r pub; do
	n=$((n + 1))
	pub_rec "echo$n" "$pub" "$(cmds "$b" rec | head -1)"
	tone "$T_TMP/echo$n/out.wav" || why "with: $pub"
done < <(cmds "$b" pub)
((n == 3)) || why "$n publishers in the echo block, not 3"
verdict readme_echo

b=$(block_of "/call/service@")
callee=$(cmds "$b" callee)
callee_start call "$callee"
pub_rec call "$(cmds "$b" pub)" "$(cmds "$b" rec)"
tone "$T_TMP/call/far_end.wav"
[[ -n $callee ]] || why "no callee in the call block"
verdict readme_call

# The scripted client calls the same callee.
script=$(awk -F'\t' '$2 == "script" { print $3; exit }' "$T_TMP/cmds")
scratch sipphone
timeout 40 bash -c "$(printf '%b' "$script")" >"$T_TMP/sipphone.log" 2>&1 ||
	why "the sipphone example failed (rc $?): $(tail -3 "$T_TMP/sipphone.log" | tr '\n' ' ')"
cd "$T_TMP" || exit 1
tone "$T_TMP/sipphone/far_end.wav"
[[ -n $script ]] || why "no sipphone block"
verdict readme_sipphone
stop_pid "$CALLEE_PID" 3

b=$(block_of "libx264")
callee_start video "$(cmds "$b" callee)"
pub_rec video "$(cmds "$b" pub)" "$(cmds "$b" rec)"
flv="$T_TMP/video/far_end.flv"
if [[ -s $flv ]]; then
	frames=$(ffprobe -v error -select_streams v:0 -count_frames -show_entries stream=codec_name,nb_read_frames \
		-of csv=p=0 "$flv" 2>&1)
	[[ $frames == h264,* && ${frames#h264,} -ge 30 ]] || why "far_end.flv video: '$frames' (H.264, 30 pictures or more wanted)"
	errs=$(ffmpeg -v error -i "$flv" -f null - 2>&1 | head -3)
	[[ -z $errs ]] || why "far_end.flv does not decode cleanly: $errs"
	ffmpeg -v error -y -i "$flv" -vn -ac 1 "$T_TMP/video/far_end.wav" >/dev/null 2>&1
	tone "$T_TMP/video/far_end.wav"
else
	why "no far_end.flv"
fi
verdict readme_video
stop_pid "$CALLEE_PID" 3

b=$(block_of "rtmps://")
pub_rec rtmps "$(cmds "$b" pub)" "$(cmds "$b" rec)"
tone "$T_TMP/rtmps/out.wav"
verdict readme_rtmps

stop_pid "$RUN_PID" 10
finish
