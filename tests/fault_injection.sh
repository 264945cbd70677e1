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
#              check, and succeeds and verifies once the tmpfs is grown; skipped, with the
#              reason, where a tmpfs cannot be mounted
#   integrity  a cell changed together with its record, and an extra file, are refused by
#              `run` (MANIFEST untouched, folders passk did not make left alone); `report`
#              refuses a corrupt cell; a damaged stage-1 SFT model fails `--strict` by name and
#              is otherwise retrained; a kill (strace injection) at the MANIFEST rename is
#              recovered by the next run; report killed while replacing an existing figure set
#   The concurrency case also counts the cells both runs computed: no cell twice.
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
CELLS=$(find "$REF/results" -mindepth 3 -maxdepth 3 -name complete.json | wc -l)

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

# 2. kill -9 during report, then rerun it: from no figures, and (after the tamper cases)
# while it replaces an existing figure set.
report_kill() { # work folder, "fresh" or "over"
    local T=$1
    mkdir -p "$T"
    cp -a "$REF/results" "$T/results"
    [ "$2" = over ] && cp -a "$REF/figures" "$T/figures"
    delay=$(seconds_between 0 "$REPORT_S")
    "$PASSK" report --results "$T/results" --figures "$T/figures" --quiet >>"$LOG" 2>&1 &
    local pid=$!
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
}
say "kill -9 during report ($REPORT_KILLS trials):"
for i in $(seq 1 "$REPORT_KILLS"); do
    report_kill "$W/report-$i" fresh
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
    "$PASSK" run "${EXPS[@]}" --results "$T/results" --cache "$T/cache" --quiet >"$T.a" 2>&1 &
    a=$!
    "$PASSK" run "${EXPS[@]}" --results "$T/results" --cache "$T/cache" --quiet >"$T.b" 2>&1 &
    b=$!
    wait "$a"
    ra=$?
    wait "$b"
    rb=$?
    cat "$T.a" "$T.b" >>"$LOG"
    # Every cell is computed once: the two runs' "ran N cells" add up to the matrix.
    ran=$(cat "$T.a" "$T.b" | sed -n -E 's/^[a-z0-9-]+: ran ([0-9]+) cells.*/\1/p' | awk '{ s += $1 } END { print s + 0 }')
    why=0
    if { [ "$ra" != 0 ] && [ "$ra" != 3 ]; } || { [ "$rb" != 0 ] && [ "$rb" != 3 ]; }; then
        why="exit statuses $ra and $rb (0 or 3 expected)"
    elif [ "${ran:-0}" -gt "$CELLS" ]; then
        why="$ran cells computed for a matrix of $CELLS: work was duplicated"
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
    elif ! mount -o remount,size=64m "$T" 2>>"$W/mount"; then
        why="cannot grow the tmpfs to rerun ($(head -c 200 "$W/mount"))"
    elif ! "$PASSK" run "$ROOT/experiments/theory.toml" --results "$T/results" --cache "$T/cache" \
        --quiet >>"$LOG" 2>&1; then
        why="the rerun after freeing space failed"
    elif ls -A "$T/results" | grep -q '\.tmp-'; then
        why="a temporary is left after the rerun"
    elif ! "$PASSK" report --results "$T/results" --figures "$T/figures" --quiet >>"$LOG" 2>&1 ||
        ! "$PASSK" verify --results "$T/results" --figures "$T/figures" >>"$LOG" 2>&1; then
        why="the rerun's results do not verify"
    fi
    umount "$T"
    result "run on a 256 KiB tmpfs fails cleanly, and succeeds once space is freed" "$why"
else
    say "  skip  disk full: cannot mount a tmpfs here ($(head -c 200 "$W/mount"))"
fi

# 7. Integrity (issue 33): nothing unverified is approved into MANIFEST or reaches a number.
say "integrity:"
T=$W/forged
cp -a "$REF" "$T"
D=$T/results/tiny-smoke/$CELL
sed -i '2s/[0-9]$/7/' "$D/eval.csv"
# A forged record: the edited file's new sha256 and size written into complete.json.
sha=$(sha256sum "$D/eval.csv" | cut -d' ' -f1)
size=$(stat -c %s "$D/eval.csv")
sed -i -E "/\"path\": \"eval.csv\"/{n;s/\"size\": [0-9]+/\"size\": $size/;n;s/\"sha256\": \"[0-9a-f]+\"/\"sha256\": \"$sha\"/}" \
    "$D/complete.json"
cp "$T/results/MANIFEST" "$T/manifest.before"
why=0
if run "$T/results" "$T/cache"; then
    why="run approved a cell changed together with its record"
elif ! cmp -s "$T/results/MANIFEST" "$T/manifest.before"; then
    why="run rewrote MANIFEST"
elif "$PASSK" verify --results "$T/results" --figures "$T/figures" >>"$LOG" 2>&1; then
    why="verify passes after the refused run"
elif ! "$PASSK" run "${EXPS[@]}" --results "$T/results" --cache "$T/cache" --quiet \
    --accept-changes >>"$LOG" 2>&1; then
    why="--accept-changes did not approve it"
fi
result "a cell changed with its record is refused, not approved" "$why"

T=$W/extra
cp -a "$REF" "$T"
echo "not a result" >"$T/results/notes.txt"
mkdir -p "$T/results/theory/notes" && echo x >"$T/results/theory/notes/a" && echo x >"$T/results/theory/.lock-notes"
cp "$T/results/MANIFEST" "$T/manifest.before"
why=0
if "$PASSK" run "${EXPS[@]}" --results "$T/results" --cache "$T/cache" --quiet >"$T/run" 2>&1; then
    why="run approved an extra file"
elif ! grep -q "notes.txt" "$T/run"; then
    why="the refusal does not name the file"
elif ! cmp -s "$T/results/MANIFEST" "$T/manifest.before"; then
    why="run rewrote MANIFEST"
elif [ ! -f "$T/results/theory/notes/a" ] || [ ! -f "$T/results/theory/.lock-notes" ]; then
    why="run deleted a folder or file it did not make"
fi
result "an extra file is refused by name; folders passk did not make are left alone" "$why"

T=$W/report-corrupt
cp -a "$REF" "$T"
sed -i '2s/[0-9]$/7/' "$T/results/tiny-smoke/$CELL/eval.csv"
why=0
if "$PASSK" report --results "$T/results" --figures "$T/figures" --quiet >"$T/report" 2>&1; then
    why="report rendered from a corrupt cell"
elif ! grep -q "$CELL" "$T/report"; then
    why="report did not name the cell"
elif ! same "$T/figures" "$REF/figures"; then
    why="report changed the figures"
fi
result "report refuses while a cell fails its record" "$why"

T=$W/stage1
cp -a "$REF" "$T"
S1=$(ls "$T/cache"/sft1-*.safetensors | grep -v optimizer | head -1)
size=$(stat -c %s "$S1")
printf '\x5a\xa5\x5a\xa5' | dd of="$S1" bs=1 seek=$((size - 8)) conv=notrunc status=none
rm -f "$T/cache"/sft-*
rm -rf "$T/results/tiny-smoke"
why=0
if "$PASSK" run "${EXPS[@]}" --results "$T/results" --cache "$T/cache" --quiet --strict >"$T/run" 2>&1; then
    why="run --strict used a damaged stage 1"
elif ! grep -q "$(basename "$S1")" "$T/run"; then
    why="the --strict error does not name the stage-1 file"
elif ! "$PASSK" run "${EXPS[@]}" --results "$T/results" --cache "$T/cache" --quiet >"$T/run" 2>&1; then
    why="the run without --strict failed"
elif ! grep -q "stage 1" "$T/run"; then
    why="no warning about stage 1"
elif ! same_results "$T/results"; then
    why="results differ: $(head -c 300 "$W/diff")"
elif ! same "$T/cache" "$REF/cache"; then
    why="the retrained cache differs: $(head -c 300 "$W/diff")"
fi
result "a damaged stage-1 model: --strict names it, otherwise stage 1 is retrained" "$why"

# A kill at the rename that puts MANIFEST in place: the temporary is tidied by the next run,
# which approves the killed run's cells (their records verify) and leaves nothing behind.
# A fresh run renames in the same order every time: count the renames up to MANIFEST's in one
# traced run, then kill the next fresh run at that rename.
T=$W/manifest-kill
mkdir -p "$T"
why=0
strace -f -qq -o "$T.trace" -e trace=rename \
    "$PASSK" run "${EXPS[@]}" --results "$T/count/results" --cache "$T/count/cache" --quiet >>"$LOG" 2>&1
nth=$(grep -E '^[0-9]+ +rename\(' "$T.trace" | grep -n '/MANIFEST") = 0' | head -1 | cut -d: -f1)
strace -f -qq -o /dev/null -e trace=rename -e inject=rename:signal=KILL:when="${nth:-1}" \
    "$PASSK" run "${EXPS[@]}" --results "$T/results" --cache "$T/cache" --quiet >>"$LOG" 2>&1
if [ -z "$nth" ]; then
    why="the traced run renamed no MANIFEST"
elif [ -f "$T/results/MANIFEST" ]; then
    why="MANIFEST was written although the kill came at its rename"
elif ! ls -A "$T/results" | grep -q '^\.MANIFEST\.tmp-'; then
    why="the kill did not land at the MANIFEST rename (no temporary left)"
elif ! run "$T/results" "$T/cache"; then
    why="the rerun failed"
elif ls -A "$T/results" | grep -q '\.tmp-'; then
    why="a temporary is left: $(ls -A "$T/results" | grep '\.tmp-')"
elif ! same_results "$T/results"; then
    why="results differ: $(head -c 300 "$W/diff")"
elif ! consistent "$T/results"; then
    why="the results do not verify"
fi
result "run killed at the MANIFEST rename" "$why"

# Report killed while it replaces an existing figure set.
for i in 1 2 3; do
    report_kill "$W/report-over-$i" over
    result "report over an existing figure set killed at ${delay} s" "$why"
done

elapsed=$(($(date +%s) - started))
say "fault: $tried cases tried, $passed passed, ${#failed[@]} failed in ${elapsed} s (seed $SEED)"
if [ ${#failed[@]} -gt 0 ]; then
    say "fault: FAILED: ${failed[*]}; work folder kept: $W (log: $LOG)"
    exit 1
fi
rm -rf "$W"
