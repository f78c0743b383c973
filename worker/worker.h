#pragma once
// The worker library: join a consumer group on the task topics, decode each fired
// task, run the handler, and commit the offset only after the handler finished
// (at-least-once). Failed attempts are retried with exponential backoff up to the
// task's ce_maxattempts, then sent to a dead-letter topic; a ce_id seen recently is
// skipped (redeliveries after a rebalance); each finished occurrence is reported on
// a results topic. On cancel (SIGTERM) it stops fetching, hands back a message it
// has not finished (no commit, so another worker gets it), and leaves the group.
//
// This slice processes one message at a time per worker.

#include <chrono>
#include <deque>
#include <functional>
#include <set>
#include <string>
#include <unordered_set>
#include <vector>

#include "common/cancel.h"
#include "common/clock.h"
#include "common/cloudevent.h"
#include "common/kafka.h"

namespace cronlane::worker {

// What a handler reports for one attempt.
enum class Outcome { kSucceeded, kFailed, kTimedOut };

// Runs one attempt. `cancel` fires when the worker shuts down; a handler that
// returns early because of it should return kFailed (the message is handed back).
using Handler = std::function<Outcome(const FiredTask& task, int attempt, CancelToken& cancel)>;

struct WorkerOptions {
  kafka::Properties base;  // bootstrap.servers, security
  std::string group = "cronlane-workers";
  std::vector<std::string> topics;
  std::string dead_letter_topic;  // "" = none: failed tasks are logged and committed
  std::string results_topic;      // "" = no results
  size_t dedupe_window = 10000;   // recently seen ce_ids remembered
  std::chrono::milliseconds max_backoff{std::chrono::minutes(5)};
};

struct WorkerStats {
  uint64_t succeeded = 0, failed = 0, dead_lettered = 0, duplicates = 0, invalid = 0, attempts = 0;
};

class Worker {
 public:
  Worker(WorkerOptions options, Handler handler, Clock& clock);
  // Consumes until `cancel` fires; returns an error only if Kafka could not be
  // joined at all.
  Status Run(CancelToken& cancel);
  WorkerStats Stats() const;

 private:
  // Processes one message; false if it was handed back (shutdown mid-task).
  bool Process(const kafka::Message& m, CancelToken& cancel);
  void Report(const FiredTask& t, const std::string& outcome, int attempts, std::chrono::milliseconds took);
  bool Seen(const std::string& id);

  WorkerOptions options_;
  Handler handler_;
  Clock& clock_;
  kafka::HandlePtr consumer_;
  kafka::HandlePtr producer_;  // dead letters and results
  std::deque<std::string> recent_;
  std::unordered_set<std::string> recent_set_;
  mutable std::mutex mu_;
  WorkerStats stats_;
};

}  // namespace cronlane::worker
