#include "dispatcher/task.h"

#include "common/limits.h"

namespace cronlane::dispatcher {

bool IsReservedHeader(std::string_view name) {
  auto lower = [](std::string_view s) {
    std::string out(s);
    for (char& c : out) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    return out;
  };
  const std::string n = lower(name);
  return n.rfind("ce_", 0) == 0 || n == "content-type";
}

std::optional<TaskProblem> CheckTask(const TaskDefinition& task) {
  auto zone = LocateZone(task.time_zone);
  if (!zone.ok()) return TaskProblem{"UnknownTimeZone", "spec.timeZone: " + zone.status().message().substr(10)};
  auto s = Schedule::Parse(task.schedule, task.time_zone);
  if (!s.ok()) return TaskProblem{"InvalidSchedule", "spec.schedule: " + s.status().message()};
  if (task.payload_json.size() > kMaxPayloadBytes) {
    return TaskProblem{"PayloadTooLarge", "spec.payload: " + std::to_string(task.payload_json.size()) +
                                              " bytes as JSON, over the limit of " + std::to_string(kMaxPayloadBytes)};
  }
  for (const auto& [name, value] : task.headers) {
    if (IsReservedHeader(name)) {
      return TaskProblem{"InvalidTarget", "spec.target.headers: \"" + name +
                                              "\" is reserved: the operator sets the CloudEvent attributes (ce_*) and "
                                              "content-type"};
    }
  }
  if (task.shards < 1 || task.shards > 1024) {
    return TaskProblem{"InvalidTarget", "spec.shards: " + std::to_string(task.shards) + " is out of range 1-1024"};
  }
  return std::nullopt;
}

}  // namespace cronlane::dispatcher
