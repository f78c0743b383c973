#!/usr/bin/env bash
# The container image, for real (ctest label `image`): builds it with hack/image.sh
# (cached: a warm run rebuilds only what changed), checks it runs as non-root and that
# every binary starts, then runs the operator and a worker from the image (host
# network) against the local apiserver and Kafka until a ScheduledTask applied with
# kubectl has fired through the operator container and been run by the worker
# container.
set -euo pipefail
cd "$(dirname "$0")/../.."
STATE=${CRONLANE_STATE_DIR:-.cronlane/test}
# shellcheck disable=SC1091
. "$STATE/env"
VERSION=$(sed -nE 's/^project\(cronlane VERSION ([0-9.]+).*/\1/p' CMakeLists.txt)
IMAGE=cronlane/cronlane:$VERSION
PODMAN=(podman --runtime runc)
RUN=("${PODMAN[@]}" run --rm --network host --ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
fail() { echo "FAIL: $*" >&2; exit 1; }

hack/image.sh "$IMAGE"

uid=$("${RUN[@]}" --entrypoint id "$IMAGE" -u)
[[ "$uid" == "65532" ]] || fail "the image runs as uid $uid, want the non-root 65532"
echo "ok: runs as uid $uid"
for bin in cronlane cronlane-operator cronlane-worker; do
  out=$("${RUN[@]}" --entrypoint "$bin" "$IMAGE" --version)
  [[ "$out" == *"$VERSION"* ]] || fail "$bin --version printed: $out"
  echo "ok: $out"
done
"${RUN[@]}" --entrypoint cronlane "$IMAGE" next --schedule '0 9 * * MON' --time-zone Europe/Berlin --count 1 >/dev/null ||
  fail "cronlane next in the image (time zones missing?)"
echo "ok: cronlane next resolves Europe/Berlin (tzdata present)"

# Operator + worker containers against the local control plane.
ns="image-$$-$RANDOM"
work=$(mktemp -d)
op="cronlane-op-$ns"
wk="cronlane-wk-$ns"
cleanup() {
  "${PODMAN[@]}" rm -f "$op" "$wk" >/dev/null 2>&1 || true
  kubectl delete namespace "$ns" --wait=false >/dev/null 2>&1 || true
  rm -rf "$work"
}
trap cleanup EXIT
kubectl create namespace "$ns" >/dev/null
# A self-contained kubeconfig the non-root container user can read.
kubectl config view --raw --flatten >"$work/kubeconfig"
chmod 644 "$work/kubeconfig"
"${PODMAN[@]}" run -d --name "$op" --network host --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
  -v "$work/kubeconfig:/etc/cronlane/kubeconfig:ro" "$IMAGE" \
  --kubeconfig=/etc/cronlane/kubeconfig --namespaces="$ns" --kafka-bootstrap="$KAFKA_BOOTSTRAP" \
  --transactional-id="$ns" --checkpoint-topic="$ns.checkpoints" --results-topic="$ns.results" \
  --metrics-bind-address=0 --health-probe-bind-address=0 --log-format=text >/dev/null
"${PODMAN[@]}" run -d --name "$wk" --network host --ulimit nofile=1024:1024 --ulimit nproc=1024:1024 \
  --entrypoint cronlane-worker "$IMAGE" --kafka-bootstrap="$KAFKA_BOOTSTRAP" --topic="$ns.tasks" --group="$ns" \
  --exec='cat >/dev/null; echo "image-worker ran $CE_ID"' --metrics-bind-address=0 --health-probe-bind-address=0 \
  --log-format=text >/dev/null
kubectl apply -n "$ns" -f - >/dev/null <<YAML
apiVersion: cronlane.dev/v1alpha1
kind: ScheduledTask
metadata: {name: from-the-image}
spec:
  schedule: "*/2 * * * * *"
  target: {topic: $ns.tasks}
  payload: {hello: image}
YAML
ok=""
for _ in $(seq 1 60); do
  if "${PODMAN[@]}" logs "$wk" 2>&1 | grep -q "image-worker ran"; then ok=1; break; fi
  sleep 1
done
if [[ -z "$ok" ]]; then
  echo "--- operator"; "${PODMAN[@]}" logs "$op" 2>&1 | tail -30
  echo "--- worker"; "${PODMAN[@]}" logs "$wk" 2>&1 | tail -30
  fail "no task fired through the operator container and ran in the worker container within 60 s"
fi
echo "ok: $("${PODMAN[@]}" logs "$wk" 2>&1 | grep -m1 -o 'image-worker ran .*')"
last=$(kubectl get st from-the-image -n "$ns" -o jsonpath='{.status.lastScheduleTime}')
echo "ok: status.lastScheduleTime $last written by the operator container"

# SIGTERM: both stop cleanly (exit 0).
"${PODMAN[@]}" stop -t 30 "$op" "$wk" >/dev/null
for c in "$op" "$wk"; do
  code=$("${PODMAN[@]}" inspect "$c" --format '{{.State.ExitCode}}')
  [[ "$code" == "0" ]] || { "${PODMAN[@]}" logs "$c" 2>&1 | tail -20; fail "$c exited $code after SIGTERM"; }
done
echo "ok: operator and worker containers exit 0 on SIGTERM"
