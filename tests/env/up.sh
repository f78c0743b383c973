#!/usr/bin/env bash
# Starts a real local Kubernetes control plane (etcd + kube-apiserver with TLS, RBAC
# and an admin client-certificate kubeconfig) and a real single-node Kafka broker
# (KRaft), all on free 127.0.0.1 ports with data on tmpfs; applies crds/; writes
# $CRONLANE_STATE_DIR/env (shell syntax) for `. .cronlane/env`.
#
#   CRONLANE_STATE_DIR   where certs, logs and the env file go (default: <repo>/.cronlane)
#   CRONLANE_WITH_NODE=0 no node: no containerd, kubelet, kube-proxy, kube-scheduler;
#                        the apiserver then listens on 127.0.0.1 only (default 1:
#                        a node, see node.sh, and the apiserver on the node's bridge)
#   CRONLANE_WITH_KCM=1  start kube-controller-manager without a node (with a node it
#                        always runs); CRONLANE_KCM_CONTROLLERS overrides its list
#
# Idempotent: if the environment in the state dir is already up, it says so and exits 0.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
# shellcheck source=node.sh
. "$ENV_DIR/node.sh"

REPO=$(cd "$ENV_DIR/../.." && pwd)
STATE=${CRONLANE_STATE_DIR:-$REPO/.cronlane}
mkdir -p "$STATE"
STATE=$(cd "$STATE" && pwd)
ENV_FILE=$STATE/env

if [[ -f "$ENV_FILE" ]]; then
  if "$ENV_DIR/status.sh" >/dev/null 2>&1; then
    log "environment already up ($ENV_FILE)"
    exit 0
  fi
  log "stale environment in $STATE: stopping what is left of it"
  "$ENV_DIR/down.sh" >/dev/null 2>&1 || true
fi

WITH_NODE=${CRONLANE_WITH_NODE:-1}
WITH_KCM=${CRONLANE_WITH_KCM:-0}
[[ $WITH_NODE == 1 ]] && WITH_KCM=1
# Tools first (cached after the first run).
"$ENV_DIR/build-etcd.sh"
"$ENV_DIR/build-kube.sh"
"$ENV_DIR/fetch-kafka.sh"
KUBE_BIN=$CRONLANE_CACHE/kubernetes-$KUBE_VERSION/bin
KUBE_NODE_BIN=$CRONLANE_CACHE/kubernetes-$KUBE_NODE_VERSION/bin
ETCD_BIN=$CRONLANE_CACHE/etcd-$ETCD_VERSION/bin/etcd
KAFKA_LIBS=$CRONLANE_CACHE/kafka-$KAFKA_VERSION/libs
command -v kubectl >/dev/null || die "kubectl is not on PATH"
command -v java >/dev/null || die "java is not on PATH (make deps installs it)"
# The node is machine-wide: claim it before anything starts (or refuse, naming the
# environment that has it).
[[ $WITH_NODE == 1 ]] && node_claim "$STATE"

# Data on tmpfs when there is one.
SHM=/dev/shm
[[ -d $SHM && -w $SHM ]] || SHM=$STATE
DATA=$(mktemp -d "$SHM/cronlane-data.XXXXXX")
LOGS=$STATE/logs
CERTS=$STATE/certs
rm -rf "$LOGS" "$CERTS"
mkdir -p "$LOGS" "$CERTS"

# With a node, the apiserver listens on the node's bridge (Pods reach it there through
# the `kubernetes` Service); clients on this machine use the same address.
API_HOST=127.0.0.1
[[ $WITH_NODE == 1 ]] && API_HOST=$NODE_IP
ETCD_PORT=$(free_port); ETCD_PEER_PORT=$(free_port)
API_PORT=$(free_port)
KAFKA_PORT=$(free_port); KAFKA_CONTROLLER_PORT=$(free_port); KAFKA_SASL_PORT=$(free_port)
KAFKA_SSL_PORT=$(free_port); KAFKA_SASL_SSL_PORT=$(free_port)
# Listeners for the Kafka security tests: SASL/SCRAM in plain text, TLS with a
# client certificate (mTLS), and SASL (PLAIN or SCRAM) over TLS. The broker's
# certificate is signed by the run's CA; credentials are made up per run.
KAFKA_SASL_USER=cronlane
KAFKA_SASL_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')
KAFKA_KEYSTORE_PASSWORD=$(head -c 18 /dev/urandom | base64 | tr -d '/+=')

# The env file grows as components start, so down.sh can always stop what did start.
write_env() {
  {
    echo "# Written by tests/env/up.sh; source it: . $ENV_FILE"
    printf 'export KUBECONFIG=%q\n' "$STATE/kubeconfig"
    printf 'export KAFKA_BOOTSTRAP=%q\n' "127.0.0.1:$KAFKA_PORT"
    printf 'export KAFKA_SASL_BOOTSTRAP=%q\n' "127.0.0.1:$KAFKA_SASL_PORT"
    printf 'export KAFKA_SASL_USER=%q\nexport KAFKA_SASL_PASSWORD=%q\n' "$KAFKA_SASL_USER" "$KAFKA_SASL_PASSWORD"
    printf 'export KAFKA_SSL_BOOTSTRAP=%q\n' "127.0.0.1:$KAFKA_SSL_PORT"
    printf 'export KAFKA_SASL_SSL_BOOTSTRAP=%q\n' "127.0.0.1:$KAFKA_SASL_SSL_PORT"
    printf 'export KAFKA_CA_FILE=%q\n' "$CERTS/ca.crt"
    printf 'export KAFKA_CLIENT_CERT_FILE=%q\nexport KAFKA_CLIENT_KEY_FILE=%q\n' "$CERTS/kafka-client.crt" "$CERTS/kafka-client.key"
    printf 'export KUBE_APISERVER_URL=%q\n' "https://$API_HOST:$API_PORT"
    printf 'export ETCD_URL=%q\n' "http://127.0.0.1:$ETCD_PORT"
    printf 'export KUBE_CA_FILE=%q\n' "$CERTS/ca.crt"
    printf 'CRONLANE_DATA_DIR=%q\n' "$DATA"
    printf 'CRONLANE_LOG_DIR=%q\n' "$LOGS"
    printf 'ETCD_PID=%q\nETCD_LOG=%q\n' "${ETCD_PID:-}" "$LOGS/etcd.log"
    printf 'APISERVER_PID=%q\nAPISERVER_LOG=%q\n' "${APISERVER_PID:-}" "$LOGS/kube-apiserver.log"
    printf 'KCM_PID=%q\nKCM_LOG=%q\n' "${KCM_PID:-}" "$LOGS/kube-controller-manager.log"
    printf 'KAFKA_PID=%q\nKAFKA_LOG=%q\n' "${KAFKA_PID:-}" "$LOGS/kafka.log"
    if [[ $WITH_NODE == 1 ]]; then
      echo "# The node (tests/env/node.sh): Pods reach Kafka at KAFKA_NODE_BOOTSTRAP."
      printf 'export CRONLANE_NODE=%q\nexport NODE_IP=%q\n' "$NODE_NAME" "$NODE_IP"
      printf 'export KAFKA_NODE_BOOTSTRAP=%q\n' "$NODE_IP:$NODE_KAFKA_PORT"
      printf 'export CONTAINERD_ADDRESS=%q\n' "$STATE/node/containerd.sock"
      local c
      for c in CONTAINERD KUBELET KUBE_PROXY KUBE_SCHEDULER; do
        local pid_var=${c}_PID
        printf '%s_PID=%q\n' "$c" "${!pid_var:-}"
      done
    fi
  } >"$ENV_FILE.tmp"
  mv "$ENV_FILE.tmp" "$ENV_FILE"
}
write_env

fail_component() {  # name logfile why
  log "FAILED: $1 $3; last lines of its log ($2):"
  tail -40 "$2" >&2 || true
  "$ENV_DIR/down.sh" >/dev/null 2>&1 || true
  die "$1 did not start; log: $2"
}

# start NAME LOG CMD...: starts a daemon in its own session, records its pid.
start() {
  local name=$1 logfile=$2; shift 2
  setsid "$@" >"$logfile" 2>&1 </dev/null &
  echo $!
}

wait_for() {  # name logfile pid timeout_s check-cmd...
  local name=$1 logfile=$2 pid=$3 timeout=$4; shift 4
  local start=$SECONDS
  until "$@" >/dev/null 2>&1; do
    kill -0 "$pid" 2>/dev/null || fail_component "$name" "$logfile" "exited during start-up"
    (( SECONDS - start > timeout )) && fail_component "$name" "$logfile" "was not ready after ${timeout}s"
    sleep 0.5
  done
  log "$name ready in $((SECONDS - start))s"
}

if [[ $WITH_NODE == 1 ]]; then
  node_network
fi

# --- certificates ----------------------------------------------------------------
log "making certificates in $CERTS"
(
  cd "$CERTS"
  openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 3650 -subj "/CN=cronlane-local-ca" 2>/dev/null
  cat >serving.ext <<EXT
subjectAltName=DNS:localhost,IP:127.0.0.1,IP:$API_HOST,IP:10.0.0.1,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc
extendedKeyUsage=serverAuth
EXT
  openssl req -newkey rsa:2048 -nodes -keyout serving.key -out serving.csr -subj "/CN=kube-apiserver" 2>/dev/null
  openssl x509 -req -in serving.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out serving.crt -days 3650 -extfile serving.ext 2>/dev/null
  printf 'extendedKeyUsage=clientAuth\n' >client.ext
  openssl req -newkey rsa:2048 -nodes -keyout admin.key -out admin.csr -subj "/O=system:masters/CN=cronlane-admin" 2>/dev/null
  openssl x509 -req -in admin.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out admin.crt -days 3650 -extfile client.ext 2>/dev/null
  # kube-controller-manager runs its controllers under this one identity (no
  # per-controller service accounts here), so it needs the rights of all of them.
  openssl req -newkey rsa:2048 -nodes -keyout kcm.key -out kcm.csr -subj "/O=system:masters/CN=system:kube-controller-manager" 2>/dev/null
  openssl x509 -req -in kcm.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out kcm.crt -days 3650 -extfile client.ext 2>/dev/null
  # Kafka's TLS listeners: a serving certificate in a PKCS#12 keystore (what the
  # JVM reads best), and a client certificate for the mTLS listener.
  openssl req -newkey rsa:2048 -nodes -keyout kafka.key -out kafka.csr -subj "/CN=kafka" 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >kafka.ext
  openssl x509 -req -in kafka.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out kafka.crt -days 3650 -extfile kafka.ext 2>/dev/null
  openssl pkcs12 -export -in kafka.crt -inkey kafka.key -name kafka -out kafka.p12 -passout "pass:$KAFKA_KEYSTORE_PASSWORD"
  openssl req -newkey rsa:2048 -nodes -keyout kafka-client.key -out kafka-client.csr -subj "/CN=cronlane-kafka-client" 2>/dev/null
  openssl x509 -req -in kafka-client.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out kafka-client.crt -days 3650 -extfile client.ext 2>/dev/null
  openssl genrsa -out sa.key 2048 2>/dev/null
  [[ $WITH_NODE == 1 ]] && node_certs
  openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
)

# --- etcd ------------------------------------------------------------------------
ETCD_PID=$(start etcd "$LOGS/etcd.log" "$ETCD_BIN" --name cronlane --data-dir "$DATA/etcd" \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster "cronlane=http://127.0.0.1:$ETCD_PEER_PORT" --unsafe-no-fsync --log-level warn \
  --quota-backend-bytes 4294967296)
write_env
wait_for etcd "$LOGS/etcd.log" "$ETCD_PID" 60 curl -sf "http://127.0.0.1:$ETCD_PORT/health"

# --- kube-apiserver --------------------------------------------------------------
# tests/env/ctl.sh restarts the apiserver with exactly this command (restart tests).
APISERVER_CMD=("$KUBE_BIN/kube-apiserver" \
  --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
  --bind-address "$API_HOST" --advertise-address "$API_HOST" --secure-port "$API_PORT" \
  --tls-cert-file "$CERTS/serving.crt" --tls-private-key-file "$CERTS/serving.key" \
  --client-ca-file "$CERTS/ca.crt" \
  --service-account-issuer "https://$API_HOST:$API_PORT/" \
  --service-account-key-file "$CERTS/sa.pub" --service-account-signing-key-file "$CERTS/sa.key" \
  --service-cluster-ip-range 10.0.0.0/24 --allow-privileged=true \
  --enable-priority-and-fairness=false \
  --feature-gates ShardedListAndWatch=true \
  --event-ttl 1h)
if [[ $WITH_NODE == 1 ]]; then
  # A real node: the Node authorizer and NodeRestriction for the kubelet, Pods'
  # ServiceAccount tokens, the `kubernetes` Service's endpoint, logs and exec.
  APISERVER_CMD+=(--authorization-mode Node,RBAC --enable-admission-plugins NodeRestriction \
    --kubelet-client-certificate "$CERTS/apiserver-kubelet-client.crt" \
    --kubelet-client-key "$CERTS/apiserver-kubelet-client.key" \
    --kubelet-preferred-address-types InternalIP)
else
  APISERVER_CMD+=(--authorization-mode RBAC --disable-admission-plugins ServiceAccount \
    --endpoint-reconciler-type none)
fi
{
  echo '#!/usr/bin/env bash'
  printf 'exec'; printf ' %q' "${APISERVER_CMD[@]}"; echo
} >"$STATE/kube-apiserver-start.sh"
chmod +x "$STATE/kube-apiserver-start.sh"
APISERVER_PID=$(start kube-apiserver "$LOGS/kube-apiserver.log" "$STATE/kube-apiserver-start.sh")
write_env
wait_for kube-apiserver "$LOGS/kube-apiserver.log" "$APISERVER_PID" 120 \
  curl -sf --cacert "$CERTS/ca.crt" --cert "$CERTS/admin.crt" --key "$CERTS/admin.key" \
  "https://$API_HOST:$API_PORT/readyz"

KC=$STATE/kubeconfig
kubectl config --kubeconfig "$KC" set-cluster cronlane-local --server "https://$API_HOST:$API_PORT" \
  --certificate-authority "$CERTS/ca.crt" --embed-certs=true >/dev/null
kubectl config --kubeconfig "$KC" set-credentials cronlane-admin \
  --client-certificate "$CERTS/admin.crt" --client-key "$CERTS/admin.key" --embed-certs=true >/dev/null
kubectl config --kubeconfig "$KC" set-context cronlane-local --cluster cronlane-local --user cronlane-admin \
  --namespace default >/dev/null
kubectl config --kubeconfig "$KC" use-context cronlane-local >/dev/null

if [[ $WITH_KCM == 1 ]]; then
  KCM_KC=$STATE/kcm.kubeconfig
  kubectl config --kubeconfig "$KCM_KC" set-cluster local --server "https://$API_HOST:$API_PORT" \
    --certificate-authority "$CERTS/ca.crt" --embed-certs=true >/dev/null
  kubectl config --kubeconfig "$KCM_KC" set-credentials kcm --client-certificate "$CERTS/kcm.crt" \
    --client-key "$CERTS/kcm.key" --embed-certs=true >/dev/null
  kubectl config --kubeconfig "$KCM_KC" set-context local --cluster local --user kcm >/dev/null
  kubectl config --kubeconfig "$KCM_KC" use-context local >/dev/null
  KCM_PID=$(start kube-controller-manager "$LOGS/kube-controller-manager.log" "$KUBE_BIN/kube-controller-manager" \
    --kubeconfig "$KCM_KC" --authentication-kubeconfig "$KCM_KC" --authorization-kubeconfig "$KCM_KC" \
    --bind-address 127.0.0.1 --secure-port 0 --leader-elect=false \
    --service-account-private-key-file "$CERTS/sa.key" --root-ca-file "$CERTS/ca.crt" \
    --use-service-account-credentials=false \
    --controllers "${CRONLANE_KCM_CONTROLLERS:-cronjob-controller,job-controller,replicaset-controller,deployment-controller,garbage-collector-controller,namespace-controller,serviceaccount-controller,serviceaccount-token-controller,root-ca-certificate-publisher-controller,node-lifecycle-controller,endpointslice-controller,endpointslice-mirroring-controller,pod-garbage-collector-controller}")
  write_env
  wait_for kube-controller-manager "$LOGS/kube-controller-manager.log" "$KCM_PID" 60 \
    grep -qE "Started controller|Caches are synced" "$LOGS/kube-controller-manager.log"  # 1.33 | 1.36 logs
fi

# --- the node --------------------------------------------------------------------
[[ $WITH_NODE == 1 ]] && node_up

# --- Kafka -----------------------------------------------------------------------
KDIR=$DATA/kafka
mkdir -p "$KDIR/logs"
# With a node, one more plain-text listener on the node's bridge, for Pods.
KAFKA_NODE_LISTENER=""
[[ $WITH_NODE == 1 ]] && KAFKA_NODE_LISTENER=",NODE://$NODE_IP:$NODE_KAFKA_PORT"
cat >"$STATE/kafka.properties" <<PROPS
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$KAFKA_CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,CONTROLLER://127.0.0.1:$KAFKA_CONTROLLER_PORT,SASL_PLAINTEXT://127.0.0.1:$KAFKA_SASL_PORT,SSL://127.0.0.1:$KAFKA_SSL_PORT,SASL_SSL://127.0.0.1:$KAFKA_SASL_SSL_PORT$KAFKA_NODE_LISTENER
advertised.listeners=PLAINTEXT://127.0.0.1:$KAFKA_PORT,SASL_PLAINTEXT://127.0.0.1:$KAFKA_SASL_PORT,SSL://127.0.0.1:$KAFKA_SSL_PORT,SASL_SSL://127.0.0.1:$KAFKA_SASL_SSL_PORT$KAFKA_NODE_LISTENER
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT,SSL:SSL,SASL_SSL:SASL_SSL,NODE:PLAINTEXT
listener.name.sasl_plaintext.sasl.enabled.mechanisms=SCRAM-SHA-256,SCRAM-SHA-512
listener.name.sasl_plaintext.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
ssl.keystore.type=PKCS12
ssl.keystore.location=$CERTS/kafka.p12
ssl.keystore.password=$KAFKA_KEYSTORE_PASSWORD
ssl.truststore.type=PEM
ssl.truststore.location=$CERTS/ca.crt
listener.name.ssl.ssl.client.auth=required
listener.name.sasl_ssl.sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-512
listener.name.sasl_ssl.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_$KAFKA_SASL_USER="$KAFKA_SASL_PASSWORD";
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;
log.dirs=$KDIR/logs
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
log.retention.hours=24
transaction.abort.timed.out.transaction.cleanup.interval.ms=5000
transaction.remove.expired.transaction.cleanup.interval.ms=60000
PROPS
cat >"$STATE/kafka-log4j.properties" <<'L4J'
log4j.rootLogger=WARN, stdout
log4j.appender.stdout=org.apache.log4j.ConsoleAppender
log4j.appender.stdout.layout=org.apache.log4j.PatternLayout
log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.server.KafkaServer=INFO
log4j.logger.kafka.server.BrokerServer=INFO
L4J
# The tests' broker compiles with C1 only: it starts sooner, and the tests send it
# little. Benchmarks set CRONLANE_KAFKA_FULL_JIT=1 so the broker runs at full speed.
KAFKA_JIT=(-XX:TieredStopAtLevel=1)
[[ ${CRONLANE_KAFKA_FULL_JIT:-0} == 1 ]] && KAFKA_JIT=()
KAFKA_JAVA=(java -Xms256m -Xmx512m -XX:+UseG1GC "${KAFKA_JIT[@]}" -Djava.awt.headless=true
  "-Dlog4j.configuration=file:$STATE/kafka-log4j.properties" -cp "$KAFKA_LIBS/*")
"${KAFKA_JAVA[@]}" kafka.tools.StorageTool format -t "$(kafka_cluster_id)" \
  -c "$STATE/kafka.properties" \
  --add-scram "SCRAM-SHA-256=[name=$KAFKA_SASL_USER,password=$KAFKA_SASL_PASSWORD]" \
  --add-scram "SCRAM-SHA-512=[name=$KAFKA_SASL_USER,password=$KAFKA_SASL_PASSWORD]" \
  >"$LOGS/kafka-format.log" 2>&1 || fail_component kafka "$LOGS/kafka-format.log" "storage format failed"
# tests/env/ctl.sh restarts the broker with exactly this command (outage tests).
{
  echo '#!/usr/bin/env bash'
  printf 'exec'; printf ' %q' "${KAFKA_JAVA[@]}" kafka.Kafka "$STATE/kafka.properties"; echo
} >"$STATE/kafka-start.sh"
chmod +x "$STATE/kafka-start.sh"
KAFKA_PID=$(start kafka "$LOGS/kafka.log" "$STATE/kafka-start.sh")
write_env
wait_for kafka "$LOGS/kafka.log" "$KAFKA_PID" 120 kcat -b "127.0.0.1:$KAFKA_PORT" -L -m 2

# --- CRDs ------------------------------------------------------------------------
if [[ -f "$REPO/crds/kustomization.yaml" ]]; then
  kubectl --kubeconfig "$KC" apply -k "$REPO/crds/" >"$LOGS/crds.log" 2>&1 || {
    cat "$LOGS/crds.log" >&2; "$ENV_DIR/down.sh" >/dev/null 2>&1 || true; die "applying crds/ failed"; }
  kubectl --kubeconfig "$KC" wait --for condition=established --timeout=60s crd --all >/dev/null
  log "CRDs from crds/ applied and established"
fi

if [[ $WITH_NODE == 1 ]]; then
  log "environment up: . $ENV_FILE  (kube-apiserver $API_HOST:$API_PORT, kafka 127.0.0.1:$KAFKA_PORT and $NODE_IP:$NODE_KAFKA_PORT, node $NODE_NAME)"
else
  log "environment up: . $ENV_FILE  (kube-apiserver :$API_PORT, kafka :$KAFKA_PORT)"
fi
