#!/usr/bin/env bash
# `make bench`: runs the benchmarks of a release build and prints their results.
#   cron_bench  Schedule::Next() medians (Google Benchmark, 5 repetitions)
#   operator_core_bench  the operator in one process with the API and Kafka in
#               memory: list time, start -> every task scheduled, RSS per task of
#               a standby and a leader, peak RSS (at 10k and 100k; fresh objects and
#               objects with status as after a restart)
#   fire_bench  dispatcher fire lag / throughput / restore against a real Kafka
#               broker, side by side with raw librdkafka (local environment started
#               in .cronlane/bench and stopped afterwards)
# FIRE_BENCH_TASKS (default 1000,10000,100000) picks the task counts.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build-release}
out=$dir/bench-results
mkdir -p "$out"

echo "== cron_bench (medians of 5 repetitions)"
"$dir/bench/cron_bench" --benchmark_repetitions=5 --benchmark_report_aggregates_only=true \
  --benchmark_out="$out/cron_bench.json" --benchmark_out_format=json 2>/dev/null | grep -E '_median|^Benchmark|^---'

echo "== operator_core_bench (the operator alone: API and Kafka in memory)"
for n in ${CORE_BENCH_TASKS:-10000 100000}; do
  for fresh in --fresh ""; do
    # shellcheck disable=SC2086
    "$dir/bench/operator_core_bench" --tasks "$n" --seconds 20 $fresh
  done
done | tee "$out/operator_core_bench.txt"

echo "== fire_bench (real Kafka)"
export CRONLANE_STATE_DIR=$PWD/.cronlane/bench
# The figures in docs/benchmarks.md were measured without a node (no kubelet, no
# kube-controller-manager caching every object): keep them comparable.
export CRONLANE_WITH_NODE=${CRONLANE_WITH_NODE:-0}
trap 'tests/env/down.sh >/dev/null 2>&1 || true' EXIT
tests/env/up.sh
# shellcheck disable=SC1091
. "$CRONLANE_STATE_DIR/env"
"$dir/bench/fire_bench" --bootstrap "$KAFKA_BOOTSTRAP" --tasks "${FIRE_BENCH_TASKS:-1000,10000,100000}" --bursts 3 \
  2> >(grep -v '^%' >&2) | tee "$out/fire_bench.txt"
echo "== through the operator (ScheduledTask CRs on the real apiserver)"
hack/bench-operator.sh "$dir" ${OPERATOR_BENCH_TASKS:-1000 5000} | tee "$out/operator_bench.txt"
echo "results in $out/"
