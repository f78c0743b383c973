#!/usr/bin/env bash
# `make bench-burst`: what predictive scaling buys, side by side in one run. Three
# sharded ScheduledTasks fire a burst of BURST_SHARDS (400) messages each at the same
# known instant T into three topics of BURST_PARTITIONS (8) partitions, each drained
# by its own Deployment of workers:
#   predictive  a WorkerPool with predictive.leadSeconds BURST_LEAD (20)
#   reactive    the same WorkerPool without predictive (lag only, as KEDA does)
#   fixed       no WorkerPool: BURST_PARTITIONS workers all the time
# Both pools: lagThreshold BURST_SHARDS / BURST_PARTITIONS (the burst wants one
# worker per partition), maxReplicas BURST_PARTITIONS, pollIntervalSeconds BURST_POLL
# (5), scaleDownStabilizationSeconds BURST_STABILIZATION (30).
#
# No node: this script plays the kubelet. It watches the three Deployments and
# starts a cronlane-worker process (concurrency 1, each task `sleep BURST_TASK_S`,
# 0.25) for every replica wanted, BURST_DELAY (10) seconds after the replica
# appeared, as an image pull and a JVM's warm-up delay a Pod; a replica taken away
# gets SIGTERM. Recorded, from T:
#   done_s          until the last of the burst's results was written (CreateTime)
#   first_full_s    until the pool had BURST_PARTITIONS workers running (negative:
#                   before the burst)
#   worker_s        worker-seconds from T - 60 s to T + BURST_WINDOW (120), a
#                   replica counted from the moment it was asked for (a Pod pulling
#                   its image holds its node's room too)
#   results/records the burst's distinct occurrences done, and result records read
# Plot (gnuplot): workers running and lag over time per mode, burst.png. Results:
# one line per mode in $out/burst.txt. Needs a release build and the tools.
#   hack/bench-burst.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build-release}
out=$dir/bench-results
mkdir -p "$out"
shards=${BURST_SHARDS:-400}
partitions=${BURST_PARTITIONS:-8}
lead=${BURST_LEAD:-20}
poll=${BURST_POLL:-5}
stabilization=${BURST_STABILIZATION:-30}
delay=${BURST_DELAY:-10}
task_s=${BURST_TASK_S:-0.25}
window=${BURST_WINDOW:-120}
ahead=60 # T is this far after the pools were first measured
modes=(predictive reactive fixed)
export CRONLANE_STATE_DIR=$PWD/.cronlane/bench-burst
export CRONLANE_WITH_NODE=0
work=$(mktemp -d)
ns=burst
cleanup() {
  # The workers the harness started (and their delayed starts), then the rest.
  [[ -f $work/harness.log ]] && awk '$3 == "start" {print $4}' "$work/harness.log" | xargs -r kill -TERM 2>/dev/null
  pkill -f "kubectl get deployments -n $ns -w" 2>/dev/null || true
  kill $(jobs -p) 2>/dev/null || true
  tests/env/down.sh >/dev/null 2>&1 || true
}
trap cleanup EXIT

# shellcheck source=hack/bench-lib.sh
. hack/bench-lib.sh
ms_now() { date +%s%3N; }

tests/env/down.sh >/dev/null 2>&1 || true
tests/env/up.sh >/dev/null
# shellcheck disable=SC1091
. "$CRONLANE_STATE_DIR/env"
kubectl create namespace "$ns" >/dev/null
"$dir/bench/pool_bench" --bootstrap "$KAFKA_BOOTSTRAP" --prefix "$ns-" --count 3 topics --partitions "$partitions" \
  >/dev/null
"$dir/bench/pool_bench" --bootstrap "$KAFKA_BOOTSTRAP" --prefix "$ns-results-" --count 3 topics --partitions 1 \
  >/dev/null

# Deployment d<i> drains topic burst-<i> as group burst-<i>; results on burst-results-<i>.
threshold=$(((shards + partitions - 1) / partitions))
for i in 0 1 2; do
  replicas=0
  [[ ${modes[$i]} == fixed ]] && replicas=$partitions
  cat <<EOF
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: d$i}
spec:
  replicas: $replicas
  selector: {matchLabels: {app: d$i}}
  template:
    metadata: {labels: {app: d$i}}
    spec: {containers: [{name: worker, image: cronlane/cronlane:0.1.0}]}
EOF
  [[ ${modes[$i]} == fixed ]] && continue
  cat <<EOF
---
apiVersion: cronlane.dev/v1alpha1
kind: WorkerPool
metadata: {name: ${modes[$i]}}
spec:
  scaleTargetRef: {name: d$i}
  topic: $ns-$i
  consumerGroup: $ns-$i
  lagThreshold: $threshold
  maxReplicas: $partitions
  pollIntervalSeconds: $poll
  scaleDownStabilizationSeconds: $stabilization
EOF
  [[ ${modes[$i]} == predictive ]] && echo "  predictive: {leadSeconds: $lead}"
done >"$work/setup.yaml"
kubectl apply -n "$ns" -f "$work/setup.yaml" >/dev/null

port=$(freeport)
"$dir/bin/cronlane-operator" --kafka-bootstrap "$KAFKA_BOOTSTRAP" --namespaces "$ns" --log-level info \
  --metrics-bind-address "127.0.0.1:$port" --health-probe-bind-address 0 \
  --transactional-id "$ns" --checkpoint-topic "$ns.checkpoints" >"$work/operator.log" 2>&1 &
op=$!

# The kubelet's stand-in: a worker process per replica, started $delay s late.
harness() {
  declare -A running
  kubectl get deployments -n "$ns" -w -o jsonpath='{.metadata.name} {.spec.replicas}{"\n"}' |
    while read -r name want; do
      local i=${name#d}
      echo "$(ms_now) $name replicas $want" >>"$work/harness.log"
      read -r -a have <<<"${running[$name]:-}"
      while ((${#have[@]} < want)); do
        bash -c 'sleep "$0"; exec "$@"' "$delay" "$dir/bin/cronlane-worker" --kafka-bootstrap="$KAFKA_BOOTSTRAP" \
          --topic="$ns-$i" --group="$ns-$i" --results-topic="$ns-results-$i" --exec="sleep $task_s" \
          --concurrency=1 --metrics-bind-address=0 --health-probe-bind-address=0 --log-format=text \
          >>"$work/worker-$name.log" 2>&1 &
        have+=("$!")
        echo "$(ms_now) $name start $!" >>"$work/harness.log"
      done
      while ((${#have[@]} > want)); do
        kill -TERM "${have[-1]}" 2>/dev/null || true
        echo "$(ms_now) $name stop ${have[-1]}" >>"$work/harness.log"
        unset 'have[-1]'
      done
      running[$name]="${have[*]}"
    done
}
harness &

measured() {
  kubectl get workerpools -n "$ns" \
    -o jsonpath='{range .items[*]}{.status.conditions[?(@.type=="Ready")].reason}{"\n"}{end}' | grep -c '^Measured$'
}
t0=$(now)
until [[ "$(measured || true)" == 2 ]]; do
  kill -0 "$op" || { cat "$work/operator.log"; exit 1; }
  if [[ $(echo "$(since "$t0") > 120" | bc) == 1 ]]; then echo "the pools were not measured in 2 min" >&2; exit 1; fi
  sleep 0.5
done

at_s=$(($(date +%s) + ahead))
at=$(date -u -d "@$at_s" +%Y-%m-%dT%H:%M:%SZ)
for i in 0 1 2; do
  printf -- "---\napiVersion: cronlane.dev/v1alpha1\nkind: ScheduledTask\nmetadata: {name: burst-%s}\n" "$i"
  printf "spec:\n  runAt: \"%s\"\n  shards: %s\n  target: {topic: %s-%s}\n" "$at" "$shards" "$ns" "$i"
done | kubectl apply -n "$ns" -f - >/dev/null
echo "burst of $shards x 3 at $at" >&2

"$dir/bench/pool_bench" --bootstrap "$KAFKA_BOOTSTRAP" --prefix "$ns-" --count 3 lag --interval-ms 500 \
  --seconds $((at_s + window - $(date +%s))) >"$work/lag.txt" &
sampler=$!
readers=()
for i in 0 1 2; do
  "$dir/bench/worker_bench" results --bootstrap "$KAFKA_BOOTSTRAP" --topic "$ns-results-$i" --count "$shards" \
    --timeout $((ahead + window)) >"$work/results-$i.txt" 2>&1 &
  readers+=("$!")
done
wait "$sampler"
kill -0 "$op" || { cat "$work/operator.log"; exit 1; }
for r in "${readers[@]}"; do wait "$r" || true; done
cp "$work/operator.log" "$work/harness.log" "$work/lag.txt" "$out/" 2>/dev/null || true

python3 - "$work" "$at_s" "$ahead" "$window" "$delay" "$partitions" "$out" "${modes[@]}" <<'PY' | tee "$out/burst.txt"
import re, sys
work, out = sys.argv[1], sys.argv[7]
at, ahead, window, partitions = (int(v) for v in sys.argv[2:5] + sys.argv[6:7])
delay = float(sys.argv[5])
modes = sys.argv[8:]
start_w, end_w = at - ahead, at + window
events = [l.split() for l in open(f"{work}/harness.log")]
starts, stops = {}, {}
for ts, name, what, val in events:
    if what == "start": starts[val] = (int(ts) / 1000, name)
    if what == "stop": stops[val] = int(ts) / 1000
series = {}
for i, mode in enumerate(modes):
    name = f"d{i}"
    pods = [(t, stops.get(pid, float("inf"))) for pid, (t, n) in starts.items() if n == name]
    worker_s = sum(max(0.0, min(b, end_w) - max(a, start_w)) for a, b in pods)
    def up_at(t): return sum(1 for a, b in pods if a + delay <= t < b)
    full = next((t - at for t in [start_w + k / 10 for k in range((end_w - start_w) * 10)] if up_at(t) >= partitions), None)
    series[mode] = [(k / 2, up_at(at + k / 2)) for k in range(-2 * ahead, 2 * window)]
    res = open(f"{work}/results-{i}.txt").read()
    m = dict(re.findall(r"(\w+)=([0-9.\-]+)", res))
    done = (int(m["last_unix_ms"]) / 1000 - at) if "last_unix_ms" in m else None
    print(f"mode={mode} done_s={done:.1f}" if done is not None else f"mode={mode} done_s=none ({res.strip()})", end="")
    print(f" first_full_s={full:.1f}" if full is not None else " first_full_s=never", end="")
    print(f" worker_s={worker_s:.0f} results={m.get('results', 0)} records={m.get('records', 0)}")
with open(f"{out}/burst-workers.dat", "w") as f:
    for k in range(len(series[modes[0]])):
        f.write(" ".join([str(series[modes[0]][k][0])] + [str(series[m][k][1]) for m in modes]) + "\n")
lag = {}
for l in open(f"{work}/lag.txt"):
    ts, topic, v = l.split()
    lag.setdefault(int(ts), {})[int(topic.rsplit("-", 1)[1])] = int(v)
with open(f"{out}/burst-lag.dat", "w") as f:
    for ts in sorted(lag):
        f.write(" ".join([f"{ts / 1000 - at:.1f}"] + [str(lag[ts].get(i, -1)) for i in range(len(modes))]) + "\n")
PY

gnuplot <<GP
set terminal pngcairo size 900,640 font ",10"
set output "$out/burst.png"
set multiplot layout 2,1
set xrange [-40:$window]
set xlabel "seconds from the burst's scheduled time"
set key top right
set ylabel "workers running"
set yrange [0:$((partitions + 1))]
set title "$shards messages at t=0 onto $partitions partitions; a worker starts ${delay} s after its replica is asked for"
plot "$out/burst-workers.dat" using 1:2 with steps lw 2 title "predictive (lead ${lead} s)", \
     "" using 1:3 with steps lw 2 title "reactive", \
     "" using 1:4 with steps lw 2 dt 2 title "fixed"
set title ""
set ylabel "lag (messages)"
set yrange [0:*]
plot "$out/burst-lag.dat" using 1:(\$2 < 0 ? NaN : \$2) with lines lw 2 title "predictive", \
     "" using 1:(\$3 < 0 ? NaN : \$3) with lines lw 2 title "reactive", \
     "" using 1:(\$4 < 0 ? NaN : \$4) with lines lw 2 dt 2 title "fixed"
unset multiplot
GP
echo "results in $out/burst.txt, plot $out/burst.png"
