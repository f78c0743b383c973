#pragma once
// Turns the dispatcher's fires into ScheduledTask status under an operator-wide
// write budget (--status-qps/--status-burst). The checkpoint topic is the record of
// firing; status is a view of it: per task only the latest values are kept, and
// they are written when the budget allows, so 100k every-minute tasks cost at most
// the budget, not 1,700 writes a second. Skipped occurrences become Warning Events.

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>

#include "common/cancel.h"
#include "common/clock.h"
#include "common/rate_limiter.h"
#include "dispatcher/dispatcher.h"
#include "operator/events.h"
#include "operator/kube/client.h"
#include "operator/scheduled_task.h"

namespace cronlane::op {

class StatusWriter final : public dispatcher::DispatcherObserver {
 public:
  using Lookup = std::function<std::optional<ScheduledTask>(const std::string& key)>;
  StatusWriter(kube::KubeClient& client, Lookup lookup, EventRecorder& events, Clock& clock, double qps, int burst,
               std::function<void(const std::string&)> on_fenced);

  void OnFired(const dispatcher::TaskDefinition& task, dispatcher::Instant scheduled,
               std::optional<dispatcher::Instant> next) override;
  void OnSkipped(const dispatcher::TaskDefinition& task, int count, dispatcher::Instant first, dispatcher::Instant last,
                 const std::string& reason, const std::string& message) override;
  void OnFenced(const std::string& message) override;
  // A worker reported an occurrence of task `subject` ("namespace/name", UID `uid`)
  // succeeded at `finished`: status.lastSuccessfulTime moves forward (results for
  // tasks not in the cache, or for an older incarnation of the name, are ignored).
  void OnSucceeded(const std::string& subject, const std::string& uid, dispatcher::Instant finished);

  // Writes pending status every `period` within the budget, until cancelled.
  void Run(CancelToken& cancel, std::chrono::milliseconds period = std::chrono::milliseconds(1000));
  // One pass (tests): returns the number of status patches written.
  int Flush();

  uint64_t writes() const { return writes_.load(); }
  size_t backlog() const;

 private:
  struct Pending {
    std::string ns, name, uid;
    std::string last, next, last_success;
    int64_t fired = 0, missed = 0;  // absolute counts
    bool dirty = false;
  };
  Pending& EntryLocked(const std::string& ns, const std::string& name, const std::string& uid);

  kube::KubeClient& client_;
  Lookup lookup_;
  EventRecorder& events_;
  RateLimiter budget_;
  std::function<void(const std::string&)> on_fenced_;
  mutable std::mutex mu_;
  std::map<std::string, Pending> tasks_;  // by namespace/name
  std::atomic<uint64_t> writes_{0};
};

}  // namespace cronlane::op
