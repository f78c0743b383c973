# Pinned versions of the local test environment. Sourced by the scripts here.
# Bumping one of these builds/downloads a new cache entry; old ones stay until removed.
# The control plane (kube-apiserver, kube-controller-manager, kube-scheduler) and
# kubectl: 1.36 for server-side sharded list and watch (the ShardedListAndWatch
# gate, on in this environment). kubectl comes from the same module, on PATH for
# the env scripts and `make` (Debian's 1.32 is out of skew: kubectl supports its
# own minor +-1).
KUBE_VERSION=v1.36.3
KUBE_GO_TOOLCHAIN=go1.26.8     # the machine's own Go (1.36's go.mod accepts it)
# The node (kubelet, kube-proxy): a kubelet may be 3 minors older than the
# apiserver, and 1.35+ kubelets refuse cgroup v1, which these machines have.
KUBE_NODE_VERSION=v1.33.13
KUBE_NODE_GO_TOOLCHAIN=go1.24.13
TOOLS_GO_TOOLCHAIN=go1.24.13   # etcd and the GitOps tools (unchanged, so their caches hold)
ETCD_VERSION=v3.5.21
KAFKA_VERSION=3.9.1            # org.apache.kafka:kafka_2.13 from Maven Central
KAFKA_SCALA=2.13
CRONLANE_CACHE=${CRONLANE_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/cronlane}
# GitOps checks (tests/env/build-gitops-tools.sh), from the Go module proxy:
KUBE_SCORE_VERSION=v1.20.0     # github.com/zegl/kube-score
CLI_UTILS_VERSION=v0.37.2      # sigs.k8s.io/cli-utils: kstatus, the health library of Flux and kpt
FLUX_KUSTOMIZE_VERSION=v1.10.1 # github.com/fluxcd/kustomize-controller: the Kustomization CRD
FLUX_SOURCE_VERSION=v1.10.1    # github.com/fluxcd/source-controller: the GitRepository CRD
