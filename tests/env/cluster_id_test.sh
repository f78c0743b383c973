#!/usr/bin/env bash
# The Kafka cluster ids the environment makes: 5,000 of them, none starting with "-"
# (with a plain random id about 78 would), each 22 URL-safe base64 characters.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
ids=$(kafka_cluster_id 5000)
[[ $(wc -l <<<"$ids") -eq 5000 ]] || die "expected 5000 ids"
if grep -q '^-' <<<"$ids"; then die "$(grep -c '^-' <<<"$ids") ids start with '-'"; fi
if grep -qvE '^[A-Za-z0-9_-]{22}$' <<<"$ids"; then die "malformed id: $(grep -vE '^[A-Za-z0-9_-]{22}$' <<<"$ids" | head -1)"; fi
echo "5000 cluster ids, none starting with '-'"
