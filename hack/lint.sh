#!/usr/bin/env bash
# clang-format check (no changes) and clang-tidy over the project's C++ sources.
set -euo pipefail
build=${1:-build}
cd "$(dirname "$0")/.."
hack/format-check.sh
mapfile -t srcs < <(git ls-files '*.cpp' | grep -v '^tests/')
echo "clang-tidy: ${#srcs[@]} files"
# librdkafka's RD_KAFKA_V_* macros use GNU statement expressions.
clang-tidy -p "$build" --quiet --extra-arg=-Wno-gnu-statement-expression "${srcs[@]}" 2>/dev/null
echo "lint: clean"
