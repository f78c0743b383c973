#include "operator/status_writer.h"

#include <spdlog/spdlog.h>

#include <vector>

#include "common/time.h"

namespace cronlane::op {

StatusWriter::StatusWriter(kube::KubeClient& client, Lookup lookup, EventAggregator& events, Clock& clock,
                           StatusBudget fire_times, StatusBudget conditions,
                           std::function<void(const std::string&)> on_fenced)
    : client_(client),
      lookup_(std::move(lookup)),
      events_(events),
      times_budget_(clock, fire_times.qps, fire_times.burst),
      conditions_budget_(clock, conditions.qps, conditions.burst),
      on_fenced_(std::move(on_fenced)) {}

StatusWriter::Entries::iterator StatusWriter::EntryLocked(const std::string& key, const std::string& uid) {
  auto it = tasks_.find(key);
  if (it == tasks_.end() || it->second.gone || it->second.uid_hash != UidHash(uid)) {
    Pending p;
    p.uid_hash = UidHash(uid);
    if (auto cached = lookup_(key); cached && cached->uid == uid) {
      p.fired = cached->status.fired_count;
      p.missed = cached->status.missed_count;
      p.last = cached->status.last_schedule_time;
      p.last_success = cached->status.last_successful_time;
      p.next = cached->status.next_schedule_time;
      p.runs = cached->status.runs;
      p.observed_generation = cached->status.observed_generation;
    }
    if (it != tasks_.end()) {
      // A new incarnation of the name (or the same task back): it waits in the
      // queues where the old entry did, so the queues' iterators stay valid.
      p.in_times_queue = it->second.in_times_queue;
      p.in_conditions_queue = it->second.in_conditions_queue;
      if (it->second.gone) --gone_;
      it->second = std::move(p);
    } else {
      it = tasks_.emplace(key, std::move(p)).first;
    }
  }
  return it;
}

void StatusWriter::MarkTimesLocked(Entries::iterator it) {
  Pending& p = it->second;
  p.times_dirty = true;
  if (!p.in_times_queue) {
    times_queue_.push_back(it);
    p.in_times_queue = true;
  }
}

void StatusWriter::MarkConditionsLocked(Entries::iterator it) {
  Pending& p = it->second;
  p.conditions_dirty = true;
  if (!p.in_conditions_queue) {
    conditions_queue_.push_back(it);
    p.in_conditions_queue = true;
  }
}

void StatusWriter::EraseLocked(Entries::iterator it) {
  Pending& p = it->second;
  if (!p.in_times_queue && !p.in_conditions_queue) {
    if (p.gone) --gone_;
    tasks_.erase(it);
    return;
  }
  if (!p.gone) ++gone_;
  Pending tombstone;  // clean, so its turns in the queues write nothing
  tombstone.gone = true;
  tombstone.in_times_queue = p.in_times_queue;
  tombstone.in_conditions_queue = p.in_conditions_queue;
  p = std::move(tombstone);
}

void StatusWriter::EraseIfGoneLocked(Entries::iterator it) {
  const Pending& p = it->second;
  if (p.gone && !p.in_times_queue && !p.in_conditions_queue) {
    --gone_;
    tasks_.erase(it);
  }
}

void StatusWriter::OnReconciled(const ScheduledTask& t, int64_t observed_generation, std::vector<Condition> conditions,
                                std::optional<Instant> next_schedule_time, int32_t shard) {
  const std::string key = t.Key();
  SharedConditions shared = InternConditions(std::move(conditions));
  MutexLock lock(mu_);
  auto it = EntryLocked(key, t.uid);
  Pending& p = it->second;
  p.observed_generation = observed_generation;
  p.conditions = std::move(shared);
  p.shard = shard;
  MarkConditionsLocked(it);
  // A fire committed after the reconcile read the dispatcher has the newer next
  // time; the next fire is always after the last one.
  if (!next_schedule_time || !p.last || *next_schedule_time > *p.last) p.next = next_schedule_time;
}

void StatusWriter::Forget(const std::string& key) {
  MutexLock lock(mu_);
  if (auto it = tasks_.find(key); it != tasks_.end()) EraseLocked(it);
}

void StatusWriter::OnFired(const dispatcher::TaskDefinition& task, dispatcher::Instant scheduled,
                           std::optional<dispatcher::Instant> next) {
  const std::string key = task.ns + "/" + task.name;
  MutexLock lock(mu_);
  auto it = EntryLocked(key, task.id);
  Pending& p = it->second;
  if (!p.last || *p.last < scheduled) p.last = scheduled;
  p.next = next;
  ++p.fired;
  MarkTimesLocked(it);
}

void StatusWriter::OnRunNow(const dispatcher::TaskDefinition& task, const std::string& token, dispatcher::Instant at,
                            dispatcher::RunNowResult result, const std::string& message) {
  const bool fired = result == dispatcher::RunNowResult::kFired;
  {
    const std::string key = task.ns + "/" + task.name;
    MutexLock lock(mu_);
    auto it = EntryLocked(key, task.id);
    Pending& p = it->second;
    p.run_now = std::make_shared<const RunNow>(RunNow{token, at, result, message});
    if (fired) ++p.fired;
    MarkTimesLocked(it);
  }
  const std::string text = std::string(kRunNowAnnotation) + "=" + token + ": " + message;
  if (fired) {
    spdlog::info("task {}/{}: {}", task.ns, task.name, text);
  } else {
    spdlog::warn("task {}/{}: {}", task.ns, task.name, text);
  }
  events_.Record({kScheduledTaskApiVersion, "ScheduledTask", task.ns, task.name, task.id, ""},
                 fired ? "Normal" : "Warning", fired ? "RunNow" : "RunNowSkipped", "RunNow", text);
}

void StatusWriter::OnRunNowRestored(const dispatcher::TaskDefinition& task, const std::string& token,
                                    dispatcher::Instant at, dispatcher::RunNowResult result) {
  const std::string key = task.ns + "/" + task.name;
  MutexLock lock(mu_);
  auto it = EntryLocked(key, task.id);
  it->second.run_now = std::make_shared<const RunNow>(RunNow{
      token, at, result, result == dispatcher::RunNowResult::kFired ? "fired" : "not fired: concurrencyPolicy Forbid"});
  MarkTimesLocked(it);
}

void StatusWriter::OnCompleted(const dispatcher::TaskDefinition& task, std::optional<dispatcher::Instant>) {
  const std::string key = task.ns + "/" + task.name;
  {
    MutexLock lock(mu_);
    auto it = EntryLocked(key, task.id);
    if (it->second.next) {
      it->second.next.reset();
      MarkTimesLocked(it);
    }
  }
  if (on_completed_) on_completed_(key);
}

void StatusWriter::OnSkipped(const dispatcher::TaskDefinition& task, int count, dispatcher::Instant,
                             dispatcher::Instant, const std::string& reason, const std::string& message) {
  {
    const std::string key = task.ns + "/" + task.name;
    MutexLock lock(mu_);
    auto it = EntryLocked(key, task.id);
    it->second.missed += count;
    MarkTimesLocked(it);
  }
  spdlog::warn("task {}/{}: {}", task.ns, task.name, message);
  events_.Record({kScheduledTaskApiVersion, "ScheduledTask", task.ns, task.name, task.id, ""}, "Warning", reason,
                 "Fire", message);
}

void StatusWriter::OnResult(const std::string& uid, const dispatcher::RunResult& r) {
  const std::string& subject = r.subject;
  const auto slash = subject.find('/');
  if (slash == std::string::npos) return;
  RunMerge merged;
  {
    MutexLock lock(mu_);
    // A task that fires has an entry already: no copy from the informer cache per
    // result. Otherwise the cache says whether the result is for this incarnation.
    auto known = tasks_.find(subject);
    if (known == tasks_.end() || known->second.gone || known->second.uid_hash != UidHash(uid)) {
      auto cached = lookup_(subject);
      if (!cached || cached->uid != uid) return;
    }
    auto it = EntryLocked(subject, uid);
    Pending& p = it->second;
    if (r.outcome == RunOutcome::kSucceeded && (!p.last_success || *p.last_success < r.finished)) {
      p.last_success = r.finished;
      MarkTimesLocked(it);
    }
    merged = MergeRun(p.runs, r);
    if (merged.changed) {
      p.runs = merged.history;
      p.runs_dirty = true;
      MarkTimesLocked(it);
    }
  }
  if (!merged.newly_failed && !merged.newly_dead_lettered) return;
  std::string text = (r.trigger == dispatcher::Trigger::kManual     ? "the run-now handled at "
                      : r.trigger == dispatcher::Trigger::kBackfill ? "the backfilled occurrence of "
                                                                    : "the occurrence scheduled at ") +
                     FormatRfc3339(r.scheduled) + " failed after " + std::to_string(r.attempts) + " attempt(s)";
  if (r.dead_lettered) text += "; the worker dead-lettered it";
  spdlog::warn("task {}: {}", subject, text);
  events_.Record(
      {kScheduledTaskApiVersion, "ScheduledTask", subject.substr(0, slash), subject.substr(slash + 1), uid, ""},
      "Warning", r.dead_lettered ? "RunDeadLettered" : "RunFailed", "Run", text);
}

void StatusWriter::OnScheduled(const dispatcher::TaskDefinition& task, std::optional<dispatcher::Instant> next) {
  const std::string key = task.ns + "/" + task.name;
  MutexLock lock(mu_);
  auto known = tasks_.find(key);
  if (known == tasks_.end() || known->second.gone || known->second.uid_hash != UidHash(task.id)) {
    // No entry: write only if status shows another time (a restart writes nothing).
    auto cached = lookup_(key);
    if (!cached || cached->uid != task.id) return;
    if (cached->status.next_schedule_time == next) return;
  }
  auto it = EntryLocked(key, task.id);
  Pending& p = it->second;
  if (p.next == next) return;
  p.next = next;
  if (!p.conditions_dirty) MarkTimesLocked(it);  // a pending conditions write carries it
}

void StatusWriter::OnFenced(const std::string& message) {
  spdlog::error("the dispatcher was fenced by a newer leader: {}", message);
  if (on_fenced_) on_fenced_(message);
}

size_t StatusWriter::backlog() const {
  MutexLock lock(mu_);
  size_t n = 0;
  for (const auto& [k, p] : tasks_) n += p.times_dirty || p.conditions_dirty ? 1 : 0;
  return n;
}

size_t StatusWriter::tracked() const {
  MutexLock lock(mu_);
  return tasks_.size() - gone_;
}

kube::Json StatusWriter::PatchFor(const Pending& p, bool with_conditions) {
  auto time_or_null = [](const std::optional<Instant>& t) {
    return t ? kube::Json(FormatRfc3339(*t)) : kube::Json(nullptr);
  };
  kube::Json status = {{"lastScheduleTime", time_or_null(p.last)},
                       {"nextScheduleTime", time_or_null(p.next)},
                       {"firedCount", p.fired},
                       {"missedCount", p.missed}};
  if (p.last_success) status["lastSuccessfulTime"] = FormatRfc3339(*p.last_success);
  if (p.runs_dirty && p.runs) {
    status["recentRuns"] = RecentRunsJson(*p.runs);
    if (p.runs->last_failure) status["lastFailureTime"] = FormatRfc3339(*p.runs->last_failure);
  }
  if (p.run_now) {
    status["lastRunNow"] = {{"token", p.run_now->token},
                            {"time", FormatRfc3339(p.run_now->at)},
                            {"result", p.run_now->result == dispatcher::RunNowResult::kFired ? "Fired" : "Skipped"},
                            {"message", p.run_now->message}};
  }
  if (with_conditions) {
    status["observedGeneration"] = p.observed_generation;
    status["conditions"] = ConditionsToJson(p.conditions ? *p.conditions : std::vector<Condition>{});
    status["shard"] = p.shard >= 0 ? kube::Json(p.shard) : kube::Json(nullptr);  // null removes it
  }
  return {{"status", std::move(status)}};
}

int StatusWriter::WriteBatch(const std::vector<Write>& batch, bool with_conditions) {
  int written = 0;
  for (const auto& [key, p] : batch) {
    const auto slash = key.find('/');
    auto r = client_.Patch(kScheduledTasks.Path(key.substr(0, slash), key.substr(slash + 1), "status"),
                           PatchFor(p, with_conditions));
    if (r.ok()) {
      ++written;
      ++writes_;
      if (p.runs_dirty) settling_.push_back({key, 5});
      continue;
    }
    MutexLock lock(mu_);
    auto it = tasks_.find(key);
    if (it == tasks_.end() || it->second.gone || it->second.uid_hash != p.uid_hash) continue;
    Pending& now = it->second;
    if (r.status().code() == StatusCode::kNotFound) {
      // Deleted meanwhile: drop the entry unless something newer arrived for it.
      if (!now.times_dirty && !now.conditions_dirty) EraseLocked(it);
      continue;
    }
    spdlog::warn("status of {}: {}", key, r.status().ToString());
    if (!now.run_now) now.run_now = p.run_now;  // unless a newer one came meanwhile
    if (p.runs_dirty) now.runs_dirty = true;    // `now.runs` is the newest
    // Retry on a later pass, behind the others; conditions that changed meanwhile
    // are already newer.
    if (with_conditions && !now.conditions_dirty) {
      now.conditions = p.conditions;
      MarkConditionsLocked(it);
    } else if (!now.conditions_dirty) {
      MarkTimesLocked(it);
    }
  }
  return written;
}

void StatusWriter::Settle() {
  std::vector<Settling> waiting;
  waiting.swap(settling_);
  for (auto& s : waiting) {
    auto cached = lookup_(s.key);  // no lock of ours held: the cache takes its own
    MutexLock lock(mu_);
    auto it = tasks_.find(s.key);
    if (it == tasks_.end() || it->second.gone || !cached || it->second.uid_hash != UidHash(cached->uid)) continue;
    Pending& p = it->second;
    if (p.runs == cached->status.runs) continue;
    if (SameHistory(p.runs, cached->status.runs)) {
      p.runs = cached->status.runs;
    } else if (--s.passes_left > 0) {
      settling_.push_back(std::move(s));  // the watch has not delivered the write yet
    }
  }
}

int StatusWriter::Flush() {
  Settle();
  std::vector<Write> with_conditions;
  std::vector<Write> times_only;
  {
    MutexLock lock(mu_);
    while (!conditions_queue_.empty()) {
      auto it = conditions_queue_.front();
      Pending& p = it->second;
      if (p.conditions_dirty) {
        if (!conditions_budget_.TryAcquire()) break;  // the rest waits for the next pass
        with_conditions.push_back({it->first, p});
        p.conditions_dirty = false;
        p.times_dirty = false;  // the write carries them
        p.conditions.reset();   // written: the cache holds them now
        p.run_now.reset();
        p.runs_dirty = false;
      }
      p.in_conditions_queue = false;
      conditions_queue_.pop_front();
      EraseIfGoneLocked(it);
    }
    while (!times_queue_.empty()) {
      auto it = times_queue_.front();
      Pending& p = it->second;
      // A pending conditions write carries the times when its turn comes.
      if (p.times_dirty && !p.conditions_dirty) {
        if (!times_budget_.TryAcquire()) break;
        times_only.push_back({it->first, p});
        p.times_dirty = false;
        p.run_now.reset();  // written (merge patches keep it)
        p.runs_dirty = false;
      }
      p.in_times_queue = false;
      times_queue_.pop_front();
      EraseIfGoneLocked(it);
    }
  }
  int written = WriteBatch(with_conditions, true) + WriteBatch(times_only, false);
  events_.Flush();
  return written;
}

void StatusWriter::Run(CancelToken& cancel, std::chrono::milliseconds period) {
  while (!cancel.WaitFor(period)) Flush();
  Flush();
}

}  // namespace cronlane::op
