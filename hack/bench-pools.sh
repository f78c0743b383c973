#!/usr/bin/env bash
# `make bench-pools`: many WorkerPools on one operator, through the real apiserver
# and Kafka (KEDA users report trouble from about 700 ScaledObjects).
#
# For each N (POOLS, default "100 1000"), in a fresh local environment (no node):
#   1. N topics of POOLS_PARTITIONS (4) partitions; N Deployments (replicas 0) and N
#      WorkerPools, pool i scaling Deployment i by the lag of its own group on topic
#      i (pollIntervalSeconds POOLS_POLL, default 5), created with `kubectl create`
#      of 500-object files, 8 at a time;
#   2. a release-build operator starts with default flags (plus
#      POOLS_OPERATOR_FLAGS, e.g. "--kube-api-qps=200");
#   3. recorded: the time until every pool was measured once, then over
#      POOLS_SECONDS (120) the poll cycle achieved (N x seconds / polls; the aim is
#      POOLS_POLL), the operator's CPU, RSS and API requests per minute;
#   4. reaction: 10 messages land on every topic at once; the time until every
#      Deployment was scaled up, and each pool's lastScaleTime after the messages
#      were acknowledged (1 s resolution): median and max.
# Results: one line per N in $out/pools.txt. Needs a release build and the tools.
#   hack/bench-pools.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build-release}
out=$dir/bench-results
mkdir -p "$out"
secs=${POOLS_SECONDS:-120}
poll=${POOLS_POLL:-5}
partitions=${POOLS_PARTITIONS:-4}
export CRONLANE_STATE_DIR=$PWD/.cronlane/bench-pools
export CRONLANE_WITH_NODE=0
trap 'tests/env/down.sh >/dev/null 2>&1 || true; kill $(jobs -p) 2>/dev/null || true' EXIT

# shellcheck source=hack/bench-lib.sh
. hack/bench-lib.sh

for n in ${POOLS:-100 1000}; do
  tests/env/down.sh >/dev/null 2>&1 || true
  tests/env/up.sh >/dev/null
  # shellcheck disable=SC1091
  . "$CRONLANE_STATE_DIR/env"
  ns=pools
  work=$(mktemp -d)
  kubectl create namespace "$ns" >/dev/null
  topics=$("$dir/bench/pool_bench" --bootstrap "$KAFKA_BOOTSTRAP" --prefix "$ns-" --count "$n" topics \
    --partitions "$partitions")
  python3 - "$n" "$ns" "$poll" "$work" <<'PY'
import sys
n, ns, poll, work = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4]
chunk = 250  # 500 objects a file
for start in range(0, n, chunk):
    with open(f"{work}/pools-{start:06d}.yaml", "w") as f:
        for i in range(start, min(n, start + chunk)):
            f.write(f"---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {{name: w{i}}}\nspec:\n"
                    f"  replicas: 0\n  selector: {{matchLabels: {{app: w{i}}}}}\n"
                    f"  template:\n    metadata: {{labels: {{app: w{i}}}}}\n"
                    f"    spec: {{containers: [{{name: worker, image: cronlane/cronlane:0.1.0}}]}}\n"
                    f"---\napiVersion: cronlane.dev/v1alpha1\nkind: WorkerPool\nmetadata: {{name: p{i}}}\nspec:\n"
                    f"  scaleTargetRef: {{name: w{i}}}\n  topic: {ns}-{i}\n  consumerGroup: g{i}\n"
                    f"  lagThreshold: 5\n  maxReplicas: 4\n  pollIntervalSeconds: {poll}\n"
                    f"  scaleDownStabilizationSeconds: 0\n")
PY
  t0=$(now)
  find "$work" -name 'pools-*.yaml' | sort | xargs -P 8 -I{} kubectl create -n "$ns" -f {} -o name >/dev/null
  create_s=$(since "$t0")

  port=$(freeport)
  t0=$(now)
  "$dir/bin/cronlane-operator" --kafka-bootstrap "$KAFKA_BOOTSTRAP" --namespaces "$ns" --log-level info \
    --metrics-bind-address "127.0.0.1:$port" --health-probe-bind-address 0 \
    --transactional-id "$ns" --checkpoint-topic "$ns.checkpoints" ${POOLS_OPERATOR_FLAGS:-} >"$work/operator.log" 2>&1 &
  pid=$!
  measured_s=""
  while [[ -z "$measured_s" ]]; do
    sleep 0.2
    kill -0 "$pid" || { cat "$work/operator.log"; exit 1; }
    [[ "$(metric_sum "$port" cronlane_workerpool_ready)" == "$n" ]] && measured_s=$(since "$t0")
    if [[ $(echo "$(since "$t0") > 900" | bc) == 1 ]]; then echo "not every pool measured after 15 min" >&2; exit 1; fi
  done

  # Steady state: nothing to scale, every pool polled every $poll s.
  sleep "$poll"
  req0=$(metric "$port" cronlane_kube_requests_total); cpu0=$(cpu_s "$pid")
  polls0=$(metric "$port" cronlane_workerpool_polls_total)
  sleep "$secs"
  req1=$(metric "$port" cronlane_kube_requests_total); cpu1=$(cpu_s "$pid")
  polls1=$(metric "$port" cronlane_workerpool_polls_total)
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
  cycle=$(echo "$n * $secs / (${polls1%.*} - ${polls0%.*})" | bc -l)
  cpu_per_min=$(echo "($cpu1 - $cpu0) * 60 / $secs" | bc -l)
  api_per_min=$(echo "(${req1%.*} - ${req0%.*}) * 60 / $secs" | bc)

  # Reaction: 10 messages on every topic (ceil(10 / 5) = 2 replicas each).
  produced=$("$dir/bench/pool_bench" --bootstrap "$KAFKA_BOOTSTRAP" --prefix "$ns-" --count "$n" produce \
    --messages 10)
  acked_ms=${produced##*acked_unix_ms=}
  t0=$(now)
  all_scaled_s=""
  while [[ -z "$all_scaled_s" ]]; do
    scaled=$(kubectl get deployments -n "$ns" -o jsonpath='{range .items[*]}{.spec.replicas}{"\n"}{end}' |
      awk '$1 > 0' | wc -l)
    [[ "$scaled" == "$n" ]] && all_scaled_s=$(since "$t0")
    if [[ $(echo "$(since "$t0") > 600" | bc) == 1 ]]; then echo "only $scaled of $n scaled after 10 min" >&2; exit 1; fi
    [[ -n "$all_scaled_s" ]] || sleep 0.5
  done
  reaction=$(kubectl get workerpools -n "$ns" -o jsonpath='{range .items[*]}{.status.lastScaleTime}{"\n"}{end}' |
    python3 -c '
import sys, datetime
acked = int(sys.argv[1]) / 1000
d = sorted(datetime.datetime.fromisoformat(l.strip().replace("Z", "+00:00")).timestamp() - acked
           for l in sys.stdin if l.strip())
print(f"reaction_median_s={d[len(d) // 2]:.1f} reaction_max_s={d[-1]:.1f} scaled={len(d)}")' "$acked_ms")
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  cp "$work/operator.log" "$out/pools-operator-$n.log"
  line="pools=$n partitions=$partitions poll_s=$poll flags=\"${POOLS_OPERATOR_FLAGS:-}\" create_s=$create_s"
  line+=" ${topics% seconds=*}"
  line+=" all_measured_s=$measured_s cycle_s=$(printf %.2f "$cycle") cpu_s_per_min=$(printf %.2f "$cpu_per_min")"
  line+=" rss_kib=$rss api_requests_per_min=$api_per_min all_scaled_s=$all_scaled_s $reaction"
  echo "$line" | tee -a "$out/pools.txt"
  rm -rf "$work"
done
tests/env/down.sh >/dev/null 2>&1 || true
echo "results in $out/pools.txt"
