#pragma once
// The clock seam. Production code takes a Clock& and never calls
// std::chrono::*_clock::now() itself, so tests run on simulated time.

#include <poll.h>

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "common/thread_annotations.h"

namespace cronlane {

class Clock {
 public:
  virtual ~Clock() = default;
  // Wall-clock time (schedules, timestamps written to Kubernetes and Kafka).
  virtual std::chrono::system_clock::time_point Now() const = 0;
  // Monotonic time (timeouts, rate limits, lease renewals).
  virtual std::chrono::steady_clock::time_point SteadyNow() const = 0;
  // Blocks the calling thread for `d` of this clock's time.
  virtual void SleepFor(std::chrono::nanoseconds d) = 0;
  // Waits up to `d` of this clock's time for an event on `fds` (poll(2)); returns
  // poll's result (0: none within `d`). This default checks the fds without
  // waiting and, when none is ready, spends `d` in SleepFor(): a simulated clock
  // moves on instead of blocking in real time. RealClock waits in poll itself.
  virtual int PollFor(pollfd* fds, nfds_t n, std::chrono::nanoseconds d);
};

// The real clocks. Thread-safe.
class RealClock final : public Clock {
 public:
  std::chrono::system_clock::time_point Now() const override { return std::chrono::system_clock::now(); }
  std::chrono::steady_clock::time_point SteadyNow() const override { return std::chrono::steady_clock::now(); }
  void SleepFor(std::chrono::nanoseconds d) override;
  int PollFor(pollfd* fds, nfds_t n, std::chrono::nanoseconds d) override;
  // A process-wide instance.
  static RealClock& Get();
};

// A clock that moves only when told to. SleepFor() advances it (single-threaded
// tests) unless auto-advance is off, in which case it blocks until Advance() passes
// the deadline. Thread-safe.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(std::chrono::system_clock::time_point start = std::chrono::system_clock::time_point{});
  std::chrono::system_clock::time_point Now() const override;
  std::chrono::steady_clock::time_point SteadyNow() const override;
  void SleepFor(std::chrono::nanoseconds d) override;
  void Advance(std::chrono::nanoseconds d);
  void set_auto_advance(bool on);

 private:
  mutable Mutex mu_;
  std::condition_variable cv_;
  std::chrono::nanoseconds elapsed_ GUARDED_BY(mu_){0};
  std::chrono::system_clock::time_point start_ GUARDED_BY(mu_);
  bool auto_advance_ GUARDED_BY(mu_) = true;
};

}  // namespace cronlane
