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
kubectl get --raw /readyz >/dev/null 2>&1 || { echo "kube-apiserver: not ready"; ok=1; }
kcat -b "$KAFKA_BOOTSTRAP" -L -m 2 >/dev/null 2>&1 || { echo "kafka: not ready"; ok=1; }
exit $ok
