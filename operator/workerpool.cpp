#include "operator/workerpool.h"

#include <algorithm>

namespace cronlane::op {

int64_t LagOf(const kafka::PartitionOffsets& p) {
  const int64_t from = p.committed < 0 ? p.low : std::max(p.committed, p.low);
  return std::max<int64_t>(0, p.high - from);
}

int32_t ClampReplicas(const WorkerPoolSpec& spec, int64_t replicas) {
  return static_cast<int32_t>(
      std::clamp<int64_t>(replicas, spec.min_replicas, std::max(spec.min_replicas, spec.max_replicas)));
}
using kube::Json;

const Condition* WorkerPoolStatus::Find(const std::string& type) const {
  return FindCondition(conditions, type);
}

std::optional<WorkerPool> WorkerPoolFromJson(const Json& obj) {
  WorkerPool p;
  if (!ObjectMetaFromJson(obj, p)) return std::nullopt;
  auto spec_it = obj.find("spec");
  if (spec_it == obj.end() || !spec_it->is_object()) return std::nullopt;
  const Json& spec = *spec_it;
  WorkerPoolSpec& s = p.spec;
  if (auto ref = spec.find("scaleTargetRef"); ref != spec.end() && ref->is_object()) {
    s.target_api_version = JsonString(*ref, "apiVersion", s.target_api_version);
    s.target_kind = JsonString(*ref, "kind", s.target_kind);
    s.target_name = JsonString(*ref, "name");
  }
  if (std::string topic = JsonString(spec, "topic"); !topic.empty()) s.topics.push_back(std::move(topic));
  if (auto ts = spec.find("topics"); ts != spec.end() && ts->is_array()) {
    for (const auto& t : *ts) {
      if (t.is_string() && std::find(s.topics.begin(), s.topics.end(), t.get<std::string>()) == s.topics.end()) {
        s.topics.push_back(t.get<std::string>());
      }
    }
  }
  s.consumer_group = JsonString(spec, "consumerGroup");
  s.lag_threshold = std::max<int64_t>(1, JsonInt(spec, "lagThreshold", s.lag_threshold));
  s.activation_lag_threshold =
      std::max<int64_t>(0, JsonInt(spec, "activationLagThreshold", s.activation_lag_threshold));
  s.min_replicas = static_cast<int32_t>(std::max<int64_t>(0, JsonInt(spec, "minReplicas", s.min_replicas)));
  s.max_replicas =
      static_cast<int32_t>(std::max<int64_t>(s.min_replicas, JsonInt(spec, "maxReplicas", s.max_replicas)));
  s.poll_interval_seconds =
      static_cast<int32_t>(std::clamp<int64_t>(JsonInt(spec, "pollIntervalSeconds", s.poll_interval_seconds), 1, 3600));
  s.scale_down_stabilization_seconds = static_cast<int32_t>(std::clamp<int64_t>(
      JsonInt(spec, "scaleDownStabilizationSeconds", s.scale_down_stabilization_seconds), 0, 86400));
  s.allow_idle_consumers = JsonBool(spec, "allowIdleConsumers", false);
  s.limit_to_partitions_with_lag = JsonBool(spec, "limitToPartitionsWithLag", false);
  s.exclude_persistent_lag = JsonBool(spec, "excludePersistentLag", false);
  if (auto fb = spec.find("fallback"); fb != spec.end() && fb->is_object()) {
    WorkerPoolFallback f;
    f.failure_threshold = static_cast<int32_t>(std::clamp<int64_t>(JsonInt(*fb, "failureThreshold", 3), 0, 1000));
    f.replicas = static_cast<int32_t>(std::clamp<int64_t>(JsonInt(*fb, "replicas", 1), 0, 10000));
    s.fallback = f;
  }
  if (auto pr = spec.find("predictive"); pr != spec.end() && pr->is_object()) {
    s.predictive_lead_seconds = static_cast<int32_t>(std::clamp<int64_t>(JsonInt(*pr, "leadSeconds", 60), 0, 3600));
  }

  if (auto st = obj.find("status"); st != obj.end() && st->is_object()) {
    WorkerPoolStatus& ws = p.status;
    ws.observed_generation = JsonInt(*st, "observedGeneration", 0);
    ws.lag = JsonOptInt(*st, "lag");
    if (auto v = JsonOptInt(*st, "partitions")) ws.partitions = static_cast<int32_t>(*v);
    if (auto v = JsonOptInt(*st, "desiredReplicas")) ws.desired_replicas = static_cast<int32_t>(*v);
    if (auto v = JsonOptInt(*st, "currentReplicas")) ws.current_replicas = static_cast<int32_t>(*v);
    ws.last_scale_time = JsonString(*st, "lastScaleTime");
    if (auto f = st->find("forecast"); f != st->end() && f->is_object()) {
      ws.forecast_messages = JsonOptInt(*f, "messages");
      ws.forecast_time = JsonString(*f, "firstTime");
    }
    ws.persistent_lag = JsonOptInt(*st, "persistentLag");
    if (auto v = JsonOptInt(*st, "persistentPartitions")) ws.persistent_partitions = static_cast<int32_t>(*v);
    if (auto v = JsonOptInt(*st, "failures")) ws.failures = static_cast<int32_t>(*v);
    ws.conditions = ConditionsFromJson(*st);
  }
  return p;
}

Json WorkerPoolStatusPatch(const WorkerPoolStatus& s) {
  return {{"status",
           {{"observedGeneration", s.observed_generation},
            {"lag", JsonOrNull(s.lag)},
            {"partitions", JsonOrNull(s.partitions)},
            {"desiredReplicas", JsonOrNull(s.desired_replicas)},
            {"currentReplicas", JsonOrNull(s.current_replicas)},
            {"lastScaleTime", JsonOrNull(s.last_scale_time)},
            {"forecast", s.forecast_messages
                             ? Json{{"messages", *s.forecast_messages}, {"firstTime", JsonOrNull(s.forecast_time)}}
                             : Json(nullptr)},
            {"persistentLag", JsonOrNull(s.persistent_lag)},
            {"persistentPartitions", JsonOrNull(s.persistent_partitions)},
            {"failures", JsonOrNull(s.failures)},
            {"conditions", ConditionsToJson(s.conditions)}}}};
}

int32_t PredictReplicas(const WorkerPoolSpec& spec, int64_t expected, int32_t partitions) {
  int64_t want = expected > 0 ? std::max<int64_t>(1, (expected + spec.lag_threshold - 1) / spec.lag_threshold) : 0;
  if (!spec.allow_idle_consumers && partitions > 0) want = std::min<int64_t>(want, partitions);
  return ClampReplicas(spec, want);
}

LagMeasurement Measure(const WorkerPoolSpec& spec, const std::vector<TopicOffsets>& topics,
                       const CommittedOffsets* previous) {
  LagMeasurement m;
  for (const TopicOffsets& t : topics) {
    for (const kafka::PartitionOffsets& p : t.partitions) {
      ++m.partitions;
      const int64_t lag = LagOf(p);
      if (lag == 0) continue;
      PartitionId id{t.topic, p.partition};
      bool persistent = false;
      if (spec.exclude_persistent_lag && previous != nullptr) {
        auto it = previous->find(id);
        persistent = it != previous->end() && it->second == p.committed;
      }
      m.lagging.emplace(std::move(id), p.committed);
      if (persistent) {
        m.persistent_lag += lag;
        ++m.persistent_partitions;
      } else {
        m.lag += lag;
        ++m.partitions_with_lag;
      }
    }
  }
  return m;
}

int32_t Recommend(const WorkerPoolSpec& spec, const LagMeasurement& m, int32_t current_replicas) {
  int64_t want = 0;
  const int64_t all = m.lag + m.persistent_lag;
  if (all > 0 && (current_replicas > 0 || all > spec.activation_lag_threshold)) {
    want = std::max<int64_t>(1, (m.lag + spec.lag_threshold - 1) / spec.lag_threshold);
    if (!spec.allow_idle_consumers && m.partitions > 0) {
      const int64_t cap = spec.limit_to_partitions_with_lag ? m.partitions_with_lag : m.partitions;
      // Persistent lag alone keeps one consumer on it (never zero, never more).
      want = std::min<int64_t>(want, std::max<int64_t>(cap, 1));
    }
  }
  return ClampReplicas(spec, want);
}

void Stabilizer::Seed(TimePoint now, int32_t replicas) {
  history_.emplace_back(now, replicas);
}

int32_t Stabilizer::Apply(TimePoint now, int32_t recommendation, std::chrono::seconds window) {
  while (!history_.empty() && history_.front().first < now - window) history_.pop_front();
  history_.emplace_back(now, recommendation);
  int32_t highest = recommendation;
  for (const auto& [_, r] : history_) highest = std::max(highest, r);
  return highest;
}

}  // namespace cronlane::op
