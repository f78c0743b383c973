#!/usr/bin/env bash
# Builds what the GitOps checks run, from the Go module proxy, into
# $CRONLANE_CACHE/gitops-<key>/ and prints that directory. A no-op when cached.
#   bin/kube-score   github.com/zegl/kube-score $KUBE_SCORE_VERSION
#   bin/kstatus      tests/gitops/kstatus: sigs.k8s.io/cli-utils' kstatus on live objects
#   crds/            Flux's Kustomization and GitRepository CRDs (their releases' own
#                    config/crd/bases), so manifests/gitops/flux is checked by the
#                    API server itself (`kubectl apply --dry-run=server`)
set -euo pipefail
. "$(dirname "$0")/lib.sh"
REPO=$(cd "$ENV_DIR/../.." && pwd)

key=$( (echo "$KUBE_SCORE_VERSION $CLI_UTILS_VERSION $FLUX_KUSTOMIZE_VERSION $FLUX_SOURCE_VERSION $TOOLS_GO_TOOLCHAIN"
  cat "$REPO/tests/gitops/kstatus/main.go") | sha256sum | cut -c1-12)
out="$CRONLANE_CACHE/gitops-$key"
if [[ -x "$out/bin/kube-score" && -x "$out/bin/kstatus" && -f "$out/crds/.complete" ]]; then
  echo "$out"
  exit 0
fi
mkdir -p "$out/bin" "$out/crds"
work=$(mktemp -d "$CRONLANE_CACHE/gitops-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
export GOMODCACHE=${CRONLANE_GOMODCACHE:-$CRONLANE_CACHE/go/mod} GOCACHE=${CRONLANE_GOCACHE:-$CRONLANE_CACHE/go/build}
# The toolchain of the env's tools, or a newer one if a module asks for it.
export GOTOOLCHAIN=$TOOLS_GO_TOOLCHAIN+auto GOFLAGS="-mod=mod -modcacherw" CGO_ENABLED=0

if [[ ! -x "$out/bin/kube-score" ]]; then
  run_logged "go build kube-score $KUBE_SCORE_VERSION (first run only)" "$out/build-kube-score.log" \
    env GOBIN="$work/gobin" go install -trimpath -ldflags "-s -w" "github.com/zegl/kube-score/cmd/kube-score@$KUBE_SCORE_VERSION"
  mv "$work/gobin/kube-score" "$out/bin/kube-score"
fi

if [[ ! -x "$out/bin/kstatus" ]]; then
  mkdir -p "$work/kstatus"
  cp "$REPO/tests/gitops/kstatus/main.go" "$work/kstatus/"
  printf 'module cronlane.local/kstatus\n\ngo 1.23\n\nrequire sigs.k8s.io/cli-utils %s\n' "$CLI_UTILS_VERSION" \
    >"$work/kstatus/go.mod"
  (cd "$work/kstatus" && run_logged "go build the kstatus helper (cli-utils $CLI_UTILS_VERSION; first run only)" \
    "$out/build-kstatus.log" sh -c 'go mod tidy && go build -trimpath -ldflags "-s -w" -o kstatus .')
  mv "$work/kstatus/kstatus" "$out/bin/kstatus"
fi

if [[ ! -f "$out/crds/.complete" ]]; then
  for m in "github.com/fluxcd/kustomize-controller@$FLUX_KUSTOMIZE_VERSION kustomize.toolkit.fluxcd.io_kustomizations" \
    "github.com/fluxcd/source-controller@$FLUX_SOURCE_VERSION source.toolkit.fluxcd.io_gitrepositories"; do
    dir=$(go mod download -json "${m% *}" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",*$/\1/p')
    [[ -f "$dir/config/crd/bases/${m#* }.yaml" ]] || die "no config/crd/bases/${m#* }.yaml in ${m% *}"
    cp "$dir/config/crd/bases/${m#* }.yaml" "$out/crds/"
  done
  touch "$out/crds/.complete"
fi
echo "$out"
