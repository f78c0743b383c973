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

std::vector<TaskProblem> TaskProblems(const TaskDefinition& task) {
  std::vector<TaskProblem> out;
  auto zone = LocateZone(task.time_zone);
  if (!zone.ok()) out.push_back({"UnknownTimeZone", "spec.timeZone", zone.status().message(), ""});
  auto s = Schedule::Parse(task.schedule, zone.ok() ? task.time_zone : "");
  if (!s.ok()) out.push_back({"InvalidSchedule", "spec.schedule", s.status().message(), ""});
  if (task.payload_json.size() > kMaxPayloadBytes) {
    out.push_back({"PayloadTooLarge", "spec.payload",
                   "is " + std::to_string(task.payload_json.size()) + " bytes as JSON, over the limit of " +
                       std::to_string(kMaxPayloadBytes),
                   ""});
  }
  for (const auto& [name, value] : task.headers) {
    if (IsReservedHeader(name)) {
      out.push_back(
          {"InvalidTarget", "spec.target.headers",
           "\"" + name + "\" is reserved: the operator sets the CloudEvent attributes (ce_*) and content-type", name});
    }
  }
  if (task.shards < 1 || task.shards > 1024) {
    out.push_back({"InvalidTarget", "spec.shards", std::to_string(task.shards) + " is out of range 1-1024", ""});
  }
  return out;
}

std::optional<TaskProblem> CheckTask(const TaskDefinition& task) {
  auto problems = TaskProblems(task);
  if (problems.empty()) return std::nullopt;
  return std::move(problems.front());
}

}  // namespace cronlane::dispatcher
