#pragma once
// When a task fires: its cron schedule clipped to [startTime, endTime), or once at
// runAt. The dispatcher walks a task's occurrences through FireTimes only, so a
// bounded or one-shot task needs nothing else from it; `cronlane next` prints the
// same instants.

#include <optional>
#include <string_view>

#include "common/status.h"
#include "dispatcher/cron.h"

namespace cronlane {
class Zone;
}

namespace cronlane::dispatcher {

// The parsed spec.runAt, spec.startTime and spec.endTime of a task (TimeBounds).
struct FireWindow {
  std::optional<Instant> run_at;  // fires once, here, and never on a schedule
  std::optional<Instant> start;   // inclusive
  std::optional<Instant> end;     // exclusive

  bool operator==(const FireWindow&) const = default;
};

// A spec time: RFC 3339 with an offset ("2026-12-24T18:00:00+01:00", "...Z"), or a
// local date-time without one ("2026-12-24T18:00:00") read in `zone` (nullptr: UTC).
// A local time that a DST jump skips is refused (it never happens); one that a
// fall-back repeats is its first occurrence.
Result<Instant> ParseSpecTime(std::string_view text, const Zone* zone);

// A view: keeps references to the schedule and window it was made from. With a
// window that has run_at, the schedule is not used.
class FireTimes {
 public:
  FireTimes(const Schedule& schedule, const FireWindow* window) : schedule_(schedule), window_(window) {}

  // The first fire time strictly after `after`; nullopt when none is left.
  std::optional<Instant> Next(Instant after) const;
  // The most recent fire time at or before `at`; nullopt when none.
  std::optional<Instant> Prev(Instant at) const;

 private:
  const Schedule& schedule_;
  const FireWindow* window_;
};

}  // namespace cronlane::dispatcher
