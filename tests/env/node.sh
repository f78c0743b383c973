# The local environment's node: one real Kubernetes node on this machine, sourced by
# up.sh (node_up) and down.sh (node_down). It runs containerd (Debian's, with runc and
# the CNI plugins from /usr/lib/cni), kubelet, kube-proxy and kube-scheduler; up.sh
# starts kube-controller-manager with the controllers Deployments and ServiceAccount
# tokens need.
#
# Network: a bridge that this script creates ($NODE_BRIDGE, $NODE_IP/24), with
# addresses used only inside this machine. Pods get an address on it from host-local
# IPAM and two routes: the bridge's subnet and the Service range through the bridge.
# They have no default route and nothing is masqueraded, so nothing a Pod sends can
# leave the machine. The apiserver and a Kafka listener listen on $NODE_IP, so Pods
# reach the apiserver through the `kubernetes` Service (kube-proxy's rules) and Kafka
# at $NODE_IP:$NODE_KAFKA_PORT.
#
# One node per machine: kube-proxy's iptables chains, the kubelet's cgroups and the
# bridge are machine-wide. $NODE_OWNER names the state directory that owns them; a
# second env-up refuses while the owner's environment is up, and clears what a dead
# owner left behind.
#
# Everything the node creates is undone by node_down: Pods' containers and shims,
# containerd, the kubelet's mounts and cgroups, network namespaces, kube-proxy's
# iptables rules, the bridge and the IPAM state.

NODE_NAME=cronlane-node
NODE_BRIDGE=${CRONLANE_NODE_BRIDGE:-cronlane0}
NODE_IP=${CRONLANE_NODE_IP:-10.213.0.1}
NODE_SUBNET=${NODE_IP%.*}.0/24
NODE_KAFKA_PORT=9092
SERVICE_CIDR=10.0.0.0/24
NODE_OWNER=/run/cronlane-node.owner
PAUSE_IMAGE=localhost/cronlane/pause:1

# node_kubeconfig FILE SERVER USER: a kubeconfig with the client certificate
# $CERTS/USER.crt, trusting the run's CA.
node_kubeconfig() {
  local file=$1 server=$2 user=$3
  kubectl config --kubeconfig "$file" set-cluster local --server "$server" \
    --certificate-authority "$CERTS/ca.crt" --embed-certs=true >/dev/null
  kubectl config --kubeconfig "$file" set-credentials "$user" --client-certificate "$CERTS/$user.crt" \
    --client-key "$CERTS/$user.key" --embed-certs=true >/dev/null
  kubectl config --kubeconfig "$file" set-context local --cluster local --user "$user" >/dev/null
  kubectl config --kubeconfig "$file" use-context local >/dev/null
}

# node_certs: client certificates of the node's components (run inside $CERTS).
node_certs() {
  local name subj
  while read -r name subj; do
    openssl req -newkey rsa:2048 -nodes -keyout "$name.key" -out "$name.csr" -subj "$subj" 2>/dev/null
    openssl x509 -req -in "$name.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$name.crt" -days 3650 \
      -extfile client.ext 2>/dev/null
  done <<CERTS
kubelet /O=system:nodes/CN=system:node:$NODE_NAME
kube-scheduler /CN=system:kube-scheduler
kube-proxy /CN=system:kube-proxy
apiserver-kubelet-client /O=system:masters/CN=kube-apiserver-kubelet-client
CERTS
}

# node_claim STATE: makes this state directory the node's owner, or dies if another
# environment's node is up. What a dead owner left behind is cleared first. Without
# an owner file (it lives in /run, so a reboot clears it with everything it covers),
# a kubelet's cgroups, KUBE-* iptables chains or the bridge belong to something else
# on this machine: refuse rather than clear them.
node_claim() {
  local state=$1 owner=""
  [[ -f $NODE_OWNER ]] && owner=$(cat "$NODE_OWNER")
  if [[ -n "$owner" ]]; then
    if [[ "$owner" != "$state" ]] && CRONLANE_STATE_DIR=$owner "$ENV_DIR/status.sh" >/dev/null 2>&1; then
      die "another local environment with a node is up ($owner); stop it first: CRONLANE_STATE_DIR=$owner make env-down"
    fi
    log "clearing the node left behind by $owner"
    node_clear
  else
    local found=""
    ip link show "$NODE_BRIDGE" >/dev/null 2>&1 && found="the network interface $NODE_BRIDGE"
    compgen -G "/sys/fs/cgroup/*/kubepods" >/dev/null && found="a kubelet's cgroups (/sys/fs/cgroup/*/kubepods)"
    iptables-save 2>/dev/null | grep -q '^:KUBE-' && found="Kubernetes iptables chains (KUBE-*)"
    [[ -z "$found" ]] || die "this machine already has $found, not made by a cronlane environment; the local node needs them to itself"
  fi
  echo "$state" >"$NODE_OWNER"
}

# Pids of the node's daemons and of everything containerd started: processes whose
# command line names $1 (the node's directory), and containerd's shims for it.
node_pids() {
  local dir=$1 pid
  for pid in $(pgrep -f -- "$dir" || true); do
    [[ $pid == "$$" ]] || echo "$pid"
  done
}

# node_clear: undoes everything a node may have left, whoever started it. Safe to run
# when nothing is there.
node_clear() {
  local dir=""
  [[ -f $NODE_OWNER ]] && dir=$(cat "$NODE_OWNER")/node
  if [[ -n "$dir" && -d "$dir" ]]; then
    # Containers first (their shims name the containerd state dir), then the daemons.
    local pids
    pids=$(node_pids "$dir")
    [[ -n "$pids" ]] && kill -KILL $pids 2>/dev/null || true
    # Container processes are the shims' children; they die with their cgroup below.
  fi
  # Every process still in a pod cgroup (the kubelet's cgroupfs hierarchy /kubepods).
  local cg f
  for cg in /sys/fs/cgroup/*/kubepods; do
    [[ -d $cg ]] || continue
    while read -r f; do
      xargs -r kill -KILL <"$f" 2>/dev/null || true
    done < <(find "$cg" -name cgroup.procs 2>/dev/null)
  done
  # A cgroup can be removed once its killed processes are gone: retry until the
  # hierarchy is, for at most 5 s.
  for cg in /sys/fs/cgroup/*/kubepods; do
    for _ in $(seq 50); do
      [[ -d $cg ]] || break
      find "$cg" -depth -type d -exec rmdir {} + 2>/dev/null || true
      [[ -d $cg ]] && sleep 0.1
    done
  done
  if [[ -n "$dir" && -d "$dir" ]]; then
    # The kubelet's volume mounts, containerd's rootfs and netns mounts: deepest first.
    local m
    while read -r m; do umount -l "$m" 2>/dev/null || true; done < <(findmnt -rno TARGET | grep -F "$dir/" | sort -r)
  fi
  # kube-proxy's rules (its own cleanup, when its binary is there), then the chains
  # the kubelet and kube-proxy leave (KUBE-FIREWALL, KUBE-*-CANARY, KUBE-IPTABLES-HINT,
  # ...): every jump to a KUBE-* chain, then the chains.
  if [[ -x "${KUBE_NODE_BIN:-}/kube-proxy" ]] && iptables -t nat -S KUBE-SERVICES >/dev/null 2>&1; then
    "$KUBE_NODE_BIN/kube-proxy" --cleanup >/dev/null 2>&1 || true
  fi
  local ipt table rule chain
  for ipt in iptables ip6tables; do
    command -v "$ipt" >/dev/null || continue
    for table in filter nat mangle; do
      while read -r rule; do
        eval "$ipt -t $table ${rule/-A/-D}" 2>/dev/null || true
      done < <("$ipt" -t "$table" -S 2>/dev/null | grep -E -- '-j KUBE-' | grep -vE '^-A KUBE-' || true)
      local chains
      chains=$("$ipt" -t "$table" -S 2>/dev/null | awk '$1 == "-N" && $2 ~ /^KUBE-/ {print $2}')
      for chain in $chains; do "$ipt" -t "$table" -F "$chain" 2>/dev/null || true; done
      for chain in $chains; do "$ipt" -t "$table" -X "$chain" 2>/dev/null || true; done
    done
  done
  ip link show "$NODE_BRIDGE" >/dev/null 2>&1 && ip link delete "$NODE_BRIDGE" 2>/dev/null || true
  # Pods' host-side veths go with their namespaces; any left over is removed here.
  local v
  for v in $(ip -o link show type veth 2>/dev/null | awk -F': ' '{print $2}' | sed 's/@.*//' | grep '^veth' || true); do
    [[ "$(ip -o link show "$v" 2>/dev/null)" == *"master $NODE_BRIDGE"* ]] && ip link delete "$v" 2>/dev/null || true
  done
  # The kubelet's links in /var/log/containers and libcni's result cache name the pods.
  local l
  for l in /var/log/containers/*.log; do
    [[ -L $l && -n "$dir" && "$(readlink "$l")" == "$dir/"* ]] && rm -f "$l"
  done
  rm -f /var/lib/cni/results/cronlane-* 2>/dev/null || true
  # containerd 1.6 keeps its shims' sockets in /run/containerd/s whatever its state
  # dir; the directories go if nothing else uses them.
  rmdir /run/containerd/s /run/containerd/runc/k8s.io /run/containerd/runc /run/containerd 2>/dev/null || true
  if [[ -n "$dir" && -d "$dir" ]]; then rm -rf "$dir" 2>/dev/null || true; fi
  rm -f "$NODE_OWNER"
}

# node_network: the bridge Pods attach to, with the node's address.
node_network() {
  ip link add "$NODE_BRIDGE" type bridge
  ip addr add "$NODE_IP/24" dev "$NODE_BRIDGE"
  ip link set "$NODE_BRIDGE" up
}

# node_pause_image DIR: the sandbox image as a docker-archive tarball, built once
# (cached by the hash of its source) with podman from a static binary.
node_pause_image() {
  local src=$ENV_DIR/pause key tar work
  key=$(cat "$src/pause.c" "$src/Containerfile" | sha256sum | cut -c1-12)
  tar=$CRONLANE_CACHE/pause-$key.tar
  if [[ ! -s $tar ]]; then
    work=$(mktemp -d)
    gcc -static -O2 -o "$work/pause" "$src/pause.c" || die "building the pause binary failed"
    strip "$work/pause"
    cp "$src/Containerfile" "$work/"
    podman --runtime runc build --pull=never -q -t "$PAUSE_IMAGE" "$work" >/dev/null ||
      die "building the pause image failed"
    podman save -q --format docker-archive -o "$tar.tmp" "$PAUSE_IMAGE" >/dev/null 2>&1 ||
      die "saving the pause image failed"
    mv "$tar.tmp" "$tar"
    rm -rf "$work"
  fi
  echo "$tar"
}

# node_import_image ARCHIVE: imports a docker-archive into the node's containerd.
node_import_image() {
  ctr --address "$NODE_DIR/containerd.sock" -n k8s.io images import "$1" >/dev/null
}

# node_up: starts containerd, kubelet, kube-proxy and kube-scheduler (up.sh's start,
# wait_for and write_env are in scope; KCM is started by up.sh).
node_up() {
  NODE_DIR=$STATE/node
  mkdir -p "$NODE_DIR"/{cni,ipam,pod-logs,containerd,kubelet}
  # --- containerd ---
  cat >"$NODE_DIR/containerd.toml" <<TOML
version = 2
root = "$NODE_DIR/containerd/root"
state = "$NODE_DIR/containerd-state"
[grpc]
  address = "$NODE_DIR/containerd.sock"
[plugins."io.containerd.internal.v1.opt"]
  path = "$NODE_DIR/containerd/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # Writing a negative oom_score_adj is refused on these machines; runc then fails
  # with "can't get final child's PID from pipe".
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  enable_selinux = false
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "$NODE_DIR/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$NODE_DIR/cni"
    max_conf_num = 1
TOML
  cat >"$NODE_DIR/cni/10-cronlane.conflist" <<JSON
{
  "cniVersion": "0.4.0",
  "name": "cronlane",
  "plugins": [
    {
      "type": "bridge",
      "bridge": "$NODE_BRIDGE",
      "isGateway": true,
      "isDefaultGateway": false,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": "$NODE_SUBNET", "rangeStart": "${NODE_IP%.*}.10", "gateway": "$NODE_IP"}]],
        "routes": [{"dst": "$SERVICE_CIDR"}],
        "dataDir": "$NODE_DIR/ipam"
      }
    }
  ]
}
JSON
  CONTAINERD_PID=$(start containerd "$LOGS/containerd.log" containerd --config "$NODE_DIR/containerd.toml")
  write_env
  wait_for containerd "$LOGS/containerd.log" "$CONTAINERD_PID" 60 \
    ctr --address "$NODE_DIR/containerd.sock" version
  node_import_image "$(node_pause_image)"

  # --- kubelet ---
  local server="https://$NODE_IP:$API_PORT"
  node_kubeconfig "$NODE_DIR/kubelet.kubeconfig" "$server" kubelet
  node_kubeconfig "$NODE_DIR/kube-scheduler.kubeconfig" "$server" kube-scheduler
  node_kubeconfig "$NODE_DIR/kube-proxy.kubeconfig" "$server" kube-proxy
  KUBELET_HEALTHZ_PORT=$(free_port)
  cat >"$NODE_DIR/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
port: $(free_port)
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: $KUBELET_HEALTHZ_PORT
containerRuntimeEndpoint: unix://$NODE_DIR/containerd.sock
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
enforceNodeAllocatable: []
# The disk and memory are shared with the rest of the machine: evict only when
# nearly nothing is left, and never collect images (they cannot be pulled again).
evictionHard: {memory.available: "100Mi", nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%"}
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: true}
  x509: {clientCAFile: $CERTS/ca.crt}
authorization: {mode: Webhook}
podLogsDir: $NODE_DIR/pod-logs
# Pods get no DNS server: nothing resolves names for them here, and they have no
# route off the machine to reach one.
resolvConf: ""
serializeImagePulls: false
YAML
  KUBELET_PID=$(start kubelet "$LOGS/kubelet.log" "$KUBE_NODE_BIN/kubelet" --config "$NODE_DIR/kubelet.yaml" \
    --kubeconfig "$NODE_DIR/kubelet.kubeconfig" --root-dir "$NODE_DIR/kubelet" --cert-dir "$NODE_DIR/pki" \
    --hostname-override "$NODE_NAME" --node-ip "$NODE_IP")
  write_env

  # --- kube-proxy ---
  cat >"$NODE_DIR/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
mode: iptables
clientConnection: {kubeconfig: $NODE_DIR/kube-proxy.kubeconfig}
hostnameOverride: $NODE_NAME
bindAddress: $NODE_IP
healthzBindAddress: 127.0.0.1:$(free_port)
metricsBindAddress: 127.0.0.1:$(free_port)
clusterCIDR: $NODE_SUBNET
nodePortAddresses: ["$NODE_SUBNET"]
# Leave the machine's conntrack settings alone.
conntrack: {maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s}
YAML
  KUBE_PROXY_PID=$(start kube-proxy "$LOGS/kube-proxy.log" "$KUBE_NODE_BIN/kube-proxy" --config "$NODE_DIR/kube-proxy.yaml")
  write_env

  # --- kube-scheduler ---
  KUBE_SCHEDULER_PID=$(start kube-scheduler "$LOGS/kube-scheduler.log" "$KUBE_BIN/kube-scheduler" \
    --kubeconfig "$NODE_DIR/kube-scheduler.kubeconfig" \
    --authentication-kubeconfig "$NODE_DIR/kube-scheduler.kubeconfig" \
    --authorization-kubeconfig "$NODE_DIR/kube-scheduler.kubeconfig" \
    --bind-address 127.0.0.1 --secure-port 0 --leader-elect=false)
  write_env

  wait_for kubelet "$LOGS/kubelet.log" "$KUBELET_PID" 120 \
    curl -sf "http://127.0.0.1:$KUBELET_HEALTHZ_PORT/healthz"
  wait_for "node $NODE_NAME" "$LOGS/kubelet.log" "$KUBELET_PID" 120 \
    kubectl --kubeconfig "$STATE/kubeconfig" wait --for condition=Ready --timeout 2s "node/$NODE_NAME"
  wait_for kube-proxy "$LOGS/kube-proxy.log" "$KUBE_PROXY_PID" 60 \
    iptables -t nat -S KUBE-SERVICES
  # The kubelet registers the node tainted not-ready; the node lifecycle controller
  # lifts the taint once the node is Ready, and only then are Pods scheduled to it.
  wait_for "node $NODE_NAME schedulable" "$LOGS/kube-controller-manager.log" "$KCM_PID" 120 \
    test -z "$(kubectl --kubeconfig "$STATE/kubeconfig" get node "$NODE_NAME" -o jsonpath='{.spec.taints}')"
}

# node_down: stops the node and clears what it made. The scheduler and kubelet stop
# first, so nothing starts new containers; then every container is killed through
# containerd, so their shims exit and clean up after themselves; node_clear does the
# rest. down.sh's state is in scope.
node_down() {
  [[ -f $NODE_OWNER && "$(cat "$NODE_OWNER")" == "$STATE" ]] || return 0
  local sock=$STATE/node/containerd.sock pid t
  for pid in ${KUBE_SCHEDULER_PID:-} ${KUBELET_PID:-} ${KUBE_PROXY_PID:-}; do kill -TERM "$pid" 2>/dev/null || true; done
  if [[ -S $sock ]] && ctr --address "$sock" version >/dev/null 2>&1; then
    # `delete --force` kills the task and returns once it is gone.
    for t in $(ctr --address "$sock" -n k8s.io tasks ls -q 2>/dev/null || true); do
      ctr --address "$sock" -n k8s.io tasks delete --force "$t" >/dev/null 2>&1 || true
    done
  fi
  node_clear
  log "stopped the node (containerd, kubelet, kube-proxy, kube-scheduler) and cleared its network, mounts and cgroups"
}
