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

}  // namespace
}  // namespace cronlane::op
