#!/usr/bin/env bash
# clang-tidy (the checks of .clang-tidy, warnings as errors) over the product's
# sources, tests excluded, with the compile commands of BUILD_DIR (default build/),
# one clang-tidy per core. ctest `tidy` and `make lint` run it.
#   hack/tidy.sh [BUILD_DIR]
set -euo pipefail
build=${1:-build}
cd "$(dirname "$0")/.."
if [[ ! -f "$build/compile_commands.json" ]]; then
  echo "tidy: no $build/compile_commands.json (configure the build first)" >&2
  exit 2
fi
mapfile -t srcs < <(git ls-files '*.cpp' | grep -v '^tests/')
jobs=$(nproc)
echo "clang-tidy: ${#srcs[@]} files, $jobs at a time"
# librdkafka's RD_KAFKA_V_* macros use GNU statement expressions. clang-tidy's
# "N warnings generated" chatter goes to stderr; findings go to stdout.
if ! printf '%s\n' "${srcs[@]}" |
  xargs -P "$jobs" -n 2 clang-tidy -p "$build" --quiet --extra-arg=-Wno-gnu-statement-expression 2>/dev/null; then
  echo "tidy: findings above (.clang-tidy)" >&2
  exit 1
fi
echo "tidy: clean"
