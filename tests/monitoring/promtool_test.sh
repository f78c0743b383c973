#!/usr/bin/env bash
# The alerts of manifests/monitoring/prometheusrule.yaml, checked and unit-tested by
# Prometheus' own promtool: `promtool check rules` on the rule groups (the
# PrometheusRule's spec, a plain rules file), then `promtool test rules` with
# alerts_test.yaml (series in, alerts out, for every alert: firing and quiet).
#   tests/monitoring/promtool_test.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
command -v promtool >/dev/null || { echo "promtool missing: make deps (Debian package prometheus)" >&2; exit 2; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The spec of the PrometheusRule, de-indented: `groups:` and what follows.
awk 'found { sub(/^  /, ""); print } /^spec:/ { found = 1 }' manifests/monitoring/prometheusrule.yaml >"$work/rules.yaml"
grep -q '^groups:' "$work/rules.yaml" || { echo "no spec.groups in prometheusrule.yaml" >&2; exit 1; }
cp tests/monitoring/alerts_test.yaml "$work/"
promtool check rules "$work/rules.yaml"
# Every alert of the rules has a test.
missing=0
for a in $(sed -n 's/^ *- alert: //p' "$work/rules.yaml"); do
  grep -q "alertname: $a\$" "$work/alerts_test.yaml" || { echo "no test for alert $a" >&2; missing=1; }
done
((missing == 0))
promtool test rules "$work/alerts_test.yaml"
# The component renders into an overlay (kustomize refuses absolute paths to a
# component, so the overlay lives under the repository, in .cronlane/).
overlay=.cronlane/monitoring-render-$$
mkdir -p "$overlay"
trap 'rm -rf "$work" "$overlay"' EXIT
printf 'resources: [../../manifests/overlays/production]\ncomponents: [../../manifests/monitoring]\n' \
  >"$overlay/kustomization.yaml"
rendered=$(kubectl kustomize "$overlay")
python3 -m json.tool manifests/monitoring/dashboard.json >/dev/null
for kind in 'kind: PrometheusRule' 'kind: ServiceMonitor' 'name: cronlane-worker-metrics' 'name: cronlane-dashboard'; do
  grep -q "$kind" <<<"$rendered" || { echo "the monitoring component did not render $kind" >&2; exit 1; }
done
echo "manifests/monitoring renders into the production overlay"
