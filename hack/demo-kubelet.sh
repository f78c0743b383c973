#!/usr/bin/env bash
# Plays the kubelet for one Deployment of the local environment, which has no nodes:
# keeps as many cronlane-worker processes running as the Deployment's spec.replicas
# (SIGTERM on scale-in, as a kubelet would) and reports them in its status, so a
# WorkerPool can be watched scaling real workers. Used by `make demo`.
#
# Usage: hack/demo-kubelet.sh NAMESPACE DEPLOYMENT LOG_DIR -- cronlane-worker args...
set -uo pipefail
ns=$1 deploy=$2 logs=$3
shift 3
[[ "${1:-}" == "--" ]] && shift
bin="$(cd "$(dirname "$0")/.." && pwd)/build/bin/cronlane-worker"
pids=()
n=0
reported=-1
stop() {
  for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done
  wait 2>/dev/null
  exit 0
}
trap stop TERM INT
while true; do
  want=$(kubectl get deployment "$deploy" -n "$ns" -o jsonpath='{.spec.replicas}' 2>/dev/null || echo "")
  if [[ "$want" =~ ^[0-9]+$ ]]; then
    while ((${#pids[@]} < want)); do
      "$bin" "$@" >"$logs/worker-$n.log" 2>&1 &
      pids+=($!)
      n=$((n + 1))
    done
    while ((${#pids[@]} > want)); do
      last=${pids[-1]}
      kill -TERM "$last" 2>/dev/null
      wait "$last" 2>/dev/null
      unset 'pids[-1]'
    done
    if ((${#pids[@]} != reported)); then
      r=${#pids[@]}
      kubectl patch deployment "$deploy" -n "$ns" --subresource=status --type=merge \
        -p "{\"status\":{\"replicas\":$r,\"readyReplicas\":$r,\"availableReplicas\":$r}}" >/dev/null 2>&1 &&
        reported=$r
    fi
  fi
  sleep 1 &
  wait $!
done
