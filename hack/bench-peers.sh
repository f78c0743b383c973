#!/usr/bin/env bash
# `make bench-peers`: cronlane against Kubernetes CronJob on this machine, side by side.
#
# For each N (BENCH_PEERS_N, default "100 1000 5000"), alternating, each in a fresh
# local environment (same kube-apiserver build, same etcd, same machine):
#   cronjob   N CronJobs "* * * * *" run by kube-controller-manager (controllers
#             cronjob and job, built from the same Kubernetes release as the
#             apiserver); lateness = Job creationTimestamp - the Job's
#             batch.kubernetes.io/cronjob-scheduled-timestamp (1 s resolution).
#   cronlane  N ScheduledTasks "0 * * * * *" run by cronlane-operator (release
#             build) into the local Kafka; lateness = Kafka message timestamp -
#             scheduled time (ms resolution).
# Each runs BENCH_PEERS_MINUTES (default 3) whole minutes, measured from a minute
# boundary: lateness of every occurrence, API server requests per occurrence (the
# apiserver's own apiserver_request_total), CPU seconds and peak RSS of the
# controller process. Then fire_bench: the dispatcher's transactional throughput
# against raw librdkafka with the same messages, in the same run.
#
# Output in BUILD_DIR/bench-peers/: summary.tsv, lateness-<system>-<N>.txt (seconds),
# lateness-vs-n.png and cronlane-lateness-cdf.png (gnuplot).
#
# Then, on a real node (CRONLANE_WITH_NODE=1: containerd, kubelet, kube-proxy), what
# CronJob users wait for: the scheduled time until the run's command starts. For each
# N in BENCH_PEERS_POD_N (default "100 1000"), each system in a fresh environment,
# both on the same node with the same image (`make image`, loaded into the node):
#   cronjob   N CronJobs due once, at the same minute: a Job and a Pod per run;
#             start = the container's startedAt (1 s resolution, +0.5 s).
#   cronlane  N ScheduledTasks due at that minute, run by 2 warm cronlane-worker Pods
#             (--concurrency 4, 16 partitions); start = the worker's result record
#             timestamp - its durationMs (ms resolution).
# Output: pods-summary.tsv, start-<system>-<N>.txt (seconds after the scheduled time).
# BENCH_PEERS_N="" runs only this part; BENCH_PEERS_POD_N="" skips it.
#   hack/bench-peers.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build-release}
out=$dir/bench-peers
NS=${BENCH_PEERS_N-100 1000 5000}
POD_NS=${BENCH_PEERS_POD_N-100 1000}
POD_TIMEOUT=${BENCH_PEERS_POD_TIMEOUT:-1200}
MINUTES=${BENCH_PEERS_MINUTES:-3}
export CRONLANE_STATE_DIR=$PWD/.cronlane/bench-peers
# The figures in docs/benchmarks.md were measured without a node (no kubelet, no
# kube-controller-manager caching every object): keep them comparable.
export CRONLANE_WITH_NODE=${CRONLANE_WITH_NODE:-0}
CLK=$(getconf CLK_TCK)
mkdir -p "$out"
log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
trap 'tests/env/down.sh >/dev/null 2>&1 || true' EXIT

cpu_seconds() { awk -v clk="$CLK" '{ printf "%.2f", ($14 + $15) / clk }' "/proc/$1/stat"; }
peak_rss_mib() { awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$1/status"; }
api_requests() { kubectl get --raw /metrics | awk '/^apiserver_request_total\{/ { s += $NF } END { printf "%.0f", s }'; }
# Sleeps until the next minute boundary at least 15 s away; prints its Unix time.
next_boundary() {
  local now b
  now=$(date +%s)
  b=$(((now / 60 + 1) * 60))
  ((b - now < 15)) && b=$((b + 60))
  echo "$b"
}
sleep_until() { local d; d=$(echo "$1 - $(date +%s.%N)" | bc); (($(echo "$d > 0" | bc))) && sleep "$d"; true; }
# Applies `count` generated objects of `kind` (cronjob or scheduledtask) to the bench
# namespace. Without `due`: due every minute, to the firing measurements (CronJob Pods
# would run busybox, never started: there is no node). With `due` (Unix time, UTC):
# due once, at that minute, with Pods from $IMAGE (the node part) and tasks to the
# topic bench-pods.
apply_generated() { # kind count [due]
  local work
  work=$(mktemp -d)
  python3 - "$1" "$2" "${3:-}" "$work" "${IMAGE:-busybox}" <<'PY'
import sys, time
kind, n, due, work, image = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
if due:
    t = time.gmtime(int(due))
    minutes, pull, zone = f"{t.tm_min} {t.tm_hour} * * *", ", imagePullPolicy: Never", "\n  timeZone: Etc/UTC"
    seconds, topic, sa = f"0 {t.tm_min} {t.tm_hour} * * *", "bench-pods", "\n          automountServiceAccountToken: false"
else:
    minutes, pull, zone, seconds, topic, sa = "* * * * *", "", "", "0 * * * * *", "bench-peers", ""
for start in range(0, n, 500):
    with open(f"{work}/{kind}-{start:06d}.yaml", "w") as f:
        for i in range(start, min(n, start + 500)):
            if kind == "cronjob":
                f.write(f"""---
apiVersion: batch/v1
kind: CronJob
metadata: {{name: t{i}}}
spec:
  schedule: "{minutes}"{zone}
  jobTemplate:
    spec:
      template:
        spec:
          restartPolicy: Never{sa}
          containers: [{{name: c, image: "{image}"{pull}, command: ["true"]}}]
""")
            else:
                f.write(f"""---
apiVersion: cronlane.dev/v1alpha1
kind: ScheduledTask
metadata: {{name: t{i}}}
spec:
  schedule: "{seconds}"{zone}
  target: {{topic: {topic}}}
""")
PY
  kubectl apply -n bench -f "$work" >/dev/null
  rm -rf "$work"
}

summary=$out/summary.tsv
printf 'system\tn\tminutes\texpected\tseen\tp50_s\tp90_s\tp99_s\tmax_s\tapi_requests\tapi_per_occurrence\tcpu_s\tpeak_rss_mib\n' >"$summary"
# Appends a summary line from a file of lateness values in seconds.
summarize() { # system n expected lateness_file api cpu rss
  python3 - "$@" >>"$summary" <<'PY'
import sys
system, n, expected, path, api, cpu, rss = sys.argv[1:8]
v = sorted(float(x) for x in open(path) if x.strip())
def pct(p):
    return v[min(len(v) - 1, int(p * len(v)))] if v else float("nan")
print("\t".join([system, n, sys.argv[8], expected, str(len(v)), f"{pct(0.5):.3f}", f"{pct(0.9):.3f}",
                 f"{pct(0.99):.3f}", f"{v[-1] if v else float('nan'):.3f}", api,
                 f"{int(api) / max(1, len(v)):.2f}", cpu, rss]))
PY
}

run_cronjob() {
  local n=$1
  log "cronjob n=$n: environment with kube-controller-manager (cronjob, job)"
  CRONLANE_WITH_KCM=1 CRONLANE_KCM_CONTROLLERS=cronjob,job tests/env/up.sh >/dev/null
  # shellcheck disable=SC1091
  . "$CRONLANE_STATE_DIR/env"
  kubectl create namespace bench >/dev/null
  apply_generated cronjob "$n"
  local b end cpu0 req0
  b=$(next_boundary)
  end=$((b + MINUTES * 60 - 1))
  log "cronjob n=$n: $n CronJobs applied; measuring $MINUTES min from $(date -d "@$b" +%H:%M:%S)"
  sleep_until $((b - 1))
  cpu0=$(cpu_seconds "$KCM_PID"); req0=$(api_requests)
  sleep_until "$end"
  local cpu req rss
  cpu=$(echo "$(cpu_seconds "$KCM_PID") - $cpu0" | bc); req=$(($(api_requests) - req0)); rss=$(peak_rss_mib "$KCM_PID")
  kubectl get jobs -n bench -o json | python3 -c '
import json, sys, datetime
b, minutes = int(sys.argv[1]), int(sys.argv[2])
def t(s): return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc).timestamp()
for j in json.load(sys.stdin)["items"]:
    s = j["metadata"].get("annotations", {}).get("batch.kubernetes.io/cronjob-scheduled-timestamp")
    if not s: continue
    st = t(s)
    if b <= st < b + minutes * 60:
        print(t(j["metadata"]["creationTimestamp"]) - st)
' "$b" "$MINUTES" >"$out/lateness-cronjob-$n.txt"
  summarize cronjob "$n" $((n * MINUTES)) "$out/lateness-cronjob-$n.txt" "$req" "$cpu" "$rss" "$MINUTES"
  tests/env/down.sh >/dev/null
}

run_cronlane() {
  local n=$1
  log "cronlane n=$n: environment"
  tests/env/up.sh >/dev/null
  # shellcheck disable=SC1091
  . "$CRONLANE_STATE_DIR/env"
  kubectl create namespace bench >/dev/null
  apply_generated scheduledtask "$n"
  local port
  port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
  "$dir/bin/cronlane-operator" --kafka-bootstrap "$KAFKA_BOOTSTRAP" --namespaces bench --log-level warn \
    --metrics-bind-address "127.0.0.1:$port" --health-probe-bind-address 0 \
    >"$out/operator-$n.log" 2>&1 &
  local op=$!
  until [[ "$(curl -s "127.0.0.1:$port/metrics" | awk '$1=="cronlane_tasks_scheduled" {print $2}')" == "$n" ]]; do
    sleep 0.5
    kill -0 $op 2>/dev/null || { tail "$out/operator-$n.log"; exit 1; }
  done
  local b end cpu0 req0
  b=$(next_boundary)
  end=$((b + MINUTES * 60 - 1))
  log "cronlane n=$n: $n ScheduledTasks scheduled; measuring $MINUTES min from $(date -d "@$b" +%H:%M:%S)"
  sleep_until $((b - 5))
  "$dir/bench/fire_bench" --bootstrap "$KAFKA_BOOTSTRAP" --consume-topic bench-peers \
    --consume-seconds $((end - $(date +%s))) --lag-out "$out/lag-ms-$n.txt" >/dev/null 2>&1 &
  local reader=$!
  sleep_until $((b - 1))
  cpu0=$(cpu_seconds "$op"); req0=$(api_requests)
  sleep_until "$end"
  local cpu req rss
  cpu=$(echo "$(cpu_seconds "$op") - $cpu0" | bc); req=$(($(api_requests) - req0)); rss=$(peak_rss_mib "$op")
  wait $reader || true
  awk '{ printf "%.3f\n", $1 / 1000 }' "$out/lag-ms-$n.txt" >"$out/lateness-cronlane-$n.txt"
  rm -f "$out/lag-ms-$n.txt"
  summarize cronlane "$n" $((n * MINUTES)) "$out/lateness-cronlane-$n.txt" "$req" "$cpu" "$rss" "$MINUTES"
  kill -TERM $op; wait $op || true
  tests/env/down.sh >/dev/null
}

for n in $NS; do
  run_cronjob "$n"
  run_cronlane "$n"
done

# ---- On a node: the scheduled time -> the run's command started ----
# shellcheck disable=SC1091
. tests/env/versions.sh
kafka_class() { java -Dlog4j.configuration=file:/dev/null -cp "$CRONLANE_CACHE/kafka-$KAFKA_VERSION/libs/*" "$@"; }
pod_summary=$out/pods-summary.tsv
printf 'system\tn\tseen\tp50_s\tp90_s\tp99_s\tmax_s\n' >"$pod_summary"
summarize_starts() { # system n file
  python3 - "$@" >>"$pod_summary" <<'PY'
import sys
system, n, path = sys.argv[1:4]
v = sorted(float(x) for x in open(path) if x.strip())
def pct(p):
    return v[min(len(v) - 1, int(p * len(v)))] if v else float("nan")
print("\t".join([system, n, str(len(v)), f"{pct(0.5):.3f}", f"{pct(0.9):.3f}", f"{pct(0.99):.3f}",
                 f"{v[-1] if v else float('nan'):.3f}"]))
PY
}
# The first minute boundary at least $1 seconds away.
boundary_after() { local now; now=$(date +%s); echo $((((now + $1) / 60 + 1) * 60)); }
node_env() {
  CRONLANE_WITH_NODE=1 tests/env/up.sh >/dev/null
  # shellcheck disable=SC1091
  . "$CRONLANE_STATE_DIR/env"
  tests/env/load-image.sh "$IMAGE" >/dev/null
  kubectl create namespace bench >/dev/null
}
run_cronjob_pods() {
  local n=$1 b finished=0
  log "pods: cronjob n=$n: environment with a node"
  node_env
  b=$(boundary_after 90)
  apply_generated cronjob "$n" "$b"
  log "pods: cronjob n=$n: $n CronJobs due at $(date -ud "@$b" +%H:%M:%S); waiting for their Pods (at most $POD_TIMEOUT s)"
  sleep_until "$b"
  while ((finished < n && $(date +%s) < b + POD_TIMEOUT)); do
    sleep 10
    finished=$(kubectl get pods -n bench --no-headers -o custom-columns=P:.status.phase 2>/dev/null |
      grep -c -E 'Succeeded|Failed' || true)
  done
  log "pods: cronjob n=$n: $finished Pods finished $(($(date +%s) - b)) s after the scheduled time"
  kubectl get pods -n bench -o json | python3 -c '
import json, sys, datetime
b = int(sys.argv[1])
def t(s): return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc).timestamp()
for p in json.load(sys.stdin)["items"]:
    for c in p.get("status", {}).get("containerStatuses", []):
        st = c.get("state", {})
        s = st.get("terminated", {}).get("startedAt") or st.get("running", {}).get("startedAt")
        if s: print(f"{t(s) - b + 0.5:.3f}")
' "$b" >"$out/start-cronjob-$n.txt"
  summarize_starts cronjob "$n" "$out/start-cronjob-$n.txt"
  tests/env/down.sh >/dev/null
}

run_cronlane_pods() {
  local n=$1 b port op
  log "pods: cronlane n=$n: environment with a node, 2 worker Pods"
  node_env
  for t in bench-pods:16 bench-results:1; do
    kafka_class org.apache.kafka.tools.TopicCommand --bootstrap-server "$KAFKA_BOOTSTRAP" --create \
      --topic "${t%:*}" --partitions "${t#*:}" --replication-factor 1 >/dev/null
  done
  kubectl apply -n bench -f - >/dev/null <<YAML
apiVersion: apps/v1
kind: Deployment
metadata: {name: workers}
spec:
  replicas: 2
  selector: {matchLabels: {app: workers}}
  template:
    metadata: {labels: {app: workers}}
    spec:
      automountServiceAccountToken: false
      securityContext: {runAsNonRoot: true, runAsUser: 65532, seccompProfile: {type: RuntimeDefault}}
      containers:
      - name: worker
        image: $IMAGE
        imagePullPolicy: Never
        command: [/usr/local/bin/cronlane-worker]
        args: [--kafka-bootstrap=$KAFKA_NODE_BOOTSTRAP, --topic=bench-pods, --group=bench-workers,
               --results-topic=bench-results, --concurrency=4, --exec=true, --log-level=warn]
        securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}
YAML
  kubectl rollout status deployment/workers -n bench --timeout=180s >/dev/null
  b=$(boundary_after 90)
  apply_generated scheduledtask "$n" "$b"
  port=$(python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])')
  "$dir/bin/cronlane-operator" --kafka-bootstrap "$KAFKA_BOOTSTRAP" --namespaces bench --log-level warn \
    --metrics-bind-address "127.0.0.1:$port" --health-probe-bind-address 0 \
    >"$out/operator-pods-$n.log" 2>&1 &
  op=$!
  until [[ "$(curl -s "127.0.0.1:$port/metrics" | awk '$1=="cronlane_tasks_scheduled" {print $2}')" == "$n" ]]; do
    sleep 0.5
    kill -0 $op 2>/dev/null || { tail "$out/operator-pods-$n.log"; exit 1; }
  done
  log "pods: cronlane n=$n: $n ScheduledTasks due at $(date -ud "@$b" +%H:%M:%S); reading their results (at most $POD_TIMEOUT s)"
  # One result record per run, printed as "CreateTime:<ms><TAB>{... "time": <scheduled>,
  # "durationMs": <ms> ...}": the command started at CreateTime - durationMs.
  kafka_class org.apache.kafka.tools.consumer.ConsoleConsumer --bootstrap-server "$KAFKA_BOOTSTRAP" \
    --topic bench-results --from-beginning --max-messages "$n" --timeout-ms $((POD_TIMEOUT * 1000)) \
    --property print.timestamp=true 2>"$out/consumer-pods-$n.log" | python3 -c '
import json, sys, datetime
for line in sys.stdin:
    ts, _, value = line.partition("\t")
    if not ts.startswith("CreateTime:"): continue
    r = json.loads(value)
    due = datetime.datetime.fromisoformat(r["time"].replace("Z", "+00:00")).timestamp()
    started = (int(ts[len("CreateTime:"):]) - r["durationMs"]) / 1000
    print(f"{started - due:.3f}")
' >"$out/start-cronlane-$n.txt" || true
  log "pods: cronlane n=$n: $(wc -l <"$out/start-cronlane-$n.txt") results $(($(date +%s) - b)) s after the scheduled time"
  summarize_starts cronlane "$n" "$out/start-cronlane-$n.txt"
  kill -TERM $op
  wait $op || true
  tests/env/down.sh >/dev/null
}

if [[ -n $POD_NS ]]; then
  VERSION=$(sed -nE 's/^project\(cronlane VERSION ([0-9.]+).*/\1/p' CMakeLists.txt)
  IMAGE=cronlane/cronlane:$VERSION
  log "pods: building the image $IMAGE (make image)"
  hack/image.sh "$IMAGE" >"$out/image.log" 2>&1 || { tail "$out/image.log"; exit 1; }
  for n in $POD_NS; do
    run_cronjob_pods "$n"
    run_cronlane_pods "$n"
  done
  column -t "$pod_summary"
fi
[[ -n $NS ]] || exit 0

log "fire_bench: dispatcher with transactions vs raw librdkafka, same messages"
tests/env/up.sh >/dev/null
# shellcheck disable=SC1091
. "$CRONLANE_STATE_DIR/env"
"$dir/bench/fire_bench" --bootstrap "$KAFKA_BOOTSTRAP" --tasks "${FIRE_BENCH_TASKS:-10000,100000}" --bursts 3 \
  2>/dev/null >"$out/fire_bench.txt"
tests/env/down.sh >/dev/null

# Plots.
python3 - "$summary" "$out/lateness-vs-n.dat" <<'PY'
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter="\t"))
by = {}
for r in rows:
    by.setdefault(int(r["n"]), {})[r["system"]] = r
with open(sys.argv[2], "w") as f:
    f.write("# n cronjob_p50 cronjob_p99 cronlane_p50 cronlane_p99 (seconds; CronJob values +0.5 s: 1 s resolution)\n")
    for n in sorted(by):
        c, l = by[n].get("cronjob"), by[n].get("cronlane")
        if not c or not l: continue
        f.write(f"{n} {float(c['p50_s']) + 0.5} {float(c['p99_s']) + 0.5} {max(float(l['p50_s']), 0.001)} "
                f"{max(float(l['p99_s']), 0.001)}\n")
PY
gnuplot <<GP
set terminal pngcairo size 900,560 font "sans,11"
set output "$out/lateness-vs-n.png"
set title "Lateness of each occurrence vs number of tasks due every minute"
set logscale xy
set xlabel "tasks (N)"
set ylabel "lateness (s, log)"
set xtics (100, 1000, 5000)
set key top left
set grid
plot "$out/lateness-vs-n.dat" using 1:2 with linespoints lw 2 title "CronJob p50 (+0.5 s)", \
     "" using 1:3 with linespoints lw 2 title "CronJob p99 (+0.5 s)", \
     "" using 1:4 with linespoints lw 2 title "cronlane p50", \
     "" using 1:5 with linespoints lw 2 title "cronlane p99"
GP
plots=""
for n in $NS; do
  sort -g "$out/lateness-cronlane-$n.txt" | awk -v n="$n" '{ a[NR] = $1 } END { for (i = 1; i <= NR; i++) print a[i] * 1000, i / NR }' \
    >"$out/cdf-cronlane-$n.dat"
  sort -g "$out/lateness-cronjob-$n.txt" | awk '{ a[NR] = $1 } END { for (i = 1; i <= NR; i++) print (a[i] + 0.5) * 1000, i / NR }' \
    >"$out/cdf-cronjob-$n.dat"
  plots+="\"$out/cdf-cronlane-$n.dat\" using 1:2 with lines lw 2 title \"cronlane N=$n\", "
  plots+="\"$out/cdf-cronjob-$n.dat\" using 1:2 with lines lw 2 dt 2 title \"CronJob N=$n (+0.5 s)\", "
done
gnuplot <<GP
set terminal pngcairo size 900,560 font "sans,11"
set output "$out/lateness-cdf.png"
set title "Distribution of lateness (CDF)"
set logscale x
set xlabel "lateness (ms, log)"
set ylabel "fraction of occurrences"
set key bottom right
set grid
plot ${plots%, }
GP
column -t "$summary"
echo
cat "$out/fire_bench.txt"
log "results in $out/"
