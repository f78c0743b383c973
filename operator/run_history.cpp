#include "operator/run_history.h"

#include <algorithm>
#include <limits>

#include "operator/object_fields.h"

namespace cronlane::op {

namespace {

int Severity(RunOutcome o) {
  switch (o) {
    case RunOutcome::kSucceeded:
      return 0;
    case RunOutcome::kCancelled:
      return 1;
    case RunOutcome::kFailed:
      break;
  }
  return 2;
}

template <typename T>
T Clamp(int64_t v) {
  return static_cast<T>(std::clamp<int64_t>(v, std::numeric_limits<T>::min(), std::numeric_limits<T>::max()));
}

int64_t Unix(Instant t) {
  return std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch()).count();
}

RecentRun FromResult(const dispatcher::RunResult& r) {
  RecentRun run;
  run.SetScheduled(r.scheduled);
  run.SetDurationMs(r.duration_ms);
  run.finished_after = Clamp<int32_t>(Unix(r.finished) - Unix(run.Scheduled()));
  run.attempts = Clamp<uint16_t>(r.attempts);
  run.outcome = r.outcome;
  run.trigger = static_cast<uint8_t>(r.trigger);
  run.dead_lettered = r.dead_lettered ? 1 : 0;
  return run;
}

// Newest first: by scheduled time, then trigger (a run-now and a scheduled
// occurrence may share a second).
bool Newer(const RecentRun& a, const RecentRun& b) {
  return a.scheduled != b.scheduled ? a.scheduled > b.scheduled : a.trigger < b.trigger;
}

const char* TriggerName(uint8_t t) {
  switch (static_cast<dispatcher::Trigger>(t)) {
    case dispatcher::Trigger::kSchedule:
      return "Scheduled";
    case dispatcher::Trigger::kBackfill:
      return "Backfill";
    default:
      return "Manual";
  }
}

dispatcher::Trigger TriggerOf(const std::string& name) {
  if (name == "Manual") return dispatcher::Trigger::kManual;
  if (name == "Backfill") return dispatcher::Trigger::kBackfill;
  return dispatcher::Trigger::kSchedule;
}

}  // namespace

void RecentRun::SetScheduled(Instant t) {
  scheduled = Clamp<uint32_t>(Unix(t) - kEpoch);
}

void RecentRun::SetDurationMs(int64_t ms) {
  ms = std::max<int64_t>(0, ms);
  duration_in_s = ms > std::numeric_limits<uint32_t>::max() ? 1 : 0;
  duration = duration_in_s ? Clamp<uint32_t>(ms / 1000) : static_cast<uint32_t>(ms);
}

bool SameHistory(const SharedRunHistory& a, const SharedRunHistory& b) {
  if (a == b) return true;
  return a && b && *a == *b;
}

RunMerge MergeRun(const SharedRunHistory& base, const dispatcher::RunResult& r) {
  const RecentRun add = FromResult(r);
  RunHistory h = base ? *base : RunHistory{};
  RunMerge m;
  auto same = std::find_if(h.runs.begin(), h.runs.end(), [&](const RecentRun& e) {
    return e.scheduled == add.scheduled && e.trigger == add.trigger;
  });
  bool failed_now = false;
  if (same != h.runs.end()) {
    RecentRun merged = *same;
    if (Severity(add.outcome) > Severity(merged.outcome)) merged.outcome = add.outcome;
    merged.attempts = std::max(merged.attempts, add.attempts);
    merged.SetDurationMs(std::max(merged.DurationMs(), add.DurationMs()));
    merged.finished_after = std::max(merged.finished_after, add.finished_after);
    merged.dead_lettered = merged.dead_lettered | add.dead_lettered;
    m.newly_failed = merged.outcome == RunOutcome::kFailed && same->outcome != RunOutcome::kFailed;
    m.newly_dead_lettered = merged.dead_lettered && !same->dead_lettered;
    failed_now = merged.outcome == RunOutcome::kFailed;
    if (merged != *same) {
      *same = merged;
      m.changed = true;
    }
  } else {
    auto at = std::find_if(h.runs.begin(), h.runs.end(), [&](const RecentRun& e) { return Newer(add, e); });
    if (at != h.runs.end() || h.runs.size() < kMaxRecentRuns) {
      h.runs.insert(at, add);
      if (h.runs.size() > kMaxRecentRuns) h.runs.resize(kMaxRecentRuns);
      m.changed = true;
      m.newly_failed = add.outcome == RunOutcome::kFailed;
      m.newly_dead_lettered = add.dead_lettered != 0;
    }
    failed_now = add.outcome == RunOutcome::kFailed;
  }
  if (failed_now && (!h.last_failure || *h.last_failure < r.finished)) {
    h.last_failure = r.finished;
    m.changed = true;
  }
  if (m.changed) h.runs.shrink_to_fit();  // an insert into a full vector doubled its capacity
  m.history = m.changed ? std::make_shared<const RunHistory>(std::move(h)) : base;
  return m;
}

kube::Json RecentRunsJson(const RunHistory& h) {
  kube::Json runs = kube::Json::array();
  for (const RecentRun& r : h.runs) {
    kube::Json j = {{"trigger", TriggerName(r.trigger)},
                    {"scheduledTime", FormatRfc3339(r.Scheduled())},
                    {"finishedTime", FormatRfc3339(r.Finished())},
                    {"outcome", RunOutcomeName(r.outcome)},
                    {"attempts", r.attempts},
                    {"durationMs", r.DurationMs()}};
    if (r.dead_lettered) j["deadLettered"] = true;
    runs.push_back(std::move(j));
  }
  return runs;
}

SharedRunHistory RunHistoryFromJson(const kube::Json& status, const SharedRunHistory& previous) {
  RunHistory h;
  if (auto t = ParseRfc3339(JsonString(status, "lastFailureTime")); t.ok()) h.last_failure = *t;
  if (auto runs = status.find("recentRuns"); runs != status.end() && runs->is_array()) {
    h.runs.reserve(std::min(runs->size(), kMaxRecentRuns));  // exactly: 24 bytes a run, per task
    for (const auto& j : *runs) {
      if (!j.is_object() || h.runs.size() >= kMaxRecentRuns) continue;
      auto scheduled = ParseRfc3339(JsonString(j, "scheduledTime"));
      auto finished = ParseRfc3339(JsonString(j, "finishedTime"));
      if (!scheduled.ok() || !finished.ok()) continue;
      RecentRun r;
      r.SetScheduled(*scheduled);
      r.finished_after = Clamp<int32_t>(Unix(*finished) - Unix(r.Scheduled()));
      r.outcome = ParseRunOutcome(JsonString(j, "outcome"));
      r.attempts = Clamp<uint16_t>(JsonInt(j, "attempts", 0));
      r.SetDurationMs(JsonInt(j, "durationMs", 0));
      r.trigger = static_cast<uint8_t>(TriggerOf(JsonString(j, "trigger")));
      auto dl = j.find("deadLettered");
      r.dead_lettered = dl != j.end() && dl->is_boolean() && dl->get<bool>() ? 1 : 0;
      h.runs.push_back(r);
    }
  }
  if (h.runs.empty() && !h.last_failure) return nullptr;
  if (previous && *previous == h) return previous;
  return std::make_shared<const RunHistory>(std::move(h));
}

}  // namespace cronlane::op
