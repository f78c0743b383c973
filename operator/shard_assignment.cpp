#include "operator/shard_assignment.h"

#include <algorithm>
#include <map>
#include <set>

#include "common/hash.h"

namespace cronlane::op {

int MaxShardsPerReplica(int shards, int members) {
  members = std::max(1, members);
  return (shards + members - 1) / members;
}

int MinShardsPerReplica(int shards, int members) {
  return shards / std::max(1, members);
}

namespace {

// Lower is more preferred.
uint64_t Preference(const std::string& self, int shard) {
  return Fnv1a(std::to_string(shard), Fnv1a(self + "/"));
}

void SortByPreference(const std::string& self, std::vector<int>& shards) {
  std::sort(shards.begin(), shards.end(), [&](int a, int b) {
    uint64_t pa = Preference(self, a), pb = Preference(self, b);
    return pa != pb ? pa < pb : a < b;
  });
}

}  // namespace

ShardPlan PlanShards(const ShardPlanInput& in) {
  ShardPlan plan;
  const int S = static_cast<int>(in.shards.size());
  std::vector<int> mine, free;
  std::map<std::string, int> held;  // live holders' counts
  std::set<std::string> members(in.members.begin(), in.members.end());
  if (!in.leaving) members.insert(in.self);
  for (const auto& m : members) held[m] = 0;
  for (int i = 0; i < S; ++i) {
    const ShardLeaseView& v = in.shards[static_cast<size_t>(i)];
    if (std::find(in.releasing.begin(), in.releasing.end(), i) != in.releasing.end()) continue;
    if (v.holder == in.self) {
      mine.push_back(i);
      ++held[in.self];
    } else if (v.holder.empty() || v.expired) {
      if (std::find(in.blocked.begin(), in.blocked.end(), i) == in.blocked.end()) free.push_back(i);
    } else if (members.count(v.holder) != 0) {
      ++held[v.holder];
    }
  }
  SortByPreference(in.self, mine);
  if (in.leaving) {
    plan.release = mine;
    return plan;
  }
  const int n = static_cast<int>(members.size());
  const int hi = MaxShardsPerReplica(S, n);
  const int lo = MinShardsPerReplica(S, n);
  // What may be taken leaves the joining replicas their share too.
  std::set<std::string> all = members;
  for (const auto& j : in.joining) all.insert(j);
  const int hi_taking = MaxShardsPerReplica(S, static_cast<int>(all.size()));
  const int count = static_cast<int>(mine.size());
  if (count > hi) {
    // Above the ceiling: give up the least preferred at once.
    plan.release.assign(mine.end() - (count - hi), mine.end());
    return plan;
  }
  // Free shards go to the least loaded first: a replica takes one only when no
  // live replica holds fewer, so a shard released for a newcomer is not taken back.
  bool least = std::all_of(held.begin(), held.end(), [&](const auto& m) { return m.second >= count; });
  if (count < hi_taking && !free.empty() && least) {
    SortByPreference(in.self, free);
    free.resize(std::min(free.size(), static_cast<size_t>(hi_taking - count)));
    plan.acquire = free;
    return plan;
  }
  if (count > lo && free.empty()) {
    bool starving = false;
    for (const auto& [m, c] : held) starving = starving || c < lo;
    // The most loaded replica, ties to the greatest identity, releases one.
    auto most = std::max_element(held.begin(), held.end(), [](const auto& a, const auto& b) {
      return a.second != b.second ? a.second < b.second : a.first < b.first;
    });
    if (starving && most->first == in.self) plan.release.push_back(mine.back());
  }
  return plan;
}

}  // namespace cronlane::op
