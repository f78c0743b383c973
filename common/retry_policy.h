#pragma once
// How an occurrence is retried, in one definition shared by the worker (which runs
// the attempts) and the dispatcher (which must know the longest an occurrence can
// run, for concurrencyPolicy Forbid). The values come from the task's
// spec.execution, carried in the CloudEvent (ce_maxattempts, ce_backoffseconds,
// ce_timeoutseconds).

#include <algorithm>
#include <chrono>
#include <optional>

#include "common/backoff.h"

namespace cronlane {

struct RetryPolicy {
  // Waits between attempts double up to this (unless backoffSeconds is larger).
  static constexpr std::chrono::seconds kMaxBackoff{300};
  // Slack added to the longest run for delivery and scheduling delays.
  static constexpr std::chrono::seconds kRunSlack{60};
  // The longest run is never taken as more than a day.
  static constexpr std::chrono::seconds kMaxRun{86400};

  int max_attempts = 1;
  std::chrono::seconds backoff{10};  // before the second attempt; doubles after each
  std::chrono::seconds timeout{0};   // per attempt; 0 = none

  // The wait after failed attempt `attempt` (1-based) before the next one: `backoff`,
  // doubling, capped at kMaxBackoff (or at `backoff` itself when that is larger).
  std::chrono::seconds BackoffAfter(int attempt) const {
    return Backoff::Delay(backoff, std::max(backoff, kMaxBackoff), std::max(0, attempt - 1));
  }

  // The longest an occurrence can take from its first attempt to its last
  // result: every attempt to its timeout plus the waits between them, plus slack,
  // at most kMaxRun. nullopt without a timeout (it may run forever).
  std::optional<std::chrono::seconds> LongestRun() const {
    if (timeout.count() <= 0) return std::nullopt;
    std::chrono::seconds total = kRunSlack;
    const int attempts = std::max(1, max_attempts);
    for (int a = 1; a <= attempts; ++a) {
      total += timeout;
      if (a < attempts) total += BackoffAfter(a);
      if (total >= kMaxRun) return kMaxRun;
    }
    return total;
  }
};

}  // namespace cronlane
