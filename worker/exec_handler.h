#pragma once
// Runs a shell command per fired task: the payload on stdin, CloudEvent attributes
// in the environment (CE_ID, CE_SOURCE, CE_TYPE, CE_TIME, CE_SUBJECT, CE_SHARDINDEX,
// CE_SHARDCOUNT, CRONLANE_ATTEMPT), exit status 0 = success. An attempt that runs
// past its timeout gets SIGTERM, then SIGKILL 5 s later. An attempt in progress at
// shutdown is allowed to finish (within its timeout).

#include <chrono>
#include <string>

#include "worker/worker.h"

namespace cronlane::worker {

Handler ExecHandler(const std::string& command, std::chrono::seconds default_timeout);

}  // namespace cronlane::worker
