#include "dispatcher/task.h"

#include "common/limits.h"

namespace cronlane::dispatcher {

std::optional<TaskProblem> CheckTask(const TaskDefinition& task) {
  auto zone = LocateZone(task.time_zone);
  if (!zone.ok()) return TaskProblem{"UnknownTimeZone", "spec.timeZone: " + zone.status().message().substr(10)};
  auto s = Schedule::Parse(task.schedule, task.time_zone);
  if (!s.ok()) return TaskProblem{"InvalidSchedule", "spec.schedule: " + s.status().message()};
  if (task.payload_json.size() > kMaxPayloadBytes) {
    return TaskProblem{"PayloadTooLarge", "spec.payload: " + std::to_string(task.payload_json.size()) +
                                              " bytes as JSON, over the limit of " + std::to_string(kMaxPayloadBytes)};
  }
  if (task.shards < 1 || task.shards > 1024) {
    return TaskProblem{"InvalidTarget", "spec.shards: " + std::to_string(task.shards) + " is out of range 1-1024"};
  }
  return std::nullopt;
}

}  // namespace cronlane::dispatcher
