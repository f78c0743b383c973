#!/usr/bin/env bash
# Loads a podman image into the local node's containerd (the node cannot pull from a
# registry), under the name a Pod spec uses: `cronlane/cronlane:0.1.0` in a manifest
# is docker.io/cronlane/cronlane:0.1.0 to the kubelet.
#
#   tests/env/load-image.sh [--also NAME]... [IMAGE]
#     IMAGE        the podman image (default cronlane/cronlane:<version>, as `make
#                  image` builds it)
#     --also NAME  one more name for it on the node (e.g. a tag for a rollout test)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
REPO=$(cd "$ENV_DIR/../.." && pwd)
STATE=${CRONLANE_STATE_DIR:-$REPO/.cronlane}
[[ -f "$STATE/env" ]] || die "no environment in $STATE (make env-up)"
# shellcheck disable=SC1091
. "$STATE/env"
[[ -n "${CONTAINERD_ADDRESS:-}" ]] || die "the environment in $STATE has no node (CRONLANE_WITH_NODE=0)"
VERSION=$(sed -nE 's/^project\(cronlane VERSION ([0-9.]+).*/\1/p' "$REPO/CMakeLists.txt")
also=()
while [[ $# -gt 0 && $1 == --also ]]; do
  [[ $# -ge 2 ]] || die "--also needs a name"
  also+=("$2")
  shift 2
done
[[ $# -le 1 ]] || die "usage: load-image.sh [--also NAME]... [IMAGE]"
image=${1:-cronlane/cronlane:$VERSION}
# docker.io/NAME for a name without a registry, as the kubelet normalizes it.
full() { [[ $1 == */* && ${1%%/*} == *[.:]* || ${1%%/*} == localhost ]] && echo "$1" || echo "docker.io/$1"; }
ctr=(ctr --address "$CONTAINERD_ADDRESS" -n k8s.io)
id=$(podman image inspect --format '{{.Id}}' "$image") || die "no podman image $image (make image)"
tar=$(mktemp "${TMPDIR:-/tmp}/cronlane-image.XXXXXX.tar")
trap 'rm -f "$tar"' EXIT
podman save -q --format docker-archive -o "$tar" "$image" >/dev/null 2>&1 || die "podman could not save $image"
start=$SECONDS
imported=$("${ctr[@]}" images import "$tar" | awk '{print $2}' | head -1)
[[ -n "$imported" ]] || die "containerd imported nothing from $image"
for name in "$image" "${also[@]}"; do
  target=$(full "$name")
  [[ "$target" == "$imported" ]] && continue
  "${ctr[@]}" images tag --force "$imported" "$target" >/dev/null
done
log "loaded $image (${id:0:12}) into the node as $(full "$image")${also[*]:+ and ${also[*]}} in $((SECONDS - start)) s"
