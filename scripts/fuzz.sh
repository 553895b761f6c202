#!/usr/bin/env bash
# fuzz.sh - run every libFuzzer target for a while, growing a persistent corpus; used by `make fuzz`.
#
#   FUZZ_SECONDS=300 scripts/fuzz.sh [name...]     (names like fuzz_amf0; default: all targets)
#
# Each build-fuzz/fuzz_<x> runs for FUZZ_SECONDS (default 300) on tests/fuzz/corpus-run/<x>/
# (git-ignored; new inputs are written there) seeded read-only from tests/fuzz/corpus/<x>/, with
# the dictionary tests/fuzz/<x>.dict when there is one.
# Crash, leak and timeout inputs go to build-fuzz/artifacts/<target>/. Prints the executions
# each target reached; exits 1 if any target found a problem.
#
# Environment: FUZZ_SECONDS, FUZZ_DIR (default build-fuzz), FUZZ_TIMEOUT (s per input, 25),
# FUZZ_RSS_MB (default 2048).
set -u

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT" || exit 1

FUZZ_SECONDS=${FUZZ_SECONDS:-300}
FUZZ_DIR=${FUZZ_DIR:-build-fuzz}
[[ $FUZZ_DIR == /* ]] || FUZZ_DIR="$ROOT/$FUZZ_DIR"
FUZZ_TIMEOUT=${FUZZ_TIMEOUT:-25}
FUZZ_RSS_MB=${FUZZ_RSS_MB:-2048}
[[ $FUZZ_SECONDS =~ ^[0-9]+$ ]] || {
	echo "fuzz: FUZZ_SECONDS=$FUZZ_SECONDS is not a number of seconds" >&2
	exit 2
}

targets=()
if [[ $# -gt 0 ]]; then
	for t in "$@"; do
		t=${t#build-fuzz/}
		[[ $t == fuzz_* ]] || t="fuzz_$t"
		targets+=("$FUZZ_DIR/$t")
	done
else
	for bin in "$FUZZ_DIR"/fuzz_*; do
		[[ -f $bin && -x $bin ]] && targets+=("$bin")
	done
fi
if [[ ${#targets[@]} -eq 0 ]]; then
	echo "fuzz: no fuzz targets in $FUZZ_DIR (make fuzz-build)"
	exit 1
fi

CUR=""
trap '[[ -n $CUR ]] && kill -INT "$CUR" 2>/dev/null; wait; echo "fuzz: interrupted"; exit 130' INT TERM

summary=()
bad=0
for bin in "${targets[@]}"; do
	name=$(basename "$bin")
	if [[ ! -x $bin ]]; then
		echo "fuzz: $bin not built"
		summary+=("$name: not built")
		bad=1
		continue
	fi
	short=${name#fuzz_}
	corpus="$ROOT/tests/fuzz/corpus-run/$short"
	seed="$ROOT/tests/fuzz/corpus/$short"
	art="$FUZZ_DIR/artifacts/$name"
	log="$FUZZ_DIR/$name.log"
	mkdir -p "$corpus" "$art"
	dirs=("$corpus")
	seeds="no seed corpus"
	if [[ -d $seed ]]; then
		dirs+=("$seed")
		seeds="seeds from $seed"
	fi
	dict=()
	[[ -f $ROOT/tests/fuzz/$short.dict ]] && dict=(-dict="$ROOT/tests/fuzz/$short.dict")
	before=$(find "$corpus" -type f | wc -l)
	echo "=== $name: ${FUZZ_SECONDS}s, corpus $corpus ($before inputs), $seeds"
	"$bin" -max_total_time="$FUZZ_SECONDS" -timeout="$FUZZ_TIMEOUT" -rss_limit_mb="$FUZZ_RSS_MB" \
		-print_final_stats=1 -artifact_prefix="$art/" "${dict[@]}" "${dirs[@]}" </dev/null >"$log" 2>&1 &
	CUR=$!
	# Show progress lines and problems only; the whole output stays in $log.
	tail -n +1 -s 0.5 -f --pid="$CUR" "$log" |
		grep -E --line-buffered '^#[0-9]+.*(INITED|DONE|pulse)|ERROR|SUMMARY|Test unit written|^stat::number_of_executed' &
	wait "$CUR"
	rc=$?
	wait
	CUR=""
	execs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n 1)
	[[ -n $execs ]] || execs=$(sed -n 's/^#\([0-9]*\)[[:space:]]*DONE.*/\1/p' "$log" | tail -n 1)
	after=$(find "$corpus" -type f | wc -l)
	if [[ $rc -eq 0 ]]; then
		summary+=("$name: ok, ${execs:-?} execs, corpus $before -> $after inputs")
	else
		summary+=("$name: PROBLEM after ${execs:-?} execs: see $log and $art/")
		bad=1
	fi
done

echo "=== fuzz summary (${FUZZ_SECONDS}s each)"
printf '  %s\n' "${summary[@]}"
exit "$bad"
