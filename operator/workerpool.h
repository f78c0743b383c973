#pragma once
// The WorkerPool as the operator caches it (typed, trimmed), its status patch, and
// the scaling rules: how many replicas a pool wants for a given lag, and the
// scale-down stabilization window. Pure functions and a small history class; no
// I/O, so the rules are unit-tested with simulated time.

#include <chrono>
#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <vector>

#include "common/kafka.h"
#include "operator/kube/client.h"
#include "operator/scheduled_task.h"

namespace cronlane::op {

inline const kube::ResourceRef kWorkerPools{"cronlane.dev", "v1alpha1", "workerpools"};

// The lag of one partition: the messages a consumer of the group has yet to read.
// A partition the group never committed on counts everything still in the log
// (cronlane-worker starts from the earliest offset); a commit below the low
// watermark (deleted by retention) counts from the low watermark; never negative.
int64_t LagOf(const kafka::PartitionOffsets& p);
// The sum over a topic's partitions.
int64_t TotalLag(const std::vector<kafka::PartitionOffsets>& partitions);

struct WorkerPoolSpec {
  std::string target_api_version = "apps/v1";
  std::string target_kind = "Deployment";
  std::string target_name;
  std::string topic;
  std::string consumer_group;
  int64_t lag_threshold = 10;
  int64_t activation_lag_threshold = 0;
  int32_t min_replicas = 0;
  int32_t max_replicas = 10;
  int32_t poll_interval_seconds = 5;
  int32_t scale_down_stabilization_seconds = 300;
  bool allow_idle_consumers = false;
  // spec.predictive.leadSeconds: scale for the messages the schedule will put on
  // the topic within this many seconds (0: reactive only).
  int32_t predictive_lead_seconds = 0;
  bool operator==(const WorkerPoolSpec&) const = default;
};

struct WorkerPoolStatus {
  int64_t observed_generation = 0;
  std::optional<int64_t> lag;
  std::optional<int32_t> partitions;
  std::optional<int32_t> desired_replicas;
  std::optional<int32_t> current_replicas;
  std::string last_scale_time;  // RFC 3339, "" = never scaled
  // Predictive pools: the messages the schedule puts on the topic within
  // leadSeconds, and the first time one lands ("" = none in the window).
  std::optional<int64_t> forecast_messages;
  std::string forecast_time;
  std::vector<Condition> conditions;
  bool operator==(const WorkerPoolStatus&) const = default;

  const Condition* Find(const std::string& type) const;
};

inline constexpr const char* kWorkerPoolApiVersion = "cronlane.dev/v1alpha1";

struct WorkerPool : ObjectMeta {
  WorkerPoolSpec spec;
  WorkerPoolStatus status;
};

// Decodes an API object; nullopt without metadata or spec. Defaults missing fields
// the way the CRD's schema defaults them.
std::optional<WorkerPool> WorkerPoolFromJson(const kube::Json& object);

// The merge patch that replaces `status` (unset optionals become null).
kube::Json WorkerPoolStatusPatch(const WorkerPoolStatus& status);

// The replicas a pool wants right now, before stabilization:
//   - no lag: minReplicas;
//   - at zero replicas, lag <= activationLagThreshold: stays at minReplicas (0);
//   - otherwise ceil(lag / lagThreshold), at least 1;
// then capped at the partition count unless allowIdleConsumers (extra consumers
// would get no partition), and clamped to [minReplicas, maxReplicas] (minReplicas
// wins over the partition cap: the user asked for that many).
//
// Activation only decides leaving zero: a pool that is running drains a small
// remaining lag instead of being stranded at zero with messages waiting.
int32_t Recommend(const WorkerPoolSpec& spec, int64_t lag, int32_t partitions, int32_t current_replicas);

// The replicas a predictive pool wants for `expected` messages landing within its
// lead: ceil(expected / lagThreshold) (none for none), capped and clamped as
// Recommend() caps a lag. The pool takes the larger of this and Recommend().
int32_t PredictReplicas(const WorkerPoolSpec& spec, int64_t expected, int32_t partitions);

// Scale-down stabilization: scale up at once, but scale down only to the highest
// recommendation seen within the window (as the HPA does), so a lag that drains
// and refills does not flap the pool.
class Stabilizer {
 public:
  using TimePoint = std::chrono::system_clock::time_point;
  // Records `recommendation` at `now` and returns the replicas to apply.
  int32_t Apply(TimePoint now, int32_t recommendation, std::chrono::seconds window);
  // Seeds the history (e.g. with the target's replicas when the operator starts,
  // so a restart does not scale down before a full window passed).
  void Seed(TimePoint now, int32_t replicas);
  bool empty() const { return history_.empty(); }

 private:
  std::deque<std::pair<TimePoint, int32_t>> history_;
};

}  // namespace cronlane::op
