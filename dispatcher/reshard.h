#pragma once
// Copies the checkpoints of one shard layout into another, so the number of shards
// (--shards) can change without losing where each task was: `cronlane-operator
// reshard-checkpoints` (docs/operations.md, "Changing the number of shards").
//
// With every replica stopped, ReshardCheckpoints:
//  1. refuses a target topic that holds records already (it would mix layouts) or
//     has the wrong partition count for `to_shards`;
//  2. fences every producer of the source layout (init_transactions with each of
//     its transactional.ids: `<id>` for one shard, `<id>-<i>` for shard i), so a
//     replica that was not quite stopped can commit nothing after the copy is read;
//  3. reads the source topic from its beginning (read_committed) into the latest
//     checkpoint and typed record of every task, tombstones applied;
//  4. writes each into the target topic as the target layout's shard would (with
//     `to_shards` > 1: partition ShardOf(owner uid, to_shards, to_layout), one
//     transaction per batch under the target shard's transactional.id);
//  5. reads the target back and compares it with what it read: any difference is an
//     error (Internal), never a silent partial copy.
// Runs on the calling thread (and one reader thread of its own, joined before it
// returns). Kafka only: no Kubernetes code.

#include <chrono>
#include <string>
#include <vector>

#include "common/hash.h"
#include "common/kafka.h"
#include "common/status.h"

namespace cronlane::dispatcher {

struct ReshardOptions {
  kafka::Properties base;  // bootstrap.servers and security settings
  std::string transactional_id = "cronlane-dispatcher";
  std::string from_topic;
  int from_shards = 1;
  std::string to_topic;
  int to_shards = 1;
  ShardLayout to_layout = ShardLayout::kRange;  // the source's needs no saying: it is read whole
  int replication_factor = 1;
  std::chrono::milliseconds timeout{120000};  // each read of a whole topic
  size_t batch = 10000;                       // checkpoints per transaction
};

struct ReshardReport {
  size_t checkpoints = 0;         // plain checkpoints (one per task)
  size_t records = 0;             // typed records (run-now, backfill progress)
  std::vector<size_t> per_shard;  // checkpoints and records written to each target shard
};

Result<ReshardReport> ReshardCheckpoints(const ReshardOptions& options);

}  // namespace cronlane::dispatcher
