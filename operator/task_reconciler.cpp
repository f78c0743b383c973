#include "operator/task_reconciler.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/time.h"

namespace cronlane::op {
namespace {}  // namespace

TaskReconciler::TaskReconciler(Lookup lookup, dispatcher::TaskSink& sink, StatusWriter& status, EventRecorder& events,
                               Clock& clock, ShardOfTask shard_of)
    : lookup_(std::move(lookup)),
      sink_(sink),
      status_(status),
      events_(events),
      clock_(clock),
      shard_of_(std::move(shard_of)) {}

bool TaskReconciler::NeedsReconcile(const ScheduledTask* old, const ScheduledTask* now) {
  if (GenerationChanged(old, now)) return true;
  auto request = [](const ScheduledTask* t) { return t->run_now ? *t->run_now : dispatcher::RunRequest{}; };
  return request(old) != request(now);
}

std::vector<Condition> TaskReconciler::DesiredConditions(const ScheduledTask& t,
                                                         const dispatcher::TaskState& state) const {
  const std::optional<dispatcher::TaskProblem>& problem = state.problem;
  std::vector<Condition> out = t.status.Conditions();
  std::erase_if(out, [](const Condition& c) { return c.type == kConditionComplete; });
  Condition ready{kConditionReady, "True", kReasonScheduled, "The task fires according to spec.schedule", "",
                  t.generation};
  if (problem) {
    // Every problem the dispatcher finds (TaskProblems) is in the spec: nothing fires until a person
    // changes it, so the task is Stalled as well as not Ready.
    ready.status = "False";
    ready.reason = problem->reason;
    ready.message = problem->Message();
  } else if (t.def->suspend) {
    // Suspension is intended and healthy: Ready, and the reason says no occurrence fires.
    ready.reason = kReasonSuspended;
    ready.message = "spec.suspend is true: no occurrence fires";
  } else if (state.complete) {
    // Done, as a Job is: healthy (Ready, so kstatus says Current), and Complete.
    ready.reason = kReasonCompleted;
    const dispatcher::TimeBounds& b = *t.def->bounds;
    ready.message = !b.run_at.empty()
                        ? (state.last_fire ? "spec.runAt fired at " + FormatRfc3339(*state.last_fire)
                                           : "spec.runAt " + b.run_at + " passed without firing (see Events)")
                        : "nothing fires before spec.endTime " + b.end_time;
  } else if (t.def->bounds && !t.def->bounds->run_at.empty()) {
    ready.message = "The task fires once, at spec.runAt";
  }
  const std::string now = FormatRfc3339(clock_.Now());
  if (ready.reason == kReasonCompleted) {
    SetCondition(out, {kConditionComplete, "True", kReasonCompleted, ready.message, "", t.generation},
                 t.status.Conditions(), now);
  }
  SetReadiness(out, ready, problem.has_value(), t.status.Conditions(), now);
  return out;
}

void TaskReconciler::RequestRun(const ScheduledTask& t, const std::optional<dispatcher::TaskProblem>& problem) {
  std::string why;
  if (problem) {
    why = "the task is not scheduled: " + problem->Message();
  } else if (Status s = sink_.RequestRun(t.uid, *t.run_now); !s.ok()) {
    why = s.message();
  }
  if (why.empty()) return;
  // Not handled: the request fires once the problem is fixed (the same token).
  const std::string message = std::string(kRunNowAnnotation) + "=" + t.run_now->token + " not run: " + why;
  spdlog::warn("task {}/{}: {}", t.ns, t.name, message);
  events_.Record(t.Ref(kScheduledTaskApiVersion, "ScheduledTask"), "Warning", "RunNowRefused", "RunNow", message);
}

Status TaskReconciler::Reconcile(const std::string& key) {
  auto cached = lookup_(key);
  if (!cached || cached->deleting) {
    MutexLock lock(mu_);
    if (auto it = known_.find(key); it != known_.end()) {
      sink_.Forget(it->second.def->id);  // deleted: its checkpoint goes too
      spdlog::info("task {} removed from the dispatcher", key);
      known_.erase(it);
    }
    status_.Forget(key);
    return Status::Ok();
  }
  const ScheduledTask& t = *cached;
  {
    MutexLock lock(mu_);
    Known& k = known_[key];
    if (k.def && k.def->id != t.uid) {
      sink_.Forget(k.def->id);  // deleted and re-created (a new UID)
      k = Known{};
    }
    k.def = t.def;
  }

  // The dispatcher checks the task (one parse of its schedule) and refuses it with
  // the problem, or schedules it.
  auto upserted = sink_.Upsert(t.def);
  if (!upserted.ok()) return upserted.status();
  const dispatcher::TaskState& state = *upserted;
  const std::optional<dispatcher::TaskProblem>& problem = state.problem;
  if (t.run_now) RequestRun(t, problem);

  std::vector<Condition> conditions = DesiredConditions(t, state);
  const std::optional<Instant>& next = state.next_fire;
  // Fire times alone are not worth a write here: the status writer keeps them
  // current under its budget. This keeps a restart with 100k Ready tasks from
  // writing 100k statuses.
  const int32_t shard = shard_of_ ? shard_of_(t.uid) : -1;
  const bool changed = t.status.observed_generation != t.generation || conditions != t.status.Conditions() ||
                       (!t.status.next_schedule_time && next) || t.status.shard != shard;
  if (!changed) return Status::Ok();
  {
    MutexLock lock(mu_);
    Known& k = known_[key];
    const size_t hash = HashConditions(conditions) * 31 + static_cast<size_t>(shard + 1);
    if (k.reported_generation == t.generation && k.reported_hash == hash) return Status::Ok();  // handed over
    k.reported_generation = t.generation;
    k.reported_hash = hash;
  }
  const Condition* before = t.status.Find(kConditionReady);
  const Condition* after = FindCondition(conditions, kConditionReady);
  const bool reason_changed = before == nullptr || before->reason != after->reason || before->message != after->message;
  status_.OnReconciled(t, t.generation, conditions, state.next_fire, shard);
  ++status_updates_;
  if (reason_changed) {
    if (problem) {
      spdlog::warn("task {} is not scheduled: {}: {}", key, problem->reason, problem->Message());
      events_.Record(t.Ref(kScheduledTaskApiVersion, "ScheduledTask"), "Warning", problem->reason, "Validate",
                     problem->Message());
    } else {
      // Normal transitions are logged at debug, not recorded as Events: at 100k tasks
      // an Event (or an info line) per task would flood a start-up.
      spdlog::debug("task {} {}, next fire {}", key, after->reason, next ? FormatRfc3339(*next) : "none");
    }
  }
  return Status::Ok();
}

}  // namespace cronlane::op
