#pragma once
// A de-duplicating work queue of keys ("namespace/name"), as in client-go:
// - a key is queued at most once; adding it again while queued is a no-op;
// - a key being processed is not handed to a second worker; if it is added while
//   processing, it is queued again when Done() is called;
// - AddAfter() delays a key (the earliest requested time wins);
// - AddRateLimited() delays by a per-key exponential backoff, reset by Forget().
// Thread-safe. Time comes from the injected Clock.

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "common/clock.h"

namespace cronlane::op {

class WorkQueue {
 public:
  struct Options {
    std::chrono::milliseconds base_backoff{500};
    std::chrono::milliseconds max_backoff{std::chrono::minutes(5)};
  };
  explicit WorkQueue(Clock& clock) : WorkQueue(clock, Options{}) {}
  WorkQueue(Clock& clock, Options options);

  void Add(const std::string& key);
  void AddAfter(const std::string& key, std::chrono::nanoseconds delay);
  void AddRateLimited(const std::string& key);
  void Forget(const std::string& key);
  // Number of AddRateLimited() calls since the last Forget() for this key.
  int Retries(const std::string& key) const;

  // Blocks until a key is ready or the queue is shut down (nullopt).
  std::optional<std::string> Get();
  // Marks a key from Get() as processed.
  void Done(const std::string& key);
  // Wakes every Get() with nullopt; later adds are ignored.
  void ShutDown();

  size_t Len() const;      // keys ready now (not delayed, not processing)
  size_t Waiting() const;  // Get() calls blocked now, waiting for a key

 private:
  void PromoteDueLocked();
  void AddLocked(const std::string& key);

  Clock& clock_;
  const Options options_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  std::set<std::string> queued_;  // in queue_
  std::set<std::string> processing_;
  std::set<std::string> dirty_;  // added while processing
  std::map<std::string, std::chrono::steady_clock::time_point> delayed_;
  std::map<std::string, int> failures_;
  bool shutdown_ = false;
  size_t waiting_ = 0;
};

}  // namespace cronlane::op
