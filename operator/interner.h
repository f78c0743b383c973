#pragma once
// Shares equal immutable values between objects: Intern(v) returns the value
// already held by someone else if an equal one is, else a new shared one. At 100k
// tasks most status conditions are equal to many others (a reconcile pass writes
// the same Ready condition, lastTransitionTime to the second, for every task it
// handles in that second): interned, they cost one copy per distinct value instead
// of about 250 bytes per task.
//
// Threading: Intern() is safe from any thread (one mutex, held for a hash lookup).

#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "common/thread_annotations.h"

namespace cronlane::op {

template <typename T, typename Hash>
class Interner {
 public:
  using Ptr = std::shared_ptr<const T>;

  Ptr Intern(T value) {
    const size_t h = Hash{}(value);
    MutexLock lock(mu_);
    auto [lo, hi] = table_.equal_range(h);
    for (auto it = lo; it != hi; ++it) {
      if (Ptr held = it->second.lock(); held && *held == value) return held;
    }
    Ptr fresh = std::make_shared<const T>(std::move(value));
    table_.emplace(h, fresh);
    if (table_.size() >= sweep_at_) Sweep();
    return fresh;
  }

  size_t size() const {
    MutexLock lock(mu_);
    return table_.size();
  }

 private:
  // Drops the entries nobody holds any more; sweeps again when the table has
  // doubled since, so the cost per Intern() stays constant.
  void Sweep() REQUIRES(mu_) {
    std::erase_if(table_, [](const auto& e) { return e.second.expired(); });
    sweep_at_ = std::max<size_t>(1024, 2 * table_.size());
  }

  mutable Mutex mu_;
  std::unordered_multimap<size_t, std::weak_ptr<const T>> table_ GUARDED_BY(mu_);
  size_t sweep_at_ GUARDED_BY(mu_) = 1024;
};

}  // namespace cronlane::op
