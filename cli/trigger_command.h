#pragma once
// `cronlane trigger [NS/]NAME`: run a ScheduledTask now. The CLI has no API client:
// it prints the kubectl command that sets the cronlane.dev/run-now annotation with a
// fresh token (or the merge patch), so `cronlane trigger team/report | sh` runs it,
// and the operator fires the task once for that token.

#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <string>

namespace cronlane::cli {

struct TriggerOptions {
  std::string task;                // "namespace/name", or "name" (kubectl's current namespace)
  bool force = false;              // cronlane.dev/run-now-force: ignore concurrencyPolicy Forbid
  std::string token;               // empty: a fresh one from `now` and `random`
  std::string output = "command";  // "command" (kubectl annotate) or "patch" (a merge patch)
  // Where a fresh token comes from: "<UTC yyyymmddThhmmssZ>-<6 hex digits of random>".
  std::chrono::system_clock::time_point now{};
  uint32_t random = 0;
};

// A fresh token: "20261201T170000Z-a1b2c3".
std::string FreshRunToken(std::chrono::system_clock::time_point now, uint32_t random);

// Prints the command or patch on `out`. Returns 2 with one line on `err` for a task
// that is not [NAMESPACE/]NAME, a token the operator would refuse, or an unknown
// --output; 0 otherwise.
int RunTrigger(const TriggerOptions& opts, std::ostream& out, std::ostream& err);

}  // namespace cronlane::cli
