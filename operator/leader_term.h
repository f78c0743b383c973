#pragma once
// Everything the leader runs, as one Runnable started afresh in every term (or,
// with several shards, what the holder of one shard runs, started afresh each
// time the replica takes the shard):
// the Kafka sink and dispatcher, the ScheduledTask controller, the status writer
// (with its Event aggregator), the results follower and the WorkerPool controller.
//
// Start-up order (unit-tested, tests/unit/leader_term_test.cpp):
//  1. the WorkerPool controller and the results follower start at once (pools are
//     scaled even while Kafka's transactions are unavailable; the replay of
//     results begins);
//  2. the ScheduledTask controller starts at once too and upserts every cached
//     task into the dispatcher, which holds them until step 3 — so the work of
//     reading 100k tasks overlaps the Kafka start-up;
//  3. the dispatcher starts (init_transactions fences older leaders, checkpoints
//     are restored: taken over from the replica's warm CheckpointFollower, or read
//     from the topic), retried with backoff while Kafka is unavailable;
//  4. the replay of results finishes, for at most `results_barrier`
//     (concurrencyPolicy Forbid must know what finished under the last leader);
//  5. the dispatcher fires, and the status writer starts writing; meanwhile the
//     restored checkpoints of tasks no longer in the cache are tombstoned.
// It stops in reverse. A fenced dispatcher ends the term with kFenced.
//
// Metrics of the term are registered in a CallbackMetrics::Scope and removed
// before any object they read is destroyed.

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "common/clock.h"
#include "common/hash.h"
#include "common/kafka.h"
#include "common/metrics.h"
#include "dispatcher/dispatcher.h"
#include "dispatcher/fire_sink.h"
#include "dispatcher/kafka_fire_sink.h"
#include "dispatcher/results_follower.h"
#include "dispatcher/results_hub.h"
#include "operator/cache.h"
#include "operator/events.h"
#include "operator/kube/client.h"
#include "operator/runnable.h"
#include "operator/status_writer.h"
#include "operator/workerpool_controller.h"

namespace cronlane::op {

// Which task ids a shard's term owns; null: every task (a single leader).
using TaskFilter = std::function<bool(const std::string& task_id)>;

// The Kafka side of a term, made fresh for each term. Production: KafkaTermWorld()
// (a single leader), ShardTermWorld() (a shard's term); tests inject fakes.
struct TermWorld {
  std::function<std::unique_ptr<dispatcher::FireSink>()> sink;
  std::function<std::unique_ptr<LagReader>()> lag_reader;
  // A source of results for the tasks `owns` selects (the one place that filters).
  std::function<std::unique_ptr<dispatcher::ResultsSource>(TaskFilter owns, dispatcher::ResultsFollower::OnFinished,
                                                           dispatcher::ResultsFollower::OnResult)>
      results;
};

struct LeaderTermOptions {
  dispatcher::DispatcherOptions dispatcher;
  StatusBudget fire_times;
  StatusBudget conditions{20, 50};
  int workers = 2;
  std::chrono::milliseconds results_barrier{10000};
  std::chrono::milliseconds start_backoff{500};
  std::chrono::milliseconds max_start_backoff{10000};
  std::chrono::milliseconds status_period{1000};
  // A producer fenced while this replica still leads (see Start): the term starts
  // again after this delay (longer than the leader election's retry period, so a
  // replica that lost its Lease to a newer leader notices first), at most
  // `fenced_restarts` times in 10 minutes; then Start returns the fence.
  std::chrono::milliseconds fenced_restart_delay{5000};
  int fenced_restarts = 3;
  std::string kafka_description;  // for logs: the bootstrap servers
  // A shard's term (--shards > 1, run by the ShardCoordinator): only the tasks of
  // shard `shard` of `shards` (by `layout`, common/hash.h) are scheduled, results
  // of other shards' tasks are ignored, the term's metrics carry a shard label, and
  // the WorkerPool controller runs elsewhere (workerpools = false).
  int shard = 0;
  int shards = 1;
  ShardLayout layout = ShardLayout::kRange;
  bool workerpools = true;
  int workerpool_workers = 16;  // pools polled at once (--workerpool-workers)
};

TermWorld KafkaTermWorld(const dispatcher::KafkaSinkOptions& sink, const dispatcher::ResultsFollowerOptions& results,
                         Clock& clock);

// What shard `shard` of `shards` runs, derived from the single-leader settings
// (--shards > 1): its own transactional.id `<id>-<shard>`, partition `shard` of a
// checkpoint topic of `shards` partitions, 1/shards of each status budget, no
// WorkerPool controller (the leader Lease's), and results from the replica's hub.
dispatcher::KafkaSinkOptions ShardSinkOptions(dispatcher::KafkaSinkOptions base, int shard, int shards);
LeaderTermOptions ShardTermOptions(LeaderTermOptions base, int shard, int shards, ShardLayout layout);
TermWorld ShardTermWorld(const dispatcher::KafkaSinkOptions& shard_sink,
                         const std::shared_ptr<dispatcher::ResultsHub>& hub);

class LeaderTerm final : public Runnable {
 public:
  LeaderTerm(kube::KubeClient& client, Cache& cache, EventRecorder& events, Clock& clock, CallbackMetrics& metrics,
             TermWorld world, LeaderTermOptions options);

  // Runs terms until `leading` is cancelled. A term whose producer was fenced
  // while `leading` still holds starts again (a new producer, init_transactions,
  // checkpoints restored: what the next leader would do), as options say: the
  // broker fences a producer whose own transaction it aborted (Kafka unreachable
  // for longer than transaction.timeout.ms), and no newer leader exists then.
  Status Start(CancelToken& leading) override;
  bool NeedsLeaderElection() const override { return true; }
  std::string Name() const override { return "leader-term"; }

 private:
  // One term: returns when `leading` is cancelled (OK) or the producer is fenced.
  Status RunOnce(CancelToken& leading);
  // After the dispatcher started: tombstones for the restored checkpoints of tasks
  // the (synced) cache no longer holds, deleted while no leader ran.
  void ForgetDeletedTasks(dispatcher::Dispatcher& dispatcher);
  // The same for records of Backfills deleted while no leader ran.
  void ForgetDeletedBackfills(dispatcher::Dispatcher& dispatcher);

  kube::KubeClient& client_;
  Cache& cache_;
  EventRecorder& events_;
  Clock& clock_;
  CallbackMetrics& metrics_;
  TermWorld world_;
  LeaderTermOptions options_;
};

}  // namespace cronlane::op
