#pragma once
// A cancellation signal shared between a controlling thread and blocking work
// (long polls, watches, sleeps). Thread-safe.

#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>

namespace cronlane {

class CancelToken {
 public:
  CancelToken() = default;
  CancelToken(const CancelToken&) = delete;
  CancelToken& operator=(const CancelToken&) = delete;

  // Sets the token and runs every registered callback once, on this thread.
  void Cancel();
  bool cancelled() const;
  // Runs `fn` on Cancel(), or at once if already cancelled. Returns an id for Unregister.
  int Register(std::function<void()> fn);
  void Unregister(int id);
  // Waits up to `d`; returns true if cancelled (early or already).
  template <typename Rep, typename Period>
  bool WaitFor(std::chrono::duration<Rep, Period> d) const {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, d, [this] { return cancelled_; });
  }

 private:
  mutable std::mutex mu_;
  mutable std::condition_variable cv_;
  bool cancelled_ = false;
  int next_id_ = 0;
  std::map<int, std::function<void()>> callbacks_;
};

inline void CancelToken::Cancel() {
  std::map<int, std::function<void()>> run;
  {
    std::lock_guard lock(mu_);
    if (cancelled_) return;
    cancelled_ = true;
    run.swap(callbacks_);
  }
  cv_.notify_all();
  for (auto& [id, fn] : run) fn();
}

inline bool CancelToken::cancelled() const {
  std::lock_guard lock(mu_);
  return cancelled_;
}

inline int CancelToken::Register(std::function<void()> fn) {
  {
    std::lock_guard lock(mu_);
    if (!cancelled_) {
      callbacks_[next_id_] = std::move(fn);
      return next_id_++;
    }
  }
  fn();
  return -1;
}

inline void CancelToken::Unregister(int id) {
  std::lock_guard lock(mu_);
  callbacks_.erase(id);
}

}  // namespace cronlane
