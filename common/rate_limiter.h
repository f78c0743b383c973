#pragma once
// A token bucket: `qps` tokens a second, at most `burst` saved up. Used for the
// Kubernetes client's request rate and the status write budget. Thread-safe.

#include <algorithm>
#include <chrono>
#include <mutex>

#include "common/clock.h"
#include "common/thread_annotations.h"

namespace cronlane {

class RateLimiter {
 public:
  // qps <= 0 means unlimited.
  RateLimiter(Clock& clock, double qps, int burst)
      : clock_(clock), qps_(qps), burst_(std::max(1, burst)), tokens_(burst_), last_(clock.SteadyNow()) {}

  // Takes a token if one is available now.
  bool TryAcquire() {
    if (qps_ <= 0) return true;
    MutexLock lock(mu_);
    Refill();
    if (tokens_ < 1.0) return false;
    tokens_ -= 1.0;
    return true;
  }

  // Takes a token, sleeping on the clock until one is available. Returns the wait.
  std::chrono::nanoseconds Acquire() {
    if (qps_ <= 0) return std::chrono::nanoseconds{0};
    std::chrono::nanoseconds wait{0};
    {
      MutexLock lock(mu_);
      Refill();
      tokens_ -= 1.0;  // may go negative: later callers queue behind this one
      if (tokens_ < 0) wait = std::chrono::nanoseconds(static_cast<int64_t>(-tokens_ / qps_ * 1e9));
    }
    if (wait.count() > 0) clock_.SleepFor(wait);
    return wait;
  }

 private:
  void Refill() REQUIRES(mu_) {
    auto now = clock_.SteadyNow();
    double elapsed = std::chrono::duration<double>(now - last_).count();
    last_ = now;
    tokens_ = std::min<double>(burst_, tokens_ + elapsed * qps_);
  }

  Clock& clock_;
  const double qps_;
  const int burst_;
  Mutex mu_;
  double tokens_ GUARDED_BY(mu_);
  std::chrono::steady_clock::time_point last_ GUARDED_BY(mu_);
};

}  // namespace cronlane
