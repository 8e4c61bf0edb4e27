#!/usr/bin/env bash
# bench/NOTES.md section 15: CRD's scores read straight from the memory banks (the default,
# crd.fused_scores=true) against gathering every anchor's K+1 bank entries and multiplying
# (crd.fused_scores=false), one train step of student (5) at `small`, batch 64, with banks sized
# for the medium preset's 8000 training samples. Gathered and fused alternate, same weights.
#
# Usage: bench/crd_scores.sh OUTDIR [BUILD]
#   MMKD_BENCH_METHODS (default "crd_attention_map crd_post_attention crd_final crd_penultimate"),
#   MMKD_BENCH_THREADS (default 1: the study's threads per run), MMKD_BENCH_SAMPLES (default 8000)
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:?usage: bench/crd_scores.sh OUTDIR [BUILD]}
build=${2:-build}
methods=${MMKD_BENCH_METHODS:-"crd_attention_map crd_post_attention crd_final crd_penultimate"}
threads=${MMKD_BENCH_THREADS:-1}
samples=${MMKD_BENCH_SAMPLES:-8000}
mkdir -p "$out"
echo "load: $(cut -d' ' -f1-3 /proc/loadavg); threads $threads; training samples $samples"
for method in $methods; do
  for fused in false true; do
    "$build/mmkd" bench --model student:5 --shape small --batch 64 --threads "$threads" \
      --kd "$method" --kd-samples "$samples" --kd-set "crd.fused_scores=$fused" --repeats 5 \
      --no-inference --no-ceilings --json "$out/$method-fused_$fused.json" |
      grep -E "train step|memory peak" | sed "s/^/$method fused=$fused: /"
  done
done
