#include "operator/shard_selector.h"

#include <cstdint>
#include <cstdio>

#include "common/hash.h"

namespace cronlane::op {
namespace {

std::string Hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "'0x%016llx'", static_cast<unsigned long long>(v));
  return buf;
}

}  // namespace

std::string ShardRangeSelector(const std::set<int>& held, int shards) {
  if (held.empty() || shards <= 1 || static_cast<int>(held.size()) >= shards) return "";
  std::string out;
  for (auto it = held.begin(); it != held.end();) {
    const int first = *it;
    int last = first;
    for (++it; it != held.end() && *it == last + 1; ++it) last = *it;
    if (!out.empty()) out += " || ";
    const HashRange r{ShardHashRange(first, shards).first, ShardHashRange(last, shards).last};
    const std::string end = r.last == UINT64_MAX ? "'0x10000000000000000'" : Hex(r.last + 1);
    out += "shardRange(object.metadata.uid, " + Hex(r.first) + ", " + end + ")";
  }
  return out;
}

InformerScope ShardScope(const std::set<int>& held, int shards, ShardLayout layout) {
  if (held.empty()) return {.nothing = true};
  if (shards <= 1 || static_cast<int>(held.size()) >= shards) return {};
  InformerScope scope;
  if (layout == ShardLayout::kRange) scope.query = "shardSelector=" + kube::UrlEscape(ShardRangeSelector(held, shards));
  scope.keep = [held, shards, layout](const kube::Json& object) {
    const auto& m = object["metadata"];
    auto uid = m.find("uid");
    return uid != m.end() && uid->is_string() && held.count(ShardOf(uid->get<std::string>(), shards, layout)) != 0;
  };
  return scope;
}

}  // namespace cronlane::op
