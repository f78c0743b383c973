#!/usr/bin/env bash
# Clang's thread-safety analysis over the product (operator, dispatcher, worker, CLI,
# common): builds the `clang` preset (build-clang/, -Wthread-safety, warnings as
# errors, tests and benchmarks off). First it checks that the analysis runs at all:
# tests/thread_safety/must_not_compile.cpp breaks the rules on purpose and must be
# refused with thread-safety errors.
set -euo pipefail
cd "$(dirname "$0")/.."

flags=(-std=c++20 -fsyntax-only -Wthread-safety -Werror -I.)
if out=$(clang++ "${flags[@]}" tests/thread_safety/must_not_compile.cpp 2>&1); then
  echo "thread-safety: tests/thread_safety/must_not_compile.cpp compiled: the analysis is not running" >&2
  exit 1
fi
for want in "reading variable 'n_' requires holding mutex 'mu_'" "calling function 'BumpLocked' requires holding mutex 'mu_'"; do
  if ! grep -qF "$want" <<<"$out"; then
    echo "thread-safety: expected \"$want\" from must_not_compile.cpp; clang said:" >&2
    echo "$out" >&2
    exit 1
  fi
done

[[ -f build-clang/CMakeCache.txt ]] || cmake --preset clang >/dev/null
cmake --build --preset clang
echo "thread-safety: the clang build with -Wthread-safety is clean"
