#include "operator/workqueue.h"

#include <algorithm>

#include "common/backoff.h"

namespace cronlane::op {

WorkQueue::WorkQueue(Clock& clock, Options options) : clock_(clock), options_(options) {}

void WorkQueue::AddLocked(const std::string& key) {
  if (shutdown_) return;
  if (processing_.count(key) != 0) {
    dirty_.insert(key);
    return;
  }
  if (queued_.insert(key).second) {
    queue_.push_back(key);
    cv_.notify_one();
  }
}

void WorkQueue::Add(const std::string& key) {
  MutexLock lock(mu_);
  delayed_.erase(key);
  AddLocked(key);
}

void WorkQueue::AddAfter(const std::string& key, std::chrono::nanoseconds delay) {
  if (delay.count() <= 0) return Add(key);
  MutexLock lock(mu_);
  if (shutdown_ || queued_.count(key) != 0) return;
  auto when = clock_.SteadyNow() + std::chrono::duration_cast<std::chrono::steady_clock::duration>(delay);
  auto it = delayed_.find(key);
  if (it == delayed_.end() || when < it->second) delayed_[key] = when;
  cv_.notify_all();
}

void WorkQueue::AddRateLimited(const std::string& key) {
  std::chrono::nanoseconds delay;
  {
    MutexLock lock(mu_);
    int n = failures_[key]++;
    delay = Backoff::Delay<std::chrono::nanoseconds>(options_.base_backoff, options_.max_backoff, n);
  }
  AddAfter(key, delay);
}

void WorkQueue::Forget(const std::string& key) {
  MutexLock lock(mu_);
  failures_.erase(key);
}

int WorkQueue::Retries(const std::string& key) const {
  MutexLock lock(mu_);
  auto it = failures_.find(key);
  return it == failures_.end() ? 0 : it->second;
}

void WorkQueue::PromoteDueLocked() {
  auto now = clock_.SteadyNow();
  for (auto it = delayed_.begin(); it != delayed_.end();) {
    if (it->second <= now) {
      std::string key = it->first;
      it = delayed_.erase(it);
      AddLocked(key);
    } else {
      ++it;
    }
  }
}

std::optional<std::string> WorkQueue::Get() {
  MutexLock lock(mu_);
  while (true) {
    if (shutdown_) return std::nullopt;
    PromoteDueLocked();
    if (!queue_.empty()) {
      std::string key = std::move(queue_.front());
      queue_.pop_front();
      queued_.erase(key);
      processing_.insert(key);
      return key;
    }
    ++waiting_;
    if (delayed_.empty()) {
      cv_.wait(lock.native());
    } else {
      // Delayed keys are due on the injected clock; re-check it often (a fake clock
      // does not signal us).
      cv_.wait_for(lock.native(), std::chrono::milliseconds(10));
    }
    --waiting_;
  }
}

void WorkQueue::Done(const std::string& key) {
  MutexLock lock(mu_);
  processing_.erase(key);
  if (dirty_.erase(key) != 0) AddLocked(key);
}

void WorkQueue::ShutDown() {
  MutexLock lock(mu_);
  shutdown_ = true;
  cv_.notify_all();
}

size_t WorkQueue::Waiting() const {
  MutexLock lock(mu_);
  return waiting_;
}

size_t WorkQueue::Len() const {
  MutexLock lock(mu_);
  return queue_.size();
}

}  // namespace cronlane::op
