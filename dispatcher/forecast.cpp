#include "dispatcher/forecast.h"

#include <algorithm>

namespace cronlane::dispatcher {

std::map<std::string, std::vector<ForecastPoint>> ForecastMessages(const std::vector<TaskDefinitionPtr>& tasks,
                                                                   const std::string& default_topic, Instant from,
                                                                   Instant to, size_t max_per_task) {
  std::map<std::string, std::map<Instant, int64_t>> by_topic;
  if (to <= from) return {};
  for (const auto& task : tasks) {
    if (!task || task->suspend) continue;
    // TaskFireTimes lists times strictly after its `after`: from - 1 s includes `from`.
    auto times = TaskFireTimes(*task, from - std::chrono::seconds(1), to, max_per_task);
    if (!times.ok() || times->empty()) continue;
    auto& points = by_topic[task->topic.empty() ? default_topic : task->topic];
    const int64_t shards = std::max(1, task->shards);
    for (Instant t : *times) {
      if (t >= from && t < to) points[t] += shards;
    }
  }
  std::map<std::string, std::vector<ForecastPoint>> out;
  for (auto& [topic, points] : by_topic) {
    auto& v = out[topic];
    v.reserve(points.size());
    for (const auto& [at, n] : points) v.push_back({at, n});
  }
  return out;
}

}  // namespace cronlane::dispatcher
