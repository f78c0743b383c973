#include "cli/next_command.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <iostream>
#include <ostream>
#include <sstream>

#include "cli/schema.h"
#include "cli/task_spec.h"

#include "common/time.h"
#include "common/zone.h"
#include "dispatcher/fire_times.h"
#include "dispatcher/task.h"

namespace cronlane::cli {
namespace {

// The flag that sets a spec field, for messages.
std::string FlagOf(const std::string& field) {
  if (field == "spec.schedule" || field.rfind("spec.schedules[", 0) == 0) return "--schedule";
  if (field == "spec.timeZone") return "--time-zone";
  if (field == "spec.runAt") return "--run-at";
  if (field == "spec.startTime") return "--start";
  if (field == "spec.endTime") return "--end";
  return field;
}

// Prints the fire times of `task`; a problem names the flag that set the field, or
// with `from_file` the manifest's field.
int Preview(const dispatcher::TaskDefinition& task, const NextOptions& opts, bool from_file, std::ostream& out,
            std::ostream& err) {
  Instant from = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  if (!opts.from.empty()) {
    auto parsed = ParseRfc3339(opts.from);
    if (!parsed.ok()) {
      err << "cronlane next: --from: " << parsed.status().message() << "\n";
      return 2;
    }
    from = *parsed;
  }
  // The checks and fire times the dispatcher has, so the preview is what fires.
  auto times = dispatcher::TaskFireTimes(task, from, std::nullopt, static_cast<size_t>(opts.count));
  if (!times.ok()) {
    // "FIELD: DETAIL"; the field as the flag that set it, unless it came from a file.
    const std::string& m = times.status().message();
    const size_t colon = m.find(": ");
    err << "cronlane next: "
        << (from_file || colon == std::string::npos ? m : FlagOf(m.substr(0, colon)) + m.substr(colon)) << "\n";
    return 2;
  }
  const Zone* zone = nullptr;
  if (auto z = LocateZone(task.time_zone); z.ok()) zone = *z;
  for (const Instant t : *times) {
    out << FormatRfc3339(t);
    if (opts.local) out << "  " << FormatLocal(t, zone);
    out << "\n";
  }
  return 0;
}

int RunNextFile(const NextOptions& opts, std::ostream& out, std::ostream& err) {
  if (!opts.schedules.empty() || !opts.run_at.empty() || !opts.start.empty() || !opts.end.empty() ||
      !opts.time_zone.empty()) {
    err << "cronlane next: -f takes the schedule, times and time zone from the manifest; drop --schedule, "
           "--run-at, --start, --end and --time-zone\n";
    return 2;
  }
  auto loaded = LoadScheduledTasks(opts.file);
  if (!loaded.ok()) {
    err << "cronlane next: " << loaded.status().message() << "\n";
    return 2;
  }
  const std::vector<YAML::Node>& tasks = *loaded;
  int rc = 0;
  for (const auto& o : tasks) {
    if (tasks.size() > 1) {
      const YAML::Node meta = At(o, "metadata");
      const YAML::Node ns = At(meta, "namespace"), name = At(meta, "name");
      out << "# " << (ns.IsScalar() ? ns.Scalar() + "/" : "") << (name.IsScalar() ? name.Scalar() : "") << "\n";
    }
    rc = std::max(rc, Preview(TaskFromObject(o), opts, true, out, err));
  }
  return rc;
}

}  // namespace

int RunNext(const NextOptions& opts, std::ostream& out, std::ostream& err) {
  if (opts.count < 1 || opts.count > 100000) {
    err << "cronlane next: --count must be between 1 and 100000, got " << opts.count << "\n";
    return 2;
  }
  if (!opts.file.empty()) return RunNextFile(opts, out, err);
  if (opts.schedules.empty() == opts.run_at.empty()) {
    err << "cronlane next: give --schedule (once or more), --run-at, or -f FILE\n";
    return 2;
  }
  if (!opts.run_at.empty() && (!opts.start.empty() || !opts.end.empty())) {
    err << "cronlane next: --start and --end bound a recurring --schedule; --run-at fires once\n";
    return 2;
  }
  dispatcher::TaskDefinition task;
  if (opts.schedules.size() == 1) {
    task.schedule = opts.schedules.front();
  } else if (opts.schedules.size() > 1) {
    std::vector<dispatcher::ScheduleEntry> entries;
    for (const auto& s : opts.schedules) entries.push_back({s, -1});
    task.schedules = std::move(entries);
  }
  task.time_zone = opts.time_zone;
  if (!opts.run_at.empty() || !opts.start.empty() || !opts.end.empty()) {
    task.bounds = dispatcher::TimeBounds{opts.run_at, opts.start, opts.end};
  }
  return Preview(task, opts, false, out, err);
}

}  // namespace cronlane::cli
