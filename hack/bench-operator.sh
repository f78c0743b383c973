#!/usr/bin/env bash
# Fire lag through the whole operator: N ScheduledTask CRs on the real apiserver
# (all due in the same second, every 20 s), cronlane-operator (release build) firing
# them into the real Kafka; reports time until all N are scheduled, fire lag, the
# operator's RSS and API requests. Expects the environment of $CRONLANE_STATE_DIR.
#   hack/bench-operator.sh BUILD_DIR N...
set -euo pipefail
cd "$(dirname "$0")/.."
dir=$1; shift
# shellcheck disable=SC1091
. "$CRONLANE_STATE_DIR/env"
for n in "$@"; do
  ns=bench-op-$n
  topic=bench-op-$n
  kubectl create namespace "$ns" >/dev/null
  work=$(mktemp -d)
  python3 - "$n" "$topic" "$work" <<'PY'
import sys
n, topic, work = int(sys.argv[1]), sys.argv[2], sys.argv[3]
chunk = 500
for start in range(0, n, chunk):
    with open(f"{work}/tasks-{start:06d}.yaml", "w") as f:
        for i in range(start, min(n, start + chunk)):
            f.write(f"---\napiVersion: cronlane.dev/v1alpha1\nkind: ScheduledTask\nmetadata: {{name: t{i}}}\n"
                    f"spec:\n  schedule: \"*/20 * * * * *\"\n  catchUpPolicy: All\n  target: {{topic: {topic}}}\n")
PY
  t0=$(date +%s.%N)
  kubectl apply -n "$ns" -f "$work" >/dev/null
  t_apply=$(echo "$(date +%s.%N) - $t0" | bc)
  port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
  t0=$(date +%s.%N)
  "$dir/bin/cronlane-operator" --kafka-bootstrap "$KAFKA_BOOTSTRAP" --namespaces "$ns" --log-level warn \
    --metrics-bind-address "127.0.0.1:$port" --health-probe-bind-address 0 --kube-api-qps 500 --kube-api-burst 1000 \
    --workers 8 --transactional-id "$ns" --checkpoint-topic "$ns.checkpoints" >"$work/operator.log" 2>&1 &
  op=$!
  metric() { curl -s "127.0.0.1:$port/metrics" | awk -v m="$1" '$1==m {print $2}'; }
  until [[ "$(metric cronlane_tasks_scheduled)" == "$n" ]]; do sleep 0.2; kill -0 $op || { cat "$work/operator.log"; exit 1; }; done
  t_ready=$(echo "$(date +%s.%N) - $t0" | bc)
  req0=$(metric cronlane_kube_requests_total)
  result=$("$dir/bench/fire_bench" --bootstrap "$KAFKA_BOOTSTRAP" --consume-topic "$topic" --consume-seconds 61 2>/dev/null)
  req1=$(metric cronlane_kube_requests_total)
  fired=$(metric cronlane_occurrences_fired_total)
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$op/status")
  kill -TERM $op; wait $op || true
  echo "tasks=$n apply_s=$t_apply scheduled_after_start_s=$t_ready $result operator_rss_kib=$rss api_requests_during_60s=$((${req1%.*} - ${req0%.*})) fired_total=$fired"
  kubectl delete namespace "$ns" --wait=false >/dev/null
  rm -rf "$work"
done
