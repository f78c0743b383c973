#include "operator/status_writer.h"

#include <spdlog/spdlog.h>

#include <vector>

namespace cronlane::op {

StatusWriter::StatusWriter(kube::KubeClient& client, Lookup lookup, EventRecorder& events, Clock& clock, double qps,
                           int burst, std::function<void(const std::string&)> on_fenced)
    : client_(client),
      lookup_(std::move(lookup)),
      events_(events),
      budget_(clock, qps, burst),
      on_fenced_(std::move(on_fenced)) {}

StatusWriter::Pending& StatusWriter::EntryLocked(const std::string& ns, const std::string& name,
                                                 const std::string& uid) {
  std::string key = ns + "/" + name;
  auto it = tasks_.find(key);
  if (it == tasks_.end() || it->second.uid != uid) {
    Pending p{ns, name, uid, "", "", "", 0, 0, false};
    if (auto cached = lookup_(key); cached && cached->uid == uid) {
      p.fired = cached->status.fired_count;
      p.missed = cached->status.missed_count;
      p.last = cached->status.last_schedule_time;
      p.last_success = cached->status.last_successful_time;
      p.next = cached->status.next_schedule_time;
    }
    it = tasks_.insert_or_assign(key, std::move(p)).first;
  }
  return it->second;
}

void StatusWriter::OnFired(const dispatcher::TaskDefinition& task, dispatcher::Instant scheduled,
                           std::optional<dispatcher::Instant> next) {
  std::lock_guard lock(mu_);
  Pending& p = EntryLocked(task.ns, task.name, task.id);
  std::string s = dispatcher::FormatRfc3339(scheduled);
  if (p.last < s) p.last = s;  // RFC 3339 UTC strings order like times
  p.next = next ? dispatcher::FormatRfc3339(*next) : "";
  ++p.fired;
  p.dirty = true;
}

void StatusWriter::OnSkipped(const dispatcher::TaskDefinition& task, int count, dispatcher::Instant,
                             dispatcher::Instant, const std::string& reason, const std::string& message) {
  {
    std::lock_guard lock(mu_);
    Pending& p = EntryLocked(task.ns, task.name, task.id);
    p.missed += count;
    p.dirty = true;
  }
  spdlog::warn("task {}/{}: {}", task.ns, task.name, message);
  if (budget_.TryAcquire()) {
    events_.Record({kScheduledTaskApiVersion, "ScheduledTask", task.ns, task.name, task.id, ""}, "Warning", reason,
                   "Fire", message);
  }
}

void StatusWriter::OnSucceeded(const std::string& subject, const std::string& uid, dispatcher::Instant finished) {
  auto slash = subject.find('/');
  if (slash == std::string::npos) return;
  std::string t = dispatcher::FormatRfc3339(finished);
  std::lock_guard lock(mu_);
  // A task that fires has an entry already: no copy from the informer cache per
  // result. Otherwise the cache says whether the result is for this incarnation.
  auto known = tasks_.find(subject);
  if (known == tasks_.end() || known->second.uid != uid) {
    auto cached = lookup_(subject);
    if (!cached || cached->uid != uid) return;
  }
  Pending& p = EntryLocked(subject.substr(0, slash), subject.substr(slash + 1), uid);
  if (p.last_success < t) {
    p.last_success = t;
    p.dirty = true;
  }
}

void StatusWriter::OnFenced(const std::string& message) {
  spdlog::error("the dispatcher was fenced by a newer leader: {}", message);
  if (on_fenced_) on_fenced_(message);
}

size_t StatusWriter::backlog() const {
  std::lock_guard lock(mu_);
  size_t n = 0;
  for (const auto& [k, p] : tasks_) n += p.dirty ? 1 : 0;
  return n;
}

int StatusWriter::Flush() {
  std::vector<Pending> batch;
  {
    std::lock_guard lock(mu_);
    for (auto& [k, p] : tasks_) {
      if (!p.dirty) continue;
      if (!budget_.TryAcquire()) break;  // the rest waits for the next pass
      batch.push_back(p);
      p.dirty = false;
    }
  }
  int written = 0;
  for (const auto& p : batch) {
    kube::Json patch = {{"status",
                         {{"lastScheduleTime", p.last.empty() ? kube::Json(nullptr) : kube::Json(p.last)},
                          {"nextScheduleTime", p.next.empty() ? kube::Json(nullptr) : kube::Json(p.next)},
                          {"firedCount", p.fired},
                          {"missedCount", p.missed}}}};
    if (!p.last_success.empty()) patch["status"]["lastSuccessfulTime"] = p.last_success;
    auto r = client_.Patch(kScheduledTasks.Path(p.ns, p.name, "status"), patch);
    if (r.ok()) {
      ++written;
      ++writes_;
    } else if (r.status().code() != StatusCode::kNotFound) {
      spdlog::warn("status of {}/{}: {}", p.ns, p.name, r.status().ToString());
      std::lock_guard lock(mu_);
      auto it = tasks_.find(p.ns + "/" + p.name);
      if (it != tasks_.end()) it->second.dirty = true;  // retry on a later pass
    }
  }
  return written;
}

void StatusWriter::Run(CancelToken& cancel, std::chrono::milliseconds period) {
  while (!cancel.WaitFor(period)) Flush();
  Flush();
}

}  // namespace cronlane::op
