#include "operator/workerpool_controller.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>
#include <thread>

#include "common/time.h"

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
                                           EventRecorder& events, Clock& clock)
    : client_(client), lag_(lag), events_(events), clock_(clock), cache_(cache) {}

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
}

std::vector<PoolSnapshot> WorkerPoolController::Snapshot() const {
  MutexLock lock(mu_);
  std::vector<PoolSnapshot> out;
  for (const auto& [_, s] : pools_) {
    if (!s.snapshot.name.empty()) out.push_back(s.snapshot);
  }
  return out;
}

void WorkerPoolController::MarkDue(const std::string& key) {
  {
    MutexLock lock(mu_);
    auto it = pools_.find(key);
    if (it != pools_.end())
      it->second.next_poll = {};
    else
      pools_[key];  // a new entry is due at once
  }
  wake_.notify_all();
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

Status WorkerPoolController::Reconcile(const std::string& key) {
  auto found = Lookup(key);
  if (!found || found->deleting) {
    MutexLock lock(mu_);
    pools_.erase(key);
    return Status::Ok();
  }
  ++polls_;
  const WorkerPool& pool = *found;
  const WorkerPoolSpec& spec = pool.spec;
  const auto now = clock_.Now();
  PoolState* state = nullptr;
  {
    MutexLock lock(mu_);
    state = &pools_[key];
    if (state->uid != pool.uid) {
      state->uid = pool.uid;
      state->stabilizer = Stabilizer();
    }
  }

  WorkerPoolStatus st = pool.status;
  st.observed_generation = pool.generation;
  ObjectRef ref = pool.Ref(kWorkerPoolApiVersion, "WorkerPool");
  std::string target = spec.target_kind + "/" + spec.target_name;

  // The target's current scale.
  std::optional<Json> scale;
  std::string scale_path;
  Condition ready{"Ready", "True", kReasonMeasured, "", "", pool.generation};
  auto path = ScalePath(pool);
  if (!path.ok()) {
    if (path.status().code() != StatusCode::kNotFound) return path.status();
    ready = {"Ready", "False", kReasonTargetNotScalable, path.status().message(), "", pool.generation};
  } else {
    scale_path = *path;
    auto got = client_.Get(scale_path);
    if (got.ok()) {
      scale = std::move(*got);
    } else if (got.status().code() == StatusCode::kNotFound) {
      ready = {"Ready", "False",        kReasonTargetNotFound, target + " does not exist in namespace " + pool.ns,
               "",      pool.generation};
    } else {
      return got.status();
    }
  }
  if (scale) st.current_replicas = ReplicasAt(*scale, "status");

  // The lag.
  auto lag = lag_.Offsets(spec.consumer_group, spec.topic);
  const int64_t total = lag.ok() ? TotalLag(*lag) : 0;
  if (lag.ok()) {
    st.lag = total;
    st.partitions = static_cast<int32_t>(lag->size());
  } else if (ready.status == "True") {
    bool missing = lag.status().code() == StatusCode::kNotFound;
    ready = {"Ready",
             "False",
             missing ? kReasonTopicNotFound : kReasonKafkaUnavailable,
             missing ? "topic " + spec.topic + " does not exist"
                     : "cannot measure the lag of group " + spec.consumer_group + ": " + lag.status().message(),
             "",
             pool.generation};
  }

  // Decide and scale.
  if (scale && lag.ok()) {
    int32_t current = ReplicasAt(*scale, "spec");
    if (state->stabilizer.empty()) state->stabilizer.Seed(now, current);
    int32_t recommended = Recommend(spec, total, static_cast<int32_t>(lag->size()), current);
    int32_t desired =
        state->stabilizer.Apply(now, recommended, std::chrono::seconds(spec.scale_down_stabilization_seconds));
    desired = std::clamp(desired, spec.min_replicas, std::max(spec.min_replicas, spec.max_replicas));
    st.desired_replicas = desired;
    ready.message = "lag " + std::to_string(total) + " on " + std::to_string(lag->size()) + " partition(s); " +
                    std::to_string(desired) + " replica(s) wanted";
    if (desired != current) {
      auto patched = client_.Patch(scale_path, Json{{"spec", {{"replicas", desired}}}});
      if (patched.ok()) {
        ++scales_;
        st.last_scale_time = FormatRfc3339(now);
        std::string note = "Scaled " + target + " from " + std::to_string(current) + " to " + std::to_string(desired) +
                           " replicas: lag " + std::to_string(total) + " on " + std::to_string(lag->size()) +
                           " partition(s)";
        spdlog::info("workerpool {}: {}", key, note);
        events_.Record(ref, "Normal", "Scaled", "Scale", note);
        st.current_replicas = ReplicasAt(*patched, "status");
      } else if (patched.status().code() == StatusCode::kUnavailable) {
        return patched.status();
      } else {
        ready = {"Ready", "False",        kReasonScaleFailed, "scaling " + target + ": " + patched.status().message(),
                 "",      pool.generation};
      }
    }
    SetCondition(st.conditions,
                 {"Active", desired > 0 ? "True" : "False", desired > 0 ? "LagPresent" : "Idle",
                  desired > 0 ? "the pool has work" : "no lag: the pool is at minReplicas", "", pool.generation},
                 pool.status.conditions, FormatRfc3339(now));
  }
  SetCondition(st.conditions, ready, pool.status.conditions, FormatRfc3339(now));

  {
    MutexLock lock(mu_);
    state->snapshot = {pool.ns,
                       pool.name,
                       lag.ok() ? total : -1,
                       st.partitions.value_or(0),
                       st.desired_replicas.value_or(0),
                       st.current_replicas.value_or(0),
                       ready.status == "True"};
  }

  const Condition* before = pool.status.Find("Ready");
  if (ready.status == "False" && (before == nullptr || before->reason != ready.reason)) {
    spdlog::warn("workerpool {}: {}: {}", key, ready.reason, ready.message);
    events_.Record(ref, "Warning", ready.reason, "Measure", ready.message);
  } else if (ready.status == "True" && before != nullptr && before->status == "False") {
    spdlog::info("workerpool {}: recovered from {}", key, before->reason);
  }
  if (st == pool.status) return Status::Ok();
  auto written = client_.Patch(kWorkerPools.Path(pool.ns, pool.name, "status"), WorkerPoolStatusPatch(st));
  if (!written.ok() && written.status().code() != StatusCode::kNotFound) return written.status();
  return Status::Ok();
}

void WorkerPoolController::Run(CancelToken& cancel) {
  int sub = cache_.Subscribe([this](const std::string& key, const WorkerPool* old, const WorkerPool* now) {
    // New, deleted, or a spec change: poll now. Our own status writes are not.
    if (GenerationChanged(old, now)) MarkDue(key);
  });
  int id = cancel.Register([this] {
    MutexLock lock(mu_);
    wake_.notify_all();
  });
  while (!cancel.cancelled()) {
    if (!cache_.Synced()) {
      cancel.WaitFor(std::chrono::milliseconds(100));
      continue;
    }
    // Every cached pool gets a state entry; deleted ones are dropped by Reconcile.
    std::vector<std::string> keys = cache_.Keys();
    std::vector<std::string> due;
    auto steady = clock_.SteadyNow();
    {
      MutexLock lock(mu_);
      for (const auto& k : keys) pools_.try_emplace(k);
      for (const auto& [k, s] : pools_) {
        if (s.next_poll <= steady) due.push_back(k);
      }
    }
    for (const auto& k : due) {
      if (cancel.cancelled()) break;
      Status s = Reconcile(k);
      if (!s.ok()) spdlog::warn("workerpool {}: {}", k, s.ToString());
      auto pool = Lookup(k);
      MutexLock lock(mu_);
      if (auto it = pools_.find(k); it != pools_.end()) {
        int interval = pool ? pool->spec.poll_interval_seconds : 5;
        it->second.next_poll = clock_.SteadyNow() + std::chrono::seconds(interval);
      }
    }
    MutexLock lock(mu_);
    auto next = clock_.SteadyNow() + std::chrono::seconds(1);
    for (const auto& [_, s] : pools_) next = std::min(next, s.next_poll);
    if (!cancel.cancelled()) {
      wake_.wait_for(lock.native(), std::max(std::chrono::steady_clock::duration::zero(), next - clock_.SteadyNow()));
    }
  }
  cancel.Unregister(id);
  cache_.Unsubscribe(sub);
}

}  // namespace cronlane::op
