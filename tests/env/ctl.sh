#!/usr/bin/env bash
# Stops or starts one server of the environment in $CRONLANE_STATE_DIR, keeping its
# data, for outage and restart tests:
#   ctl.sh kafka|kube-apiserver stop|start|status
# `start` runs exactly the command up.sh ran ($STATE/<name>-start.sh) and waits until
# the server answers again.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
REPO=$(cd "$ENV_DIR/../.." && pwd)
STATE=${CRONLANE_STATE_DIR:-$REPO/.cronlane}
ENV_FILE=$STATE/env
[[ -f $ENV_FILE ]] || die "no environment in $STATE"
# shellcheck disable=SC1090
. "$ENV_FILE"
name=${1:-}
case "$name" in
  kafka)
    pid_var=KAFKA_PID; logfile=$KAFKA_LOG
    ready() { kcat -b "$KAFKA_BOOTSTRAP" -L -m 2 >/dev/null 2>&1; } ;;
  kube-apiserver)
    pid_var=APISERVER_PID; logfile=$APISERVER_LOG
    ready() { kubectl --kubeconfig "$KUBECONFIG" get --raw /readyz >/dev/null 2>&1; } ;;
  *) die "usage: ctl.sh kafka|kube-apiserver stop|start|status" ;;
esac
pid=${!pid_var:-}
alive() { [[ -n "$pid" ]] && kill -0 "$pid" 2>/dev/null; }
case "${2:-}" in
  stop)
    alive || { log "$name is not running"; exit 0; }
    kill -TERM "$pid"
    for _ in $(seq 300); do alive || break; sleep 0.1; done
    alive && kill -KILL "$pid"
    log "$name stopped"
    ;;
  start)
    alive && { log "$name already running (pid $pid)"; exit 0; }
    setsid "$STATE/$name-start.sh" >>"$logfile" 2>&1 </dev/null &
    pid=$!
    sed -i "s/^$pid_var=.*/$pid_var=$pid/" "$ENV_FILE"
    for _ in $(seq 240); do
      ready && { log "$name started (pid $pid)"; exit 0; }
      kill -0 "$pid" 2>/dev/null || { tail -30 "$logfile" >&2; die "$name exited while starting; log: $logfile"; }
      sleep 0.5
    done
    die "$name not ready after 120 s; log: $logfile"
    ;;
  status) alive && echo "running (pid $pid)" || { echo "stopped"; exit 1; } ;;
  *) die "usage: ctl.sh kafka|kube-apiserver stop|start|status" ;;
esac
