#!/usr/bin/env bash
# bench/NOTES.md section 9: a train step beside busy co-runners (single-thread spin loops, as
# other users' jobs on a shared server), with a fixed thread per core (LibTorch's own default,
# and mmkd's before train.threads: 0 followed the free cores) and with the automatic count.
# Every figure is a median step time of `mmkd bench`; ratios are to the 2-thread step alone,
# measured in the same run. Run it on an otherwise idle machine.
#
# Usage: bench/co_runner.sh OUTDIR [BUILD]   (default build)
#   MMKD_BENCH_MODEL (student:5), MMKD_BENCH_SHAPE (small), MMKD_BENCH_BATCH (64),
#   MMKD_BENCH_REPEATS (10)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: bench/co_runner.sh OUTDIR [BUILD]}
build=${2:-build}
model=${MMKD_BENCH_MODEL:-student:5}
shape=${MMKD_BENCH_SHAPE:-small}
batch=${MMKD_BENCH_BATCH:-64}
repeats=${MMKD_BENCH_REPEATS:-10}
mkdir -p "$out"

spinners=()
start_spinners() {
  for _ in $(seq 1 "$1"); do
    sh -c 'while :; do :; done' &
    spinners+=($!)
  done
  sleep 1  # let the scheduler see them before the budget samples
}
stop_spinners() {
  for p in "${spinners[@]}"; do kill "$p" 2>/dev/null || true; done
  wait "${spinners[@]}" 2>/dev/null || true
  spinners=()
}
trap stop_spinners EXIT

step_ms() {  # threads, case name
  "$build/mmkd" bench --model "$model" --shape "$shape" --batch "$batch" --threads "$1" \
    --repeats "$repeats" --no-inference --no-ceilings --json "$out/$2.json" > "$out/$2.txt" 2>&1
  python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["train"]["step"]["median_ms"])' \
    "$out/$2.json"
}

echo "load before: $(cut -d' ' -f1-3 /proc/loadavg)" | tee "$out/summary.txt"
declare -A ms
for busy in 0 1 2; do
  start_spinners "$busy"
  for threads in 2 0; do
    name="busy${busy}_threads${threads}"
    ms[$name]=$(step_ms "$threads" "$name")
  done
  stop_spinners
done
alone=${ms[busy0_threads2]}
{
  echo "model $model, shape $shape, batch $batch, $(nproc) cores; median train step (ms) and ratio"
  echo "to the 2-thread step alone (${alone} ms)"
  echo "| co-runners | threads 2 (fixed) | threads 0 (auto) |"
  echo "|---|---|---|"
  for busy in 0 1 2; do
    a=${ms[busy${busy}_threads2]}
    b=${ms[busy${busy}_threads0]}
    python3 -c "import sys; a,b,r=map(float,sys.argv[1:]); print(f'| $busy | {a:.0f} ({a/r:.2f}x) | {b:.0f} ({b/r:.2f}x) |')" "$a" "$b" "$alone"
  done
  for busy in 0 1 2; do
    python3 -c 'import json,sys; print("auto with", sys.argv[2], "co-runner(s):", json.load(open(sys.argv[1]))["threads"], "thread(s)")' \
      "$out/busy${busy}_threads0.json" "$busy"
  done
} | tee -a "$out/summary.txt"
