#pragma once
// The WorkerPool as the operator caches it (typed, trimmed), its status patch, and
// the scaling rules: how many replicas a pool wants for a given lag, and the
// scale-down stabilization window. Pure functions and a small history class; no
// I/O, so the rules are unit-tested with simulated time.

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <string>
#include <tuple>
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
// spec.fallback: the replicas a pool takes once its lag could not be measured more
// than failureThreshold times in a row (KEDA's ScaledObject fallback, "static").
struct WorkerPoolFallback {
  int32_t failure_threshold = 3;
  int32_t replicas = 1;
  bool operator==(const WorkerPoolFallback&) const = default;
};

struct WorkerPoolSpec {
  std::string target_api_version = "apps/v1";
  std::string target_kind = "Deployment";
  std::string target_name;
  // spec.topic, or spec.topics: every topic the workers consume (lag and partitions
  // are summed over them). Never empty for a pool the apiserver admitted.
  std::vector<std::string> topics;
  std::string consumer_group;
  int64_t lag_threshold = 10;
  int64_t activation_lag_threshold = 0;
  int32_t min_replicas = 0;
  int32_t max_replicas = 10;
  int32_t poll_interval_seconds = 5;
  int32_t scale_down_stabilization_seconds = 300;
  bool allow_idle_consumers = false;
  // Cap the replicas at the partitions that have (counted) lag, not at all of them.
  bool limit_to_partitions_with_lag = false;
  // Do not count a partition whose committed offset stood still for a poll while
  // the target had replicas (a message its consumer cannot get past).
  bool exclude_persistent_lag = false;
  std::optional<WorkerPoolFallback> fallback;
  // spec.predictive.leadSeconds: scale for the messages the schedule will put on
  // the topic within this many seconds (0: reactive only).
  int32_t predictive_lead_seconds = 0;
  bool operator==(const WorkerPoolSpec&) const = default;
};

// `replicas` within [minReplicas, maxReplicas] (minReplicas wins when they cross:
// the user asked for that many). Every replica count a pool sets passes through it.
int32_t ClampReplicas(const WorkerPoolSpec& spec, int64_t replicas);

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
  // Lag not counted (excludePersistentLag), and the partitions holding it.
  std::optional<int64_t> persistent_lag;
  std::optional<int32_t> persistent_partitions;
  // Measurements that failed in a row (unset after one succeeds).
  std::optional<int32_t> failures;
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

// One partition of one of a pool's topics.
struct PartitionId {
  std::string topic;
  int32_t partition = 0;
  // Spelled out: clang-tidy's modernize-use-nullptr misreads a defaulted <=>.
  bool operator<(const PartitionId& o) const { return std::tie(topic, partition) < std::tie(o.topic, o.partition); }
  bool operator==(const PartitionId&) const = default;
};
// Committed offsets of the partitions that had lag at a poll (-1: none committed).
using CommittedOffsets = std::map<PartitionId, int64_t>;

struct TopicOffsets {
  std::string topic;
  std::vector<kafka::PartitionOffsets> partitions;
};

// A pool's lag at one poll, over all its topics.
struct LagMeasurement {
  int64_t lag = 0;                  // counted lag
  int32_t partitions = 0;           // every partition of every topic
  int32_t partitions_with_lag = 0;  // partitions whose lag is counted and > 0
  int64_t persistent_lag = 0;       // lag not counted (excludePersistentLag)
  int32_t persistent_partitions = 0;
  CommittedOffsets lagging;  // this poll's committed offsets of the partitions with lag
};

// Measures `topics`. With spec.exclude_persistent_lag, a partition's lag is not
// counted (it is persistent) when `previous` (the last poll's `lagging`; nullptr
// when the target had no replicas at that poll or has none now) holds the same
// committed offset for it: the partition had lag at both polls and its consumers,
// running all along, committed nothing. Without consumers an offset cannot move,
// so nothing is persistent then.
LagMeasurement Measure(const WorkerPoolSpec& spec, const std::vector<TopicOffsets>& topics,
                       const CommittedOffsets* previous);

// The replicas a pool wants right now, before stabilization:
//   - no lag: minReplicas;
//   - at zero replicas, lag <= activationLagThreshold: stays at minReplicas (0);
//     (here persistent lag counts: it is work nobody has tried yet)
//   - otherwise ceil(counted lag / lagThreshold), and at least 1;
// then, unless allowIdleConsumers (extra consumers would get no partition), capped
// at the partition count, or at the partitions with counted lag under
// limitToPartitionsWithLag (though persistent lag alone keeps one replica); and
// clamped to [minReplicas, maxReplicas] (minReplicas wins over the partition cap:
// the user asked for that many).
//
// Activation only decides leaving zero: a pool that is running drains a small
// remaining lag instead of being stranded at zero with messages waiting.
int32_t Recommend(const WorkerPoolSpec& spec, const LagMeasurement& m, int32_t current_replicas);

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
