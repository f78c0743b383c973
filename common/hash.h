#pragma once
// Stable hashes: the same value in every process, build and version (std::hash is
// not), for what replicas must agree on — an occurrence's jitter, a task's shard.

#include <cstdint>
#include <string_view>

namespace cronlane {

// FNV-1a, 64-bit; `h` chains a previous hash in.
inline uint64_t Fnv1a(std::string_view s, uint64_t h = 1469598103934665603ULL) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

// The shard of a task (by its UID) among `shards` (>= 1): every replica computes
// the same one, so exactly one shard holder fires the task.
inline int ShardOf(std::string_view task_uid, int shards) {
  if (shards <= 1) return 0;
  return static_cast<int>(Fnv1a(task_uid) % static_cast<uint64_t>(shards));
}

}  // namespace cronlane
