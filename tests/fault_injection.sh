#!/usr/bin/env bash
# Fault injection for `passk` (issue 18), on the theory and tiny-smoke experiments:
#
#   kill       kill -9 at a random moment of `passk run` (fresh results and warm-start cache),
#              rerun, and compare results and cache byte for byte with an uninterrupted run
#   report     kill -9 at a random moment of `passk report`, rerun it, compare the figures
#   tamper     each tamper case of the issue on a finished tiny-smoke cell: `verify` fails,
#              `run --on-corrupt stop` stops and changes nothing, `run` moves the cell aside to
#              .quarantine/ and reruns it byte-identically, `verify` then passes
#   cache      a warm start in the cache with overwritten bytes: `run --strict` fails, `run`
#              warns, retrains it bit-identically and gives byte-identical results
#   concurrent two `passk run` at once on one results folder and one cache: each exits 0 or 3
#              (incomplete), a third run completes, results are byte-identical
#   disk-full  a run on a 256 KiB tmpfs fails without leaving a cell in place that fails its
#              check; skipped, with the reason, where a tmpfs cannot be mounted
#
# Comparisons ignore only the documented run-dependent fields of tiny cells (passk-train's
# `TinyOutcome`, `TrainLogRow`): `wall_seconds` and `resumed_from_step` (the step a resumed
# invocation started from) in summary.json and the `seconds` column of train_log.csv, and so
# the sha256 and size of those two files in the cell's complete.json and in MANIFEST. Everything else (theory cells whole, every
# other tiny file, hidden leftovers, the warm-start cache, figures) is compared byte for byte,
# and every rerun result must also pass `passk verify` (records and MANIFEST).
#
# Usage: tests/fault_injection.sh [PASSK] (default target/release/passk; `cargo xtask fault`
# builds it and runs this). FAULT_SEED fixes the random kill moments; FAULT_KILLS (default 16)
# and FAULT_REPORT_KILLS (default 6) set the number of trials. Prints one line per case and a
# summary; exits 1 when a case fails (its work folder is kept then). It works under /dev/shm
# when writable (FAULT_TMPDIR overrides), else $TMPDIR.
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PASSK=${1:-$ROOT/target/release/passk}
[ -x "$PASSK" ] || { echo "fault: no passk binary at $PASSK (cargo build --release -p passk-cli)"; exit 2; }
export RAYON_NUM_THREADS=1 CANDLE_NUM_THREADS=1
unset CI
SEED=${FAULT_SEED:-$(date +%s)}
RANDOM=$SEED
KILLS=${FAULT_KILLS:-16}
REPORT_KILLS=${FAULT_REPORT_KILLS:-6}
# Work in memory where possible: thousands of small fsynced files are slow on a busy disk.
BASE=${FAULT_TMPDIR:-/dev/shm}
[ -d "$BASE" ] && [ -w "$BASE" ] || BASE=${TMPDIR:-/tmp}
W=$(mktemp -d "$BASE/passk-fault.XXXXXX")
LOG=$W/log
EXPS=("$ROOT/experiments/theory.toml" "$ROOT/experiments/tiny-smoke.toml")
tried=0
passed=0
failed=()
started=$(date +%s)

say() { printf '%s\n' "$*"; }
result() { # name, 0 or a reason
    tried=$((tried + 1))
    if [ "$2" = 0 ]; then
        passed=$((passed + 1))
        say "  ok    $1"
    else
        failed+=("$1")
        say "  FAIL  $1: $2"
    fi
}
run() { # results cache [flags...]
    local r=$1 c=$2
    shift 2
    "$PASSK" run "${EXPS[@]}" --results "$r" --cache "$c" --quiet "$@" >>"$LOG" 2>&1
}
normalized() { # src dst: a copy of the tree src without the tiny tier's run-dependent fields
    rm -rf "$2"
    cp -a "$1" "$2"
    find "$2" -path '*tiny-smoke/*' -name summary.json -exec sed -i -E '/"(wall_seconds|resumed_from_step)"/d' {} +
    find "$2" -path '*tiny-smoke/*' -name train_log.csv -exec sed -i 's/,[^,]*$//' {} +
    find "$2" -path '*tiny-smoke/*' -name complete.json \
        -exec sed -i -E '/"path": "(summary\.json|train_log\.csv)"/{n;N;d}' {} +
    if [ -f "$2/MANIFEST" ]; then
        sed -i -E '/  tiny-smoke\/[^ ]*\/(summary\.json|train_log\.csv|complete\.json)$/d' "$2/MANIFEST"
    fi
}
same() { # a b: identical trees (hidden files included, .quarantine not)
    diff -r -x .quarantine "$1" "$2" >"$W/diff" 2>&1
}
same_results() { # results: identical to the reference's, but for the run-dependent fields
    normalized "$1" "$W/normalized" && same "$W/normalized" "$W/ref-normalized"
}
consistent() { # results: every cell's record and MANIFEST verify (after a fresh report)
    "$PASSK" report --results "$1" --figures "$1.figures" --quiet >>"$LOG" 2>&1 &&
        "$PASSK" verify --results "$1" --figures "$1.figures" >>"$LOG" 2>&1
}
seconds_between() { # lo hi: a random delay in [lo, hi) seconds
    awk -v r="$RANDOM" -v lo="$1" -v hi="$2" 'BEGIN { printf "%.3f", lo + (hi - lo) * r / 32768 }'
}
ms() { date +%s%N | cut -c1-13; }

say "fault: passk $PASSK, seed $SEED, work folder $W"

# The reference: one uninterrupted run, then the report.
REF=$W/ref
t0=$(ms)
run "$REF/results" "$REF/cache" || { say "fault: the reference run failed (see $LOG)"; exit 1; }
t1=$(ms)
"$PASSK" report --results "$REF/results" --figures "$REF/figures" --quiet >>"$LOG" 2>&1 ||
    { say "fault: the reference report failed (see $LOG)"; exit 1; }
t2=$(ms)
RUN_S=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1000 }')
REPORT_S=$(awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.3f", (b - a) / 1000 }')
say "fault: reference run ${RUN_S} s, report ${REPORT_S} s"
"$PASSK" verify --results "$REF/results" --figures "$REF/figures" >>"$LOG" 2>&1 ||
    { say "fault: the reference does not verify (see $LOG)"; exit 1; }
normalized "$REF/results" "$W/ref-normalized"

# 1. kill -9 during run, then rerun.
say "kill -9 during run ($KILLS trials, delays in [0, ${RUN_S}) s):"
for i in $(seq 1 "$KILLS"); do
    T=$W/kill-$i
    delay=$(seconds_between 0 "$RUN_S")
    "$PASSK" run "${EXPS[@]}" --results "$T/results" --cache "$T/cache" --quiet >>"$LOG" 2>&1 &
    pid=$!
    sleep "$delay"
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    why=0
    if ! run "$T/results" "$T/cache"; then
        why="the rerun failed"
    elif ! same_results "$T/results"; then
        why="results differ: $(head -c 300 "$W/diff")"
    elif ! same "$T/cache" "$REF/cache"; then
        why="cache differs: $(head -c 300 "$W/diff")"
    elif ! consistent "$T/results"; then
        why="the results do not verify"
    fi
    result "run killed at ${delay} s" "$why"
done

# 2. kill -9 during report, then rerun it.
say "kill -9 during report ($REPORT_KILLS trials):"
for i in $(seq 1 "$REPORT_KILLS"); do
    T=$W/report-$i
    mkdir -p "$T"
    cp -a "$REF/results" "$T/results"
    delay=$(seconds_between 0 "$REPORT_S")
    "$PASSK" report --results "$T/results" --figures "$T/figures" --quiet >>"$LOG" 2>&1 &
    pid=$!
    sleep "$delay"
    kill -9 "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    why=0
    if ! "$PASSK" report --results "$T/results" --figures "$T/figures" --quiet >>"$LOG" 2>&1; then
        why="the rerun failed"
    elif ! same "$T/figures" "$REF/figures"; then
        why="figures differ: $(head -c 300 "$W/diff")"
    elif [ "$(ls -A "$T" | tr '\n' ' ')" != "figures results " ]; then
        why="leftovers beside the figures: $(ls -A "$T" | tr '\n' ' ')"
    fi
    result "report killed at ${delay} s" "$why"
done

# 3. The tamper cases, on the first tiny-smoke cell.
CELL=$(ls "$REF/results/tiny-smoke" | head -1)
tamper() { # case name, cell dir
    local d=$2
    case $1 in
    "edited eval.csv") sed -i '2s/[0-9]$/7/' "$d/eval.csv" ;;
    "deleted train_log.csv") rm "$d/train_log.csv" ;;
    "truncated summary.json") truncate -s 10 "$d/summary.json" ;;
    "cell.json config edited") sed -i '0,/"seed": [0-9]*/s//"seed": 99/' "$d/cell.json" ;;
    "only cell.json") find "$d" -mindepth 1 -not -name cell.json -delete ;;
    esac
}
say "tamper cases (cell tiny-smoke/$CELL):"
for c in "edited eval.csv" "deleted train_log.csv" "truncated summary.json" \
    "cell.json config edited" "only cell.json"; do
    T=$W/tamper-${c// /-}
    cp -a "$REF" "$T"
    tamper "$c" "$T/results/tiny-smoke/$CELL"
    cp -a "$T/results" "$T/tampered"
    why=0
    if "$PASSK" verify --results "$T/results" --figures "$T/figures" >"$T/verify" 2>&1 ||
        ! grep -q "$CELL" "$T/verify"; then
        why="verify did not name the tampered cell"
    elif run "$T/results" "$T/cache" --on-corrupt stop; then
        why="run --on-corrupt stop succeeded"
    elif ! same "$T/results" "$T/tampered"; then
        why="run --on-corrupt stop changed the results"
    elif ! "$PASSK" run "${EXPS[@]}" --results "$T/results" --cache "$T/cache" >"$T/run" 2>&1; then
        why="the rerun failed"
    elif ! grep -q "CORRUPT" "$T/run"; then
        why="the rerun did not report the cell"
    elif ! same_results "$T/results"; then
        why="results differ after the rerun: $(head -c 300 "$W/diff")"
    elif ! same "$T/results/tiny-smoke/.quarantine/$CELL-1" "$T/tampered/tiny-smoke/$CELL"; then
        why="the quarantined copy is not the tampered cell"
    elif ! "$PASSK" verify --results "$T/results" --figures "$T/figures" >>"$LOG" 2>&1; then
        why="verify fails after the rerun"
    fi
    result "tamper: $c" "$why"
done

# 4. A corrupted warm start in the cache.
say "corrupted cache:"
T=$W/cache
cp -a "$REF" "$T"
WS=$(ls "$T/cache"/sft-*.safetensors | head -1)
size=$(stat -c %s "$WS")
printf '\x5a\xa5\x5a\xa5\x5a\xa5\x5a\xa5' | dd of="$WS" bs=1 seek=$((size / 2)) conv=notrunc status=none
rm -rf "$T/results/tiny-smoke"
why=0
if run "$T/results" "$T/cache" --strict; then
    why="run --strict accepted it"
elif ! "$PASSK" run "${EXPS[@]}" --results "$T/results" --cache "$T/cache" --quiet >"$T/run" 2>&1; then
    why="the run without --strict failed"
elif ! grep -q "integrity" "$T/run"; then
    why="no warning"
elif ! same_results "$T/results"; then
    why="results differ: $(head -c 300 "$W/diff")"
elif ! cmp -s "$WS" "$REF/cache/$(basename "$WS")"; then
    why="the retrained warm start differs from the original"
elif ! consistent "$T/results"; then
    why="the results do not verify"
fi
result "warm start with overwritten bytes: --strict fails, retrained otherwise" "$why"

# 5. Two concurrent runs on one results folder and one cache.
say "concurrent runs:"
for i in 1 2 3; do
    T=$W/concurrent-$i
    "$PASSK" run "${EXPS[@]}" --results "$T/results" --cache "$T/cache" --quiet >>"$LOG" 2>&1 &
    a=$!
    "$PASSK" run "${EXPS[@]}" --results "$T/results" --cache "$T/cache" --quiet >>"$LOG" 2>&1 &
    b=$!
    wait "$a"
    ra=$?
    wait "$b"
    rb=$?
    why=0
    if { [ "$ra" != 0 ] && [ "$ra" != 3 ]; } || { [ "$rb" != 0 ] && [ "$rb" != 3 ]; }; then
        why="exit statuses $ra and $rb (0 or 3 expected)"
    elif ! run "$T/results" "$T/cache"; then
        why="the third run failed"
    elif ! same_results "$T/results"; then
        why="results differ: $(head -c 300 "$W/diff")"
    elif ! consistent "$T/results"; then
        why="the results do not verify"
    fi
    result "two runs at once (exit $ra, $rb)" "$why"
done

# 6. Disk full.
say "disk full:"
T=$W/full
mkdir -p "$T"
if mount -t tmpfs -o size=256k tmpfs "$T" 2>"$W/mount"; then
    why=0
    if "$PASSK" run "$ROOT/experiments/theory.toml" --results "$T/results" --cache "$T/cache" \
        --quiet >>"$LOG" 2>&1; then
        why="the run succeeded on a full disk"
    elif "$PASSK" list "$ROOT/experiments/theory.toml" --results "$T/results" | grep -q corrupt; then
        why="a cell in place fails its check"
    fi
    umount "$T"
    result "run on a 256 KiB tmpfs fails cleanly" "$why"
else
    say "  skip  disk full: cannot mount a tmpfs here ($(head -c 200 "$W/mount"))"
fi

elapsed=$(($(date +%s) - started))
say "fault: $tried cases tried, $passed passed, ${#failed[@]} failed in ${elapsed} s (seed $SEED)"
if [ ${#failed[@]} -gt 0 ]; then
    say "fault: FAILED: ${failed[*]}; work folder kept: $W (log: $LOG)"
    exit 1
fi
rm -rf "$W"
