#pragma once
// The shared informer cache (controller-runtime's cache): one informer per watched
// namespace (or one for all) per kind, run by the Manager on every replica, leader
// or standby, so a replica that becomes leader starts from a warm cache.
//
// Controllers do not own informers: they read objects with Get()/Keys() and
// Subscribe() to changes for as long as they run.
//
// With shards in the range layout (SetShards), the cache holds one informer per
// watched namespace per held shard, each listing and watching only its shard's
// range, added and removed while the cache runs: taking a shard lists only that
// shard's objects, and giving one up drops its informers (no delete events: only
// the shard's stopped work cared about them). The shards' informers list two at a
// time (a ListGate), so of shards taken together the first is listed first.
//
// Threading: Run() blocks its caller and runs one thread per informer (a shard's
// informers run on threads SetShards starts); change handlers are called on those
// threads, never with the cache's locks held. Get(), Keys(), Size(), Synced(),
// ShardSynced(), Subscribe() and Unsubscribe() are safe from any thread;
// SetShards() and SetScope() are called from one thread (the shard coordinator's).
// Unsubscribe() returns only after no call of that handler is running, so a
// controller may destroy what its handler uses right after it.

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <shared_mutex>
#include <string>
#include <thread>
#include <utility>
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
            typename Informer<T>::Transform transform, Clock& clock, InformerOptions options = {})
      : client_(client),
        resource_(resource),
        namespaces_(namespaces.empty() ? std::vector<std::string>{""} : namespaces),
        transform_(std::move(transform)),
        clock_(clock),
        options_(std::move(options)) {
    for (const auto& ns : namespaces_) informers_.push_back(NewInformer(ns));
  }
  KindCache(const KindCache&) = delete;
  KindCache& operator=(const KindCache&) = delete;
  ~KindCache() { StopShards(); }

  // Lists and watches until `cancel` fires; then stops the shards' informers too.
  void Run(CancelToken& cancel) {
    std::vector<std::thread> threads;
    for (auto& inf : informers_) threads.emplace_back([&inf, &cancel] { inf->Run(cancel); });
    for (auto& t : threads) t.join();
    StopShards();
  }

  // Caches the objects of `shards` only (the range layout: `scope_of(shard)` is
  // the shard's scope, ShardScope({shard}, ...)): starts the informers of shards
  // new here, stops and drops those of shards no longer held, and scopes the
  // informers made at construction to nothing (the first call). Returns at once:
  // ShardSynced() says when a new shard's objects are listed.
  void SetShards(const std::set<int>& shards, const std::function<InformerScope(int shard)>& scope_of) {
    if (!sharded_) {
      sharded_ = true;
      SetScope(InformerScope{.nothing = true});
    }
    std::vector<std::unique_ptr<ShardInformer>> dropped;
    {
      WriterLock lock(shards_mu_);
      if (shards_stopped_) return;
      for (auto it = shards_.begin(); it != shards_.end();) {
        if (shards.count(it->first) != 0) {
          ++it;
          continue;
        }
        for (auto& si : it->second) dropped.push_back(std::move(si));
        it = shards_.erase(it);
      }
      for (int shard : shards) {
        if (shards_.count(shard) != 0) continue;
        auto& group = shards_[shard];
        for (const auto& ns : namespaces_) {
          auto si = std::make_unique<ShardInformer>();
          si->informer = NewInformer(ns, shard_lists_);
          si->informer->SetScope(scope_of(shard));
          Informer<T>* inf = si->informer.get();
          CancelToken* stop = &si->stop;
          si->thread = std::thread([inf, stop] { inf->Run(*stop); });
          group.push_back(std::move(si));
        }
      }
    }
    // Outside the lock: a stopping informer's last handler call may read the cache.
    for (auto& si : dropped) si->stop.Cancel();
    for (auto& si : dropped) {
      si->thread.join();
      dropped_out_of_scope_ += si->informer->out_of_scope();
    }
  }
  // Whether `shard`'s informers have listed (false for a shard not set).
  bool ShardSynced(int shard) const {
    ReaderLock lock(shards_mu_);
    auto it = shards_.find(shard);
    if (it == shards_.end()) return false;
    for (const auto& si : it->second) {
      if (!si->informer->HasSynced()) return false;
    }
    return true;
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
    EachInformer([&](const Informer<T>& i) { n += i.out_of_scope(); });
    return n + dropped_out_of_scope_.load();
  }

  // True once every informer has listed.
  bool Synced() const {
    for (const auto& i : informers_) {
      if (!i->HasSynced()) return false;
    }
    return true;
  }
  std::optional<T> Get(const std::string& key) const {
    std::optional<T> found;
    EachInformer([&](const Informer<T>& i) {
      if (!found) found = i.Get(key);
    });
    return found;
  }
  std::vector<std::string> Keys() const {
    std::vector<std::string> out;
    EachInformer([&](const Informer<T>& i) {
      auto k = i.Keys();
      out.insert(out.end(), k.begin(), k.end());
    });
    return out;
  }
  // Calls `fn` for every cached object without copying it (Informer::ForEach: the
  // informer's reader lock is held during each call).
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    EachInformer([&](const Informer<T>& i) { i.ForEach(fn); });
  }
  // A copy of every cached object.
  std::vector<T> List() const {
    std::vector<T> out;
    ForEach([&out](const T& t) { out.push_back(t); });
    return out;
  }
  size_t Size() const {
    size_t n = 0;
    EachInformer([&](const Informer<T>& i) { n += i.Size(); });
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
  struct ShardInformer {
    std::unique_ptr<Informer<T>> informer;
    CancelToken stop;
    std::thread thread;
  };

  std::unique_ptr<Informer<T>> NewInformer(const std::string& ns, std::shared_ptr<ListGate> gate = nullptr) {
    InformerOptions options = options_;
    if (gate) options.list_gate = std::move(gate);
    auto inf = std::make_unique<Informer<T>>(client_, resource_, ns, transform_, clock_, options);
    inf->AddHandler([this](const std::string& key, const T* old, const T* now) {
      ReaderLock lock(handlers_mu_);
      for (auto& [id, h] : handlers_) h(key, old, now);
    });
    return inf;
  }
  // The informers made at construction, then every shard's.
  template <typename Fn>
  void EachInformer(Fn&& fn) const {
    for (const auto& i : informers_) fn(*i);
    ReaderLock lock(shards_mu_);
    for (const auto& [shard, group] : shards_) {
      for (const auto& si : group) fn(*si->informer);
    }
  }
  void StopShards() {
    std::map<int, std::vector<std::unique_ptr<ShardInformer>>> all;
    {
      WriterLock lock(shards_mu_);
      shards_stopped_ = true;
      all.swap(shards_);
    }
    for (auto& [shard, group] : all) {
      for (auto& si : group) si->stop.Cancel();
    }
    for (auto& [shard, group] : all) {
      for (auto& si : group) {
        si->thread.join();
        dropped_out_of_scope_ += si->informer->out_of_scope();
      }
    }
  }

  kube::KubeClient& client_;
  const kube::ResourceRef resource_;
  const std::vector<std::string> namespaces_;
  const typename Informer<T>::Transform transform_;
  Clock& clock_;
  const InformerOptions options_;
  std::vector<std::unique_ptr<Informer<T>>> informers_;
  // The shards' informers list two at a time: shards taken together are listed
  // one after another (two cores here; a list is the apiserver encoding and this
  // process decoding), so each one's work starts once its own list is in.
  static constexpr int kShardListsAtOnce = 2;
  const std::shared_ptr<ListGate> shard_lists_ =
      options_.list_gate ? options_.list_gate : std::make_shared<ListGate>(kShardListsAtOnce);
  bool sharded_ = false;  // SetShards' thread only
  mutable SharedMutex shards_mu_;
  std::map<int, std::vector<std::unique_ptr<ShardInformer>>> shards_ GUARDED_BY(shards_mu_);
  bool shards_stopped_ GUARDED_BY(shards_mu_) = false;
  std::atomic<uint64_t> dropped_out_of_scope_{0};
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
        const InformerOptions& options = {}, bool with_backfills = false)
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
