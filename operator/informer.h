#pragma once
// An informer: list, then watch from the list's resourceVersion (with bookmarks),
// relist on 410 Gone, jittered watch timeouts, capped exponential backoff on
// errors; a cache of typed, trimmed objects keyed by "namespace/name"; and a
// handler called with the key of every object that changed.
//
// The cache keeps only what `Transform` extracts (no JSON DOMs, no managedFields),
// which is what keeps memory per object small at 100k objects.
//
// A scope narrows what is listed and watched (a replica's held shards): a query
// parameter sent with every list and watch (the apiserver's shardSelector) and a
// filter applied here too, since a server may ignore the parameter. SetScope()
// ends the current watch; Run() then lists again with the new scope and replaces
// the cache (handlers see what left as deletes and what came as adds).
//
// Threading: Run() blocks on the calling thread and calls handlers there. Get(),
// Keys(), HasSynced(), SetScope() and SyncedGeneration() are safe from any thread.

#include <algorithm>
#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <atomic>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <shared_mutex>
#include <string>
#include <utility>
#include <vector>

#include "common/backoff.h"
#include "common/cancel.h"
#include "common/clock.h"
#include "common/thread_annotations.h"
#include "operator/kube/client.h"

namespace cronlane::op {

using kube::Json;

// Bounds how many informers list at once. KindCache's shard informers share one,
// so the lists of shards taken together finish one after another, and the first
// taken shard's work starts once its own list is in instead of once all are (8
// shards of 6k tasks each listed at once took 8-10 s, every one finishing near the
// end). Thread-safe: any thread may Enter and Leave.
class ListGate {
 public:
  explicit ListGate(int slots) : free_(slots) {}
  // Waits for a free slot and takes it; false (no slot taken) if `cancel` fires first.
  bool Enter(CancelToken& cancel) {
    const int link = cancel.Register([this] {
      MutexLock lock(mu_);
      cv_.notify_all();
    });
    bool entered = false;
    {
      MutexLock lock(mu_);
      ++waiting_;
      cv_.wait(lock.native(), [&]() REQUIRES(mu_) { return free_ > 0 || cancel.cancelled(); });
      --waiting_;
      if (!cancel.cancelled()) {
        --free_;
        entered = true;
      }
    }
    cancel.Unregister(link);
    return entered;
  }
  // Gives back a slot Enter took.
  void Leave() {
    MutexLock lock(mu_);
    ++free_;
    cv_.notify_all();
  }
  // Slots free now (for tests).
  int Free() const {
    MutexLock lock(mu_);
    return free_;
  }
  // Enter calls waiting for a slot now (for tests).
  int Waiting() const {
    MutexLock lock(mu_);
    return waiting_;
  }

 private:
  mutable Mutex mu_;
  std::condition_variable cv_;
  int free_ GUARDED_BY(mu_);
  int waiting_ GUARDED_BY(mu_) = 0;
};

struct InformerOptions {
  int page_size = 500;
  std::chrono::seconds min_watch_timeout{300};  // a watch lasts a random time in [min, 2*min)
  std::chrono::milliseconds initial_backoff{800};
  std::chrono::milliseconds max_backoff{30000};
  // Shared with other informers: each list (every page of it) holds a slot. Null:
  // no bound (KindCache gives its shards' informers one of two slots unless set).
  std::shared_ptr<ListGate> list_gate;
};

// What an informer lists and watches. Default: everything.
struct InformerScope {
  std::string query;                      // appended to lists and watches ("shardSelector=..."), "" = none
  std::function<bool(const Json&)> keep;  // null keeps all; an object it refuses is dropped and counted
  bool nothing = false;                   // list nothing: an empty cache, synced at once, no watch
};

template <typename T>
class Informer {
 public:
  // Extracts the cached form of an object; nullopt drops it (and counts a decode
  // error). `previous` is the cached object of the same key, or null: a transform
  // may share unchanged parts with it.
  using Transform = std::function<std::optional<T>(const Json& object, const T* previous)>;
  // Called after the cache changed for `key`: `old` is null for a new object, `now`
  // is null after a delete.
  using Handler = std::function<void(const std::string& key, const T* old, const T* now)>;

  Informer(kube::KubeClient& client, kube::ResourceRef resource, std::string ns, Transform transform, Clock& clock,
           InformerOptions options = {})
      : client_(client),
        resource_(std::move(resource)),
        ns_(std::move(ns)),
        transform_(std::move(transform)),
        clock_(clock),
        options_(std::move(options)),
        rng_(std::random_device{}()) {}

  void AddHandler(Handler h) { handlers_.push_back(std::move(h)); }

  // Replaces the scope and returns its generation (the first SetScope returns 1;
  // before any, generation 0 is "everything"). Ends the current watch or wait so
  // that Run() lists with it. Any thread.
  uint64_t SetScope(InformerScope scope) {
    MutexLock lock(scope_mu_);
    scope_ = std::make_shared<const InformerScope>(std::move(scope));
    ++scope_generation_;
    if (interrupt_ != nullptr) interrupt_->Cancel();
    return scope_generation_;
  }
  // The generation of the scope the cache reflects: every object of that scope
  // was listed (and what was outside it dropped). 0 until the first list.
  uint64_t SyncedGeneration() const { return synced_generation_.load(); }
  // Objects the server sent that the scope's filter dropped (the server ignored
  // the query), since start.
  uint64_t out_of_scope() const { return out_of_scope_.load(); }

  // Lists and watches until `cancel` fires.
  void Run(CancelToken& cancel) {
    Backoff backoff({options_.initial_backoff, options_.max_backoff, 0.5});
    while (!cancel.cancelled()) {
      auto [scope, generation] = CurrentScope();
      Status s = ListAndReplace(cancel, *scope, generation);
      if (!s.ok()) {
        last_error_ = s;
        ++errors_;
        if (cancel.WaitFor(backoff.Next())) return;
        continue;
      }
      if (cancel.cancelled()) return;
      synced_generation_ = generation;
      backoff.Reset();
      // Watch until the resourceVersion expires or the scope changes, then relist.
      while (!cancel.cancelled()) {
        CancelToken interrupt;  // cancelled by `cancel` and by SetScope()
        const int link = cancel.Register([&interrupt] { interrupt.Cancel(); });
        bool current = false;
        {
          MutexLock lock(scope_mu_);
          current = scope_generation_ == generation;
          if (current) interrupt_ = &interrupt;
        }
        Status w = Status::Ok();
        if (current && scope->nothing) {
          interrupt.WaitFor(std::chrono::hours(24));  // nothing to watch
        } else if (current) {
          w = WatchOnce(interrupt, *scope);
        }
        {
          MutexLock lock(scope_mu_);
          interrupt_ = nullptr;
          current = scope_generation_ == generation;
        }
        cancel.Unregister(link);
        if (!current) break;  // a new scope: list it
        if (w.ok()) {
          backoff.Reset();
          continue;  // the server closed the watch at its timeout: watch again from rv_
        }
        last_error_ = w;
        if (w.code() == StatusCode::kExpired) {
          ++relists_;
          break;
        }
        ++errors_;
        if (cancel.WaitFor(backoff.Next())) return;
      }
    }
  }

  bool HasSynced() const { return synced_.load(); }
  std::optional<T> Get(const std::string& key) const {
    ReaderLock lock(mu_);
    auto it = cache_.find(key);
    if (it == cache_.end()) return std::nullopt;
    return it->second;
  }
  // Calls `fn` for every cached object, under the reader lock: no copies, but
  // `fn` must be quick and must not call back into this informer.
  template <typename Fn>
  void ForEach(Fn&& fn) const {
    ReaderLock lock(mu_);
    for (const auto& [_, t] : cache_) fn(t);
  }
  std::vector<std::string> Keys() const {
    ReaderLock lock(mu_);
    std::vector<std::string> out;
    out.reserve(cache_.size());
    for (const auto& [k, _] : cache_) out.push_back(k);
    return out;
  }
  size_t Size() const {
    ReaderLock lock(mu_);
    return cache_.size();
  }
  std::string ResourceVersion() const {
    ReaderLock lock(mu_);
    return rv_;
  }
  uint64_t relists() const { return relists_.load(); }
  uint64_t errors() const { return errors_.load(); }
  uint64_t decode_errors() const { return decode_errors_.load(); }

  static std::string KeyOf(const Json& object) {
    const Json& m = object["metadata"];
    std::string ns = m.contains("namespace") ? m["namespace"].get<std::string>() : "";
    return ns.empty() ? m["name"].get<std::string>() : ns + "/" + m["name"].get<std::string>();
  }

 private:
  // The first list asks for resourceVersion=0: the apiserver answers from its
  // watch cache (about 5 s for 100k objects on 2 cores, against 26 s paging them
  // from etcd; client-go's reflector does the same), and any staleness is what the
  // watch from the list's resourceVersion catches up on. A relist after 410 Gone
  // reads the latest state, paged (`limit` + `continue`), from etcd.
  Status ListAndReplace(CancelToken& cancel, const InformerScope& scope, uint64_t generation) {
    std::map<std::string, T> fresh;
    std::string cont;
    std::string rv;
    const bool gated = options_.list_gate != nullptr && !scope.nothing;
    if (gated && !options_.list_gate->Enter(cancel)) return Status::Ok();  // cancelled
    struct Leave {
      ListGate* gate;
      ~Leave() {
        if (gate != nullptr) gate->Leave();
      }
    } leave{gated ? options_.list_gate.get() : nullptr};
    // The first list, and the first of each new scope, from the watch cache.
    const bool from_cache = !synced_.load() || listed_generation_ != generation;
    do {
      if (scope.nothing) break;
      std::string path = resource_.Path(ns_) + "?limit=" + std::to_string(options_.page_size);
      if (!scope.query.empty()) path += "&" + scope.query;
      if (!cont.empty()) {
        path += "&continue=" + kube::UrlEscape(cont);
      } else if (from_cache) {
        path += "&resourceVersion=0";
      }
      // Items are decoded one at a time: a 100k list from the watch cache is one
      // response, whose DOM would be about 700 MiB.
      auto page = client_.List(path, [&](Json& item) {
        if (scope.keep && !scope.keep(item)) {
          ++out_of_scope_;
          return;
        }
        std::string key = KeyOf(item);
        std::optional<T> obj;
        {
          ReaderLock lock(mu_);
          auto prev = cache_.find(key);
          obj = transform_(item, prev == cache_.end() ? nullptr : &prev->second);
        }
        if (obj) {
          fresh.emplace(std::move(key), std::move(*obj));
        } else {
          ++decode_errors_;
        }
      });
      if (!page.ok()) {
        // An expired continue token means the list must start over.
        return page.status();
      }
      cont = page->continue_token;
      if (!page->resource_version.empty()) rv = page->resource_version;
      if (cancel.cancelled()) return Status::Ok();
    } while (!cont.empty());

    std::map<std::string, T> old;
    {
      WriterLock lock(mu_);
      old.swap(cache_);
      cache_ = std::move(fresh);  // no second copy of a 100k list
      rv_ = rv;
    }
    synced_ = true;
    listed_generation_ = generation;
#ifdef __GLIBC__
    // The list's JSON pages are gone: give their memory back (a 100k list peaks at
    // hundreds of MiB that malloc would otherwise keep as resident).
    malloc_trim(0);
#endif
    const std::map<std::string, T>& cache = CacheOnRunThread();
    for (const auto& [k, v] : old) {
      if (cache.count(k) == 0) Notify(k, &v, nullptr);
    }
    for (const auto& [k, v] : cache) {
      auto it = old.find(k);
      Notify(k, it == old.end() ? nullptr : &it->second, &v);
    }
    return Status::Ok();
  }

  Status WatchOnce(CancelToken& cancel, const InformerScope& scope) {
    std::uniform_int_distribution<int64_t> dist(options_.min_watch_timeout.count(),
                                                2 * options_.min_watch_timeout.count() - 1);
    std::string path = resource_.Path(ns_) +
                       "?watch=1&allowWatchBookmarks=true&resourceVersion=" + kube::UrlEscape(ResourceVersion()) +
                       "&timeoutSeconds=" + std::to_string(dist(rng_));
    if (!scope.query.empty()) path += "&" + scope.query;
    return client_.Watch(
        path,
        [this, &scope](std::string_view type, Json& object) {
          std::string rv = object["metadata"].value("resourceVersion", "");
          if (type == "BOOKMARK" || (scope.keep && !scope.keep(object))) {
            // Outside the scope (an object's UID, and so its shard, never changes,
            // so it was never cached): only the resourceVersion counts.
            if (type != "BOOKMARK") ++out_of_scope_;
            WriterLock lock(mu_);
            if (!rv.empty()) rv_ = rv;
            return true;
          }
          std::string key = KeyOf(object);
          std::optional<T> old;
          std::optional<T> obj;
          if (type != "DELETED") {
            ReaderLock lock(mu_);
            auto prev = cache_.find(key);
            obj = transform_(object, prev == cache_.end() ? nullptr : &prev->second);
            if (!obj) ++decode_errors_;
          }
          {
            WriterLock lock(mu_);
            auto it = cache_.find(key);
            if (it != cache_.end()) old = std::move(it->second);
            if (obj)
              cache_[key] = *obj;
            else if (it != cache_.end())
              cache_.erase(it);
            if (!rv.empty()) rv_ = rv;
          }
          Notify(key, old ? &*old : nullptr, obj ? &*obj : nullptr);
          return true;
        },
        cancel);
  }

  // The cache as the thread that runs Run() sees it: it is the only writer, so it
  // reads without the lock (the analysis cannot know which thread calls).
  const std::map<std::string, T>& CacheOnRunThread() const NO_THREAD_SAFETY_ANALYSIS {
    return cache_;
  }

  void Notify(const std::string& key, const T* old, const T* now) {
    for (auto& h : handlers_) h(key, old, now);
  }

  std::pair<std::shared_ptr<const InformerScope>, uint64_t> CurrentScope() const {
    MutexLock lock(scope_mu_);
    return {scope_, scope_generation_};
  }

  kube::KubeClient& client_;
  const kube::ResourceRef resource_;
  const std::string ns_;
  Transform transform_;
  Clock& clock_;
  const InformerOptions options_;
  std::mt19937_64 rng_;
  std::vector<Handler> handlers_;

  mutable SharedMutex mu_;
  std::map<std::string, T> cache_ GUARDED_BY(mu_);
  std::string rv_ GUARDED_BY(mu_);
  std::atomic<bool> synced_{false};
  std::atomic<uint64_t> relists_{0};
  std::atomic<uint64_t> errors_{0};
  std::atomic<uint64_t> decode_errors_{0};
  Status last_error_;

  mutable Mutex scope_mu_;
  std::shared_ptr<const InformerScope> scope_ GUARDED_BY(scope_mu_) = std::make_shared<const InformerScope>();
  uint64_t scope_generation_ GUARDED_BY(scope_mu_) = 0;
  CancelToken* interrupt_ GUARDED_BY(scope_mu_) = nullptr;  // the running watch's (or wait's)
  uint64_t listed_generation_ = 0;                          // Run()'s thread only: the scope last listed
  std::atomic<uint64_t> synced_generation_{0};
  std::atomic<uint64_t> out_of_scope_{0};
};

}  // namespace cronlane::op
