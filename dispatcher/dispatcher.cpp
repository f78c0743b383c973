#include "dispatcher/dispatcher.h"

#include <algorithm>
#include <charconv>
#include <deque>
#include <functional>
#include <set>
#include <sstream>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include <spdlog/spdlog.h>

#include "common/backoff.h"
#include "common/cloudevent.h"
#include "common/hash.h"
#include "common/occurrence_id.h"
#include "common/retry_policy.h"

namespace cronlane::dispatcher {
namespace {

using std::chrono::seconds;

// Occurrences skipped beyond the catch-up window are counted up to this many (the
// report then says "at least"), so a long outage costs bounded work per task.
constexpr size_t kMaxCountedSkips = 10000;

std::string Unix(Instant t) {
  return std::to_string(t.time_since_epoch().count());
}

// A run-now record's value: "<unix> <Fired|Skipped> <token>".
std::string RunNowRecord(Instant at, Trigger trigger, const std::string& token) {
  return Unix(at) + (trigger == Trigger::kManual ? " Fired " : " Skipped ") + token;
}

struct ParsedRunNowRecord {
  Instant at;
  bool fired = false;
  std::string token;
};
std::optional<ParsedRunNowRecord> ParseRunNowRecord(std::string_view v) {
  const auto sp1 = v.find(' ');
  const auto sp2 = sp1 == std::string_view::npos ? sp1 : v.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return std::nullopt;
  int64_t unix = 0;
  auto [ptr, ec] = std::from_chars(v.data(), v.data() + sp1, unix);
  if (ec != std::errc() || ptr != v.data() + sp1) return std::nullopt;
  const std::string_view result = v.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view token = v.substr(sp2 + 1);
  if ((result != "Fired" && result != "Skipped") || !ValidRunToken(token)) return std::nullopt;
  return ParsedRunNowRecord{Instant{seconds{unix}}, result == "Fired", std::string(token)};
}

}  // namespace

std::string OccurrenceId(const std::string& task_id, Instant scheduled, int shard, int shards) {
  std::string id = task_id + ":" + Unix(scheduled);
  if (shards > 1) id += ":" + std::to_string(shard);
  return id;
}

std::string ManualOccurrenceId(const std::string& task_id, const std::string& token, int shard, int shards) {
  std::string id = task_id + ":run-now:" + token;
  if (shards > 1) id += ":" + std::to_string(shard);
  return id;
}

std::string BackfillOccurrenceId(const std::string& task_id, const std::string& backfill_id, Instant scheduled,
                                 int shard, int shards) {
  std::string id = task_id + ":bf-" + backfill_id + ":" + Unix(scheduled);
  if (shards > 1) id += ":" + std::to_string(shard);
  return id;
}

ParsedOccurrenceId ParseOccurrenceId(std::string_view id) {
  ParsedOccurrenceId out;
  const std::string_view task = TaskIdOf(id);
  out.task_id = std::string(task);
  if (task.size() == id.size()) {  // no ':'
    out.base = out.task_id;
    return out;
  }
  std::string_view rest = id.substr(task.size() + 1);
  constexpr std::string_view kManual = "run-now:";
  constexpr std::string_view kBackfill = "bf-";
  if (rest.substr(0, kManual.size()) == kManual) {
    const std::string_view token = rest.substr(kManual.size());
    out.token = std::string(token.substr(0, token.find(':')));
    out.base = out.task_id + ":run-now:" + out.token;
  } else if (rest.substr(0, kBackfill.size()) == kBackfill) {
    // bf-<backfill uid>:<unix>[:<shard>]
    const std::string_view after = rest.substr(kBackfill.size());
    const auto colon = after.find(':');
    out.backfill = std::string(after.substr(0, colon));
    const std::string_view unix = colon == std::string_view::npos ? std::string_view() : after.substr(colon + 1);
    out.base = out.task_id + ":bf-" + out.backfill + ":" + std::string(unix.substr(0, unix.find(':')));
  } else {
    out.base = out.task_id + ":" + std::string(rest.substr(0, rest.find(':')));
  }
  return out;
}

std::chrono::seconds JitterFor(const std::string& task_id, Instant scheduled, int jitter_seconds) {
  if (jitter_seconds <= 0) return seconds{0};
  uint64_t h = Fnv1a(Unix(scheduled), Fnv1a(task_id, kLegacyFnvSeed));  // as ever: jitter never moves
  return seconds{static_cast<int64_t>(h % static_cast<uint64_t>(jitter_seconds + 1))};
}

std::string DefaultEventSource(const TaskDefinition& task) {
  return "/" + task.ns + "/" + task.name;
}

std::vector<OutMessage> BuildMessages(const TaskDefinition& t, Instant scheduled, std::chrono::seconds jitter,
                                      const std::string& default_topic, const std::string& source,
                                      const std::string& manual_token) {
  std::vector<OutMessage> out;
  out.reserve(static_cast<size_t>(t.shards));
  const std::string topic = t.topic.empty() ? default_topic : t.topic;
  const std::string key = t.key().empty() ? t.ns + "/" + t.name : t.key();
  for (int shard = 0; shard < t.shards; ++shard) {
    // Without an explicit key, shards get keys of their own so they spread over the
    // partitions and run in parallel across the pool; one task's occurrences (shard
    // by shard) still keep their order.
    OutMessage m{topic, t.key().empty() && t.shards > 1 ? key + "#" + std::to_string(shard) : key, t.payload_json, {}};
    m.headers = {{"ce_specversion", "1.0"},
                 {"ce_id", manual_token.empty() ? OccurrenceId(t.id, scheduled, shard, t.shards)
                                                : ManualOccurrenceId(t.id, manual_token, shard, t.shards)},
                 {"ce_source", source.empty() ? DefaultEventSource(t) : source},
                 {"ce_type", "dev.cronlane.task.fired"},
                 {"ce_time", FormatRfc3339(scheduled)},
                 {"ce_subject", t.ns + "/" + t.name},
                 {"content-type", "application/json"},
                 {"ce_shardindex", std::to_string(shard)},
                 {"ce_shardcount", std::to_string(t.shards)},
                 {"ce_jitterseconds", std::to_string(jitter.count())},
                 {"ce_maxattempts", std::to_string(t.max_attempts)},
                 {"ce_backoffseconds", std::to_string(t.backoff_seconds)}};
    if (t.timeout_seconds > 0) m.headers.push_back({"ce_timeoutseconds", std::to_string(t.timeout_seconds)});
    if (!manual_token.empty()) m.headers.push_back({"ce_trigger", "manual"});
    for (const auto& [k, v] : t.headers()) m.headers.push_back({k, v});
    out.push_back(std::move(m));
  }
  return out;
}

Dispatcher::Dispatcher(Clock& clock, FireSink& sink, DispatcherObserver* observer, DispatcherOptions options)
    : clock_(clock), sink_(sink), observer_(observer), options_(std::move(options)) {}

Dispatcher::~Dispatcher() = default;

Instant Dispatcher::Now() const {
  return std::chrono::floor<seconds>(clock_.Now());
}

Status Dispatcher::Start() {
  const auto t0 = std::chrono::steady_clock::now();
  Status s = sink_.Init();
  if (!s.ok()) return s;
  const auto t1 = std::chrono::steady_clock::now();
  auto cps = sink_.ReadCheckpoints();
  if (!cps.ok()) return cps.status();
  const auto t2 = std::chrono::steady_clock::now();
  const size_t restored = cps->size();
  std::vector<std::pair<DefPtr, std::optional<Instant>>> scheduled;
  {
    MutexLock lock(mu_);
    restored_ = std::move(cps->fired);
    restored_records_ = std::move(cps->records);
    started_ = true;
    Instant now = Now();
    scheduled.reserve(tasks_.size());
    for (auto& [id, e] : tasks_) {
      if (auto it = restored_.find(e.def->id); it != restored_.end()) {
        e.last_fired = PlausibleCheckpoint(*e.def, it->second, now);
        restored_.erase(it);  // the entry carries it from now on (memory per task)
      }
      if (!restored_records_.empty()) ClaimRecordLocked(e.def);
      ScheduleLocked(e, now);
      scheduled.emplace_back(e.def, e.next);
      if (CompleteLocked(e)) completions_.emplace_back(e.def, e.last_fired);
    }
    // Run-now requests held until the records said which tokens were handled.
    for (auto& [id, m] : manual_) {
      if (auto it = tasks_.find(id); it != tasks_.end()) DecideRunLocked(it->second, m, now);
    }
    for (auto& [id, b] : backfills_) ClaimBackfillRecordLocked(b);
    cv_.notify_all();
  }
  if (observer_ != nullptr) {
    for (const auto& [def, next] : scheduled) observer_->OnScheduled(*def, next);
    DeliverRestoredRuns();
    DeliverSkips();  // and completions
  }
  using ms = std::chrono::milliseconds;
  spdlog::info(
      "dispatcher: producer fenced older ones in {} ms, {} checkpoints restored in {} ms, {} tasks scheduled in {} ms",
      std::chrono::duration_cast<ms>(t1 - t0).count(), restored, std::chrono::duration_cast<ms>(t2 - t1).count(),
      scheduled.size(), std::chrono::duration_cast<ms>(std::chrono::steady_clock::now() - t2).count());
  return Status::Ok();
}

void Dispatcher::PushLocked(Entry& e) {
  ++e.version;
  if (!e.next) return;
  heap_.push({*e.next + JitterFor(e.def->id, *e.next, Times(e).JitterSeconds(*e.next, e.def->jitter_seconds)), e.def,
              e.version});
}

std::optional<Instant> Dispatcher::PlausibleCheckpoint(const TaskDefinition& task, int64_t value, Instant now) {
  constexpr int64_t kClockOffset = 3600;
  const int64_t now_s = std::chrono::duration_cast<seconds>(now.time_since_epoch()).count();
  const int64_t created_s = std::chrono::duration_cast<seconds>(task.created.time_since_epoch()).count();
  if (value <= now_s + kClockOffset && (created_s <= 0 || value >= created_s - kClockOffset)) {
    return Instant{seconds{value}};
  }
  if (auto n = implausible_log_.Allow()) {
    spdlog::warn(
        "task {}/{}: its checkpoint (last fired at Unix time {}) is {}: ignored, the task starts as "
        "never fired ({} such checkpoint(s) since the last warning)",
        task.ns, task.name, value, value > now_s ? "later than now" : "before the task was created", *n);
  }
  return std::nullopt;
}

bool Dispatcher::CompleteLocked(const Entry& e) const {
  return started_ && e.window && !e.def->suspend && !e.next;
}

void Dispatcher::ScheduleLocked(Entry& e, Instant now) {
  if (!started_ || e.def->suspend) {
    e.next.reset();
    ++e.version;
    return;
  }
  // Resume after the last fired occurrence (missed ones are caught up per policy);
  // a task never fired starts from now. A one-shot task never fired has its one
  // occurrence ahead of it, however late: a runAt already past when the task was
  // created (or while no leader ran) is a missed occurrence, and catchUpPolicy and
  // startingDeadlineSeconds decide whether it still fires.
  Instant from = now;
  if (e.last_fired) {
    from = *e.last_fired;
  } else if (e.window && e.window->run_at) {
    from = std::min(now, *e.window->run_at - seconds{1});
  }
  e.next = Times(e).Next(from);
  PushLocked(e);
}

Result<TaskState> Dispatcher::Upsert(TaskDefinitionPtr ptr) {
  const TaskDefinition& task = *ptr;
  std::optional<Schedule> parsed;
  FireSpec window;
  if (auto problems = TaskProblems(task, &parsed, &window); !problems.empty()) {
    Remove(task.id);
    TaskState refused;
    refused.problem = std::move(problems.front());
    return refused;
  }
  MutexLock lock(mu_);
  Instant now = Now();
  auto it = tasks_.find(task.id);
  if (it == tasks_.end()) {
    if (!forgotten_.empty()) {
      // Back before its tombstones were written: keep the checkpoint and records.
      forgotten_.erase(task.id);
      forgotten_.erase(task.id + kRunNowSuffix);
    }
    Entry e{ptr,
            parsed ? parsed->Anchored(task.created) : Schedule(),
            task.bounds || task.schedules ? std::make_unique<const FireSpec>(std::move(window)) : nullptr,
            std::nullopt,
            std::nullopt,
            0};
    if (auto r = restored_.find(task.id); r != restored_.end()) {
      e.last_fired = PlausibleCheckpoint(task, r->second, now);
      restored_.erase(r);
    }
    if (!restored_records_.empty()) ClaimRecordLocked(ptr);
    it = tasks_.emplace(std::string_view(ptr->id), std::move(e)).first;
    ScheduleLocked(it->second, now);
  } else {
    const TaskDefinition& old = *it->second.def;
    const bool timing_changed = old.schedule != task.schedule || old.time_zone != task.time_zone ||
                                old.jitter_seconds != task.jitter_seconds || old.created != task.created ||
                                !(old.bounds == task.bounds) || !(old.schedules == task.schedules);
    const bool resumed = old.suspend && !task.suspend;
    if (it->second.def != ptr) {
      // Equal or not: share the caller's copy and drop ours. The key views the id in
      // the definition it belongs to, so it moves to the new one (the node itself
      // stays where it is).
      auto node = tasks_.extract(it);
      node.key() = std::string_view(ptr->id);
      node.mapped().def = ptr;
      it = tasks_.insert(std::move(node)).position;
    }
    Entry& e = it->second;
    e.schedule = parsed ? parsed->Anchored(task.created) : Schedule();
    if (timing_changed) {
      e.window = task.bounds || task.schedules ? std::make_unique<const FireSpec>(std::move(window)) : nullptr;
    }
    if (task.suspend) {
      e.next.reset();
      ++e.version;
    } else if (resumed || !e.next || (timing_changed && e.window && e.window->run_at)) {
      ScheduleLocked(e, now);  // from the last fired occurrence: the policy decides about missed ones
    } else if (timing_changed) {
      // A new schedule takes effect at its next occurrence; its past is not caught up.
      Instant from = e.last_fired ? std::max(*e.last_fired, now) : now;
      e.next = Times(e).Next(from);
      if (started_) PushLocked(e);
    }
  }
  cv_.notify_all();
  TaskState state;
  state.next_fire = it->second.next;
  state.last_fire = it->second.last_fired;
  state.complete = CompleteLocked(it->second);
  const bool restored_run = !restored_runs_.empty();
  lock.Unlock();
  if (restored_run) DeliverRestoredRuns();
  return state;
}

void Dispatcher::Remove(const std::string& id) {
  MutexLock lock(mu_);
  tasks_.erase(id);  // heap items become stale; pending occurrences are dropped at fire time
  finished_.erase(id);
  // The handled token stays: a task that comes back must not fire it again. The
  // request is the caller's to repeat once the task is valid.
  if (auto m = manual_.find(id); m != manual_.end()) m->second.requested = RunRequest{};
}

void Dispatcher::Forget(const std::string& id) {
  MutexLock lock(mu_);
  tasks_.erase(id);
  finished_.erase(id);
  restored_.erase(id);
  forgotten_.insert(id);
  const std::string record = id + kRunNowSuffix;
  bool has_record = restored_records_.erase(record) > 0;
  if (auto m = manual_.find(id); m != manual_.end()) {
    has_record = has_record || !m->second.handled.empty() || !m->second.in_flight.empty();
    manual_.erase(m);
  }
  if (has_record) forgotten_.insert(record);
  // The task's backfills go with it: running ones, and records of ones no
  // UpsertBackfill claimed.
  const std::string prefix = id + kBackfillInfix;
  for (auto it = backfills_.begin(); it != backfills_.end();) {
    if (it->second.def.task_id == id) {
      forgotten_.insert(prefix + it->first);
      it = backfills_.erase(it);
    } else {
      ++it;
    }
  }
  for (auto it = restored_records_.begin(); it != restored_records_.end();) {
    if (it->first.rfind(prefix, 0) == 0) {
      forgotten_.insert(it->first);
      it = restored_records_.erase(it);
    } else {
      ++it;
    }
  }
  cv_.notify_all();
}

Result<BackfillState> Dispatcher::UpsertBackfill(const BackfillDefinition& b) {
  if (!(b.from < b.to)) {
    return InvalidArgument("backfill " + b.name + ": from " + FormatRfc3339(b.from) + " is not before to " +
                           FormatRfc3339(b.to));
  }
  // Counting a range may walk 100,001 fire times: it runs on a copy of the task's
  // schedule with the lock released, so firing never waits for it. Should the task
  // change meanwhile, the count is taken again.
  for (int attempt = 0;; ++attempt) {
    DefPtr def;
    Schedule schedule;
    std::unique_ptr<const FireSpec> window;
    {
      MutexLock lock(mu_);
      // Its progress is in a record Start() restores: a state from before would say 0.
      if (!started_) return Unavailable("backfill " + b.name + ": the dispatcher has not restored its checkpoints yet");
      auto task = tasks_.find(b.task_id);
      if (task == tasks_.end()) return NotFound("task " + b.task_id + " is not scheduled");
      if (auto known = backfills_.find(b.id); known != backfills_.end()) {
        return BackfillState{known->second.total, known->second.fired};
      }
      def = task->second.def;
      schedule = task->second.schedule;
      if (task->second.window) window = std::make_unique<const FireSpec>(*task->second.window);
    }
    Backfill bf;
    bf.def = b;
    const Instant created = def->created;
    bf.end = created > Instant{} && created < b.to ? created : b.to;
    // Count the range (bounded): every instant of the task's fire times in [from, end).
    const FireTimes times(schedule, window.get());
    for (auto t = times.Next(b.from - seconds{1}); t && *t < bf.end; t = times.Next(*t)) {
      if (++bf.total > kMaxBackfillOccurrences) {
        return InvalidArgument("TooManyOccurrences: backfill " + b.name + " covers more than " +
                               std::to_string(kMaxBackfillOccurrences) + " occurrences of the task from " +
                               FormatRfc3339(b.from) + " to " + FormatRfc3339(bf.end) + "; split it");
      }
    }
    MutexLock lock(mu_);
    if (!started_) return Unavailable("backfill " + b.name + ": the dispatcher has not restored its checkpoints yet");
    auto task = tasks_.find(b.task_id);
    if (task == tasks_.end()) return NotFound("task " + b.task_id + " is not scheduled");
    if (auto known = backfills_.find(b.id); known != backfills_.end()) {
      return BackfillState{known->second.total, known->second.fired};  // a concurrent upsert of the same one won
    }
    if (task->second.def != def) {
      if (attempt < 3) continue;
      return Unavailable("backfill " + b.name + ": task " + b.task_id + " kept changing while its range was counted");
    }
    // A tombstone of a namesake record not yet committed would delete this one's.
    forgotten_.erase(b.task_id + kBackfillInfix + b.id);
    const double rate = b.per_second > 0 ? b.per_second : 1;
    bf.rate = std::make_unique<RateLimiter>(clock_, rate, std::max(1, static_cast<int>(rate)));
    ClaimBackfillRecordLocked(bf);
    BackfillState state{bf.total, bf.fired};
    backfills_.emplace(b.id, std::move(bf));
    cv_.notify_all();
    return state;
  }
}

void Dispatcher::ForgetBackfill(const std::string& id) {
  MutexLock lock(mu_);
  if (auto it = backfills_.find(id); it != backfills_.end()) {
    forgotten_.insert(it->second.def.task_id + kBackfillInfix + id);
    backfills_.erase(it);
  }
  // A restored record nothing claimed (a complete Backfill): "<task uid>/backfill/<id>".
  const std::string suffix = kBackfillInfix + id;
  for (auto it = restored_records_.begin(); it != restored_records_.end();) {
    if (it->first.size() > suffix.size() && it->first.ends_with(suffix)) {
      forgotten_.insert(it->first);
      it = restored_records_.erase(it);
    } else {
      ++it;
    }
  }
  cv_.notify_all();
}

std::vector<std::string> Dispatcher::UnclaimedBackfills() const {
  MutexLock lock(mu_);
  std::vector<std::string> out;
  for (const auto& [key, v] : restored_records_) {
    if (auto at = key.find(kBackfillInfix); at != std::string::npos) {
      out.push_back(key.substr(at + std::string_view(kBackfillInfix).size()));
    }
  }
  return out;
}

void Dispatcher::ClaimBackfillRecordLocked(Backfill& b) {
  auto r = restored_records_.find(b.def.task_id + kBackfillInfix + b.def.id);
  if (r == restored_records_.end()) return;
  // "<cursor unix> <fired> <total>"
  int64_t cursor = 0, fired = 0, total = 0;
  std::istringstream in(r->second);
  if (in >> cursor >> fired >> total && fired >= 0) {
    b.cursor = Instant{seconds{cursor}};
    b.fired = std::min(fired, b.total);
  } else {
    spdlog::warn("backfill {}: record {:?} is not \"<cursor> <fired> <total>\": ignored", b.def.name, r->second);
  }
  restored_records_.erase(r);
}

std::optional<Instant> Dispatcher::NextBackfillInstant(const Backfill& b, const Entry& task,
                                                       std::optional<Instant> cursor) const {
  const FireTimes times = Times(task);
  std::optional<Instant> t;
  if (b.def.newest_first) {
    t = times.Prev((cursor ? *cursor : b.end) - seconds{1});
    if (t && *t < b.def.from) t.reset();
  } else {
    t = times.Next(cursor ? *cursor : b.def.from - seconds{1});
    if (t && *t >= b.end) t.reset();
  }
  return t;
}

bool Dispatcher::BackfillWaitingLocked() const {
  for (const auto& [id, b] : backfills_) {
    if (!b.in_flight && b.fired < b.total && tasks_.count(b.def.task_id) != 0) return true;
  }
  return false;
}

void Dispatcher::TakeBackfillsLocked(size_t room, std::vector<BackfillOccurrence>& out,
                                     std::vector<std::pair<BackfillDefinition, BackfillState>>& shrunk) {
  for (auto& [id, b] : backfills_) {
    if (room == 0) return;
    if (b.in_flight || b.fired >= b.total) continue;
    auto task = tasks_.find(b.def.task_id);
    if (task == tasks_.end()) continue;  // refused (invalid spec) for now: it waits
    std::optional<Instant> cursor = b.cursor;
    int64_t fired = b.fired;
    while (room > 0 && fired < b.total) {
      auto t = NextBackfillInstant(b, task->second, cursor);
      if (!t) {
        b.total = fired;  // the task's times changed under it: nothing more in range
        if (fired == b.fired) shrunk.push_back({b.def, BackfillState{b.total, b.fired}});  // no commit will say so
        break;
      }
      if (!b.rate->TryAcquire()) break;
      out.push_back({id, task->second.def, *t});
      cursor = t;
      ++fired;
      --room;
    }
    if (fired != b.fired) {
      b.in_flight = true;
      b.next_cursor = cursor;
      b.next_fired = fired;
    }
  }
}

void Dispatcher::ClaimRecordLocked(const DefPtr& def) {
  const std::string& id = def->id;
  auto r = restored_records_.find(id + kRunNowSuffix);
  if (r == restored_records_.end()) return;
  if (auto rec = ParseRunNowRecord(r->second)) {
    Manual& m = manual_[id];
    m.handled = rec->token;
    if (rec->fired) m.running = rec->at;  // until its result says otherwise (Forbid)
    if (observer_ != nullptr) {
      restored_runs_.push_back({def, rec->token, rec->at, rec->fired ? RunNowResult::kFired : RunNowResult::kSkipped});
    }
  } else {
    spdlog::warn("task {}: run-now record {:?} is not \"<unix> <Fired|Skipped> <token>\": ignored", id, r->second);
  }
  restored_records_.erase(r);
}

void Dispatcher::DeliverRestoredRuns() {
  std::vector<RestoredRun> runs;
  {
    MutexLock lock(mu_);
    runs.swap(restored_runs_);
  }
  for (const auto& r : runs) observer_->OnRunNowRestored(*r.def, r.token, r.at, r.result);
}

std::vector<std::string> Dispatcher::UnclaimedCheckpoints() const {
  MutexLock lock(mu_);
  std::vector<std::string> out;
  out.reserve(restored_.size());
  for (const auto& [id, v] : restored_) out.push_back(id);
  for (const auto& [key, v] : restored_records_) {
    // A task with a record and no checkpoint (run by hand, never fired on schedule).
    if (std::string owner(CheckpointOwner(key)); restored_.count(owner) == 0) out.push_back(std::move(owner));
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

Status Dispatcher::RequestRun(const std::string& id, const RunRequest& request) {
  if (!ValidRunToken(request.token)) {
    return InvalidArgument("\"" + request.token + "\" is not a run-now token: " + kRunTokenRule);
  }
  MutexLock lock(mu_);
  auto it = tasks_.find(id);
  if (it == tasks_.end()) return NotFound("task " + id + " is not scheduled");
  Manual& m = manual_[id];
  if (m.requested == request) return Status::Ok();
  m.requested = request;
  if (started_) DecideRunLocked(it->second, m, Now());
  cv_.notify_all();
  return Status::Ok();
}

void Dispatcher::DecideRunLocked(const Entry& e, Manual& m, Instant now) {
  const std::string& token = m.requested.token;
  if (token.empty() || token == m.handled || token == m.in_flight || !m.in_flight.empty()) return;
  Trigger trigger = Trigger::kManual;
  bool replaces = false;
  if (e.def->concurrency == ConcurrencyPolicy::kForbid && !m.requested.force && RunningLocked(e, now)) {
    trigger = Trigger::kManualSkipped;
  } else {
    replaces = e.def->concurrency == ConcurrencyPolicy::kReplace && !options_.control_topic.empty() &&
               RunningLocked(e, now).has_value();
    m.running = now;
  }
  m.in_flight = token;
  // Ahead of scheduled occurrences: a person is waiting for it.
  pending_.push_front({e.def->id, now, now, trigger, replaces});
}

void Dispatcher::OnManualFinished(const std::string& id, const std::string& token) {
  MutexLock lock(mu_);
  auto m = manual_.find(id);
  if (m != manual_.end() && m->second.running && token == m->second.handled) m->second.running.reset();
}

Result<TaskState> Dispatcher::State(const std::string& id) const {
  MutexLock lock(mu_);
  auto it = tasks_.find(id);
  if (it == tasks_.end()) return NotFound("task " + id + " is not scheduled");
  return TaskState{it->second.next, it->second.last_fired};
}

std::optional<Instant> Dispatcher::NextDue() const {
  MutexLock lock(mu_);
  if (heap_.empty()) return std::nullopt;
  return heap_.top().fire_at;
}

std::map<std::string, NamespaceCounts> Dispatcher::CountsByNamespace() const {
  MutexLock lock(mu_);
  return by_namespace_;
}

DispatcherStats Dispatcher::Stats() const {
  MutexLock lock(mu_);
  DispatcherStats s = stats_;
  s.tasks = tasks_.size();
  s.pending = pending_.size() + held_.size();
  return s;
}

std::vector<Instant> Dispatcher::ApplyPolicyLocked(const Entry& e, const std::vector<Instant>& occ, Instant now,
                                                   size_t dropped, std::optional<Instant> dropped_first) {
  std::vector<Instant> fire;
  std::vector<Instant> late;
  std::vector<Instant> expired;  // past startingDeadlineSeconds
  for (Instant t : occ) {
    Instant fire_at = t + JitterFor(e.def->id, t, Times(e).JitterSeconds(t, e.def->jitter_seconds));
    // The deadline counts from the jittered fire time: jitter larger than the
    // deadline must not make occurrences expire before they were due.
    if (e.def->starting_deadline_seconds && now - fire_at > seconds{*e.def->starting_deadline_seconds}) {
      expired.push_back(t);
    } else if (now - fire_at > options_.late_threshold) {
      late.push_back(t);
    } else {
      fire.push_back(t);
    }
  }
  std::vector<Instant> skipped = expired;
  std::string reason = "MissedSchedule";
  std::string why = expired.empty() ? "" : "past startingDeadlineSeconds";
  if (!late.empty()) {
    switch (e.def->catch_up) {
      case CatchUpPolicy::kNone:
        skipped.insert(skipped.end(), late.begin(), late.end());
        why = "catchUpPolicy None";
        break;
      case CatchUpPolicy::kLatest:
        if (fire.empty()) {
          fire.insert(fire.begin(), late.back());
          skipped.insert(skipped.end(), late.begin(), late.end() - 1);
        } else {
          skipped.insert(skipped.end(), late.begin(), late.end());
        }
        why = "catchUpPolicy Latest fires only the most recent missed occurrence";
        break;
      case CatchUpPolicy::kAll: {
        size_t keep = std::min(late.size(), static_cast<size_t>(std::max(1, e.def->max_catch_up)));
        if (keep < late.size()) {
          skipped.insert(skipped.end(), late.begin(), late.end() - static_cast<std::ptrdiff_t>(keep));
          reason = "TooManyMissed";
          why = "more than maxCatchUp=" + std::to_string(e.def->max_catch_up) + " missed occurrences";
        }
        fire.insert(fire.begin(), late.end() - static_cast<std::ptrdiff_t>(keep), late.end());
        break;
      }
    }
  }
  if (dropped > 0) {
    reason = "TooManyMissed";
    why = "more than maxCatchUp=" + std::to_string(e.def->max_catch_up) + " missed occurrences";
  }
  if (!skipped.empty() || dropped > 0) {
    std::sort(skipped.begin(), skipped.end());
    const size_t total = skipped.size() + dropped;
    const Instant first = dropped_first ? *dropped_first : skipped.front();
    const Instant last = skipped.empty() ? *dropped_first : skipped.back();
    stats_.skipped += total;
    by_namespace_[e.def->ns].skipped += total;
    if (observer_ != nullptr) {
      skips_.push_back({e.def, static_cast<int>(total), first, last, reason,
                        std::string(dropped >= kMaxCountedSkips ? "at least " : "") + std::to_string(total) +
                            " occurrence(s) from " + FormatRfc3339(first) + " to " + FormatRfc3339(last) +
                            " not fired: " + why});
    }
  }
  std::sort(fire.begin(), fire.end());
  return fire;
}

std::optional<Instant> Dispatcher::RunningLocked(const Entry& e, Instant now) {
  std::optional<Instant> running = e.started;
  if (!running || (e.last_fired && *e.last_fired > *running)) running = e.last_fired;
  if (running) {
    auto done = finished_.find(e.def->id);
    if (done != finished_.end() && done->second >= *running) running.reset();
  }
  // A run-now occurrence without a result yet (its own result clears it).
  if (auto m = manual_.find(e.def->id); m != manual_.end() && m->second.running) {
    if (!running || *running < *m->second.running) running = m->second.running;
  }
  if (running) {
    // A result may never come (a worker died, results not configured): after the
    // longest the occurrence could run, it no longer blocks the task.
    const RetryPolicy retry{e.def->max_attempts, seconds{e.def->backoff_seconds}, seconds{e.def->timeout_seconds}};
    const seconds limit = retry.LongestRun().value_or(options_.forbid_running_limit);
    if (now - *running >= limit) running.reset();
  }
  return running;
}

std::vector<Instant> Dispatcher::ForbidLocked(Entry& e, std::vector<Instant> fire, Instant now) {
  const std::optional<Instant> running = RunningLocked(e, now);
  std::vector<Instant> skipped;
  if (running) {
    skipped = std::move(fire);
    fire.clear();
  } else if (fire.size() > 1) {
    skipped.assign(fire.begin(), fire.end() - 1);
    fire.erase(fire.begin(), fire.end() - 1);
  }
  if (!skipped.empty()) {
    stats_.skipped += skipped.size();
    by_namespace_[e.def->ns].skipped += skipped.size();
    if (observer_ != nullptr) {
      std::string why = running ? "the occurrence of " + FormatRfc3339(*running) + " has not finished"
                                : "only the latest of several due occurrences runs";
      skips_.push_back(
          {e.def, static_cast<int>(skipped.size()), skipped.front(), skipped.back(), "ConcurrencyForbidden",
           std::to_string(skipped.size()) + " occurrence(s) from " + FormatRfc3339(skipped.front()) + " to " +
               FormatRfc3339(skipped.back()) + " not fired: concurrencyPolicy Forbid and " + why});
    }
  }
  return fire;
}

std::vector<Instant> Dispatcher::ReplaceLocked(Entry& e, std::vector<Instant> fire, Instant now, bool& replaces) {
  replaces = !options_.control_topic.empty() && RunningLocked(e, now).has_value();
  if (fire.size() > 1) {
    const size_t skipped = fire.size() - 1;
    stats_.skipped += skipped;
    by_namespace_[e.def->ns].skipped += skipped;
    if (observer_ != nullptr) {
      skips_.push_back({e.def, static_cast<int>(skipped), fire.front(), fire[skipped - 1], "ConcurrencyReplaced",
                        std::to_string(skipped) + " occurrence(s) from " + FormatRfc3339(fire.front()) + " to " +
                            FormatRfc3339(fire[skipped - 1]) +
                            " not fired: concurrencyPolicy Replace runs only the latest of several due occurrences"});
    }
    fire.erase(fire.begin(), fire.end() - 1);
  }
  return fire;
}

void Dispatcher::OnFinished(const std::string& id, Instant scheduled) {
  MutexLock lock(mu_);
  Instant& f = finished_[id];
  if (f < scheduled) f = scheduled;
}

void Dispatcher::DeliverSkips() {
  std::vector<SkipReport> skips;
  std::vector<std::pair<DefPtr, std::optional<Instant>>> completions;
  {
    MutexLock lock(mu_);
    skips.swap(skips_);
    completions.swap(completions_);
  }
  if (observer_ == nullptr) return;
  for (const auto& r : skips) observer_->OnSkipped(*r.def, r.count, r.first, r.last, r.reason, r.message);
  for (const auto& [def, last] : completions) observer_->OnCompleted(*def, last);
}

size_t Dispatcher::CollectDue(Instant now) {
  size_t added = MoveDueToPending(now);
  DeliverSkips();
  return added;
}

size_t Dispatcher::MoveDueToPending(Instant now) {
  MutexLock lock(mu_);
  size_t added = 0;
  size_t handed = 0;  // occurrences the fire thread has been told about
  while (!heap_.empty() && heap_.top().fire_at <= now) {
    if (added - handed >= options_.max_batch_occurrences) {
      // 100k tasks due in one second: once a whole batch is collected, let the fire
      // thread commit it while the rest are collected, instead of holding the lock
      // for all of them. Not sooner: every Kafka transaction costs round trips, and
      // handing over 2,000 at a time made a 10k burst 4x slower (p99 160 -> 652 ms).
      handed = added;
      cv_.notify_all();
      lock.Unlock();
      std::this_thread::yield();
      lock.Lock();
    }
    HeapItem item = heap_.top();
    heap_.pop();
    auto it = tasks_.find(item.def->id);
    if (it == tasks_.end() || it->second.version != item.version || !it->second.next) continue;
    Entry& e = it->second;
    // Every occurrence from e.next whose fire time has come, capped so a long outage
    // of an every-second task stays cheap; the rest count as skipped.
    // The window holds maxCatchUp late occurrences plus one on time.
    const size_t cap = static_cast<size_t>(std::max(1, e.def->max_catch_up)) + 1;
    Instant t = *e.next;
    size_t beyond_cap = 0;
    std::optional<Instant> first_beyond;
    // After a long outage, jump straight to the last `cap` occurrences instead of
    // walking every missed one (a day of an every-second task is 86,400 steps per
    // task); the ones jumped over are counted up to kMaxCountedSkips.
    {
      const FireTimes times = Times(e);
      std::optional<Instant> back = times.Prev(now);
      size_t steps = 0;
      while (back && *back > t && steps < cap) {
        back = times.Prev(*back - seconds{1});
        ++steps;
      }
      if (steps == cap && back && *back >= t) {
        first_beyond = t;
        for (std::optional<Instant> c = t; c && *c <= *back && beyond_cap < kMaxCountedSkips; c = times.Next(*c)) {
          ++beyond_cap;
        }
        if (auto n = times.Next(*back)) t = *n;
      }
    }
    std::deque<Instant> window;
    std::optional<Instant> latest;
    while (t + JitterFor(e.def->id, t, Times(e).JitterSeconds(t, e.def->jitter_seconds)) <= now) {
      if (window.size() == cap) {
        if (!first_beyond) first_beyond = window.front();
        window.pop_front();
        ++beyond_cap;
      }
      window.push_back(t);
      latest = t;
      auto n = Times(e).Next(t);
      if (!n) break;
      t = *n;
    }
    std::vector<Instant> occ(window.begin(), window.end());
    std::vector<Instant> fire = ApplyPolicyLocked(e, occ, now, beyond_cap, first_beyond);
    bool replaces = false;
    if (e.def->concurrency == ConcurrencyPolicy::kForbid && !fire.empty()) fire = ForbidLocked(e, fire, now);
    if (e.def->concurrency == ConcurrencyPolicy::kReplace && !fire.empty()) {
      fire = ReplaceLocked(e, fire, now, replaces);
    }
    for (Instant f : fire) {
      pending_.push_back({e.def->id, f, f + JitterFor(e.def->id, f, Times(e).JitterSeconds(f, e.def->jitter_seconds)),
                          Trigger::kSchedule, replaces});
      if (!e.started || *e.started < f) e.started = f;
      ++added;
    }
    e.next = latest ? Times(e).Next(*latest) : e.next;
    PushLocked(e);
    // Nothing left and nothing to commit (all skipped): complete now; otherwise
    // once the last occurrence is committed (FireOnce).
    if (fire.empty() && CompleteLocked(e)) completions_.emplace_back(e.def, e.last_fired);
  }
  if (added > 0) cv_.notify_all();
  return added;
}

Status Dispatcher::FireOnce() {
  std::vector<Occurrence> batch;
  std::vector<DefPtr> defs;         // batch[i]'s definition, as the table held it
  std::vector<std::string> tokens;  // batch[i]'s run-now token; empty for scheduled ones
  std::vector<OutMessage> messages;
  std::vector<std::string> tombstones;
  std::vector<BackfillOccurrence> backfill;                          // fills the room live occurrences leave
  std::vector<std::pair<BackfillDefinition, BackfillState>> shrunk;  // done without a commit
  {
    MutexLock lock(mu_);
    ReleaseHeldLocked(Now());
    if (pending_.empty() && forgotten_.empty() && !BackfillWaitingLocked()) return Status::Ok();
    for (auto it = forgotten_.begin(); it != forgotten_.end() && tombstones.size() < options_.max_batch_occurrences;) {
      tombstones.push_back(std::move(forgotten_.extract(it++).value()));
    }
    size_t n = std::min(pending_.size(), options_.max_batch_occurrences);
    batch.reserve(n);
    defs.reserve(n);
    for (size_t i = 0; i < n; ++i) {
      Occurrence& o = pending_[i];
      auto it = tasks_.find(o.task_id);
      const bool manual = o.trigger != Trigger::kSchedule;
      auto m = manual ? manual_.find(o.task_id) : manual_.end();
      if (it == tasks_.end()) {  // deleted or refused since
        if (m != manual_.end()) m->second.in_flight.clear();
        continue;
      }
      if (!manual && it->second.def->suspend) continue;  // suspended since (run now works on a suspended task)
      if (manual && (m == manual_.end() || m->second.in_flight.empty())) continue;
      defs.push_back(it->second.def);
      tokens.push_back(manual ? m->second.in_flight : std::string());
      batch.push_back(std::move(o));
    }
    pending_.erase(pending_.begin(), pending_.begin() + static_cast<std::ptrdiff_t>(n));
    // Live occurrences first: a backfill only fills the room a batch has left,
    // which it has only when it took every pending live occurrence.
    if (batch.size() < options_.max_batch_occurrences) {
      TakeBackfillsLocked(options_.max_batch_occurrences - batch.size(), backfill, shrunk);
    }
  }
  if (!backfill.empty()) {
    // A backfill whose topic is missing waits (its next turn retries).
    std::vector<std::string> topics;
    for (const auto& o : backfill) {
      const std::string& t = o.def->topic.empty() ? options_.default_topic : o.def->topic;
      if (std::find(topics.begin(), topics.end(), t) == topics.end()) topics.push_back(t);
    }
    std::vector<std::string> missing = sink_.MissingTopics(topics);
    if (!missing.empty()) {
      MutexLock lock(mu_);
      std::erase_if(backfill, [&](const BackfillOccurrence& o) REQUIRES(mu_) {
        const std::string& t = o.def->topic.empty() ? options_.default_topic : o.def->topic;
        if (std::find(missing.begin(), missing.end(), t) == missing.end()) return false;
        if (auto b = backfills_.find(o.backfill_id); b != backfills_.end()) b->second.in_flight = false;
        return true;
      });
      // A backfill kept in part would commit a cursor past what it held back.
      std::erase_if(backfill, [&](const BackfillOccurrence& o) REQUIRES(mu_) {
        auto b = backfills_.find(o.backfill_id);
        return b == backfills_.end() || !b->second.in_flight;
      });
    }
  }
  // Occurrences for a topic that does not exist wait aside: in the batch they
  // would fail its transaction, and with it every other task's occurrences.
  if (!batch.empty()) {
    auto topic_of = [&](const TaskDefinition& d) -> const std::string& {
      return d.topic.empty() ? options_.default_topic : d.topic;
    };
    // A batch holds up to 20,000 occurrences of usually a few topics: each distinct
    // topic once, without copying or sorting a name per occurrence.
    std::unordered_set<std::string_view> seen;
    std::vector<std::string> topics;
    for (const auto& d : defs) {
      if (seen.insert(topic_of(*d)).second) topics.push_back(topic_of(*d));
    }
    const std::string& control = options_.control_topic;
    for (const auto& o : batch) {
      if (o.replaces && seen.insert(control).second) topics.push_back(control);
    }
    std::vector<std::string> missing = sink_.MissingTopics(topics);
    if (!missing.empty()) {
      std::vector<Occurrence> kept;
      std::vector<DefPtr> kept_defs;
      std::vector<std::string> kept_tokens;
      size_t held = 0;
      MutexLock lock(mu_);
      for (size_t i = 0; i < batch.size(); ++i) {
        // A skipped run-now record has no message, so no topic to wait for.
        auto is_missing = [&](const std::string& topic) {
          return std::find(missing.begin(), missing.end(), topic) != missing.end();
        };
        if (batch[i].trigger != Trigger::kManualSkipped &&
            (is_missing(topic_of(*defs[i])) || (batch[i].replaces && is_missing(control)))) {
          held_.push_back(std::move(batch[i]));
          ++held;
        } else {
          kept.push_back(std::move(batch[i]));
          kept_defs.push_back(std::move(defs[i]));
          kept_tokens.push_back(std::move(tokens[i]));
        }
      }
      held_until_ = Now() + std::chrono::ceil<std::chrono::seconds>(options_.missing_topic_retry);
      batch.swap(kept);
      defs.swap(kept_defs);
      tokens.swap(kept_tokens);
      if (auto n = missing_topic_log_.Allow()) {
        std::string names;
        for (const auto& t : missing) names += (names.empty() ? "" : ", ") + t;
        spdlog::warn(
            "topic(s) {} do not exist (and could not be created): {} occurrence(s) wait, tried again every "
            "{} ms ({} such batch(es) since the last warning)",
            names, held, options_.missing_topic_retry.count(), *n);
      }
    }
  }
  if (batch.empty() && tombstones.empty() && backfill.empty()) {
    if (observer_ != nullptr) {
      for (const auto& [def, state] : shrunk) observer_->OnBackfillProgress(def, state);
    }
    return Status::Ok();
  }
  // The latest occurrence per task, keyed by the id the definitions hold.
  std::unordered_map<std::string_view, int64_t> checkpoint_values;
  checkpoint_values.reserve(batch.size());
  messages.reserve(batch.size());
  std::vector<Checkpoint> checkpoints;
  size_t fired_count = 0, cancels = 0;
  const std::string now_text = FormatRfc3339(Now());
  for (size_t i = 0; i < batch.size(); ++i) {
    const Occurrence& o = batch[i];
    const TaskDefinition& d = *defs[i];
    if (o.trigger != Trigger::kSchedule) {
      // Run now: the record of its token commits with its messages (or alone, when
      // skipped), so a new leader knows it was handled. The schedule's checkpoint
      // is left alone: catch-up does not see a manual run.
      checkpoints.push_back({d.id, 0, false, kRunNowSuffix, RunNowRecord(o.scheduled, o.trigger, tokens[i])});
      if (o.trigger == Trigger::kManualSkipped) continue;
    }
    ++fired_count;
    const std::string source = options_.event_source ? options_.event_source(d) : DefaultEventSource(d);
    if (o.replaces && !options_.control_topic.empty()) {
      // concurrencyPolicy Replace: the cancel of the running occurrence commits
      // exactly when its replacement does.
      const std::string id =
          tokens[i].empty() ? OccurrenceId(d.id, o.scheduled, 0, 1) : ManualOccurrenceId(d.id, tokens[i], 0, 1);
      const std::string subject = d.ns + "/" + d.name;
      messages.push_back(
          {options_.control_topic, subject, std::string(),
           CancelEventHeaders({id + ":cancel", source, subject, d.id, FormatRfc3339(o.scheduled)}, now_text)});
      ++cancels;
    }
    auto msgs = BuildMessages(d, o.scheduled, o.fire_at - o.scheduled, options_.default_topic, source, tokens[i]);
    messages.insert(messages.end(), std::make_move_iterator(msgs.begin()), std::make_move_iterator(msgs.end()));
    if (o.trigger != Trigger::kSchedule) continue;
    int64_t& cp = checkpoint_values[d.id];
    cp = std::max(cp, o.scheduled.time_since_epoch().count());
  }
  // Backfill occurrences: ids and attributes of their own; each backfill's record
  // (its new cursor) commits with them.
  std::map<std::string, size_t> backfilled;  // backfill id -> occurrences in this batch
  if (!backfill.empty()) {
    std::map<std::string, std::string> records;  // backfill id -> record text
    {
      MutexLock lock(mu_);
      // Forgotten since they were taken: their occurrences do not fire.
      std::erase_if(backfill, [&](const BackfillOccurrence& o) REQUIRES(mu_) {
        auto b = backfills_.find(o.backfill_id);
        return b == backfills_.end() || !b->second.in_flight || !b->second.next_cursor;
      });
      for (const auto& o : backfill) {
        auto b = backfills_.find(o.backfill_id);
        if (records.count(o.backfill_id) != 0) continue;
        records[o.backfill_id] = Unix(*b->second.next_cursor) + " " + std::to_string(b->second.next_fired) + " " +
                                 std::to_string(b->second.total);
      }
    }
    std::map<std::string, std::string> names;
    for (const auto& o : backfill) {
      const TaskDefinition& d = *o.def;
      auto msgs = BuildMessages(d, o.at, seconds{0}, options_.default_topic,
                                options_.event_source ? options_.event_source(d) : DefaultEventSource(d));
      for (size_t shard = 0; shard < msgs.size(); ++shard) {
        for (auto& h : msgs[shard].headers) {
          if (h.name == "ce_id") {
            h.value = BackfillOccurrenceId(d.id, o.backfill_id, o.at, static_cast<int>(shard), d.shards);
          }
        }
        msgs[shard].headers.push_back({"ce_trigger", "backfill"});
      }
      auto [it, added] = names.try_emplace(o.backfill_id);
      if (added) {
        MutexLock lock(mu_);
        if (auto b = backfills_.find(o.backfill_id); b != backfills_.end()) it->second = b->second.def.name;
      }
      for (auto& m : msgs) m.headers.push_back({"ce_backfill", it->second});
      messages.insert(messages.end(), std::make_move_iterator(msgs.begin()), std::make_move_iterator(msgs.end()));
      ++backfilled[o.backfill_id];
    }
    for (const auto& o : backfill) {
      auto r = records.find(o.backfill_id);
      if (r == records.end()) continue;
      checkpoints.push_back({o.def->id, 0, false, kBackfillInfix + o.backfill_id, std::move(r->second)});
      records.erase(r);
    }
  }
  checkpoints.reserve(checkpoints.size() + checkpoint_values.size() + tombstones.size());
  for (const auto& [id, v] : checkpoint_values) checkpoints.push_back({std::string(id), v});
  // Never the same id as a checkpoint above: a forgotten task has no entry, and an
  // Upsert cancels its tombstone (both under mu_). A task forgotten while an
  // earlier batch with its checkpoint commits gets its tombstone after it.
  for (const auto& id : tombstones) checkpoints.push_back({id, 0, true});

  const auto commit_start = clock_.SteadyNow();
  Status s = sink_.Commit(messages, checkpoints);
  commit_duration_.Observe(std::chrono::duration<double>(clock_.SteadyNow() - commit_start).count());
  std::vector<std::pair<DefPtr, std::pair<Instant, std::optional<Instant>>>> fired;
  struct RunNowReport {
    DefPtr def;
    std::string token;
    Instant at;
    RunNowResult result;
    std::string message;
  };
  std::vector<RunNowReport> run_now;
  std::vector<std::pair<BackfillDefinition, BackfillState>> progress;
  {
    MutexLock lock(mu_);
    for (const auto& [id, n] : backfilled) {
      auto b = backfills_.find(id);
      if (b == backfills_.end() || !b->second.in_flight) continue;
      Backfill& bf = b->second;
      bf.in_flight = false;  // failed: the same instants are taken again next time
      if (!s.ok()) continue;
      bf.cursor = bf.next_cursor;
      bf.fired = bf.next_fired;
      stats_.backfilled += n;
      progress.push_back({bf.def, BackfillState{bf.total, bf.fired}});
    }
    if (!s.ok()) {
      ++stats_.commit_failures;
      pending_.insert(pending_.begin(), batch.begin(), batch.end());
      for (auto& id : tombstones) {
        // Unless upserted again since.
        if (tasks_.count(std::string(CheckpointOwner(id))) == 0) forgotten_.insert(std::move(id));
      }
      if (s.code() == StatusCode::kFenced) fenced_ = true;
    } else {
      ++stats_.commits;
      stats_.tombstones += tombstones.size();
      stats_.cancels += cancels;
      stats_.fired += fired_count;
      stats_.messages += messages.size();
      const auto committed = clock_.Now();
      for (const auto& o : batch) {
        if (o.trigger != Trigger::kSchedule) continue;  // fire lag is the schedule's
        fire_lag_.Observe(std::max(0.0, std::chrono::duration<double>(committed - o.fire_at).count()));
      }
      const Instant now = Now();
      for (size_t i = 0; i < batch.size(); ++i) {
        const Occurrence& o = batch[i];
        if (o.trigger != Trigger::kSchedule) {
          if (o.trigger == Trigger::kManual) ++by_namespace_[defs[i]->ns].fired;
          auto m = manual_.find(o.task_id);
          if (m != manual_.end() && m->second.in_flight == tokens[i]) {
            m->second.handled = tokens[i];
            m->second.in_flight.clear();
            auto it = tasks_.find(o.task_id);
            if (it != tasks_.end()) DecideRunLocked(it->second, m->second, now);  // a newer request waits
          }
          run_now.push_back({defs[i], tokens[i], o.scheduled,
                             o.trigger == Trigger::kManual ? RunNowResult::kFired : RunNowResult::kSkipped,
                             o.trigger == Trigger::kManual
                                 ? "fired"
                                 : "not fired: concurrencyPolicy Forbid and an occurrence is still running (set "
                                   "cronlane.dev/run-now-force to run it anyway)"});
          continue;
        }
        auto it = tasks_.find(o.task_id);
        if (it == tasks_.end()) continue;
        Entry& e = it->second;
        ++by_namespace_[e.def->ns].fired;
        if (!e.last_fired || *e.last_fired < o.scheduled) e.last_fired = o.scheduled;
        fired.push_back({e.def, {o.scheduled, e.next}});
        if (e.last_fired == o.scheduled && CompleteLocked(e)) completions_.emplace_back(e.def, e.last_fired);
      }
      if (!run_now.empty()) cv_.notify_all();
    }
  }
  if (!s.ok()) {
    if (fenced_ && observer_ != nullptr) observer_->OnFenced(s.message());
    return s;
  }
  if (observer_ != nullptr) {
    for (const auto& [def, t] : fired) observer_->OnFired(*def, t.first, t.second);
    for (const auto& r : run_now) observer_->OnRunNow(*r.def, r.token, r.at, r.result, r.message);
    for (const auto& [def, state] : progress) observer_->OnBackfillProgress(def, state);
    for (const auto& [def, state] : shrunk) observer_->OnBackfillProgress(def, state);
  }
  DeliverSkips();  // completions of tasks whose last occurrence this commit fired
  return Status::Ok();
}

void Dispatcher::ReapplyPoliciesLocked() {
  std::map<std::string, std::vector<Instant>> by_task;
  std::set<std::pair<std::string_view, Instant>> replacing;  // keep concurrencyPolicy Replace's decision
  std::deque<Occurrence> manual;  // run-now occurrences: no catch-up policy applies, they stay first
  for (auto& o : pending_) {
    if (o.trigger == Trigger::kSchedule) {
      by_task[o.task_id].push_back(o.scheduled);
      if (o.replaces) replacing.emplace(by_task.find(o.task_id)->first, o.scheduled);
    } else {
      manual.push_back(std::move(o));
    }
  }
  std::deque<Occurrence> rebuilt;
  Instant now = Now();
  for (auto& [id, occ] : by_task) {
    auto it = tasks_.find(id);
    if (it == tasks_.end()) continue;
    for (Instant f : ApplyPolicyLocked(it->second, occ, now)) {
      rebuilt.push_back({id, f,
                         f + JitterFor(id, f, Times(it->second).JitterSeconds(f, it->second.def->jitter_seconds)),
                         Trigger::kSchedule, replacing.count({id, f}) != 0});
    }
  }
  std::sort(rebuilt.begin(), rebuilt.end(),
            [](const Occurrence& a, const Occurrence& b) { return a.scheduled < b.scheduled; });
  rebuilt.insert(rebuilt.begin(), std::make_move_iterator(manual.begin()), std::make_move_iterator(manual.end()));
  pending_.swap(rebuilt);
}

bool Dispatcher::ReleaseHeldLocked(Instant now) {
  if (held_.empty() || now < held_until_) return false;
  pending_.insert(pending_.begin(), std::make_move_iterator(held_.begin()), std::make_move_iterator(held_.end()));
  held_.clear();
  ReapplyPoliciesLocked();
  return true;
}

void Dispatcher::Run(CancelToken& cancel) {
  int reg = cancel.Register([this] {
    MutexLock lock(mu_);
    cv_.notify_all();
  });
  std::thread timer([&] {
    while (!cancel.cancelled()) {
      CollectDue(Now());
      MutexLock lock(mu_);
      if (fenced_) break;
      auto wake = std::chrono::milliseconds(200);
      if (!heap_.empty()) {
        auto until = std::chrono::duration_cast<std::chrono::milliseconds>(heap_.top().fire_at - clock_.Now());
        // Wake exactly at the second boundary the next occurrence is due at.
        wake = std::clamp(until, std::chrono::milliseconds(0), wake);
      }
      if (wake.count() > 0) cv_.wait_for(lock.native(), wake);
    }
  });
  Backoff backoff({options_.retry_backoff, options_.max_retry_backoff});
  while (!cancel.cancelled()) {
    {
      MutexLock lock(mu_);
      if (fenced_) break;
      cv_.wait_for(lock.native(), std::chrono::milliseconds(200),
                   [&]() REQUIRES(mu_) { return !pending_.empty() || !forgotten_.empty() || cancel.cancelled(); });
      // Held occurrences go back to pending_ in FireOnce once their retry is due.
      if (pending_.empty() && forgotten_.empty() && held_.empty() && !BackfillWaitingLocked()) continue;
    }
    Status s = FireOnce();
    if (s.ok()) {
      backoff.Reset();
      continue;
    }
    if (s.code() == StatusCode::kFenced) break;
    // Before retrying, apply the catch-up policies to what is now late.
    {
      MutexLock lock(mu_);
      ReapplyPoliciesLocked();
    }
    DeliverSkips();
    if (cancel.WaitFor(backoff.Next())) break;
  }
  {
    MutexLock lock(mu_);
    cv_.notify_all();
  }
  if (fenced_) cancel.Cancel();
  timer.join();
  cancel.Unregister(reg);
}

}  // namespace cronlane::dispatcher
