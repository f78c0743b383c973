#pragma once
// Every ScheduledTask, listed from the apiserver when asked, for the readers that
// need all of them on a replica whose cache holds only its shards' tasks
// (--shards; docs/architecture.md, "Shards"): the console, and the forecast of
// predictive WorkerPools on the replica holding the leader Lease.
//
// A listing younger than `ttl` is served again, so readers polling together cost
// one LIST (from the apiserver's watch cache, decoded one item at a time, as the
// informer lists). Nothing is listed before the first Get(), and Trim() lets a
// listing no one asked for within `ttl` go, so a replica whose console is closed
// and whose pools forecast nothing keeps no copy of every task.
//
// Threading: Get() and Trim() are safe from any thread; one LIST runs at a time
// (callers meanwhile wait for it, under mu_).

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "common/thread_annotations.h"
#include "operator/kube/client.h"
#include "operator/scheduled_task.h"

namespace cronlane::op {

class TaskListing {
 public:
  using Tasks = std::map<std::string, ScheduledTask>;  // by "namespace/name"

  // `namespaces` empty = all namespaces.
  TaskListing(kube::KubeClient& client, std::vector<std::string> namespaces, Clock& clock,
              std::chrono::milliseconds ttl = std::chrono::seconds(10));

  // The tasks, listed again when the last listing is older than ttl. A LIST that
  // fails serves the previous listing (empty if none) and is logged; the next
  // call tries again.
  std::shared_ptr<const Tasks> Get();
  // Drops a listing older than ttl.
  void Trim();
  uint64_t lists() const { return lists_.load(); }  // LISTs made so far

 private:
  Result<std::shared_ptr<const Tasks>> List();

  kube::KubeClient& client_;
  const std::vector<std::string> namespaces_;
  Clock& clock_;
  const std::chrono::milliseconds ttl_;
  mutable Mutex mu_;
  std::shared_ptr<const Tasks> tasks_ GUARDED_BY(mu_);
  std::optional<std::chrono::steady_clock::time_point> listed_at_ GUARDED_BY(mu_);
  std::atomic<uint64_t> lists_{0};
};

}  // namespace cronlane::op
