#!/usr/bin/env bash
# Builds the control plane (kube-apiserver, kube-controller-manager, kube-scheduler)
# and kubectl of Kubernetes $KUBE_VERSION, and the node (kubelet, kube-proxy) of
# $KUBE_NODE_VERSION, from the Go module proxy into
# $CRONLANE_CACHE/kubernetes-<version>/bin. A no-op when cached.
# `build-kube.sh VERSION TOOLCHAIN BINARY...` builds just those binaries.
#
# k8s.io/kubernetes cannot be `go install`ed: its go.mod requires the staging modules
# at v0.0.0 and replaces them with local paths. We build from a throwaway wrapper
# module that requires k8s.io/kubernetes and replaces each staging module with its
# published v0.X.Y release (kubernetes/kubernetes#79384).
set -euo pipefail
. "$(dirname "$0")/lib.sh"

if [[ $# -lt 3 ]]; then
  "$0" "$KUBE_VERSION" "$KUBE_GO_TOOLCHAIN" kube-apiserver kube-controller-manager kube-scheduler kubectl
  exec "$0" "$KUBE_NODE_VERSION" "$KUBE_NODE_GO_TOOLCHAIN" kubelet kube-proxy
fi
KUBE_VERSION=$1 KUBE_GO_TOOLCHAIN=$2
shift 2
bins=("$@")
out="$CRONLANE_CACHE/kubernetes-$KUBE_VERSION"
have_all=1
for b in "${bins[@]}"; do [[ -x "$out/bin/$b" ]] || have_all=0; done
[[ $have_all == 1 ]] && exit 0

mkdir -p "$out/bin"
work=$(mktemp -d "$CRONLANE_CACHE/kube-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
# Go modules, build cache and the pinned toolchain live under the cronlane cache too.
export GOMODCACHE=${CRONLANE_GOMODCACHE:-$CRONLANE_CACHE/go/mod} GOCACHE=${CRONLANE_GOCACHE:-$CRONLANE_CACHE/go/build}
export GOTOOLCHAIN=$KUBE_GO_TOOLCHAIN GOFLAGS="-mod=mod -modcacherw" CGO_ENABLED=0

staging_version="v0.${KUBE_VERSION#v1.}"
log "building Kubernetes $KUBE_VERSION with $KUBE_GO_TOOLCHAIN (first run only; several minutes)"
run_logged "download k8s.io/kubernetes $KUBE_VERSION" "$out/download.log" \
  go mod download -json "k8s.io/kubernetes@$KUBE_VERSION"
gomod=$(sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",*$/\1/p' "$out/download.log" | head -1)
[[ -f "$gomod" ]] || die "could not find go.mod of k8s.io/kubernetes@$KUBE_VERSION"
mapfile -t staging < <(sed -n 's#^[[:space:]]*\(k8s\.io/[a-z0-9-]*\) => \./staging/.*#\1#p' "$gomod" | sort -u)
[[ ${#staging[@]} -gt 20 ]] || die "found only ${#staging[@]} staging modules in $gomod"
go_line=$(sed -n 's/^go \([0-9.]*\)$/\1/p' "$gomod")
godebug_line=$(sed -n 's/^godebug default=\(.*\)$/\1/p' "$gomod")

{
  echo "module cronlane.local/kubebuild"
  echo
  echo "go ${go_line}"
  [[ -n "$godebug_line" ]] && echo "godebug default=${godebug_line}"
  echo
  echo "require k8s.io/kubernetes $KUBE_VERSION"
  echo
  for m in "${staging[@]}"; do echo "replace $m => $m $staging_version"; done
} >"$work/go.mod"
printf 'package main\nfunc main() {}\n' >"$work/main.go"

minor=${KUBE_VERSION#v1.}; minor=${minor%%.*}
ldflags="-s -w"
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldflags+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
  ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done
cd "$work"
for b in "${bins[@]}"; do
  [[ -x "$out/bin/$b" ]] && continue
  run_logged "go build $b" "$out/build-$b.log" \
    go build -trimpath -tags=selinux,notest -ldflags "$ldflags" -o "$out/bin/$b.tmp" "k8s.io/kubernetes/cmd/$b"
  mv "$out/bin/$b.tmp" "$out/bin/$b"
done
"$out/bin/${bins[0]}" --version >&2
