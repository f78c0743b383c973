#pragma once
// Several active replicas, each firing its own shards of the tasks (--shards S).
//
// A task's shard is ShardOf(uid, S) (common/hash.h). Each shard has a Lease,
// `<prefix>-shard-<i>`, held by at most one replica at a time; the holder runs the
// shard's work (a LeaderTerm restricted to the shard, with its own Kafka
// transactional.id, so acquiring a shard fences every earlier holder of that shard
// and no one else). Each replica announces itself with a member Lease of its own,
// `<prefix>-member-<identity>`. Both kinds carry the label
// cronlane.dev/lease-group=<prefix>, so one LIST a period shows everything.
//
// Until its cache has synced, and for one retry period at least, a replica only
// announces itself: its member Lease
// carries the annotation cronlane.dev/joining=true (Announce), and the others
// leave it its share of the shards for at most `join_grace`, so the replica whose
// cache syncs first does not take every shard only to give most of them back.
//
// Every retry period the coordinator: renews its member Lease; lists the group's
// Leases (timing each from when it saw it change, as client-go does, so clock
// offsets between replicas do not matter); renews each shard it holds, and stops a
// shard's work once its renewals have failed for the renew deadline (or another
// replica holds its Lease); asks PlanShards (shard_assignment.h) what to take and
// what to give up; gives up a shard by stopping its work first and then releasing
// the Lease, and takes one by acquiring the Lease first and then starting its
// work. On shutdown it stops every shard's work, releases every Lease and deletes
// its member Lease, so the others take the shards at once.
//
// What the replica caches follows the shards it holds (ShardCacheScope): the
// task cache starts empty; a taken shard is added to its scope before the
// shard's work starts, and that work waits until the cache reflects the scope
// (it reads the shard's tasks from it, and would take a task missing from it for
// deleted); a shard leaves the scope only once its work has stopped.
//
// Threads: Start() runs the loop on the Manager's thread, and a watchdog thread
// that stops a held shard's work at its renew deadline even while the loop hangs
// in a request; each held shard's work runs on a thread of its own. Owned(),
// Members() and the counters are safe from any thread (metrics); Tick() and
// Shutdown() are called by Start() only (tests call them directly, on one thread,
// with a simulated clock, and no watchdog).

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/cancel.h"
#include "common/clock.h"
#include "common/metrics.h"
#include "common/thread_annotations.h"
#include "operator/events.h"
#include "operator/kube/client.h"
#include "operator/runnable.h"

namespace cronlane::op {

struct ShardingConfig {
  std::string lease_namespace;
  std::string lease_prefix = "cronlane-operator";
  std::string identity;
  int shards = 16;
  std::chrono::milliseconds lease_duration{15000};
  std::chrono::milliseconds renew_deadline{10000};
  std::chrono::milliseconds retry_period{2000};
  // How long the others leave a joining replica (announced, cache not synced) its
  // share of the shards; after that it counts only once it is ready.
  std::chrono::milliseconds join_grace{30000};
};

// The work of one held shard: runs until `cancel` fires (then OK), or ends by
// itself (kFenced: another producer took the shard's transactional.id; any other
// error). Called on a thread of its own; several shards' work runs at once.
using ShardWork = std::function<Status(int shard, CancelToken& cancel)>;

// The shared task cache's scope, as the coordinator sets it (KindCache::SetScope
// with ShardScope in the operator). Both empty: the cache holds every task.
struct ShardCacheScope {
  // Scopes the cache to `shards` (those whose work runs, starts or stops). Called
  // on the coordinator's thread only (and once by its constructor, with none).
  std::function<void(const std::set<int>& shards)> scope;
  // Whether the cache holds `shard`'s tasks, as of the latest scope() including
  // it. Called on shards' work threads.
  std::function<bool(int shard)> synced;
};

// The Lease names; `identity` is made a valid name (lowercase, [a-z0-9-]).
std::string ShardLeaseName(const std::string& prefix, int shard);
std::string MemberLeaseName(const std::string& prefix, const std::string& identity);
inline constexpr const char* kLeaseGroupLabel = "cronlane.dev/lease-group";
inline constexpr const char* kLeaseRoleLabel = "cronlane.dev/lease-role";
inline constexpr const char* kJoiningAnnotation = "cronlane.dev/joining";

class ShardCoordinator final : public Runnable {
 public:
  // `ready`: the replica may take shards (its cache has synced).
  ShardCoordinator(kube::KubeClient& client, Clock& clock, EventRecorder& events, ShardingConfig config,
                   std::function<bool()> ready, ShardWork work, ShardCacheScope cache_scope = {});
  ~ShardCoordinator() override;

  Status Start(CancelToken& cancel) override;
  bool NeedsLeaderElection() const override { return false; }
  std::string Name() const override { return "shard-coordinator"; }

  // One period: renew, list, plan, act. Public for tests.
  void Tick();
  // One period before the replica is ready: renews its member Lease marked
  // joining. Public for tests.
  void Announce();
  // Stops every shard's work, releases its Leases, deletes the member Lease.
  void Shutdown();

  std::vector<int> Owned() const;
  size_t Members() const { return members_.load(); }
  uint64_t Acquired() const { return acquired_.load(); }
  uint64_t Released() const { return released_.load(); }
  uint64_t Lost() const { return lost_.load(); }
  // Shards whose work waited for the cache to hold their tasks, and the time that
  // took in all (cronlane_shard_cache_syncs_total, ..._seconds_total).
  uint64_t CacheSyncs() const { return cache_waits_.load(); }
  double CacheSyncSeconds() const { return static_cast<double>(cache_wait_ms_.load()) / 1000.0; }
  // cronlane_shards_owned, cronlane_shard_members, cronlane_shard_handoffs_total.
  void RegisterMetrics(CallbackMetrics& metrics);

 private:
  // What we last saw of a Lease, and when it last changed (our monotonic clock).
  struct Seen {
    std::string holder;
    std::string renew_time;
    int duration_s = 15;
    std::chrono::steady_clock::time_point changed_at{};
    bool joining = false;                                   // a member Lease marked joining
    std::chrono::steady_clock::time_point joining_since{};  // when we first saw it so
    kube::Json object;
  };
  struct Term {
    int shard = 0;
    CancelToken cancel;
    std::thread thread;
    std::atomic<bool> done{false};
    Status result;  // written before `done`
  };

  bool Expired(const Seen& s) const;
  void Observe(const std::string& name, const kube::Json& lease);
  kube::Json NewLease(const std::string& name, const std::string& role) const;
  // PUT the Lease `name` held by us (renewed now); creates it when it does not exist.
  // `joining` marks (or unmarks) our member Lease.
  Status Hold(const std::string& name, const std::string& role, bool joining = false);
  void ReleaseLease(int shard);
  void StartTerm(int shard);
  // Scopes the cache to the shards held or with work still running, plus `adding`,
  // when that set changed (narrowing once a shard's work has stopped).
  void Rescope(const std::set<int>& adding = {});
  // On a shard's work thread: waits until the cache holds the shard's tasks;
  // false when `cancel` fired first.
  bool WaitForCache(int shard, CancelToken& cancel) const;
  // Stops a shard's work: cancels it, and with `wait` joins it.
  void StopTerm(int shard, bool wait);
  // Joins terms that ended; a term that ended by itself gives its shard up.
  void Reap();
  void Drop(int shard, const std::string& why);  // lost: stop at once, no release
  // A held shard's Lease was renewed by a request sent at `sent`: its deadline
  // moves to sent + renew_deadline (a standby counts the lease duration from
  // when it saw that renewal, which is later).
  void Renewed(int shard, std::chrono::steady_clock::time_point sent);
  void Forget(int shard);  // no longer held
  // Whether the watchdog stopped the shard's work at its renew deadline.
  bool WatchExpired(int shard) const;
  // Start()'s second thread: cancels a held shard's work once its renew deadline
  // passed without a renewal, even while the coordinator thread hangs in a
  // request on a cut network (each request may take its timeout, and one period
  // makes several). The coordinator thread then drops the shard at its next look.
  void Watchdog();
  ObjectRef LeaseRef(const std::string& name) const;

  kube::KubeClient& client_;
  Clock& clock_;
  EventRecorder& events_;
  const ShardingConfig config_;
  const std::function<bool()> ready_;
  const ShardWork work_;
  const ShardCacheScope cache_scope_;
  const std::string member_name_;

  // The coordinator thread's own state.
  std::map<std::string, Seen> seen_;                                 // by Lease name
  std::map<int, std::shared_ptr<Term>> terms_;                       // running or stopping
  std::map<int, std::chrono::steady_clock::time_point> last_renew_;  // held shards
  std::map<int, std::chrono::steady_clock::time_point> cooldown_;    // not to be taken before
  std::set<int> releasing_;  // held, work stopping; the Lease is released once it stopped
  std::set<int> scoped_;     // the shards the cache was last scoped to

  mutable Mutex mu_;
  std::vector<int> owned_ GUARDED_BY(mu_);  // a copy of last_renew_'s keys for other threads
  struct Watch {
    std::chrono::steady_clock::time_point deadline;
    std::shared_ptr<Term> term;  // null when the shard has no work running
    bool expired = false;        // the watchdog cancelled the work
  };
  std::map<int, Watch> watched_ GUARDED_BY(mu_);  // held shards, for the watchdog
  std::condition_variable watch_cv_;              // watched_ or watchdog_stop_ changed
  bool watchdog_stop_ GUARDED_BY(mu_) = false;
  std::atomic<size_t> members_{0};
  std::atomic<uint64_t> acquired_{0}, released_{0}, lost_{0};
  mutable std::atomic<uint64_t> cache_waits_{0}, cache_wait_ms_{0};
};

}  // namespace cronlane::op
