// The shard assignment rules (operator/shard_assignment.h) on simulated time: a
// Lease store with compare-and-set, replicas that plan one after another in a
// shuffled order each period, joins, leaves, crashes, uneven counts.
#include "operator/shard_assignment.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

namespace cronlane::op {
namespace {

// Leases time out after `lease_periods` periods without renewal.
class Cluster {
 public:
  explicit Cluster(int shards, int lease_periods = 7) : shards_(shards), lease_periods_(lease_periods) {
    holder_.assign(static_cast<size_t>(shards), "");
    renewed_.assign(static_cast<size_t>(shards), 0);
  }

  void Join(const std::string& r) {
    joining_.erase(r);
    running_.insert(r);
    member_renewed_[r] = round_;
  }
  // Announced, its cache still syncing: renews its member Lease marked joining
  // each period, plans nothing. Join() makes it ready.
  void Announce(const std::string& r) {
    joining_.insert(r);
    member_renewed_[r] = round_;
  }
  void Crash(const std::string& r) { running_.erase(r); }  // stops renewing anything
  // SIGTERM: releases everything it holds, deletes its member Lease.
  void Leave(const std::string& r) {
    ShardPlanInput in = View(r);
    in.leaving = true;
    for (int s : PlanShards(in).release) Release(r, s);
    running_.erase(r);
    member_renewed_.erase(r);
  }

  // One retry period: every running replica renews, then plans and acts, in a
  // shuffled order (each sees what those before it did, as with a real apiserver).
  void Step() {
    ++round_;
    std::vector<std::string> order(running_.begin(), running_.end());
    std::shuffle(order.begin(), order.end(), rng_);
    for (const auto& r : joining_) member_renewed_[r] = round_;
    for (const auto& r : order) {
      member_renewed_[r] = round_;
      for (int s = 0; s < shards_; ++s) {
        if (holder_[static_cast<size_t>(s)] == r) renewed_[static_cast<size_t>(s)] = round_;
      }
      ShardPlan plan = PlanShards(View(r));
      for (int s : plan.release) Release(r, s);
      for (int s : plan.acquire) {
        // Compare-and-set: only a free or expired Lease can be taken.
        if (!Free(s)) continue;
        holder_[static_cast<size_t>(s)] = r;
        renewed_[static_cast<size_t>(s)] = round_;
        ++acquisitions_[r];
        ++moves_;
      }
    }
  }
  // Steps until nothing moved for `quiet` periods; returns the periods taken.
  int Settle(int quiet = 10, int max = 200) {
    int still = 0;
    for (int i = 1; i <= max; ++i) {
      int before = moves_ + releases_;
      Step();
      still = (moves_ + releases_ == before) ? still + 1 : 0;
      if (still >= quiet) return i;
    }
    ADD_FAILURE() << "did not settle in " << max << " periods";
    return max;
  }

  std::map<std::string, int> Counts() const {
    std::map<std::string, int> out;
    for (const auto& r : running_) out[r] = 0;
    for (const auto& h : holder_) {
      if (!h.empty()) ++out[h];
    }
    return out;
  }
  std::vector<int> SortedCounts() const {
    std::vector<int> out;
    for (const auto& [r, c] : Counts()) {
      if (running_.count(r) != 0) out.push_back(c);
    }
    std::sort(out.rbegin(), out.rend());
    return out;
  }
  int Unheld() const {
    int n = 0;
    for (int s = 0; s < shards_; ++s) n += running_.count(holder_[static_cast<size_t>(s)]) == 0 ? 1 : 0;
    return n;
  }
  const std::string& Holder(int s) const { return holder_[static_cast<size_t>(s)]; }
  int moves() const { return moves_; }
  int releases() const { return releases_; }
  int acquisitions(const std::string& r) const { return acquisitions_.count(r) ? acquisitions_.at(r) : 0; }
  int round() const { return round_; }

 private:
  bool Expired(int s) const {
    return !holder_[static_cast<size_t>(s)].empty() && round_ - renewed_[static_cast<size_t>(s)] > lease_periods_;
  }
  bool Free(int s) const { return holder_[static_cast<size_t>(s)].empty() || Expired(s); }
  void Release(const std::string& r, int s) {
    ASSERT_EQ(holder_[static_cast<size_t>(s)], r) << "released a shard it does not hold";
    holder_[static_cast<size_t>(s)].clear();
    ++releases_;
  }
  ShardPlanInput View(const std::string& r) const {
    ShardPlanInput in;
    in.self = r;
    for (const auto& [m, at] : member_renewed_) {
      if (round_ - at > lease_periods_) continue;
      (joining_.count(m) != 0 ? in.joining : in.members).push_back(m);
    }
    for (int s = 0; s < shards_; ++s) in.shards.push_back({holder_[static_cast<size_t>(s)], Expired(s)});
    return in;
  }

  const int shards_;
  const int lease_periods_;
  int round_ = 0;
  std::vector<std::string> holder_;
  std::vector<int> renewed_;
  std::set<std::string> running_;
  std::set<std::string> joining_;
  std::map<std::string, int> member_renewed_;
  std::map<std::string, int> acquisitions_;
  int moves_ = 0, releases_ = 0;
  std::mt19937 rng_{42};
};

TEST(ShardAssignment, ThreeReplicasStartingTogetherSplitEightShards3_3_2AndThenNothingMoves) {
  Cluster c(8);
  for (auto r : {"a", "b", "c"}) c.Join(r);
  c.Settle();
  EXPECT_EQ(c.SortedCounts(), (std::vector<int>{3, 3, 2}));
  EXPECT_EQ(c.Unheld(), 0);
  int moves = c.moves(), releases = c.releases();
  for (int i = 0; i < 200; ++i) c.Step();
  EXPECT_EQ(c.moves(), moves) << "shards moved in a steady state";
  EXPECT_EQ(c.releases(), releases);
}

// Replicas started together sync their caches one after another: the first ready
// takes its share, not every shard, and nothing is taken only to be given back.
TEST(ShardAssignment, ReplicasWhoseCachesSyncOneByOneTakeTheirShareAndMoveNothing) {
  Cluster c(16);
  for (auto r : {"a", "b", "c", "d"}) c.Announce(r);
  c.Step();
  for (auto r : {"a", "b", "c", "d"}) {
    c.Join(r);
    for (int i = 0; i < 3; ++i) c.Step();
    EXPECT_EQ(c.Counts()[r], 4) << r << " took more or less than its share while others joined";
  }
  c.Settle();
  EXPECT_EQ(c.SortedCounts(), (std::vector<int>{4, 4, 4, 4}));
  EXPECT_EQ(c.Unheld(), 0);
  EXPECT_EQ(c.releases(), 0) << "a shard was given back";
  EXPECT_EQ(c.moves(), 16);
}

// A joining replica cannot take a shard, so it makes no one release one: the
// shards stay fired until it is ready, then move as for any join.
TEST(ShardAssignment, AJoiningReplicaMakesNoOneReleaseUntilItIsReady) {
  Cluster c(16);
  c.Join("a");
  c.Join("b");
  c.Settle();
  ASSERT_EQ(c.SortedCounts(), (std::vector<int>{8, 8}));
  const int releases = c.releases();
  c.Announce("c");
  for (int i = 0; i < 20; ++i) c.Step();
  EXPECT_EQ(c.releases(), releases);
  EXPECT_EQ(c.Unheld(), 0);
  c.Join("c");
  c.Settle();
  EXPECT_EQ(c.SortedCounts(), (std::vector<int>{6, 5, 5}));
  EXPECT_EQ(c.Unheld(), 0);
}

TEST(ShardAssignment, EachJoinMovesTheFewestShards) {
  Cluster c(16);
  c.Join("a");
  c.Settle();
  EXPECT_EQ(c.SortedCounts(), (std::vector<int>{16}));
  c.Join("b");
  c.Settle();
  EXPECT_EQ(c.SortedCounts(), (std::vector<int>{8, 8}));
  EXPECT_EQ(c.acquisitions("b"), 8);
  EXPECT_EQ(c.releases(), 8);
  c.Join("c");
  c.Settle();
  EXPECT_EQ(c.SortedCounts(), (std::vector<int>{6, 5, 5}));
  EXPECT_EQ(c.acquisitions("c"), 5);
  EXPECT_EQ(c.releases(), 8 + 5);
  c.Join("d");
  c.Settle();
  EXPECT_EQ(c.SortedCounts(), (std::vector<int>{4, 4, 4, 4}));
  EXPECT_EQ(c.acquisitions("d"), 4);
  EXPECT_EQ(c.releases(), 8 + 5 + 4);
  EXPECT_EQ(c.Unheld(), 0);
}

TEST(ShardAssignment, NineShardsOverFourReplicasEnd3_2_2_2NotWithAnIdleReplica) {
  Cluster c(9);
  for (auto r : {"a", "b", "c"}) c.Join(r);
  c.Settle();
  EXPECT_EQ(c.SortedCounts(), (std::vector<int>{3, 3, 3}));
  int releases = c.releases();
  c.Join("d");
  c.Settle();
  EXPECT_EQ(c.SortedCounts(), (std::vector<int>{3, 2, 2, 2}));
  EXPECT_EQ(c.releases() - releases, 2) << "one shard at a time from the most loaded";
}

TEST(ShardAssignment, TwoJoinsAtOnceMoveHalfTheShards) {
  Cluster c(8);
  c.Join("a");
  c.Join("b");
  c.Settle();
  int releases = c.releases();
  c.Join("c");
  c.Join("d");
  c.Settle();
  EXPECT_EQ(c.SortedCounts(), (std::vector<int>{2, 2, 2, 2}));
  EXPECT_EQ(c.releases() - releases, 4);
}

TEST(ShardAssignment, ACrashedReplicasShardsAreTakenOnlyAfterTheirLeasesExpire) {
  Cluster c(8, /*lease_periods=*/7);
  for (auto r : {"a", "b", "c"}) c.Join(r);
  c.Settle();
  std::vector<int> victims;
  for (int s = 0; s < 8; ++s) {
    if (c.Holder(s) == "b") victims.push_back(s);
  }
  ASSERT_FALSE(victims.empty());
  c.Crash("b");
  for (int i = 0; i < 7; ++i) {
    c.Step();
    for (int s : victims) EXPECT_EQ(c.Holder(s), "b") << "taken before the Lease expired, period " << i + 1;
  }
  c.Settle();
  EXPECT_EQ(c.SortedCounts(), (std::vector<int>{4, 4}));
  EXPECT_EQ(c.Unheld(), 0);
}

TEST(ShardAssignment, ALeavingReplicaReleasesEverythingAndTheOthersTakeItInOnePeriod) {
  Cluster c(8);
  for (auto r : {"a", "b", "c", "d"}) c.Join(r);
  c.Settle();
  c.Leave("d");
  EXPECT_EQ(c.Unheld(), 2);
  c.Step();
  EXPECT_EQ(c.Unheld(), 0);
  c.Settle();
  EXPECT_EQ(c.SortedCounts(), (std::vector<int>{3, 3, 2}));
}

TEST(ShardAssignment, MoreReplicasThanShardsLeavesSomeIdleWithoutFlapping) {
  Cluster c(2);
  for (auto r : {"a", "b", "c"}) c.Join(r);
  c.Settle();
  EXPECT_EQ(c.SortedCounts(), (std::vector<int>{1, 1, 0}));
  int moves = c.moves();
  for (int i = 0; i < 100; ++i) c.Step();
  EXPECT_EQ(c.moves(), moves);
}

TEST(ShardAssignment, UnevenCounts) {
  for (int shards : {1, 5, 7, 16, 31}) {
    for (int replicas : {1, 2, 3, 5}) {
      Cluster c(shards);
      for (int r = 0; r < replicas; ++r) c.Join("r" + std::to_string(r));
      c.Settle();
      auto counts = c.SortedCounts();
      EXPECT_EQ(c.Unheld(), 0) << shards << " over " << replicas;
      EXPECT_LE(counts.front() - counts.back(), 1) << shards << " over " << replicas;
      EXPECT_LE(counts.front(), MaxShardsPerReplica(shards, replicas));
    }
  }
}

TEST(ShardAssignment, PlanRules) {
  ShardPlanInput in;
  in.self = "a";
  in.members = {"a", "b"};
  in.shards = {{"a", false}, {"b", false}, {"", false}, {"gone", true}, {"stranger", false}};
  // Free: 2 (never held) and 3 (expired); 4 is held by a replica without a member
  // Lease, but renewed: not free.
  ShardPlan p = PlanShards(in);
  std::vector<int> got = p.acquire;
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<int>{2, 3}));  // ceil(5/2) = 3: two more
  EXPECT_TRUE(p.release.empty());

  in.blocked = {2, 3};  // its own work for them is still stopping
  EXPECT_TRUE(PlanShards(in).acquire.empty());

  // A shard released for a newcomer is not taken back by the replica that released
  // it, even when that one plans first: "c" holds 2, "d" none, 9 shards, 4 replicas.
  ShardPlanInput back;
  back.self = "c";
  back.members = {"a", "b", "c", "d"};
  back.shards = {{"a", false}, {"a", false}, {"a", false}, {"b", false}, {"b", false},
                 {"b", false}, {"c", false}, {"c", false}, {"", false}};
  EXPECT_TRUE(PlanShards(back).acquire.empty());
  back.self = "d";
  EXPECT_EQ(PlanShards(back).acquire, (std::vector<int>{8}));

  // Shards being given up are neither counted as its own nor free: "a" holds 0
  // and 4 but releases 4, so with ceil(5/2) = 3 it may take two more.
  in.blocked.clear();
  in.releasing = {4};
  in.shards[4] = {"a", false};
  p = PlanShards(in);
  got = p.acquire;
  std::sort(got.begin(), got.end());
  EXPECT_EQ(got, (std::vector<int>{2, 3}));
  EXPECT_TRUE(p.release.empty()) << "not released twice";
  in.releasing.clear();
  in.shards[4] = {"stranger", false};

  in.leaving = true;
  p = PlanShards(in);
  EXPECT_TRUE(p.acquire.empty());
  EXPECT_EQ(p.release, (std::vector<int>{0}));
}

}  // namespace
}  // namespace cronlane::op
