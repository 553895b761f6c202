#!/usr/bin/env bash
# test_media_bridge.sh - the signaler's media path through the worker pool, with the rtp app:
# RTMP (ffmpeg) -> signaler -> mediaworker -> RTP -> SIPp -rtp_echo -> mediaworker -> signaler ->
# RTMP (ffmpeg player). Redis, two mediaworkers found by the signaler through Redis only.
#
#   bridge_discovery        the signaler finds both workers in Redis (no WORKER_ENDPOINTS)
#   bridge_speex_transcoded Speex 16 kHz publisher, PCMU toward SIPp: the player records 1000 Hz
#   bridge_pcmu_passthrough G.711 u-law publisher: pass-through leg, the player records 1000 Hz
#   bridge_aac              AAC stereo 44.1 kHz publisher, PCMU toward SIPp: the player (AAC) records 1000 Hz
#   bridge_adpcm_refused    an ADPCM publisher is refused, naming the format and the supported set
#   bridge_bad_names        rtp/garbage, rtp/1.2.3.4:99999, a destination outside
#                           RTP_APP_DESTINATIONS: onStatus Publish.BadName with the reason, while a
#                           good session goes on without a gap
#   bridge_pcmu_2048        G.711 u-law in 2048-sample messages (2049 bytes, above the old
#                           1500-byte MEDIA bound): the player records 1000 Hz, nothing dropped
#   bridge_pcmu_cut         G.711 u-law in 2 s messages (16001 bytes, above the 8192 bytes one
#                           MEDIA carries): cut in 1 s pieces by the signaler, the player records
#                           1000 Hz
#   bridge_pcmu_16k_refused G.711 u-law published at 16 kHz (ffmpeg without -ar 8000): onStatus
#                           NetStream.Failed naming the measured 16000 Hz and the fix, the leg
#                           ends, while a good session to another target goes on
#   bridge_stereo           G.711 flagged stereo (0x83): taken and downmixed; ffmpeg's stereo
#                           u-law (flagged mono, twice the bytes): refused as 16000 Hz
#   bridge_oversize_refused a 9000-byte Speex message: refused naming the size and the limit,
#                           no leg made
#   bridge_g711_burst_ok    8 kHz G.711 sent faster than real time (ffmpeg without -re, and 5 s
#                           of messages in one write): never refused, the rate is read from the
#                           timestamps
#   bridge_failover         SIGKILL of the worker carrying the leg mid-stream: the leg is adopted
#                           by the other worker (same SSRC), the tone comes back after a gap
#                           (measured in the recording, the player resamples on timestamps)
#   bridge_no_leg_left      no leg record left in Redis afterwards
#   bridge_sigterm_exit     the signaler exits 0 on SIGTERM
#   bridge_rtp_app_off      a signaler started without RTP_APP refuses rtp/<ip>:<port> (the app is
#                           off by default), naming RTP_APP; no leg is made
#
# Every client runs under `timeout`; env BUILD selects the build (default build).

# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

MW="$T_MW"
need_tools bridge ffmpeg sipp redis-cli python3
for bin in "$MW" "$WAVCHECK"; do
	[[ -x $bin ]] || { fail bridge_setup "$bin not built"; finish; }
done
start_redis || { fail bridge_setup "redis did not start"; finish; }

FFMPEG=(ffmpeg -nostdin -hide_banner -loglevel "${FFMPEG_LOGLEVEL:-error}" -y)
CLIENT_TIMEOUT=${CLIENT_TIMEOUT:-40}
# start_worker NAME PORTMIN PORTMAX: a mediaworker with Redis (inherited REDIS_HOST/PORT);
# sets W_PID.
declare -A WPID=()
start_worker() {
	local name=$1 log="$T_TMP/$1.log"
	spawn "$log" env WORKER_ID="$name" RTP_PORT_MIN="$2" RTP_PORT_MAX="$3" LOG_LEVEL=info \
		RTP_BIND_IP=127.0.0.1 "$MW"
	W_PID=$SPAWNED_PID
	WPID[$name]=$W_PID
	wait_log "$log" 'mediaworker ready' 5
}

ECHO_PORT=$(udp_port)
spawn "$T_TMP/sipp.log" sipp -sn uas -rtp_echo -mp "$ECHO_PORT" -p "$(free_port)" -i 127.0.0.1 -nostdin
sleep 0.5

base=$((32000 + RANDOM % 8000 / 2 * 2))
start_worker bw1 "$base" $((base + 999)) || { fail bridge_setup "worker bw1 did not start"; finish; }
start_worker bw2 $((base + 1000)) $((base + 1999)) || { fail bridge_setup "worker bw2 did not start"; finish; }
if ! start_signaler SIGNALER_ID=sig-bridge-test RTP_APP=1; then
	fail bridge_setup "the signaler did not start"
	finish
fi
URL="rtmp://127.0.0.1:$RTMP_PORT/rtp"
TARGET="127.0.0.1:$ECHO_PORT"
note "workers bw1 (pid ${WPID[bw1]}), bw2 (pid ${WPID[bw2]}); SIPp echo on $TARGET"

# --- discovery
for ((i = 0; i < 50; i++)); do
	grep -q 'mediaworker up: 2 live workers' "$SIGNALER_LOG" && break
	sleep 0.1
done
grep -q 'bw1: mediaworker discovered in Redis' "$SIGNALER_LOG" ||
	why "bw1 not discovered"
grep -q 'bw2: mediaworker discovered in Redis' "$SIGNALER_LOG" ||
	why "bw2 not discovered"
grep -q 'mediaworker up: 2 live workers' "$SIGNALER_LOG" || why "the two workers did not come up within 5 s"
verdict bridge_discovery

# start_player LABEL OUT [options before -i...] -- [output options...]
start_player() {
	local label=$1 out=$2 pre=() post=()
	shift 2
	while [[ $# -gt 0 && $1 != -- ]]; do pre+=("$1"); shift; done
	[[ ${1:-} == -- ]] && shift
	post=("$@")
	spawn "$T_TMP/$label.log" timeout -k 5 "$CLIENT_TIMEOUT" "${FFMPEG[@]}" -rw_timeout 20000000 \
		-analyzeduration 1000000 "${pre[@]}" -i "$URL/$TARGET" "${post[@]}" "$out"
}

# start_publisher LABEL STREAM SECONDS RATE [codec options...]: a 1 kHz tone.
start_publisher() {
	local label=$1 stream=$2 secs=$3 rate=$4
	shift 4
	spawn "$T_TMP/$label.log" timeout -k 5 "$CLIENT_TIMEOUT" "${FFMPEG[@]}" -re -f lavfi \
		-i "sine=frequency=1000:sample_rate=$rate:duration=$secs" "$@" -f flv "$URL/$stream"
}

# client_ok LABEL PID WHAT: the client exited 0.
client_ok() {
	local rc
	wait "$2"
	rc=$?
	[[ $rc -eq 0 ]] && return 0
	why "$3 exited with status $rc: $(tail -n 2 "$T_TMP/$1.log" | tr '\n' ' ')"
	return 1
}

# wav_ok FILE [wavcheck options]: 1000 +- 30 Hz (plus the options); shows the figures.
wav_ok() {
	local file=$1 out
	shift
	if [[ ! -s $file ]]; then
		why "no recording $(basename "$file")"
		return 1
	fi
	if ! out=$("$WAVCHECK" --expect-freq 1000 --tol 30 --min-rms-dbfs -40 "$@" "$file" 2>&1); then
		why "$(basename "$file"): $(grep -m1 FAIL <<<"$out" | sed 's/^wavcheck: FAIL: //')"
		return 1
	fi
	note "$(basename "$file"): $out"
}

# tone_case NAME SECONDS RATE [codec options...]: player first, then the publisher; the player
# ends by itself when the publisher stops.
tone_case() {
	local name=$1 secs=$2 rate=$3 play pub
	shift 3
	start_player "$name-player" "$T_TMP/$name.wav"
	play=$SPAWNED_PID
	sleep 0.5
	start_publisher "$name-publisher" "$TARGET" "$secs" "$rate" "$@"
	pub=$SPAWNED_PID
	client_ok "$name-publisher" "$pub" "the publisher"
	client_ok "$name-player" "$play" "the player" &&
		wav_ok "$T_TMP/$name.wav" --min-duration $((secs - 1))
}

# good_start NAME: a 6 s Speex session to the echo (player first) that other cases run beside;
# good_end NAME: it ran whole, its tone without a gap.
good_start() {
	start_player "$1-player" "$T_TMP/$1.wav"
	G_PLAY=$SPAWNED_PID
	sleep 0.5
	start_publisher "$1-publisher" "$TARGET" 6 16000 -c:a libspeex -ac 1 -ar 16000
	G_PUB=$SPAWNED_PID
}
good_end() {
	client_ok "$1-publisher" "$G_PUB" "the good publisher"
	client_ok "$1-player" "$G_PLAY" "the good player" &&
		wav_ok "$T_TMP/$1.wav" --min-duration 5.5 --max-gap 0.3
}

tone_case bridge_speex_transcoded 5 16000 -c:a libspeex -ac 1 -ar 16000
grep -q "leg ready on bw[12]: .*PCMU/8000 pt 0, transcoding" "$SIGNALER_LOG" ||
	why "no transcoding leg in the signaler log"
verdict bridge_speex_transcoded

tone_case bridge_pcmu_passthrough 5 8000 -c:a pcm_mulaw -ac 1 -ar 8000
last_ready=$(grep 'leg ready on' "$SIGNALER_LOG" | tail -n 1)
[[ $last_ready == *"PCMU/8000 pt 0, ssrc"* ]] || why "the last leg is not a pass-through one: $last_ready"
verdict bridge_pcmu_passthrough

# --- bad names, while a good session runs
good_start bad_good
sleep 1.5
# 192.0.2.1 is a unicast address outside RTP_APP_DESTINATIONS (loopback by default)
for bad in garbage 1.2.3.4:99999 '[::1]:0' 224.0.0.1:4000 0.0.0.0:4000 192.0.2.1:4000; do
	label="bad-$(tr -c 'a-z0-9' '_' <<<"$bad")"
	timeout 20 ffmpeg -nostdin -hide_banner -loglevel error -re -f lavfi -i \
		"sine=frequency=1000:sample_rate=16000:duration=2" -c:a libspeex -ac 1 -ar 16000 \
		-f flv "$URL/$bad" >"$T_TMP/$label.log" 2>&1
	rc=$?
	err=$(grep -m1 'Server error' "$T_TMP/$label.log")
	note "rtp/$bad: exit $rc, ${err:-no server error}"
	[[ $rc -ne 0 ]] || why "publishing to rtp/$bad succeeded"
	[[ $err == *"rtp: "* ]] || why "rtp/$bad: no onStatus error with a reason (${err:-none})"
	grep -qF "publish '$bad' refused: rtp" "$SIGNALER_LOG" || why "rtp/$bad: no refusal in the signaler log"
done
good_end bad_good
verdict bridge_bad_names

# --- AAC (what OBS and ffmpeg send by default), stereo at 44.1 kHz: decoded, downmixed and
# carried as PCMU; the player gets AAC back (its sequence header first) and hears the tone
tone_case bridge_aac 5 44100 -c:a aac -ac 2 -ar 44100
last_ready=$(grep 'leg ready on' "$SIGNALER_LOG" | tail -n 1)
[[ $last_ready == *"PCMU/8000 pt 0, transcoding"* ]] ||
	why "the AAC leg is not a transcoding one: $last_ready"
verdict bridge_aac

# --- ADPCM is refused with a reason naming it and what is supported
timeout 20 ffmpeg -nostdin -hide_banner -loglevel error -re -f lavfi -i \
	"sine=frequency=1000:sample_rate=22050:duration=2" -c:a adpcm_swf -f flv "$URL/$TARGET" \
	>"$T_TMP/adpcm.log" 2>&1
err=$(grep -m1 'Server error' "$T_TMP/adpcm.log")
note "ADPCM publisher: ${err:-no server error}"
[[ $err == *"ADPCM audio is not supported (supported: AAC, MP3"* ]] ||
	why "no NetStream.Failed naming ADPCM and the supported set (${err:-none})"
grep -q "publisher refused: ADPCM" "$SIGNALER_LOG" || why "no warn line for the refusal"
verdict bridge_adpcm_refused

# --- G.711 in messages above the old 1500-byte bound and above one MEDIA's 8192 bytes
BAD=(python3 "$T_ROOT/tests/tools/rtmp_bad.py" publish --port "$RTMP_PORT" --app rtp)
# last_leg_whole: the last leg made dropped nothing (once it is destroyed).
last_leg_whole() {
	local leg dropped
	leg=$(grep 'leg ready on' "$SIGNALER_LOG" | tail -n 1 | sed -n 's/.* \([^ ]*\): leg ready on .*/\1/p')
	dropped=$(leg_dropped "$leg")
	[[ $dropped == 0 ]] || why "leg $leg dropped ${dropped:-?} messages"
}
# leg_dropped LEG: the "dropped N" of leg LEG's end, once it is destroyed (waits up to 3 s; ""
# when it is not).
leg_dropped() {
	local i line=""
	for ((i = 0; i < 30 && ${#1} > 0; i++)); do
		line=$(grep -F "$1: leg destroyed (" "$SIGNALER_LOG" | tail -n 1)
		[[ -n $line ]] && break
		sleep 0.1
	done
	sed -n 's/.*dropped \([0-9]*\)).*/\1/p' <<<"$line"
}
tone_case bridge_pcmu_2048 5 8000 -c:a pcm_mulaw -ac 1 -af asetnsamples=n=2048
last_leg_whole
grep -q "publisher refused: G.711" "$SIGNALER_LOG" && why "a publisher was refused: $(grep -m1 "publisher refused: G.711" "$SIGNALER_LOG")"
verdict bridge_pcmu_2048

tone_case bridge_pcmu_cut 6 8000 -c:a pcm_mulaw -ac 1 -af asetnsamples=n=16000
last_leg_whole
verdict bridge_pcmu_cut

# --- G.711 at 16 kHz: refused with the rate named, while a good session runs to the echo
good_start rate_good
sleep 1
timeout 20 "${FFMPEG[@]}" -re -f lavfi -i "sine=frequency=1000:sample_rate=16000:duration=5" \
	-c:a pcm_mulaw -ac 1 -f flv "$URL/127.0.0.1:9" >"$T_TMP/rate16k.log" 2>&1
rc=$?
err=$(grep -m1 'Server error' "$T_TMP/rate16k.log")
note "u-law at 16 kHz: exit $rc, ${err:-no server error}"
[[ $rc -ne 0 ]] || why "ffmpeg published u-law at 16 kHz to the end"
[[ $err == *"rtp: G.711 audio measured at 16000 Hz"*"publish G.711 at 8000 Hz, e.g. ffmpeg -ar 8000"* ]] ||
	why "no NetStream.Failed naming 16000 Hz and the fix (${err:-none})"
grep -q 'warn .*rtp/127.0.0.1:9: publisher refused: G.711 audio measured at 16000 Hz' "$SIGNALER_LOG" ||
	why "no warn line for the refusal in the signaler log"
leg=$(grep 'new leg: call rtp/127.0.0.1:9/' "$SIGNALER_LOG" | tail -n 1 | sed -n 's/.* \([^ ]*\): new leg: .*/\1/p')
[[ -n $leg ]] && [[ -n $(leg_dropped "$leg") ]] || why "the leg of the refused stream ($leg) was not destroyed"
good_end rate_good
verdict bridge_pcmu_16k_refused

# --- stereo: flagged (taken, both channels averaged), and ffmpeg's, flagged mono (refused by
# its rate)
out=$("${BAD[@]}" --stream 127.0.0.1:9 --audio-byte 0x83 --bytes 2049 --count 4 --step 128 \
	--expect-no-error 2>&1)
rc=$?
note "flagged stereo: exit $rc $(grep -m1 'onStatus error' <<<"$out")"
[[ $rc -eq 0 ]] || why "flagged stereo u-law refused (exit $rc): $(tr '\n' ' ' <<<"$out")"
timeout 20 "${FFMPEG[@]}" -re -f lavfi -i "sine=frequency=1000:sample_rate=8000:duration=5" \
	-c:a pcm_mulaw -ac 2 -ar 8000 -f flv "$URL/127.0.0.1:9" >"$T_TMP/stereo.log" 2>&1
rc=$?
err=$(grep -m1 'Server error' "$T_TMP/stereo.log")
note "ffmpeg stereo u-law: exit $rc, ${err:-no server error}"
[[ $rc -ne 0 && $err == *"measured at 16000 Hz"*"stereo flagged mono counts double"* ]] ||
	why "ffmpeg's stereo u-law not refused by its rate (${err:-none})"
verdict bridge_stereo

# --- a message of another codec above the limit: refused before any leg
before=$(grep -c 'new leg: call rtp/127.0.0.1:7/' "$SIGNALER_LOG")
out=$("${BAD[@]}" --stream 127.0.0.1:7 --audio-byte 0xB2 --bytes 9000 --count 3 --step 20 2>&1)
rc=$?
note "9000-byte Speex: $(grep -m1 'onStatus error' <<<"$out")"
[[ $rc -eq 0 && $out == *"onStatus error NetStream.Failed: rtp: 9000-byte speex audio message (8999 bytes of audio data) is above the limit of 8192 bytes"* ]] ||
	why "no refusal naming the size and the limit (exit $rc): $(tr '\n' ' ' <<<"$out")"
grep -q 'warn .*rtp/127.0.0.1:7: publisher refused: 9000-byte speex' "$SIGNALER_LOG" ||
	why "no warn line for the refusal in the signaler log"
[[ $(grep -c 'new leg: call rtp/127.0.0.1:7/' "$SIGNALER_LOG") == "$before" ]] || why "a leg was made"
verdict bridge_oversize_refused

# --- faster than real time: the rate is read from timestamps, not arrival
timeout 20 "${FFMPEG[@]}" -f lavfi -i "sine=frequency=1000:sample_rate=8000:duration=6" \
	-c:a pcm_mulaw -ac 1 -f flv "$URL/127.0.0.1:5" >"$T_TMP/burst.log" 2>&1 ||
	why "ffmpeg without -re failed: $(tail -n 2 "$T_TMP/burst.log" | tr '\n' ' ')"
out=$("${BAD[@]}" --stream 127.0.0.1:4 --bytes 1025 --count 40 --step 128 --timeout 3 \
	--expect-no-error 2>&1) || why "5 s of 8 kHz messages in one write refused: $(tr '\n' ' ' <<<"$out")"
grep -q 'rtp/127.0.0.1:[45]: publisher refused' "$SIGNALER_LOG" &&
	why "refused: $(grep -m1 'rtp/127.0.0.1:[45]: publisher refused' "$SIGNALER_LOG")"
verdict bridge_g711_burst_ok

# --- failover: SIGKILL the worker carrying the leg 3 s into a 10 s tone. The player resamples
# on timestamps (aresample async), so the time without audio shows as silence in the WAV.
name=bridge_failover
start_player "$name-player" "$T_TMP/$name.wav" -- -af aresample=async=1
play=$SPAWNED_PID
sleep 0.5
start_publisher "$name-publisher" "$TARGET" 10 16000 -c:a libspeex -ac 1 -ar 16000
pub=$SPAWNED_PID
sleep 3
ready=$(grep 'leg ready on' "$SIGNALER_LOG" | tail -n 1)
victim=$(sed -n 's/.*leg ready on \(bw[12]\):.*/\1/p' <<<"$ready")
leg=$(sed -n 's/.* \([^ ]*\): leg ready on .*/\1/p' <<<"$ready")
ssrc=$(sed -n 's/.*ssrc \([0-9a-f]*\).*/\1/p' <<<"$ready")
if [[ -z $victim || -z ${WPID[$victim]:-} ]]; then
	why "cannot tell which worker carries the leg ($ready)"
else
	t_kill=$(date +%s%3N)
	{ kill -KILL "${WPID[$victim]}" && wait "${WPID[$victim]}"; } 2>/dev/null
	note "killed $victim (pid ${WPID[$victim]}) carrying $leg"
fi
client_ok "$name-publisher" "$pub" "the publisher"
client_ok "$name-player" "$play" "the player"
moved=$(grep "$leg: leg moved to" "$SIGNALER_LOG" | tail -n 1)
if [[ -z $moved ]]; then
	why "the leg was not moved: $(grep -E "$leg: (leg failed|ADOPT)" "$SIGNALER_LOG" | tail -n 2 | tr '\n' ' ')"
else
	[[ $moved == *"ssrc $ssrc"* ]] || why "the SSRC changed: $ssrc -> $moved"
	# When the signaler noticed, relative to the kill (log times are UTC ms).
	t_down=$(grep "$victim: mediaworker down" "$SIGNALER_LOG" | tail -n 1 | cut -d' ' -f1)
	t_down_ms=$(date -d "$t_down" +%s%3N 2>/dev/null)
	note "moved: ${moved#*: }; worker down noticed $((t_down_ms - t_kill)) ms after the kill"
fi
if wav_ok "$T_TMP/$name.wav" --min-duration 8; then
	gap=$("$WAVCHECK" --verbose "$T_TMP/$name.wav" | sed -n 's/.*longest_gap=\([0-9.]*\).*/\1/p')
	note "failover gap in the recording: ${gap} s"
	# The kill itself is proven by the "moved" line above; the gap may be 0 when the closed
	# connection is noticed and the leg adopted faster than the player's buffer drains.
	awk -v g="$gap" 'BEGIN { exit !(g < 3.0) }' ||
		why "gap of ${gap} s in the recording (expected under 3 s: the closed connection, or at worst the 1.5 s heartbeat timeout, then the adoption)"
fi
# The tone after the kill: the last 4 s of a 10 s recording.
wav_ok "$T_TMP/$name.wav" --ignore-start 6 --min-duration 3
verdict bridge_failover

# --- nothing left in Redis
sleep 1.5
left=$(redis-cli -p "$REDIS_PORT" --scan --pattern 'rs:v1:leg:*' | tr '\n' ' ')
[[ -z $left ]] || why "leg records left: $left"
verdict bridge_no_leg_left

check_alive bridge_alive && pass bridge_alive
stop_signaler
rc=$?
[[ $rc -eq 0 ]] || why "exit status $rc on SIGTERM"
grep -q 'signaler stopped' "$SIGNALER_LOG" || why "no 'signaler stopped' line"
verdict bridge_sigterm_exit stopped

# --- the rtp app is off unless RTP_APP=1
SIGNALER_LOG="$T_TMP/signaler-default.log"
if start_signaler SIGNALER_ID=sig-bridge-default; then
	timeout 20 ffmpeg -nostdin -hide_banner -loglevel error -re -f lavfi -i \
		"sine=frequency=1000:sample_rate=16000:duration=2" -c:a libspeex -ac 1 -ar 16000 \
		-f flv "rtmp://127.0.0.1:$RTMP_PORT/rtp/$TARGET" >"$T_TMP/off.log" 2>&1 &&
		why "publishing to the rtp app succeeded with RTP_APP unset"
	grep -q "Server error.*rtp: the rtp app is off (RTP_APP)" "$T_TMP/off.log" ||
		why "no onStatus error naming RTP_APP: $(grep -m1 'Server error' "$T_TMP/off.log")"
	grep -q "leg .* created\|CREATE_LEG" "$SIGNALER_LOG" && why "a leg was made"
else
	why "the signaler did not start"
fi
verdict bridge_rtp_app_off
finish
