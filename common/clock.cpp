#include "common/clock.h"

#include <thread>

namespace cronlane {

void RealClock::SleepFor(std::chrono::nanoseconds d) {
  std::this_thread::sleep_for(d);
}

RealClock& RealClock::Get() {
  static RealClock clock;
  return clock;
}

FakeClock::FakeClock(std::chrono::system_clock::time_point start) : start_(start) {}

std::chrono::system_clock::time_point FakeClock::Now() const {
  MutexLock lock(mu_);
  return start_ + std::chrono::duration_cast<std::chrono::system_clock::duration>(elapsed_);
}

std::chrono::steady_clock::time_point FakeClock::SteadyNow() const {
  MutexLock lock(mu_);
  return std::chrono::steady_clock::time_point{} +
         std::chrono::duration_cast<std::chrono::steady_clock::duration>(elapsed_);
}

void FakeClock::SleepFor(std::chrono::nanoseconds d) {
  MutexLock lock(mu_);
  if (auto_advance_) {
    elapsed_ += d;
    cv_.notify_all();
    return;
  }
  auto deadline = elapsed_ + d;
  cv_.wait(lock.native(), [&]() REQUIRES(mu_) { return elapsed_ >= deadline; });
}

void FakeClock::Advance(std::chrono::nanoseconds d) {
  MutexLock lock(mu_);
  elapsed_ += d;
  cv_.notify_all();
}

void FakeClock::set_auto_advance(bool on) {
  MutexLock lock(mu_);
  auto_advance_ = on;
}

}  // namespace cronlane
