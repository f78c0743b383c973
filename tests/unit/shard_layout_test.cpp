// common/hash.h: FNV-1a against the reference values, the two shard layouts, the
// range layout's bounds, and what must never move (jitter, modulo shards).
#include <gtest/gtest.h>

#include <array>
#include <cstdio>
#include <string>
#include <vector>

#include "common/hash.h"
#include "common/time.h"
#include "dispatcher/dispatcher.h"

namespace cronlane {
namespace {

TEST(Fnv1a, MatchesTheReferenceValues) {
  // FNV's published 64-bit FNV-1a values (also Go's hash/fnv New64a, which the
  // apiserver's shardRange uses).
  EXPECT_EQ(Fnv1a(""), 0xcbf29ce484222325ULL);
  EXPECT_EQ(Fnv1a("a"), 0xaf63dc4c8601ec8cULL);
  EXPECT_EQ(Fnv1a("foobar"), 0x85944171f73967e8ULL);
  EXPECT_EQ(Fnv1a("bar", Fnv1a("foo")), Fnv1a("foobar")) << "chaining";
}

TEST(ShardLayout, NamesRoundTripAndUnknownNamesAreRefused) {
  for (ShardLayout l : {ShardLayout::kRange, ShardLayout::kModulo}) EXPECT_EQ(ParseShardLayout(ShardLayoutName(l)), l);
  EXPECT_EQ(ParseShardLayout("Range"), std::nullopt);
  EXPECT_EQ(ParseShardLayout("auto"), std::nullopt);
  EXPECT_EQ(ParseShardLayout(""), std::nullopt);
}

TEST(ShardLayout, RangesTileTheHashSpaceAndAgreeWithShardOf) {
  for (int s : {2, 3, 4, 7, 16, 1000, 1024}) {
    EXPECT_EQ(ShardHashRange(0, s).first, 0u) << s;
    EXPECT_EQ(ShardHashRange(s - 1, s).last, UINT64_MAX) << s;
    for (int i = 0; i < s; ++i) {
      const HashRange r = ShardHashRange(i, s);
      ASSERT_LE(r.first, r.last) << i << "/" << s;
      if (i + 1 < s) {
        EXPECT_EQ(ShardHashRange(i + 1, s).first, r.last + 1) << "contiguous " << i << "/" << s;
      }
      EXPECT_EQ(RangeShardOf(r.first, s), i) << i << "/" << s;
      EXPECT_EQ(RangeShardOf(r.last, s), i) << i << "/" << s;
      if (r.first > 0) {
        EXPECT_EQ(RangeShardOf(r.first - 1, s), i - 1) << i << "/" << s;
      }
    }
  }
  // ceil(i·2^64/S), as an independent big-integer computation (Python) gives them.
  EXPECT_EQ(ShardHashRange(1, 3).first, 0x5555555555555556ULL);
  EXPECT_EQ(ShardHashRange(2, 3).first, 0xaaaaaaaaaaaaaaabULL);
  EXPECT_EQ(ShardHashRange(1, 4).first, 0x4000000000000000ULL);
  EXPECT_EQ(ShardHashRange(6, 7).first, 0xdb6db6db6db6db6eULL);
  EXPECT_EQ(ShardHashRange(0, 1).last, UINT64_MAX);
}

TEST(ShardLayout, ShardOfPinsBothLayouts) {
  // Expected values from an independent FNV-1a (Python): range with FNV's offset
  // basis, modulo with the legacy seed (these must never change: a modulo
  // installation's checkpoints sit where they do).
  const std::string a = "abc", b = "5f1c7a2e-3b1d-4c55-9d2a-0c6e8f1b2a3d";
  EXPECT_EQ(Fnv1a(a), 0xe71fa2190541574bULL);
  EXPECT_EQ(ShardOf(a, 16, ShardLayout::kRange), 14);
  EXPECT_EQ(ShardOf(b, 16, ShardLayout::kRange), 6);
  EXPECT_EQ(ShardOf(b, 8, ShardLayout::kRange), 3);
  EXPECT_EQ(ShardOf(a, 16, ShardLayout::kModulo), 13);
  EXPECT_EQ(ShardOf(b, 16, ShardLayout::kModulo), 5);
  EXPECT_EQ(ShardOf(a, 8, ShardLayout::kModulo), 5);
  for (ShardLayout l : {ShardLayout::kRange, ShardLayout::kModulo}) {
    EXPECT_EQ(ShardOf(a, 1, l), 0);
    EXPECT_EQ(ShardOf(a, 0, l), 0);
  }
}

TEST(ShardLayout, RangeSpreadsUuidsEvenly) {
  // 16,000 UUID-shaped UIDs over 16 range shards: each within 15% of 1,000.
  std::array<int, 16> count{};
  for (int i = 0; i < 16000; ++i) {
    char uid[40];
    std::snprintf(uid, sizeof uid, "%08x-3b1d-4c55-9d2a-%012x", i * 2654435761u, i);
    ++count[static_cast<size_t>(ShardOf(uid, 16, ShardLayout::kRange))];
  }
  for (int c : count) {
    EXPECT_GT(c, 850);
    EXPECT_LT(c, 1150);
  }
}

TEST(ShardLayout, JitterKeepsTheLegacySeed) {
  // Python: FNV-1a("1767225660", FNV-1a(id, seed 1469598103934665603)) mod 21. With
  // FNV's offset basis it would be 20 and 2: every jittered task would move.
  const Instant at = *ParseRfc3339("2026-01-01T00:01:00Z");
  EXPECT_EQ(dispatcher::JitterFor("team/report", at, 20).count(), 0);
  EXPECT_EQ(dispatcher::JitterFor("x", at, 20).count(), 11);
}

}  // namespace
}  // namespace cronlane
