# Helpers shared by the benchmark scripts (sourced, not run).

now() { date +%s.%N; }
since() { echo "$(now) - $1" | bc; }
freeport() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
# One unlabelled sample of a metric from 127.0.0.1:PORT/metrics.
# A replica not listening yet (still starting) reads as no sample.
metric() { { curl -s --max-time 5 "127.0.0.1:$1/metrics" || true; } | awk -v m="$2" '$1==m {print $2}'; }
# The sum of every sample of a metric (all label sets), as an integer.
metric_sum() {
  { curl -s --max-time 5 "127.0.0.1:$1/metrics" || true; } |
    awk -v m="$2" 'index($1, m) == 1 && (length($1) == length(m) || substr($1, length(m) + 1, 1) == "{") {s += $2}
                   END {printf "%d\n", s}'
}
# CPU seconds (user + system) a process has used.
cpu_s() { awk '{print ($14+$15)/100}' "/proc/$1/stat"; }
# write_tasks N MODE TOPIC DIR: N ScheduledTasks t0..t<N-1>, each due every minute
# at second i%60 (MODE spread) or all at second 0 (MODE same), in files of 1,000.
write_tasks() {
  python3 - "$1" "$2" "$3" "$4" <<'PY'
import sys
n, mode, topic, work = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
chunk = 1000
for start in range(0, n, chunk):
    with open(f"{work}/tasks-{start:07d}.yaml", "w") as f:
        for i in range(start, min(n, start + chunk)):
            sec = i % 60 if mode == "spread" else 0
            f.write(f"---\napiVersion: cronlane.dev/v1alpha1\nkind: ScheduledTask\nmetadata: {{name: t{i}}}\n"
                    f"spec:\n  schedule: \"{sec} * * * * *\"\n  target: {{topic: {topic}}}\n"
                    f"  payload: {{job: report, tenant: {i % 97}}}\n")
PY
}
