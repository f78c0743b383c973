#pragma once
// The ScheduledTask controller: a work queue of keys fed by the shared cache, and
// reconcile workers (TaskReconciler). It runs only while this replica leads, but
// reads a cache that every replica keeps warm: when it starts it queues every
// cached key at once, so a new leader schedules 100k tasks without listing them.

#include <atomic>
#include <functional>
#include <memory>
#include <string>

#include <prometheus/client_metric.h>
#include <prometheus/histogram.h>

#include "common/cancel.h"
#include "common/clock.h"
#include "dispatcher/task.h"
#include "operator/cache.h"
#include "operator/events.h"
#include "operator/status_writer.h"
#include "operator/task_reconciler.h"
#include "operator/workqueue.h"

namespace cronlane::op {

class ScheduledTaskController {
 public:
  // Which cached tasks this controller owns (a shard's term: the tasks of its
  // shard); null owns them all. The others are neither queued nor seen by the
  // reconciler, which treats a task that left (a re-created task with a new UID in
  // another shard) as deleted. Called on the cache's and the workers' threads.
  using Owns = std::function<bool(const ScheduledTask&)>;

  // `events` should not block (an EventAggregator). `shard_of`: see TaskReconciler.
  ScheduledTaskController(KindCache<ScheduledTask>& cache, dispatcher::TaskSink& sink, StatusWriter& status,
                          EventRecorder& events, Clock& clock, int workers, Owns owns = nullptr,
                          TaskReconciler::ShardOfTask shard_of = nullptr);
  ~ScheduledTaskController();

  // Subscribes to the cache, queues every cached key, and reconciles until
  // `cancel` fires; returns after its workers stopped and it unsubscribed.
  void Run(CancelToken& cancel);

  uint64_t reconciles() const { return reconciles_.load(); }
  uint64_t reconcile_errors() const { return reconcile_errors_.load(); }
  // Seconds each reconcile took (the API server is not called from it: the cache,
  // the dispatcher's table and the status writer's queue); thread-safe.
  prometheus::ClientMetric ReconcileDuration() const { return reconcile_duration_.Collect(); }
  const TaskReconciler& reconciler() const { return reconciler_; }
  size_t QueueLength() const { return queue_.Len(); }
  // Reconciles `key` again (the dispatcher found it complete). Thread-safe.
  void Requeue(const std::string& key) { queue_.Add(key); }

 private:
  void Worker();

  KindCache<ScheduledTask>& cache_;
  const Owns owns_;
  const int workers_;
  WorkQueue queue_;
  TaskReconciler reconciler_;
  std::atomic<uint64_t> reconciles_{0};
  std::atomic<uint64_t> reconcile_errors_{0};
  Clock& clock_;
  prometheus::Histogram reconcile_duration_{
      prometheus::Histogram::BucketBoundaries{0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1}};
};

}  // namespace cronlane::op
