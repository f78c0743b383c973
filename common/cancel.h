#pragma once
// A cancellation signal shared between a controlling thread and blocking work
// (long polls, watches, sleeps). Thread-safe.

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "common/thread_annotations.h"

namespace cronlane {

class CancelToken {
 public:
  CancelToken() = default;
  CancelToken(const CancelToken&) = delete;
  CancelToken& operator=(const CancelToken&) = delete;

  // Sets the token and runs every registered callback once, on this thread, without
  // holding the token's lock. The token must outlive this call.
  void Cancel();
  bool cancelled() const;
  // Runs `fn` on Cancel(), or at once if already cancelled. Returns an id for Unregister.
  int Register(std::function<void()> fn);
  // After it returns, the callback `id` is not running and never will (the semantics
  // of std::stop_callback's destructor): if Cancel() is running it on another thread
  // right now, this waits until it has finished. Called from inside that callback
  // (the cancelling thread), it returns at once.
  void Unregister(int id);
  // Waits up to `d`; returns true if cancelled (early or already).
  template <typename Rep, typename Period>
  bool WaitFor(std::chrono::duration<Rep, Period> d) const {
    MutexLock lock(mu_);
    return cv_.wait_for(lock.native(), d, [this]() REQUIRES(mu_) { return cancelled_; });
  }

 private:
  mutable Mutex mu_;
  mutable std::condition_variable cv_;
  bool cancelled_ GUARDED_BY(mu_) = false;
  int next_id_ GUARDED_BY(mu_) = 0;
  std::map<int, std::function<void()>> callbacks_ GUARDED_BY(mu_);  // registered, not yet run
  // While Cancel() runs the callbacks: the ones still to run, the one running, and
  // the thread running them (so Unregister from inside a callback does not wait).
  std::map<int, std::function<void()>> to_run_ GUARDED_BY(mu_);
  int running_ GUARDED_BY(mu_) = -1;
  std::thread::id runner_ GUARDED_BY(mu_);
};

inline void CancelToken::Cancel() {
  MutexLock lock(mu_);
  if (cancelled_) return;
  cancelled_ = true;
  to_run_.swap(callbacks_);
  runner_ = std::this_thread::get_id();
  // Notify under the lock: a waiter that sees cancelled_ may destroy the token as
  // soon as the lock is free.
  cv_.notify_all();
  while (!to_run_.empty()) {
    auto first = to_run_.begin();
    running_ = first->first;
    {
      std::function<void()> fn = std::move(first->second);
      to_run_.erase(first);
      lock.Unlock();
      fn();
    }
    lock.Lock();
    running_ = -1;
    cv_.notify_all();
  }
}

inline bool CancelToken::cancelled() const {
  MutexLock lock(mu_);
  return cancelled_;
}

inline int CancelToken::Register(std::function<void()> fn) {
  {
    MutexLock lock(mu_);
    if (!cancelled_) {
      callbacks_[next_id_] = std::move(fn);
      return next_id_++;
    }
  }
  fn();
  return -1;
}

inline void CancelToken::Unregister(int id) {
  MutexLock lock(mu_);
  callbacks_.erase(id);
  to_run_.erase(id);
  if (id < 0 || runner_ == std::this_thread::get_id()) return;
  cv_.wait(lock.native(), [&]() REQUIRES(mu_) { return running_ != id; });
}

}  // namespace cronlane
