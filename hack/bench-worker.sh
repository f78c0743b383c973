#!/usr/bin/env bash
# `make bench-worker`: how fast one cronlane-worker runs fired tasks, side by side
# with the limits of this machine, in one run (docs/benchmarks.md "Workers"):
#   worker      cronlane-worker --exec true --results-topic, at each concurrency:
#               N fired-task CloudEvents (as the dispatcher builds them) on a
#               4-partition topic; timed from the first result to the N-th
#   spawn       the same command spawned N times by xargs -P4, with a shell
#               (sh -c true, what --exec runs) and without (argv)
#   consumer    a bare librdkafka consumer reading the N messages
# CPU per task is the process's user+system time, children included, over N.
# WORKER_BENCH_TASKS (default 5000) and WORKER_BENCH_CONCURRENCY (default "1 4 16").
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build-release}
out=$dir/bench-results
mkdir -p "$out"
tasks=${WORKER_BENCH_TASKS:-5000}
concurrencies=${WORKER_BENCH_CONCURRENCY:-1 4 16}
bench=$dir/bench/worker_bench
tick=$(getconf CLK_TCK)

export CRONLANE_STATE_DIR=$PWD/.cronlane/bench
export CRONLANE_WITH_NODE=${CRONLANE_WITH_NODE:-0}
trap 'tests/env/down.sh >/dev/null 2>&1 || true' EXIT
tests/env/up.sh >/dev/null
# shellcheck disable=SC1091
. "$CRONLANE_STATE_DIR/env"

# CPU seconds (user+system, waited-for children included) of a live process.
cpu_of() { awk -v t="$tick" '{ print ($14 + $15 + $16 + $17) / t }' "/proc/$1/stat"; }
value() { sed -nE "s/.*\\b$1=([0-9.]+).*/\\1/p" <<<"$2"; }
rows=()
row() { rows+=("$(printf '| %s | %s | %.0f | %.2f |' "$1" "$tasks" "$2" "$3")"); }

for n in $concurrencies; do
  topic=bench-worker-$n-$$
  "$bench" produce --bootstrap "$KAFKA_BOOTSTRAP" --topic "$topic" --count "$tasks" --partitions 4 >/dev/null
  "$dir/bin/cronlane-worker" --kafka-bootstrap="$KAFKA_BOOTSTRAP" --topic="$topic" --group="$topic" \
    --results-topic="$topic.results" --concurrency="$n" --exec=true --metrics-bind-address=0 \
    --health-probe-bind-address=0 --log-format=text >"$out/worker-$n.log" 2>&1 &
  pid=$!
  res=$("$bench" results --bootstrap "$KAFKA_BOOTSTRAP" --topic "$topic.results" --count "$tasks" --timeout 1800)
  cpu=$(cpu_of "$pid")
  kill -TERM "$pid"
  wait "$pid" || true
  secs=$(value seconds "$res")
  rate=$(awk -v n="$tasks" -v s="$secs" 'BEGIN { print n / s }')
  row "cronlane-worker --exec true, concurrency $n" "$rate" "$(awk -v c="$cpu" -v n="$tasks" 'BEGIN { print 1000 * c / n }')"
  echo "worker concurrency $n: $res cpu_seconds=$cpu" >&2
done

for shape in "sh -c true" "true"; do
  t0=$(date +%s.%N)
  # shellcheck disable=SC2086
  usage=$( { /usr/bin/time -f '%U %S' bash -c "seq $tasks | xargs -P4 -I{} $shape" ; } 2>&1 | tail -1)
  t1=$(date +%s.%N)
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
  cpu=$(awk '{ print $1 + $2 }' <<<"$usage")
  row "xargs -P4 $shape (spawn limit)" "$(awk -v n="$tasks" -v s="$secs" 'BEGIN { print n / s }')" \
    "$(awk -v c="$cpu" -v n="$tasks" 'BEGIN { print 1000 * c / n }')"
  echo "xargs -P4 $shape: ${secs}s cpu=${cpu}s" >&2
done

topic=bench-worker-consumer-$$
"$bench" produce --bootstrap "$KAFKA_BOOTSTRAP" --topic "$topic" --count "$tasks" --partitions 4 >/dev/null
res=$("$bench" consume --bootstrap "$KAFKA_BOOTSTRAP" --topic "$topic" --count "$tasks" --group "$topic")
row "bare librdkafka consumer (consumer limit)" \
  "$(awk -v n="$tasks" -v s="$(value seconds "$res")" 'BEGIN { print n / s }')" \
  "$(awk -v c="$(value cpu_seconds "$res")" -v n="$tasks" 'BEGIN { print 1000 * c / n }')"
echo "bare consumer: $res" >&2

{
  echo "| what | tasks | tasks/s | CPU ms per task |"
  echo "|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
} | tee "$out/worker_bench.md"
