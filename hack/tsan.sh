#!/usr/bin/env bash
# The thread-sanitizer suite: builds the tsan preset (build-tsan/, GCC -fsanitize=thread,
# spdlog compiled in) and runs under it
#   unit  every unit test
#   all   the unit tests, then the worker and dispatcher integration tests against
#         the local broker (the environment must be up: make env-up, or the
#         cronlane_env fixture when ctest runs this as the `tsan` test)
# usage: hack/tsan.sh [unit|all]                                   (default: all)
# Every process, the test binaries and the cronlane-worker they start, writes its
# reports to build-tsan/tsan-reports/; any report fails the run and is printed.
# Suppressions (librdkafka is not instrumented): tests/tsan/suppressions.txt.
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:-all}
case $what in unit | all) ;; *) echo "usage: hack/tsan.sh [unit|all]" >&2; exit 2 ;; esac

[[ -f build-tsan/CMakeCache.txt ]] || cmake --preset tsan >/dev/null
cmake --build --preset tsan

reports=$PWD/build-tsan/tsan-reports
rm -rf "$reports"
mkdir -p "$reports"
export TSAN_OPTIONS="log_path=$reports/tsan suppressions=$PWD/tests/tsan/suppressions.txt second_deadlock_stack=1 ${TSAN_OPTIONS:-}"

rc=0
ctest --test-dir build-tsan -L unit -j2 --output-on-failure || rc=1
if [[ $what == all ]]; then
  # -FA: the environment is already up; never start or stop it from here.
  ctest --test-dir build-tsan -FA '.*' --output-on-failure \
    -R '^(WorkerTest|KafkaFireSink|CheckpointFollower|DispatcherWithKafka)\.' || rc=1
fi

shopt -s nullglob
found=("$reports"/tsan*)
if ((${#found[@]})); then
  echo "tsan: ${#found[@]} process(es) reported; first lines of each:" >&2
  for f in "${found[@]}"; do
    echo "--- $f" >&2
    grep -E '^(WARNING|SUMMARY): ThreadSanitizer' "$f" | sort | uniq -c >&2
    head -40 "$f" >&2
  done
  rc=1
fi
((rc == 0)) && echo "tsan: no reports"
exit $rc
