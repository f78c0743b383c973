#pragma once
// The shared informer cache (controller-runtime's cache): one informer per watched
// namespace (or one for all) per kind, run by the Manager on every replica, leader
// or standby, so a replica that becomes leader starts from a warm cache.
//
// Controllers do not own informers: they read objects with Get()/Keys() and
// Subscribe() to changes for as long as they run.
//
// Threading: Run() blocks its caller and runs one thread per informer; change
// handlers are called on those threads, never with the cache's lock held.
// Get(), Keys(), Size(), Synced(), Subscribe() and Unsubscribe() are safe from any
// thread. Unsubscribe() returns only after no call of that handler is running, so
// a controller may destroy what its handler uses right after it.

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/thread_annotations.h"
#include "operator/backfill.h"
#include "operator/informer.h"
#include "operator/scheduled_task.h"
#include "operator/workerpool.h"

namespace cronlane::op {

template <typename T>
class KindCache {
 public:
  using Handler = typename Informer<T>::Handler;

  // `namespaces` empty = all namespaces.
  KindCache(kube::KubeClient& client, const kube::ResourceRef& resource, const std::vector<std::string>& namespaces,
            typename Informer<T>::Transform transform, Clock& clock, InformerOptions options = {}) {
    std::vector<std::string> nss = namespaces;
    if (nss.empty()) nss.push_back("");
    for (const auto& ns : nss) {
      auto inf = std::make_unique<Informer<T>>(client, resource, ns, transform, clock, options);
      inf->AddHandler([this](const std::string& key, const T* old, const T* now) {
        ReaderLock lock(handlers_mu_);
        for (auto& [id, h] : handlers_) h(key, old, now);
      });
      informers_.push_back(std::move(inf));
    }
  }
  KindCache(const KindCache&) = delete;
  KindCache& operator=(const KindCache&) = delete;

  // Lists and watches until `cancel` fires.
  void Run(CancelToken& cancel) {
    std::vector<std::thread> threads;
    for (auto& inf : informers_) threads.emplace_back([&inf, &cancel] { inf->Run(cancel); });
    for (auto& t : threads) t.join();
  }

  // Sets every informer's scope (Informer::SetScope) and returns its generation,
  // the same for all of them: call it from one thread (the shard coordinator's).
  uint64_t SetScope(const InformerScope& scope) {
    uint64_t generation = 0;
    for (auto& i : informers_) generation = i->SetScope(scope);
    return generation;
  }
  // The scope generation every informer's cache reflects (the least of them).
  uint64_t SyncedGeneration() const {
    uint64_t least = UINT64_MAX;
    for (const auto& i : informers_) least = std::min(least, i->SyncedGeneration());
    return least;
  }
  // Objects outside the scope the server sent anyway, summed over the informers.
  uint64_t OutOfScope() const {
    uint64_t n = 0;
    for (const auto& i : informers_) n += i->out_of_scope();
    return n;
  }

  // True once every informer has listed.
  bool Synced() const {
    for (const auto& i : informers_) {
      if (!i->HasSynced()) return false;
    }
    return true;
  }
  std::optional<T> Get(const std::string& key) const {
    for (const auto& i : informers_) {
      if (auto t = i->Get(key)) return t;
    }
    return std::nullopt;
  }
  std::vector<std::string> Keys() const {
    std::vector<std::string> out;
    for (const auto& i : informers_) {
      auto k = i->Keys();
      out.insert(out.end(), k.begin(), k.end());
    }
    return out;
  }
  // Calls `fn` for every cached object without copying it (Informer::ForEach: the
  // informer's reader lock is held during each call).
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    for (const auto& i : informers_) i->ForEach(fn);
  }
  // A copy of every cached object.
  std::vector<T> List() const {
    std::vector<T> out;
    ForEach([&out](const T& t) { out.push_back(t); });
    return out;
  }
  size_t Size() const {
    size_t n = 0;
    for (const auto& i : informers_) n += i->Size();
    return n;
  }

  // Calls `h` for every change from now on; returns an id for Unsubscribe().
  int Subscribe(Handler h) {
    WriterLock lock(handlers_mu_);
    handlers_[next_id_] = std::move(h);
    return next_id_++;
  }
  void Unsubscribe(int id) {
    WriterLock lock(handlers_mu_);  // waits for handler calls in progress
    handlers_.erase(id);
  }

 private:
  std::vector<std::unique_ptr<Informer<T>>> informers_;
  mutable SharedMutex handlers_mu_;
  std::map<int, Handler> handlers_ GUARDED_BY(handlers_mu_);
  int next_id_ GUARDED_BY(handlers_mu_) = 0;
};

// A Transform for decoders that share nothing with the previous object.
template <typename T, std::optional<T> (*Decode)(const kube::Json&)>
std::optional<T> DecodeIgnoringPrevious(const kube::Json& object, const T*) {
  return Decode(object);
}

// Every kind the operator caches. `pools` is null when WorkerPools are not
// reconciled (--workerpools=false), `backfills` when Backfills are not
// (--backfills=false), so no RBAC on them is needed then.
struct Cache {
  Cache(kube::KubeClient& client, const std::vector<std::string>& namespaces, Clock& clock, bool workerpools,
        InformerOptions options = {}, bool with_backfills = false)
      : tasks(
            client, kScheduledTasks, namespaces,
            [](const kube::Json& o, const ScheduledTask* previous) { return ScheduledTaskFromJson(o, previous); },
            clock, options) {
    if (workerpools) {
      pools = std::make_unique<KindCache<WorkerPool>>(
          client, kWorkerPools, namespaces, DecodeIgnoringPrevious<WorkerPool, WorkerPoolFromJson>, clock, options);
    }
    if (with_backfills) {
      backfills = std::make_unique<KindCache<Backfill>>(
          client, kBackfills, namespaces, DecodeIgnoringPrevious<Backfill, BackfillFromJson>, clock, options);
    }
  }

  void Run(CancelToken& cancel) {
    std::thread t([&] {
      if (pools) pools->Run(cancel);
    });
    std::thread b([&] {
      if (backfills) backfills->Run(cancel);
    });
    tasks.Run(cancel);
    t.join();
    b.join();
  }
  bool Synced() const { return tasks.Synced() && (!pools || pools->Synced()) && (!backfills || backfills->Synced()); }

  KindCache<ScheduledTask> tasks;
  std::unique_ptr<KindCache<WorkerPool>> pools;
  std::unique_ptr<KindCache<Backfill>> backfills;
};

}  // namespace cronlane::op
