#!/usr/bin/env bash
# Stops exactly the processes that up.sh started for $CRONLANE_STATE_DIR (by the pids
# it recorded, after checking each still is that process) and removes their tmpfs data.
#   --check   exit non-zero, printing its log, if a component had died before now
set -euo pipefail
. "$(dirname "$0")/lib.sh"
# shellcheck source=node.sh
. "$ENV_DIR/node.sh"
REPO=$(cd "$ENV_DIR/../.." && pwd)
STATE=${CRONLANE_STATE_DIR:-$REPO/.cronlane}
ENV_FILE=$STATE/env
check=0
[[ "${1:-}" == --check ]] && check=1
if [[ ! -f "$ENV_FILE" ]]; then
  log "no environment recorded in $STATE; nothing to stop"
  exit 0
fi
# shellcheck disable=SC1090
. "$ENV_FILE"

died=()
ours() {  # pid: is it alive and one of ours (its command line names our data or state dir)?
  local pid=$1
  [[ -n "$pid" && -r /proc/$pid/cmdline ]] || return 1
  tr '\0' ' ' <"/proc/$pid/cmdline" | grep -qF -e "$CRONLANE_DATA_DIR" -e "$STATE/"
}
stop() {  # name pid log
  local name=$1 pid=$2 logfile=$3
  [[ -z "$pid" ]] && return 0
  if ! ours "$pid"; then
    died+=("$name:$logfile")
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do ours "$pid" || break; sleep 0.1; done
  if ours "$pid"; then kill -KILL "$pid" 2>/dev/null || true; fi
  log "stopped $name (pid $pid)"
}
# Reverse start order: clients before the servers they talk to. The node first.
if [[ -n "${CRONLANE_NODE:-}" ]]; then
  for c in CONTAINERD KUBELET KUBE_PROXY KUBE_SCHEDULER; do
    pid_var=${c}_PID
    name=$(tr 'A-Z_' 'a-z-' <<<"$c")
    ours "${!pid_var:-}" || died+=("$name:$CRONLANE_LOG_DIR/$name.log")
  done
  KUBE_NODE_BIN=$CRONLANE_CACHE/kubernetes-$KUBE_NODE_VERSION/bin node_down
fi
stop kafka "${KAFKA_PID:-}" "${KAFKA_LOG:-}"
stop kube-controller-manager "${KCM_PID:-}" "${KCM_LOG:-}"
stop kube-apiserver "${APISERVER_PID:-}" "${APISERVER_LOG:-}"
stop etcd "${ETCD_PID:-}" "${ETCD_LOG:-}"
[[ -n "${CRONLANE_DATA_DIR:-}" && "$CRONLANE_DATA_DIR" == */cronlane-data.* ]] && rm -rf "$CRONLANE_DATA_DIR"
rm -f "$ENV_FILE"

if [[ ${#died[@]} -gt 0 ]]; then
  for d in "${died[@]}"; do
    name=${d%%:*}; logfile=${d#*:}
    log "$name had already exited before env-down; last lines of $logfile:"
    tail -30 "$logfile" >&2 || true
  done
  [[ $check == 1 ]] && die "a component of the test environment died during the run: ${died[*]%%:*}"
fi
exit 0
