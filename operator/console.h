#pragma once
// The console: a read-only web page served by every replica that has
// --console-bind-address (off by default; reached with `kubectl port-forward`),
// and the one JSON API behind it. The page is static and embedded in the binary
// (operator/console/index.html, no build chain); it polls GET /api/v1/overview.
//
// Everything comes from the replica's shared informer cache, so a standby shows
// what the leader does: tasks with their next hour of fires (computed here from
// the cached definitions by dispatcher::TaskFireTimes, nominal times before
// jitter), their Ready condition, recent runs (status.recentRuns), Backfills, and
// WorkerPools with their lag and replicas over the last minutes (status as the
// WorkerPool controller writes it, sampled by this replica while it runs). What
// status shows trails firing by the status budget (--status-qps).
//
// Threading: Overview() runs on the HTTP server's threads, Run()/Sample() on the
// console's runnable thread; both take mu_ only around the pool history and the
// reused overview. The ConsoleSource functions are called without the lock held
// and must be thread-safe (the Manager's cache is).

#include <chrono>
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/cancel.h"
#include "common/clock.h"
#include "common/status.h"
#include "common/thread_annotations.h"
#include "operator/backfill.h"
#include "operator/scheduled_task.h"
#include "operator/workerpool.h"

namespace cronlane::op {

inline constexpr const char* kConsoleOverviewPath = "/api/v1/overview";

// Snapshots of the cached objects (the Manager's cache in the operator; fixed
// lists in unit tests).
struct ConsoleSource {
  std::function<std::vector<std::string>()> task_keys;                       // "namespace/name"
  std::function<std::optional<ScheduledTask>(const std::string& key)> task;  // nullopt: gone meanwhile
  std::function<std::vector<WorkerPool>()> pools;
  std::function<std::vector<Backfill>()> backfills;
};

struct ConsoleOptions {
  std::chrono::seconds horizon{3600};  // the timeline: fires from now to now + horizon
  size_t max_tasks = 200;              // tasks in one overview: problems first, then the soonest
  // Fires listed per task; a task firing more often in the horizon lists the first
  // ones, its count and its last (the page draws a band).
  size_t max_fires_per_task = 120;
  size_t max_runs = 50;  // recent runs of all shown tasks, newest first
  std::chrono::seconds pool_history{900};
  std::chrono::seconds sample_period{5};
  // An overview computed less than this long ago is served again: several open
  // pages polling cost one computation.
  std::chrono::milliseconds reuse{1000};
  std::string replica;  // shown in the page's header (the replica's identity)
};

class Console {
 public:
  Console(ConsoleSource source, Clock& clock, ConsoleOptions options = {});

  // The body of GET /api/v1/overview (JSON; docs/operations.md "Console"), for
  // the tasks and pools of `ns` ("" = every watched namespace).
  std::string Overview(const std::string& ns);
  // Records each WorkerPool's lag and replicas as the cache shows them now, and
  // drops pools that are gone and samples older than pool_history.
  void Sample();
  // Samples every sample_period until `cancel` fires. Runs on every replica.
  Status Run(CancelToken& cancel);

  // The page (HTML with its script and style), embedded at build time.
  static std::string_view Page();

 private:
  struct PoolSample {
    int64_t unix_seconds;
    std::optional<int64_t> lag;
    std::optional<int32_t> replicas;
    std::optional<int32_t> desired;
  };
  std::string Compute(const std::string& ns);

  ConsoleSource source_;
  Clock& clock_;
  ConsoleOptions options_;
  Mutex mu_;
  std::map<std::string, std::deque<PoolSample>> history_ GUARDED_BY(mu_);  // by pool key
  struct Reused {
    std::chrono::steady_clock::time_point at;
    std::string body;
  };
  std::map<std::string, Reused> reused_ GUARDED_BY(mu_);  // by namespace filter
};

}  // namespace cronlane::op
