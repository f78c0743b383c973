// operator/shard_selector.h: the shardRange selector for held range shards.
#include "operator/shard_selector.h"

#include <gtest/gtest.h>

namespace cronlane::op {
namespace {

TEST(ShardRangeSelector, OneRangePerRunOfAdjacentShards) {
  EXPECT_EQ(ShardRangeSelector({1}, 4), "shardRange(object.metadata.uid, '0x4000000000000000', '0x8000000000000000')");
  EXPECT_EQ(ShardRangeSelector({0, 1}, 4),
            "shardRange(object.metadata.uid, '0x0000000000000000', '0x8000000000000000')")
      << "adjacent shards are one range";
  EXPECT_EQ(ShardRangeSelector({0, 2}, 4),
            "shardRange(object.metadata.uid, '0x0000000000000000', '0x4000000000000000') || "
            "shardRange(object.metadata.uid, '0x8000000000000000', '0xc000000000000000')");
  EXPECT_EQ(ShardRangeSelector({3}, 4), "shardRange(object.metadata.uid, '0xc000000000000000', '0x10000000000000000')")
      << "the last shard ends at 2^64";
  // ceil(i·2^64/3): the ends are the next shard's starts.
  EXPECT_EQ(ShardRangeSelector({1}, 3), "shardRange(object.metadata.uid, '0x5555555555555556', '0xaaaaaaaaaaaaaaab')");
  EXPECT_EQ(ShardRangeSelector({0, 2}, 3),
            "shardRange(object.metadata.uid, '0x0000000000000000', '0x5555555555555556') || "
            "shardRange(object.metadata.uid, '0xaaaaaaaaaaaaaaab', '0x10000000000000000')");
}

TEST(ShardRangeSelector, NothingToFilterIsEmpty) {
  EXPECT_EQ(ShardRangeSelector({}, 4), "");
  EXPECT_EQ(ShardRangeSelector({0, 1, 2, 3}, 4), "");
  EXPECT_EQ(ShardRangeSelector({0}, 1), "");
}

TEST(ShardScope, SelectorAndFilterAgreeAndTheEdgesNeedNeither) {
  const kube::Json a = {{"metadata", {{"uid", "abc"}}}};  // range shard 14 of 16, modulo 13
  const kube::Json b = {{"metadata", {{"uid", "5f1c7a2e-3b1d-4c55-9d2a-0c6e8f1b2a3d"}}}};  // range 6, modulo 5
  const InformerScope range = ShardScope({14, 15}, 16, ShardLayout::kRange);
  EXPECT_EQ(range.query, "shardSelector=" + kube::UrlEscape(ShardRangeSelector({14, 15}, 16)));
  ASSERT_TRUE(range.keep);
  EXPECT_TRUE(range.keep(a));
  EXPECT_FALSE(range.keep(b));
  EXPECT_FALSE(range.keep(kube::Json{{"metadata", kube::Json::object()}})) << "no UID: not ours";
  EXPECT_FALSE(range.nothing);

  const InformerScope modulo = ShardScope({5}, 16, ShardLayout::kModulo);
  EXPECT_EQ(modulo.query, "") << "modulo shards are no ranges: the apiserver cannot select them";
  EXPECT_FALSE(modulo.keep(a));
  EXPECT_TRUE(modulo.keep(b));

  EXPECT_TRUE(ShardScope({}, 16, ShardLayout::kRange).nothing);
  const InformerScope all = ShardScope({0, 1, 2, 3}, 4, ShardLayout::kRange);
  EXPECT_FALSE(all.nothing);
  EXPECT_EQ(all.query, "");
  EXPECT_FALSE(all.keep);
}

}  // namespace
}  // namespace cronlane::op
