#pragma once
// Follows the workers' results topic for the leader: tells the dispatcher when an
// occurrence finished (all its shards), for concurrencyPolicy Forbid, and reports
// each result (for status.recentRuns, lastSuccessfulTime and lastFailureTime). It reads without a consumer group:
// every term starts by replaying the last `lookback` of results, so a new leader
// knows which occurrences finished under the old one, then follows new records.
// A missing topic (no worker writes results) is waited for, not an error.

#include <atomic>
#include <chrono>
#include <functional>
#include <string>
#include <unordered_map>

#include "common/cancel.h"
#include "common/clock.h"
#include "common/kafka.h"
#include "common/logging.h"
#include "common/task_result.h"
#include "dispatcher/cron.h"
#include "dispatcher/dispatcher.h"

namespace cronlane::dispatcher {

struct ResultsFollowerOptions {
  kafka::Properties base;  // bootstrap.servers, security
  std::string topic = "cronlane.results";
  std::chrono::seconds lookback{3600};
};

// One result a worker reported (an occurrence, or one shard of it), as status
// needs it.
struct RunResult {
  std::string subject;                   // namespace/name
  Trigger trigger = Trigger::kSchedule;  // kSchedule, kManual or kBackfill (from the id)
  Instant scheduled;                     // ce_time: the scheduled instant, or when a run-now was handled
  Instant finished;                      // when the worker reported it (the record's timestamp)
  RunOutcome outcome = RunOutcome::kFailed;
  bool dead_lettered = false;
  int attempts = 0;
  int64_t duration_ms = 0;
};

// What the leader needs of a results follower. Thread-safe but for Run(), which
// one thread calls; tests inject fakes.
class ResultsSource {
 public:
  virtual ~ResultsSource() = default;
  // Replays, then follows, until `cancel` fires.
  virtual void Run(CancelToken& cancel) = 0;
  // True once the replay of the lookback window is complete.
  virtual bool Replayed() const = 0;
  virtual uint64_t results() const = 0;  // records handled
  virtual uint64_t invalid() const = 0;  // records that could not be decoded
};

class ResultsFollower final : public ResultsSource {
 public:
  // Every shard of an occurrence of `task_id` finished: the one scheduled at
  // `scheduled` (`manual_token` empty), or the run-now occurrence of `manual_token`
  // (`scheduled` is then when it was handled, and means nothing for the schedule).
  using OnFinished =
      std::function<void(const std::string& task_id, Instant scheduled, const std::string& manual_token)>;
  // A worker reported an occurrence (or one shard of it) of the task with UID
  // `task_id`, whatever its trigger and outcome (status.recentRuns,
  // lastSuccessfulTime, lastFailureTime).
  using OnResult = std::function<void(const std::string& task_id, const RunResult& result)>;

  ResultsFollower(ResultsFollowerOptions options, Clock& clock, OnFinished on_finished, OnResult on_result);

  // Replays, then follows, until `cancel` fires. Retries while the topic is missing
  // or the broker unreachable.
  void Run(CancelToken& cancel) override;

  // True once the replay reached the end of every partition (or the topic does not
  // exist yet, so there is nothing to replay).
  bool Replayed() const override { return replayed_.load(); }
  uint64_t results() const override { return results_.load(); }
  uint64_t invalid() const override { return invalid_.load(); }

  // Handles one record (tests feed records directly).
  void Handle(const kafka::Message& m);

 private:
  ResultsFollowerOptions options_;
  Clock& clock_;
  OnFinished on_finished_;
  OnResult on_result_;
  std::unordered_map<std::string, int> shards_done_;  // occurrence id without shard -> shards finished so far
  std::atomic<bool> replayed_{false};
  std::atomic<uint64_t> results_{0};
  std::atomic<uint64_t> invalid_{0};
  LogThrottle invalid_log_;  // a warning for records that are not results
};

}  // namespace cronlane::dispatcher
