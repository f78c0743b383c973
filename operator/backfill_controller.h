#pragma once
// The Backfill controller: hands each Backfill to the dispatcher's backfill lane
// (TaskSink::UpsertBackfill) and writes its progress to status. Runs in the
// leader's term (a shard's term: the Backfills of the tasks its shard owns), on a
// WorkQueue fed by the shared cache's Backfills and ScheduledTasks.
//
// Rules:
// - On first sight it resolves spec.taskName in the cache and writes the task's UID
//   to status.taskUID before the dispatcher gets the Backfill: that pins the task's
//   incarnation. A task deleted later makes the Backfill Stalled (TaskNotFound; the
//   dispatcher dropped its backfills with it); one re-created under the name makes
//   it Stalled (TaskReplaced) and it never fires for the new task. This is the one
//   status write before firing, acceptable because a backfill is not time-critical.
// - A task that does not exist yet: Ready=False TaskNotFound (not Stalled: a task and
//   its Backfill applied together may arrive in either order), re-evaluated when the
//   task appears. A task the dispatcher does not schedule (invalid, or not reconciled
//   yet in a new term): retried every 2 s; after 30 s Ready=False TaskNotScheduled.
//   A dispatcher that has not restored its checkpoints yet: retried every 2 s.
// - A range the dispatcher refuses (over kMaxBackfillOccurrences): Stalled
//   TooManyOccurrences; an unparsable or inverted one: Stalled InvalidRange.
// - Status is built from what this controller last wrote (the cache may lag behind
//   it), so no field it wrote is lost; startTime and completionTime never move.
// - With shards, a Backfill's pinned task decides its shard; before the pin, the
//   shard of the Backfill's own UID reports a missing task or a bad range. A task
//   its cache lacks is looked up in the API first (one GET): a replica caches only
//   its own shards' tasks, so only a 404 means the task is missing.
// - Progress (status.fired) is written at most every `progress_period` per
//   Backfill, and at once when it completes (Complete=True, completionTime). A
//   complete Backfill is terminal: it is never handed over again (its record in the
//   checkpoint topic keeps it from refiring until it is deleted).
// - A deleted Backfill is forgotten (TaskSink::ForgetBackfill): it stops, and its
//   record goes.
// A Ready reason that changes gets an Event: Warning for TaskNotFound, TaskReplaced,
// TooManyOccurrences, InvalidRange and TaskNotScheduled; Normal for Completed.
//
// Threading: Run() blocks; OnProgress() is called on the dispatcher's fire thread
// (through the StatusWriter) and only queues a key. Reconcile() runs on Run()'s
// worker, one key at a time (the WorkQueue never hands a key to two workers).

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>

#include "common/cancel.h"
#include "common/clock.h"
#include "common/thread_annotations.h"
#include "dispatcher/task.h"
#include "operator/backfill.h"
#include "operator/cache.h"
#include "operator/events.h"
#include "operator/kube/client.h"
#include "operator/workqueue.h"

namespace cronlane::op {

// Reasons of a Backfill's Ready condition.
inline constexpr const char* kReasonBackfilling = "Backfilling";
inline constexpr const char* kReasonBackfillCompleted = "Completed";
inline constexpr const char* kReasonTaskNotFound = "TaskNotFound";
inline constexpr const char* kReasonTaskReplaced = "TaskReplaced";
inline constexpr const char* kReasonTaskNotScheduled = "TaskNotScheduled";
inline constexpr const char* kReasonTooManyOccurrences = "TooManyOccurrences";
inline constexpr const char* kReasonInvalidRange = "InvalidRange";

struct BackfillControllerOptions {
  std::chrono::milliseconds progress_period{5000};
  std::chrono::milliseconds not_scheduled_retry{2000};
  std::chrono::milliseconds not_scheduled_grace{30000};
};

class BackfillController {
 public:
  // Which task UIDs this controller owns (a shard's); null: all.
  using Owns = std::function<bool(const std::string& task_uid)>;
  // Where Reconcile() reads objects from (the caches in production).
  using LookupBackfill = std::function<std::optional<Backfill>(const std::string& key)>;
  using LookupTask = std::function<std::optional<ScheduledTask>(const std::string& key)>;

  BackfillController(kube::KubeClient& client, KindCache<Backfill>& backfills, KindCache<ScheduledTask>& tasks,
                     dispatcher::TaskSink& sink, EventRecorder& events, Clock& clock, Owns owns = nullptr,
                     BackfillControllerOptions options = {});

  // Subscribes to both caches, queues every cached Backfill, and reconciles until
  // `cancel` fires.
  void Run(CancelToken& cancel);
  // A commit fired more of backfill `b` (DispatcherObserver::OnBackfillProgress).
  void OnProgress(const dispatcher::BackfillDefinition& b);

  // One reconcile of the Backfill at `key`: when to look again (none: on the next
  // change), or the Kubernetes API's error (retried with backoff).
  Result<std::optional<std::chrono::milliseconds>> Reconcile(const std::string& key);

  uint64_t writes() const;
  // For tests without running caches.
  void SetLookupsForTest(LookupBackfill backfill, LookupTask task) {
    lookup_backfill_ = std::move(backfill);
    lookup_task_ = std::move(task);
  }

 private:
  // What the controller remembers of a Backfill between reconciles (set by
  // Reconcile and Write, read by the task handler's index: all under mu_).
  struct Known {
    std::string uid;                        // the UID last seen in the cache
    std::string task_key;                   // spec.taskName's key, for requeues on task changes
    std::string pinned;                     // the task UID this controller wrote to status.taskUID
    std::optional<BackfillStatus> written;  // the status last written (the cache may lag)
    std::optional<std::chrono::steady_clock::time_point> last_write;
    std::optional<std::chrono::steady_clock::time_point> not_scheduled_since;
  };
  // Writes `st` when it differs from the status last written (or, before any
  // write, `b.status`), and records an Event when Ready's
  // reason changed). A change of status.fired alone waits until `progress_period`
  // after this Backfill's last write: then it returns how long to wait.
  Result<std::optional<std::chrono::milliseconds>> Write(const Backfill& b, const BackfillStatus& st);
  void UnindexLocked(const std::string& key, const std::string& task_key) REQUIRES(mu_);

  kube::KubeClient& client_;
  KindCache<Backfill>& backfills_;
  KindCache<ScheduledTask>& tasks_;
  dispatcher::TaskSink& sink_;
  EventRecorder& events_;
  Clock& clock_;
  const Owns owns_;
  const BackfillControllerOptions options_;
  LookupBackfill lookup_backfill_;
  LookupTask lookup_task_;
  WorkQueue queue_;

  mutable Mutex mu_;
  std::map<std::string, Known> known_ GUARDED_BY(mu_);                    // by Backfill key
  std::map<std::string, std::set<std::string>> by_task_ GUARDED_BY(mu_);  // task key -> Backfill keys
  uint64_t writes_ GUARDED_BY(mu_) = 0;
};

}  // namespace cronlane::op
