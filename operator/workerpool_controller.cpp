#include "operator/workerpool_controller.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>
#include <thread>

#include "common/text.h"
#include "common/time.h"
#include "operator/workqueue.h"

namespace cronlane::op {
namespace {

using kube::Json;

int32_t ReplicasAt(const Json& scale, const char* section) {
  auto s = scale.find(section);
  if (s == scale.end() || !s->is_object()) return 0;
  auto r = s->find("replicas");
  return r != s->end() && r->is_number_integer() ? r->get<int32_t>() : 0;
}

}  // namespace

WorkerPoolController::WorkerPoolController(kube::KubeClient& client, KindCache<WorkerPool>& cache, LagReader& lag,
                                           EventRecorder& events, Clock& clock, Forecaster* forecaster)
    : client_(client), lag_(lag), events_(events), forecaster_(forecaster), clock_(clock), cache_(cache) {}

WorkerPoolController::~WorkerPoolController() = default;

std::optional<WorkerPool> WorkerPoolController::Lookup(const std::string& key) const {
  if (lookup_override_) return lookup_override_(key);
  return cache_.Get(key);
}

void WorkerPoolController::RegisterMetrics(CallbackMetrics::Scope& scope) {
  using T = CallbackMetrics::Type;
  auto family = [this](auto fn) {
    return [this, fn]() {
      std::vector<CallbackMetrics::Sample> out;
      for (const auto& p : Snapshot()) {
        out.push_back({{{"namespace", p.ns}, {"workerpool", p.name}}, static_cast<double>(fn(p))});
      }
      return out;
    };
  };
  scope.AddFamily("cronlane_workerpool_lag", "Consumer-group lag of a WorkerPool's topic (-1 = unknown)", T::kGauge,
                  family([](const PoolSnapshot& p) { return p.lag; }));
  scope.AddFamily("cronlane_workerpool_partitions", "Partitions of a WorkerPool's topic", T::kGauge,
                  family([](const PoolSnapshot& p) { return p.partitions; }));
  scope.AddFamily("cronlane_workerpool_desired_replicas", "Replicas a WorkerPool wants", T::kGauge,
                  family([](const PoolSnapshot& p) { return p.desired; }));
  scope.AddFamily("cronlane_workerpool_current_replicas", "Replicas of a WorkerPool's target (its /scale status)",
                  T::kGauge, family([](const PoolSnapshot& p) { return p.current; }));
  scope.AddFamily("cronlane_workerpool_ready", "1 while a WorkerPool's Ready condition is True", T::kGauge,
                  family([](const PoolSnapshot& p) { return p.ready ? 1 : 0; }));
  scope.Add("cronlane_workerpool_scales_total", "Scale changes patched onto WorkerPool targets", T::kCounter,
            [this] { return static_cast<double>(scales()); });
  scope.Add("cronlane_workerpool_polls_total",
            "WorkerPool polls (target, lag, decision, status); pools x seconds / polls is the cycle achieved",
            T::kCounter, [this] { return static_cast<double>(polls()); });
}

std::vector<PoolSnapshot> WorkerPoolController::Snapshot() const {
  MutexLock lock(mu_);
  std::vector<PoolSnapshot> out;
  for (const auto& [_, s] : pools_) {
    if (!s.snapshot.name.empty()) out.push_back(s.snapshot);
  }
  return out;
}

Result<std::string> WorkerPoolController::ScalePath(const WorkerPool& pool) {
  const auto& s = pool.spec;
  std::string cache_key = s.target_api_version + "/" + s.target_kind;
  std::string plural;
  {
    MutexLock lock(mu_);
    if (auto it = resource_by_kind_.find(cache_key); it != resource_by_kind_.end()) plural = it->second;
  }
  std::string prefix = s.target_api_version.find('/') == std::string::npos ? "/api/" + s.target_api_version
                                                                           : "/apis/" + s.target_api_version;
  if (plural.empty()) {
    auto discovery = client_.Get(prefix);
    if (!discovery.ok()) {
      if (discovery.status().code() == StatusCode::kNotFound) {
        return NotFound("the API server does not serve " + s.target_api_version);
      }
      return discovery.status();
    }
    std::set<std::string> names;
    for (const auto& r : (*discovery)["resources"]) names.insert(r.value("name", ""));
    for (const auto& r : (*discovery)["resources"]) {
      std::string name = r.value("name", "");
      if (r.value("kind", "") == s.target_kind && name.find('/') == std::string::npos) {
        if (names.count(name + "/scale") == 0) {
          return NotFound(s.target_kind + " (" + s.target_api_version + ") has no /scale subresource");
        }
        plural = name;
        break;
      }
    }
    if (plural.empty())
      return NotFound("the API server serves no kind " + s.target_kind + " in " + s.target_api_version);
    MutexLock lock(mu_);
    resource_by_kind_[cache_key] = plural;
  }
  return prefix + "/namespaces/" + pool.ns + "/" + plural + "/" + s.target_name + "/scale";
}

Result<std::optional<std::chrono::seconds>> WorkerPoolController::Reconcile(const std::string& key) {
  auto found = Lookup(key);
  if (!found || found->deleting) {
    MutexLock lock(mu_);
    pools_.erase(key);
    return std::optional<std::chrono::seconds>();
  }
  ++polls_;
  const WorkerPool& pool = *found;
  PoolState* state = nullptr;
  {
    MutexLock lock(mu_);
    state = &pools_[key];
    if (state->uid != pool.uid) {
      *state = PoolState{.uid = pool.uid, .failures = pool.status.failures.value_or(0)};
    }
  }
  Poll poll{.now = clock_.Now(),
            .st = pool.status,
            .ready = {kConditionReady, "True", kReasonMeasured, "", "", pool.generation},
            .target = pool.spec.target_kind + "/" + pool.spec.target_name};
  poll.st.observed_generation = pool.generation;
  if (Status s = ReadScale(pool, poll); !s.ok()) return s;
  MeasureLag(pool, *state, poll);
  if (Status s = Decide(key, pool, *state, poll); !s.ok()) return s;
  if (Status s = Report(key, pool, *state, poll); !s.ok()) return s;
  return std::optional<std::chrono::seconds>(std::max(1, pool.spec.poll_interval_seconds));
}

Status WorkerPoolController::ReadScale(const WorkerPool& pool, Poll& poll) {
  auto path = ScalePath(pool);
  if (!path.ok()) {
    if (path.status().code() != StatusCode::kNotFound) return path.status();
    poll.ready = {kConditionReady, "False", kReasonTargetNotScalable, path.status().message(), "", pool.generation};
    return Status::Ok();
  }
  poll.scale_path = *path;
  auto got = client_.Get(poll.scale_path);
  if (got.ok()) {
    poll.scale = std::move(*got);
    poll.st.current_replicas = ReplicasAt(*poll.scale, "status");
  } else if (got.status().code() == StatusCode::kNotFound) {
    poll.ready = {
        kConditionReady, "False", kReasonTargetNotFound, poll.target + " does not exist in namespace " + pool.ns, "",
        pool.generation};
  } else {
    return got.status();
  }
  return Status::Ok();
}

void WorkerPoolController::MeasureLag(const WorkerPool& pool, PoolState& state, Poll& poll) {
  const WorkerPoolSpec& spec = pool.spec;
  std::vector<TopicOffsets> found;
  Status failed = Status::Ok();
  for (const std::string& topic : spec.topics) {
    auto offsets = lag_.Offsets(spec.consumer_group, topic);
    if (offsets.ok()) {
      found.push_back({topic, std::move(*offsets)});
    } else if (offsets.status().code() == StatusCode::kNotFound) {
      poll.missing_topics.push_back(topic);
    } else {
      // One topic unknown is the pool's lag unknown: never a lag of 0 (KEDA #4098).
      failed = offsets.status();
      break;
    }
  }
  const bool consumers = poll.st.current_replicas.value_or(0) > 0;
  if (failed.ok() && !found.empty()) {
    // A topic that does not exist yet holds no work; the others are measured.
    poll.lag = Measure(spec, found, state.had_consumers && consumers ? &state.lagging : nullptr);
    state.lagging = std::move(poll.lag.lagging);  // only the next poll reads it
    state.had_consumers = consumers;
    state.failures = 0;
    poll.st.lag = poll.lag.lag + poll.lag.persistent_lag;
    poll.st.partitions = poll.lag.partitions;
    poll.st.persistent_lag.reset();
    poll.st.persistent_partitions.reset();
    if (spec.exclude_persistent_lag) {
      poll.st.persistent_lag = poll.lag.persistent_lag;
      poll.st.persistent_partitions = poll.lag.persistent_partitions;
    }
    poll.measured = true;
    return;
  }
  // Nothing measured: what persisted across the gap is not known.
  state.lagging.clear();
  state.had_consumers = false;
  if (failed.ok()) {
    state.failures = 0;  // the broker answered: the topics do not exist yet
  } else {
    ++state.failures;
  }
  if (poll.ready.status != "True") return;
  if (failed.ok()) {
    // A topic is created when the first task fires into it (or by whoever owns
    // it): until then there is no work, and the pool is not broken. Ready, with
    // the reason saying so (and a Warning Event, in case the name is a typo).
    poll.ready = {
        kConditionReady,
        "True",
        kReasonTopicNotFound,
        spec.topics.size() == 1
            ? "topic " + spec.topics[0] + " does not exist yet: no lag to measure, no scaling until it does"
            : "topics " + Join(spec.topics, ", ") + " do not exist yet: no lag to measure, no scaling until one does",
        "",
        pool.generation};
  } else {
    poll.ready = {kConditionReady,
                  "False",
                  kReasonKafkaUnavailable,
                  "cannot measure the lag of group " + spec.consumer_group + ": " + failed.message(),
                  "",
                  pool.generation};
  }
}

Status WorkerPoolController::Decide(const std::string& key, const WorkerPool& pool, PoolState& state, Poll& poll) {
  const WorkerPoolSpec& spec = pool.spec;
  const auto now = poll.now;
  // Predictive: replicas for what the schedule puts on the topic before it lands
  // (once it landed, its lag keeps them, and the stabilization window holds them
  // while it drains). The window reaches a poll interval past the lead, so a burst
  // is seen by a poll between leadSeconds and leadSeconds + pollIntervalSeconds
  // before it lands. Known whether or not the lag is.
  std::optional<TopicForecast> forecast;
  poll.st.forecast_messages.reset();
  poll.st.forecast_time.clear();
  if (spec.predictive_lead_seconds > 0 && forecaster_ != nullptr) {
    const auto to = now + std::chrono::seconds(spec.predictive_lead_seconds + spec.poll_interval_seconds);
    // Summed over the topics; the earliest first landing (kept in plain values: GCC
    // -O1 (the TSan build) warns of an optional inside an optional as maybe unset).
    int64_t messages = 0;
    auto first = std::chrono::system_clock::time_point::max();
    for (const std::string& topic : spec.topics) {
      const TopicForecast f = forecaster_->Forecast(topic, now, to);
      messages += f.messages;
      if (f.first) first = std::min(first, *f.first);
    }
    forecast = TopicForecast{.messages = messages};
    if (first != std::chrono::system_clock::time_point::max()) forecast->first = first;
    poll.st.forecast_messages = forecast->messages;
    if (forecast->first) {
      poll.st.forecast_time = FormatRfc3339(std::chrono::floor<std::chrono::seconds>(*forecast->first));
    }
  }
  // Fallback (KEDA's "static"): more than failureThreshold failed measurements in a
  // row scale to fallback.replicas until one succeeds. A topic that does not exist
  // yet is no failure.
  const bool fallback = !poll.measured && spec.fallback && state.failures > spec.fallback->failure_threshold;
  poll.st.failures.reset();
  if (state.failures > 0) poll.st.failures = state.failures;
  if (spec.fallback) {
    const std::string failures = std::to_string(state.failures) + " measurement(s) in a row failed";
    const std::string replicas = std::to_string(spec.fallback->replicas) + " replica(s)";
    SetCondition(
        poll.st.conditions,
        fallback
            ? Condition{kConditionFallback, "True", "MeasurementFailing",
                        failures + ", more than failureThreshold " + std::to_string(spec.fallback->failure_threshold) +
                            ": " + replicas + " until one succeeds",
                        "", pool.generation}
            : Condition{kConditionFallback, "False", "Measuring",
                        (state.failures > 0 ? failures : std::string("the lag is measured")) + "; after more than " +
                            std::to_string(spec.fallback->failure_threshold) + " in a row the pool runs " + replicas,
                        "", pool.generation},
        pool.status.conditions, FormatRfc3339(now));
  } else {
    std::erase_if(poll.st.conditions, [](const Condition& c) { return c.type == kConditionFallback; });
  }
  if (!poll.scale) return Status::Ok();
  // Unknown lag keeps the replicas, except in fallback, and for a predictive pool
  // whose topic does not exist yet: the first burst creates it, so there is no lag
  // before it, and the pool scales for the forecast (no partition cap: the count is
  // unknown).
  const bool topic_to_come = forecast && poll.ready.reason == kReasonTopicNotFound;
  if (!poll.measured && !topic_to_come && !fallback) return Status::Ok();
  int32_t current = ReplicasAt(*poll.scale, "spec");
  if (state.stabilizer.empty()) state.stabilizer.Seed(now, current);
  const int32_t reactive = fallback ? ClampReplicas(spec, spec.fallback->replicas) : Recommend(spec, poll.lag, current);
  int32_t recommended = reactive;
  std::string predicted_note;
  if (forecast) {
    const int32_t predicted = PredictReplicas(spec, forecast->messages, poll.lag.partitions);
    if (predicted > reactive) {
      recommended = predicted;
      predicted_note =
          "predicted burst of " + std::to_string(forecast->messages) + " message(s) from " + poll.st.forecast_time;
    }
  }
  int32_t desired =
      state.stabilizer.Apply(now, recommended, std::chrono::seconds(spec.scale_down_stabilization_seconds));
  desired = ClampReplicas(spec, desired);
  poll.st.desired_replicas = desired;
  std::string measured;
  if (poll.measured) {
    measured = "lag " + std::to_string(poll.lag.lag + poll.lag.persistent_lag) + " on " +
               std::to_string(poll.lag.partitions) + " partition(s)";
    if (poll.lag.persistent_lag > 0) {
      measured += ", " + std::to_string(poll.lag.persistent_lag) + " of it persistent on " +
                  std::to_string(poll.lag.persistent_partitions) + " partition(s) and not counted";
    }
    if (!poll.missing_topics.empty()) measured += "; not created yet: " + Join(poll.missing_topics, ", ");
  } else if (fallback) {
    measured = "lag unknown for " + std::to_string(state.failures) + " poll(s), fallback";
  } else {
    measured = "topic " + Join(spec.topics, ", ") + " not created yet";
  }
  if (poll.measured) {
    poll.ready.message = measured + "; " + std::to_string(desired) + " replica(s) wanted";
    if (!predicted_note.empty()) poll.ready.message += " (" + predicted_note + ")";
  } else if (!predicted_note.empty()) {
    poll.ready.message = "topic " + Join(spec.topics, ", ") + " does not exist yet: " + predicted_note + "; " +
                         std::to_string(desired) + " replica(s) wanted";
  }
  if (desired != current) {
    auto patched = client_.Patch(poll.scale_path, Json{{"spec", {{"replicas", desired}}}});
    if (patched.ok()) {
      ++scales_;
      poll.st.last_scale_time = FormatRfc3339(now);
      const bool ahead = !predicted_note.empty() && desired > current;
      std::string note = "Scaled " + poll.target + " from " + std::to_string(current) + " to " +
                         std::to_string(desired) + " replicas: " + (ahead ? predicted_note + "; " : "") + measured;
      spdlog::info("workerpool {}: {}", key, note);
      events_.Record(pool.Ref(kWorkerPoolApiVersion, "WorkerPool"), "Normal", ahead ? "PredictedBurst" : "Scaled",
                     "Scale", note);
      poll.st.current_replicas = ReplicasAt(*patched, "status");
    } else if (patched.status().code() == StatusCode::kUnavailable) {
      return patched.status();
    } else {
      poll.ready = {kConditionReady,
                    "False",
                    kReasonScaleFailed,
                    "scaling " + poll.target + ": " + patched.status().message(),
                    "",
                    pool.generation};
    }
  }
  const bool waiting_for_burst = !predicted_note.empty() && poll.lag.lag == 0;
  SetCondition(poll.st.conditions,
               {"Active", desired > 0 ? "True" : "False",
                desired > 0 ? (fallback            ? "Fallback"
                               : waiting_for_burst ? "BurstPredicted"
                                                   : "LagPresent")
                            : "Idle",
                desired > 0 ? (fallback            ? "the lag cannot be measured: the pool runs spec.fallback.replicas"
                               : waiting_for_burst ? "the schedule's next burst is within leadSeconds"
                                                   : "the pool has work")
                            : (fallback ? "the lag cannot be measured: spec.fallback.replicas is 0"
                                        : "no lag: the pool is at minReplicas"),
                "", pool.generation},
               pool.status.conditions, FormatRfc3339(now));
  return Status::Ok();
}

Status WorkerPoolController::Report(const std::string& key, const WorkerPool& pool, PoolState& state,
                                    const Poll& poll) {
  const WorkerPoolStatus& st0 = poll.st;
  WorkerPoolStatus st = st0;
  const Condition& ready = poll.ready;
  // A target that does not exist or cannot scale needs a person (spec.target, or
  // the missing Deployment): Stalled. Kafka and scale failures are retried.
  const bool stalled = ready.reason == kReasonTargetNotFound || ready.reason == kReasonTargetNotScalable;
  SetReadiness(st.conditions, ready, stalled, pool.status.conditions, FormatRfc3339(poll.now));
  {
    MutexLock lock(mu_);
    state.snapshot = {pool.ns,
                      pool.name,
                      poll.measured ? poll.lag.lag + poll.lag.persistent_lag : -1,
                      st.partitions.value_or(0),
                      st.desired_replicas.value_or(0),
                      st.current_replicas.value_or(0),
                      ready.status == "True"};
  }
  const Condition* before = pool.status.Find(kConditionReady);
  if (ready.reason != kReasonMeasured && (before == nullptr || before->reason != ready.reason)) {
    spdlog::warn("workerpool {}: {}: {}", key, ready.reason, ready.message);
    events_.Record(pool.Ref(kWorkerPoolApiVersion, "WorkerPool"), "Warning", ready.reason, "Measure", ready.message);
  } else if (ready.reason == kReasonMeasured && before != nullptr && before->reason != kReasonMeasured) {
    spdlog::info("workerpool {}: recovered from {}", key, before->reason);
  }
  if (st == pool.status) return Status::Ok();
  auto written = client_.Patch(kWorkerPools.Path(pool.ns, pool.name, "status"), WorkerPoolStatusPatch(st));
  if (!written.ok() && written.status().code() != StatusCode::kNotFound) return written.status();
  return Status::Ok();
}

void WorkerPoolController::Run(CancelToken& cancel, int workers) {
  WorkQueue queue(clock_);
  int sub = cache_.Subscribe([&queue](const std::string& key, const WorkerPool* old, const WorkerPool* now) {
    // New, deleted, or a spec change: poll now. Our own status writes are not.
    if (GenerationChanged(old, now)) queue.Add(key);
  });
  int id = cancel.Register([&queue] { queue.ShutDown(); });
  while (!keys_override_ && !cache_.Synced() && !cancel.cancelled()) cancel.WaitFor(std::chrono::milliseconds(100));
  // Every cached pool is polled once now; each poll queues the next one.
  for (const auto& k : keys_override_ ? *keys_override_ : cache_.Keys()) queue.Add(k);
  // Pools are polled concurrently (controller-runtime's MaxConcurrentReconciles): a
  // pool whose broker or API call waits for its timeout holds one worker, not all.
  // The queue never hands one pool to two workers at once.
  std::vector<std::thread> threads;
  for (int i = 0; i < std::max(1, workers); ++i) {
    threads.emplace_back([&] {
      while (auto key = queue.Get()) {
        auto next = Reconcile(*key);
        if (!next.ok()) {
          spdlog::warn("workerpool {}: {}", *key, next.status().ToString());
          // The Kubernetes API failed: poll again after the pool's interval.
          auto pool = Lookup(*key);
          queue.AddAfter(*key, std::chrono::seconds(pool ? std::max(1, pool->spec.poll_interval_seconds) : 5));
        } else if (next->has_value()) {
          queue.AddAfter(*key, **next);
        }
        queue.Done(*key);
      }
    });
  }
  for (auto& t : threads) t.join();
  cancel.Unregister(id);
  cache_.Unsubscribe(sub);
}

}  // namespace cronlane::op
