#!/usr/bin/env bash
# Builds the libFuzzer target for the cron parser with clang (ASan + UBSan) and runs
# it for a bounded time: hack/fuzz.sh [SECONDS] [WORKDIR]. Exit non-zero on a crash.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
work=${2:-build/fuzz}
mkdir -p "$work/corpus"
bin=$work/cron_fuzz
srcs=(tests/fuzz/cron_fuzz.cpp dispatcher/cron.cpp common/status.cpp common/time.cpp common/zone.cpp)
if [[ ! -x $bin ]] || [[ -n $(find "${srcs[@]}" dispatcher/cron.h common/status.h common/time.h -newer "$bin" 2>/dev/null) ]]; then
  ${CCACHE:-$(command -v ccache || true)} clang++ -std=c++20 -O1 -g -fsanitize=fuzzer,address,undefined \
    -fno-sanitize-recover=undefined -DUSE_OS_TZDB=1 -I. "${srcs[@]}" -ldate-tz -lfmt -o "$bin"
fi
# Seed corpus: one file per line of tests/fuzz/seeds.txt, prefixed with zone + time bytes.
i=0
while IFS= read -r line; do
  printf '\x01\x6a\x00\x00\x00%s' "$line" >"$work/corpus/seed-$i"; i=$((i + 1))
done <tests/fuzz/seeds.txt
"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "$work/corpus" 2>"$work/fuzz.log" || {
  tail -40 "$work/fuzz.log" >&2; echo "fuzz: crash; reproducer in $work (crash-*)" >&2; exit 1; }
grep -E 'stat::number_of_executed_units|Done' "$work/fuzz.log" | tail -2
echo "fuzz: no crash in ${secs}s"
