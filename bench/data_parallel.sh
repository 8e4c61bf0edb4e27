#!/usr/bin/env bash
# bench/NOTES.md section 11: training throughput of 1 rank x 2 threads against 2 ranks x 1 thread
# (`mmkd train --nproc 2`, c10d/Gloo over loopback) on this machine, alternating, and the
# all-reduce cost per step the trainer reports. Samples/s come from log.csv's seconds of the
# second epoch (the first warms up), which include a validation pass over n_valid samples.
#
# Usage: bench/data_parallel.sh OUTDIR [BUILD]   (default build; MMKD_BENCH_ROUNDS, default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: bench/data_parallel.sh OUTDIR [BUILD]}
build=${2:-build}
rounds=${MMKD_BENCH_ROUNDS:-2}
mkdir -p "$out"

# case -> data and model overrides (the Complete teacher; MulT's default model at 50/500/500)
declare -A sets=(
  [small]="--set data.preset=small --set data.synth.n_train=1024 --set data.synth.n_valid=16
           --set data.synth.n_test=16 --set train.batch_size=64"
  [mult_default]="--set data.preset=mosei --set data.synth.n_train=96 --set data.synth.n_valid=8
           --set data.synth.n_test=8 --set train.batch_size=24 --set model.d_model=30
           --set model.layers=5 --set model.heads=5 --set model.conv_kernel=1
           --set model.output=regression")
declare -A samples=([small]=1024 [mult_default]=96)

echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
for c in small mult_default; do
  for r in $(seq 1 "$rounds"); do
    for layout in "1x2" "2x1"; do
      run="$out/$c-$layout-r$r"
      rm -rf "$run"
      if [ "$layout" = 1x2 ]; then ranks=(--threads 2); else ranks=(--nproc 2 --threads 1); fi
      # shellcheck disable=SC2086
      "$build/mmkd" train --config configs/teacher_complete.yaml --run "$run" ${sets[$c]} \
        --set train.epochs=2 --set train.progress=false "${ranks[@]}" > "$run.log" 2>&1
      seconds=$(awk -F, 'NR==3 {print $9}' "$run/log.csv")
      reduce=$(grep -o 'all-reduce: .*' "$run.log" || true)
      echo "$c round $r, $layout (ranks x threads): epoch 2 ${seconds}s," \
        "$(awk -v n="${samples[$c]}" -v s="$seconds" 'BEGIN {printf "%.1f", n / s}') samples/s" \
        "${reduce:+; $reduce}"
    done
  done
done
