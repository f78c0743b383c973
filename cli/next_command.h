#pragma once
// `cronlane next`: previews the fire times of a schedule, or of the ScheduledTasks
// of a manifest.

#include <iosfwd>
#include <string>
#include <vector>

namespace cronlane::cli {

struct NextOptions {
  std::vector<std::string> schedules;  // one: spec.schedule; several: spec.schedules (their union); or run_at
  std::string run_at;                  // a one-shot task's spec.runAt
  std::string start;                   // spec.startTime
  std::string end;                     // spec.endTime
  std::string time_zone;               // "" = UTC
  std::string from;                    // RFC 3339; "" = now
  int count = 5;
  bool local = false;  // also print the local time
  // A manifest file ("-": stdin) instead of the flags above: every ScheduledTask in
  // it (e.g. `kubectl get st x -o yaml | cronlane next -f -`).
  std::string file;
};

// Prints up to `count` fire times strictly after `from` (of the schedule(s) within
// [start, end), or the one runAt, exactly as the dispatcher fires them), one RFC
// 3339 UTC instant per line to `out`; with a file of several tasks, each under a
// "# namespace/name" line. On invalid input writes one line naming the problem to `err` and
// returns 2; returns 0 on success (also when the schedule has fewer fires).
int RunNext(const NextOptions& opts, std::ostream& out, std::ostream& err);

}  // namespace cronlane::cli
