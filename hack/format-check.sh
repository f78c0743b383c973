#!/usr/bin/env bash
# Fails when a tracked C++ file is not clang-formatted (.clang-format); prints the
# first differences. `make format` fixes them. Run by make test (ctest: format).
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.cpp' '*.h')
if ! out=$(clang-format --dry-run -Werror "${files[@]}" 2>&1); then
  echo "$out" | head -40 >&2
  echo "format: $(grep -c 'error:' <<<"$out") place(s) differ from clang-format; run make format" >&2
  exit 1
fi
echo "format: ${#files[@]} files clean"
