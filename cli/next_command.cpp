#include "cli/next_command.h"

#include <chrono>
#include <ostream>

#include "dispatcher/cron.h"

namespace cronlane::cli {

int RunNext(const NextOptions& opts, std::ostream& out, std::ostream& err) {
  using dispatcher::Instant;
  auto schedule = dispatcher::Schedule::Parse(opts.schedule, opts.time_zone);
  if (!schedule.ok()) {
    err << "cronlane next: " << schedule.status().message() << "\n";
    return 2;
  }
  if (opts.count < 1 || opts.count > 100000) {
    err << "cronlane next: --count must be between 1 and 100000, got " << opts.count << "\n";
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
  Instant t = from;
  for (int i = 0; i < opts.count; ++i) {
    auto next = schedule->Next(t);
    if (!next) break;
    out << FormatRfc3339(*next);
    if (opts.local) out << "  " << FormatLocal(*next, schedule->zone());
    out << "\n";
    t = *next;
  }
  return 0;
}

}  // namespace cronlane::cli
