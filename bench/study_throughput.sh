#!/usr/bin/env bash
# bench/NOTES.md section 14: Table-1 runs per hour before and after issue #20's throughput work.
# The same runs (a Complete teacher, the student alone, EDAM-S↓ of configuration 5) with
# LibTorch's dropout and no teacher-output cache ("before": MMKD_DROPOUT=torch,
# distill.teacher_cache_mb=0) and with the defaults ("after"), alternating mode by mode so that
# both see the same load. Distillation in both modes learns from the "after" teacher of round 1
# (so "after" runs first).
#
# Usage: bench/study_throughput.sh OUTDIR [BUILD]
#   MMKD_BENCH_PRESET (small), MMKD_BENCH_EPOCHS (8, as the study), MMKD_BENCH_ROUNDS (1),
#   MMKD_BENCH_THREADS (1, as `mmkd study --jobs 2 --threads 1`)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: bench/study_throughput.sh OUTDIR [BUILD]}
build=${2:-build}
preset=${MMKD_BENCH_PRESET:-small}
epochs=${MMKD_BENCH_EPOCHS:-8}
rounds=${MMKD_BENCH_ROUNDS:-1}
threads=${MMKD_BENCH_THREADS:-1}
mkdir -p "$out"
common=(--set data.preset="$preset" --set train.epochs="$epochs" --set train.progress=false
        --threads "$threads")
echo "load: $(cut -d' ' -f1-3 /proc/loadavg); preset $preset, $epochs epochs, threads $threads"

# Runs one command in one mode, prints its wall seconds and appends them to OUT/MODE.seconds.
timed() {
  local mode=$1 name=$2
  shift 2
  local env=()
  [ "$mode" = before ] && env=(MMKD_DROPOUT=torch)
  local start end
  start=$(date +%s.%N)
  env "${env[@]}" "$@" > "$out/$name.log" 2>&1
  end=$(date +%s.%N)
  awk -v s="$start" -v e="$end" 'BEGIN { printf "%.1f\n", e - s }' | tee -a "$out/$mode.seconds"
}

rm -f "$out/before.seconds" "$out/after.seconds"
for r in $(seq 1 "$rounds"); do
  for mode in after before; do
    rm -rf "$out/teacher-$mode-r$r" "$out/student-$mode-r$r" "$out/edam-$mode-r$r"
    echo -n "round $r $mode: teacher_complete "
    timed "$mode" "teacher-$mode-r$r" "$build/mmkd" train --config configs/teacher_complete.yaml \
      --run "$out/teacher-$mode-r$r" "${common[@]}"
    echo -n "round $r $mode: student5_alone "
    timed "$mode" "student-$mode-r$r" "$build/mmkd" train --config configs/student_5.yaml \
      --run "$out/student-$mode-r$r" "${common[@]}"
    budget=()
    [ "$mode" = before ] && budget=(--set distill.teacher_cache_mb=0)
    echo -n "round $r $mode: c5_edam_down "
    timed "$mode" "edam-$mode-r$r" "$build/mmkd" distill --config configs/table1/c5_edam_down.yaml \
      --teacher "$out/teacher-after-r1" --run "$out/edam-$mode-r$r" "${common[@]}" "${budget[@]}"
  done
done

for mode in before after; do
  awk -v m="$mode" '{ s += $1; n++ } END { printf "%s: %d runs in %.0f s, %.1f runs per hour\n", m, n, s, 3600 * n / s }' \
    "$out/$mode.seconds"
done
