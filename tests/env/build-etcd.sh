#!/usr/bin/env bash
# Builds etcd $ETCD_VERSION from the Go module proxy into
# $CRONLANE_CACHE/etcd-$ETCD_VERSION/bin/etcd. A no-op when cached.
# (Debian's etcd-server is 3.4, which kube-apiserver 1.33 only half supports.)
set -euo pipefail
. "$(dirname "$0")/lib.sh"

out="$CRONLANE_CACHE/etcd-$ETCD_VERSION"
[[ -x "$out/bin/etcd" ]] && exit 0
mkdir -p "$out/bin"
work=$(mktemp -d "$CRONLANE_CACHE/etcd-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
# Go modules, build cache and the pinned toolchain live under the cronlane cache too.
export GOMODCACHE=${CRONLANE_GOMODCACHE:-$CRONLANE_CACHE/go/mod} GOCACHE=${CRONLANE_GOCACHE:-$CRONLANE_CACHE/go/build}
export GOFLAGS="-mod=mod -modcacherw" CGO_ENABLED=0 GOTOOLCHAIN=${ETCD_GO_TOOLCHAIN:-$TOOLS_GO_TOOLCHAIN}

# The server module's own go.mod replaces its siblings with ../ paths; a wrapper
# module pins all of them to the same release instead.
v=$ETCD_VERSION
cat >"$work/go.mod" <<MOD
module cronlane.local/etcdbuild

go 1.23

require go.etcd.io/etcd/server/v3 $v

replace (
	go.etcd.io/etcd/api/v3 => go.etcd.io/etcd/api/v3 $v
	go.etcd.io/etcd/client/pkg/v3 => go.etcd.io/etcd/client/pkg/v3 $v
	go.etcd.io/etcd/client/v2 => go.etcd.io/etcd/client/v2 v2.305.${v##*.}
	go.etcd.io/etcd/client/v3 => go.etcd.io/etcd/client/v3 $v
	go.etcd.io/etcd/pkg/v3 => go.etcd.io/etcd/pkg/v3 $v
	go.etcd.io/etcd/raft/v3 => go.etcd.io/etcd/raft/v3 $v
)
MOD
printf 'package main\nfunc main() {}\n' >"$work/main.go"
cd "$work"
run_logged "go build etcd $v (first run only)" "$out/build.log" \
  go build -trimpath -ldflags "-s -w" -o "$out/bin/etcd.tmp" go.etcd.io/etcd/server/v3
mv "$out/bin/etcd.tmp" "$out/bin/etcd"
"$out/bin/etcd" --version >&2
