#pragma once
// What the schedule will put on each topic: the forecast behind predictive
// WorkerPools (issue 19). Pure: no clock, no I/O; the operator feeds it the cached
// definitions.

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "dispatcher/task.h"

namespace cronlane::dispatcher {

// Messages landing on one topic at one nominal fire time.
struct ForecastPoint {
  Instant at;
  int64_t messages = 0;
  bool operator==(const ForecastPoint&) const = default;
};

// By topic, the messages whose nominal fire time lies in [from, to), ascending by
// time: one per shard of each occurrence (spec.shards), as the dispatcher fires
// them. A task with jitter is counted at its nominal time, the earliest its
// messages can land. Suspended tasks and tasks the dispatcher refuses count
// nothing; a task without spec.target.topic counts on `default_topic`. At most
// `max_per_task` fire times are counted per task (a task firing every second in a
// one-hour window: 3,600), so a window is bounded however often a task fires.
std::map<std::string, std::vector<ForecastPoint>> ForecastMessages(const std::vector<TaskDefinitionPtr>& tasks,
                                                                   const std::string& default_topic, Instant from,
                                                                   Instant to, size_t max_per_task = 3600);

}  // namespace cronlane::dispatcher
