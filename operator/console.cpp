#include "operator/console.h"

#include <algorithm>
#include <tuple>
#include <utility>

#include "common/text.h"
#include "common/time.h"
#include "dispatcher/task.h"
#include "operator/object_fields.h"
#include "operator/run_history.h"

namespace cronlane::op {

namespace {

using Json = kube::Json;

int64_t UnixSeconds(Instant t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

Json TimeOrNull(const std::optional<Instant>& t) {
  return t ? Json(FormatRfc3339(*t)) : Json(nullptr);
}

Json ConditionJson(const Condition* c) {
  if (c == nullptr) return nullptr;
  return {{"status", c->status}, {"reason", c->reason}, {"message", c->message}};
}

// Not Ready (or not yet judged) first: those need a person. Then by the next fire
// status shows, the soonest first; tasks that will not fire last; then by key.
bool ShownBefore(const ScheduledTask& a, const ScheduledTask& b) {
  auto rank = [](const ScheduledTask& t) {
    const Condition* ready = t.status.Find(kConditionReady);
    const bool healthy = ready != nullptr && ready->status == "True";
    const bool fires = !t.def->suspend && t.status.next_schedule_time.has_value();
    return std::make_tuple(healthy ? 1 : 0, fires ? 0 : 1, t.status.next_schedule_time.value_or(Instant::max()));
  };
  auto ra = rank(a), rb = rank(b);
  if (ra != rb) return ra < rb;
  return std::tie(a.ns, a.name) < std::tie(b.ns, b.name);
}

}  // namespace

Console::Console(ConsoleSource source, Clock& clock, ConsoleOptions options)
    : source_(std::move(source)), clock_(clock), options_(std::move(options)) {}

std::string Console::Overview(const std::string& ns) {
  const auto now = clock_.SteadyNow();
  {
    MutexLock lock(mu_);
    if (auto it = reused_.find(ns); it != reused_.end() && now - it->second.at < options_.reuse) {
      return it->second.body;
    }
  }
  std::string body = Compute(ns);
  MutexLock lock(mu_);
  std::erase_if(reused_, [&](const auto& e) { return now - e.second.at >= options_.reuse; });
  reused_[ns] = Reused{now, body};
  return body;
}

std::string Console::Compute(const std::string& ns) {
  const Instant now = std::chrono::floor<std::chrono::seconds>(clock_.Now());
  const Instant until = now + options_.horizon;

  std::vector<std::string> keys = source_.task_keys ? source_.task_keys() : std::vector<std::string>{};
  std::vector<std::string> namespaces;
  namespaces.reserve(keys.size());
  for (const auto& key : keys) namespaces.push_back(key.substr(0, key.find('/')));
  std::sort(namespaces.begin(), namespaces.end());
  namespaces.erase(std::unique(namespaces.begin(), namespaces.end()), namespaces.end());
  std::vector<ScheduledTask> all;
  for (const auto& key : keys) {
    if (!ns.empty() && key.compare(0, key.find('/'), ns) != 0) continue;
    if (auto t = source_.task(key); t && t->def != nullptr) all.push_back(std::move(*t));
  }
  const size_t total = all.size();
  const size_t shown = std::min(total, options_.max_tasks);
  std::partial_sort(all.begin(), all.begin() + static_cast<std::ptrdiff_t>(shown), all.end(), ShownBefore);
  all.resize(shown);

  Json tasks = Json::array();
  Json runs = Json::array();
  for (const ScheduledTask& t : all) {
    const dispatcher::TaskDefinition& def = *t.def;
    Json fires = Json::array();
    bool cut = false;
    size_t count = 0;
    std::optional<Instant> last;
    std::string problem;
    if (!def.suspend) {
      // A task fires at most once a second: the horizon bounds the count.
      auto times = dispatcher::TaskFireTimes(def, now, until, static_cast<size_t>(options_.horizon.count()) + 1);
      if (times.ok()) {
        count = times->size();
        if (!times->empty()) last = times->back();
        cut = count > options_.max_fires_per_task;
        for (size_t i = 0; i < std::min(count, options_.max_fires_per_task); ++i) {
          fires.push_back(FormatRfc3339((*times)[i]));
        }
      } else {
        problem = times.status().message();
      }
    }
    Json task = {{"namespace", t.ns},
                 {"name", t.name},
                 {"schedule", def.schedules ? "" : def.schedule},
                 {"timeZone", def.time_zone.empty() ? "UTC" : def.time_zone},
                 {"suspended", def.suspend},
                 {"topic", def.topic},
                 {"ready", ConditionJson(t.status.Find(kConditionReady))},
                 {"complete",
                  t.status.Find(kConditionComplete) != nullptr && t.status.Find(kConditionComplete)->status == "True"},
                 {"lastScheduleTime", TimeOrNull(t.status.last_schedule_time)},
                 {"nextScheduleTime", TimeOrNull(t.status.next_schedule_time)},
                 {"lastSuccessfulTime", TimeOrNull(t.status.last_successful_time)},
                 {"firedCount", t.status.fired_count},
                 {"missedCount", t.status.missed_count},
                 {"fires", std::move(fires)},
                 {"firesCut", cut},
                 {"fireCount", count},
                 {"lastFire", TimeOrNull(last)}};
    if (def.schedules) {
      std::string joined;
      for (const auto& e : *def.schedules) joined += (joined.empty() ? "" : " | ") + e.schedule;
      task["schedule"] = joined;
    }
    if (def.bounds && !def.bounds->run_at.empty()) task["runAt"] = def.bounds->run_at;
    if (t.status.shard >= 0) task["shard"] = t.status.shard;
    if (!problem.empty()) task["problem"] = problem;
    if (t.status.runs) {
      Json own = RecentRunsJson(*t.status.runs);
      if (!own.empty()) task["lastRun"] = own.front();
      for (auto& r : own) {
        r["namespace"] = t.ns;
        r["task"] = t.name;
        runs.push_back(std::move(r));
      }
    }
    tasks.push_back(std::move(task));
  }
  // RFC 3339 UTC strings of one format sort as their instants.
  std::stable_sort(runs.begin(), runs.end(), [](const Json& a, const Json& b) {
    return a["finishedTime"].get_ref<const std::string&>() > b["finishedTime"].get_ref<const std::string&>();
  });
  if (runs.size() > options_.max_runs)
    runs.erase(runs.begin() + static_cast<std::ptrdiff_t>(options_.max_runs), runs.end());

  Json pools = Json::array();
  std::vector<WorkerPool> cached = source_.pools ? source_.pools() : std::vector<WorkerPool>{};
  std::sort(cached.begin(), cached.end(),
            [](const WorkerPool& a, const WorkerPool& b) { return std::tie(a.ns, a.name) < std::tie(b.ns, b.name); });
  {
    MutexLock lock(mu_);
    for (const WorkerPool& p : cached) {
      if (!ns.empty() && p.ns != ns) continue;
      Json history = Json::array();
      if (auto it = history_.find(p.Key()); it != history_.end()) {
        for (const PoolSample& s : it->second) {
          history.push_back({s.unix_seconds, JsonOrNull(s.lag), JsonOrNull(s.replicas), JsonOrNull(s.desired)});
        }
      }
      pools.push_back({{"namespace", p.ns},
                       {"name", p.name},
                       {"topic", Join(p.spec.topics, ", ")},
                       {"consumerGroup", p.spec.consumer_group},
                       {"target", p.spec.target_kind + "/" + p.spec.target_name},
                       {"minReplicas", p.spec.min_replicas},
                       {"maxReplicas", p.spec.max_replicas},
                       {"lagThreshold", p.spec.lag_threshold},
                       {"lag", JsonOrNull(p.status.lag)},
                       {"partitions", JsonOrNull(p.status.partitions)},
                       {"currentReplicas", JsonOrNull(p.status.current_replicas)},
                       {"desiredReplicas", JsonOrNull(p.status.desired_replicas)},
                       {"ready", ConditionJson(p.status.Find(kConditionReady))},
                       {"history", std::move(history)}});
    }
  }

  Json backfills = Json::array();
  std::vector<Backfill> fills = source_.backfills ? source_.backfills() : std::vector<Backfill>{};
  std::sort(fills.begin(), fills.end(),
            [](const Backfill& a, const Backfill& b) { return std::tie(a.ns, a.name) < std::tie(b.ns, b.name); });
  for (const Backfill& b : fills) {
    if (!ns.empty() && b.ns != ns) continue;
    const Condition* complete = b.status.Find(kConditionComplete);
    backfills.push_back({{"namespace", b.ns},
                         {"name", b.name},
                         {"task", b.spec.task_name},
                         {"from", TimeOrNull(b.spec.from)},
                         {"to", TimeOrNull(b.spec.to)},
                         {"fired", JsonOrNull(b.status.fired)},
                         {"total", JsonOrNull(b.status.total)},
                         {"complete", complete != nullptr && complete->status == "True"},
                         {"ready", ConditionJson(b.status.Find(kConditionReady))}});
  }

  Json out = {{"now", FormatRfc3339(now)},       {"horizonSeconds", options_.horizon.count()},
              {"replica", options_.replica},     {"namespace", ns},
              {"namespaces", namespaces},        {"tasksTotal", total},
              {"tasks", std::move(tasks)},       {"recentRuns", std::move(runs)},
              {"workerPools", std::move(pools)}, {"backfills", std::move(backfills)}};
  return out.dump();
}

void Console::Sample() {
  std::vector<WorkerPool> pools = source_.pools ? source_.pools() : std::vector<WorkerPool>{};
  const int64_t now = UnixSeconds(std::chrono::floor<std::chrono::seconds>(clock_.Now()));
  const int64_t oldest = now - options_.pool_history.count();
  MutexLock lock(mu_);
  std::map<std::string, std::deque<PoolSample>> next;
  for (const WorkerPool& p : pools) {
    auto& samples = next[p.Key()];
    if (auto it = history_.find(p.Key()); it != history_.end()) samples = std::move(it->second);
    while (!samples.empty() && samples.front().unix_seconds < oldest) samples.pop_front();
    samples.push_back({now, p.status.lag, p.status.current_replicas, p.status.desired_replicas});
  }
  history_ = std::move(next);
}

Status Console::Run(CancelToken& cancel) {
  while (!cancel.cancelled()) {
    Sample();
    if (cancel.WaitFor(options_.sample_period)) break;
  }
  return Status::Ok();
}

}  // namespace cronlane::op
