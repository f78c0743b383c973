#include "worker/recent_ids.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <deque>
#include <random>
#include <set>
#include <string>

namespace cronlane::worker {
namespace {

TEST(RecentIdsTest, RemembersTheLastCapacityIdsAndForgetsTheOldest) {
  RecentIds ids(3);
  EXPECT_TRUE(ids.Insert("a"));
  EXPECT_TRUE(ids.Insert("b"));
  EXPECT_FALSE(ids.Insert("a"));  // remembered: a duplicate
  EXPECT_TRUE(ids.Insert("c"));
  EXPECT_TRUE(ids.Insert("d"));  // "a" is forgotten
  EXPECT_FALSE(ids.Contains("a"));
  EXPECT_TRUE(ids.Contains("b"));
  EXPECT_TRUE(ids.Contains("d"));
  EXPECT_EQ(ids.size(), 3u);
  EXPECT_TRUE(ids.Insert("a"));  // runs again, and now "b" goes
  EXPECT_FALSE(ids.Contains("b"));
}

TEST(RecentIdsTest, AnErasedIdIsNewAgainAndItsPlaceStaysEmptyUntilItWouldHaveGone) {
  RecentIds ids(3);
  for (const char* id : {"a", "b", "c"}) ids.Insert(id);
  ids.Erase("b");
  ids.Erase("zz");  // absent: nothing happens
  EXPECT_EQ(ids.size(), 2u);
  EXPECT_FALSE(ids.Contains("b"));
  EXPECT_TRUE(ids.Insert("d"));  // drops "a" (the oldest)
  EXPECT_FALSE(ids.Contains("a"));
  EXPECT_TRUE(ids.Contains("c"));
  EXPECT_TRUE(ids.Insert("e"));  // drops b's empty place: c stays
  EXPECT_TRUE(ids.Contains("c"));
  EXPECT_EQ(ids.size(), 3u);
}

TEST(RecentIdsTest, CapacityZeroRemembersNothing) {
  RecentIds ids(0);
  EXPECT_TRUE(ids.Insert("a"));
  EXPECT_TRUE(ids.Insert("a"));
  EXPECT_FALSE(ids.Contains("a"));
  ids.Erase("a");
  EXPECT_EQ(ids.size(), 0u);
}

// Against a plain model (a deque and a set) over a long random run with many
// repeats, erases and probe runs that wrap around the table: the same answer for
// every call.
TEST(RecentIdsTest, AgreesWithAPlainModelOverARandomRun) {
  for (size_t capacity : {1u, 2u, 7u, 64u, 1000u}) {
    RecentIds ids(capacity);
    std::deque<std::string> order;  // oldest first, erased ones included (as places)
    std::set<std::string> live;
    std::mt19937 rng(static_cast<unsigned>(capacity));
    std::uniform_int_distribution<int> pick(0, static_cast<int>(capacity) * 3);
    std::uniform_int_distribution<int> action(0, 9);
    for (int step = 0; step < 60000; ++step) {
      const std::string id = "uid-" + std::to_string(pick(rng)) + ":1800000000";
      if (action(rng) == 0) {
        ids.Erase(id);
        live.erase(id);
      } else {
        const bool added = !live.contains(id);
        ASSERT_EQ(ids.Insert(id), added) << "capacity " << capacity << " step " << step << " id " << id;
        if (added) {
          if (order.size() == capacity) {
            // The oldest place goes; its id only if it was not erased and added again
            // since (then it is live at a newer place).
            const std::string oldest = order.front();
            order.pop_front();
            if (std::find(order.begin(), order.end(), oldest) == order.end()) live.erase(oldest);
          }
          order.push_back(id);
          live.insert(id);
        }
      }
      ASSERT_EQ(ids.size(), live.size()) << "capacity " << capacity << " step " << step;
    }
    for (int i = 0; i <= static_cast<int>(capacity) * 3; ++i) {
      const std::string id = "uid-" + std::to_string(i) + ":1800000000";
      EXPECT_EQ(ids.Contains(id), live.contains(id)) << id;
    }
  }
}

}  // namespace
}  // namespace cronlane::worker
