#include "cli/shard_command.h"

#include <istream>
#include <optional>
#include <ostream>

#include "common/hash.h"

namespace cronlane::cli {

int RunShard(const ShardOptions& opts, std::istream& in, std::ostream& out, std::ostream& err) {
  if (opts.shards < 1) {
    err << "cronlane shard: --shards must be at least 1 (the operator's --shards)\n";
    return 2;
  }
  const std::optional<ShardLayout> layout = ParseShardLayout(opts.layout);
  if (!layout) {
    err << "cronlane shard: --shard-layout must be range or modulo (the operator's), not \"" << opts.layout << "\"\n";
    return 2;
  }
  std::vector<std::string> uids;
  for (const auto& u : opts.uids) {
    if (u != "-") uids.push_back(u);
  }
  if (opts.uids.empty() || uids.size() != opts.uids.size()) {
    for (std::string line; std::getline(in, line);) {
      while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
      if (!line.empty()) uids.push_back(line);
    }
  }
  for (const auto& uid : uids) {
    if (uid.empty()) {
      err << "cronlane shard: empty UID\n";
      return 2;
    }
  }
  for (const auto& uid : uids) {
    const int shard = ShardOf(uid, opts.shards, *layout);
    out << uid << " " << shard << " " << opts.lease_prefix << "-shard-" << shard << "\n";
  }
  return 0;
}

}  // namespace cronlane::cli
