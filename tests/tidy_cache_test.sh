#!/usr/bin/env bash
# hack/tidy_cache.py on a two-file project in a temporary directory, with its own
# cache: a clean source is checked once, then remembered; the same project in
# another directory (a second clone) reuses the verdict; a finding in a header it
# includes makes it checked again and fails; a removed NOLINT comment is a change.
#   tests/tidy_cache_test.sh SOURCE_DIR
set -euo pipefail
src=$(cd "${1:?usage: tidy_cache_test.sh SOURCE_DIR}" && pwd)
tmp=$(mktemp -d)
# The second clone sorts after /usr, the first before it (as /tmp/cl and /work/main
# do): the key must not depend on where system headers fall among the project's.
other=$(mktemp -d -p /var/tmp)
trap 'rm -rf "$tmp" "$other"' EXIT
export CRONLANE_CACHE=$tmp/cache
unset CRONLANE_TIDY_CACHE

make_project() { # DIR: common/a.cpp including common/h.h, and its compile command
  mkdir -p "$1/common" "$1/build"
  cp "$src/.clang-tidy" "$1/"
  printf '#pragma once\n#include <string>\ninline size_t Size(const std::string& s) { return s.size(); }\n' \
    >"$1/common/h.h"
  printf '#include "common/h.h"\nsize_t Twice(const std::string& s) { return 2 * Size(s); }\n' >"$1/common/a.cpp"
  printf '[{"directory": "%s/build", "file": "%s/common/a.cpp", "command": "g++ -std=c++20 -I%s -o a.o -c %s/common/a.cpp"}]\n' \
    "$1" "$1" "$1" "$1" >"$1/build/compile_commands.json"
}
# run DIR EXPECTED_EXIT EXPECTED_LINE: tidy_cache.py in DIR; its summary must match
run() {
  local out rc=0
  out=$(cd "$1" && python3 "$src/hack/tidy_cache.py" build common/a.cpp 2>&1) || rc=$?
  if [[ $rc != "$2" ]] || ! grep -q "$3" <<<"$out"; then
    echo "tidy_cache_test: in $1 expected exit $2 and \"$3\", got exit $rc:" >&2
    echo "$out" >&2
    exit 1
  fi
}

make_project "$tmp/one"
run "$tmp/one" 0 "0 of 1 unchanged"
run "$tmp/one" 0 "1 of 1 unchanged"
make_project "$other/another-clone"
run "$other/another-clone" 0 "1 of 1 unchanged"

# A finding in the header (an argument copied but only read): checked again, fails.
printf 'inline size_t Copy(std::string s) { return s.size(); }\n' >>"$tmp/one/common/h.h"
run "$tmp/one" 1 "0 of 1 unchanged"
# Silenced with NOLINT: clean again, and remembered.
sed -i 's|^inline size_t Copy.*|& // NOLINT|' "$tmp/one/common/h.h"
run "$tmp/one" 0 "0 of 1 unchanged"
run "$tmp/one" 0 "1 of 1 unchanged"
# The NOLINT removed, nothing else changed: checked again, fails.
sed -i 's| // NOLINT$||' "$tmp/one/common/h.h"
run "$tmp/one" 1 "0 of 1 unchanged"
echo "tidy_cache_test: passed"
