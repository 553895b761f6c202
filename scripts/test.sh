#!/usr/bin/env bash
# test.sh - run the test suites and count results; used by `make test|unit|integration|fuzz-smoke`.
#
#   scripts/test.sh all|unit|integration|fuzz     (default: all)
#
# unit         every $BUILD/tests/test_* binary; each prints "PASS name" / "FAIL name" lines.
# integration  every tests/integration/test_*.sh (BUILD exported) but those run by hand only
#              (MANUAL_SCRIPTS below); they print PASS/FAIL lines too, and "SKIP name: reason"
#              for what they cannot run here.
# fuzz         every build-fuzz/fuzz_* target for FUZZ_SMOKE_SECONDS on a copy of its seed corpus
#              tests/fuzz/corpus/<name without fuzz_>/ (the tree is never modified), with the
#              dictionary tests/fuzz/<name without fuzz_>.dict when there is one.
#
# A program that exits non-zero (or crashes) without printing a FAIL line counts as one failure
# named after it; a crash or timeout always counts as one. All output goes to the terminal; the
# last line is exactly "N passed, N failed" (skips are reported on the line before). Exit 1 when
# anything failed.
#
# Environment: BUILD (build dir, default build), UNIT_TIMEOUT (s, default 120),
# INTEGRATION_TIMEOUT (s per script, default 300; test_deploy*: DEPLOY_TIMEOUT, default 2400;
# test_long_call: its call's length, LONG_CALL_SECONDS (default 600), + 120),
# FUZZ_SMOKE_SECONDS (default 10),
# FUZZ_DIR (default build-fuzz).
set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1

BUILD=${BUILD:-build}
[[ $BUILD == /* ]] || BUILD="$ROOT/$BUILD"
export BUILD
FUZZ_DIR=${FUZZ_DIR:-build-fuzz}
[[ $FUZZ_DIR == /* ]] || FUZZ_DIR="$ROOT/$FUZZ_DIR"
UNIT_TIMEOUT=${UNIT_TIMEOUT:-120}
INTEGRATION_TIMEOUT=${INTEGRATION_TIMEOUT:-300}
FUZZ_SMOKE_SECONDS=${FUZZ_SMOKE_SECONDS:-10}
# Under SANITIZER=address: the leaks of libraries we cannot fix (each one named there).
export LSAN_OPTIONS="suppressions=$ROOT/tests/lsan.supp${LSAN_OPTIONS:+:$LSAN_OPTIONS}"

PASSED=0
FAILED=0
SKIPPED=0
FAILED_NAMES=()
SKIPPED_NAMES=()

TMP=$(mktemp -d "${TMPDIR:-/tmp}/rtmp2sip-test.XXXXXX") || exit 1
CUR_PID=""
trap 'rm -rf "$TMP"' EXIT
trap '[[ -n $CUR_PID ]] && kill -TERM -- "-$CUR_PID" 2>/dev/null; echo "test.sh: interrupted"; exit 130' \
	INT TERM

# run_logged LOG SECONDS CMD...: runs CMD under timeout with stdin closed, output to LOG and shown
# live on the terminal; afterwards kills whatever CMD left behind in its process group (timeout
# gives it its own group). Returns CMD's status (124 on timeout, 128+N when killed by signal N).
run_logged() {
	local log=$1 secs=$2 pid tpid rc
	shift 2
	: >"$log"
	timeout -k 10 "$secs" "$@" </dev/null >"$log" 2>&1 &
	pid=$!
	CUR_PID=$pid
	tail -n +1 -s 0.2 -f --pid="$pid" "$log" &
	tpid=$!
	wait "$pid"
	rc=$?
	wait "$tpid" 2>/dev/null
	kill -TERM -- "-$pid" 2>/dev/null
	CUR_PID=""
	return "$rc"
}

# count_results LABEL LOG RC: adds the PASS/FAIL/SKIP lines of LOG to the totals, plus one failure
# named LABEL when RC says it failed without a FAIL line, crashed or timed out.
count_results() {
	local label=$1 log=$2 rc=$3 p f s line why=""
	p=$(grep -c '^PASS ' "$log")
	f=$(grep -c '^FAIL ' "$log")
	s=$(grep -c '^SKIP ' "$log")
	PASSED=$((PASSED + p))
	FAILED=$((FAILED + f))
	SKIPPED=$((SKIPPED + s))
	while IFS= read -r line; do
		line=${line#FAIL }
		FAILED_NAMES+=("${line%%:*}")
	done < <(grep '^FAIL ' "$log")
	while IFS= read -r line; do
		SKIPPED_NAMES+=("${line#SKIP }")
	done < <(grep '^SKIP ' "$log")

	if [[ $rc -eq 124 || $rc -eq 137 ]]; then
		why="timed out"
	elif [[ $rc -gt 128 ]]; then
		why="killed by signal $((rc - 128))"
	elif [[ $rc -ne 0 && $f -eq 0 ]]; then
		why="exit status $rc without a FAIL line"
	elif [[ $rc -eq 0 && $((p + f + s)) -eq 0 ]]; then
		why="printed no PASS/FAIL/SKIP line"
	fi
	if [[ -n $why ]]; then
		echo "FAIL $label: $why"
		FAILED=$((FAILED + 1))
		FAILED_NAMES+=("$label")
	fi
}

run_unit() {
	local bin name n=0 rc
	echo "=== unit tests ($BUILD/tests)"
	for bin in "$BUILD"/tests/test_*; do
		[[ -f $bin && -x $bin ]] || continue
		name=$(basename "$bin")
		n=$((n + 1))
		echo "--- $name"
		run_logged "$TMP/$name.log" "$UNIT_TIMEOUT" "$bin"
		rc=$?
		count_results "$name" "$TMP/$name.log" "$rc"
	done
	[[ $n -gt 0 ]] || echo "unit: no test binaries in $BUILD/tests (run make first)"
}

# Integration scripts run by hand only, not by `make test` (each says why in its header).
MANUAL_SCRIPTS=" "

run_integration() {
	local script name n=0 rc secs
	echo "=== integration tests (tests/integration, BUILD=$BUILD)"
	for script in "$ROOT"/tests/integration/test_*.sh; do
		[[ -f $script ]] || continue
		name=$(basename "$script" .sh)
		if [[ $MANUAL_SCRIPTS == *" $name "* ]]; then
			echo "--- $name: not run (by hand only: BUILD=$BUILD bash $script)"
			continue
		fi
		n=$((n + 1))
		echo "--- $name"
		# The container part of test_deploy and test_deploy_docker builds an image (from scratch
		# on a fresh machine: debootstrap, then the build) before its cluster tests.
		secs=$INTEGRATION_TIMEOUT
		[[ $name == test_deploy || $name == test_deploy_docker ]] && secs=${DEPLOY_TIMEOUT:-2400}
		# test_long_call holds one call for LONG_CALL_SECONDS.
		[[ $name == test_long_call ]] && secs=$((${LONG_CALL_SECONDS:-600} + 120))
		# test_codecs runs about 30 calls of 6 s, a fresh callee each.
		[[ $name == test_codecs ]] && secs=900
		run_logged "$TMP/$name.log" "$secs" bash "$script"
		rc=$?
		count_results "$name" "$TMP/$name.log" "$rc"
	done
	[[ $n -gt 0 ]] || echo "integration: no tests/integration/test_*.sh"
}

# Prints the number of executed units from a libFuzzer log (final stats or the DONE line).
fuzz_execs() {
	local n
	n=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$1" | tail -n 1)
	[[ -n $n ]] || n=$(sed -n 's/^#\([0-9]*\)[[:space:]]*DONE.*/\1/p' "$1" | tail -n 1)
	echo "${n:-?}"
}

run_fuzz() {
	local bin name seed corpus art log n=0 rc execs dict
	echo "=== fuzz smoke ($FUZZ_DIR, ${FUZZ_SMOKE_SECONDS}s each)"
	for bin in "$FUZZ_DIR"/fuzz_*; do
		[[ -f $bin && -x $bin ]] || continue
		name=$(basename "$bin")
		n=$((n + 1))
		seed="$ROOT/tests/fuzz/corpus/${name#fuzz_}"
		corpus="$TMP/corpus-$name"
		art="$FUZZ_DIR/artifacts/$name"
		log="$TMP/$name.log"
		mkdir -p "$corpus" "$art"
		if [[ -d $seed ]]; then
			cp -R "$seed/." "$corpus/"
		else
			echo "note: no seed corpus $seed; starting empty"
		fi
		dict=()
		[[ -f $ROOT/tests/fuzz/${name#fuzz_}.dict ]] && dict=(-dict="$ROOT/tests/fuzz/${name#fuzz_}.dict")
		echo "--- $name"
		timeout -k 10 $((FUZZ_SMOKE_SECONDS + 120)) "$bin" -max_total_time="$FUZZ_SMOKE_SECONDS" \
			-timeout=25 -print_final_stats=1 -artifact_prefix="$art/" "${dict[@]}" "$corpus" \
			</dev/null >"$log" 2>&1 &
		CUR_PID=$!
		wait "$CUR_PID"
		rc=$?
		CUR_PID=""
		# libFuzzer is chatty: show its start and end lines, everything on failure.
		if [[ $rc -eq 0 ]]; then
			grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)' "$log"
		else
			cat "$log"
		fi
		execs=$(fuzz_execs "$log")
		if [[ $rc -eq 0 ]]; then
			echo "PASS $name ($execs execs in ${FUZZ_SMOKE_SECONDS}s)"
			PASSED=$((PASSED + 1))
		else
			echo "FAIL $name: exit status $rc after $execs execs; artifacts in $art/"
			FAILED=$((FAILED + 1))
			FAILED_NAMES+=("$name")
		fi
	done
	[[ $n -gt 0 ]] || echo "fuzz: no fuzz targets in $FUZZ_DIR"
}

case "${1:-all}" in
unit) run_unit ;;
integration) run_integration ;;
fuzz) run_fuzz ;;
all)
	run_unit
	run_integration
	run_fuzz
	;;
*)
	echo "usage: $0 all|unit|integration|fuzz" >&2
	exit 2
	;;
esac

echo "==="
if [[ $FAILED -gt 0 ]]; then
	echo "failed: ${FAILED_NAMES[*]}"
fi
if [[ $SKIPPED -gt 0 ]]; then
	printf 'skipped: %s\n' "${SKIPPED_NAMES[@]}"
	echo "$SKIPPED skipped"
fi
echo "$PASSED passed, $FAILED failed"
[[ $FAILED -eq 0 ]]
