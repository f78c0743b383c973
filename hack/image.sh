#!/usr/bin/env bash
# `make image`: builds the cronlane image with podman + runc (there is no Docker
# engine here). FROM debian:bookworm-slim resolves to a base made locally with
# debootstrap from the Debian mirror this machine's apt already uses, cached in
# ~/.cache/cronlane/. The Dockerfile itself is plain: elsewhere `docker build .`
# builds the same image from the real debian:bookworm-slim.
#
# Usage: hack/image.sh [IMAGE]   (default cronlane/cronlane:<version>)
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=$(sed -nE 's/^project\(cronlane VERSION ([0-9.]+).*/\1/p' CMakeLists.txt)
IMAGE=${1:-cronlane/cronlane:$VERSION}
CACHE=${CRONLANE_CACHE:-$HOME/.cache/cronlane}
BASE=docker.io/library/debian:bookworm-slim
PODMAN=(podman --runtime runc)
LIMITS=(--ulimit nofile=1024:1024 --ulimit nproc=1024:1024)
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }

hack/deps.sh

# The Debian mirror apt uses: the first non-security URIs of a deb822 .sources
# file, else the first `deb` line of sources.list.
mirror() {
  local m=""
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f "$f" ]] || continue
    m=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) if ($i !~ /security/) { print $i; exit } }' "$f")
    [[ -n "$m" ]] && break
  done
  if [[ -z "$m" && -f /etc/apt/sources.list ]]; then
    m=$(awk '$1 == "deb" && $0 !~ /security/ { print ($2 ~ /^\[/ ? $3 : $2); exit }' /etc/apt/sources.list)
  fi
  [[ -n "$m" ]] || { echo "image: cannot find the Debian mirror in apt's sources" >&2; exit 1; }
  echo "$m"
}

if ! "${PODMAN[@]}" image exists "$BASE"; then
  tarball="$CACHE/debian-bookworm-minbase.tar"
  if [[ ! -s "$tarball" ]]; then
    mkdir -p "$CACHE"
    root=$(mktemp -d)
    trap 'rm -rf "$root"' EXIT
    m=$(mirror)
    log "making $BASE with debootstrap --variant=minbase from $m (about a minute)"
    debootstrap --variant=minbase bookworm "$root" "$m" >"$CACHE/debootstrap.log" 2>&1 || {
      echo "image: debootstrap failed; see $CACHE/debootstrap.log" >&2
      tail -20 "$CACHE/debootstrap.log" >&2
      exit 1
    }
    rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
    tar -C "$root" -c . >"$tarball.tmp"
    mv "$tarball.tmp" "$tarball"
  fi
  log "importing $tarball as $BASE"
  "${PODMAN[@]}" import -q "$tarball" "$BASE" >/dev/null
fi

log "building $IMAGE (podman, runc)"
start=$(date +%s)
"${PODMAN[@]}" build --pull=never --network host "${LIMITS[@]}" --build-arg "VERSION=$VERSION" \
  -t "$IMAGE" . >"$CACHE/image-build.log" 2>&1 || {
  echo "image: podman build failed; see $CACHE/image-build.log" >&2
  tail -30 "$CACHE/image-build.log" >&2
  exit 1
}
size=$("${PODMAN[@]}" image inspect "$IMAGE" --format '{{.Size}}')
log "built $IMAGE in $(($(date +%s) - start)) s, $((size / 1024 / 1024)) MiB"
