#!/usr/bin/env bash
# `passk slurm` against a real Slurm (issue 15): a single-node cluster on this machine.
#
#   setup      installs Debian's slurm-wlm and munge with apt-get when missing (as root), starts
#              munged, then slurmctld and slurmd with a slurm.conf generated in a temporary
#              folder (localhost, proctrack/linuxproc, task/none, select/cons_tres, no cgroups,
#              CPUs from nproc, free ports)
#   reference  one local `passk run` + `passk report` of theory, tiny-smoke and tiny-long (a
#              copy of tiny-smoke with 3,000 RL steps, so a cell lasts seconds)
#   arrays     theory (12 cells a task) and tiny-smoke (one cell a task) submitted as job arrays
#              into one results folder; both final jobs complete; results equal the local run
#              byte for byte and the figures equal the local report
#   requeue    tiny-long as an array; one task is cancelled (scancel: SIGTERM) mid-cell after a
#              checkpoint, then requeued (requeue.sh: scontrol requeue, and the final job's
#              dependency renewed); it resumes from its checkpoint and
#              the results still equal the local run
#   overlap    tiny-long submitted twice at once (each array one task at a time, so both run
#              the same cell together): the second waits for the first, every cell runs once
#              to completion, both final jobs complete, results equal the local run
#
# Comparisons ignore only the documented run-dependent fields of tiny cells, as the fault suite
# does (tests/fault_injection.sh): wall_seconds, resumed_from_step, train_log's seconds and those
# files' hashes in complete.json and MANIFEST. Every Slurm result must also pass `passk verify`.
#
# Usage: tests/slurm_test.sh [PASSK] (`cargo xtask slurm-test` builds passk and runs this).
# Exit status: 0 all cases passed, 1 a case failed (the work folder is kept), 77 SKIPPED: Slurm
# could not be installed or started here (the reason is printed; nothing was tested).
set -u

ROOT=$(cd "$(dirname "$0")/.." && pwd)
PASSK=${1:-$ROOT/target/release/passk}
[ -x "$PASSK" ] || { echo "slurm-test: no passk binary at $PASSK (cargo build --release -p passk-cli)"; exit 2; }
export RAYON_NUM_THREADS=1 CANDLE_NUM_THREADS=1
unset CI
SKIP=77
W=$(mktemp -d "${TMPDIR:-/tmp}/passk-slurm.XXXXXX")
LOG=$W/log
started=$(date +%s)
tried=0
passed=0
failed=()
daemons=()

say() { printf '%s\n' "$*"; }
skip() {
    say ""
    say "########################################################################"
    say "slurm-test: SKIPPED, NOT PASSED: $*"
    say "########################################################################"
    cleanup
    exit $SKIP
}
cleanup() {
    for pid in "${daemons[@]}"; do kill "$pid" 2>/dev/null; done
    for pid in "${daemons[@]}"; do wait "$pid" 2>/dev/null; done
}
trap cleanup EXIT
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
elapsed() { echo $(($(date +%s) - started)); }

# ---- setup -----------------------------------------------------------------------------------
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null ||
    ! command -v sbatch >/dev/null || ! command -v munged >/dev/null; then
    [ "$(id -u)" = 0 ] || skip "slurm-wlm/munge are not installed and this is not root (apt-get install slurm-wlm munge)"
    command -v apt-get >/dev/null || skip "slurm-wlm/munge are not installed and there is no apt-get"
    say "slurm-test: installing slurm-wlm and munge with apt-get (log: $W/apt.log)"
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        slurm-wlm munge; } >"$W/apt.log" 2>&1 ||
        skip "apt-get install slurm-wlm munge failed: $(tail -3 "$W/apt.log" | tr '\n' ' ')"
fi
say "slurm-test: $(slurmctld -V), passk $PASSK, work folder $W"

if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    [ -s /etc/munge/munge.key ] || {
        mkdir -p /etc/munge && dd if=/dev/urandom of=/etc/munge/munge.key bs=1 count=1024 2>/dev/null &&
            chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key
    } || skip "no munge key and none could be made"
    mkdir -p /run/munge /var/log/munge /var/lib/munge && chown munge:munge /run/munge /var/log/munge /var/lib/munge
    if id munge >/dev/null 2>&1; then
        runuser -u munge -- munged >>"$LOG" 2>&1 || munged --force >>"$LOG" 2>&1
    else
        munged --force >>"$LOG" 2>&1
    fi
    for _ in $(seq 50); do munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break; sleep 0.1; done
    munge -n 2>/dev/null | unmunge >/dev/null 2>&1 || skip "munged could not be started (see $LOG)"
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null ||
    echo $((20000 + RANDOM % 20000)); }
HOST=$(hostname -s)
CPUS=$(nproc)
S=$W/slurm
mkdir -p "$S/state" "$S/spool"
export SLURM_CONF=$S/slurm.conf
cat >"$SLURM_CONF" <<EOF
# Generated by tests/slurm_test.sh: one node, this machine, no cgroups (containers, VMs).
ClusterName=passk-test
SlurmctldHost=$HOST(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$S/state
SlurmdSpoolDir=$S/spool
SlurmctldPidFile=$S/slurmctld.pid
SlurmdPidFile=$S/slurmd.pid
SlurmctldLogFile=$S/slurmctld.log
SlurmdLogFile=$S/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
KillWait=20
MinJobAge=3600
NodeName=$HOST NodeAddr=127.0.0.1 CPUs=$CPUS State=UNKNOWN
PartitionName=debug Nodes=$HOST Default=YES MaxTime=INFINITE State=UP
EOF
slurmctld -D -i -f "$SLURM_CONF" >>"$S/slurmctld.out" 2>&1 &
daemons+=($!)
slurmd -D -f "$SLURM_CONF" >>"$S/slurmd.out" 2>&1 &
daemons+=($!)
up=""
for _ in $(seq 120); do
    state=$(sinfo -h -n "$HOST" -o %t 2>/dev/null)
    case "$state" in idle* | mix* | alloc*) up=1; break ;; esac
    sleep 0.5
done
[ -n "$up" ] || skip "slurmctld/slurmd did not come up (node state '${state:-none}'): $(tail -3 "$S/slurmctld.log" "$S/slurmd.log" 2>/dev/null | tr '\n' ' ')"
say "slurm-test: cluster up after $(elapsed) s: node $HOST, $CPUS CPUs"

# ---- helpers ---------------------------------------------------------------------------------
EXPS=("$ROOT/experiments/theory.toml" "$ROOT/experiments/tiny-smoke.toml" "$W/tiny-long.toml")
sed -e 's/^name = "tiny-smoke"/name = "tiny-long"/' -e 's/^steps = 4$/steps = 3000/' \
    -e 's/^checkpoint_every = 2$/checkpoint_every = 100/' -e 's/^every = 2$/every = 1000/' \
    -e 's/^"mixture.cue_reliability" = .*/"mixture.cue_reliability" = [0.75]/' \
    "$ROOT/experiments/tiny-smoke.toml" >"$W/tiny-long.toml"
grep -q '^steps = 3000' "$W/tiny-long.toml" || { say "slurm-test: cannot derive tiny-long.toml"; exit 1; }

normalized() { # src dst: a copy of results src without the tiny tier's run-dependent fields
    rm -rf "$2"
    cp -a "$1" "$2"
    find "$2" -name '.*' -prune -exec rm -rf {} +
    find "$2" -path '*tiny-*/*' -name summary.json -exec sed -i -E '/"(wall_seconds|resumed_from_step)"/d' {} +
    find "$2" -path '*tiny-*/*' -name train_log.csv -exec sed -i 's/,[^,]*$//' {} +
    find "$2" -path '*tiny-*/*' -name complete.json \
        -exec sed -i -E '/"path": "(summary\.json|train_log\.csv)"/{n;N;d}' {} +
    [ -f "$2/MANIFEST" ] &&
        sed -i -E '/  tiny-[a-z]*\/[^ ]*\/(summary\.json|train_log\.csv|complete\.json)$/d' "$2/MANIFEST"
    true
}
same_as_local() { # results [experiment...]: equal to the local run (those experiments only)
    local r=$1
    shift
    normalized "$r" "$W/norm-slurm"
    rm -rf "$W/norm-local" && mkdir -p "$W/norm-local"
    for e in "$@"; do cp -a "$W/local-norm/$e" "$W/norm-local/$e"; done
    for f in MANIFEST ENVIRONMENT.json; do
        [ -f "$W/norm-slurm/$f" ] || continue
        if [ "$f" = MANIFEST ]; then
            grep -E "  ($(IFS='|'; echo "$*"))/" "$W/local-norm/MANIFEST" >"$W/norm-local/MANIFEST"
            grep -E "  ($(IFS='|'; echo "$*"))/" "$W/norm-slurm/MANIFEST" >"$W/norm-slurm/M" &&
                mv "$W/norm-slurm/M" "$W/norm-slurm/MANIFEST"
        else
            cp "$W/local-norm/$f" "$W/norm-local/$f"
        fi
    done
    diff -r "$W/norm-local" "$W/norm-slurm" >"$W/diff" 2>&1
}
job_state() { scontrol show job "$1" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | head -1 | cut -d= -f2; }
wait_jobs() { # seconds job...: until no job is pending or running; 1 on timeout
    local limit=$1
    shift
    local t0
    t0=$(date +%s)
    while [ -n "$(squeue -h -j "$(IFS=,; echo "$*")" 2>/dev/null)" ]; do
        [ $(($(date +%s) - t0)) -lt "$limit" ] || return 1
        sleep 1
    done
}
array_states() { # job: the states of its tasks, one a line
    scontrol show job "$1" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2
}
submit() { # out-folder passk-slurm-args...: prints "array final"
    local out=$1
    shift
    "$PASSK" slurm "$@" --out "$out" >>"$LOG" 2>&1 || return 1
    tail -1 "$out/jobs.txt"
}

# ---- reference -------------------------------------------------------------------------------
t0=$(date +%s)
"$PASSK" run "${EXPS[@]}" --results "$W/local/results" --cache "$W/local/cache" --quiet >>"$LOG" 2>&1 &&
    "$PASSK" report --results "$W/local/results" --figures "$W/local/figures" --quiet >>"$LOG" 2>&1 ||
    { say "slurm-test: the local reference run failed (see $LOG)"; exit 1; }
normalized "$W/local/results" "$W/local-norm"
say "slurm-test: local reference run of theory, tiny-smoke, tiny-long: $(($(date +%s) - t0)) s"

# ---- arrays: theory and tiny-smoke -------------------------------------------------------------
say "arrays: theory (12 cells a task) and tiny-smoke (one cell a task):"
A=$W/arrays
read -r a1 f1 < <(submit "$A/job-theory" "$ROOT/experiments/theory.toml" --results "$A/results" \
    --cache "$A/cache" --figures "$A/figures" --cells-per-task 12 --time 10)
read -r a2 f2 < <(submit "$A/job-smoke" "$ROOT/experiments/tiny-smoke.toml" --results "$A/results" \
    --cache "$A/cache" --figures "$A/figures" --time 10)
t0=$(date +%s)
why=0
if [ -z "${f2:-}" ] || [ -z "${f1:-}" ]; then
    why="passk slurm did not submit (see $LOG)"
elif ! wait_jobs 600 "$a1" "$a2" "$f1" "$f2"; then
    why="the jobs did not finish within 600 s"
elif [ "$(job_state "$f1") $(job_state "$f2")" != "COMPLETED COMPLETED" ]; then
    why="final jobs: $(job_state "$f1") $(job_state "$f2") (logs in $A/job-*/logs)"
elif array_states "$a1" | grep -qv COMPLETED || array_states "$a2" | grep -qv COMPLETED; then
    why="an array task did not complete"
elif ! same_as_local "$A/results" theory tiny-smoke; then
    why="results differ from the local run: $(head -c 400 "$W/diff")"
elif ! "$PASSK" verify --results "$A/results" --figures "$A/figures" >>"$LOG" 2>&1; then
    why="the Slurm results do not verify"
fi
result "theory: $(wc -l <"$A/job-theory/tasks.txt") tasks, tiny-smoke: $(wc -l <"$A/job-smoke/tasks.txt") tasks, both final jobs, byte-identical to the local run ($(($(date +%s) - t0)) s)" "$why"
why=0
for e in theory tiny-smoke; do
    if ! diff -r "$W/local/figures/$e" "$A/figures/$e" >"$W/diff" 2>&1; then
        why="figures/$e differ from the local report's: $(head -c 300 "$W/diff")"
    fi
done
result "the final jobs' figures of theory and tiny-smoke equal the local report's" "$why"

# ---- requeue: scancel a task mid-cell, then requeue it -----------------------------------------
say "requeue: tiny-long, one task cancelled mid-cell and requeued:"
R=$W/requeue
read -r a3 f3 < <(submit "$R/job" "$W/tiny-long.toml" --results "$R/results" --cache "$R/cache" \
    --figures "$R/figures" --time 10)
t0=$(date +%s)
why=0
victim=""
if [ -z "${f3:-}" ]; then
    why="passk slurm did not submit (see $LOG)"
else
    # Wait for task 0 to run and write its second checkpoint.
    hash0=$(cut -d' ' -f2 "$R/job/tasks.txt" | head -1)
    for _ in $(seq 600); do
        step=$(grep -o '"step": [0-9]*' "$R/results/tiny-long/.tmp-$hash0/checkpoint.json" 2>/dev/null | grep -o '[0-9]*$')
        [ "${step:-0}" -ge 200 ] && break
        sleep 0.1
    done
    if [ "${step:-0}" -lt 200 ]; then
        why="task 0 never reached its second checkpoint"
    else
        victim="${a3}_0"
        scancel "$victim"
        for _ in $(seq 300); do
            case "$(job_state "$victim")" in CANCELLED | FAILED | COMPLETED) break ;; esac
            sleep 0.1
        done
        cancelled=$(job_state "$victim")
        # scontrol requeue, and the final job's dependency renewed (requeue.sh of passk slurm).
        bash "$R/job/requeue.sh" 0 >>"$LOG" 2>&1 || why="requeue.sh 0 ($victim) failed (see $LOG)"
    fi
fi
if [ "$why" = 0 ]; then
    log0=$(ls "$R/job/logs/${a3}_0.out" 2>/dev/null)
    if [ "$cancelled" != CANCELLED ]; then
        why="task 0 was $cancelled after scancel, not CANCELLED"
    elif ! wait_jobs 600 "$a3" "$f3"; then
        why="the jobs did not finish within 600 s (final: $(job_state "$f3"))"
    elif [ "$(job_state "$f3")" != COMPLETED ]; then
        why="final job: $(job_state "$f3")"
    elif ! grep -q 'SIGTERM received' "$log0"; then
        why="task 0's log shows no SIGTERM: $(tail -c 300 "$log0")"
    elif ! grep -q 'restart 1' "$log0"; then
        why="task 0 did not run again: $(tail -c 300 "$log0")"
    elif ! grep -q '"resumed_from_step": [1-9]' "$R/results/tiny-long/$hash0/summary.json"; then
        why="the requeued task did not resume from a checkpoint"
    elif ! same_as_local "$R/results" tiny-long; then
        why="results differ from the local run: $(head -c 400 "$W/diff")"
    elif ! "$PASSK" verify --results "$R/results" --figures "$R/figures" >>"$LOG" 2>&1; then
        why="the Slurm results do not verify"
    fi
fi
resumed=$(grep -o '"resumed_from_step": [0-9]*' "$R/results/tiny-long/${hash0:-x}/summary.json" 2>/dev/null | grep -o '[0-9]*$')
result "task $victim cancelled at step ${step:-?} (SIGTERM, exit 143), requeued, resumed from step ${resumed:-?}, final job ran, byte-identical ($(($(date +%s) - t0)) s)" "$why"

# ---- overlap: the same experiment submitted twice at once ------------------------------------
say "overlap: tiny-long submitted twice at once:"
O=$W/overlap
common=(--results "$O/results" --cache "$O/cache" --figures "$O/figures" --max-concurrent 1 --time 10)
read -r a4 f4 < <(submit "$O/job1" "$W/tiny-long.toml" "${common[@]}")
read -r a5 f5 < <(submit "$O/job2" "$W/tiny-long.toml" "${common[@]}")
t0=$(date +%s)
why=0
if [ -z "${f4:-}" ] || [ -z "${f5:-}" ]; then
    why="passk slurm did not submit (see $LOG)"
elif ! wait_jobs 600 "$a4" "$f4" "$a5" "$f5"; then
    why="the jobs did not finish within 600 s"
elif [ "$(job_state "$f4") $(job_state "$f5")" != "COMPLETED COMPLETED" ]; then
    why="final jobs: $(job_state "$f4") $(job_state "$f5")"
else
    cells=$(wc -l <"$O/job1/tasks.txt")
    ran=$(cat "$O"/job*/logs/*_*.out | grep -c 'ran 1 cells, 0 already done')
    done_before=$(cat "$O"/job*/logs/*_*.out | grep -c 'ran 0 cells, 1 already done')
    waited=$(cat "$O"/job*/logs/*_*.out | grep -c 'waiting for it')
    if [ "$ran" != "$cells" ] || [ "$done_before" != "$cells" ]; then
        why="$cells cells: $ran tasks ran one, $done_before found it done (expected $cells each)"
    elif [ "$waited" -lt 1 ]; then
        why="no task waited for the other submission's: the case did not overlap"
    elif ! same_as_local "$O/results" tiny-long; then
        why="results differ from the local run: $(head -c 400 "$W/diff")"
    elif ! "$PASSK" verify --results "$O/results" --figures "$O/figures" >>"$LOG" 2>&1; then
        why="the Slurm results do not verify"
    fi
fi
result "two submissions of ${cells:-?} cells: each cell ran once (${ran:-?}), the other task found it done (${done_before:-?}; ${waited:-?} waited for the lock), both final jobs ran, byte-identical ($(($(date +%s) - t0)) s)" "$why"

total=$(elapsed)
if [ ${#failed[@]} -eq 0 ]; then
    say "slurm-test: all $passed of $tried cases passed in $total s (Slurm $(slurmctld -V | cut -d' ' -f2), $CPUS CPUs)"
    rm -rf "$W"
    exit 0
fi
say "slurm-test: ${#failed[@]} of $tried cases FAILED in $total s: ${failed[*]}; work folder kept: $W"
exit 1
