#!/usr/bin/env bash
# `make bench-worker`: how fast one worker runs fired tasks, side by side with the
# limits of this machine, in one run (docs/benchmarks.md "Workers"), for each size
# in WORKER_BENCH_TASKS (default "5000 50000"):
#   worker      cronlane-worker --exec true --results-topic, at each concurrency in
#               WORKER_BENCH_CONCURRENCY (default "1 4 16"): N fired-task CloudEvents
#               (as the dispatcher builds them) on a 4-partition topic; timed from
#               the first result to the N-th. `true` has no shell syntax, so the
#               worker runs it without a shell (--exec-mode auto)
#   in-process  cronlane-example-worker (a C++ function per task, results and
#               commits on), at concurrency 1 and 4, timed the same way
#   spawn       the same command spawned N times by xargs -P4, with a shell
#               (sh -c true) and without (argv): the spawn limit
#   consumer    a bare librdkafka consumer reading the N messages: the consumer limit
#   pipe        a bare consume-produce-commit loop (one result record per message,
#               no delivery tracking, no guarantee kept): the limit of anything
#               that writes results and commits, timed like the workers
# CPU per task is the process's user+system time, children included, over N. The
# "of its limit" column is each row's rate over its limit (exec rows: xargs -P4
# true; in-process rows: the bare consumer, the issue's yardstick); the last
# column, for the in-process rows, is their rate over the pipe's.
# The in-process, consumer and pipe rows run WORKER_BENCH_ROUNDS times (default
# 5), interleaved, and report their medians (ratios are of medians); the exec and
# spawn rows, seconds long each, run once.
# The broker runs with its full JIT (CRONLANE_KAFKA_FULL_JIT) and is warmed up
# with one unreported pipe run; every results topic exists before its worker
# starts, as in a deployment.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build-release}
out=$dir/bench-results
mkdir -p "$out"
sizes=${WORKER_BENCH_TASKS:-5000 50000}
concurrencies=${WORKER_BENCH_CONCURRENCY:-1 4 16}
rounds=${WORKER_BENCH_ROUNDS:-5}
bench=$dir/bench/worker_bench
tick=$(getconf CLK_TCK)

export CRONLANE_STATE_DIR=$PWD/.cronlane/bench
export CRONLANE_WITH_NODE=${CRONLANE_WITH_NODE:-0}
export CRONLANE_KAFKA_FULL_JIT=1
trap 'tests/env/down.sh >/dev/null 2>&1 || true' EXIT
tests/env/up.sh >/dev/null
# shellcheck disable=SC1091
. "$CRONLANE_STATE_DIR/env"

# CPU seconds (user+system, waited-for children included) of a live process.
cpu_of() { awk -v t="$tick" '{ print ($14 + $15 + $16 + $17) / t }' "/proc/$1/stat"; }
value() { sed -nE "s/.*\\b$1=([0-9.]+).*/\\1/p" <<<"$2"; }
per_s() { awk -v n="$1" -v s="$2" 'BEGIN { print n / s }'; }
ms_per() { awk -v c="$1" -v n="$2" 'BEGIN { print 1000 * c / n }'; }
median() { printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
rows=()

# A fresh topic of $1 fired tasks on 4 partitions, and its (empty) results topic.
make_topics() {
  "$bench" produce --bootstrap "$KAFKA_BOOTSTRAP" --topic "$1" --count "$2" --partitions 4 >/dev/null
  "$bench" produce --bootstrap "$KAFKA_BOOTSTRAP" --topic "$1.results" --count 0 --partitions 1 >/dev/null
}

# The bare pipe over a fresh topic of $1 messages; sets rate and cpu.
run_pipe() {
  local topic=bench-worker-pipe-$1-$$-$RANDOM res piped
  make_topics "$topic" "$1"
  piped=$("$bench" pipe --bootstrap "$KAFKA_BOOTSTRAP" --topic "$topic" --results-topic "$topic.results" --count "$1")
  res=$("$bench" results --bootstrap "$KAFKA_BOOTSTRAP" --topic "$topic.results" --count "$1" --timeout 600)
  cpu=$(value cpu_seconds "$piped")
  rate=$(per_s "$1" "$(value seconds "$res")")
  echo "pipe $1: $res $piped" >&2
}

# Warm-up (the broker's JIT), not reported.
run_pipe 50000

# Runs one worker command over a fresh topic of $tasks messages; sets rate and cpu.
run_worker() {
  local name=$1
  shift
  local topic=bench-worker-$name-$tasks-$$
  make_topics "$topic" "$tasks"
  "$@" --kafka-bootstrap="$KAFKA_BOOTSTRAP" --topic="$topic" --group="$topic" --results-topic="$topic.results" \
    >"$out/$name-$tasks.log" 2>&1 &
  local pid=$!
  local res
  # The reader starts once every result is written (the pipe's reader runs after
  # the pipe too): the rate is the span of the results' CreateTimes.
  res=$("$bench" results --bootstrap "$KAFKA_BOOTSTRAP" --topic "$topic.results" --count "$tasks" --timeout 1800 \
    --wait-written)
  cpu=$(cpu_of "$pid")
  kill -TERM "$pid"
  wait "$pid" || true
  rate=$(per_s "$tasks" "$(value seconds "$res")")
  echo "$name $tasks: $res cpu_seconds=$cpu" >&2
}

for tasks in $sizes; do
  exec_rows=() inproc_rows=()
  for n in $concurrencies; do
    run_worker "exec-c$n" "$dir/bin/cronlane-worker" --concurrency="$n" --exec=true --metrics-bind-address=0 \
      --health-probe-bind-address=0 --log-format=text
    exec_rows+=("cronlane-worker --exec true, concurrency $n|$rate|$(ms_per "$cpu" "$tasks")")
  done
  spawn_rate=0
  spawn_rows=()
  for shape in "sh -c true" "true"; do
    t0=$(date +%s.%N)
    # shellcheck disable=SC2086
    usage=$( { /usr/bin/time -f '%U %S' bash -c "seq $tasks | xargs -P4 -I{} $shape" ; } 2>&1 | tail -1)
    t1=$(date +%s.%N)
    secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { print b - a }')
    cpu=$(awk '{ print $1 + $2 }' <<<"$usage")
    spawn_rate=$(per_s "$tasks" "$secs")  # the last one, argv: how --exec true runs
    spawn_rows+=("xargs -P4 $shape (spawn limit)|$spawn_rate|$(ms_per "$cpu" "$tasks")")
    echo "xargs -P4 $shape $tasks: ${secs}s cpu=${cpu}s" >&2
  done
  # The fast rows, interleaved for $rounds rounds: each reports its median rate
  # and CPU (the broker shares the machine's two cores, and one run of 50,000
  # tasks lasts a fraction of a second: single runs vary by 2x here).
  declare -A rates=() cpus=()
  for ((round = 1; round <= rounds; round++)); do
    for n in 1 4; do
      run_worker "inprocess-c$n-r$round" "$dir/bin/cronlane-example-worker" --concurrency="$n"
      rates[inprocess-c$n]+="$rate " cpus[inprocess-c$n]+="$cpu "
    done
    topic=bench-worker-consumer-$tasks-$round-$$
    "$bench" produce --bootstrap "$KAFKA_BOOTSTRAP" --topic "$topic" --count "$tasks" --partitions 4 >/dev/null
    res=$("$bench" consume --bootstrap "$KAFKA_BOOTSTRAP" --topic "$topic" --count "$tasks" --group "$topic")
    echo "bare consumer $tasks: $res" >&2
    rates[consumer]+="$(per_s "$tasks" "$(value seconds "$res")") " cpus[consumer]+="$(value cpu_seconds "$res") "
    run_pipe "$tasks"
    rates[pipe]+="$rate " cpus[pipe]+="$cpu "
  done
  for n in 1 4; do
    inproc_rows+=("in-process (cronlane-example-worker), concurrency $n|$(median ${rates[inprocess-c$n]})|$(ms_per "$(median ${cpus[inprocess-c$n]})" "$tasks")")
  done
  consumer_rate=$(median ${rates[consumer]}) consumer_cpu=$(ms_per "$(median ${cpus[consumer]})" "$tasks")
  pipe_rate=$(median ${rates[pipe]}) pipe_cpu=$(ms_per "$(median ${cpus[pipe]})" "$tasks")
  share() { awk -v r="$1" -v l="$2" 'BEGIN { printf "%.0f%%", 100 * r / l }'; }
  emit() {  # row "what|rate|cpu" [limit] [pipe]
    IFS='|' read -r what rate cpu <<<"$1"
    local of="—" of_pipe="—"
    [[ -n ${2:-} ]] && of=$(share "$rate" "$2")
    [[ -n ${3:-} ]] && of_pipe=$(share "$rate" "$3")
    rows+=("$(printf '| %s | %s | %.0f | %.3f | %s | %s |' "$what" "$tasks" "$rate" "$cpu" "$of" "$of_pipe")")
  }
  for r in "${exec_rows[@]}"; do emit "$r" "$spawn_rate"; done
  for r in "${inproc_rows[@]}"; do emit "$r" "$consumer_rate" "$pipe_rate"; done
  for r in "${spawn_rows[@]}"; do emit "$r"; done
  emit "bare librdkafka consumer (consumer limit)|$consumer_rate|$consumer_cpu"
  emit "bare consume-produce-commit loop (pipe limit)|$pipe_rate|$pipe_cpu"
done

{
  echo "| what | tasks | tasks/s | CPU ms per task | of its limit | of the pipe |"
  echo "|---|---|---|---|---|---|"
  printf '%s\n' "${rows[@]}"
} | tee "$out/worker_bench.md"
