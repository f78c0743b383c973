#pragma once
// Reconciles one ScheduledTask key: reads the informer cache, hands the task to the
// dispatcher (or removes it), computes status in memory and writes it once, only
// when it changed. Level-triggered and idempotent: any number of calls for the same
// state write at most once.

#include <map>
#include <mutex>
#include <string>

#include <functional>
#include <optional>
#include "common/clock.h"
#include "dispatcher/task.h"
#include "operator/events.h"
#include "operator/kube/client.h"
#include "operator/scheduled_task.h"

namespace cronlane::op {

// Ready condition reasons (besides dispatcher::TaskProblem reasons).
inline constexpr const char* kReasonScheduled = "Scheduled";
inline constexpr const char* kReasonSuspended = "Suspended";

class TaskReconciler {
 public:
  // Reads the cached object for a key ("namespace/name"); nullopt when absent.
  using Lookup = std::function<std::optional<ScheduledTask>(const std::string& key)>;

  TaskReconciler(kube::KubeClient& client, Lookup lookup, dispatcher::TaskSink& sink, EventRecorder& events,
                 Clock& clock);

  // OK: converged (the caller forgets the key's backoff). An error: retry later
  // with backoff (API errors; conflicts resolve on the next read of the cache).
  Status Reconcile(const std::string& key);

  // Whether a cache change for a key needs a reconcile: new, deleted, or a spec
  // change (generation). Our own status writes do not qualify.
  static bool NeedsReconcile(const ScheduledTask* old, const ScheduledTask* now);

  uint64_t status_writes() const { return status_writes_.load(); }

 private:
  TaskStatus Desired(const ScheduledTask& t, const std::optional<dispatcher::TaskProblem>& problem,
                     const dispatcher::TaskState& state) const;

  kube::KubeClient& client_;
  Lookup lookup_;
  dispatcher::TaskSink& sink_;
  EventRecorder& events_;
  Clock& clock_;
  std::mutex mu_;
  std::map<std::string, std::string> uid_by_key_;  // to remove deleted tasks from the dispatcher
  std::atomic<uint64_t> status_writes_{0};
};

}  // namespace cronlane::op
