#pragma once
// Which shards a replica should take and give up: a pure function of what the
// replica saw of the shard Leases and of the live replicas, so every rule is
// unit-tested on simulated time (tests/unit/shard_assignment_test.cpp). The
// ShardCoordinator feeds it every retry period and carries its plan out.
//
// The rules (docs/architecture.md, "Shards"), with n live replicas and S shards:
// - a replica holds at most ceil(S/n) shards: it takes free shards (never held,
//   released, or expired) up to that, and releases what it holds above it at once;
// - free shards go to the least loaded: a replica takes one only while no live
//   replica holds fewer, so a shard released for a newcomer is not taken back;
// - when a live replica holds fewer than floor(S/n) and no shard is free, the most
//   loaded replica (ties: the greatest identity) releases one shard, so S=9 over
//   4 replicas ends 3/2/2/2 rather than 3/3/3/0; one release per period in the
//   whole installation, so the shards move the fewest times;
// - nothing moves when every replica holds floor or ceil (no flapping);
// - a leaving replica (SIGTERM) releases everything at once;
// - replicas still joining (announced, cache not synced yet) count in n for what a
//   replica may take, so the replica whose cache syncs first takes its share and
//   not everything; they never make anyone release (a shard released for a
//   replica that cannot take it yet would go unfired) nor count as least loaded
//   or starving. The coordinator counts a joining replica only for a grace period.
// Every replica ranks shards by a stable hash of (identity, shard): it takes its
// most preferred free shards and releases its least preferred, so replicas that
// start together mostly reach for different shards.

#include <string>
#include <vector>

namespace cronlane::op {

// What a replica saw of one shard's Lease.
struct ShardLeaseView {
  std::string holder;    // "" when free (never held, or released)
  bool expired = false;  // the holder has not renewed it for its lease duration (timed locally)
};

struct ShardPlanInput {
  std::string self;
  std::vector<std::string> members;    // identities of the live replicas (self is counted anyway)
  std::vector<std::string> joining;    // announced replicas that cannot take shards yet
  std::vector<ShardLeaseView> shards;  // index = shard
  bool leaving = false;                // shutting down: give everything up
  // Shards this replica may not take this period (its own term for it is still
  // stopping, or a cooldown).
  std::vector<int> blocked;
  // Shards this replica holds but is giving up (their work is stopping): neither
  // counted as its own nor free.
  std::vector<int> releasing;
};

struct ShardPlan {
  std::vector<int> acquire;  // most preferred first
  std::vector<int> release;
};

ShardPlan PlanShards(const ShardPlanInput& in);

// How many shards a replica should hold at most / at least with `members` live
// replicas: ceil(S/n) and floor(S/n).
int MaxShardsPerReplica(int shards, int members);
int MinShardsPerReplica(int shards, int members);

}  // namespace cronlane::op
