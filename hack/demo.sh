#!/usr/bin/env bash
# `make demo`: brings up the local control plane and Kafka, applies the samples and
# shows what works today. Stop it all with `make env-down`.
set -euo pipefail
cd "$(dirname "$0")/.."
bold() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

bold "1/4 local environment (real kube-apiserver + etcd + Kafka on 127.0.0.1)"
tests/env/up.sh
# shellcheck disable=SC1091
. .cronlane/env

bold "2/4 kubectl apply -f manifests/samples/"
kubectl apply -f manifests/samples/
kubectl get scheduledtasks

bold "3/4 when will they fire? (cronlane next, reading each sample's schedule and zone)"
for name in $(kubectl get st -o jsonpath='{.items[*].metadata.name}'); do
  sched=$(kubectl get st "$name" -o jsonpath='{.spec.schedule}')
  tz=$(kubectl get st "$name" -o jsonpath='{.spec.timeZone}')
  echo "$name: \"$sched\" ${tz:+in $tz}"
  build/bin/cronlane next --schedule "$sched" ${tz:+--time-zone "$tz"} --count 3 --local | sed 's/^/   /'
done

bold "4/4 Kafka round trip on $KAFKA_BOOTSTRAP (kcat)"
echo '{"greeting":"hello"}' | kcat -b "$KAFKA_BOOTSTRAP" -P -t cronlane.demo -k default/hello-every-5s \
  -H ce_id=demo-1 -H ce_type=dev.cronlane.fired
kcat -b "$KAFKA_BOOTSTRAP" -C -t cronlane.demo -o beginning -e -f 'key=%k headers=%h value=%s\n' 2>/dev/null | tail -3

cat <<MSG

The environment stays up for you:  . .cronlane/env && kubectl get st
Stop it with:                      make env-down
(The dispatcher that fires ScheduledTasks into Kafka is the next slice: see CHANGELOG.md.)
MSG
