# shellcheck shell=bash disable=SC2034 # BS_*, BARESIP_WHY: for the scripts that source this file
# baresip.sh - baresip (Debian bookworm's baresip 1.0) as a real SIP softphone for the integration
# tests: a callee that answers by itself with only the codecs asked for, plays a known tone and
# records what it hears; or a caller that dials, does the same and hangs up (source it after
# lib.sh). Everything on 127.0.0.1; no sound card needed.
#
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#   . "$(dirname "${BASH_SOURCE[0]}")/baresip.sh"
#   baresip_available || { skip NAME "$BARESIP_WHY"; finish; }
#   baresip_callee bob opus 440 -18 || { fail NAME "$BARESIP_WHY"; ...; }
#   ... place a call to ${BS_URI[bob]} (sip:bob@127.0.0.1:<port>): answered at once, with opus
#       only, baresip sends 440 Hz at -18 dBFS RMS and records what it receives ...
#   baresip_wait_ended bob 10                       the call is over (the file is complete)
#   "$WAVCHECK" --expect-freq 1000 "$(baresip_received bob)"
#   baresip_codec bob                               -> "opus/48000" (what it decoded)
#   baresip_stop bob
#
#   baresip_caller alice pcmu sip:bob@127.0.0.1:5062 8 1000 -18
#                                                   dials, sends 1000 Hz, hangs up after 8 s
#
#   BS_VIDEO=1 baresip_callee carol pcmu             also H.264 video (baresip-ffmpeg's avcodec
#                                                   module, x264): it sends fakevideo's test
#                                                   picture (320x240, 15/s) and decodes ours
#   baresip_video_available                         true when those modules are installed
#
# By hand (a callee offering only G.722, sending 1 kHz, until Ctrl-C):
#   bash -c '. tests/integration/lib.sh; . tests/integration/baresip.sh; baresip_callee x g722 \
#     1000 -18 && echo "${BS_URI[x]}, records in ${BS_DIR[x]}/rec" && wait'
#
# CODECS is a comma-separated list of opus (opus/48000/2), g722 (G722, 16 kHz audio on an 8,000
# RTP clock), pcmu, pcma: only their modules are loaded and only they are offered or accepted, in
# that order (an INVITE offering none of them gets 488). The tone (FREQ Hz, default 440, at DBFS
# dBFS RMS, default -18, as wavcheck measures: a full-scale sine is -3 dBFS) is a 48 kHz mono WAV
# played by the aufile module, resampled by baresip to the codec's rate. The sndfile module
# records both directions at the codec's rate: rec/dump-<time>-dec.wav what it received
# (decoded), rec/dump-<time>-enc.wav what it sent (Opus: 2 channels, the same audio in both).
#
# Each instance NAME lives in $T_TMP/baresip-NAME (config, accounts, tone, rec/, baresip.log) and
# is started with spawn (lib.sh stops it at exit). Arrays indexed by NAME: BS_PID, BS_PORT (SIP,
# UDP and TCP), BS_URI, BS_DIR, BS_LOG. BARESIP_WHY says why something could not be done.
#
# baresip 1.0 quirks met here (each handled below):
#   - net_interface must be an address (127.0.0.1): "lo" fails with "could not get network
#     address" and baresip exits.
#   - an audio_codecs entry must be the full name/rate/channels of a loaded codec (G722/16000/1,
#     opus/48000/2): a short one ("opus" means opus/8000/1) is "audio codec not found" and the
#     account then silently offers every loaded codec; so only the wanted modules are loaded too,
#     and a "not found" line fails the start.
#   - aufile hangs up the call when its file ends: the tone lasts BARESIP_TONE_SECONDS (120).
#   - aufile needs a file at exactly ausrc_srate / ausrc_channels (48000, 1).
#   - with no sound card, audio_player is aubridge (a device no source reads): the received audio
#     still goes through the decoder and the sndfile filter, which is what is recorded.
#   - auto answer is the account's answermode=auto (ua.c answers; no UI module is needed); a
#     caller needs the menu module for its -e "/dial URI" command, and statmode_default off, or
#     menu prints a status line 10 times a second.

BARESIP_MODDIR=${BARESIP_MODDIR:-/usr/lib/baresip/modules}
BARESIP_TONE_SECONDS=${BARESIP_TONE_SECONDS:-120}
BARESIP_WHY=""
declare -gA BS_PID=() BS_PORT=() BS_URI=() BS_DIR=() BS_LOG=()

# baresip_available: true when baresip and the modules used here are installed.
baresip_available() {
	local m
	if ! command -v baresip >/dev/null 2>&1; then
		BARESIP_WHY="baresip not installed (scripts/deps.sh install codecs)"
		return 1
	fi
	for m in aufile sndfile aubridge g711 g722 opus menu; do
		if [[ ! -f $BARESIP_MODDIR/$m.so ]]; then
			BARESIP_WHY="baresip module $BARESIP_MODDIR/$m.so missing"
			return 1
		fi
	done
	if ! command -v ffmpeg >/dev/null 2>&1; then
		BARESIP_WHY="ffmpeg not installed (it makes the tone file)"
		return 1
	fi
}

# baresip_video_available: true when the modules of BS_VIDEO=1 are installed.
baresip_video_available() {
	local m
	for m in avcodec fakevideo; do
		if [[ ! -f $BARESIP_MODDIR/$m.so ]]; then
			BARESIP_WHY="baresip module $BARESIP_MODDIR/$m.so missing (package baresip-ffmpeg)"
			return 1
		fi
	done
}

# baresip_tone FREQ DBFS: prints the path of a 48 kHz mono 16-bit WAV of FREQ Hz at DBFS dBFS RMS
# lasting BARESIP_TONE_SECONDS (made once per FREQ and DBFS).
baresip_tone() {
	local file="$T_TMP/baresip-tone-$1-$2.wav" amp
	if [[ ! -s $file ]]; then
		amp=$(awk -v l="$2" 'BEGIN { printf "%.6f", sqrt(2) * 10 ^ (l / 20) }')
		ffmpeg -nostdin -hide_banner -loglevel error -y -f lavfi \
			-i "aevalsrc=$amp*sin(2*PI*$1*t):s=48000:d=$BARESIP_TONE_SECONDS" -ac 1 \
			-c:a pcm_s16le "$file" || return 1
	fi
	echo "$file"
}

# baresip_codecs CODECS: sets BS_MODULES (space-separated module names) and BS_CODECS (baresip's
# audio_codecs value) for a comma-separated codec list; false (BARESIP_WHY set) for a name it does
# not know.
baresip_codecs() {
	local c mods=() names=() IFS=,
	for c in $1; do
		case ${c,,} in
		opus) mods+=(opus) names+=(opus/48000/2) ;;
		g722) mods+=(g722) names+=(G722/16000/1) ;;
		pcmu) mods+=(g711) names+=(PCMU/8000/1) ;;
		pcma) mods+=(g711) names+=(PCMA/8000/1) ;;
		*)
			BARESIP_WHY="unknown codec '$c' (opus, g722, pcmu, pcma)"
			return 1
			;;
		esac
	done
	if [[ ${#names[@]} -eq 0 ]]; then
		BARESIP_WHY="no codec given"
		return 1
	fi
	BS_CODECS="${names[*]}"
	IFS=' '
	BS_MODULES=$(printf '%s\n' "${mods[@]}" | sort -u | tr '\n' ' ')
}

# baresip_config NAME CODECS FREQ DBFS [caller]: writes $T_TMP/baresip-NAME/{config,accounts,
# contacts} for user NAME on a free port; sets BS_DIR, BS_PORT, BS_URI, BS_LOG.
baresip_config() {
	local name=$1 dir="$T_TMP/baresip-$1" tone port rtp m answer=";answermode=auto"
	baresip_codecs "$2" || return 1
	tone=$(baresip_tone "$3" "$4") || {
		BARESIP_WHY="ffmpeg could not make the tone file"
		return 1
	}
	port=$(free_port) || return 1
	rtp=$((41000 + RANDOM % 6000 / 2 * 2))
	[[ ${5:-} == caller ]] && answer=""
	mkdir -p "$dir/rec" || return 1
	{
		printf '%s\n' "# baresip $name (tests/integration/baresip.sh)" \
			"poll_method epoll" "sip_listen 127.0.0.1:$port" "net_interface 127.0.0.1" \
			"call_local_timeout 120" "call_max_calls 4" \
			"audio_player aubridge,$name" "audio_alert aubridge,$name" \
			"audio_source aufile,$tone" "ausrc_srate 48000" "ausrc_channels 1" \
			"ausrc_format s16" "auplay_format s16" "auenc_format s16" "audec_format s16" \
			"audio_buffer 20-160" "rtp_ports $rtp-$((rtp + 199))" "rtcp_mux no" \
			"jitter_buffer_delay 5-10" "module_path $BARESIP_MODDIR" "snd_path $dir/rec" \
			"statmode_default off" "module_tmp uuid.so" "module_tmp account.so"
		for m in $BS_MODULES sndfile aufile aubridge; do
			echo "module $m.so"
		done
		if [[ ${BS_VIDEO:-0} == 1 ]]; then
			printf '%s\n' "module avcodec.so" "module fakevideo.so" \
				"video_source fakevideo,nil" "video_display fakevideo,nil" \
				"video_size 320x240" "video_bitrate 300000" "video_fps 15" \
				"avcodec_h264enc libx264" "avcodec_h264dec h264"
		fi
		[[ ${5:-} == caller ]] && echo "module_app menu.so"
	} >"$dir/config"
	# regint=0: no registration, the account only answers (or dials) at its own address.
	echo "<sip:$name@127.0.0.1:$port>;regint=0$answer;audio_codecs=$BS_CODECS$(
		[[ ${BS_VIDEO:-0} == 1 ]] && echo ";video_codecs=H264")" >"$dir/accounts"
	: >"$dir/contacts"
	BS_DIR[$name]=$dir
	BS_PORT[$name]=$port
	BS_URI[$name]="sip:$name@127.0.0.1:$port"
	BS_LOG[$name]="$dir/baresip.log"
}

# baresip_started NAME: waits (5 s) for "baresip is ready." and checks the codec list was taken.
baresip_started() {
	local log=${BS_LOG[$1]}
	if ! wait_log "$log" 'baresip is ready' 5 "${BS_PID[$1]}"; then
		BARESIP_WHY="baresip $1 did not start: $(grep -v '^ *$' "$log" | tail -n 2 | tr '\n' ' ')"
		return 1
	fi
	if grep -q 'audio codec not found' "$log"; then
		BARESIP_WHY="baresip $1: $(grep -m1 'audio codec not found' "$log")"
		return 1
	fi
}

# baresip_callee NAME CODECS [FREQ [DBFS]]: a callee answering every call to BS_URI[NAME] at once
# with only CODECS, sending FREQ Hz (440) at DBFS dBFS RMS (-18). False (BARESIP_WHY) when it
# cannot start.
baresip_callee() {
	baresip_config "$1" "$2" "${3:-440}" "${4:--18}" || return 1
	spawn "${BS_LOG[$1]}" baresip -v -f "${BS_DIR[$1]}"
	BS_PID[$1]=$SPAWNED_PID
	baresip_started "$1"
}

# baresip_caller NAME CODECS URI SECONDS [FREQ [DBFS]]: a baresip that dials URI offering only
# CODECS, sends FREQ Hz (1000) at DBFS (-18) and quits SECONDS after its start (hanging up).
# Runs in the background (BS_PID[NAME]); false when it cannot start.
baresip_caller() {
	baresip_config "$1" "$2" "${5:-1000}" "${6:--18}" caller || return 1
	spawn "${BS_LOG[$1]}" baresip -v -f "${BS_DIR[$1]}" -e "/dial $3" -t "$4"
	BS_PID[$1]=$SPAWNED_PID
	baresip_started "$1"
}

# baresip_wait_established NAME SECONDS: true once NAME's call is up.
baresip_wait_established() {
	wait_log "${BS_LOG[$1]}" 'Call established' "$2"
}

# baresip_wait_ended NAME SECONDS: true once NAME's call has ended (its recordings are complete),
# or NAME has exited, or no call was ever established (nothing to wait for).
baresip_wait_ended() {
	local i
	grep -q 'Call established' "${BS_LOG[$1]}" || return 0
	for ((i = 0; i < $2 * 10; i++)); do
		grep -q 'terminated (duration\|session closed' "${BS_LOG[$1]}" && return 0
		kill -0 "${BS_PID[$1]}" 2>/dev/null || return 0
		sleep 0.1
	done
	return 1
}

# baresip_received NAME / baresip_sent NAME: the path of the WAV of what NAME's (latest) call
# received / sent; nothing printed when there is none.
baresip_received() {
	find "${BS_DIR[$1]}/rec" -name 'dump-*-dec.wav' 2>/dev/null | sort | tail -n 1
}
baresip_sent() {
	find "${BS_DIR[$1]}/rec" -name 'dump-*-enc.wav' 2>/dev/null | sort | tail -n 1
}

# baresip_codec NAME: the codec NAME decoded in its latest call, as "name/rate" (opus/48000,
# G722/16000, PCMU/8000); nothing when no call had audio set up.
baresip_codec() {
	sed -n 's/.*audio: Set audio decoder: \([^ ]*\) \([0-9]*\)Hz.*/\1\/\2/p' "${BS_LOG[$1]}" |
		tail -n 1
}

# baresip_stop NAME: SIGTERM (baresip hangs up and closes its files), SIGKILL after 5 s; only
# while it is still a running job of this shell (a pid that ended may be another's by now).
baresip_stop() {
	local pid=${BS_PID[$1]:-}
	[[ -n $pid ]] || return 0
	if [[ " $(jobs -pr | tr '\n' ' ') " == *" $pid "* ]]; then
		stop_pid "$pid" 5
	else
		wait "$pid" 2>/dev/null
	fi
	BS_PID[$1]=""
}
