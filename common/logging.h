#pragma once
// Structured JSON logs on stderr (one object per line: ts, level, logger, msg), as
// log pipelines expect from Kubernetes operators. `--log-format text` for humans.

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

#include "common/status.h"
#include "common/thread_annotations.h"

namespace cronlane {

// level: trace, debug, info, warn, error; format: json or text.
Status SetupLogging(const std::string& level, const std::string& format, const std::string& component);

// For a warning that bad input can repeat (a garbage record per message on a
// topic): lets the first one through, then at most one per `every`, and says how
// many were held back since. Thread-safe.
class LogThrottle {
 public:
  explicit LogThrottle(std::chrono::steady_clock::duration every = std::chrono::minutes(1)) : every_(every) {}
  // Counts one occurrence; returns how many occurred since the last one let
  // through (this one included) when this one is to be logged, else nullopt.
  std::optional<uint64_t> Allow(std::chrono::steady_clock::time_point now = std::chrono::steady_clock::now()) {
    MutexLock lock(mu_);
    ++pending_;
    if (last_ && now - *last_ < every_) return std::nullopt;
    last_ = now;
    uint64_t n = pending_;
    pending_ = 0;
    return n;
  }

 private:
  const std::chrono::steady_clock::duration every_;
  Mutex mu_;
  std::optional<std::chrono::steady_clock::time_point> last_ GUARDED_BY(mu_);
  uint64_t pending_ GUARDED_BY(mu_) = 0;
};

}  // namespace cronlane
