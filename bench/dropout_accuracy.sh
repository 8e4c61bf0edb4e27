#!/usr/bin/env bash
# bench/NOTES.md section 13: does the hashed dropout train as well as LibTorch's? Student (5)
# alone at the `small` preset, 8 epochs, one thread, each seed once with each kernel
# (MMKD_DROPOUT=hashed | torch); prints every run's test acc7. The masks differ, so a seed's two
# runs are two draws of the same run distribution, not a paired measurement of one run.
#
# Usage: bench/dropout_accuracy.sh OUTDIR [BUILD]    SEEDS (default "0 1 2 3 4 5 6 7")
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: bench/dropout_accuracy.sh OUTDIR [BUILD]}
build=${2:-build}
mkdir -p "$out"
for seed in ${SEEDS:-0 1 2 3 4 5 6 7}; do
  for mode in hashed torch; do
    run="$out/s$seed-$mode"
    rm -rf "$run"
    MMKD_DROPOUT=$mode "$build/mmkd" train --config configs/student_5.yaml --run "$run" \
      --set data.preset=small --set train.epochs=8 --set train.progress=false \
      --set train.seed="$seed" --threads 1 > "$run.log" 2>&1
    python3 -c 'import json, sys; m = json.load(open(sys.argv[1] + "/metrics.json")); print(sys.argv[1], "test acc7 %.4f" % m["test"]["classification"]["accuracy"])' "$run"
  done
done
