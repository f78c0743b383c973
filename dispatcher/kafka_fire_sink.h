#pragma once
// FireSink on a librdkafka transactional producer. All dispatcher replicas share one
// transactional.id, so Init() on a new leader fences the previous one and aborts
// its open transaction. Checkpoints go to a compacted topic (key: task id, value:
// the scheduled unix time of the task's last fired occurrence; a tombstone when the
// task was deleted) in the same transaction as the fired messages.

#include <chrono>
#include <memory>
#include <optional>
#include <set>
#include <string>

#include "common/clock.h"
#include "common/hash.h"
#include "common/kafka.h"
#include "dispatcher/checkpoint_follower.h"
#include "dispatcher/fire_sink.h"

namespace cronlane::dispatcher {

struct KafkaSinkOptions {
  kafka::Properties base;  // bootstrap.servers and security settings
  std::string transactional_id = "cronlane-dispatcher";
  std::string checkpoint_topic = "cronlane.checkpoints";
  int checkpoint_partitions = 3;
  int replication_factor = 1;
  int transaction_timeout_ms = 10000;  // bounds the stall a crashed leader's open transaction causes
  int commit_timeout_ms = 10000;
  std::chrono::seconds max_commit_retry{600};
  bool create_topics = true;  // create a task topic that does not exist yet
  int topic_partitions = 6;   // then the dispatcher stops; a restart restores exactly
  // The replica's warm follower of the checkpoint topic, if it runs one:
  // ReadCheckpoints() takes its checkpoints over (reading only the tail) and reads
  // the topic from its beginning only when that fails or takes longer than
  // `follower_timeout`.
  std::shared_ptr<CheckpointFollower> follower;
  std::chrono::milliseconds follower_timeout{30000};
  std::chrono::milliseconds read_timeout{60000};  // a read from the beginning
  // A shard's sink (--shards S > 1): `transactional_id` is the shard's own, the
  // checkpoint topic has S partitions (checkpoint_partitions; Init() refuses a topic
  // with another count) and the shard's checkpoints live in partition `shard`, so
  // restoring a shard reads only that partition. -1: unsharded.
  int shard = -1;
  // A shard's layout (--shard-layout, common/hash.h): ReadCheckpoints() refuses a
  // partition holding a record of a task this layout puts in another shard.
  ShardLayout layout = ShardLayout::kRange;
};

// The configuration the checkpoint topic is created with: compacted, in segments
// small enough that compaction keeps about one record per task (a topic created
// by an earlier version keeps its own; docs/operations.md says how to change it).
kafka::Properties CheckpointTopicConfig();

// With --shards S each shard keeps its checkpoints in a partition of its own, so the
// checkpoint topic must have S partitions: FailedPrecondition (saying how to keep or
// change S) when it has another count; OK when it has S or does not exist yet;
// the error when asking failed. Used at start-up and by each shard's Init().
Status CheckCheckpointPartitions(rd_kafka_t* client, const std::string& topic, int shards);

// With --shards S > 1: the shard layout to run with, from where the checkpoint
// topic's records sit (read whole, read_committed, within `timeout`). `wanted`
// (--shard-layout range or modulo) when no record is misplaced for it; nullopt
// (--shard-layout auto) picks range when no record is misplaced for it (so a new
// or empty topic, or one resharded to range), else modulo when none is misplaced
// for that (a topic written before --shard-layout existed). FailedPrecondition,
// naming a misplaced record and what to do, when the records fit no layout allowed;
// the error when reading failed (Unavailable, DeadlineExceeded). Called at
// start-up, on the calling thread (and a reader thread of its own, joined).
Result<ShardLayout> CheckCheckpointLayout(const kafka::Properties& base, const std::string& topic, int shards,
                                          std::optional<ShardLayout> wanted,
                                          std::chrono::milliseconds timeout = std::chrono::milliseconds(60000));

class KafkaFireSink final : public FireSink {
 public:
  // `clock` bounds how long an unknown commit outcome is retried (max_commit_retry).
  explicit KafkaFireSink(KafkaSinkOptions options, Clock& clock = RealClock::Get());
  ~KafkaFireSink() override;

  // Creates the checkpoint topic if missing (CheckpointTopicConfig()), then
  // init_transactions.
  Status Init() override;
  Status Commit(const std::vector<OutMessage>& messages, const std::vector<Checkpoint>& checkpoints) override;
  // The warm follower's checkpoints, else a read from the beginning.
  Result<Checkpoints> ReadCheckpoints() override;
  std::vector<std::string> MissingTopics(const std::vector<std::string>& topics) override;

 private:
  // Classifies a failed transactional call: a fence (another producer took over)
  // stops us; any other fatal error makes the next Commit re-create the producer;
  // anything else is aborted (resumably) before the next transaction.
  Status Fail(const Status& why);
  // Makes sure every topic of `messages` exists (creating it when allowed).
  Status EnsureTopics(const std::vector<OutMessage>& messages);
  // Makes sure `topic` exists (creating it when allowed); remembered until a
  // transaction fails (a topic deleted since is then looked up again).
  Status EnsureTopic(const std::string& topic);

  KafkaSinkOptions options_;
  Clock& clock_;
  kafka::HandlePtr producer_;
  bool fenced_ = false;
  bool reinit_ = false;
  bool abort_pending_ = false;
  std::set<std::string> known_topics_;
};

}  // namespace cronlane::dispatcher
