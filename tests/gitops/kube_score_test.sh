#!/usr/bin/env bash
# kube-score on every overlay as `kubectl kustomize` renders it: no CRITICAL finding.
# A check an overlay skips on purpose says so on the object (annotation
# kube-score/ignore) next to the reason; docs/operations.md lists them all.
#   tests/gitops/kube_score_test.sh [OVERLAY_DIR...]   (default: manifests/overlays/*)
set -euo pipefail
cd "$(dirname "$0")/../.."
tools=$(tests/env/build-gitops-tools.sh)
overlays=("$@")
[[ ${#overlays[@]} -gt 0 ]] || overlays=(manifests/overlays/*/)
failed=0
for o in "${overlays[@]}"; do
  o=${o%/}
  rendered=$(mktemp)
  kubectl kustomize "$o" >"$rendered"
  # --output-format ci: one line per check and object, "[LEVEL] kind/name: message".
  report=$("$tools/bin/kube-score" score --output-format ci "$rendered" || true)
  rm -f "$rendered"
  critical=$(grep -c '^\[CRITICAL\]' <<<"$report" || true)
  warning=$(grep -c '^\[WARNING\]' <<<"$report" || true)
  ok=$(grep -c '^\[OK\]' <<<"$report" || true)
  echo "$o: $critical critical, $warning warning, $ok ok"
  if ((critical > 0 || ok == 0)); then
    grep -E '^\[(CRITICAL|WARNING)\]' <<<"$report" | sed 's/^/  /'
    ((ok == 0)) && echo "  kube-score reported no passing check: it did not read the manifests"
    failed=1
  else
    grep '^\[WARNING\]' <<<"$report" | sed 's/^/  /' || true
  fi
done
exit $failed
