#!/usr/bin/env bash
# Runs the benchmarks of a build directory and prints medians of 5 repetitions.
set -euo pipefail
dir=${1:-build-release}
out=$dir/bench-results
mkdir -p "$out"
for b in "$dir"/bench/*_bench; do
  name=$(basename "$b")
  echo "== $name"
  "$b" --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \
    --benchmark_out="$out/$name.json" --benchmark_out_format=json 2>/dev/null | grep -E '_median|^Benchmark|^---' || true
done
echo "JSON results in $out/"
