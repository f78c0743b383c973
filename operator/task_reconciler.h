#pragma once
// Reconciles one ScheduledTask key: reads the informer cache, hands the task to the
// dispatcher (or removes it), and computes the status fields it owns
// (observedGeneration, conditions) in memory. When they differ from the cache it
// hands them to the StatusWriter, which writes them later under its budget: a
// reconcile never waits on the API server, so a new task is scheduled the moment
// the cache knows it. Level-triggered and idempotent: any number of calls for the
// same state hand over (and so write) at most once.

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "common/clock.h"
#include "common/thread_annotations.h"
#include "dispatcher/task.h"
#include "operator/events.h"
#include "operator/kube/client.h"
#include "operator/scheduled_task.h"
#include "operator/status_writer.h"

namespace cronlane::op {

// Ready condition reasons (besides dispatcher::TaskProblem reasons).
inline constexpr const char* kReasonScheduled = "Scheduled";
inline constexpr const char* kReasonSuspended = "Suspended";
inline constexpr const char* kReasonCompleted = "Completed";

class TaskReconciler {
 public:
  // Reads the cached object for a key ("namespace/name"); nullopt when absent.
  using Lookup = std::function<std::optional<ScheduledTask>(const std::string& key)>;

  // The shard of a task UID (--shards > 1: ShardOf with the installation's count
  // and layout, common/hash.h); null when the tasks are not sharded.
  using ShardOfTask = std::function<int32_t(const std::string& uid)>;

  // `events` should not block (an EventAggregator). With `shard_of` the status
  // also says which shard fires the task (status.shard).
  TaskReconciler(Lookup lookup, dispatcher::TaskSink& sink, StatusWriter& status, EventRecorder& events, Clock& clock,
                 ShardOfTask shard_of = nullptr);

  // OK: converged (the caller forgets the key's backoff). An error: retry later
  // with backoff (the dispatcher failed; a task it refuses is converged, with
  // the problem in its conditions).
  Status Reconcile(const std::string& key);

  // Whether a cache change for a key needs a reconcile: new, deleted, a spec
  // change (generation) or a new run-now request (annotations do not bump the
  // generation). Our own status writes do not qualify.
  static bool NeedsReconcile(const ScheduledTask* old, const ScheduledTask* now);

  // Status changes handed to the StatusWriter.
  uint64_t status_updates() const { return status_updates_.load(); }

 private:
  // Hands `t`'s run-now request to the sink; a request that cannot be handled (the
  // task is refused, the token is invalid) is a Warning Event RunNowRefused.
  void RequestRun(const ScheduledTask& t, const std::optional<dispatcher::TaskProblem>& problem);
  // The Ready condition for `t`, with lastTransitionTime kept when unchanged.
  std::vector<Condition> DesiredConditions(const ScheduledTask& t, const dispatcher::TaskState& state) const;

  Lookup lookup_;
  dispatcher::TaskSink& sink_;
  StatusWriter& status_;
  EventRecorder& events_;
  Clock& clock_;
  const ShardOfTask shard_of_;
  struct Known {
    // The definition last handed to the sink (its id is the UID), shared with the
    // cache and the dispatcher rather than a copy of the UID.
    dispatcher::TaskDefinitionPtr def;
    // What was last handed to the status writer, so a repeated reconcile (a relist,
    // before the cache shows the write) hands nothing over again.
    int64_t reported_generation = -1;
    size_t reported_hash = 0;  // of the conditions (a hash, not a copy: memory per task)
  };
  Mutex mu_;
  std::map<std::string, Known> known_ GUARDED_BY(mu_);  // by key
  std::atomic<uint64_t> status_updates_{0};
};

}  // namespace cronlane::op
