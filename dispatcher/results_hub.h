#pragma once
// One results follower per replica, shared by every shard it holds (--shards).
// Without it, each held shard's term replays and follows the whole results topic
// on its own: 16 consumers reading the same records on a replica holding 16
// shards.
//
// The hub runs a ResultsFollower for the replica's life and remembers, per task,
// the latest finished occurrence, the latest finished run-now token, the latest
// success and the latest other result when it is newer. A shard's term
// subscribes with a predicate for its tasks: the subscription first hands it
// what the hub remembers of those tasks (what a replay of the lookback window
// would have told it, and everything since), then every new result of those
// tasks as it is read. Replayed() is the hub's: true once its own replay reached
// the end of the topic.
//
// Threads: Run() on one thread of its own (the follower's). Subscriptions' Run()
// on the terms' threads. One mutex guards the remembered state and the
// subscribers, and is held while results are handed to subscribers, so a
// subscription's callbacks are never called after its Run() returned. Callbacks
// must be quick and must not call back into the hub (Dispatcher::OnFinished and
// StatusWriter::OnResult queue and return).

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "common/thread_annotations.h"
#include "dispatcher/results_follower.h"

namespace cronlane::dispatcher {

class ResultsHub {
 public:
  ResultsHub(ResultsFollowerOptions options, Clock& clock);

  // Replays, then follows, the results topic until `cancel` fires.
  void Run(CancelToken& cancel);
  bool Replayed() const { return follower_.Replayed(); }

  // A source for one shard's term: `owns(task_id)` selects its tasks.
  std::unique_ptr<ResultsSource> Subscribe(std::function<bool(const std::string& task_id)> owns,
                                           ResultsFollower::OnFinished on_finished,
                                           ResultsFollower::OnResult on_result);

  // Tasks remembered (for metrics and tests).
  size_t Remembered() const;
  // Forgets what is older than the lookback window (what a replay would not
  // find either), so deleted tasks do not stay for the replica's life. Runs by
  // itself every 4096 results; public for tests.
  void Prune();
  uint64_t invalid() const { return follower_.invalid(); }
  // Handles one record (tests feed records directly).
  void Handle(const kafka::Message& m) { follower_.Handle(m); }

 private:
  class Subscription;
  struct Subscriber {
    std::function<bool(const std::string&)> owns;
    ResultsFollower::OnFinished on_finished;
    ResultsFollower::OnResult on_result;
    std::atomic<uint64_t>* delivered;
  };
  void Finished(const std::string& task_id, Instant scheduled, const std::string& manual_token);
  void Result(const std::string& task_id, const RunResult& r);
  int Add(Subscriber s);
  void Remove(int id);
  void PruneLocked() REQUIRES(mu_);

  Clock& clock_;
  const std::chrono::seconds lookback_;
  mutable Mutex mu_;
  uint64_t since_prune_ GUARDED_BY(mu_) = 0;
  std::unordered_map<std::string, Instant> finished_ GUARDED_BY(mu_);  // latest finished occurrence per task
  struct ManualFinished {
    std::string token;
    Instant at;  // when it was handled (for pruning)
  };
  std::unordered_map<std::string, ManualFinished> manual_finished_ GUARDED_BY(mu_);  // latest run-now per task
  std::unordered_map<std::string, RunResult> succeeded_ GUARDED_BY(mu_);             // latest success per task
  // The latest result that was not a success, while it is newer than the latest
  // success (a task that fails now); most tasks have none.
  std::unordered_map<std::string, RunResult> unsuccessful_ GUARDED_BY(mu_);
  std::unordered_map<int, Subscriber> subscribers_ GUARDED_BY(mu_);
  int next_id_ GUARDED_BY(mu_) = 1;
  ResultsFollower follower_;  // last: its callbacks use the members above
};

}  // namespace cronlane::dispatcher
