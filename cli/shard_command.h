#pragma once
// `cronlane shard`: which shard fires a task, with `--shards S` on the operator.
// The shard is a function of FNV-1a of the task's UID, S and the layout
// (common/hash.h), so it needs no API access: pass UIDs, e.g. from
//   kubectl get scheduledtasks -o jsonpath='{range .items[*]}{.metadata.uid}{"\n"}{end}'

#include <iosfwd>
#include <string>
#include <vector>

namespace cronlane::cli {

struct ShardOptions {
  int shards = 0;
  // The operator's layout: "range", or "modulo" for a checkpoint topic written
  // before --shard-layout existed (the operator logs the one it runs with).
  std::string layout = "range";
  std::vector<std::string> uids;                   // "-" or none: read UIDs from `in`, one per line
  std::string lease_prefix = "cronlane-operator";  // the operator's --leader-election-id
};

// Prints "<uid> <shard> <lease name>" per UID to `out`. Returns 2 with one line on
// `err` when --shards is below 1, the layout is unknown or a UID is empty; 0
// otherwise.
int RunShard(const ShardOptions& opts, std::istream& in, std::ostream& out, std::ostream& err);

}  // namespace cronlane::cli
