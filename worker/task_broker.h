#pragma once
// The worker's seam to Kafka: its consumer group (fired tasks in, offsets
// committed) and its producer (results and dead letters out). KafkaTaskBroker is
// the real one over librdkafka; unit tests drive the Worker through a fake on
// simulated time.
//
// Threads: Subscribe, Poll, Commit, CommitAsync, SetPaused and Close are called by the
// worker's polling thread only; the rebalance listener and CommitAsync's `done`
// run on that thread, inside Poll. Produce is called by pool threads and by the
// delivery thread; `done` runs on the delivery thread, inside ServeDeliveries,
// which only that thread calls. No worker lock is held across any call.

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/kafka.h"
#include "common/status.h"

namespace cronlane::worker {

class TaskBroker {
 public:
  virtual ~TaskBroker() = default;
  // Joins the group on `topics`; `listener` hears of partitions assigned and
  // revoked, from inside Poll (its rd_kafka_t* is null for a fake).
  virtual Status Subscribe(const std::vector<std::string>& topics, kafka::RebalanceListener* listener) = 0;
  // One message, a partition's end, or neither within `timeout`. A message may
  // come as librdkafka holds it (Polled::raw, uncopied; the real broker) or copied
  // (Polled::message; a fake).
  virtual Result<kafka::Polled> Poll(std::chrono::milliseconds timeout) = 0;
  // Commits next offsets and waits for the outcome.
  virtual Status Commit(const std::vector<kafka::PartitionOffset>& offsets) = 0;
  // Commits without waiting; `done` gets the outcome inside a later Poll.
  virtual void CommitAsync(const std::vector<kafka::PartitionOffset>& offsets, std::function<void(Status)> done) = 0;
  // Pauses (or resumes) fetching from every partition assigned now; Poll still
  // serves rebalances and commit outcomes while paused. A partition assigned later
  // may come paused or not (librdkafka keeps the pause of one revoked and given
  // back): the caller sets the state again after each assignment.
  virtual Status SetPaused(bool paused) = 0;
  // Leaves the group.
  virtual Status Close() = 0;
  // Queues a record; `done` gets its delivery outcome inside ServeDeliveries. An
  // error means it was not queued and `done` never runs.
  virtual Status Produce(const std::string& topic, const std::optional<std::string>& key, const std::string& value,
                         const std::vector<kafka::Header>& headers, std::function<void(Status)> done) = 0;
  // Runs due delivery callbacks, waiting up to `timeout` for one.
  virtual void ServeDeliveries(std::chrono::milliseconds timeout) = 0;
  // Before Subscribe, from the polling thread: readies the producer for `topics`
  // (its connection, the topics' leaders), so the first records are not held up
  // behind that while tasks finish. Waits at most `timeout`; best effort: a topic
  // it cannot ready is readied by the first Produce, as without it.
  virtual void WarmUp(const std::vector<std::string>& topics, std::chrono::milliseconds timeout) {
    (void)topics;
    (void)timeout;
  }
};

// Over librdkafka. `consumer` gets group.id and the consumer settings the worker
// needs (manual commits, read_committed, partition EOF); `producer` is idempotent,
// with linger.ms 5 and `record_timeout` as message.timeout.ms.
Result<std::unique_ptr<TaskBroker>> NewKafkaTaskBroker(const kafka::Properties& base, const std::string& group,
                                                       std::chrono::milliseconds record_timeout);

}  // namespace cronlane::worker
