"""Compares two runs of experiments/tiny-smoke.toml (CPU against CUDA) for scripts/gpu-check.sh.

usage: python3 compare_tiny.py RESULTS_A RESULTS_B CACHE_A CACHE_B

Tolerances (exit status 1 when one is exceeded):
- SFT losses (the warm starts' sft*.csv, no sampling involved): relative 1e-3;
- held-out pass@k after SFT (eval.csv, step 0): absolute 0.1, since a float-rounding difference
  can flip a sampled token where a uniform draw falls on a boundary;
- every loss, pass@k and RL-log value finite.
Later RL steps depend on the samples and are only reported (largest absolute difference).
"""

import csv
import math
import os
import sys

SFT_REL = 1e-3
PASS_ABS = 0.1


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def numbers(row, skip=()):
    out = {}
    for k, v in row.items():
        if k in skip or v in ("", None):
            continue
        try:
            out[k] = float(v)
        except ValueError:
            pass
    return out


def main(a, b, cache_a, cache_b):
    problems = []
    report = []
    sft = sorted(f for f in os.listdir(cache_a) if f.startswith("sft") and f.endswith(".csv"))
    if not sft:
        problems.append(f"no SFT loss files in {cache_a}")
    worst = 0.0
    for name in sft:
        other = os.path.join(cache_b, name)
        if not os.path.exists(other):
            problems.append(f"{name} is missing from {cache_b}")
            continue
        ra, rb = rows(os.path.join(cache_a, name)), rows(other)
        if len(ra) != len(rb):
            problems.append(f"{name}: {len(ra)} against {len(rb)} rows")
            continue
        for x, y in zip(ra, rb):
            la, lb = float(x["loss"]), float(y["loss"])
            if not (math.isfinite(la) and math.isfinite(lb)):
                problems.append(f"{name}: a non-finite loss ({la}, {lb})")
                continue
            rel = abs(la - lb) / max(abs(la), 1e-12)
            worst = max(worst, rel)
    report.append(f"SFT losses: largest relative difference {worst:.2e} (tolerance {SFT_REL:g})")
    if worst > SFT_REL:
        problems.append(f"SFT losses differ by {worst:.2e} relative (> {SFT_REL:g})")

    exp_a = os.path.join(a, "tiny-smoke")
    exp_b = os.path.join(b, "tiny-smoke")
    cells_a = sorted(d for d in os.listdir(exp_a) if os.path.isdir(os.path.join(exp_a, d)) and not d.startswith("."))
    cells_b = sorted(d for d in os.listdir(exp_b) if os.path.isdir(os.path.join(exp_b, d)) and not d.startswith("."))
    if cells_a != cells_b or not cells_a:
        problems.append(f"the two runs hold different cells: {cells_a} against {cells_b}")
    worst_warm, worst_later, worst_log = 0.0, 0.0, 0.0
    for cell in sorted(set(cells_a) & set(cells_b)):
        ea = rows(os.path.join(exp_a, cell, "eval.csv"))
        eb = rows(os.path.join(exp_b, cell, "eval.csv"))
        if len(ea) != len(eb):
            problems.append(f"{cell}: eval.csv has {len(ea)} against {len(eb)} rows")
            continue
        for x, y in zip(ea, eb):
            pa, pb = float(x["pass_at_k"]), float(y["pass_at_k"])
            if not (math.isfinite(pa) and math.isfinite(pb)):
                problems.append(f"{cell}: non-finite pass@k")
                continue
            d = abs(pa - pb)
            if x["step"] == "0":
                worst_warm = max(worst_warm, d)
            else:
                worst_later = max(worst_later, d)
        la = rows(os.path.join(exp_a, cell, "train_log.csv"))
        lb = rows(os.path.join(exp_b, cell, "train_log.csv"))
        for x, y in zip(la, lb):
            na, nb = numbers(x, skip=("seconds",)), numbers(y, skip=("seconds",))
            for k, v in na.items():
                if not math.isfinite(v) or not math.isfinite(nb.get(k, 0.0)):
                    problems.append(f"{cell}: non-finite {k} in train_log.csv")
                elif k in nb:
                    worst_log = max(worst_log, abs(v - nb[k]))
    report.append(f"held-out pass@k after SFT: largest absolute difference {worst_warm:.3f} (tolerance {PASS_ABS:g})")
    report.append(f"held-out pass@k after RL: largest absolute difference {worst_later:.3f} (reported only)")
    report.append(f"RL train log values: largest absolute difference {worst_log:.3g} (reported only)")
    if worst_warm > PASS_ABS:
        problems.append(f"pass@k after SFT differs by {worst_warm:.3f} (> {PASS_ABS:g})")
    print("\n".join(report))
    for p in problems:
        print("PROBLEM:", p)
    return 1 if problems else 0


if __name__ == "__main__":
    if len(sys.argv) != 5:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    sys.exit(main(*sys.argv[1:]))
