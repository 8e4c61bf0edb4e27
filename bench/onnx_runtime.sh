#!/usr/bin/env bash
# bench/NOTES.md section 10: student (5) at the mosei shape (500 video steps), batch 1 and 64, 1 and
# 2 threads, mmkd (`mmkd latency`) against ONNX Runtime on the same weights (`mmkd export`), in
# one run, alternating (mmkd, ORT, mmkd, ORT) so each ratio is taken under the same load.
#
# Usage: bench/onnx_runtime.sh OUTDIR [BUILD]   (default build; MMKD_BENCH_ROUNDS, default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: bench/onnx_runtime.sh OUTDIR [BUILD]}
build=${2:-build}
rounds=${MMKD_BENCH_ROUNDS:-2}
py=${MMKD_PYTHON:-.venv/bin/python}
mkdir -p "$out"

# A student 5 checkpoint at the mosei shape: one short epoch on a few synthetic samples (the
# weights' values do not change the latency).
if [ ! -f "$out/student/best.pt" ]; then
  "$build/mmkd" train --config configs/student_5.yaml --run "$out/student" --threads 2 \
    --set data.preset=mosei --set data.synth.n_train=32 --set data.synth.n_valid=8 \
    --set data.synth.n_test=8 --set train.epochs=1 --set train.progress=false > "$out/train.log"
fi
"$build/mmkd" export --checkpoint "$out/student" --out "$out/student5.onnx"

echo "load: $(cut -d' ' -f1-3 /proc/loadavg)"
for r in $(seq 1 "$rounds"); do
  for t in 1 2; do
    echo "== round $r, $t thread(s)"
    "$build/mmkd" latency "$out/student" --threads "$t" 2>/dev/null | sed 's/^/mmkd: /'
    "$py" bench/onnx_latency.py "$out/student5.onnx" --threads "$t" | sed 's/^/ort:  /'
  done
done
