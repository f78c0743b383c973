#include "operator/task_reconciler.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace cronlane::op {

TaskReconciler::TaskReconciler(kube::KubeClient& client, Lookup lookup, dispatcher::TaskSink& sink,
                               EventRecorder& events, Clock& clock)
    : client_(client), lookup_(std::move(lookup)), sink_(sink), events_(events), clock_(clock) {}

bool TaskReconciler::NeedsReconcile(const ScheduledTask* old, const ScheduledTask* now) {
  if (old == nullptr || now == nullptr) return true;
  return old->generation != now->generation || old->uid != now->uid || old->deleting != now->deleting;
}

TaskStatus TaskReconciler::Desired(const ScheduledTask& t, const std::optional<dispatcher::TaskProblem>& problem,
                                   const dispatcher::TaskState& state) const {
  TaskStatus s = t.status;
  s.observed_generation = t.generation;
  Condition ready{"Ready", "True", kReasonScheduled, "The task fires according to spec.schedule", "", t.generation};
  if (problem) {
    ready.status = "False";
    ready.reason = problem->reason;
    ready.message = problem->message;
  } else if (t.def.suspend) {
    ready.status = "False";
    ready.reason = kReasonSuspended;
    ready.message = "spec.suspend is true: no occurrence fires";
  }
  SetCondition(s.conditions, ready, t.status.conditions,
               dispatcher::FormatRfc3339(std::chrono::floor<std::chrono::seconds>(clock_.Now())));
  s.next_schedule_time = state.next_fire ? dispatcher::FormatRfc3339(*state.next_fire) : "";
  if (state.last_fire) s.last_schedule_time = dispatcher::FormatRfc3339(*state.last_fire);
  return s;
}

Status TaskReconciler::Reconcile(const std::string& key) {
  auto cached = lookup_(key);
  if (!cached || cached->deleting) {
    std::lock_guard lock(mu_);
    if (auto it = uid_by_key_.find(key); it != uid_by_key_.end()) {
      sink_.Remove(it->second);
      spdlog::info("task {} removed from the dispatcher", key);
      uid_by_key_.erase(it);
    }
    return Status::Ok();
  }
  const ScheduledTask& t = *cached;
  {
    std::lock_guard lock(mu_);
    auto it = uid_by_key_.find(key);
    if (it != uid_by_key_.end() && it->second != t.uid) sink_.Remove(it->second);  // deleted and re-created
    uid_by_key_[key] = t.uid;
  }

  std::optional<dispatcher::TaskProblem> problem = dispatcher::CheckTask(t.def);
  dispatcher::TaskState state;
  if (problem) {
    sink_.Remove(t.uid);
  } else {
    auto upserted = sink_.Upsert(t.def);
    if (!upserted.ok()) return upserted.status();
    state = *upserted;
  }

  TaskStatus desired = Desired(t, problem, state);
  if (desired == t.status) return Status::Ok();
  // Fire times alone (next/last schedule time) are not worth a write here: the
  // status writer keeps them current under the write budget. This keeps a restart
  // with 100k Ready tasks from writing 100k statuses.
  {
    TaskStatus ignoring_times = desired;
    ignoring_times.next_schedule_time = t.status.next_schedule_time;
    ignoring_times.last_schedule_time = t.status.last_schedule_time;
    if (ignoring_times == t.status && !t.status.next_schedule_time.empty()) return Status::Ok();
  }

  const Condition* before = t.status.Find("Ready");
  const Condition* after = desired.Find("Ready");
  bool reason_changed = before == nullptr || before->reason != after->reason || before->message != after->message;
  auto patched = client_.Patch(kScheduledTasks.Path(t.ns, t.name, "status"), StatusPatch(desired));
  if (!patched.ok()) {
    if (patched.status().code() == StatusCode::kNotFound) return Status::Ok();  // deleted meanwhile
    return patched.status();
  }
  ++status_writes_;
  if (reason_changed) {
    ObjectRef ref{kScheduledTaskApiVersion, "ScheduledTask", t.ns, t.name, t.uid, t.resource_version};
    if (problem) {
      spdlog::warn("task {} is not scheduled: {}: {}", key, problem->reason, problem->message);
      events_.Record(ref, "Warning", problem->reason, "Validate", problem->message);
    } else {
      // Normal transitions are logged, not recorded as Events: at 100k tasks an Event
      // per task would double the API writes of a start-up.
      spdlog::info("task {} {}, next fire {}", key, after->reason, desired.next_schedule_time);
    }
  }
  return Status::Ok();
}

}  // namespace cronlane::op
