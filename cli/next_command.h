#pragma once
// `cronlane next`: previews the fire times of a schedule.

#include <iosfwd>
#include <string>

namespace cronlane::cli {

struct NextOptions {
  std::string schedule;   // or run_at
  std::string run_at;     // a one-shot task's spec.runAt
  std::string start;      // spec.startTime
  std::string end;        // spec.endTime
  std::string time_zone;  // "" = UTC
  std::string from;       // RFC 3339; "" = now
  int count = 5;
  bool local = false;  // also print the local time
};

// Prints up to `count` fire times strictly after `from` (of the schedule within
// [start, end), or the one runAt, exactly as the dispatcher fires them), one RFC 3339 UTC instant per
// line to `out`. On invalid input writes one line naming the problem to `err` and
// returns 2; returns 0 on success (also when the schedule has fewer fires).
int RunNext(const NextOptions& opts, std::ostream& out, std::ostream& err);

}  // namespace cronlane::cli
