#!/usr/bin/env bash
# `make demo`: brings up the local cluster (apiserver, etcd, Kafka and one real node),
# builds the image and loads it into the node, installs cronlane with
# `kubectl apply -k manifests/overlays/local` so the operator runs as a Pod, applies
# the samples, and shows the tasks firing, the WorkerPool scaling the demo-workers
# Deployment and its Pods coming, running the tasks and going. Stop it all with
# `make env-down`.
set -euo pipefail
cd "$(dirname "$0")/.."
bold() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
SECONDS_TO_WATCH=${DEMO_SECONDS:-75}

bold "1/6 local cluster: kube-apiserver + etcd, Kafka, and a node (containerd, kubelet, kube-proxy, scheduler, controllers)"
tests/env/up.sh
# shellcheck disable=SC1091
. .cronlane/env
kubectl get nodes -o wide

bold "2/6 the image (make image), loaded into the node"
hack/image.sh
tests/env/load-image.sh

bold "3/6 kubectl apply -k manifests/overlays/local: the operator as a Pod"
kubectl apply -k manifests/overlays/local
kubectl rollout status deployment/cronlane-operator -n cronlane-system --timeout=180s
kubectl get pods -n cronlane-system -o wide

bold "4/6 kubectl apply -f manifests/samples/ (the workers reach Kafka on the node's bridge)"
build/bin/cronlane validate manifests/samples/
kubectl apply -f manifests/samples/
kubectl set env deployment/demo-workers "CRONLANE_KAFKA_BOOTSTRAP=$KAFKA_NODE_BOOTSTRAP" >/dev/null
for name in $(kubectl get st -o jsonpath='{.items[*].metadata.name}'); do
  sched=$(kubectl get st "$name" -o jsonpath='{.spec.schedule}')
  tz=$(kubectl get st "$name" -o jsonpath='{.spec.timeZone}')
  echo "$name: \"$sched\" ${tz:+in $tz}"
  build/bin/cronlane next --schedule "$sched" ${tz:+--time-zone "$tz"} --count 2 --local | sed 's/^/   /'
done

bold "5/6 the operator Pod fires them into Kafka; the WorkerPool scales the worker Pods (${SECONDS_TO_WATCH}s)"
echo "every 5 s: the WorkerPool, the worker Pods, and what they ran"
start=$(date +%s)
seen_file=$(mktemp) now_file=$(mktemp)
trap 'rm -f "$seen_file" "$now_file"' EXIT
while (($(date +%s) - start < SECONDS_TO_WATCH)); do
  sleep 5
  pool=$(kubectl get workerpool demo-workers -o jsonpath='lag {.status.lag}, desired {.status.desiredReplicas}' 2>/dev/null || true)
  [[ "$pool" == "lag , desired "* ]] && pool="(first measurement pending)"
  pods=$(kubectl get pods -l app.kubernetes.io/name=demo-workers --no-headers \
    -o custom-columns=NAME:.metadata.name,PHASE:.status.phase 2>/dev/null | awk '{printf "%s%s(%s)", (NR>1?" ":""), $1, $2}')
  printf '  [+%2ds] workerpool: %-28s pods: %s\n' "$(($(date +%s) - start))" "$pool" "${pods:-none}"
  # What the worker Pods ran since the last look (a Pod's log goes with the Pod).
  kubectl logs -l app.kubernetes.io/name=demo-workers --prefix --tail=-1 2>/dev/null | grep ' ran ' |
    sed -E 's#^\[pod/([^/]*)/[^]]*\] #      \1: #' | sort >"$now_file" || true
  comm -13 "$seen_file" "$now_file" | head -3
  sort -u "$seen_file" "$now_file" -o "$seen_file"
done

bold "6/6 status"
kubectl get scheduledtasks
kubectl get workerpools
kubectl get events --field-selector reason=Scaled -o custom-columns=TIME:.eventTime,MESSAGE:.message 2>/dev/null | tail -6 || true

cat <<MSG

The cluster stays up:   . .cronlane/env && kubectl get pods -A
Operator logs:          kubectl logs -n cronlane-system deployment/cronlane-operator
Worker logs:            kubectl logs -l app.kubernetes.io/name=demo-workers --prefix
Stop everything:        make env-down
MSG
