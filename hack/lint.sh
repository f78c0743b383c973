#!/usr/bin/env bash
# clang-format check (no changes) and clang-tidy over the project's C++ sources.
set -euo pipefail
build=${1:-build}
cd "$(dirname "$0")/.."
hack/format-check.sh
hack/tidy.sh "$build"
echo "lint: clean"
