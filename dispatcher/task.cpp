#include "dispatcher/task.h"

#include <algorithm>

#include "common/limits.h"
#include "common/time.h"
#include "common/zone.h"

#include <limits>

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

std::vector<TaskProblem> TaskProblems(const TaskDefinition& task, std::optional<Schedule>* schedule, FireSpec* window) {
  std::vector<TaskProblem> out;
  auto zone = LocateZone(task.time_zone);
  if (!zone.ok()) out.push_back({"UnknownTimeZone", "spec.timeZone", zone.status().message(), ""});
  const Zone* z = zone.ok() ? *zone : nullptr;
  const bool one_shot = task.bounds && !task.bounds->run_at.empty();
  FireSpec w;
  auto time = [&](const char* field, const std::string& text, std::optional<Instant>& into) {
    if (text.empty()) return;
    auto t = ParseSpecTime(text, z);
    if (t.ok()) {
      into = *t;
    } else {
      out.push_back({"InvalidSpec", field, t.status().message(), ""});
    }
  };
  Result<Schedule> s = InvalidArgument("not parsed");
  if (task.schedules) {
    // spec.schedules: the first entry is the task's schedule, the rest go with the spec.
    if (!task.schedule.empty() || one_shot) {
      out.push_back({"InvalidSpec", "spec.schedules",
                     "is set together with spec.schedule or spec.runAt: a task has exactly one of them", ""});
    }
    const auto& entries = *task.schedules;
    if (entries.empty() || entries.size() > 16) {
      out.push_back({"InvalidSpec", "spec.schedules", std::to_string(entries.size()) + " entries, not 1-16", ""});
    }
    for (size_t i = 0; i < entries.size(); ++i) {
      const std::string field = "spec.schedules[" + std::to_string(i) + "]";
      auto parsed = Schedule::Parse(entries[i].schedule, zone.ok() ? task.time_zone : "");
      if (!parsed.ok()) {
        out.push_back({"InvalidSchedule", field + ".schedule", parsed.status().message(), ""});
      } else if (i == 0) {
        s = std::move(parsed);
      } else {
        w.more.push_back(parsed->Anchored(task.created));
      }
      for (size_t j = 0; j < i; ++j) {
        if (entries[j].schedule == entries[i].schedule) {
          out.push_back({"InvalidSpec", field + ".schedule", "repeats spec.schedules[" + std::to_string(j) + "]", ""});
        }
      }
      if (entries[i].jitter_seconds < -1 || entries[i].jitter_seconds > 3600) {
        out.push_back({"InvalidSpec", field + ".jitterSeconds",
                       std::to_string(entries[i].jitter_seconds) + " is out of range 0-3600", ""});
      }
      w.jitter.push_back(entries[i].jitter_seconds);
    }
  }
  if (task.schedules) {
    // parsed above, entry by entry
  } else if (one_shot) {
    time("spec.runAt", task.bounds->run_at, w.run_at);
    if (!task.schedule.empty()) {
      out.push_back(
          {"InvalidSpec", "spec.runAt", "is set together with spec.schedule: a task has one or the other", ""});
    }
    if (!task.bounds->start_time.empty() || !task.bounds->end_time.empty()) {
      out.push_back({"InvalidSpec", "spec.runAt",
                     "fires once: spec.startTime and spec.endTime only bound a recurring schedule", ""});
    }
  } else {
    s = Schedule::Parse(task.schedule, zone.ok() ? task.time_zone : "");
    if (!s.ok()) out.push_back({"InvalidSchedule", "spec.schedule", s.status().message(), ""});
  }
  if (task.bounds && !one_shot) {
    time("spec.startTime", task.bounds->start_time, w.start);
    time("spec.endTime", task.bounds->end_time, w.end);
    if (w.start && w.end && *w.start >= *w.end) {
      out.push_back({"InvalidSpec", "spec.endTime",
                     "is not after spec.startTime (" + FormatRfc3339(*w.start) + "): nothing could fire", ""});
    }
  }
  if (task.payload_json.size() > kMaxPayloadBytes) {
    out.push_back({"PayloadTooLarge", "spec.payload",
                   "is " + std::to_string(task.payload_json.size()) + " bytes as JSON, over the limit of " +
                       std::to_string(kMaxPayloadBytes),
                   ""});
  }
  for (const auto& [name, value] : task.headers()) {
    if (IsReservedHeader(name)) {
      out.push_back(
          {"InvalidTarget", "spec.target.headers",
           "\"" + name + "\" is reserved: the operator sets the CloudEvent attributes (ce_*) and content-type", name});
    }
  }
  if (task.shards < 1 || task.shards > 1024) {
    out.push_back({"InvalidTarget", "spec.shards", std::to_string(task.shards) + " is out of range 1-1024", ""});
  }
  // The CRD's bounds, for objects that did not pass its schema (written under an
  // older one, or decoded from elsewhere): out of range is refused, not clamped.
  auto range = [&out](const char* field, int64_t v, int64_t lo, int64_t hi) {
    if (v < lo || v > hi) {
      out.push_back({"InvalidSpec", field,
                     std::to_string(v) + " is out of range " + std::to_string(lo) + "-" + std::to_string(hi), ""});
    }
  };
  if (task.starting_deadline_seconds) {
    range("spec.startingDeadlineSeconds", *task.starting_deadline_seconds, 0, std::numeric_limits<int64_t>::max());
  }
  range("spec.maxCatchUp", task.max_catch_up, 1, 10000);
  range("spec.jitterSeconds", task.jitter_seconds, 0, 3600);
  range("spec.execution.timeoutSeconds", task.timeout_seconds, 0, 86400);  // 0: unset
  range("spec.execution.maxAttempts", task.max_attempts, 1, 100);
  range("spec.execution.backoffSeconds", task.backoff_seconds, 0, 3600);
  if (schedule != nullptr && out.empty() && s.ok()) *schedule = std::move(*s);
  if (window != nullptr && out.empty()) *window = w;
  return out;
}

const std::string& TaskDefinition::key() const {
  static const std::string kNone;
  return message ? message->key : kNone;
}

const std::vector<std::pair<std::string, std::string>>& TaskDefinition::headers() const {
  static const std::vector<std::pair<std::string, std::string>> kNone;
  return message ? message->headers : kNone;
}

bool ValidRunToken(std::string_view token) {
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'); };
  if (token.empty() || token.size() > 63 || !alnum(token.front())) return false;
  return std::all_of(token.begin(), token.end(), [&](char c) { return alnum(c) || c == '.' || c == '_' || c == '-'; });
}

std::optional<TaskProblem> CheckTask(const TaskDefinition& task) {
  auto problems = TaskProblems(task);
  if (problems.empty()) return std::nullopt;
  return std::move(problems.front());
}

Result<std::vector<Instant>> TaskFireTimes(const TaskDefinition& task, Instant after, std::optional<Instant> before,
                                           size_t max) {
  std::optional<Schedule> schedule;
  FireSpec window;
  if (auto problems = TaskProblems(task, &schedule, &window); !problems.empty()) {
    return InvalidArgument(problems.front().field + ": " + problems.front().detail);
  }
  const Schedule none;
  const bool has_spec = task.bounds || task.schedules;
  // "@every" counts from the task's creation, as the dispatcher anchors it.
  const Schedule anchored = schedule ? schedule->Anchored(task.created) : none;
  const FireTimes times(anchored, has_spec ? &window : nullptr);
  std::vector<Instant> out;
  for (auto t = times.Next(after); t && (!before || *t < *before) && out.size() < max; t = times.Next(*t)) {
    out.push_back(*t);
  }
  return out;
}

}  // namespace cronlane::dispatcher
