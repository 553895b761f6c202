#!/usr/bin/env bash
# test_librtmp.sh - the signaler's RTMP server against librtmp, a client library no one here wrote:
# connect (with extra AMF connect arguments, AMF0 and AMF3 objectEncoding), the `echo` app's custom
# `echo` command, an unknown method (the connection must stay usable), an unknown application, and
# rtmpdump playing a stream with librtmp's FP9 digest handshake.
#
# Uses $BUILD/tools/rtmp_client (tests/tools/rtmp_client.c) and rtmpdump.
. "$(dirname "$0")/lib.sh"

CLIENT="$BUILD/tools/rtmp_client"
if [[ ! -x $CLIENT ]]; then
	skip librtmp "$CLIENT not built (make tools)"
	finish
fi
start_signaler || {
	fail librtmp-start "the signaler did not start"
	finish
}
URL="rtmp://127.0.0.1:$RTMP_PORT"
N=0

# client NAME ARGS...: runs rtmp_client (bounded by timeout); its stdout is left in $OUT and
# stdout+stderr in $T_TMP/NAME.out. Returns the client's exit status.
client() {
	local name=$1 rc
	shift
	N=$((N + 1))
	timeout 20 "$CLIENT" --timeout 5 "$@" >"$T_TMP/$name.stdout" 2>"$T_TMP/$name.stderr"
	rc=$?
	OUT=$(cat "$T_TMP/$name.stdout")
	cat "$T_TMP/$name.stdout" "$T_TMP/$name.stderr" >"$T_TMP/$name.out"
	return $rc
}

# report NAME: the client's output, indented, for a failure.
report() {
	sed 's/^/  | /' "$T_TMP/$1.out"
}

# has NAME TEXT: true when the client's stdout contains TEXT literally.
has() {
	grep -qF -- "$2" "$T_TMP/$1.stdout"
}

# --- connect to echo with an extra AMF object argument -> _result NetConnection.Connect.Success
name=librtmp-connect-echo
if client $name --conn-arg 'O:1 NS:k:v NN:n:1 NB:flag:1 O:0' --conn-arg 'S:extra' \
	--expect result --expect-code NetConnection.Connect.Success "$URL/echo"; then
	if ! has $name '_result 1 {fmsVer:"FMS/3,5,7,7009",capabilities:31,mode:1}'; then
		fail $name "properties object differs: $OUT"
	elif ! has $name '{level:"status",code:"NetConnection.Connect.Success",description:"Connection succeeded.",objectEncoding:0}'; then
		fail $name "info object differs: $OUT"
	else
		pass $name
	fi
else
	fail $name "rtmp_client exit status $?"
	report $name
fi

# --- objectEncoding 3 is echoed back in the info object
name=librtmp-connect-amf3-encoding
if client $name --object-encoding 3 --expect result "$URL/echo"; then
	if has $name 'objectEncoding:3}'; then
		pass $name
	else
		fail $name "objectEncoding 3 not echoed: $OUT"
	fi
else
	fail $name "rtmp_client exit status $?"
	report $name
fi

# --- custom echo(string, object, number, boolean, null) -> _result(txid, null, same args)
name=librtmp-echo-invoke
if client $name --invoke echo --arg-str hello --arg-obj 'k=v,n=2,b=true' --arg-num 1.5 \
	--arg-bool false --arg-null --expect result --expect-echo "$URL/echo"; then
	if has $name '_result 2 null "hello" {k:"v",n:2,b:true} 1.5 false null'; then
		pass $name
	else
		fail $name "unexpected reply: $OUT"
	fi
else
	fail $name "rtmp_client exit status $? (reply not the same arguments)"
	report $name
fi

# --- echo with no arguments and with a long string
name=librtmp-echo-edge-args
long=$(printf 'x%.0s' {1..3000})
if client $name --invoke echo --expect-echo --invoke echo --arg-str "$long" --expect-echo \
	--invoke echo --arg-str "" --arg-obj 'empty=' --expect-echo "$URL/echo"; then
	pass $name
else
	fail $name "rtmp_client exit status $?"
	report $name
fi

# --- unknown method -> _error NetConnection.Call.Failed; the connection stays usable
name=librtmp-unknown-method
if client $name --invoke noSuchMethod --arg-str x --expect error \
	--expect-code NetConnection.Call.Failed --invoke echo --arg-str again --expect-echo \
	"$URL/echo"; then
	if ! has $name "_error 2 null {level:\"error\",code:\"NetConnection.Call.Failed\",description:\"Method 'noSuchMethod' not found\"}"; then
		fail $name "error reply differs: $OUT"
	elif ! has $name '_result 3 null "again"'; then
		fail $name "second invoke did not work: $OUT"
	else
		pass $name
	fi
else
	fail $name "rtmp_client exit status $?"
	report $name
fi

# --- unknown application -> _error NetConnection.Connect.Rejected, then the server closes
name=librtmp-unknown-app
if client $name --expect error --expect-code NetConnection.Connect.Rejected --expect-close \
	"$URL/noSuchApp"; then
	if has $name "_error 1 null {level:\"error\",code:\"NetConnection.Connect.Rejected\",description:\"Unknown application 'noSuchApp'\"}" ||
		has $name "{level:\"error\",code:\"NetConnection.Connect.Rejected\",description:\"Unknown application 'noSuchApp'\"}"; then
		pass $name
	else
		fail $name "error reply differs: $OUT"
	fi
else
	fail $name "rtmp_client exit status $? (want _error Connect.Rejected and a close)"
	report $name
fi
check_alive librtmp-alive-after-clients && pass librtmp-alive-after-clients

# new_log_lines N: the signaler log lines after the first N.
new_log_lines() {
	tail -n +$(($1 + 1)) "$SIGNALER_LOG"
}

# --- librtmp's FP9 digest handshake (librtmp only uses it when SWF verification is set up, so
# rtmp_client --fp9 and rtmpdump -w/-x give it a dummy SWF hash). librtmp checks the server's
# digest and S2 signature itself and fails the connect when either is wrong.
name=librtmp-fp9-echo
before=$(wc -l <"$SIGNALER_LOG")
if client $name --fp9 --verbose --invoke echo --arg-str fp9 --expect-echo "$URL/echo"; then
	if grep -q "Genuine Adobe Flash Media Server" "$T_TMP/$name.stderr"; then
		pass $name
	else
		fail $name "librtmp did not report a verified digest handshake"
		grep "HandShake" "$T_TMP/$name.stderr" | sed 's/^/  | /'
	fi
else
	fail $name "rtmp_client --fp9 exit status $?"
	grep -v "^DEBUG2\|^DEBUG:   [0-9a-f]" "$T_TMP/$name.out" | tail -n 30 | sed 's/^/  | /'
fi
# The server says which handshake variant it used when it logs it.
name=librtmp-fp9-server-variant
hs=$(new_log_lines "$before" | grep -i "handshake done" | head -n 1)
if [[ -z $hs ]]; then
	skip $name "the signaler does not log the handshake variant"
elif grep -qi "digest" <<<"$hs"; then
	pass $name
else
	fail $name "librtmp's FP9 handshake was not answered with the digest variant: $hs"
fi

# --- rtmpdump plays echo/none: simple handshake, then FP9 (dummy SWF hash) -> NetStream.Play.Start
if ! command -v rtmpdump >/dev/null 2>&1; then
	skip librtmp-rtmpdump "rtmpdump not installed"
else
	for variant in simple fp9; do
		name=librtmp-rtmpdump-play-$variant
		extra=()
		[[ $variant == fp9 ]] &&
			extra=(-w 5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a5a -x 12345)
		log="$T_TMP/rtmpdump-$variant.log"
		before=$(wc -l <"$SIGNALER_LOG")
		timeout 20 rtmpdump -r "$URL/echo/none" --live --stop 1 --timeout 3 -V "${extra[@]}" \
			-o /dev/null >"$log" 2>&1
		rc=$?
		if grep -q "Couldn't verify the server digest\|not genuine\|handshake failed" "$log"; then
			fail $name "librtmp rejected the handshake (rtmpdump rc $rc)"
			grep -i "handshake\|digest\|genuine" "$log" | grep -v "^DEBUG:   " | head -n 20 |
				sed 's/^/  | /'
		elif ! grep -q "NetStream.Play.Start" "$log"; then
			fail $name "no NetStream.Play.Start (rtmpdump rc $rc)"
			grep -v "^DEBUG:   [0-9a-f]" "$log" | tail -n 30 | sed 's/^/  | /'
		elif [[ $variant == fp9 ]] && ! grep -q "Genuine Adobe Flash Media Server" "$log"; then
			fail $name "rtmpdump did not use (or verify) the digest handshake"
		else
			pass $name
		fi
		name=librtmp-rtmpdump-server-variant-$variant
		hs=$(new_log_lines "$before" | grep -i "handshake done" | head -n 1)
		want=$([[ $variant == fp9 ]] && echo digest || echo simple)
		if [[ -z $hs ]]; then
			skip $name "the signaler does not log the handshake variant"
		elif grep -qi "$want" <<<"$hs"; then
			pass $name
		else
			fail $name "want the $want handshake: $hs"
		fi
	done
fi

check_alive librtmp-alive-at-end && pass librtmp-alive-at-end
stop_signaler
rc=$?
if [[ $rc -eq 0 ]]; then
	pass librtmp-clean-exit
else
	fail librtmp-clean-exit "the signaler exited with status $rc on SIGTERM"
	log_tail "$SIGNALER_LOG" 30
fi
finish
