#pragma once
// The Kafka seam of the dispatcher: a transactional sink for fired messages and
// checkpoints, and a reader of the checkpoint topic. Production uses librdkafka
// (kafka_fire_sink.h); unit tests inject fakes with simulated faults.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "common/kafka.h"
#include "common/status.h"

namespace cronlane::dispatcher {

struct OutMessage {
  std::string topic;
  std::string key;
  std::string value;
  std::vector<kafka::Header> headers;
};

// A checkpoint: the scheduled time (unix seconds) of the last occurrence of a task
// that was fired and committed. `deleted`: a tombstone instead (the task is gone
// for good), which removes the task's checkpoint from the compacted topic.
//
// With a `suffix` it is a typed record of the task instead: key task_id + suffix
// ("/run-now"), value `text`; `last_fired` is unused. A UID never contains '/', so
// plain checkpoints and records never share a key (CheckpointOwner).
struct Checkpoint {
  std::string task_id;
  int64_t last_fired = 0;
  bool deleted = false;
  std::string suffix;
  std::string text;
};

// What the checkpoint topic holds: the latest checkpoint of every task (task id ->
// last_fired) and the typed records ("<task id>/<kind>" -> text). Records are few
// (tasks run by hand), so they live apart from the 100k plain values.
using CheckpointRecords = std::unordered_map<std::string, std::string>;
struct Checkpoints {
  std::unordered_map<std::string, int64_t> fired;
  CheckpointRecords records;

  size_t size() const { return fired.size() + records.size(); }
  bool operator==(const Checkpoints&) const = default;
};

// The task a checkpoint key belongs to: the key up to its first '/'.
inline std::string_view CheckpointOwner(std::string_view key) {
  return key.substr(0, key.find('/'));
}

class FireSink {
 public:
  virtual ~FireSink() = default;
  // Fences any older producer with the same transactional id and aborts its open
  // transaction. Called once, on gaining leadership, before anything else.
  virtual Status Init() = 0;
  // Writes `messages` and `checkpoints` atomically: all or none become visible to
  // read_committed consumers. On error nothing was committed (the sink aborted);
  // kFenced means this producer was fenced (or can no longer know what it
  // committed) and must stop.
  virtual Status Commit(const std::vector<OutMessage>& messages, const std::vector<Checkpoint>& checkpoints) = 0;
  // Which of `topics` do not exist and could not be created: a Commit with a
  // message for one would fail, and with it every other occurrence of the batch.
  // The dispatcher holds those topics' occurrences back (and retries them) and
  // commits the rest. Called on the fire thread, before Commit. Default: none.
  virtual std::vector<std::string> MissingTopics(const std::vector<std::string>& topics) {
    (void)topics;
    return {};
  }
  // Reads every committed checkpoint (the latest per task; tombstoned tasks have
  // none). Called after Init(), so nothing an older producer left open is missed.
  virtual Result<Checkpoints> ReadCheckpoints() = 0;
};

}  // namespace cronlane::dispatcher
