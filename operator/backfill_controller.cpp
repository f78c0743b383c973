#include "operator/backfill_controller.h"

#include <spdlog/spdlog.h>

#include <thread>
#include <vector>

namespace cronlane::op {

namespace {

using Next = std::optional<std::chrono::milliseconds>;

// The Ready reasons that get a Warning Event when they appear.
bool Warns(const std::string& reason) {
  return reason == kReasonTaskNotFound || reason == kReasonTaskReplaced || reason == kReasonTooManyOccurrences ||
         reason == kReasonInvalidRange || reason == kReasonTaskNotScheduled;
}

// status without the fields progress changes.
BackfillStatus WithoutProgress(BackfillStatus s) {
  s.fired.reset();
  return s;
}

}  // namespace

BackfillController::BackfillController(kube::KubeClient& client, KindCache<Backfill>& backfills,
                                       KindCache<ScheduledTask>& tasks, dispatcher::TaskSink& sink,
                                       EventRecorder& events, Clock& clock, Owns owns,
                                       BackfillControllerOptions options)
    : client_(client),
      backfills_(backfills),
      tasks_(tasks),
      sink_(sink),
      events_(events),
      clock_(clock),
      owns_(std::move(owns)),
      options_(options),
      queue_(clock) {}

uint64_t BackfillController::writes() const {
  MutexLock lock(mu_);
  return writes_;
}

void BackfillController::OnProgress(const dispatcher::BackfillDefinition& b) {
  queue_.Add(b.name);
}

void BackfillController::UnindexLocked(const std::string& key, const std::string& task_key) {
  auto it = by_task_.find(task_key);
  if (it == by_task_.end()) return;
  it->second.erase(key);
  if (it->second.empty()) by_task_.erase(it);
}

Result<Next> BackfillController::Write(const Backfill& b, const BackfillStatus& st) {
  const auto steady = clock_.SteadyNow();
  std::string before_reason;
  {
    MutexLock lock(mu_);
    Known& k = known_[b.Key()];
    const BackfillStatus& base = k.written ? *k.written : b.status;
    if (st == base) return Next{};
    if (const Condition* r = base.Find(kConditionReady)) before_reason = r->reason;
    if (WithoutProgress(st) == WithoutProgress(base) && k.last_write &&
        steady - *k.last_write < options_.progress_period) {
      return Next{
          std::chrono::duration_cast<std::chrono::milliseconds>(options_.progress_period - (steady - *k.last_write))};
    }
  }
  auto written = client_.Patch(kBackfills.Path(b.ns, b.name, "status"), BackfillStatusPatch(st));
  if (!written.ok() && written.status().code() != StatusCode::kNotFound) return written.status();
  {
    MutexLock lock(mu_);
    Known& k = known_[b.Key()];
    k.last_write = steady;
    k.written = st;
    ++writes_;
  }
  const Condition* ready = st.Find(kConditionReady);
  if (ready != nullptr && before_reason != ready->reason &&
      (Warns(ready->reason) || ready->reason == kReasonBackfillCompleted)) {
    const bool warn = ready->reason != kReasonBackfillCompleted;
    if (warn) spdlog::warn("backfill {}: {}: {}", b.Key(), ready->reason, ready->message);
    events_.Record(b.Ref(kBackfillApiVersion, "Backfill"), warn ? "Warning" : "Normal", ready->reason, "Backfill",
                   ready->message);
  }
  return Next{};
}

Result<Next> BackfillController::Reconcile(const std::string& key) {
  std::optional<Backfill> b = lookup_backfill_ ? lookup_backfill_(key) : backfills_.Get(key);
  const bool gone = !b || b->deleting;
  std::string forget, pinned;
  std::optional<BackfillStatus> written;
  {
    MutexLock lock(mu_);
    auto it = known_.find(key);
    if (gone) {
      if (it != known_.end()) {
        forget = it->second.uid;
        UnindexLocked(key, it->second.task_key);
        known_.erase(it);
      } else if (b) {
        forget = b->uid;  // first seen while being deleted: a restored record may be its
      }
    } else {
      Known& k = known_[key];
      if (!k.uid.empty() && k.uid != b->uid) {  // re-created under the name
        forget = k.uid;
        k = Known{.task_key = k.task_key};
      }
      k.uid = b->uid;
      // Indexed before the task is read: a task created after the read requeues this key.
      if (k.task_key != b->TaskKey()) {
        UnindexLocked(key, k.task_key);
        k.task_key = b->TaskKey();
        by_task_[k.task_key].insert(key);
      }
      pinned = k.pinned;
      written = k.written;
    }
  }
  if (!forget.empty()) sink_.ForgetBackfill(forget);
  if (gone) return Next{};
  // The status as it is: what this controller last wrote, when the cache may not
  // show it yet (a field it would rebuild from the cache could be lost for good).
  const BackfillStatus& seen = written ? *written : b->status;
  for (const BackfillStatus* s : {&seen, static_cast<const BackfillStatus*>(&b->status)}) {
    if (const Condition* c = s->Find(kConditionComplete); c != nullptr && c->status == "True") {
      return Next{};  // terminal; its record keeps it from refiring
    }
  }

  const std::string now = FormatRfc3339(clock_.Now());
  const int64_t gen = b->generation;
  BackfillStatus st = seen;
  st.observed_generation = gen;
  if (st.task_uid.empty()) st.task_uid = pinned;  // our pin, not yet in the cache
  // Ready (and Complete) as given; Stalled when `stalled`.
  auto set = [&](const char* ready_status, const char* reason, const std::string& message, bool stalled,
                 const char* complete_status) {
    SetReadiness(st.conditions, {kConditionReady, ready_status, reason, message, "", gen}, stalled, seen.conditions,
                 now);
    SetCondition(st.conditions, {kConditionComplete, complete_status, reason, message, "", gen}, seen.conditions, now);
  };
  auto stall = [&](const char* reason, const std::string& message) -> Result<Next> {
    set("False", reason, message, true, "False");
    auto w = Write(*b, st);
    if (!w.ok()) return w.status();
    return Next{};
  };
  const std::string task_desc = "ScheduledTask " + b->spec.task_name;
  // Before a task is pinned, no shard owns the Backfill through it: the shard of its
  // own UID reports what is wrong, once.
  const bool reports = !owns_ || !st.task_uid.empty() || owns_(b->uid);
  if (!b->spec.from || !b->spec.to || !(*b->spec.from < *b->spec.to)) {
    if (!reports) return Next{};
    return stall(kReasonInvalidRange, !b->spec.from || !b->spec.to ? "spec.from and spec.to must be RFC 3339 times"
                                                                   : "spec.from must be before spec.to");
  }

  std::optional<ScheduledTask> task = lookup_task_ ? lookup_task_(b->TaskKey()) : tasks_.Get(b->TaskKey());
  if (st.task_uid.empty()) {
    if (!task && owns_ && reports) {
      // A shard's cache need not hold every task (docs/architecture.md, "Shards"):
      // the apiserver says whether it exists. If it does, its own shard pins it.
      auto there = client_.Get(kScheduledTasks.Path(b->ns, b->spec.task_name));
      if (there.ok()) return Next{};
      if (there.status().code() != StatusCode::kNotFound) return there.status();
    }
    if (!task) {
      if (!reports) return Next{};
      // Not Stalled: a task and its Backfill applied together (a GitOps commit) may
      // arrive in either order; the task's creation requeues this Backfill.
      set("False", kReasonTaskNotFound,
          task_desc + " does not exist in namespace " + b->ns + "; the Backfill starts when it is created", false,
          "False");
      auto w = Write(*b, st);
      if (!w.ok()) return w.status();
      return Next{};
    }
    if (owns_ && !owns_(task->uid)) return Next{};  // another shard's
    // Pin the incarnation before the dispatcher fires anything for it.
    st.task_uid = task->uid;
    st.start_time = now;
    set("True", kReasonBackfilling, "pinned to " + task_desc + " (UID " + task->uid + ")", false, "False");
    auto w = Write(*b, st);
    if (!w.ok()) return w.status();
    MutexLock lock(mu_);
    known_[key].pinned = task->uid;
  }
  if (owns_ && !owns_(st.task_uid)) return Next{};
  if (!task) {
    return stall(kReasonTaskNotFound, task_desc + " (UID " + st.task_uid +
                                          ") was deleted; its backfill stopped. Create a new Backfill for a new task");
  }
  if (task->uid != st.task_uid) {
    return stall(kReasonTaskReplaced, task_desc + " was re-created (UID " + task->uid + "; this Backfill is for UID " +
                                          st.task_uid +
                                          "): it does not fire for the new task. Create a new Backfill for it");
  }

  dispatcher::BackfillDefinition def{b->uid,
                                     st.task_uid,
                                     key,
                                     *b->spec.from,
                                     *b->spec.to,
                                     static_cast<double>(b->spec.max_per_second),
                                     b->spec.newest_first};
  auto state = sink_.UpsertBackfill(def);
  if (!state.ok()) {
    if (state.status().code() == StatusCode::kInvalidArgument) {
      const std::string& m = state.status().message();
      return stall(m.rfind(kReasonTooManyOccurrences, 0) == 0 ? kReasonTooManyOccurrences : kReasonInvalidRange, m);
    }
    // The dispatcher has not restored its checkpoints yet (a new term): soon.
    if (state.status().code() == StatusCode::kUnavailable) return Next{options_.not_scheduled_retry};
    if (state.status().code() != StatusCode::kNotFound) return state.status();
    // Invalid, or not reconciled yet (a new term upserts tasks and backfills at once).
    const auto steady = clock_.SteadyNow();
    bool report = false;
    {
      MutexLock lock(mu_);
      Known& k = known_[key];
      if (!k.not_scheduled_since) k.not_scheduled_since = steady;
      report = steady - *k.not_scheduled_since >= options_.not_scheduled_grace;
    }
    if (report) {
      set("False", kReasonTaskNotScheduled,
          task_desc + " is not scheduled (see its conditions): the Backfill waits for it", false, "False");
      auto w = Write(*b, st);
      if (!w.ok()) return w.status();
    }
    return Next{options_.not_scheduled_retry};
  }
  {
    MutexLock lock(mu_);
    known_[key].not_scheduled_since.reset();
  }
  st.total = state->total;
  st.fired = state->fired;
  if (state->done()) {
    if (st.completion_time.empty()) st.completion_time = now;
    set("True", kReasonBackfillCompleted,
        "all " + std::to_string(state->total) + " occurrences of " + task_desc + " in the range fired", false, "True");
  } else {
    set("True", kReasonBackfilling,
        "firing the occurrences of " + task_desc + " from " + FormatRfc3339(*b->spec.from) + " to " +
            FormatRfc3339(*b->spec.to) + ", at most " + std::to_string(b->spec.max_per_second) + " per second",
        false, "False");
  }
  return Write(*b, st);
}

void BackfillController::Run(CancelToken& cancel) {
  int bsub = backfills_.Subscribe([this](const std::string& key, const Backfill* old, const Backfill* now) {
    // New, deleted, re-created, or a spec change; our own status writes are not.
    if (GenerationChanged(old, now)) queue_.Add(key);
  });
  int tsub = tasks_.Subscribe([this](const std::string& key, const ScheduledTask* old, const ScheduledTask* now) {
    // A task created, deleted or re-created: the Backfills that name it look again.
    if ((old == nullptr) == (now == nullptr) && (old == nullptr || old->uid == now->uid)) return;
    std::vector<std::string> keys;
    {
      MutexLock lock(mu_);
      auto it = by_task_.find(key);
      if (it == by_task_.end()) return;
      keys.assign(it->second.begin(), it->second.end());
    }
    for (const auto& k : keys) queue_.Add(k);
  });
  for (const auto& k : backfills_.Keys()) queue_.Add(k);
  std::thread worker([this] {
    while (auto key = queue_.Get()) {
      auto next = Reconcile(*key);
      if (!next.ok()) {
        spdlog::warn("backfill {} (retry {}): {}", *key, queue_.Retries(*key) + 1, next.status().ToString());
        queue_.AddRateLimited(*key);
      } else {
        queue_.Forget(*key);
        if (next->has_value()) queue_.AddAfter(*key, **next);
      }
      queue_.Done(*key);
    }
  });
  int id = cancel.Register([this] { queue_.ShutDown(); });
  worker.join();
  cancel.Unregister(id);
  tasks_.Unsubscribe(tsub);
  backfills_.Unsubscribe(bsub);
}

}  // namespace cronlane::op
