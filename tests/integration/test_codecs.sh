#!/usr/bin/env bash
# test_codecs.sh - the codecs RTMP clients send, end to end through the call app: each publisher
# below calls each callee below (publish call/<callee>), a player of the same name records what
# comes back, and the tone is checked both ways by pitch, level and length (wavcheck). By hand:
#
#   BUILD=$PWD/build bash tests/integration/test_codecs.sh
#   CODECS_CASES='speex|ulaw8k' BUILD=... bash tests/integration/test_codecs.sh   (a subset: the
#                                         cases whose name matches the extended regex)
#
# Publishers (a 1000 Hz tone at -18 dBFS RMS, 6 s; ffmpeg unless said):
#   aac44_mono     AAC-LC 44.1 kHz mono (-c:a aac)
#   aac48_stereo   AAC-LC 48 kHz stereo, the same tone in both channels (OBS's default shape)
#   mp3            MP3 44.1 kHz mono (libmp3lame)
#   nelly8k        Nellymoser 8 kHz mono (Flash Player's default microphone: SoundFormat 5)
#   speex          Speex 16 kHz mono (libspeex)
#   ulaw8k         G.711 u-law 8 kHz mono
#   ulaw16k        G.711 u-law at 16 kHz (ffmpeg 5.1 writes the tag byte 0x82 whatever the rate
#                  and channels: only onMetaData and the byte rate against the timestamps say)
#   ulaw_stereo    G.711 u-law 8 kHz stereo (the same: 0x82, twice the bytes)
#   opus_ertmp     tests/tools/rtmp_client --publish-codec opus: Enhanced RTMP Opus 48 kHz mono,
#                  one connection publishing and playing (ffmpeg 5.1 cannot play E-RTMP)
# Callees (a fresh one per case):
#   sipp_echo      SIPp's built-in uas answering PCMU, echoing the RTP: the player must get the
#                  publisher's 1000 Hz back
#   baresip_opus   baresip (tests/integration/baresip.sh) offering and accepting only opus,
#   baresip_g722   only G722,
#   baresip_pcmu   only PCMU: it sends 440 Hz at -18 dBFS RMS and records what it receives; the
#                  player must get 440 Hz, baresip 1000 Hz, and baresip must have decoded its
#                  one codec
#
# Cases: codecs_<publisher>_to_<callee>. Each passes when the publish is not refused, the call
# is answered (SIPp: PCMU/8000; baresip: its codec; G.722 on its 8,000 RTP clock), and each
# recording holds its tone: frequency within 30 Hz, level -18 +- CODECS_LEVEL_TOL dB (3; a
# stereo publisher's -21, see PUB_LEVEL), at least 4 s long. ulaw16k and ulaw_stereo: ffmpeg's
# header says 8 kHz mono whatever it sends; its onMetaData says the truth, and the worker
# decodes, downmixes and resamples.
#
# Self-checks of the tools, which pass today (when they fail, the gateway cases say nothing):
#   codecs_tool_baresip_pcmu, _g722, _opus   a baresip caller and a baresip callee with that
#                  codec only: both recordings hold the other's tone, both decoded that codec
#   codecs_tool_rtmp_client_opus             rtmp_client's E-RTMP Opus through the echo app to
#                  rtmp_client --wav: 1000 Hz at -18 dBFS
#
# Everything on 127.0.0.1. Needs ffmpeg, sipp, redis, baresip (scripts/deps.sh install codecs;
# without it the baresip cases are skipped).

# shellcheck source=tests/integration/lib.sh
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/integration/baresip.sh
. "$(dirname "${BASH_SOURCE[0]}")/baresip.sh"

need_tools codecs ffmpeg sipp redis-server redis-cli python3
CLIENT="$BUILD/tools/rtmp_client"
for bin in "$T_MW" "$WAVCHECK" "$CLIENT"; do
	[[ -x $bin ]] || { fail codecs_setup "$bin not built (make)"; finish; }
done
HAVE_BARESIP=1
baresip_available || HAVE_BARESIP=0

FREQ=1000       # the publishers' tone
CALLEE_FREQ=440 # baresip's
LEVEL=-18       # both, dBFS RMS
LEVEL_TOL=${CODECS_LEVEL_TOL:-3}
PUB_SECONDS=6
FF=(ffmpeg -nostdin -hide_banner -loglevel error -y)
AMP=$(awk -v l="$LEVEL" 'BEGIN { printf "%.6f", sqrt(2) * 10 ^ (l / 20) }')

PUBLISHERS=(aac44_mono aac48_stereo mp3 nelly8k speex ulaw8k ulaw16k ulaw_stereo opus_ertmp)
declare -A PUB_ARGS=(
	[aac44_mono]="44100 -c:a aac -ar 44100 -ac 1"
	[aac48_stereo]="48000 -c:a aac -ar 48000 -ac 2"
	[mp3]="44100 -c:a libmp3lame -ar 44100 -ac 1"
	[nelly8k]="8000 -c:a nellymoser -ar 8000 -ac 1"
	[speex]="16000 -c:a libspeex -ar 16000 -ac 1"
	[ulaw8k]="8000 -c:a pcm_mulaw -ar 8000 -ac 1"
	[ulaw16k]="16000 -c:a pcm_mulaw -ar 16000 -ac 1"
	[ulaw_stereo]="8000 -c:a pcm_mulaw -ar 8000 -ac 2"
)
CALLEES=(sipp_echo baresip_opus baresip_g722 baresip_pcmu)
# what baresip says it decodes, and what the gateway says it answered (G.722: its 8,000 RTP clock)
declare -A CALLEE_CODEC=([sipp_echo]=PCMU/8000 [baresip_opus]=opus/48000
	[baresip_g722]=G722/16000 [baresip_pcmu]=PCMU/8000)
declare -A CALLEE_ANSWER=([sipp_echo]=PCMU/8000 [baresip_opus]=opus/48000
	[baresip_g722]=G722/8000 [baresip_pcmu]=PCMU/8000)
# The level a publisher's tone arrives at: ffmpeg spreads a mono source over two channels at
# -3 dB each (power kept), and the gateway averages the channels.
declare -A PUB_LEVEL=([aac48_stereo]=$((LEVEL - 3)) [ulaw_stereo]=$((LEVEL - 3)))
# The tone a publisher sends: libavcodec's Nellymoser encoder loses about 9 dB on a pure 1000 Hz
# tone at 8 kHz (ffmpeg alone does the same); 1020 Hz passes at its level.
declare -A PUB_FREQ=([nelly8k]=1020)

# wanted NAME: true when NAME is to run (CODECS_CASES, an extended regex, unset: all).
wanted() {
	[[ -z ${CODECS_CASES:-} || $1 =~ ${CODECS_CASES} ]]
}

# tone_ok LABEL FILE FREQ [LOG [LEVEL]]: FILE holds FREQ at LEVEL (default $LEVEL) +- LEVEL_TOL
# for 4 s at least; else why (with the last line of LOG, the recorder's, when there is no
# recording).
tone_ok() {
	local out lvl=${5:-$LEVEL}
	if [[ ! -s $2 ]]; then
		why "$1: no recording${4:+ ($(tail -n 1 "$4" 2>/dev/null))}"
		return 1
	fi
	if ! out=$("$WAVCHECK" --expect-freq "$3" --tol 30 --min-duration 4 \
		--min-rms-dbfs $((lvl - LEVEL_TOL)) --max-rms-dbfs $((lvl + LEVEL_TOL)) "$2" 2>&1); then
		why "$1: $(grep FAIL <<<"$out" | sed 's/^wavcheck: FAIL: //' | tr '\n' ';' | sed 's/;$//') ($(head -n 1 <<<"$out"))"
		return 1
	fi
	note "$1: $out"
}

# --- the stack: redis, one mediaworker, the signaler (call app; the echo app for a self-check)
start_redis || { fail codecs_setup "redis did not start"; finish; }
base=$((36000 + RANDOM % 4000 / 2 * 2))
spawn "$T_TMP/worker.log" env WORKER_ID=codecs1 RTP_PORT_MIN="$base" RTP_PORT_MAX=$((base + 999)) \
	LOG_LEVEL=info RTP_BIND_IP=127.0.0.1 "$T_MW"
wait_log "$T_TMP/worker.log" 'mediaworker ready' 5 || { fail codecs_setup "the mediaworker did not start"; finish; }
start_signaler SIGNALER_ID=sig-codecs || { fail codecs_setup "the signaler did not start"; finish; }
wait_log "$SIGNALER_LOG" 'mediaworker up' 10 || { fail codecs_setup "the signaler found no worker"; finish; }
URL="rtmp://127.0.0.1:$RTMP_PORT/call"

# --- self-checks of the tools
for codec in pcmu g722 opus; do
	name=codecs_tool_baresip_$codec
	wanted "$name" || continue
	if ((!HAVE_BARESIP)); then
		skip "$name" "$BARESIP_WHY"
		continue
	fi
	if baresip_callee "tb$codec" "$codec" "$CALLEE_FREQ" "$LEVEL" &&
		baresip_caller "ta$codec" "$codec" "${BS_URI[tb$codec]}" 6 "$FREQ" "$LEVEL"; then
		baresip_wait_ended "tb$codec" 12 || why "the call did not end"
		baresip_stop "ta$codec"
		baresip_stop "tb$codec"
		want=${CALLEE_CODEC[baresip_$codec]}
		for who in ta tb; do
			got=$(baresip_codec "$who$codec")
			[[ $got == "$want" ]] || why "$who$codec decoded '${got:-nothing}', not $want"
		done
		tone_ok "callee heard" "$(baresip_received "tb$codec")" "$FREQ"
		tone_ok "caller heard" "$(baresip_received "ta$codec")" "$CALLEE_FREQ"
	else
		why "$BARESIP_WHY"
	fi
	verdict "$name"
done

name=codecs_tool_rtmp_client_opus
if wanted "$name"; then
	"$CLIENT" --timeout 10 --play toolopus --wav "$T_TMP/$name.wav" --seconds 6 \
		"rtmp://127.0.0.1:$RTMP_PORT/echo" >"$T_TMP/$name.play.log" 2>&1 &
	player=$!
	sleep 0.5
	"$CLIENT" --timeout 10 --publish toolopus --publish-codec opus --tone "$FREQ" \
		--tone-dbfs "$LEVEL" --seconds 5 "rtmp://127.0.0.1:$RTMP_PORT/echo" \
		>"$T_TMP/$name.pub.log" 2>&1 || why "the publisher exited with status $?"
	wait "$player" || why "the player exited with status $?"
	grep -q '^MEDIA .*first_tag=0x90 ' "$T_TMP/$name.play.log" ||
		why "the player's first message is no E-RTMP SequenceStart: $(grep '^MEDIA' "$T_TMP/$name.play.log")"
	tone_ok "player" "$T_TMP/$name.wav" "$FREQ"
	verdict "$name"
fi

# --- the gateway cases

# start_callee NAME CALLEE: starts CALLEE for case NAME; sets DEST (user@host:port) and CPID.
start_callee() {
	local sport mport
	CPID=""
	if [[ $2 == sipp_echo ]]; then
		sport=$(free_port) mport=$(udp_port)
		spawn "$T_TMP/$1.sipp.log" sipp -sn uas -rtp_echo -mp "$mport" -p "$sport" \
			-i 127.0.0.1 -nostdin
		CPID=$SPAWNED_PID
		DEST="echo@127.0.0.1:$sport"
		sleep 0.5
		return 0
	fi
	baresip_callee "$1" "${2#baresip_}" "$CALLEE_FREQ" "$LEVEL" || return 1
	DEST=${BS_URI[$1]#sip:}
}

# publish_and_play NAME PUBLISHER: the player and the publisher of call/DEST; the player's WAV
# is $T_TMP/NAME.wav; PUB_RC is the publisher's exit status.
publish_and_play() {
	local name=$1 pub=$2 rate player
	local -a codec
	if [[ $pub == opus_ertmp ]]; then
		timeout 30 "$CLIENT" --timeout 10 --publish "$DEST" --play "$DEST" \
			--publish-codec opus --tone "$FREQ" --tone-dbfs "$LEVEL" --wav "$T_TMP/$name.wav" \
			--seconds "$PUB_SECONDS" "$URL" >"$T_TMP/$name.pub.log" 2>&1
		PUB_RC=$?
		return
	fi
	rate=${PUB_ARGS[$pub]%% *}
	read -r -a codec <<<"${PUB_ARGS[$pub]#* }"
	timeout 30 "${FF[@]}" -analyzeduration 1000000 -i "$URL/$DEST" -t 5 "$T_TMP/$name.wav" \
		>"$T_TMP/$name.play.log" 2>&1 &
	player=$!
	sleep 1
	timeout 30 "${FF[@]}" -re -f lavfi \
		-i "aevalsrc=$AMP*sin(2*PI*${PUB_FREQ[$pub]:-$FREQ}*t):s=$rate:d=$PUB_SECONDS" \
		"${codec[@]}" \
		-f flv "$URL/$DEST" >"$T_TMP/$name.pub.log" 2>&1
	PUB_RC=$?
	wait "$player"
}

# gateway_case PUBLISHER CALLEE
gateway_case() {
	local pub=$1 callee=$2 name="codecs_$1_to_$2" refused answer over got want plog
	wanted "$name" || return 0
	if [[ $callee == baresip_* ]] && ((!HAVE_BARESIP)); then
		skip "$name" "$BARESIP_WHY"
		return 0
	fi
	if ! start_callee "$name" "$callee"; then
		why "the callee did not start: $BARESIP_WHY"
		verdict "$name"
		return 0
	fi
	publish_and_play "$name" "$pub"
	if [[ $callee == sipp_echo ]]; then
		stop_pid "$CPID" 3
	else
		baresip_wait_ended "$name" 10
		baresip_stop "$name"
	fi
	want=${CALLEE_CODEC[$callee]}
	refused=$(grep -m1 -F "call/$DEST: publisher refused: " "$SIGNALER_LOG" |
		sed 's/.*publisher refused: //')
	answer=$(grep -m1 -F "call sip:$DEST answered: " "$SIGNALER_LOG" |
		sed 's/.* answered: \([^ ]*\) .*/\1/')
	over=$(grep -m1 -F "call sip:$DEST over: " "$SIGNALER_LOG" | sed 's/.* over: //')
	if [[ -n $refused ]]; then
		why "refused: $refused"
	elif [[ -z $answer ]]; then
		why "not answered: ${over:-no answer and no end in the signaler log}"
	else
		[[ $answer == "${CALLEE_ANSWER[$callee]}" ]] ||
			why "answered with $answer, not ${CALLEE_ANSWER[$callee]}"
		((PUB_RC == 0)) || why "the publisher exited with status $PUB_RC: $(tail -n 1 "$T_TMP/$name.pub.log")"
		plog="$T_TMP/$name.play.log"
		[[ $pub == opus_ertmp ]] && plog="$T_TMP/$name.pub.log"
		# Opus from Enhanced RTMP to an Opus peer: no codec runs at all
		if [[ $pub == opus_ertmp && $callee == baresip_opus ]] &&
			! grep -q "opus/48000/2 <-> opus/48000/2: pass-through" "$T_TMP/worker.log"; then
			why "the Opus leg is not a pass-through one"
		fi
		if [[ $callee == sipp_echo ]]; then
			tone_ok "player" "$T_TMP/$name.wav" "${PUB_FREQ[$pub]:-$FREQ}" "$plog" \
				"${PUB_LEVEL[$pub]:-$LEVEL}"
		else
			got=$(baresip_codec "$name")
			[[ $got == "$want" ]] || why "baresip decoded '${got:-nothing}', not $want"
			tone_ok "player" "$T_TMP/$name.wav" "$CALLEE_FREQ" "$plog"
			tone_ok "baresip heard" "$(baresip_received "$name")" "${PUB_FREQ[$pub]:-$FREQ}" \
				"${BS_LOG[$name]}" \
				"${PUB_LEVEL[$pub]:-$LEVEL}"
		fi
	fi
	verdict "$name"
}

for pub in "${PUBLISHERS[@]}"; do
	for callee in "${CALLEES[@]}"; do
		gateway_case "$pub" "$callee"
	done
done

# --- ?audio=: the players of an AAC publisher's call get G.711 u-law, asked for by the publisher
name=codecs_aac_audio_pcmu
if wanted "$name"; then
	start_callee "$name" sipp_echo
	timeout 30 "${FF[@]}" -analyzeduration 1000000 -i "$URL/$DEST" -t 5 "$T_TMP/$name.wav" \
		>"$T_TMP/$name.play.log" 2>&1 &
	player=$!
	sleep 1
	timeout 30 "${FF[@]}" -re -f lavfi -i "aevalsrc=$AMP*sin(2*PI*$FREQ*t):s=44100:d=$PUB_SECONDS" \
		-c:a aac -ac 1 -f flv "$URL/$DEST?audio=pcmu" >"$T_TMP/$name.pub.log" 2>&1 ||
		why "the publisher failed: $(tail -n 1 "$T_TMP/$name.pub.log")"
	wait "$player"
	stop_pid "$CPID" 3
	grep -q "AAC <-> PCMU/8000: .*players get PCMU/8000" "$T_TMP/worker.log" ||
		why "no leg whose players get PCMU in the worker log"
	tone_ok "player" "$T_TMP/$name.wav" "$FREQ" "$T_TMP/$name.play.log"
	verdict "$name"
fi
# an unknown ?audio= is refused naming what players may get
name=codecs_audio_bad
if wanted "$name"; then
	timeout 20 "${FF[@]}" -re -f lavfi -i "sine=frequency=$FREQ:sample_rate=44100:duration=2" \
		-c:a aac -f flv "$URL/x@127.0.0.1:9?audio=vorbis" >"$T_TMP/$name.pub.log" 2>&1
	err=$(grep -m1 'Server error' "$T_TMP/$name.pub.log")
	[[ $err == *"audio=vorbis is not a codec players can get (aac, mp3"* ]] ||
		why "no refusal naming the codecs (${err:-none})"
	verdict "$name"
fi
check_alive codecs_signaler_alive && pass codecs_signaler_alive
finish
