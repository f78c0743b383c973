#pragma once
// Wires the operator together: one informer per watched namespace (or one for all),
// a work queue, reconcile workers. Run() blocks until cancelled.

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "common/cancel.h"
#include "common/clock.h"
#include "dispatcher/task.h"
#include "operator/events.h"
#include "operator/informer.h"
#include "operator/kube/client.h"
#include "operator/scheduled_task.h"
#include "operator/status_writer.h"
#include "operator/task_reconciler.h"
#include "operator/workqueue.h"

namespace cronlane::op {

struct ManagerOptions {
  std::vector<std::string> namespaces;  // empty = all namespaces
  int workers = 2;
  InformerOptions informer;
};

class Manager {
 public:
  // `events` should not block (an EventAggregator).
  Manager(kube::KubeClient& client, dispatcher::TaskSink& sink, StatusWriter& status, EventRecorder& events,
          Clock& clock, ManagerOptions options);
  ~Manager();

  // Starts informers and workers; returns when `cancel` fires, after they stopped.
  void Run(CancelToken& cancel);

  // True once every informer has listed (readiness).
  bool Synced() const;
  std::optional<ScheduledTask> Lookup(const std::string& key) const;
  size_t CachedTasks() const;
  uint64_t reconciles() const { return reconciles_.load(); }
  uint64_t reconcile_errors() const { return reconcile_errors_.load(); }
  const TaskReconciler& reconciler() const { return reconciler_; }
  WorkQueue& queue() { return queue_; }

 private:
  void Worker();

  kube::KubeClient& client_;
  Clock& clock_;
  ManagerOptions options_;
  std::vector<std::unique_ptr<Informer<ScheduledTask>>> informers_;
  WorkQueue queue_;
  TaskReconciler reconciler_;
  std::atomic<uint64_t> reconciles_{0};
  std::atomic<uint64_t> reconcile_errors_{0};
};

}  // namespace cronlane::op
