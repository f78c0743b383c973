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
#include "common/thread_annotations.h"

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
  void PromoteDueLocked() REQUIRES(mu_);
  void AddLocked(const std::string& key) REQUIRES(mu_);

  Clock& clock_;
  const Options options_;
  mutable Mutex mu_;
  std::condition_variable cv_;
  std::deque<std::string> queue_ GUARDED_BY(mu_);
  std::set<std::string> queued_ GUARDED_BY(mu_);  // in queue_
  std::set<std::string> processing_ GUARDED_BY(mu_);
  std::set<std::string> dirty_ GUARDED_BY(mu_);  // added while processing
  std::map<std::string, std::chrono::steady_clock::time_point> delayed_ GUARDED_BY(mu_);
  std::map<std::string, int> failures_ GUARDED_BY(mu_);
  bool shutdown_ GUARDED_BY(mu_) = false;
  size_t waiting_ GUARDED_BY(mu_) = 0;
};

}  // namespace cronlane::op
