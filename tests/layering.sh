#!/usr/bin/env bash
# Fails when a source file includes something its directory must never depend on.
# The rules are the ```layering block of docs/architecture.md ("DIR/ never PREFIX
# ..."): one source of truth for the doc and the check.
#   tests/layering.sh [REPO_ROOT]
set -euo pipefail
root=${1:-$(cd "$(dirname "$0")/.." && pwd)}
doc=$root/docs/architecture.md
rules=$(awk '/^```layering/ {on=1; next} /^```/ {on=0} on && NF' "$doc")
if [[ -z "$rules" ]]; then
  echo "layering: no \`\`\`layering block in $doc" >&2
  exit 2
fi
bad=0
while read -r dir never rest; do
  if [[ "$never" != "never" || -z "$rest" ]]; then
    echo "layering: cannot read the rule '$dir $never $rest' in $doc" >&2
    exit 2
  fi
  if [[ ! -d "$root/$dir" ]]; then
    echo "layering: rule for $dir, which does not exist" >&2
    exit 2
  fi
  for prefix in $rest; do
    # #include "prefix..." or #include <prefix...>
    while IFS= read -r hit; do
      [[ -z "$hit" ]] && continue
      echo "layering: ${hit#"$root/"}: $dir must never include $prefix (docs/architecture.md)" >&2
      bad=1
    done < <(grep -rnE "^[[:space:]]*#[[:space:]]*include[[:space:]]*[\"<]${prefix//./\\.}" \
               --include='*.h' --include='*.cpp' --include='*.hpp' "$root/$dir" || true)
  done
done <<< "$rules"
if (( bad )); then exit 1; fi
echo "layering: $(wc -l <<< "$rules") rules hold"
