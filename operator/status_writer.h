#pragma once
// The only writer of ScheduledTask status. Firing never waits for it: the
// reconciler and the dispatcher hand it what changed, and it patches status on its
// own thread under two budgets.
//
// Who owns which field (one writer per field, so no patch carries a stale value
// read from the cache):
// - the reconciler decides `observedGeneration` and `conditions` (OnReconciled);
// - the dispatcher's commits decide `lastScheduleTime`, `nextScheduleTime`,
//   `firedCount`, `missedCount` and `lastRunNow` (OnFired, OnSkipped, OnRunNow),
//   the results topic decides `lastSuccessfulTime`, `recentRuns` and
//   `lastFailureTime` (OnResult).
// The writer keeps the latest value of each per task and writes them with merge
// patches on /status:
// - condition changes first, under the condition budget (--condition-qps/-burst):
//   a new task's first Ready condition trails its scheduling by the budget, it
//   never gates it;
// - fire times under the status budget (--status-qps/-burst), coalesced: 100k
//   every-minute tasks cost the budget, not 1,700 writes a second.
// Warning Events (skips, invalid specs, failed runs) go through an EventAggregator that this
// writer flushes on its thread, so the dispatcher never waits on the API server.
//
// Threading: every On*() and Forget() is safe from any thread and only takes the
// writer's own lock (and the informer cache's, through `lookup`). Run()/Flush() on
// one thread; the network is used with no lock held.

#include <deque>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/cancel.h"
#include "common/clock.h"
#include "common/rate_limiter.h"
#include "common/thread_annotations.h"
#include "dispatcher/dispatcher.h"
#include "operator/event_aggregator.h"
#include "operator/kube/client.h"
#include "operator/scheduled_task.h"

namespace cronlane::op {

struct StatusBudget {
  double qps = 10;  // <= 0: unlimited
  int burst = 20;
};

class StatusWriter final : public dispatcher::DispatcherObserver {
 public:
  using Lookup = std::function<std::optional<ScheduledTask>(const std::string& key)>;
  StatusWriter(kube::KubeClient& client, Lookup lookup, EventAggregator& events, Clock& clock, StatusBudget fire_times,
               StatusBudget conditions, std::function<void(const std::string&)> on_fenced);

  // The reconciler's decision for task `t` (as cached): its observedGeneration and
  // conditions, the dispatcher's next fire time after the upsert (none: never), and
  // with --shards the task's shard (-1: none, and status.shard is removed).
  void OnReconciled(const ScheduledTask& t, int64_t observed_generation, std::vector<Condition> conditions,
                    std::optional<Instant> next_schedule_time, int32_t shard = -1);
  // The task "namespace/name" is gone: its pending writes are dropped.
  void Forget(const std::string& key);

  void OnFired(const dispatcher::TaskDefinition& task, dispatcher::Instant scheduled,
               std::optional<dispatcher::Instant> next) override;
  void OnSkipped(const dispatcher::TaskDefinition& task, int count, dispatcher::Instant first, dispatcher::Instant last,
                 const std::string& reason, const std::string& message) override;
  void OnFenced(const std::string& message) override;
  // A one-shot or bounded task has nothing left to fire: nextScheduleTime is cleared
  // and the task's key goes to `on_completed` (the controller reconciles it into
  // Ready=Completed and Complete=True).
  void OnCompleted(const dispatcher::TaskDefinition& task, std::optional<dispatcher::Instant> last) override;
  // Where OnCompleted() sends keys. Set once, before the dispatcher starts.
  void SetOnCompleted(std::function<void(const std::string& key)> on_completed) {
    on_completed_ = std::move(on_completed);
  }
  // A commit fired more of a backfill: passed on to `on_backfill_progress` (the
  // Backfill controller writes the Backfill's status).
  void OnBackfillProgress(const dispatcher::BackfillDefinition& backfill,
                          const dispatcher::BackfillState& state) override {
    (void)state;
    if (on_backfill_progress_) on_backfill_progress_(backfill);
  }
  // Set once, before the dispatcher starts.
  void SetOnBackfillProgress(std::function<void(const dispatcher::BackfillDefinition&)> f) {
    on_backfill_progress_ = std::move(f);
  }
  // A run-now request was handled: status.lastRunNow says which token, when and
  // how (written with the fire times, under their budget), and a Normal Event
  // RunNow (Fired) or a Warning RunNowSkipped is recorded. A fired run counts in
  // firedCount.
  void OnRunNow(const dispatcher::TaskDefinition& task, const std::string& token, dispatcher::Instant at,
                dispatcher::RunNowResult result, const std::string& message) override;
  // A new leader restored the last run-now record: lastRunNow is written again (the
  // previous leader may have died before writing it); no Event, no count.
  void OnRunNowRestored(const dispatcher::TaskDefinition& task, const std::string& token, dispatcher::Instant at,
                        dispatcher::RunNowResult result) override;
  // The dispatcher started and scheduled a task the reconciler handed it earlier:
  // its nextScheduleTime is written if it differs from what status shows.
  void OnScheduled(const dispatcher::TaskDefinition& task, std::optional<dispatcher::Instant> next) override;
  // A worker reported a run (an occurrence, or a shard of it) of task UID `uid`,
  // named r.subject ("namespace/name"); results for tasks not in the cache, or for
  // an older incarnation of the name, are ignored. It merges into recentRuns
  // (operator/run_history.h); a success moves lastSuccessfulTime forward, a failure
  // lastFailureTime. A run that turns Failed (or dead-lettered) for the first time
  // is a Warning Event RunFailed (RunDeadLettered), aggregated like the others; a
  // replayed result changes nothing and records nothing. Written with the fire
  // times, under their budget.
  void OnResult(const std::string& uid, const dispatcher::RunResult& r);

  // Writes pending status and Events every `period` within the budgets, until
  // cancelled; a last pass on the way out.
  void Run(CancelToken& cancel, std::chrono::milliseconds period = std::chrono::milliseconds(1000));
  // One pass (tests): returns the number of status patches written.
  int Flush();

  uint64_t writes() const { return writes_.load(); }
  size_t backlog() const;  // tasks with a status change not yet written
  size_t tracked() const;  // tasks with an entry (memory)

 private:
  struct RunNow {
    std::string token;
    Instant at;
    dispatcher::RunNowResult result;
    std::string message;
  };
  struct Pending {
    // Which incarnation of the name the entry is for: a hash of its UID, not a copy
    // (8 bytes instead of about 80 per task; 64-bit collisions between two
    // incarnations of one name are not a practical concern).
    size_t uid_hash = 0;
    // Fire times (the dispatcher's and the results follower's).
    // Instants, not strings: 8 bytes each instead of a heap string (memory per task).
    std::optional<Instant> last, next, last_success;
    int64_t fired = 0, missed = 0;  // absolute counts
    // The reconciler's fields; conditions are dropped once written.
    int64_t observed_generation = 0;
    SharedConditions conditions;  // interned: 100k new tasks wait with a handful of copies
    int32_t shard = -1;
    // The last run-now request handled, until written (merge patches leave the
    // written value alone); null for almost every task.
    std::shared_ptr<const RunNow> run_now;
    // The run history as last merged (null: none). Kept after it is written, since
    // the cache may not show the write yet when the next result arrives; once the
    // cache shows it, the entry shares the cache's copy (Settle).
    SharedRunHistory runs;
    bool runs_dirty = false;  // `runs` changed since the last write
    bool times_dirty = false;
    bool conditions_dirty = false;
    // Whether the entry waits in times_queue_ / conditions_queue_.
    bool in_times_queue = false;
    bool in_conditions_queue = false;
    // Forgotten (deleted) while a queue still points at it: erased once no queue does.
    bool gone = false;
  };
  using Entries = std::map<std::string, Pending>;
  struct Write {
    std::string key;  // namespace/name
    Pending p;
  };
  static size_t UidHash(std::string_view uid) { return std::hash<std::string_view>{}(uid); }
  Entries::iterator EntryLocked(const std::string& key, const std::string& uid) REQUIRES(mu_);
  // Marks fields dirty and queues the entry at the back of its queue (once).
  void MarkTimesLocked(Entries::iterator it) REQUIRES(mu_);
  void MarkConditionsLocked(Entries::iterator it) REQUIRES(mu_);
  // Drops an entry: now, or (when a queue points at it) once the queues let go.
  void EraseLocked(Entries::iterator it) REQUIRES(mu_);
  // Erases a gone entry no queue points at any more.
  void EraseIfGoneLocked(Entries::iterator it) REQUIRES(mu_);
  static kube::Json PatchFor(const Pending& p, bool with_conditions);
  // Writes `batch`; entries that failed are marked dirty again (at the back).
  int WriteBatch(const std::vector<Write>& batch, bool with_conditions) EXCLUDES(mu_);
  // Entries whose run history was written share the cache's copy once the cache
  // shows it (one copy per task, not two); each waits a few passes at most.
  void Settle() EXCLUDES(mu_);

  kube::KubeClient& client_;
  Lookup lookup_;
  EventAggregator& events_;
  RateLimiter times_budget_;
  RateLimiter conditions_budget_;
  std::function<void(const std::string&)> on_fenced_;
  std::function<void(const std::string&)> on_completed_;
  std::function<void(const dispatcher::BackfillDefinition&)> on_backfill_progress_;
  mutable Mutex mu_;
  Entries tasks_ GUARDED_BY(mu_);    // by namespace/name
  size_t gone_ GUARDED_BY(mu_) = 0;  // entries of tasks_ that are gone
  // Dirty entries in the order they became dirty, so every task gets its turn under
  // the budget (a pass that walked tasks_ in key order would write the same first
  // keys every minute and never reach the rest), and a pass costs what it writes,
  // not a walk over 100k entries. The queues hold iterators, not copies of the key
  // (with 100k every-minute tasks both queues hold every task: 8 bytes each instead
  // of a heap string); an entry is never erased while a queue points at it
  // (EraseLocked). An entry may be clean or gone when its turn comes: a pass skips it.
  std::deque<Entries::iterator> conditions_queue_ GUARDED_BY(mu_);
  std::deque<Entries::iterator> times_queue_ GUARDED_BY(mu_);
  struct Settling {
    std::string key;
    int passes_left;
  };
  std::vector<Settling> settling_;  // Run()/Flush()'s thread only
  std::atomic<uint64_t> writes_{0};
};

}  // namespace cronlane::op
