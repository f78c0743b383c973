#include "common/clock.h"

#include <algorithm>

#include <thread>

namespace cronlane {

int Clock::PollFor(pollfd* fds, nfds_t n, std::chrono::nanoseconds d) {
  const int ready = poll(fds, n, 0);
  if (ready == 0) SleepFor(d);
  return ready;
}

void RealClock::SleepFor(std::chrono::nanoseconds d) {
  std::this_thread::sleep_for(d);
}

int RealClock::PollFor(pollfd* fds, nfds_t n, std::chrono::nanoseconds d) {
  // Rounded up: a wait shorter than a millisecond is not a busy loop.
  const auto ms = std::chrono::ceil<std::chrono::milliseconds>(std::max(d, std::chrono::nanoseconds(0)));
  return poll(fds, n, static_cast<int>(std::min<int64_t>(ms.count(), 1 << 30)));
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
