#!/usr/bin/env bash
# The prepared GPU check of passk's CUDA build. Runs from a bundle made by
# `cargo xtask gpu-bundle` (bin/passk, tests/, lm-shape/, tiny-smoke.toml, lm-gpu-*.toml) on a
# machine with an NVIDIA GPU, the NVIDIA driver (580+, CUDA 13) and CUDA 13 libraries: no Rust
# and no network needed. About 5 minutes on an H200.
#
#   bash gpu-check.sh            the check, on CUDA
#   bash gpu-check.sh --cpu      the same steps on the CPU (device tests only listed, the LM pair
#                                only validated): to test this script where there is no GPU
#
# Steps, each printed with its elapsed time; everything is logged to $OUT/gpu-check.log
# (OUT defaults to ./out beside this script):
#   1. libraries: finds libcuda.so.1 (driver) and the CUDA 13 libraries libcublas.so.13,
#      libcublasLt.so.13, libcurand.so.10, libcudart.so.13 in $PASSK_GPU_LIBS
#      (colon-separated folders), Python's site-packages/nvidia/*/lib (PyTorch's CUDA wheels:
#      nvidia-cublas, nvidia-curand, nvidia-cuda-runtime for CUDA 13),
#      /usr/local/cuda*/lib64 and the system folders, and sets LD_LIBRARY_PATH;
#   2. the device tests of passk-policy (the #[ignore = "needs a CUDA device"] ones);
#   3. the tiny-smoke experiment (4 tiny cells) on the CPU and on CUDA, compared: SFT losses
#      within a relative 1e-3, held-out pass@k after SFT within 0.1 (sampling may flip a few
#      tokens where float rounding differs), all values finite;
#   4. a SmolLM2-135M-shaped model with random weights (seed 0) made here from the bundled shape
#      and tokenizer; `passk lm-bench` prints sampling tokens/s and the log-prob
#      forward+backward time in f32 and bf16 for one lm.toml RL step (16 prompts x 16 samples x
#      24 tokens);
#   5. lm-gpu-smoke (experiments/lm-smoke.toml on CUDA) and lm-gpu-pair (one objective pair, one
#      seed, 10 RL steps of lm.toml) on that model; prints each cell's RL step times.
# Exit status 0 only when every step passed; the last line says PASS or FAIL.
set -uo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
MODE=cuda
case "${1:-}" in
  --cpu) MODE=cpu ;;
  "") ;;
  *) echo "usage: bash gpu-check.sh [--cpu]" >&2; exit 2 ;;
esac
OUT=${OUT:-$HERE/out}
mkdir -p "$OUT"
LOG=$OUT/gpu-check.log
: > "$LOG"
exec > >(tee -a "$LOG") 2>&1
PASSK=$HERE/bin/passk
START=$SECONDS
# The bundle ships the binaries gzipped (their embedded CUDA kernels make them ~65 MB each).
for gz in "$HERE"/bin/*.gz "$HERE"/tests/*.gz; do
  [ -e "$gz" ] || continue
  [ -e "${gz%.gz}" ] || { gzip -dc "$gz" > "${gz%.gz}.part" && chmod +x "${gz%.gz}.part" && mv "${gz%.gz}.part" "${gz%.gz}"; }
done
FAILED=()
step() { echo; echo "== [$((SECONDS - START)) s] $*"; }
fail() { echo "FAILED: $*"; FAILED+=("$*"); }

step "1. libraries (mode $MODE)"
# What bin/passk links (readelf -d), plus libcublasLt.so.13, which libcublas.so.13 loads.
NEEDED="libcuda.so.1 libcublas.so.13 libcublasLt.so.13 libcurand.so.10 libcudart.so.13"
candidates() {
  if [ -n "${PASSK_GPU_LIBS:-}" ]; then tr ':' '\n' <<< "$PASSK_GPU_LIBS"; fi
  for py in python3 python; do
    command -v "$py" > /dev/null || continue
    "$py" - << 'EOF' 2> /dev/null
import glob, os, site, sys
roots = set(site.getsitepackages() + [site.getusersitepackages()] + sys.path)
for r in sorted(p for p in roots if p and os.path.isdir(p)):
    for d in sorted(glob.glob(os.path.join(r, "nvidia", "*", "lib"))):
        print(d)
EOF
  done
  ls -d /usr/local/cuda*/lib64 /usr/local/cuda*/targets/x86_64-linux/lib 2> /dev/null
  echo /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/lib/wsl/lib | tr ' ' '\n'
}
LIBDIRS=()
for lib in $NEEDED; do
  found=""
  while read -r d; do
    if [ -e "$d/$lib" ]; then found=$d; break; fi
  done < <(candidates)
  if [ -z "$found" ]; then
    fail "$lib not found: the CUDA build needs CUDA 13 libraries (pip wheels nvidia-cublas, nvidia-curand, nvidia-cuda-runtime 13.x, as PyTorch's cu130 wheels install them, or a CUDA 13 toolkit) and the NVIDIA driver's libcuda.so.1; put their folders in PASSK_GPU_LIBS"
  else
    echo "$lib: $found"
    case " ${LIBDIRS[*]} " in *" $found "*) ;; *) LIBDIRS+=("$found") ;; esac
  fi
done
export LD_LIBRARY_PATH="$(IFS=:; echo "${LIBDIRS[*]}")${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
command -v nvidia-smi > /dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
if ! "$PASSK" --version; then
  fail "bin/passk does not start (missing libraries above?)"
  echo "FAIL: ${FAILED[*]}"
  exit 1
fi
cat "$HERE/BUILD.txt" 2> /dev/null

step "2. device tests (passk-policy, --ignored)"
for t in "$HERE"/tests/*; do
  case "$t" in *.gz | *.part) continue ;; esac
  [ -x "$t" ] || continue
  # Only the device tests: the crate's other ignored test is a helper other tests start.
  if [ "$MODE" = cuda ]; then
    "$t" --ignored --test-threads 1 cuda_tests:: || fail "device tests in $(basename "$t")"
  else
    "$t" --ignored --list cuda_tests:: || fail "listing $(basename "$t")"
  fi
done

step "3. tiny-smoke on the CPU and on $MODE, compared"
rm -rf "$OUT/tiny-a" "$OUT/tiny-b" "$OUT/cache-a" "$OUT/cache-b" "$OUT/lm-results"
for run in "a cpu" "b $MODE"; do
  set -- $run
  t0=$SECONDS
  "$PASSK" run "$HERE/tiny-smoke.toml" --device "$2" --results "$OUT/tiny-$1" \
    --cache "$OUT/cache-$1" --quiet || fail "tiny-smoke on $2"
  echo "tiny-smoke on $2: $((SECONDS - t0)) s"
done
python3 "$HERE/compare_tiny.py" "$OUT/tiny-a" "$OUT/tiny-b" "$OUT/cache-a" "$OUT/cache-b" \
  || fail "tiny-smoke: CPU and $MODE differ beyond the tolerance"

step "4. random SmolLM2-shaped model and lm-bench"
LM=$OUT/lm-random
mkdir -p "$LM"
cp "$HERE/lm-shape/config.json" "$HERE/lm-shape/tokenizer.json" "$LM/"
[ -f "$LM/model.safetensors" ] || "$PASSK" lm-random "$LM" 0 || fail "lm-random"
export PASSK_GPU_LM_DIR=$LM
if [ "$MODE" = cuda ]; then
  "$PASSK" lm-bench "$LM" --device cuda --dtype f32,bf16 || fail "lm-bench on cuda"
else
  "$PASSK" lm-bench "$LM" --device cpu --dtype f32,bf16 --shape 2,2,4 --reps 1 || fail "lm-bench on cpu"
fi

step "5. LM cells on $MODE"
for exp in lm-gpu-smoke lm-gpu-pair; do
  file=$HERE/$exp.toml
  if [ "$MODE" = cpu ]; then
    sed 's/^device = "cuda"/device = "cpu"/' "$file" > "$OUT/$exp.toml"
    file=$OUT/$exp.toml
  fi
  if [ "$MODE" = cpu ] && [ "$exp" = lm-gpu-pair ]; then
    "$PASSK" list "$file" --results "$OUT/lm-results" || fail "listing $exp"
    continue
  fi
  t0=$SECONDS
  "$PASSK" run "$file" --results "$OUT/lm-results" || fail "$exp"
  echo "$exp: $((SECONDS - t0)) s"
done
python3 - "$OUT/lm-results" << 'EOF' || fail "reading the LM cells' timings"
import csv, glob, json, os, statistics, sys
for summary in sorted(glob.glob(os.path.join(sys.argv[1], "*", "*", "summary.json"))):
    cell = os.path.dirname(summary)
    s = json.load(open(summary))
    log = list(csv.DictReader(open(os.path.join(cell, "train_log.csv"))))
    secs = [float(r["seconds"]) for r in log]
    print(f"{os.path.relpath(cell, sys.argv[1])}: objective {s['objective']}, {len(secs)} RL steps, "
          f"median step {statistics.median(secs):.2f} s, rl {s['rl_seconds']:.1f} s, "
          f"eval {s['eval_seconds']:.1f} s, probe {s['probe_seconds']:.1f} s, wall {s['wall_seconds']:.1f} s")
EOF

echo
echo "== [$((SECONDS - START)) s] done; log in $LOG"
if [ ${#FAILED[@]} -eq 0 ]; then
  echo "PASS"
else
  printf 'FAIL: %s\n' "${FAILED[@]}"
  exit 1
fi
