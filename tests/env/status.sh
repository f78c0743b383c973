#!/usr/bin/env bash
# Exit 0 when every component recorded in $CRONLANE_STATE_DIR/env is running and ready.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
REPO=$(cd "$ENV_DIR/../.." && pwd)
STATE=${CRONLANE_STATE_DIR:-$REPO/.cronlane}
[[ -f "$STATE/env" ]] || { echo "not up"; exit 1; }
# shellcheck disable=SC1090
. "$STATE/env"
ok=0
for c in ETCD APISERVER KAFKA; do
  pid_var=${c}_PID
  if [[ -n "${!pid_var:-}" ]] && kill -0 "${!pid_var}" 2>/dev/null; then echo "$c: running (pid ${!pid_var})"; else echo "$c: not running"; ok=1; fi
done
if [[ -n "${CRONLANE_NODE:-}" ]]; then
  for c in CONTAINERD KUBELET KUBE_PROXY KUBE_SCHEDULER; do
    pid_var=${c}_PID
    if [[ -n "${!pid_var:-}" ]] && kill -0 "${!pid_var}" 2>/dev/null; then echo "$c: running (pid ${!pid_var})"; else echo "$c: not running"; ok=1; fi
  done
fi
kubectl get --raw /readyz >/dev/null 2>&1 || { echo "kube-apiserver: not ready"; ok=1; }
if [[ -n "${CRONLANE_NODE:-}" ]]; then
  ready=$(kubectl get node "$CRONLANE_NODE" -o jsonpath='{.status.conditions[?(@.type=="Ready")].status}' 2>/dev/null || true)
  [[ $ready == True ]] && echo "node $CRONLANE_NODE: Ready" || { echo "node $CRONLANE_NODE: not Ready"; ok=1; }
fi
kcat -b "$KAFKA_BOOTSTRAP" -L -m 2 >/dev/null 2>&1 || { echo "kafka: not ready"; ok=1; }
exit $ok
