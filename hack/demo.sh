#!/usr/bin/env bash
# `make demo`: brings up the local control plane and Kafka, applies the samples, runs
# the operator and a WorkerPool-scaled set of workers, and shows the sample tasks
# firing, being run, and the pool scaling. Stop it all with `make env-down`.
set -euo pipefail
cd "$(dirname "$0")/.."
bold() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
SECONDS_TO_WATCH=${DEMO_SECONDS:-45}

bold "1/5 local environment (real kube-apiserver + etcd + Kafka on 127.0.0.1)"
tests/env/up.sh
# shellcheck disable=SC1091
. .cronlane/env

bold "2/5 kubectl apply -f manifests/samples/"
build/bin/cronlane validate manifests/samples/
kubectl apply -f manifests/samples/

bold "3/5 when will they fire? (cronlane next)"
for name in $(kubectl get st -o jsonpath='{.items[*].metadata.name}'); do
  sched=$(kubectl get st "$name" -o jsonpath='{.spec.schedule}')
  tz=$(kubectl get st "$name" -o jsonpath='{.spec.timeZone}')
  echo "$name: \"$sched\" ${tz:+in $tz}"
  build/bin/cronlane next --schedule "$sched" ${tz:+--time-zone "$tz"} --count 3 --local | sed 's/^/   /'
done

bold "4/5 the operator fires them into Kafka ($KAFKA_BOOTSTRAP); the WorkerPool scales the workers (${SECONDS_TO_WATCH}s)"
mkdir -p .cronlane/logs/demo
rm -f .cronlane/logs/demo/worker-*.log
build/bin/cronlane-operator --kafka-bootstrap "$KAFKA_BOOTSTRAP" --log-format text \
  --metrics-bind-address 127.0.0.1:0 --health-probe-bind-address 0 >.cronlane/logs/demo-operator.log 2>&1 &
OP=$!
# No nodes here: hack/demo-kubelet.sh runs as many cronlane-worker processes as the
# demo-workers Deployment asks for, as a kubelet would run its pods.
hack/demo-kubelet.sh default demo-workers .cronlane/logs/demo -- \
  --kafka-bootstrap "$KAFKA_BOOTSTRAP" --topic cronlane.demo --group demo-workers \
  --results-topic cronlane.results --concurrency 1 --log-format text \
  --metrics-bind-address 0 --health-probe-bind-address 0 \
  --exec 'sleep 1; echo "ran $CE_SUBJECT scheduled $CE_TIME shard $CE_SHARDINDEX/$CE_SHARDCOUNT"' &
KL=$!
trap 'kill $OP $KL 2>/dev/null || true' EXIT
echo "operator pid $OP (log .cronlane/logs/demo-operator.log); workers' logs in .cronlane/logs/demo/"
echo "every 3 s: the WorkerPool's lag and replicas, and what the workers ran"
start=$(date +%s)
shown=0
while (($(date +%s) - start < SECONDS_TO_WATCH)); do
  sleep 3
  pool=$(kubectl get workerpool demo-workers -o jsonpath='lag {.status.lag}, desired {.status.desiredReplicas}, running {.status.currentReplicas}' 2>/dev/null || true)
  [[ "$pool" == "lag , desired , running "* ]] && pool="(first measurement pending)"
  ran=$(cat .cronlane/logs/demo/worker-*.log 2>/dev/null | grep -c '^ran ' || true)
  printf '  [+%2ds] workerpool demo-workers: %-40s tasks run so far: %s\n' "$(($(date +%s) - start))" "$pool" "$ran"
  if ((shown < 4)); then
    { cat .cronlane/logs/demo/worker-*.log 2>/dev/null | grep '^ran ' | sed -n "$((shown + 1)),4p" |
      sed 's/^/      worker: /'; } || true
    shown=$(cat .cronlane/logs/demo/worker-*.log 2>/dev/null | grep -c '^ran ' || true)
  fi
done

bold "5/5 status"
kubectl get scheduledtasks
kubectl get workerpools
kubectl get events --field-selector reason=Scaled -o custom-columns=TIME:.eventTime,MESSAGE:.message 2>/dev/null | tail -6 || true
kill $OP $KL 2>/dev/null || true
wait $OP $KL 2>/dev/null || true
trap - EXIT

cat <<MSG

The environment stays up:  . .cronlane/env && kubectl get st
Run the operator again:    build/bin/cronlane-operator --kafka-bootstrap \$KAFKA_BOOTSTRAP --log-format text
Run a worker:              build/bin/cronlane-worker --kafka-bootstrap \$KAFKA_BOOTSTRAP --topic cronlane.demo --exec 'cat; echo'

Stop everything:           make env-down
MSG
