#include "cli/next_command.h"

#include <chrono>
#include <ostream>

#include "common/time.h"
#include "common/zone.h"
#include "dispatcher/fire_times.h"
#include "dispatcher/task.h"

namespace cronlane::cli {
namespace {

// The flag that sets a spec field, for messages.
std::string FlagOf(const std::string& field) {
  if (field == "spec.schedule") return "--schedule";
  if (field == "spec.timeZone") return "--time-zone";
  if (field == "spec.runAt") return "--run-at";
  if (field == "spec.startTime") return "--start";
  if (field == "spec.endTime") return "--end";
  return field;
}

}  // namespace

int RunNext(const NextOptions& opts, std::ostream& out, std::ostream& err) {
  using dispatcher::Instant;
  if (opts.schedule.empty() == opts.run_at.empty()) {
    err << "cronlane next: give exactly one of --schedule or --run-at\n";
    return 2;
  }
  if (!opts.run_at.empty() && (!opts.start.empty() || !opts.end.empty())) {
    err << "cronlane next: --start and --end bound a recurring --schedule; --run-at fires once\n";
    return 2;
  }
  if (opts.count < 1 || opts.count > 100000) {
    err << "cronlane next: --count must be between 1 and 100000, got " << opts.count << "\n";
    return 2;
  }
  // The checks and parsing the dispatcher does, so the preview is what fires.
  dispatcher::TaskDefinition task;
  task.schedule = opts.schedule;
  task.time_zone = opts.time_zone;
  if (!opts.run_at.empty() || !opts.start.empty() || !opts.end.empty()) {
    task.bounds = dispatcher::TimeBounds{opts.run_at, opts.start, opts.end};
  }
  std::optional<dispatcher::Schedule> schedule;
  dispatcher::FireSpec window;
  if (auto problems = dispatcher::TaskProblems(task, &schedule, &window); !problems.empty()) {
    err << "cronlane next: " << FlagOf(problems.front().field) << ": " << problems.front().detail << "\n";
    return 2;
  }
  Instant from = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  if (!opts.from.empty()) {
    auto parsed = ParseRfc3339(opts.from);
    if (!parsed.ok()) {
      err << "cronlane next: --from: " << parsed.status().message() << "\n";
      return 2;
    }
    from = *parsed;
  }
  const dispatcher::Schedule none;
  const dispatcher::FireTimes times(schedule ? *schedule : none, task.bounds ? &window : nullptr);
  const Zone* zone = nullptr;
  if (auto z = LocateZone(opts.time_zone); z.ok()) zone = *z;
  Instant t = from;
  for (int i = 0; i < opts.count; ++i) {
    auto next = times.Next(t);
    if (!next) break;
    out << FormatRfc3339(*next);
    if (opts.local) out << "  " << FormatLocal(*next, zone);
    out << "\n";
    t = *next;
  }
  return 0;
}

}  // namespace cronlane::cli
