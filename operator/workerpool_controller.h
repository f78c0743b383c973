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
// next poll succeeds (or, with spec.fallback, runs its fallback replicas once more
// than failureThreshold measurements in a row failed).

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
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
// The Fallback condition (pools with spec.fallback): True while the replicas are
// spec.fallback.replicas because the lag could not be measured.
inline constexpr const char* kConditionFallback = "Fallback";

// The schedule's forecast, for predictive pools (spec.predictive): the messages
// the scheduled tasks will put on `topic` with a nominal fire time in [from, to).
// Called by the controller's workers, several at once, without a controller lock
// held: thread-safe. The operator's is ScheduleForecaster (operator/forecast.h).
struct TopicForecast {
  int64_t messages = 0;
  std::optional<std::chrono::system_clock::time_point> first;  // when the first lands
};
class Forecaster {
 public:
  virtual ~Forecaster() = default;
  virtual TopicForecast Forecast(const std::string& topic, std::chrono::system_clock::time_point from,
                                 std::chrono::system_clock::time_point to) = 0;
};

// What a pool looked like at its last poll, for metrics.
struct PoolSnapshot {
  std::string ns, name;
  int64_t lag = -1;  // -1 = unknown
  int32_t partitions = 0, desired = 0, current = 0;
  bool ready = false;
};

class WorkerPoolController {
 public:
  // `forecaster` (optional, must outlive the controller): without one, a pool's
  // spec.predictive is ignored (it scales by lag alone).
  WorkerPoolController(kube::KubeClient& client, KindCache<WorkerPool>& cache, LagReader& lag, EventRecorder& events,
                       Clock& clock, Forecaster* forecaster = nullptr);
  ~WorkerPoolController();

  // Subscribes to the cache and polls every pool until `cancel` fires, on a
  // WorkQueue: `workers` threads poll pools at once (never one pool on two), and
  // each poll requeues its pool after its pollIntervalSeconds (a pool created or
  // changed is queued at once).
  void Run(CancelToken& cancel, int workers = 4);
  // Adds the per-pool metrics (lag, partitions, replicas, ready, scales) to `scope`.
  void RegisterMetrics(CallbackMetrics::Scope& scope);

  // One poll of one pool ("namespace/name"), as a worker of Run() does it: when
  // to poll it again (its pollIntervalSeconds; none when the pool is gone), or the
  // Kubernetes API's error (Run() then polls it again after the interval).
  // Problems of the pool itself (target, topic, broker) are its status, not errors.
  Result<std::optional<std::chrono::seconds>> Reconcile(const std::string& key);

  std::optional<WorkerPool> Lookup(const std::string& key) const;
  std::vector<PoolSnapshot> Snapshot() const;
  uint64_t scales() const { return scales_.load(); }
  uint64_t polls() const { return polls_.load(); }

  // For tests without a running cache: where Reconcile() reads pools from.
  using LookupFn = std::function<std::optional<WorkerPool>(const std::string& key)>;
  void SetLookupForTest(LookupFn fn) { lookup_override_ = std::move(fn); }
  // For tests of Run() without a running cache: the pools it polls (the cache then
  // counts as synced).
  void SetKeysForTest(std::vector<std::string> keys) { keys_override_ = std::move(keys); }

 private:
  struct PoolState {
    std::string uid;
    Stabilizer stabilizer;
    PoolSnapshot snapshot;
    // excludePersistentLag: the last poll's committed offsets of partitions with
    // lag, and whether the target had replicas then.
    CommittedOffsets lagging;
    bool had_consumers = false;
    int32_t failures = 0;  // measurements failed in a row (seeded from status)
  };
  // What one poll found and decided so far.
  struct Poll {
    std::chrono::system_clock::time_point now;
    WorkerPoolStatus st;  // the status to write
    Condition ready;
    std::string target;  // "Kind/name"
    std::optional<kube::Json> scale;
    std::string scale_path;
    bool measured = false;  // the lag is known
    LagMeasurement lag;
    std::vector<std::string> missing_topics;  // topics that do not exist yet
  };
  // The steps of a poll: the target's /scale (and its path, through API discovery,
  // cached per kind); the lag; the replicas wanted, patched onto the target when they
  // differ; the status and Events. A non-OK Status is a Kubernetes API failure.
  Status ReadScale(const WorkerPool& pool, Poll& poll);
  void MeasureLag(const WorkerPool& pool, PoolState& state, Poll& poll);
  Status Decide(const std::string& key, const WorkerPool& pool, PoolState& state, Poll& poll);
  Status Report(const std::string& key, const WorkerPool& pool, PoolState& state, const Poll& poll);
  Result<std::string> ScalePath(const WorkerPool& pool);

  kube::KubeClient& client_;
  LagReader& lag_;
  EventRecorder& events_;
  Forecaster* forecaster_;
  Clock& clock_;
  KindCache<WorkerPool>& cache_;
  LookupFn lookup_override_;
  std::optional<std::vector<std::string>> keys_override_;

  mutable Mutex mu_;
  // A pool's entry is added, erased and its stabilizer, lag memory and failure
  // count used (without the lock) only by the worker polling that pool, and the
  // WorkQueue hands a pool to one worker at a time; snapshots are written and read
  // (metrics) under mu_.
  std::map<std::string, PoolState> pools_ GUARDED_BY(mu_);
  std::map<std::string, std::string> resource_by_kind_ GUARDED_BY(mu_);  // "apps/v1/Deployment" -> "deployments"
  std::atomic<uint64_t> scales_{0};
  std::atomic<uint64_t> polls_{0};
};

}  // namespace cronlane::op
