#!/usr/bin/env bash
# `make bench-shards`: several active replicas (--shards) through the real apiserver
# and Kafka, side by side in one environment.
#
# SHARD_TASKS (default 100000) ScheduledTasks, every one due every minute, spread
# over the minute's 60 seconds, are created once. Then for each replica count R in
# SHARD_REPLICAS (default "1x1 1 2 4"; 1x1 is the baseline: one replica with
# --shards 1), R release-build operators start with --shards SHARD_COUNT
# (default 16) and --leader-elect, and the script records:
#   - the time until the replicas together schedule every task (sum of
#     cronlane_tasks_scheduled) and each replica's shards;
#   - fire lag (Kafka timestamp - scheduled time, read_committed) over
#     SHARD_SECONDS (120) from the next minute boundary;
#   - per replica: RSS, peak RSS, CPU seconds per minute over that window;
#   - with R >= 2, a hand-over: one replica gets SIGTERM; from its logs and the
#     takers', per shard, the time from SIGTERM to "released" and to the taker's
#     "dispatcher started" (Lease taken, cache listed, producer fenced, checkpoints
#     restored), waiting up to 30 s for the others to hold every shard.
# A row may name another operator binary, R:PATH (e.g. "4:/tmp/operator-before 4"
# runs 4 replicas of each, one after the other, for a before/after in one run).
# Then every replica stops (SIGTERM) before the next R. The machine runs the
# apiserver, etcd, Kafka and all R replicas: figures are side by side, not
# isolated. Results: one line per R (and one per hand-over) in $out/shards.txt.
#   hack/bench-shards.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build-release}
out=$dir/bench-results
mkdir -p "$out"
n=${SHARD_TASKS:-100000}
shards=${SHARD_COUNT:-16}
secs=${SHARD_SECONDS:-120}
export CRONLANE_STATE_DIR=$PWD/.cronlane/bench-shards
# The figures in docs/benchmarks.md were measured without a node (no kubelet, no
# kube-controller-manager caching every object): keep them comparable.
export CRONLANE_WITH_NODE=${CRONLANE_WITH_NODE:-0}
trap 'tests/env/down.sh >/dev/null 2>&1 || true; kill $(jobs -p) 2>/dev/null || true' EXIT

# shellcheck source=hack/bench-lib.sh
. hack/bench-lib.sh
handoffs() { curl -s --max-time 5 "127.0.0.1:$1/metrics" | awk -v d="$2" '$1 == "cronlane_shard_handoffs_total{direction=\""d"\"}" {print $2}'; }

tests/env/down.sh >/dev/null 2>&1 || true
tests/env/up.sh >/dev/null
# shellcheck disable=SC1091
. "$CRONLANE_STATE_DIR/env"
ns=shards
topic=shards
work=$(mktemp -d)
kubectl create namespace "$ns" >/dev/null
write_tasks "$n" spread "$topic" "$work"
find "$work" -name 'tasks-*.yaml' | sort | xargs -P 8 -I{} kubectl create -n "$ns" -f {} -o name >/dev/null
echo "created $(kubectl get scheduledtasks -n "$ns" --no-headers 2>/dev/null | wc -l) tasks" >&2

# "1x1": the baseline, one replica with --shards 1. Each row is a fresh installation:
# its own checkpoint topic and transactional.id (rows of one count compare fairly).
for row in ${SHARD_REPLICAS:-1x1 1 2 4}; do
  r=${row%%:*} s=$shards bin=$dir/bin/cronlane-operator
  [[ "$row" == *:* ]] && bin=${row#*:}
  if [[ "$r" == 1x1 ]]; then r=1 s=1; fi
  tag=s$s-r$r${row#"${row%%:*}"}
  tag=${tag//[^A-Za-z0-9.-]/_}
  declare -a pids=() ports=()
  t0=$(now)
  for ((i = 0; i < r; i++)); do
    ports[$i]=$(freeport)
    "$bin" --kafka-bootstrap "$KAFKA_BOOTSTRAP" --namespaces "$ns" --log-level info \
      --log-format text --leader-elect --leader-election-namespace "$ns" --shards "$s" \
      --metrics-bind-address "127.0.0.1:${ports[$i]}" --health-probe-bind-address 0 \
      --transactional-id "$ns-$tag" --checkpoint-topic "$ns-$tag.checkpoints" >"$work/operator-$tag-$i.log" 2>&1 &
    pids[$i]=$!
  done
  t_sched=""
  while [[ -z "$t_sched" ]]; do
    sleep 0.5
    total=0 owned=0
    for ((i = 0; i < r; i++)); do
      kill -0 "${pids[$i]}" || { tail -50 "$work/operator-$tag-$i.log"; exit 1; }
      total=$((total + $(metric_sum "${ports[$i]}" cronlane_tasks_scheduled)))
      owned=$((owned + $(metric_sum "${ports[$i]}" cronlane_shards_owned)))
    done
    [[ "$total" == "$n" && ("$owned" == "$s" || "$s" == 1) ]] && t_sched=$(since "$t0")
    if [[ $(echo "$(since "$t0") > 1200" | bc) == 1 ]]; then echo "not all scheduled after 20 min" >&2; exit 1; fi
  done

  sleep $((60 - 10#$(date +%S)))
  declare -a cpu0=() cpu1=()
  for ((i = 0; i < r; i++)); do cpu0[$i]=$(cpu_s "${pids[$i]}"); done
  lag=$("$dir/bench/fire_bench" --bootstrap "$KAFKA_BOOTSTRAP" --consume-topic "$topic" \
    --consume-seconds "$secs" --lag-out "$work/lag.txt" 2>/dev/null)
  per=""
  for ((i = 0; i < r; i++)); do
    cpu1[$i]=$(cpu_s "${pids[$i]}")
    rss=$(awk '/VmRSS/ {print $2}' "/proc/${pids[$i]}/status")
    peak=$(awk '/VmHWM/ {print $2}' "/proc/${pids[$i]}/status")
    cpm=$(echo "(${cpu1[$i]} - ${cpu0[$i]}) * 60 / $secs" | bc -l)
    per+=" r$i:shards=$(metric_sum "${ports[$i]}" cronlane_shards_owned),tasks=$(metric_sum "${ports[$i]}" cronlane_tasks_scheduled),rss_kib=$rss,peak_kib=$peak,cpu_s_per_min=$(printf %.1f "$cpm"),acquired=$(handoffs "${ports[$i]}" acquired),lost=$(handoffs "${ports[$i]}" lost)"
  done
  cp "$work/lag.txt" "$out/shards-lag-$n-$tag.txt"
  line="tasks=$n shards=$s replicas=$r operator=$bin all_scheduled_s=$(printf %.1f "$t_sched") $lag$per"
  echo "$line" | tee -a "$out/shards.txt"

  if ((r >= 2)); then
    # Hand-over: SIGTERM replica 0; its shards move to the others.
    # From the logs: per moved shard, SIGTERM -> the taker's "dispatcher started".
    cat >"$work/handover.py" <<'PY'
import datetime, os, re, sys
term_ms = int(sys.argv[1])
def ms(line):
    t = datetime.datetime.strptime(line[:23], "%Y-%m-%dT%H:%M:%S.%f").replace(tzinfo=datetime.timezone.utc)
    return int(t.timestamp() * 1000)
released, started = {}, {}
for line in open(sys.argv[2]):
    m = re.search(r"shards: released (\d+) shard", line)
    if m and ms(line) >= term_ms: released["all"] = ms(line) - term_ms
for path in sys.argv[3:]:
    for line in open(path):
        m = re.search(r"shard (\d+): dispatcher started", line)
        if m and ms(line) >= term_ms: started[int(m.group(1))] = ms(line) - term_ms
vals = sorted(started.values())
print(f"handover replicas={len(sys.argv) - 2} shards_to_move={os.environ['MOVING']} shards_moved={len(vals)} released_ms={released.get('all', -1)} "
      f"first_started_ms={vals[0] if vals else -1} last_started_ms={vals[-1] if vals else -1}")
PY
    moving=$(metric_sum "${ports[0]}" cronlane_shards_owned)
    term_ms=$(date +%s%3N)
    kill -TERM "${pids[0]}"
    wait "${pids[0]}" || true
    # Until every moved shard fires again on its taker, at most 30 s.
    handover() { MOVING=$moving python3 "$work/handover.py" "$term_ms" "$work/operator-$tag-0.log" "$work"/operator-"$tag"-[1-9]*.log; }
    while (($(date +%s%3N) - term_ms < 30000)) && [[ "$(handover)" != *" shards_moved=$moving "* ]]; do sleep 0.5; done
    handover | tee -a "$out/shards.txt"
  fi
  for ((i = 0; i < r; i++)); do kill -TERM "${pids[$i]}" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for ((i = 0; i < r; i++)); do cp "$work/operator-$tag-$i.log" "$out/shards-operator-$n-$tag-$i.log"; done
done
rm -rf "$work"
tests/env/down.sh >/dev/null 2>&1 || true
echo "results in $out/shards.txt"
