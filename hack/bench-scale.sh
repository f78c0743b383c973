#!/usr/bin/env bash
# `make bench-scale`: cronlane at scale through the real apiserver and Kafka.
#
# For each N (SCALE_TASKS, default "10000 100000") and each timing (SCALE_MODES,
# default "spread same": every task due every minute, spread over the minute's 60
# seconds, or all in the same second), in a fresh local environment:
#   1. N ScheduledTasks are created with `kubectl create` of 1,000-object files, 8
#      at a time (a parallel client; no kubectl process per object);
#   2. two release-build operators start with default flags and --leader-elect: one
#      leads, the other is a warm standby;
#   3. recorded: cache sync and "every task scheduled" after start, fire lag
#      (Kafka timestamp - scheduled time, read_committed) over SCALE_SECONDS (180),
#      the leader's RSS (sampled every 5 s over that window: median, max, and the
#      last sample; and peak RSS) and CPU, API requests per minute;
#   4. failover: the leader is killed with SIGKILL; the time from the kill to the
#      standby's first fire, and every occurrence due from a minute before the kill
#      to the end is checked for missing and duplicated ids.
# Results: one line per run in $out/scale.txt, and two plots (gnuplot): the fire lag
# distribution of every run (scale-lag-cdf.png) and the leader's RSS per task over
# the window (scale-rss.png). Needs a release build and the tools.
#   hack/bench-scale.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build-release}
out=$dir/bench-results
mkdir -p "$out"
secs=${SCALE_SECONDS:-180}
export CRONLANE_STATE_DIR=$PWD/.cronlane/bench-scale
# The figures in docs/benchmarks.md were measured without a node (no kubelet, no
# kube-controller-manager caching every object): keep them comparable.
export CRONLANE_WITH_NODE=${CRONLANE_WITH_NODE:-0}
trap 'tests/env/down.sh >/dev/null 2>&1 || true; kill $(jobs -p) 2>/dev/null || true' EXIT

# shellcheck source=hack/bench-lib.sh
. hack/bench-lib.sh

for n in ${SCALE_TASKS:-10000 100000}; do
  for mode in ${SCALE_MODES:-spread same}; do
    tests/env/down.sh >/dev/null 2>&1 || true
    tests/env/up.sh >/dev/null
    # shellcheck disable=SC1091
    . "$CRONLANE_STATE_DIR/env"
    ns=scale-$mode
    topic=scale-$mode
    work=$(mktemp -d)
    kubectl create namespace "$ns" >/dev/null
    write_tasks "$n" "$mode" "$topic" "$work"
    t0=$(now)
    find "$work" -name 'tasks-*.yaml' | sort | xargs -P 8 -I{} kubectl create -n "$ns" -f {} -o name >/dev/null
    create_s=$(since "$t0")
    created=$(kubectl get scheduledtasks -n "$ns" --no-headers 2>/dev/null | wc -l)

    # Two operators, default flags, leader election.
    declare -a pids ports
    t0=$(now)
    for i in 0 1; do
      ports[$i]=$(freeport)
      "$dir/bin/cronlane-operator" --kafka-bootstrap "$KAFKA_BOOTSTRAP" --namespaces "$ns" --log-level info \
        --leader-elect --leader-election-namespace "$ns" \
        --metrics-bind-address "127.0.0.1:${ports[$i]}" --health-probe-bind-address 0 \
        --transactional-id "$ns" --checkpoint-topic "$ns.checkpoints" >"$work/operator-$i.log" 2>&1 &
      pids[$i]=$!
    done
    leader=-1
    t_sync="" t_sched=""
    while [[ -z "$t_sched" ]]; do
      sleep 0.2
      for i in 0 1; do
        kill -0 "${pids[$i]}" || { cat "$work/operator-$i.log"; exit 1; }
        [[ "$(metric "${ports[$i]}" cronlane_leader)" == "1" ]] && leader=$i
      done
      (( leader >= 0 )) || continue
      [[ -z "$t_sync" && "$(metric "${ports[$leader]}" cronlane_cache_synced)" == "1" ]] && t_sync=$(since "$t0")
      [[ "$(metric "${ports[$leader]}" cronlane_tasks_scheduled)" == "$n" ]] && t_sched=$(since "$t0")
      if [[ $(echo "$(since "$t0") > 3600" | bc) == 1 ]]; then echo "not all scheduled after an hour" >&2; exit 1; fi
    done
    standby=$((1 - leader))
    lp=${ports[$leader]}
    lpid=${pids[$leader]}

    # Fire lag over $secs seconds (from the next minute boundary on).
    sleep $((60 - 10#$(date +%S)))
    req0=$(metric "$lp" cronlane_kube_requests_total); cpu0=$(cpu_s "$lpid")
    # RSS every 5 s over the window: one sample depends on where it falls between the
    # operator's malloc trims and fire batches; the median does not.
    (t_rss=$(now); while kill -0 "$lpid" 2>/dev/null; do
       echo "$(since "$t_rss") $(awk '/VmRSS/ {print $2}' "/proc/$lpid/status")"; sleep 5; done) >"$work/rss.txt" &
    sampler=$!
    lag=$("$dir/bench/fire_bench" --bootstrap "$KAFKA_BOOTSTRAP" --consume-topic "$topic" \
      --consume-seconds "$secs" --lag-out "$work/lag.txt" 2>/dev/null)
    kill "$sampler" 2>/dev/null || true; wait "$sampler" 2>/dev/null || true
    req1=$(metric "$lp" cronlane_kube_requests_total); cpu1=$(cpu_s "$lpid")
    rss=$(awk '/VmRSS/ {print $2}' "/proc/$lpid/status")
    rss_median=$(awk '{print $2}' "$work/rss.txt" | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
    rss_max=$(awk '{print $2}' "$work/rss.txt" | sort -n | tail -1)
    awk -v n="$n" '{printf "%.1f %.0f\n", $1, $2 * 1024 / n}' "$work/rss.txt" >"$out/scale-rss-$n-$mode.dat"
    peak=$(awk '/VmHWM/ {print $2}' "/proc/$lpid/status")
    standby_cached=$(metric "${ports[$standby]}" cronlane_tasks_cached)
    standby_rss=$(awk '/VmRSS/ {print $2}' "/proc/${pids[$standby]}/status")
    api_per_min=$(echo "(${req1%.*} - ${req0%.*}) * 60 / $secs" | bc)
    cpu_per_min=$(echo "($cpu1 - $cpu0) * 60 / $secs" | bc -l)
    cp "$work/lag.txt" "$out/scale-lag-$n-$mode.txt"

    # Failover: kill -9 the leader 20 s into a minute; read from then on for 150 s.
    sleep $(((80 - 10#$(date +%S)) % 60))
    "$dir/bench/fire_bench" --bootstrap "$KAFKA_BOOTSTRAP" --consume-topic "$topic" --consume-seconds 150 \
      --ids-out "$work/ids.txt" >/dev/null 2>&1 &
    reader=$!
    sleep 1
    kill_ms=$(date +%s%3N)
    kill -9 "$lpid"
    wait "$reader" || true
    failover=$(python3 - "$work/ids.txt" "$kill_ms" "$n" "$mode" <<'PY'
import sys
path, kill_ms, n, mode = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
rows = [l.split() for l in open(path) if l.strip()]
after = [int(r[2]) for r in rows if int(r[2]) > kill_ms]
first = (min(after) - kill_ms) / 1000 if after else float("nan")
# Every occurrence scheduled from the kill's second until 15 s before the reader's
# last message must be there exactly once: the reader started reading 1 s before the
# kill, so nothing it checks was produced before it started.
end_ms = max((int(r[2]) for r in rows), default=kill_ms)
lo, hi = kill_ms // 1000, (end_ms - 15000) // 1000  # seconds, [lo, hi)
per_second = [0] * 60
for i in range(n):
    per_second[i % 60 if mode == "spread" else 0] += 1
expected = sum(per_second[t % 60] for t in range(lo, hi))
ids = [r[0] for r in rows if lo * 1000 <= int(r[1]) < hi * 1000]
unique = set(ids)
print(f"failover_first_fire_s={first:.2f} checked_s={hi - lo} expected={expected} seen={len(unique)} "
      f"missing={expected - len(unique)} duplicated={len(ids) - len(unique)}")
PY
)
    cp "$work/ids.txt" "$out/scale-failover-ids-$n-$mode.txt"
    for i in 0 1; do cp "$work/operator-$i.log" "$out/scale-operator-$n-$mode-$([[ $i == "$leader" ]] && echo killed || echo standby).log"; done
    echo "kill at $(date -u -d @"${kill_ms%???}" +%H:%M:%S).${kill_ms: -3}" >>"$out/scale-operator-$n-$mode-standby.log"
    line="tasks=$n mode=$mode create_s=$create_s created=$created cache_sync_s=$t_sync all_scheduled_s=$t_sched"
    line+=" $lag rss_kib=$rss rss_median_kib=$rss_median rss_max_kib=$rss_max"
    line+=" rss_median_per_task_b=$((rss_median * 1024 / n)) peak_rss_kib=$peak cpu_s_per_min=$cpu_per_min"
    line+=" api_requests_per_min=$api_per_min standby_cached=$standby_cached standby_rss_kib=$standby_rss $failover"
    echo "$line" | tee -a "$out/scale.txt"
    kill "${pids[$standby]}" 2>/dev/null || true
    wait 2>/dev/null || true
    rm -rf "$work"
  done
done
tests/env/down.sh >/dev/null 2>&1 || true

# Plots of every run in $out (this run's and earlier ones with the same names).
cdf="" rssplot=""
for f in "$out"/scale-lag-*.txt; do
  [[ -e "$f" ]] || continue
  name=${f##*/scale-lag-}; name=${name%.txt}
  sort -g "$f" | awk '{a[NR]=$1} END {for (i = 1; i <= NR; i += (NR > 20000 ? int(NR / 20000) : 1)) print (a[i] < 1 ? 1 : a[i]), i / NR}' \
    >"$out/scale-cdf-$name.dat"
  cdf+="\"$out/scale-cdf-$name.dat\" using 1:2 with lines lw 2 title \"${name/-/ tasks, }\", "
  [[ -e "$out/scale-rss-$name.dat" ]] &&
    rssplot+="\"$out/scale-rss-$name.dat\" using 1:2 with linespoints lw 2 title \"${name/-/ tasks, }\", "
done
if [[ -n "$cdf" ]]; then
  gnuplot <<GP
set terminal pngcairo size 900,560 font "sans,11"
set output "$out/scale-lag-cdf.png"
set title "Fire lag (Kafka timestamp - scheduled time), every occurrence over 3 min"
set logscale x
set xlabel "fire lag (ms, log; under 1 ms drawn at 1)"
set ylabel "fraction of occurrences"
set key bottom right
set grid
plot ${cdf%, }
GP
fi
if [[ -n "$rssplot" ]]; then
  gnuplot <<GP
set terminal pngcairo size 900,560 font "sans,11"
set output "$out/scale-rss.png"
set title "Leader RSS per task while firing (sampled every 5 s)"
set xlabel "seconds into the 3-minute window"
set ylabel "RSS / tasks (bytes)"
set yrange [0:*]
set key bottom right
set grid
plot 2048 with lines lw 1 dt 2 title "aim: 2 KiB", ${rssplot%, }
GP
fi
echo "results in $out/scale.txt"
