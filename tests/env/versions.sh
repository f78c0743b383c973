# Pinned versions of the local test environment. Sourced by the scripts here.
# Bumping one of these builds/downloads a new cache entry; old ones stay until removed.
KUBE_VERSION=v1.33.13          # kube-apiserver + kube-controller-manager (kubectl 1.32 supports 1.31-1.33)
KUBE_GO_TOOLCHAIN=go1.24.13    # the Go release line Kubernetes 1.33 is built with
ETCD_VERSION=v3.5.21
KAFKA_VERSION=3.9.1            # org.apache.kafka:kafka_2.13 from Maven Central
KAFKA_SCALA=2.13
CRONLANE_CACHE=${CRONLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cronlane}
# GitOps checks (tests/env/build-gitops-tools.sh), from the Go module proxy:
KUBE_SCORE_VERSION=v1.20.0     # github.com/zegl/kube-score
CLI_UTILS_VERSION=v0.37.2      # sigs.k8s.io/cli-utils: kstatus, the health library of Flux and kpt
FLUX_KUSTOMIZE_VERSION=v1.10.1 # github.com/fluxcd/kustomize-controller: the Kustomization CRD
FLUX_SOURCE_VERSION=v1.10.1    # github.com/fluxcd/source-controller: the GitRepository CRD
