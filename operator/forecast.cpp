#include "operator/forecast.h"

#include <algorithm>
#include <utility>

namespace cronlane::op {

ScheduleForecaster::ScheduleForecaster(Definitions definitions, std::string default_topic, Clock& clock,
                                       std::chrono::seconds reuse, std::chrono::seconds min_window)
    : definitions_(std::move(definitions)),
      default_topic_(std::move(default_topic)),
      clock_(clock),
      reuse_(reuse),
      min_window_(min_window) {}

uint64_t ScheduleForecaster::passes() const {
  MutexLock lock(mu_);
  return passes_;
}

TopicForecast ScheduleForecaster::Forecast(const std::string& topic, std::chrono::system_clock::time_point from_tp,
                                           std::chrono::system_clock::time_point to_tp) {
  // Whole seconds: fire times are.
  const Instant from = std::chrono::ceil<std::chrono::seconds>(from_tp);
  const Instant to = std::chrono::ceil<std::chrono::seconds>(to_tp);
  MutexLock lock(mu_);
  const auto now = clock_.SteadyNow();
  const bool fresh = computed_ && now - *computed_ < reuse_ && from >= from_ && to <= to_;
  if (!fresh) {
    const Instant until = std::max(to, from + min_window_);
    points_ = dispatcher::ForecastMessages(definitions_(), default_topic_, from, until);
    from_ = from;
    to_ = until;
    computed_ = now;
    ++passes_;
  }
  TopicForecast out;
  auto it = points_.find(topic);
  if (it == points_.end()) return out;
  // Points are ascending: those in [from, to).
  const auto& pts = it->second;
  auto first = std::lower_bound(pts.begin(), pts.end(), from,
                                [](const dispatcher::ForecastPoint& p, Instant t) { return p.at < t; });
  for (auto p = first; p != pts.end() && p->at < to; ++p) {
    if (!out.first) out.first = p->at;
    out.messages += p->messages;
  }
  return out;
}

ScheduleForecaster::Definitions CachedDefinitions(const KindCache<ScheduledTask>& tasks) {
  return [&tasks] {
    // The shared definitions only: no copy of each task's metadata and status.
    std::vector<dispatcher::TaskDefinitionPtr> defs;
    defs.reserve(tasks.Size());
    tasks.ForEach([&defs](const ScheduledTask& t) { defs.push_back(t.def); });
    return defs;
  };
}

ScheduleForecaster::Definitions ListedDefinitions(TaskListing& listing) {
  return [&listing] {
    auto tasks = listing.Get();
    std::vector<dispatcher::TaskDefinitionPtr> defs;
    defs.reserve(tasks->size());
    for (const auto& [key, t] : *tasks) defs.push_back(t.def);
    return defs;
  };
}

}  // namespace cronlane::op
