#pragma once
// The dispatcher: fires each task's occurrences on time, exactly once, into Kafka.
//
// - Tasks arrive through TaskSink (Upsert/Remove) from the operator.
// - A timer thread pops due occurrences off a min-heap and appends them to a
//   pending batch; it never touches the network.
// - A fire thread commits the pending batch in one Kafka transaction: one message
//   per occurrence and shard, plus one checkpoint per task (the scheduled time of
//   its last fired occurrence). A failed commit is aborted by the sink and the
//   batch is retried with backoff; occurrences keep their deterministic ids.
// - A task forgotten (deleted) leaves a tombstone for its checkpoint in the next
//   commit, so the compacted topic holds one record per live task.
// - Start() fences any previous leader (init_transactions) and restores the
//   checkpoints; each task then resumes after its checkpoint, and occurrences it
//   missed are caught up per catchUpPolicy, within startingDeadlineSeconds, at most
//   maxCatchUp, with the rest reported as skipped.
//
// Thread-safe. No Kubernetes code: the operator observes through DispatcherObserver.

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <queue>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include <prometheus/client_metric.h>
#include <prometheus/histogram.h>

#include "common/cancel.h"
#include "common/clock.h"
#include "common/logging.h"
#include "common/rate_limiter.h"
#include "common/thread_annotations.h"
#include "dispatcher/fire_sink.h"
#include "dispatcher/task.h"

namespace cronlane::dispatcher {

// What made an occurrence: the schedule, or a run-now request (TaskSink::RequestRun).
enum class Trigger : uint8_t {
  kSchedule,
  kManual,         // fires the request's token
  kManualSkipped,  // records the token as handled without firing (concurrencyPolicy Forbid)
  kBackfill,       // an occurrence of a backfill (TaskSink::UpsertBackfill)
};

// One occurrence of a task: its scheduled time (the ce_time and checkpoint value)
// and when it fires (scheduled time + the occurrence's jitter). A manual one is
// "scheduled" when the request was handled; its token is the task's in-flight one.
struct Occurrence {
  std::string task_id;
  Instant scheduled;
  Instant fire_at;
  Trigger trigger = Trigger::kSchedule;
  // concurrencyPolicy Replace: the previous occurrence still ran when this one was
  // due; its commit carries a cancel event on DispatcherOptions::control_topic.
  bool replaces = false;
};

// How a run-now request ended (DispatcherObserver::OnRunNow).
enum class RunNowResult : uint8_t { kFired, kSkipped };

// Called on the dispatcher's timer and fire threads, never with the dispatcher's
// lock held. Implementations should return quickly (queue, do not call the network).
class DispatcherObserver {
 public:
  virtual ~DispatcherObserver() = default;
  // After a commit: the task's occurrence at `scheduled` is in Kafka.
  virtual void OnFired(const TaskDefinition& task, Instant scheduled, std::optional<Instant> next) = 0;
  // Occurrences not fired: `count` of them between `first` and `last`; `reason` is
  // a CamelCase reason (MissedSchedule, TooManyMissed) and `message` explains.
  virtual void OnSkipped(const TaskDefinition& task, int count, Instant first, Instant last, const std::string& reason,
                         const std::string& message) = 0;
  // The sink reported that another producer fenced this one: stop dispatching.
  virtual void OnFenced(const std::string& message) = 0;
  // A one-shot (runAt) or bounded (endTime) task has nothing left to fire: its last
  // occurrence was committed or skipped, or its window closed. `last` is the
  // scheduled time of its last fired occurrence, if any.
  virtual void OnCompleted(const TaskDefinition& task, std::optional<Instant> last) {
    (void)task;
    (void)last;
  }
  // Start() scheduled `task` (held since its Upsert) from its restored checkpoint:
  // its next fire is `next` (none when suspended or never firing again).
  virtual void OnScheduled(const TaskDefinition& task, std::optional<Instant> next) {
    (void)task;
    (void)next;
  }
  // After a commit: the run-now request `token` of `task`, handled at `at`, fired
  // (its occurrence is in Kafka) or was skipped (`message` says why); either way the
  // token is recorded and never fires again.
  virtual void OnRunNow(const TaskDefinition& task, const std::string& token, Instant at, RunNowResult result,
                        const std::string& message) {
    (void)task;
    (void)token;
    (void)at;
    (void)result;
    (void)message;
  }
  // A new leader restored the record of the task's last run-now request (handled
  // by an earlier leader, whose status write may not have happened): the same
  // facts as OnRunNow, to be shown again, not counted again.
  virtual void OnRunNowRestored(const TaskDefinition& task, const std::string& token, Instant at, RunNowResult result) {
    (void)task;
    (void)token;
    (void)at;
    (void)result;
  }
  // A commit fired more of a backfill: `state` is its progress (done() once all).
  virtual void OnBackfillProgress(const BackfillDefinition& backfill, const BackfillState& state) {
    (void)backfill;
    (void)state;
  }
};

struct DispatcherOptions {
  std::string default_topic = "cronlane.tasks";
  // An occurrence fired later than this after its time counts as missed, and the
  // catch-up policy decides whether it still fires.
  std::chrono::seconds late_threshold{2};
  std::chrono::milliseconds retry_backoff{200};
  std::chrono::milliseconds max_retry_backoff{5000};
  size_t max_batch_occurrences = 20000;
  // How often occurrences for a topic that does not exist (FireSink::MissingTopics)
  // are tried again, with their catch-up policy applied to how late they are.
  std::chrono::milliseconds missing_topic_retry{5000};
  // concurrencyPolicy Forbid: how long an occurrence of a task without
  // execution.timeoutSeconds counts as running when no result arrives (a worker
  // that died, results not configured). With a timeout the limit is derived from
  // timeout, attempts and backoff.
  std::chrono::seconds forbid_running_limit{3600};
  // concurrencyPolicy Replace: where the cancel events go (common/cloudevent.h
  // CancelEvent), read by every worker. Empty: Replace tasks fire as Allow.
  std::string control_topic;
  // The CloudEvents `source` of a task's occurrences, a URI-reference naming the
  // task (the operator gives the ScheduledTask's API path); unset:
  // DefaultEventSource. Called on the fire thread, per occurrence, with no lock
  // held: derived when firing rather than stored with each task (memory per task).
  std::function<std::string(const TaskDefinition&)> event_source;
};

struct DispatcherStats {
  uint64_t fired = 0;     // occurrences committed
  uint64_t messages = 0;  // messages committed (occurrences x shards)
  uint64_t skipped = 0;   // occurrences not fired by policy or deadline
  uint64_t commits = 0;
  uint64_t commit_failures = 0;
  uint64_t tombstones = 0;  // checkpoints of forgotten tasks deleted
  uint64_t cancels = 0;     // cancel events committed (concurrencyPolicy Replace)
  uint64_t backfilled = 0;  // backfill occurrences committed
  size_t tasks = 0;
  size_t pending = 0;  // occurrences waiting for a commit
};

// Occurrences of one namespace's tasks (metrics: one series per namespace, never one
// per task).
struct NamespaceCounts {
  uint64_t fired = 0;    // committed
  uint64_t skipped = 0;  // not fired by policy or deadline
};

// The CloudEvents id of an occurrence: "<task uid>:<scheduled unix seconds>[:<shard>]".
std::string OccurrenceId(const std::string& task_id, Instant scheduled, int shard, int shards);
// The CloudEvents id of a run-now occurrence: "<task uid>:run-now:<token>[:<shard>]",
// never equal to a scheduled occurrence's id.
std::string ManualOccurrenceId(const std::string& task_id, const std::string& token, int shard, int shards);
// The CloudEvents id of a backfill's occurrence: "<task uid>:bf-<backfill uid>:<scheduled
// unix seconds>[:<shard>]", never equal to a live occurrence's id of the same instant.
std::string BackfillOccurrenceId(const std::string& task_id, const std::string& backfill_id, Instant scheduled,
                                 int shard, int shards);
// An occurrence id taken apart (ids of every form; TaskResult::TaskId() is `task_id`).
struct ParsedOccurrenceId {
  std::string task_id;
  std::string token;     // run-now token; empty otherwise
  std::string backfill;  // backfill UID; empty otherwise
  std::string base;      // the id without its shard suffix: one per occurrence
};
ParsedOccurrenceId ParseOccurrenceId(std::string_view id);
// The checkpoint record that says which run-now token of a task was handled last:
// key "<uid>" + kRunNowSuffix, value "<unix> <Fired|Skipped> <token>".
inline constexpr const char* kRunNowSuffix = "/run-now";
// The checkpoint record of a backfill's progress: key "<task uid>" +
// kBackfillInfix + "<backfill uid>", value "<cursor unix> <fired> <total>" (the
// cursor is the last instant fired: the latest oldest-first, the earliest
// newest-first).
inline constexpr const char* kBackfillInfix = "/backfill/";
// The deterministic jitter of an occurrence, in [0, jitter_seconds].
std::chrono::seconds JitterFor(const std::string& task_id, Instant scheduled, int jitter_seconds);
// The CloudEvents `source` of a task's occurrences when the embedder names none
// (DispatcherOptions::event_source): "/<namespace>/<name>".
std::string DefaultEventSource(const TaskDefinition& task);
// The messages of one occurrence (one per shard), CloudEvents binary mode; `source`
// empty: DefaultEventSource. With a `manual_token` they are the run-now occurrence
// of that token (ManualOccurrenceId, and a `ce_trigger: manual` attribute).
std::vector<OutMessage> BuildMessages(const TaskDefinition& task, Instant scheduled, std::chrono::seconds jitter,
                                      const std::string& default_topic, const std::string& source = "",
                                      const std::string& manual_token = "");

class Dispatcher final : public TaskSink {
 public:
  Dispatcher(Clock& clock, FireSink& sink, DispatcherObserver* observer, DispatcherOptions options = {});
  ~Dispatcher() override;

  // Fences older producers and restores checkpoints. Call before Run(); tasks
  // upserted before Start() are held until it succeeds.
  Status Start();
  // Runs the timer and fire threads until `cancel` fires or the sink is fenced.
  void Run(CancelToken& cancel);

  Result<TaskState> Upsert(TaskDefinitionPtr task) override;
  using TaskSink::Upsert;
  void Remove(const std::string& id) override;
  // Remove(), and a tombstone for the task's checkpoint in the next commit (one
  // is made for the tombstones alone when nothing is due). An Upsert of the same
  // id before that commit cancels the tombstone.
  void Forget(const std::string& id) override;
  Result<TaskState> State(const std::string& id) const override;
  Status RequestRun(const std::string& id, const RunRequest& request) override;
  Result<BackfillState> UpsertBackfill(const BackfillDefinition& b) override;
  void ForgetBackfill(const std::string& id) override;

  // A worker reported that the occurrence of task `id` scheduled at `scheduled`
  // finished (succeeded, or failed every attempt). concurrencyPolicy Forbid fires
  // a task's next occurrence only after its previous one finished. Ids not known
  // (yet) are remembered. Thread-safe.
  void OnFinished(const std::string& id, Instant scheduled);
  // A worker reported that the run-now occurrence `token` of task `id` finished: it
  // no longer counts as running for concurrencyPolicy Forbid. Thread-safe.
  void OnManualFinished(const std::string& id, const std::string& token);

  DispatcherStats Stats() const;
  // Histograms (prometheus::Histogram::Collect(); thread-safe, no dispatcher lock):
  // fire lag, each occurrence's due time (scheduled + jitter) to the commit of the
  // transaction that fired it, by the injected clock; and the duration of each
  // commit attempt, failed ones included.
  prometheus::ClientMetric FireLag() const { return fire_lag_.Collect(); }
  // DispatcherStats' fired and skipped by the tasks' namespace, since this dispatcher
  // was made; a namespace stays once counted.
  std::map<std::string, NamespaceCounts> CountsByNamespace() const;
  prometheus::ClientMetric CommitDuration() const { return commit_duration_.Collect(); }

  // Ids whose checkpoints Start() restored but no Upsert has claimed yet: tasks not
  // upserted so far (invalid ones among them) and tasks deleted while no leader
  // ran. The operator forgets those that no longer exist.
  std::vector<std::string> UnclaimedCheckpoints() const;
  // Backfill ids whose records Start() restored but no UpsertBackfill has claimed:
  // complete Backfills (the operator does not hand those over again) and Backfills
  // deleted while no leader ran. The operator forgets those that no longer exist.
  std::vector<std::string> UnclaimedBackfills() const;

  // Deterministic core, for tests with simulated time: moves every occurrence due
  // at `now` to the pending batch (applying catch-up policies) and returns how many.
  size_t CollectDue(Instant now);
  // Commits the pending batch once. OK when it was empty or committed.
  Status FireOnce();
  // The earliest fire time in the heap, if any.
  std::optional<Instant> NextDue() const;

 private:
  // Task definitions are shared between the table, fire batches and observer
  // reports, never copied per occurrence.
  using DefPtr = TaskDefinitionPtr;
  struct Entry {
    DefPtr def;
    Schedule schedule;                       // unused by a runAt task
    std::unique_ptr<const FireSpec> window;  // runAt/startTime/endTime; null for almost every task
    std::optional<Instant> last_fired;       // from checkpoints and commits
    std::optional<Instant> next;             // next occurrence to consider (scheduled time)
    uint64_t version = 0;                    // bumps on every change; stale heap items are skipped
    std::optional<Instant> started;          // latest occurrence handed to the sink (Forbid)
  };
  // Run-now state of a task that has had a request or a record (few tasks): kept
  // apart from Entry so the other 100k tasks pay nothing for it.
  struct Manual {
    RunRequest requested;            // the latest request
    std::string handled;             // the last token committed (Fired or Skipped), from the record
    std::string in_flight;           // the token queued or being committed
    std::optional<Instant> running;  // when the last fired run was handled, until its result (Forbid)
  };
  // A backfill in progress (few at a time). Its occurrences fill what room a batch
  // has once no live occurrence waits, at most def.per_second.
  struct Backfill {
    BackfillDefinition def;
    Instant end;                    // min(def.to, the task's creation): exclusive
    std::optional<Instant> cursor;  // the last instant committed
    int64_t fired = 0, total = 0;
    std::unique_ptr<RateLimiter> rate;
    bool in_flight = false;  // a batch carrying its next instants is being committed
    std::optional<Instant> next_cursor;
    int64_t next_fired = 0;
  };
  // The instant after `cursor` in the backfill's order, if any is left.
  std::optional<Instant> NextBackfillInstant(const Backfill& b, const Entry& task, std::optional<Instant> cursor) const
      REQUIRES(mu_);
  // Takes the task's restored record of backfill `b` (Start, UpsertBackfill).
  void ClaimBackfillRecordLocked(Backfill& b) REQUIRES(mu_);
  // A backfill has instants left and none in flight (the fire thread has work).
  bool BackfillWaitingLocked() const REQUIRES(mu_);
  // One backfill occurrence of a batch.
  struct BackfillOccurrence {
    std::string backfill_id;
    DefPtr def;
    Instant at;
  };
  // Up to `room` backfill occurrences the rates allow now; marks their backfills
  // in flight.
  // A backfill whose range turned out to hold no more instants (the task's times
  // changed) is done without a commit: it goes to `shrunk`, for the observer.
  void TakeBackfillsLocked(size_t room, std::vector<BackfillOccurrence>& out,
                           std::vector<std::pair<BackfillDefinition, BackfillState>>& shrunk) REQUIRES(mu_);
  // A skip decided under the lock, reported to the observer after releasing it, so
  // the observer may block (log, queue an Event) without stalling the timer.
  struct SkipReport {
    DefPtr def;
    int count;
    Instant first, last;
    std::string reason, message;
  };
  struct HeapItem {
    Instant fire_at;
    DefPtr def;  // shared, not a copy of the id (memory per task); stale after a Remove
    uint64_t version;
    bool operator>(const HeapItem& o) const { return fire_at > o.fire_at; }
  };

  void ScheduleLocked(Entry& e, Instant now) REQUIRES(mu_);
  // The task's fire times: its schedule within its window, or its runAt.
  static FireTimes Times(const Entry& e) { return FireTimes(e.schedule, e.window.get()); }
  // A bounded or one-shot task with nothing left to fire (not suspended).
  bool CompleteLocked(const Entry& e) const REQUIRES(mu_);
  // Completions found under the lock, for DeliverSkips() to hand to the observer.
  std::vector<std::pair<DefPtr, std::optional<Instant>>> completions_ GUARDED_BY(mu_);
  // Re-applies each task's catch-up policy to pending_ (after a failed commit, or
  // when held occurrences come back): what became too late is skipped.
  void ReapplyPoliciesLocked() REQUIRES(mu_);
  // Moves held_ back to the front of pending_ once its retry time has come.
  bool ReleaseHeldLocked(Instant now) REQUIRES(mu_);
  // A restored checkpoint as the task's last fired occurrence, or none when it cannot
  // be one: later than now or earlier than the task's creation by more than an hour
  // of clock offset (garbage on the topic, or a clock far off). Trusting it would
  // stop the task until that time, or replay its occurrences since 1970.
  std::optional<Instant> PlausibleCheckpoint(const TaskDefinition& task, int64_t value, Instant now) REQUIRES(mu_);
  // concurrencyPolicy Forbid: drops `fire` (reporting it skipped) while the task's
  // previous occurrence runs, and keeps only the latest when several are due.
  std::vector<Instant> ForbidLocked(Entry& e, std::vector<Instant> fire, Instant now) REQUIRES(mu_);
  // concurrencyPolicy Replace: keeps only the latest of several due occurrences
  // (reporting the others skipped); `replaces` says whether the previous one still
  // runs (a cancel event goes with it). Without a control topic, Replace is Allow.
  std::vector<Instant> ReplaceLocked(Entry& e, std::vector<Instant> fire, Instant now, bool& replaces) REQUIRES(mu_);
  // The start of the task's occurrence (scheduled or run now) that still runs, for
  // concurrencyPolicy Forbid: no result yet, and not older than the longest it can run.
  std::optional<Instant> RunningLocked(const Entry& e, Instant now) REQUIRES(mu_);
  // Queues the task's requested run-now token if it is new and nothing is in flight:
  // to fire, or (Forbid, not forced, a run in progress) to be recorded as skipped.
  void DecideRunLocked(const Entry& e, Manual& m, Instant now) REQUIRES(mu_);
  // Takes the task's restored run-now record (Start, Upsert) into manual_, and
  // queues it for the observer (DeliverRestoredRuns).
  void ClaimRecordLocked(const DefPtr& def) REQUIRES(mu_);
  void DeliverRestoredRuns() EXCLUDES(mu_);
  struct RestoredRun {
    DefPtr def;
    std::string token;
    Instant at;
    RunNowResult result;
  };
  void PushLocked(Entry& e) REQUIRES(mu_);
  // Applies the task's policy to `occ` (its occurrences due now, oldest first).
  // `dropped` older occurrences were already cut off by the collection window
  // (the first of them at `dropped_first`); they are reported together.
  std::vector<Instant> ApplyPolicyLocked(const Entry& e, const std::vector<Instant>& occ, Instant now,
                                         size_t dropped = 0, std::optional<Instant> dropped_first = std::nullopt)
      REQUIRES(mu_);
  Instant Now() const;
  // Hands the skips collected under the lock to the observer; call without mu_ held.
  void DeliverSkips() EXCLUDES(mu_);
  // CollectDue() without delivering skips: takes mu_ and leaves them in skips_.
  size_t MoveDueToPending(Instant now) EXCLUDES(mu_);

  Clock& clock_;
  FireSink& sink_;
  DispatcherObserver* observer_;
  const DispatcherOptions options_;

  mutable Mutex mu_;
  std::condition_variable cv_;  // wakes the timer (new tasks) and fire threads (pending)
  // By task id; the key views the id inside the entry's own definition (no copy of
  // the UID per task), so replacing `def` re-keys the entry (Upsert).
  std::unordered_map<std::string_view, Entry> tasks_ GUARDED_BY(mu_);
  std::map<std::string, Instant> finished_ GUARDED_BY(mu_);  // latest finished occurrence per task id (Forbid)
  std::priority_queue<HeapItem, std::vector<HeapItem>, std::greater<>> heap_ GUARDED_BY(mu_);
  std::deque<Occurrence> held_ GUARDED_BY(mu_);  // due, for a topic that does not exist
  Instant held_until_ GUARDED_BY(mu_){};         // when held_ goes back to pending_
  LogThrottle missing_topic_log_ GUARDED_BY(mu_);
  std::deque<Occurrence> pending_ GUARDED_BY(mu_);  // due, oldest first; batches leave from the front
  std::vector<SkipReport> skips_ GUARDED_BY(mu_);   // collected under mu_, delivered by DeliverSkips()
  LogThrottle implausible_log_ GUARDED_BY(mu_);     // warnings for checkpoints that cannot be
  std::unordered_map<std::string, int64_t> restored_ GUARDED_BY(mu_);  // checkpoints read at Start(), until claimed
  CheckpointRecords restored_records_ GUARDED_BY(mu_);                 // typed records read at Start(), until claimed
  // Keys to tombstone in the next commit: forgotten tasks' ids and their records' keys.
  std::unordered_set<std::string> forgotten_ GUARDED_BY(mu_);
  std::unordered_map<std::string, Manual> manual_ GUARDED_BY(mu_);  // by task id
  std::map<std::string, Backfill> backfills_ GUARDED_BY(mu_);       // by backfill id
  std::vector<RestoredRun> restored_runs_ GUARDED_BY(mu_);          // claimed, for the observer
  bool started_ GUARDED_BY(mu_) = false;
  std::atomic<bool> fenced_{false};
  DispatcherStats stats_ GUARDED_BY(mu_);
  std::map<std::string, NamespaceCounts> by_namespace_ GUARDED_BY(mu_);
  // Seconds. From 5 ms (a commit on an idle broker) to 5 minutes (an outage the
  // catch-up policy still fires).
  prometheus::Histogram fire_lag_{
      prometheus::Histogram::BucketBoundaries{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300}};
  prometheus::Histogram commit_duration_{
      prometheus::Histogram::BucketBoundaries{0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30}};
};

}  // namespace cronlane::dispatcher
