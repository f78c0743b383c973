#pragma once
// Reads the checkpoint topic (read_committed) into the latest checkpoint per task,
// and keeps reading it. Every operator replica runs one while it waits to lead, so
// a standby that becomes leader restores its checkpoints by reading only what was
// written since it last polled (the old leader's last transactions), not the
// whole topic: at 100k tasks the whole topic is several hundred thousand records
// between compactions. KafkaFireSink::ReadCheckpoints also uses a short-lived one
// for a read from the beginning, so there is one reader of the topic.
//
// Threads: Run() on one thread of its own (every Kafka call is made there);
// TakeOver() and Size() from any other thread. One mutex guards the map and the
// hand-over; Kafka calls are made without it.

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/cancel.h"
#include "common/hash.h"
#include "common/kafka.h"
#include "common/logging.h"
#include "common/status.h"
#include "common/thread_annotations.h"
#include "dispatcher/fire_sink.h"

namespace cronlane::dispatcher {

struct CheckpointFollowerOptions {
  kafka::Properties base;  // bootstrap.servers and security settings
  std::string topic = "cronlane.checkpoints";
  // Between attempts when the topic does not exist yet (no leader has created it)
  // or the consumer failed; each attempt reads the topic from its beginning.
  std::chrono::milliseconds retry{2000};
  std::chrono::milliseconds max_retry{30000};
  // A one-off read (KafkaFireSink's read from the beginning): the first error ends
  // Run() and is what TakeOver() returns, instead of a retry.
  bool once = false;
  // Only this partition (a shard's checkpoints, --shards > 1); -1: every partition.
  int32_t partition = -1;
  // Above 1: check where each record sits against both shard layouts of this many
  // shards (Placement()).
  int shards = 0;
  // False: only Placement() is wanted (CheckCheckpointLayout); records are read
  // but not kept, and TakeOver() returns no checkpoints.
  bool keep = true;
};

// Where the records read sit (CheckpointFollowerOptions::shards > 1): a record of
// task T in partition p is misplaced for a layout that puts T in another shard. A
// topic written with one layout has no record misplaced for it; for the other,
// almost every record is (all but about 1 in S).
struct CheckpointPlacement {
  uint64_t checked = 0;                 // keyed records
  std::array<uint64_t, 2> misplaced{};  // by ShardLayout (static_cast<size_t>)
  std::array<std::string, 2> example;   // the first misplaced record per layout: "key <k> in partition <p>"

  uint64_t Misplaced(ShardLayout l) const { return misplaced[static_cast<size_t>(l)]; }
  const std::string& Example(ShardLayout l) const { return example[static_cast<size_t>(l)]; }
};

// Applies one record of the checkpoint topic: a value is the unix time of the
// task's last fired occurrence, a null (empty) value a tombstone. A key with a '/'
// is a typed record ("<uid>/run-now") whose value is kept as text. Records that are
// not checkpoints (no key, a plain key whose value is not a number) change nothing
// and return false (the follower counts them and warns, throttled).
bool ApplyCheckpointRecord(Checkpoints& into, const kafka::Message& record);

class CheckpointFollower {
 public:
  explicit CheckpointFollower(CheckpointFollowerOptions options);

  // Reads the topic from its beginning and follows it until `cancel` fires or
  // TakeOver() has handed the checkpoints over. Retries with backoff on errors.
  void Run(CancelToken& cancel);

  // On the new leader, after its producer fenced the old one (so every transaction
  // of the old leader is either committed or aborted): waits until Run() has read
  // every partition up to its end as of this call (high watermarks queried then),
  // then hands over the checkpoints and stops following. At most `timeout`:
  // DeadlineExceeded then, and the follower keeps following. Unavailable when the
  // checkpoints were handed over already; with `once`, Run()'s error. Called from any thread but Run()'s.
  Result<Checkpoints> TakeOver(std::chrono::milliseconds timeout);

  // Checkpoints held (0 after the hand-over), for metrics.
  size_t Size() const;
  // Records read since start, for metrics and tests.
  uint64_t Records() const;
  // Records that were not checkpoints, since start.
  uint64_t Invalid() const;
  // Where the records of the current (or handed-over) read sit; empty unless
  // options.shards > 1.
  CheckpointPlacement Placement() const;

 private:
  // One attempt: consumer, assignment from the beginning, follow. Returns OK when
  // cancelled or handed over, an error otherwise.
  Status Follow(CancelToken& cancel);

  const CheckpointFollowerOptions options_;
  mutable Mutex mu_;
  std::condition_variable cv_;
  Checkpoints checkpoints_ GUARDED_BY(mu_);
  uint64_t records_ GUARDED_BY(mu_) = 0;
  uint64_t invalid_ GUARDED_BY(mu_) = 0;
  CheckpointPlacement placement_ GUARDED_BY(mu_);
  LogThrottle invalid_log_ GUARDED_BY(mu_);
  bool requested_ GUARDED_BY(mu_) = false;                     // a TakeOver() waits
  std::optional<Result<Checkpoints>> result_ GUARDED_BY(mu_);  // what Run() hands to the waiting TakeOver()
  std::optional<Status> failed_ GUARDED_BY(mu_);               // options_.once: why Run() ended
  bool handed_over_ GUARDED_BY(mu_) = false;
};

}  // namespace cronlane::dispatcher
