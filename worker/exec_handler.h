#pragma once
// Runs a shell command per fired task: the payload on stdin, CloudEvent attributes
// in the environment (CE_ID, CE_SOURCE, CE_TYPE, CE_TIME, CE_SUBJECT, CE_SHARDINDEX,
// CE_SHARDCOUNT, CRONLANE_ATTEMPT), exit status 0 = success. An attempt that runs
// past its timeout, or whose occurrence is cancelled (`abort`, concurrencyPolicy
// Replace), gets SIGTERM (its process group), then SIGKILL kKillGrace later; it is
// kTimedOut or kCancelled. An attempt in progress at shutdown is allowed to finish
// (within its timeout). Timeouts run on `clock`: its
// SteadyNow() and SleepFor() between checks of the child, 1 ms after the start and
// doubling to 20 ms (a wait of the same length for a full stdin pipe to drain is the
// one real-time wait).

#include <chrono>
#include <string>

#include "common/clock.h"
#include "worker/worker.h"

namespace cronlane::worker {

inline constexpr std::chrono::seconds kKillGrace{5};

Handler ExecHandler(const std::string& command, std::chrono::seconds default_timeout, Clock& clock = RealClock::Get());

}  // namespace cronlane::worker
