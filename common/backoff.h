#pragma once
// Capped exponential backoff, the one used for every retry loop in cronlane
// (informers, the results follower, the leader term's start, the dispatcher's
// commit retries, the work queue, the worker's attempts): the first delay is
// `initial`, each failure doubles it up to `max`, Reset() returns to `initial`
// after a success. With `jitter` J > 0 each delay is multiplied by a random factor
// in [1, 1 + J) (client-go's jittered backoff), so many clients that failed
// together do not retry together.
//
// Not thread-safe: one loop owns one Backoff. Delay() is a pure function for
// callers that keep their own failure count (the work queue, per key).

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <random>

namespace cronlane {

struct BackoffPolicy {
  std::chrono::milliseconds initial{500};
  std::chrono::milliseconds max{10000};
  double jitter = 0;  // 0: none; 0.5: up to 50 % longer
};

class Backoff {
 public:
  explicit Backoff(BackoffPolicy policy) : policy_(policy), current_(policy.initial), rng_(std::random_device{}()) {}

  // The delay before the next attempt; the one after is doubled (capped).
  std::chrono::milliseconds Next() {
    std::chrono::milliseconds d = current_;
    current_ = std::min(current_ * 2, policy_.max);
    if (policy_.jitter <= 0) return d;
    std::uniform_real_distribution<double> f(1.0, 1.0 + policy_.jitter);
    return std::chrono::milliseconds(static_cast<int64_t>(static_cast<double>(d.count()) * f(rng_)));
  }
  // After a success: the next failure waits `initial` again.
  void Reset() { current_ = policy_.initial; }

  // The delay after `failures` consecutive failures (0 = the first retry), no jitter.
  template <typename Duration>
  static Duration Delay(Duration initial, Duration max, int failures) {
    if (failures >= 62) return max;
    auto d = initial * (int64_t{1} << std::clamp(failures, 0, 30));
    return std::min<Duration>(d, max);
  }

 private:
  BackoffPolicy policy_;
  std::chrono::milliseconds current_;
  // Jitter needs no better randomness, and a small engine keeps a Backoff small
  // (mt19937_64 is 2.5 KB: the worker keeps one per record being written).
  std::minstd_rand rng_;
};

}  // namespace cronlane
