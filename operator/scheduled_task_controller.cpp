#include "operator/scheduled_task_controller.h"

#include <spdlog/spdlog.h>

#include <thread>
#include <vector>

namespace cronlane::op {

ScheduledTaskController::ScheduledTaskController(KindCache<ScheduledTask>& cache, dispatcher::TaskSink& sink,
                                                 StatusWriter& status, EventRecorder& events, Clock& clock, int workers,
                                                 Owns owns, TaskReconciler::ShardOfTask shard_of)
    : cache_(cache),
      owns_(std::move(owns)),
      workers_(std::max(1, workers)),
      queue_(clock),
      reconciler_(
          [this](const std::string& key) -> std::optional<ScheduledTask> {
            auto t = cache_.Get(key);
            if (t && owns_ && !owns_(*t)) return std::nullopt;
            return t;
          },
          sink, status, events, clock, std::move(shard_of)),
      clock_(clock) {}

ScheduledTaskController::~ScheduledTaskController() = default;

void ScheduledTaskController::Worker() {
  while (auto key = queue_.Get()) {
    ++reconciles_;
    const auto started = clock_.SteadyNow();
    Status s = reconciler_.Reconcile(*key);
    reconcile_duration_.Observe(std::chrono::duration<double>(clock_.SteadyNow() - started).count());
    if (s.ok()) {
      queue_.Forget(*key);
    } else {
      ++reconcile_errors_;
      spdlog::warn("reconcile {} failed (retry {}): {}", *key, queue_.Retries(*key) + 1, s.ToString());
      queue_.AddRateLimited(*key);
    }
    queue_.Done(*key);
  }
}

void ScheduledTaskController::Run(CancelToken& cancel) {
  auto owned = [this](const ScheduledTask* t) { return t != nullptr && (!owns_ || owns_(*t)); };
  int sub = cache_.Subscribe([&](const std::string& key, const ScheduledTask* old, const ScheduledTask* now) {
    if (!owned(old) && !owned(now)) return;
    // A task that left this controller counts as deleted here.
    if (TaskReconciler::NeedsReconcile(owned(old) ? old : nullptr, owned(now) ? now : nullptr)) queue_.Add(key);
  });
  // What the cache already holds (warm on a standby that just became leader).
  size_t queued = 0;
  for (const auto& k : cache_.Keys()) {
    if (owns_) {
      auto t = cache_.Get(k);
      if (!t || !owns_(*t)) continue;
    }
    queue_.Add(k);
    ++queued;
  }
  spdlog::info("scheduledtask controller: {} cached tasks queued", queued);

  std::vector<std::thread> threads;
  threads.reserve(static_cast<size_t>(workers_));
  for (int i = 0; i < workers_; ++i) threads.emplace_back([this] { Worker(); });
  int id = cancel.Register([this] { queue_.ShutDown(); });
  for (auto& t : threads) t.join();
  cancel.Unregister(id);
  cache_.Unsubscribe(sub);
}

}  // namespace cronlane::op
