#pragma once
// Scales each WorkerPool's target by its consumer group's lag. Every
// pollIntervalSeconds (and at once when a pool is created or its spec changes) it
// measures the lag, resolves the target's /scale subresource through discovery,
// computes the desired replicas (Recommend + Stabilizer), patches /scale when they
// differ, and writes the pool's status when it changed. Only the leader runs it; it
// reads pools from the Manager's shared cache.
//
// Failures are reported, never fatal: a missing target, a target without /scale, a
// missing topic or an unreachable broker each set Ready=False with a reason (and a
// Warning Event when the reason changes) and the pool keeps its replicas until the
// next poll succeeds.

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/cancel.h"
#include "common/clock.h"
#include "common/kafka.h"
#include "common/metrics.h"
#include "common/thread_annotations.h"
#include "operator/cache.h"
#include "operator/events.h"
#include "operator/kube/client.h"
#include "operator/lag_reader.h"
#include "operator/workerpool.h"

namespace cronlane::op {

// Ready condition reasons of a WorkerPool.
inline constexpr const char* kReasonMeasured = "Measured";
inline constexpr const char* kReasonTargetNotFound = "TargetNotFound";
inline constexpr const char* kReasonTargetNotScalable = "TargetNotScalable";
inline constexpr const char* kReasonTopicNotFound = "TopicNotFound";
inline constexpr const char* kReasonKafkaUnavailable = "KafkaUnavailable";
inline constexpr const char* kReasonScaleFailed = "ScaleFailed";

// What a pool looked like at its last poll, for metrics.
struct PoolSnapshot {
  std::string ns, name;
  int64_t lag = -1;  // -1 = unknown
  int32_t partitions = 0, desired = 0, current = 0;
  bool ready = false;
};

class WorkerPoolController {
 public:
  WorkerPoolController(kube::KubeClient& client, KindCache<WorkerPool>& cache, LagReader& lag, EventRecorder& events,
                       Clock& clock);
  ~WorkerPoolController();

  // Subscribes to the cache and runs the poll loop until `cancel` fires.
  void Run(CancelToken& cancel);
  // Adds the per-pool metrics (lag, partitions, replicas, ready, scales) to `scope`.
  void RegisterMetrics(CallbackMetrics::Scope& scope);

  // One poll of one pool ("namespace/name"), as the loop runs it. OK unless the
  // Kubernetes API failed (the loop then retries at the next poll).
  Status Reconcile(const std::string& key);

  std::optional<WorkerPool> Lookup(const std::string& key) const;
  std::vector<PoolSnapshot> Snapshot() const;
  uint64_t scales() const { return scales_.load(); }
  uint64_t polls() const { return polls_.load(); }

  // For tests without a running cache: where Reconcile() reads pools from.
  using LookupFn = std::function<std::optional<WorkerPool>(const std::string& key)>;
  void SetLookupForTest(LookupFn fn) { lookup_override_ = std::move(fn); }

 private:
  struct PoolState {
    std::string uid;
    Stabilizer stabilizer;
    std::chrono::steady_clock::time_point next_poll{};
    PoolSnapshot snapshot;
  };
  // The /scale path of a pool's target, through API discovery (cached per kind).
  Result<std::string> ScalePath(const WorkerPool& pool);
  void MarkDue(const std::string& key);

  kube::KubeClient& client_;
  LagReader& lag_;
  EventRecorder& events_;
  Clock& clock_;
  KindCache<WorkerPool>& cache_;
  LookupFn lookup_override_;

  mutable Mutex mu_;
  std::condition_variable wake_;
  // Entries are added and erased only by the thread that runs Run() (and
  // Reconcile()), which also reads its entry's stabilizer without the lock; other
  // threads (metrics) read snapshots under mu_.
  std::map<std::string, PoolState> pools_ GUARDED_BY(mu_);
  std::map<std::string, std::string> resource_by_kind_ GUARDED_BY(mu_);  // "apps/v1/Deployment" -> "deployments"
  std::atomic<uint64_t> scales_{0};
  std::atomic<uint64_t> polls_{0};
};

}  // namespace cronlane::op
