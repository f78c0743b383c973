#pragma once
// The Manager owns what every replica runs and the lifetimes of what only the
// leader runs (controller-runtime's Manager, in C++):
// - the shared informer cache (ScheduledTasks, WorkerPools), started first and kept
//   warm on standbys;
// - the metrics and health endpoints, and the registry components add their
//   metrics and readiness checks to;
// - leader election (optional), and the Runnables: those that need leadership are
//   started, each on a thread of its own, in the order they were added when a
//   term begins (after the cache synced), and stopped one by one in reverse order
//   when it ends (each is cancelled and joined before the one added before it);
//   the others run throughout. A runnable that depends on another finishing its
//   start-up orders that itself (LeaderTerm does, inside one runnable).
//
// Run() returns OK when cancelled, kFenced when a runnable was fenced, kAborted
// when the lease was lost (unless exit_on_lost_lease is false), or the error that stopped a runnable or a server; the
// process exits non-zero for each of them.
//
// Threading: configure (Add, AddReadyCheck, metrics().Add) before Run(); Run()
// blocks its caller. cache(), metrics() and IsLeader() are safe from any thread.

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/cancel.h"
#include "common/clock.h"
#include "common/http_server.h"
#include "common/metrics.h"
#include "common/thread_annotations.h"
#include "operator/cache.h"
#include "operator/events.h"
#include "operator/kube/client.h"
#include "operator/leader_election.h"
#include "operator/runnable.h"

namespace cronlane::op {

struct ManagerOptions {
  std::vector<std::string> namespaces;  // empty = all namespaces
  bool workerpools = true;              // cache WorkerPools too
  bool backfills = true;                // cache Backfills too
  std::string metrics_addr = "0";       // "0" disables
  std::string health_addr = "0";
  std::optional<LeaderElectionConfig> leader_election;  // none: this replica always leads
  // The client the leader elector renews with (null: the Manager's). It should time
  // requests out within the renew deadline. Not owned; outlives the Manager.
  kube::KubeClient* lease_client = nullptr;
  // Losing the leader Lease ends Run() with kAborted (the process exits and
  // restarts, as controller-runtime's managers do). False: the leader runnables
  // stop and the replica campaigns again, keeping everything else running (with
  // --shards, the leader Lease only guards the WorkerPool controller).
  bool exit_on_lost_lease = true;
  InformerOptions informer;
};

class Manager {
 public:
  Manager(kube::KubeClient& client, EventRecorder& events, Clock& clock, ManagerOptions options);
  ~Manager();
  Manager(const Manager&) = delete;
  Manager& operator=(const Manager&) = delete;

  Cache& cache() { return cache_; }
  CallbackMetrics& metrics() { return metrics_; }
  // /readyz answers 200 while the cache is synced and every check passes.
  void AddReadyCheck(std::string name, std::function<bool()> ready);
  void Add(std::unique_ptr<Runnable> runnable);

  Status Run(CancelToken& cancel);

  bool IsLeader() const { return leading_.load(); }

 private:
  // One leadership term: the leader runnables in order, stopped in reverse.
  void RunTerm(CancelToken& leading);
  void Fail(const Status& s);

  kube::KubeClient& client_;
  ManagerOptions options_;
  Cache cache_;
  CallbackMetrics metrics_;
  std::unique_ptr<LeaderElector> elector_;
  std::vector<std::unique_ptr<Runnable>> runnables_;
  std::vector<std::pair<std::string, std::function<bool()>>> ready_checks_;
  std::atomic<bool> leading_{false};

  Mutex mu_;
  Status failure_ GUARDED_BY(mu_);               // the first error that stopped the run
  CancelToken* stop_ GUARDED_BY(mu_) = nullptr;  // set while Run() runs
};

}  // namespace cronlane::op
