#include "operator/scheduled_task_controller.h"

#include <spdlog/spdlog.h>

#include <thread>
#include <vector>

namespace cronlane::op {

ScheduledTaskController::ScheduledTaskController(KindCache<ScheduledTask>& cache, dispatcher::TaskSink& sink,
                                                 StatusWriter& status, EventRecorder& events, Clock& clock, int workers)
    : cache_(cache),
      workers_(std::max(1, workers)),
      queue_(clock),
      reconciler_([&cache](const std::string& key) { return cache.Get(key); }, sink, status, events, clock) {}

ScheduledTaskController::~ScheduledTaskController() = default;

void ScheduledTaskController::Worker() {
  while (auto key = queue_.Get()) {
    ++reconciles_;
    Status s = reconciler_.Reconcile(*key);
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
  int sub = cache_.Subscribe([this](const std::string& key, const ScheduledTask* old, const ScheduledTask* now) {
    if (TaskReconciler::NeedsReconcile(old, now)) queue_.Add(key);
  });
  // What the cache already holds (warm on a standby that just became leader).
  std::vector<std::string> keys = cache_.Keys();
  for (const auto& k : keys) queue_.Add(k);
  spdlog::info("scheduledtask controller: {} cached tasks queued", keys.size());

  std::vector<std::thread> threads;
  for (int i = 0; i < workers_; ++i) threads.emplace_back([this] { Worker(); });
  int id = cancel.Register([this] { queue_.ShutDown(); });
  for (auto& t : threads) t.join();
  cancel.Unregister(id);
  cache_.Unsubscribe(sub);
}

}  // namespace cronlane::op
