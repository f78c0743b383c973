#!/usr/bin/env bash
# Builds a libFuzzer target with clang (ASan + UBSan) and runs it for a bounded time:
#   hack/fuzz.sh TARGET [SECONDS] [WORKDIR]     TARGET: cron cloudevent task_result
#                                               object_json kubeconfig, or all
# Each source is compiled to its own object (through ccache when present), so a
# rebuild after a change compiles only what changed. Seeds: tests/fuzz/seeds/TARGET/
# (cron: one expression per line of tests/fuzz/seeds/cron.txt). Exit non-zero on a
# crash, leaving the reproducer (crash-*) in WORKDIR/TARGET.
set -euo pipefail
cd "$(dirname "$0")/.."
target=${1:?usage: hack/fuzz.sh TARGET [SECONDS] [WORKDIR]}
secs=${2:-30}
work=${3:-build/fuzz}

if [[ $target == all ]]; then
  for t in cron cloudevent task_result object_json kubeconfig; do "$0" "$t" "$secs" "$work"; done
  exit 0
fi

libs=()
case $target in
  cron) srcs=(dispatcher/cron.cpp common/status.cpp common/time.cpp common/zone.cpp); libs=(-ldate-tz) ;;
  cloudevent) srcs=(common/cloudevent.cpp common/task_result.cpp common/status.cpp) ;;
  task_result) srcs=(common/task_result.cpp common/status.cpp) ;;
  object_json)
    srcs=(operator/scheduled_task.cpp operator/run_history.cpp operator/object_fields.cpp operator/workerpool.cpp operator/kube/client.cpp operator/kube/list_stream.cpp dispatcher/task.cpp dispatcher/fire_times.cpp
      dispatcher/cron.cpp common/clock.cpp common/status.cpp common/time.cpp common/zone.cpp common/task_result.cpp)
    libs=(-ldate-tz -lsimdjson) ;;
  kubeconfig) srcs=(operator/kube/config.cpp common/status.cpp); libs=(-lyaml-cpp) ;;
  *) echo "fuzz: unknown target $target" >&2; exit 2 ;;
esac
srcs=("tests/fuzz/${target}_fuzz.cpp" "${srcs[@]}")

dir=$work/$target
mkdir -p "$dir/obj" "$dir/corpus"
ccache=${CCACHE-$(command -v ccache || true)}
cxx=($ccache clang++ -std=c++20 -O1 -g -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined
  -DUSE_OS_TZDB=1 -D_TURN_OFF_PLATFORM_STRING -I.)
objs=()
for s in "${srcs[@]}"; do
  o=$dir/obj/$(echo "$s" | tr / _).o
  # ccache knows what changed; without it, recompile when the source or any
  # project header is newer than the object.
  if [[ -n $ccache || ! -f $o || -n $(find "$s" common dispatcher operator -newer "$o" -name '*.[ch]*' | head -1) ]]; then
    "${cxx[@]}" -c "$s" -o "$o"
  fi
  objs+=("$o")
done
bin=$dir/${target}_fuzz
clang++ -fsanitize=fuzzer,address,undefined "${objs[@]}" "${libs[@]}" -lfmt -o "$bin"

if [[ $target == cron ]]; then
  # One file per line, prefixed with zone + time bytes.
  i=0
  while IFS= read -r line; do
    printf '\x01\x6a\x00\x00\x00%s' "$line" >"$dir/corpus/seed-$i"; i=$((i + 1))
  done <tests/fuzz/seeds/cron.txt
else
  cp tests/fuzz/seeds/"$target"/* "$dir/corpus/"
fi
dict=()
[[ -f tests/fuzz/$target.dict ]] && dict=(-dict="tests/fuzz/$target.dict")
"$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 "${dict[@]}" \
  -artifact_prefix="$dir/" "$dir/corpus" 2>"$dir/fuzz.log" || {
  tail -40 "$dir/fuzz.log" >&2; echo "fuzz $target: crash; reproducer in $dir (crash-*)" >&2; exit 1; }
grep -E 'stat::number_of_executed_units' "$dir/fuzz.log" | tail -1
echo "fuzz $target: no crash in ${secs}s"
