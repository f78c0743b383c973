#!/usr/bin/env bash
# Fails when one of the given binaries links a shared library it must not: the
# CLI and cron_bench need the cron engine only, not Kafka (librdkafka) or HTTP
# (cpprestsdk). docs/architecture.md, "Libraries".
#   tests/links.sh BINARY...
set -euo pipefail
bad=0
for bin in "$@"; do
  needed=$(readelf -d "$bin" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p')
  if grep -E 'rdkafka|cpprest' <<< "$needed" >&2; then
    echo "links: $bin links the above (Kafka or HTTP); it must not" >&2
    bad=1
  fi
done
(( bad )) && exit 1
echo "links: $# binaries link neither librdkafka nor cpprestsdk"
