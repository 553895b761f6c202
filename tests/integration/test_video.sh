#!/usr/bin/env bash
# test_video.sh - H.264 video calls through the call app: an ffmpeg publisher (H.264 + AAC) calls
# SIPp, which echoes the RTP (audio on its media port, video on the port after the next: -rtp_echo
# with sipp/call_uas_video_echo.xml answering PCMU and the offered H.264); an ffmpeg player of the
# same name records the far end. The publisher's picture turns white and a tone sounds at the
# start of every second (tests/tools/avsync.py finds both in the recording).
#
#   video_echo_call        the recording's video decodes (no decoder error, frames counted, the
#                          publisher's resolution) and its audio holds the tone marks
#   video_av_sync          in the recording, audio and video marks within 80 ms of where they
#                          were in what was published (median over the marks; 120 ms under
#                          AddressSanitizer)
#   video_offer            the INVITE offered H.264 packetization-mode 1 with the publisher's
#                          profile-level-id, RTCP feedback (pli, ccm fir) and a separate m=video
#   video_worker_counts    the worker log says pictures went both ways and none was dropped for
#                          want of a key frame after the first
#   video_declined         a callee answering audio only (SIPp's built-in uas): an audio call, the
#                          tone marks come back, the video leg gone ("no video" logged)
#   video_refused_codec    a Sorenson H.263 publisher: NetStream.Video.Unsupported (logged), no
#                          video leg, the call goes on with audio (the tone marks come back)
#   video_baresip          a baresip callee with video (baresip-ffmpeg's avcodec, x264): answers
#                          H.264, decodes ours, and its test picture reaches the player (320x240)
#   video_sip_app          the sip app (the Flash VoIP API): invite(uri, "pcmu", "h264") offers
#                          H.264, accepted("pcmu", "h264"); the client's published H.264 goes
#                          through SIPp's echo back to its played stream (key frames among the
#                          pictures) and its tone too
#   video_failover         the worker carrying the call killed (-9) mid-call: both legs move to
#                          the other worker together, one re-INVITE, and the player's video goes
#                          on within 2 s (the largest gap between its pictures)
#   video_no_leftovers     no leg records left in Redis
. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
. "$(dirname "${BASH_SOURCE[0]}")/baresip.sh"

MW="$T_MW"
need_tools video ffmpeg ffprobe sipp redis-cli python3
for bin in "$MW" "$WAVCHECK"; do
	[[ -x $bin ]] || { fail video_setup "$bin not built"; finish; }
done
ffmpeg -hide_banner -encoders 2>/dev/null | grep -q libx264 ||
	{ skip video "ffmpeg has no libx264"; finish; }
start_redis || { fail video_setup "redis did not start"; finish; }

FF=(ffmpeg -nostdin -hide_banner -loglevel error -y)
SIPP_DIR="$(dirname "${BASH_SOURCE[0]}")/sipp"
AVSYNC="$T_ROOT/tests/tools/avsync.py"

base=$((40000 + RANDOM % 4000 / 2 * 2))
# two workers: the failover case kills the one carrying its call
declare -A WPID=()
for w in vw1 vw2; do
	spawn "$T_TMP/$w.log" env WORKER_ID=$w RTP_PORT_MIN="$base" RTP_PORT_MAX=$((base + 499)) \
		LOG_LEVEL=${WORKER_LOG_LEVEL:-info} RTP_BIND_IP=127.0.0.1 "$MW"
	WPID[$w]=$SPAWNED_PID
	wait_log "$T_TMP/$w.log" 'mediaworker ready' 5
	base=$((base + 500))
done
start_signaler SIGNALER_ID=sig-video-test || { fail video_setup "the signaler did not start"; finish; }
URL="rtmp://127.0.0.1:$RTMP_PORT/call"
for ((i = 0; i < 50; i++)); do
	(($(grep -c 'mediaworker up' "$SIGNALER_LOG") >= 2)) && break
	sleep 0.2
done
(($(grep -c 'mediaworker up' "$SIGNALER_LOG") >= 2)) || { fail video_setup "the signaler did not find both workers"; finish; }

# The published source: 640x360 at 30/s, a key frame every second, B-frames (x264's default),
# AAC 44.1 kHz; white picture and tone for the first 100 ms of every second.
SRC="$T_TMP/src.flv"
"${FF[@]}" -f lavfi -i "color=c=black:s=640x360:r=30,drawbox=c=white:t=fill:enable='lt(mod(t,1),0.1)'" \
	-f lavfi -i "sine=f=1000:r=44100,volume=volume=0:enable='gte(mod(t,1),0.1)'" -t 9 \
	-c:v libx264 -preset veryfast -g 30 -pix_fmt yuv420p -c:a aac -b:a 96k -f flv "$SRC" \
	>"$T_TMP/src.log" 2>&1 || { fail video_setup "cannot make the source: $(tail -2 "$T_TMP/src.log")"; finish; }
src_sync=$(python3 "$AVSYNC" "$SRC")
note "source: $src_sync"

# video_call NAME CALLEE [PUBLISH-INPUT-ARGS...]: a callee (a SIPp scenario file sipp/CALLEE with
# RTP echo, its messages in $T_TMP/NAME.msg; "uas": SIPp's built-in uas, audio only, echoing; or a
# SIP URI), a player recording to $T_TMP/NAME.flv, a publisher of $SRC (or the given input). With
# MID_CALL set, that command runs 3 s into the call (in the background).
video_call() {
	local name=$1 callee=$2 sport mport dest sipp_pid="" mid=""
	shift 2
	if [[ $callee == sip:* ]]; then
		dest=${callee#sip:}
	else
		sport=$(free_port) mport=$(udp_port)
		if [[ $callee == uas ]]; then
			spawn "$T_TMP/$name.sipp.log" sipp -sn uas -rtp_echo -mp "$mport" -p "$sport" \
				-i 127.0.0.1 -nostdin
		else
			spawn "$T_TMP/$name.sipp.log" sipp -sf "$SIPP_DIR/$callee" -m 1 -rtp_echo \
				-mp "$mport" -p "$sport" -i 127.0.0.1 -nostdin -trace_msg \
				-message_file "$T_TMP/$name.msg"
		fi
		sipp_pid=$SPAWNED_PID
		sleep 0.5
		dest="$name@127.0.0.1:$sport"
	fi
	timeout 40 "${FF[@]}" -i "$URL/$dest" -t 7 -c copy -f flv "$T_TMP/$name.flv" \
		>"$T_TMP/$name.play.log" 2>&1 &
	local player=$!
	sleep 1
	if [[ -n ${MID_CALL:-} ]]; then
		(sleep 3 && eval "$MID_CALL") &
		mid=$!
	fi
	if (($#)); then
		timeout 30 "${FF[@]}" -re "$@" -f flv "$URL/$dest" >"$T_TMP/$name.pub.log" 2>&1
	else
		timeout 30 "${FF[@]}" -re -i "$SRC" -c copy -f flv "$URL/$dest" >"$T_TMP/$name.pub.log" 2>&1
	fi
	wait "$player"
	[[ -n $mid ]] && wait "$mid"
	sleep 0.5
	if [[ -n $sipp_pid ]]; then
		kill "$sipp_pid" 2>/dev/null
		wait "$sipp_pid" 2>/dev/null
	fi
	return 0
}

# marks FILE: avsync's line for the recording FILE (tone onsets, flashes, pairs).
marks() {
	python3 "$AVSYNC" "$1" --min-pairs 0
}

# video_frames FILE: decoded pictures, width and height of FILE's video ("0,0,0" without).
video_frames() {
	local p
	p=$(ffprobe -v error -select_streams v:0 -count_frames -show_entries \
		stream=nb_read_frames,width,height -of csv=p=0 "$1" 2>/dev/null)
	echo "${p:-0,0,0}"
}

video_call vcall call_uas_video_echo.xml
rec="$T_TMP/vcall.flv"
# decode the whole recording: frames, size, errors
probe=$(ffprobe -v error -select_streams v:0 -count_frames -show_entries \
	stream=codec_name,width,height,nb_read_frames -of csv=p=0 "$rec" 2>"$T_TMP/vcall.probe.err")
decode_errors=$(ffmpeg -nostdin -hide_banner -v error -i "$rec" -f null - 2>&1 | grep -c .)
rec_sync=$(python3 "$AVSYNC" "$rec" --min-pairs 3)
note "recording: video $probe, decoder errors $decode_errors; $rec_sync"
why=""
IFS=, read -r vcodec vw vh vframes <<<"$probe"
[[ $vcodec == h264 ]] || why+="video codec '${vcodec:-none}'; "
[[ $vw == 640 && $vh == 360 ]] || why+="size ${vw:-?}x${vh:-?}, not 640x360; "
[[ ${vframes:-0} =~ ^[0-9]+$ ]] && ((vframes >= 100)) || why+="${vframes:-no} frames decoded (>= 100 wanted); "
((decode_errors == 0)) || why+="$decode_errors decoder error lines; "
[[ $rec_sync == *"pairs "[3-9]* ]] || why+="tone/flash marks not found ($rec_sync); "
[[ -z $why ]] && pass video_echo_call || fail video_echo_call "$why $(tail -2 "$T_TMP/vcall.play.log" | tr '\n' ' ')"

src_med=$(sed -n 's/.*median_ms \([-0-9.]*\).*/\1/p' <<<"$src_sync")
rec_med=$(sed -n 's/.*median_ms \([-0-9.]*\).*/\1/p' <<<"$rec_sync")
# 80 ms; 120 under AddressSanitizer, whose slower codecs lengthen the audio pipeline
bound=80
asan_build && bound=120
if [[ -n $src_med && -n $rec_med ]] &&
	python3 -c "import sys; d=abs(float('$rec_med')-float('$src_med')); print(f'  a/v skew added {d:.1f} ms (bound $bound)'); sys.exit(0 if d <= $bound else 1)"; then
	pass video_av_sync
else
	fail video_av_sync "audio-video offset ${rec_med:-?} ms in the recording, ${src_med:-?} ms in the source"
fi

why=""
offer=$(awk '/INVITE sip:/{f=1} f{print} /^$/{if(f&&seen)exit; if(f)seen=1}' "$T_TMP/vcall.msg")
grep -q "m=video [0-9]* RTP/AVP 96" "$T_TMP/vcall.msg" || why+="no m=video with H.264 on 96; "
grep -q "a=fmtp:96 profile-level-id=64001e;packetization-mode=1" "$T_TMP/vcall.msg" ||
	why+="no fmtp with the publisher's profile (64001e, x264 high 3.0) and mode 1; "
grep -q "a=rtcp-fb:96 nack pli" "$T_TMP/vcall.msg" || why+="no rtcp-fb pli; "
grep -q "a=rtcp-fb:96 ccm fir" "$T_TMP/vcall.msg" || why+="no rtcp-fb fir; "
[[ -z $why ]] && pass video_offer || fail video_offer "$why"

grep -hE "video: to SIP" "$T_TMP"/vw*.log | tail -2 | while read -r l; do note "worker: ${l#*: }"; done
why=""
line=$(grep -hE "video: to SIP" "$T_TMP"/vw*.log | tail -1)
to_sip=$(sed -n 's/.*to SIP \([0-9]*\) pictures.*/\1/p' <<<"$line")
to_rtmp=$(sed -n 's/.*to RTMP \([0-9]*\) pictures.*/\1/p' <<<"$line")
((${to_sip:-0} >= 150)) || why+="${to_sip:-no} pictures to SIP; "
((${to_rtmp:-0} >= 150)) || why+="${to_rtmp:-no} pictures to RTMP; "
[[ -z $why ]] && pass video_worker_counts || fail video_worker_counts "$why ($line)"

# --- a callee without video -------------------------------------------------------------------
video_call vdecl uas
m=$(marks "$T_TMP/vdecl.flv")
note "declined: $m; $(video_frames "$T_TMP/vdecl.flv") (frames,width,height)"
why=""
onsets=$(sed -n 's/.*onsets \([0-9]*\).*/\1/p' <<<"$m")
((${onsets:-0} >= 4)) || why+="${onsets:-no} tone marks came back; "
grep -q "call .*vdecl@.*: no video" "$SIGNALER_LOG" || why+="no 'no video' line; "
grep -q "NetConnection.Call.Failed.*vdecl" "$SIGNALER_LOG" && why+="the call failed; "
[[ -z $why ]] && pass video_declined || fail video_declined "$why"

# --- a publisher's video that is not H.264 -----------------------------------------------------
video_call vsor call_uas_video_echo.xml -f lavfi -i "color=c=black:s=320x240:r=15" \
	-f lavfi -i "sine=f=1000:r=44100,volume=volume=0:enable='gte(mod(t,1),0.1)'" -t 7 \
	-c:v flv1 -c:a aac
m=$(marks "$T_TMP/vsor.flv")
note "Sorenson publisher: $m"
why=""
onsets=$(sed -n 's/.*onsets \([0-9]*\).*/\1/p' <<<"$m")
((${onsets:-0} >= 4)) || why+="${onsets:-no} tone marks came back; "
grep -q "call/vsor@.*: video codec id 2 is not carried (H.264 only)" "$SIGNALER_LOG" ||
	why+="no refusal naming codec id 2; "
(($(grep -c "call .*vsor@.*H.264 video" "$SIGNALER_LOG") == 0)) || why+="video was offered; "
[[ -z $why ]] && pass video_refused_codec || fail video_refused_codec "$why"

# --- baresip with video -------------------------------------------------------------------------
if ! baresip_available || ! baresip_video_available; then
	skip video_baresip "$BARESIP_WHY"
elif ! BS_VIDEO=1 baresip_callee carol pcmu 1000; then
	fail video_baresip "$BARESIP_WHY"
else
	video_call vbs "${BS_URI[carol]}"
	baresip_stop carol
	f=$(video_frames "$T_TMP/vbs.flv")
	line=$(grep -E "video: to SIP" "$T_TMP"/vw*.log | tail -1)
	note "baresip: player got $f (frames,width,height); ${line#*: }"
	why=""
	IFS=, read -r bw bh bn <<<"$f"
	[[ $bw == 320 && $bh == 240 ]] || why+="the player's video is ${bw}x$bh, not baresip's 320x240; "
	((${bn:-0} >= 30)) || why+="${bn:-no} pictures from baresip; "
	grep -qi "H264" "${BS_LOG[carol]}" || why+="baresip did not set up H.264; "
	grep -qi "decode.*error\|avcodec: .*fail" "${BS_LOG[carol]}" &&
		why+="baresip could not decode: $(grep -im1 'decode.*error\|avcodec: .*fail' "${BS_LOG[carol]}"); "
	[[ -z $why ]] && pass video_baresip || fail video_baresip "$why"
fi

# --- the sip app: the "h264" token ------------------------------------------------------------------
sport=$(free_port) mport=$(udp_port)
spawn "$T_TMP/vsip.sipp.log" sipp -sf "$SIPP_DIR/call_uas_video_echo.xml" -m 1 -rtp_echo \
	-mp "$mport" -p "$sport" -i 127.0.0.1 -nostdin -trace_msg -message_file "$T_TMP/vsip.msg"
vsip_sipp=$SPAWNED_PID
sleep 0.5
timeout -k 5 60 "$BUILD/tools/sipphone" --timeout 40 "rtmp://127.0.0.1:$RTMP_PORT/sip/dave@example.com" \
	"" "" Dave >"$T_TMP/vsip.out" 2>&1 <<EOF
invite sip:vsip@127.0.0.1:$sport pcmu h264
wait-arg accepted 1 h264
publish local pcmu 1000 7 video $SRC
play remote $T_TMP/vsip.wav
sleep 7.5
bye
EOF
rc=$?
kill "$vsip_sipp" 2>/dev/null
wait "$vsip_sipp" 2>/dev/null
why=""
((rc == 0)) || why+="sipphone failed ($rc): $(tail -2 "$T_TMP/vsip.out" | tr '\n' ' '); "
grep -q '^event accepted "pcmu" "h264"' "$T_TMP/vsip.out" ||
	why+="no accepted(pcmu, h264): $(grep -m1 'event accepted' "$T_TMP/vsip.out"); "
vline=$(grep '^video remote messages' "$T_TMP/vsip.out")
vmsgs=$(awk '{print $4}' <<<"$vline") vkeys=$(awk '{print $6}' <<<"$vline")
((${vmsgs:-0} >= 100)) || why+="${vmsgs:-no} pictures played; "
((${vkeys:-0} >= 1)) || why+="no key frame played; "
"$WAVCHECK" --expect-freq 1000 --min-duration 3 --min-rms-dbfs -30 "$T_TMP/vsip.wav" \
	>"$T_TMP/vsip.check" 2>&1 || why+="the tone: $(cat "$T_TMP/vsip.check"); "
grep -q "m=video [0-9]* RTP/AVP 96 97" "$T_TMP/vsip.msg" || why+="the INVITE offered no H.264; "
note "sip app: ${vline:-no video}"
[[ -z $why ]] && pass video_sip_app || fail video_sip_app "$why"

# --- failover: the worker carrying the call dies --------------------------------------------------
# kill_carrier: kill -9 the worker the call's legs are on (the signaler's "leg ready on" lines)
kill_carrier() {
	local w
	w=$(grep -o "leg ready on vw[12]: call call/vfo@" "$SIGNALER_LOG" | tail -1 | awk '{print $4}' | tr -d :)
	echo "$w" >"$T_TMP/vfo.killed"
	[[ -n $w ]] && kill -9 "${WPID[$w]}"
}
MID_CALL=kill_carrier video_call vfo call_uas_video_echo.xml
killed=$(cat "$T_TMP/vfo.killed" 2>/dev/null)
gap=$(ffprobe -v error -select_streams v:0 -show_entries packet=pts_time -of csv=p=0 "$T_TMP/vfo.flv" |
	sort -n | awk 'NR > 1 { g = $1 - p; if (g > max) max = g } { p = $1; n++ } END { printf "%.3f %d", max, n }')
moved=$(grep -c "leg moved to" "$SIGNALER_LOG")
note "failover: killed ${killed:-none}; largest gap between pictures ${gap% *} s of ${gap#* }; legs moved $moved"
why=""
[[ -n $killed ]] || why+="no worker carried the call; "
((moved >= 2)) || why+="$moved legs moved (audio and video expected); "
python3 -c "import sys; sys.exit(0 if float('${gap% *}') <= 2.0 else 1)" 2>/dev/null ||
	why+="video stopped for ${gap% *} s; "
((${gap#* } >= 120)) || why+="only ${gap#* } pictures recorded; "
n_reinv=$(grep -c "^INVITE sip:" "$T_TMP/vfo.msg" 2>/dev/null)
((n_reinv == 2)) || why+="$n_reinv INVITEs (one re-INVITE expected for both legs); "
[[ -z $why ]] && pass video_failover || fail video_failover "$why"

check_alive video_signaler_alive
if [[ $(rkeys 'rs:v1:leg:*' | wc -l) == 0 ]]; then
	pass video_no_leftovers
else
	sleep 2
	n=$(rkeys 'rs:v1:leg:*' | wc -l)
	((n == 0)) && pass video_no_leftovers || fail video_no_leftovers "$n leg records left"
fi
finish
