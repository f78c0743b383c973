# Shared helpers for tests/env scripts. Source after `set -euo pipefail`.
ENV_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=versions.sh
. "$ENV_DIR/versions.sh"
# kubectl of the control plane's version (tests/env/build-kube.sh), before any other.
export PATH="$CRONLANE_CACHE/kubernetes-$KUBE_VERSION/bin:$PATH"

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# Runs a long command with its output in a log file, printing a heartbeat every
# 30 s so the user sees progress; on failure prints the log's tail.
run_logged() {
  local what=$1 logfile=$2; shift 2
  log "$what (log: $logfile)"
  local start=$SECONDS
  ( "$@" ) >"$logfile" 2>&1 &
  local pid=$!
  while kill -0 "$pid" 2>/dev/null; do
    for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -0 "$pid" 2>/dev/null && log "  ... $what: $((SECONDS - start))s"
  done
  if ! wait "$pid"; then
    tail -30 "$logfile" >&2
    die "$what failed; full log: $logfile"
  fi
  log "$what: done in $((SECONDS - start))s"
}

# Prints a free TCP port on 127.0.0.1.
free_port() {
  python3 - <<'PY'
import socket
s = socket.socket()
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
PY
}

# A Kafka cluster id: 16 random bytes, URL-safe base64 without padding. Like Kafka's
# own Uuid.randomUuid(), never one that starts with "-", which the storage tool would
# read as an option (1 in 64 random ids did). `kafka_cluster_id N` prints N of them.
kafka_cluster_id() {
  python3 - "${1:-1}" <<'PY'
import base64, sys, uuid
for _ in range(int(sys.argv[1])):
    while True:
        s = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not s.startswith("-"):
            break
    print(s)
PY
}
