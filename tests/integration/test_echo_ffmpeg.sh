#!/usr/bin/env bash
# test_echo_ffmpeg.sh - interop with a client no one here wrote: ffmpeg publishes a tone to the
# signaler's echo app and ffmpeg players of the same stream must receive it.
#
#   echo_speex        player of echo/x started first, Speex 16 kHz 1000 Hz publisher 1 s later:
#                     the recording holds 1000 +- 30 Hz for >= 3 s
#   echo_pcmu         the same with a G.711 u-law 8 kHz publisher of 700 Hz
#   echo_two_players  two players of echo/z, one Speex publisher of 1500 Hz: both get the tone
#   echo_timestamps   a stream copy (-c copy to FLV) of echo/y: packet timestamps strictly increase
#                     by the 20 ms of a Speex frame, with no jumps, over the whole recording
#   echo_end_of_stream a player without -t gets the whole 5 s (nothing dropped) and ends within
#                     3 s of the publisher (the server tells it the stream stopped)
#   echo_late_player  a player that joins 1.5 s after the publisher started still gets the tone
#   echo_alive        the signaler is still running after all that
#   echo_sigterm_exit the signaler exits with status 0 on SIGTERM (no leak report under ASan)
#   echo_app_off      a signaler started without ECHO_APP refuses publish and play of echo/<name>
#                     with a reason naming ECHO_APP (the app is off by default)
#
# Every client runs under `timeout`; env BUILD selects the build (default build).

# shellcheck disable=SC2317 # functions called indirectly (run_case) look unreachable to it
# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

need_tools echo_ffmpeg ffmpeg ffprobe
if [[ ! -x $WAVCHECK ]]; then
	fail echo_ffmpeg "$WAVCHECK not built (make tools)"
	finish
fi
# shellcheck disable=SC2119 # no extra environment for this one
if ! start_signaler; then
	fail echo_ffmpeg "the signaler did not start"
	finish
fi

URL="rtmp://127.0.0.1:$RTMP_PORT/echo"
FFMPEG=(ffmpeg -nostdin -hide_banner -loglevel "${FFMPEG_LOGLEVEL:-error}" -y)
CLIENT_TIMEOUT=${CLIENT_TIMEOUT:-40}        # seconds any one ffmpeg may run
PLAYER_RW_TIMEOUT=20000000 # microseconds a player waits for data before giving up

# start_player LABEL STREAM OUT [output options...]: an ffmpeg player of echo/STREAM writing OUT.
# -analyzeduration 1 s: ffmpeg's RTMP client announces audio and video to its FLV demuxer, which
# then probes for a video stream that never comes for the default 5 s of stream time, reading the
# whole 5 s tone before writing anything (and with ffmpeg 5.1, then writing nothing under -t).
start_player() {
	local label=$1 stream=$2 out=$3
	shift 3
	spawn "$T_TMP/$label.log" timeout -k 5 "$CLIENT_TIMEOUT" "${FFMPEG[@]}" \
		-rw_timeout "$PLAYER_RW_TIMEOUT" -analyzeduration 1000000 -i "$URL/$stream" "$@" "$out"
}

# start_publisher LABEL STREAM FREQ RATE [codec options...]: publishes a 5 s sine of FREQ Hz made
# at RATE Hz, in real time, to echo/STREAM.
start_publisher() {
	local label=$1 stream=$2 freq=$3 rate=$4
	shift 4
	spawn "$T_TMP/$label.log" timeout -k 5 "$CLIENT_TIMEOUT" "${FFMPEG[@]}" -re -f lavfi \
		-i "sine=frequency=$freq:sample_rate=$rate:duration=5" "$@" -f flv "$URL/$stream"
}

# Each case collects what went wrong in WHY and ends with exactly one PASS or FAIL line.
WHY=()

# why TEXT...: records a reason the current case fails.
why() {
	WHY+=("$*")
}

# client_ok LABEL PID WHAT: waits for a client; records why (and shows its log) when it did not
# exit 0 (124: it ran into CLIENT_TIMEOUT).
client_ok() {
	local label=$1 pid=$2 what=$3 rc
	wait "$pid"
	rc=$?
	[[ $rc -eq 0 ]] && return 0
	if [[ $rc -eq 124 ]]; then
		why "$what ($label) hung: killed after ${CLIENT_TIMEOUT}s"
	else
		why "$what ($label) exited with status $rc"
	fi
	log_tail "$T_TMP/$label.log" 15
	return 1
}

# wav_ok FILE FREQ [wavcheck options]: the recording holds FREQ +- 30 Hz for at least 3 s (the
# options may add to or override that); records why not.
wav_ok() {
	local file=$1 freq=$2 out line
	shift 2
	if [[ ! -s $file ]]; then
		why "no recording: $(basename "$file") is missing or empty"
		return 1
	fi
	if ! out=$("$WAVCHECK" --expect-freq "$freq" --tol 30 --min-duration 3 \
		--min-rms-dbfs -40 "$@" "$file" 2>&1); then
		why "$(basename "$file"): $(grep -m1 'FAIL' <<<"$out" | sed 's/^wavcheck: FAIL: //')"
		while IFS= read -r line; do echo "  | $line"; done <<<"$out"
		return 1
	fi
	note "$(basename "$file"): $out"
	return 0
}

# run_case NAME FUNCTION: runs one case unless the signaler is gone, then prints its verdict.
run_case() {
	local name=$1
	WHY=()
	if ! signaler_alive; then
		skip "$name" "not run: the signaler died earlier (${SIGNALER_DIED:-never started})"
		return
	fi
	"$2"
	signaler_alive || why "the signaler died (${SIGNALER_DIED})"
	if [[ ${#WHY[@]} -eq 0 ]]; then
		pass "$name"
	else
		local more="" rest
		if [[ ${#WHY[@]} -gt 1 ]]; then
			rest=$(printf '%s; ' "${WHY[@]:1}")
			more=" (also: ${rest%; })"
		fi
		fail "$name" "${WHY[0]}$more"
	fi
}

# tone CASE STREAM FREQ RATE PLAYER_T [codec options...]: one player first (recording PLAYER_T
# seconds), the publisher 1 s later; the recording must hold the tone.
tone() {
	local name=$1 stream=$2 freq=$3 rate=$4 t=$5 play pub
	shift 5
	start_player "$name-player" "$stream" "$T_TMP/$name.wav" -t "$t"
	play=$SPAWNED_PID
	sleep 1
	start_publisher "$name-publisher" "$stream" "$freq" "$rate" "$@"
	pub=$SPAWNED_PID
	client_ok "$name-publisher" "$pub" "the publisher"
	client_ok "$name-player" "$play" "the player" && wav_ok "$T_TMP/$name.wav" "$freq"
}

case_speex() {
	tone echo_speex x 1000 16000 4 -c:a libspeex -ac 1 -ar 16000
}

case_pcmu() {
	tone echo_pcmu w 700 8000 4 -c:a pcm_mulaw -ac 1 -ar 8000
}

case_two_players() {
	local name=echo_two_players a b pub
	start_player "$name-player-a" z "$T_TMP/$name-a.wav" -t 4
	a=$SPAWNED_PID
	start_player "$name-player-b" z "$T_TMP/$name-b.wav" -t 4
	b=$SPAWNED_PID
	sleep 1
	start_publisher "$name-publisher" z 1500 16000 -c:a libspeex -ac 1 -ar 16000
	pub=$SPAWNED_PID
	client_ok "$name-publisher" "$pub" "the publisher"
	client_ok "$name-player-a" "$a" "player A" && wav_ok "$T_TMP/$name-a.wav" 1500
	client_ok "$name-player-b" "$b" "player B" && wav_ok "$T_TMP/$name-b.wav" 1500
}

# The player copies the stream as it comes (-c copy): the FLV keeps the timestamps the server
# sent. ffmpeg's libspeex encoder puts one 20 ms frame in each message, so consecutive audio
# packets must be 20 ms apart (+-2 ms for rounding), never equal or decreasing, never a jump.
case_timestamps() {
	local name=echo_timestamps play pub flv="$T_TMP/echo_timestamps.flv" verdict
	start_player "$name-player" y "$flv" -c copy -t 3
	play=$SPAWNED_PID
	sleep 1
	start_publisher "$name-publisher" y 1000 16000 -c:a libspeex -ac 1 -ar 16000
	pub=$SPAWNED_PID
	client_ok "$name-publisher" "$pub" "the publisher"
	client_ok "$name-player" "$play" "the player" || return
	if [[ ! -s $flv ]]; then
		why "no recording: $(basename "$flv") is missing or empty"
		return
	fi
	if ! ffprobe -v error -select_streams a:0 -show_entries packet=pts -of csv=p=0 "$flv" \
		>"$T_TMP/$name.pts" 2>"$T_TMP/$name.ffprobe.log"; then
		why "ffprobe could not read the recording"
		log_tail "$T_TMP/$name.ffprobe.log" 10
		return
	fi
	verdict=$(awk -F, '
		$1 == "" || $1 == "N/A" { next }
		{ pts = $1 + 0 }
		n > 0 {
			d = pts - prev
			if (d <= 0) { back++; if (!first_back) first_back = sprintf("%d -> %d at packet %d", prev, pts, n) }
			if (d > maxd) maxd = d
			if (d >= 18 && d <= 22) good++
		}
		n == 0 { first = pts }
		{ prev = pts; n++ }
		END {
			if (n < 100) { printf "only %d audio packets (expected ~150 for 3 s)\n", n; exit }
			span = prev - first
			if (back) { printf "timestamps not increasing %d times, first %s\n", back, first_back; exit }
			if (maxd > 100) { printf "a jump of %d ms between packets\n", maxd; exit }
			if (good < 0.9 * (n - 1)) {
				printf "only %d of %d steps are 20 +- 2 ms (max %d ms)\n", good, n - 1, maxd; exit
			}
			if (span < 2500) { printf "timestamps span only %d ms\n", span; exit }
			printf "OK %d packets, span %d ms, %d steps of 20 +- 2 ms, max step %d ms\n", n, span, good, maxd
		}' "$T_TMP/$name.pts")
	if [[ $verdict == OK* ]]; then
		note "$name: ${verdict#OK }"
	else
		why "$verdict"
		echo "  | first pts (ms): $(head -n 20 "$T_TMP/$name.pts" | tr '\n' ' ')"
	fi
}

# No -t: the player must get all 5 s and stop by itself soon after the publisher, which only
# happens when the server tells it the stream ended (onStatus Play.UnpublishNotify/Stop, or EOF).
case_end_of_stream() {
	local name=echo_end_of_stream play pub t_pub
	start_player "$name-player" e "$T_TMP/$name.wav"
	play=$SPAWNED_PID
	sleep 1
	start_publisher "$name-publisher" e 1000 16000 -c:a libspeex -ac 1 -ar 16000
	pub=$SPAWNED_PID
	client_ok "$name-publisher" "$pub" "the publisher"
	t_pub=$SECONDS
	while kill -0 "$play" 2>/dev/null && ((SECONDS - t_pub < 10)); do
		sleep 0.2
	done
	if kill -0 "$play" 2>/dev/null; then
		why "the player was still waiting 10 s after the publisher stopped" \
			"(no end of stream from the server)"
		kill -TERM "$play" 2>/dev/null
		wait "$play" 2>/dev/null
		return
	fi
	((SECONDS - t_pub <= 3)) || why "the player ended $((SECONDS - t_pub)) s after the publisher (> 3 s)"
	client_ok "$name-player" "$play" "the player" &&
		wav_ok "$T_TMP/$name.wav" 1000 --min-duration 4.8 --max-duration 5.3
}

# The publisher first; a player joins 1.5 s into the 5 s tone and records 2 s of it.
case_late_player() {
	local name=echo_late_player play pub
	start_publisher "$name-publisher" l 1000 16000 -c:a libspeex -ac 1 -ar 16000
	pub=$SPAWNED_PID
	sleep 1.5
	start_player "$name-player" l "$T_TMP/$name.wav" -t 2
	play=$SPAWNED_PID
	client_ok "$name-publisher" "$pub" "the publisher"
	client_ok "$name-player" "$play" "the player" &&
		wav_ok "$T_TMP/$name.wav" 1000 --min-duration 1.5
}

run_case echo_speex case_speex
run_case echo_pcmu case_pcmu
run_case echo_two_players case_two_players
run_case echo_timestamps case_timestamps
run_case echo_end_of_stream case_end_of_stream
run_case echo_late_player case_late_player

if check_alive echo_alive; then
	pass echo_alive
	errors=$(grep -c -i -E '\b(error|warn)\b' "$SIGNALER_LOG")
	[[ $errors -eq 0 ]] || note "the signaler logged $errors error/warn lines (see $SIGNALER_LOG)"
	if grep -q -E 'AddressSanitizer|LeakSanitizer|runtime error:' "$SIGNALER_LOG"; then
		fail echo_sanitizer "the sanitizer reported a problem"
		log_tail "$SIGNALER_LOG" 60
	fi
	stop_signaler
	rc=$?
	if [[ $rc -eq 0 ]]; then
		pass echo_sigterm_exit
	else
		fail echo_sigterm_exit "the signaler exited with status $rc on SIGTERM (137: had to be killed)"
		log_tail "$SIGNALER_LOG" 30
	fi
fi

# The echo app is off by default: ECHO_APP passed empty reads as unset.
SIGNALER_LOG="$T_TMP/signaler-default.log"
if start_signaler ECHO_APP=; then
	timeout 20 ffmpeg -nostdin -hide_banner -loglevel error -re -f lavfi \
		-i "sine=frequency=1000:sample_rate=16000:duration=1" -c:a libspeex -ac 1 -ar 16000 \
		-f flv "rtmp://127.0.0.1:$RTMP_PORT/echo/off" >"$T_TMP/off-pub.log" 2>&1 &&
		why "publishing to echo/off succeeded with ECHO_APP unset"
	timeout 20 ffmpeg -nostdin -hide_banner -loglevel error -i \
		"rtmp://127.0.0.1:$RTMP_PORT/echo/off" -t 1 "$T_TMP/off.wav" >"$T_TMP/off-play.log" 2>&1 &&
		why "playing echo/off succeeded with ECHO_APP unset"
	grep -q "publish 'off' refused: echo: the echo app is off (ECHO_APP)" "$SIGNALER_LOG" ||
		why "no publish refusal naming ECHO_APP in the log"
	grep -q "play 'off' refused: echo: the echo app is off (ECHO_APP)" "$SIGNALER_LOG" ||
		why "no play refusal naming ECHO_APP in the log"
else
	why "the signaler did not start"
fi
verdict echo_app_off

finish
