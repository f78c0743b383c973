#!/usr/bin/env bash
# `make demo`: brings up the local control plane and Kafka, applies the samples, runs
# the operator, and shows the sample task firing into Kafka. Stop it all with
# `make env-down`.
set -euo pipefail
cd "$(dirname "$0")/.."
bold() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
SECONDS_TO_WATCH=${DEMO_SECONDS:-20}

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

bold "4/5 the operator fires them into Kafka ($KAFKA_BOOTSTRAP); a worker runs them (${SECONDS_TO_WATCH}s)"
mkdir -p .cronlane/logs
build/bin/cronlane-operator --kafka-bootstrap "$KAFKA_BOOTSTRAP" --log-format text \
  --metrics-bind-address 127.0.0.1:0 --health-probe-bind-address 0 >.cronlane/logs/demo-operator.log 2>&1 &
OP=$!
build/bin/cronlane-worker --kafka-bootstrap "$KAFKA_BOOTSTRAP" --topic cronlane.demo --group demo-workers \
  --results-topic cronlane.results --log-format text --metrics-bind-address 0 --health-probe-bind-address 0 \
  >.cronlane/logs/demo-worker.log 2>&1 &
WK=$!
trap 'kill $OP $WK 2>/dev/null || true' EXIT
echo "operator pid $OP (log .cronlane/logs/demo-operator.log), worker pid $WK (log .cronlane/logs/demo-worker.log)"
timeout "$SECONDS_TO_WATCH" tail -n +1 -f .cronlane/logs/demo-worker.log | grep --line-buffered 'task ' | \
  sed -E 's/^[^ ]+ info +/worker: /' || true

bold "5/5 status"
kubectl get scheduledtasks
kubectl get workerpools
kill $OP $WK 2>/dev/null || true
wait $OP $WK 2>/dev/null || true
trap - EXIT

cat <<MSG

The environment stays up:  . .cronlane/env && kubectl get st
Run the operator again:    build/bin/cronlane-operator --kafka-bootstrap \$KAFKA_BOOTSTRAP --log-format text
Run a worker:              build/bin/cronlane-worker --kafka-bootstrap \$KAFKA_BOOTSTRAP --topic cronlane.demo --exec 'cat; echo'

Stop everything:           make env-down
MSG
