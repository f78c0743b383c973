#pragma once
// Deletes finished ScheduledTasks after spec.ttlSecondsAfterFinished, as
// Kubernetes' TTL-after-finished controller deletes Jobs. A task is finished when
// it carries Complete=True (a one-shot or bounded task with nothing left to fire);
// the TTL counts from that condition's lastTransitionTime. The delete carries a
// UID precondition, so a task re-created under the same name is never deleted by
// a decision about its predecessor. Deleting the task is what the rest of the
// operator already handles: the reconciler forgets it and its checkpoint and
// records are tombstoned.
//
// Runs while this replica leads (a term runnable, per shard with --shards), with
// its own work queue and one thread: deletes are API calls, and reconciles stay
// free of them. Threads: Run() on the term's thread; the cache calls the
// subscription on its own thread, which only queues keys.

#include <functional>
#include <optional>
#include <string>

#include "common/cancel.h"
#include "common/clock.h"
#include "operator/cache.h"
#include "operator/kube/client.h"
#include "operator/scheduled_task.h"
#include "operator/workqueue.h"

namespace cronlane::op {

class TtlCleaner {
 public:
  using Owns = std::function<bool(const ScheduledTask&)>;  // null: every task
  TtlCleaner(KindCache<ScheduledTask>& cache, kube::KubeClient& client, Clock& clock, Owns owns = nullptr);

  // When `t` is to be deleted: its Complete=True transition plus its TTL; nullopt
  // when it has no TTL, is not complete, or is being deleted already.
  static std::optional<Instant> DeleteAt(const ScheduledTask& t);

  // Subscribes, queues what the cache holds, and deletes what is due until `cancel`.
  void Run(CancelToken& cancel);
  // One key (tests): deletes it if due, or queues it for when it will be.
  // Returns true when a delete was sent and succeeded.
  bool Handle(const std::string& key);

  uint64_t deleted() const { return deleted_.load(); }

 private:
  KindCache<ScheduledTask>& cache_;
  kube::KubeClient& client_;
  Clock& clock_;
  const Owns owns_;
  WorkQueue queue_;
  std::atomic<uint64_t> deleted_{0};
};

}  // namespace cronlane::op
