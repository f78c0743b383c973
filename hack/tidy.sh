#!/usr/bin/env bash
# clang-tidy (the checks of .clang-tidy, warnings as errors) over the product's
# sources, tests excluded, with the compile commands of BUILD_DIR (default build/).
# ctest `tidy` and `make lint` run it.
#   hack/tidy.sh [BUILD_DIR]
set -euo pipefail
build=${1:-build}
cd "$(dirname "$0")/.."
if [[ ! -f "$build/compile_commands.json" ]]; then
  echo "tidy: no $build/compile_commands.json (configure the build first)" >&2
  exit 2
fi
mapfile -t srcs < <(git ls-files '*.cpp' | grep -v '^tests/')
# One clang-tidy per core; a source found clean is not checked again until it, a
# header it reads, its compile command, .clang-tidy or clang-tidy changes
# (hack/tidy_cache.py; CRONLANE_TIDY_CACHE=0 checks everything).
if ! python3 hack/tidy_cache.py "$build" "${srcs[@]}"; then
  echo "tidy: findings above (.clang-tidy)" >&2
  exit 1
fi
echo "tidy: clean"
