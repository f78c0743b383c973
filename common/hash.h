#pragma once
// Stable hashes: the same value in every process, build and version (std::hash is
// not), for what replicas must agree on — an occurrence's jitter, a task's shard.

#include <cstdint>
#include <optional>
#include <string_view>

namespace cronlane {

// FNV-1a, 64-bit (FNV's offset basis and prime: Go's hash/fnv New64a, so the
// Kubernetes apiserver's shardRange computes the same); `h` chains a previous
// hash in.
constexpr uint64_t kFnvOffsetBasis = 14695981039346656037ULL;
// The seed cronlane used before the range layout: the offset basis with its last
// digit missing, a slip. It stays where changing it would move what users see:
// each occurrence's jitter, and a task's shard in the modulo layout.
constexpr uint64_t kLegacyFnvSeed = 1469598103934665603ULL;
constexpr uint64_t Fnv1a(std::string_view s, uint64_t h = kFnvOffsetBasis) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

// 128-bit products for the range layout (GCC and Clang; __extension__ keeps
// -Wpedantic quiet).
__extension__ typedef unsigned __int128 Uint128;

// How a task's UID picks its shard among S:
//  - kRange: h = Fnv1a(uid); shard i holds the h in [ceil(i·2^64/S),
//    ceil((i+1)·2^64/S)), a contiguous range, so a replica can ask the apiserver
//    for its shards' tasks only (Kubernetes 1.36's shardRange selector over
//    metadata.uid hashes the same way);
//  - kModulo: Fnv1a(uid, kLegacyFnvSeed) mod S, the layout before --shard-layout
//    existed.
// Changing it moves tasks between shards: the checkpoint topic records which one
// was used (by where each task's checkpoints are), docs/architecture.md "Shards".
enum class ShardLayout { kModulo, kRange };

constexpr std::string_view ShardLayoutName(ShardLayout l) {
  return l == ShardLayout::kRange ? "range" : "modulo";
}

constexpr std::optional<ShardLayout> ParseShardLayout(std::string_view s) {
  if (s == "range") return ShardLayout::kRange;
  if (s == "modulo") return ShardLayout::kModulo;
  return std::nullopt;
}

// The range layout's shard (of `shards` >= 1) of a hash: floor(hash·S/2^64).
constexpr int RangeShardOf(uint64_t hash, int shards) {
  if (shards <= 1) return 0;
  return static_cast<int>((static_cast<Uint128>(hash) * static_cast<uint64_t>(shards)) >> 64);
}

// The shard of a task (by its UID): every replica computes the same one, so
// exactly one shard holder fires the task.
constexpr int ShardOf(std::string_view task_uid, int shards, ShardLayout layout) {
  if (shards <= 1) return 0;
  if (layout == ShardLayout::kModulo) {
    return static_cast<int>(Fnv1a(task_uid, kLegacyFnvSeed) % static_cast<uint64_t>(shards));
  }
  return RangeShardOf(Fnv1a(task_uid), shards);
}

// kRange: the hashes (Fnv1a(uid)) of shard `shard` of `shards` are [first, last] (inclusive, so
// the last shard's end, 2^64, needs no 65th bit).
struct HashRange {
  uint64_t first = 0;
  uint64_t last = 0;
};
constexpr HashRange ShardHashRange(int shard, int shards) {
  if (shards <= 1) return {0, UINT64_MAX};
  auto start = [shards](int i) -> Uint128 {  // ceil(i·2^64/S)
    const auto s = static_cast<Uint128>(shards);
    return ((static_cast<Uint128>(i) << 64) + s - 1) / s;
  };
  return {static_cast<uint64_t>(start(shard)), static_cast<uint64_t>(start(shard + 1) - 1)};
}

}  // namespace cronlane
