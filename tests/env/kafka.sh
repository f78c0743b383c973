#!/usr/bin/env bash
# Stops or starts the Kafka broker of the environment in $CRONLANE_STATE_DIR, keeping
# its data, for broker-outage tests:  kafka.sh stop | start | status
set -euo pipefail
. "$(dirname "$0")/lib.sh"
REPO=$(cd "$ENV_DIR/../.." && pwd)
STATE=${CRONLANE_STATE_DIR:-$REPO/.cronlane}
ENV_FILE=$STATE/env
[[ -f $ENV_FILE ]] || die "no environment in $STATE"
# shellcheck disable=SC1090
. "$ENV_FILE"
alive() { [[ -n "${KAFKA_PID:-}" ]] && kill -0 "$KAFKA_PID" 2>/dev/null; }
case "${1:-}" in
  stop)
    alive || { log "kafka is not running"; exit 0; }
    kill -TERM "$KAFKA_PID"
    for _ in $(seq 300); do alive || break; sleep 0.1; done
    alive && kill -KILL "$KAFKA_PID"
    log "kafka stopped"
    ;;
  start)
    alive && { log "kafka already running (pid $KAFKA_PID)"; exit 0; }
    setsid "$STATE/kafka-start.sh" >>"$KAFKA_LOG" 2>&1 </dev/null &
    pid=$!
    sed -i "s/^KAFKA_PID=.*/KAFKA_PID=$pid/" "$ENV_FILE"
    for _ in $(seq 240); do
      kcat -b "$KAFKA_BOOTSTRAP" -L -m 2 >/dev/null 2>&1 && { log "kafka started (pid $pid)"; exit 0; }
      kill -0 "$pid" 2>/dev/null || { tail -30 "$KAFKA_LOG" >&2; die "kafka exited while starting; log: $KAFKA_LOG"; }
      sleep 0.5
    done
    die "kafka not ready after 120 s; log: $KAFKA_LOG"
    ;;
  status) alive && echo "running (pid $KAFKA_PID)" || { echo "stopped"; exit 1; } ;;
  *) die "usage: kafka.sh stop|start|status" ;;
esac
