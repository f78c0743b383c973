#pragma once
// When a task fires: its cron schedule (or the union of its spec.schedules) clipped
// to [startTime, endTime), or once at runAt. The dispatcher walks a task's occurrences through FireTimes only, so a
// bounded or one-shot task needs nothing else from it; `cronlane next` prints the
// same instants.

#include <optional>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "dispatcher/cron.h"

namespace cronlane {
class Zone;
}

namespace cronlane::dispatcher {

// What a task fires by besides its first schedule, parsed: spec.runAt,
// spec.startTime and spec.endTime (TimeBounds), and with spec.schedules the other
// entries and every entry's jitter. Plain tasks have none (a null pointer).
struct FireSpec {
  std::optional<Instant> run_at;  // fires once, here, and never on a schedule
  std::optional<Instant> start;   // inclusive
  std::optional<Instant> end;     // exclusive
  std::vector<Schedule> more;     // spec.schedules[1..]; the first is the task's schedule
  // spec.schedules[i].jitterSeconds, -1 where unset (the task's jitterSeconds); empty
  // without spec.schedules.
  std::vector<int> jitter;
};

// A spec time: RFC 3339 with an offset ("2026-12-24T18:00:00+01:00", "...Z"), or a
// local date-time without one ("2026-12-24T18:00:00") read in `zone` (nullptr: UTC).
// A local time that a DST jump skips is refused (it never happens); one that a
// fall-back repeats is its first occurrence.
Result<Instant> ParseSpecTime(std::string_view text, const Zone* zone);

// A view: keeps references to the schedule and spec it was made from. With a spec
// that has run_at, the schedule is not used; with `more` schedules, the fire times
// are their union with the first (an instant two entries select is one instant).
class FireTimes {
 public:
  FireTimes(const Schedule& schedule, const FireSpec* window) : schedule_(schedule), window_(window) {}

  // The first fire time strictly after `after`; nullopt when none is left.
  std::optional<Instant> Next(Instant after) const;
  // The most recent fire time at or before `at`; nullopt when none.
  std::optional<Instant> Prev(Instant at) const;
  // The jitter of the fire time `t`: that of the first entry of spec.schedules that
  // selects it, when that entry sets its own; otherwise `task_jitter`.
  int JitterSeconds(Instant t, int task_jitter) const;

 private:
  const Schedule& schedule_;
  const FireSpec* window_;
};

}  // namespace cronlane::dispatcher
