#!/usr/bin/env bash
# bench/NOTES.md section 12: a distillation run with the teacher-output cache against the same
# run computing the teacher on every batch (distill.teacher_cache_mb=0), alternating, on the
# `small` preset. One teacher (the Complete teacher, trained first) serves both. Seconds per
# epoch come from log.csv (they include validation, which runs the teacher either way); the
# first epoch of a cached run also builds the cache.
#
# Usage: bench/teacher_cache.sh OUTDIR [BUILD]
#   MMKD_BENCH_ROUNDS (default 2), MMKD_BENCH_EPOCHS (default 3),
#   MMKD_BENCH_CONFIGS (default "c5_edam_down c2_crd_penultimate"), MMKD_BENCH_THREADS (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: bench/teacher_cache.sh OUTDIR [BUILD]}
build=${2:-build}
rounds=${MMKD_BENCH_ROUNDS:-2}
epochs=${MMKD_BENCH_EPOCHS:-3}
configs=${MMKD_BENCH_CONFIGS:-"c5_edam_down c2_crd_penultimate"}
threads=${MMKD_BENCH_THREADS:-2}
mkdir -p "$out"

common=(--set data.preset=small --set train.progress=false --threads "$threads")
echo "load: $(cut -d' ' -f1-3 /proc/loadavg); threads $threads; epochs $epochs"
if [ ! -f "$out/teacher/best.pt" ]; then
  rm -rf "$out/teacher"
  "$build/mmkd" train --config configs/teacher_complete.yaml --run "$out/teacher" "${common[@]}" \
    --set train.epochs=2 > "$out/teacher.log" 2>&1
fi

# seconds column of log.csv, epoch by epoch, space-separated
epoch_seconds() {
  awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == "seconds") c = i; next }
           { printf "%s%.1f", (NR > 2 ? " " : ""), $c }' "$1/log.csv"
}

for config in $configs; do
  for r in $(seq 1 "$rounds"); do
    for mode in cached per_batch; do
      run="$out/$config-$mode-r$r"
      rm -rf "$run"
      budget=()
      [ "$mode" = per_batch ] && budget=(--set distill.teacher_cache_mb=0)
      start=$(date +%s.%N)
      "$build/mmkd" distill --config "configs/table1/$config.yaml" --teacher "$out/teacher" \
        --run "$run" "${common[@]}" --set train.epochs="$epochs" "${budget[@]}" > "$run.log" 2>&1
      wall=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.1f", e - s }')
      cache=$(grep -o 'teacher cache: .*' "$run.log" || echo "teacher cache: not used")
      acc=$(python3 -c 'import json, sys; print("%.4f" % json.load(open(sys.argv[1]))["test"]["classification"]["accuracy"])' "$run/metrics.json")
      echo "$config round $r, $mode: ${wall}s in all, epochs [$(epoch_seconds "$run")] s; $cache; test acc7 $acc"
    done
  done
done
