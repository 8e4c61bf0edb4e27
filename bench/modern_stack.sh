#!/usr/bin/env bash
# The side-by-side table of bench/NOTES.md section 8: mmkd on both LibTorch stacks beside
# PyTorch 2.15 (eager and torch.compile) on the same models, shapes, batch and threads, in one
# run. Each case runs its implementations one after the other, twice (A B C D A B C D), so a
# ratio is taken under the same load.
#
# Usage: bench/modern_stack.sh OUTDIR [PIP_BUILD [DEBIAN_BUILD]]   (defaults: build, build-debian)
#   MMKD_BENCH_THREADS (2), MMKD_BENCH_ROUNDS (2), MMKD_BENCH_CASES ("mult_default small_teacher
#   small_student"), MMKD_BENCH_COMPILE (1: also time torch.compile), MMKD_BENCH_DROPOUT
#   ("hashed"; "torch hashed" also times mmkd with LibTorch's dropout, the kernel before section 13)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: bench/modern_stack.sh OUTDIR [PIP_BUILD [DEBIAN_BUILD]]}
pip_build=${2:-build}
debian_build=${3:-build-debian}
threads=${MMKD_BENCH_THREADS:-2}
rounds=${MMKD_BENCH_ROUNDS:-2}
cases=${MMKD_BENCH_CASES:-"mult_default small_teacher small_student"}
dropouts=${MMKD_BENCH_DROPOUT:-hashed}
py=${MMKD_PYTHON:-.venv/bin/python}
mkdir -p "$out"

# case -> model config, mmkd shape, python shape, batch, repeats
declare -A config=([mult_default]=configs/models/teacher_mult_default.yaml
                   [small_teacher]=configs/models/teacher_complete.yaml
                   [small_student]=configs/models/student_5.yaml)
declare -A shape=([mult_default]=mosei [small_teacher]=small [small_student]=small)
declare -A batch=([mult_default]=24 [small_teacher]=64 [small_student]=64)
declare -A repeats=([mult_default]=3 [small_teacher]=10 [small_student]=10)

for c in $cases; do
  for r in $(seq 1 "$rounds"); do
    for stack in pip debian; do
      bin=$pip_build/mmkd
      [ "$stack" = debian ] && bin=$debian_build/mmkd
      [ -x "$bin" ] || { echo "skip $stack: no $bin"; continue; }
      for dropout in $dropouts; do
        suffix=""
        [ "$dropout" = torch ] && suffix=-torchdropout
        echo "== $c round $r: mmkd ($stack, dropout $dropout)"
        "$bin" bench --model "${config[$c]}" --shape "${shape[$c]}" --batch "${batch[$c]}" \
          --threads "$threads" --repeats "${repeats[$c]}" --warmup 1 --no-ceilings \
          --inference-batches 1 --dropout "$dropout" --json "$out/$c.mmkd-$stack$suffix.r$r.json" |
          grep -E "^train|^inference" || true
      done
    done
    modes=eager
    [ "${MMKD_BENCH_COMPILE:-1}" = 1 ] && modes="eager compile"
    for mode in $modes; do
      echo "== $c round $r: PyTorch $mode"
      # torch.compile compiles again in every process: round 2 only pays it once more.
      "$py" bench/mult_torch.py --config "${config[$c]}" --shape "${shape[$c]}" \
        --batch "${batch[$c]}" --threads "$threads" --steps "${repeats[$c]}" \
        --warmup $([ "$mode" = compile ] && echo 2 || echo 1) --mode "$mode" \
        --inference-batches 1 --json "$out/$c.torch-$mode.r$r.json" 2>&1 | tail -n 3 || true
    done
  done
done

"$py" - "$out" <<'PY'
import glob, json, os, statistics, sys
out = sys.argv[1]
def load(path):
    try:
        return json.load(open(path))
    except (OSError, ValueError):
        return None
rows = {}
for path in sorted(glob.glob(os.path.join(out, "*.json"))):
    name = os.path.basename(path)[:-5]
    case, impl, _ = name.split(".")
    j = load(path)
    if j is None:
        continue
    if impl.startswith("mmkd"):
        step = j["train"]["step"]["median_ms"]
        peak = j["train"]["peak_delta_bytes"]
        lat = next((r["latency"]["median_ms"] for r in j["inference"] if r["batch"] == 1), None)
        label = "mmkd, LibTorch " + ("2.15 (pip)" if "-pip" in impl else "1.13 (Debian)")
        if impl.endswith("-torchdropout"):
            label += ", LibTorch's dropout"
    else:
        mode = impl.split("-")[1]
        m = j["modes"].get(mode, {})
        if "train" not in m:
            rows.setdefault(case, {}).setdefault(f"PyTorch {mode}", []).append((None, None, None, m.get("error")))
            continue
        step = m["train"]["median_ms"]
        peak = m["train"].get("peak_delta_bytes")
        lat = next((r["median_ms"] for r in m.get("inference", []) if r["batch"] == 1), None)
        label = f"PyTorch {j['torch'].split('+')[0]} {mode}"
    rows.setdefault(case, {}).setdefault(label, []).append((step, peak, lat, None))
for case, impls in rows.items():
    print(f"\n### {case}\n")
    print("| implementation | train step (ms), per round | median | peak memory over start (MiB) | batch-1 inference (ms) | step vs PyTorch eager |")
    print("|---|---|---|---|---|---|")
    eager = [s for s, *_ in impls.get(next((k for k in impls if k.endswith("eager")), ""), []) if s]
    base = statistics.median(eager) if eager else None
    for label, runs in impls.items():
        steps = [s for s, *_ in runs if s]
        if not steps:
            print(f"| {label} | failed: {runs[0][3]} | | | | |")
            continue
        med = statistics.median(steps)
        peaks = [p for _, p, _, _ in runs if p is not None]
        lats = [l for _, _, l, _ in runs if l is not None]
        ratio = f"{base / med:.2f}x" if base else ""
        print(f"| {label} | {', '.join(f'{s:.0f}' for s in steps)} | {med:.0f} | "
              f"{max(peaks) / 2**20:.0f} | {statistics.median(lats):.2f} | {ratio} |" if peaks and lats else
              f"| {label} | {', '.join(f'{s:.0f}' for s in steps)} | {med:.0f} | | | {ratio} |")
PY
