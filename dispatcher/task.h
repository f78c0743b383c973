#pragma once
// What the operator hands the dispatcher: task definitions, and the small interface
// it feeds them through. No Kubernetes types here.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"
#include "dispatcher/cron.h"
#include "dispatcher/fire_times.h"

namespace cronlane::dispatcher {

enum class CatchUpPolicy { kLatest, kAll, kNone };

// A shared immutable value compared by value (null equals only null): a part of a
// definition that almost no task has costs 16 bytes, not its size.
template <class T>
class SharedValue {
 public:
  SharedValue() = default;
  SharedValue(T v) : p_(std::make_shared<const T>(std::move(v))) {}  // NOLINT(google-explicit-constructor)
  explicit operator bool() const { return p_ != nullptr; }
  const T& operator*() const { return *p_; }
  const T* operator->() const { return p_.get(); }
  bool operator==(const SharedValue& o) const { return p_ == o.p_ || (p_ && o.p_ && *p_ == *o.p_); }

 private:
  std::shared_ptr<const T> p_;
};

// spec.target.key and spec.target.headers: most tasks set neither.
struct MessageExtras {
  std::string key;  // "" = namespace/name
  std::vector<std::pair<std::string, std::string>> headers;

  bool operator==(const MessageExtras&) const = default;
};

// One entry of spec.schedules.
struct ScheduleEntry {
  std::string schedule;
  int jitter_seconds = -1;  // -1: the task's jitterSeconds

  bool operator==(const ScheduleEntry&) const = default;
};

// spec.runAt, spec.startTime and spec.endTime as written ("" when unset): the
// dispatcher parses them (ParseSpecTime, in the task's zone).
struct TimeBounds {
  std::string run_at;      // fire once at this time, instead of a schedule
  std::string start_time;  // the schedule fires at or after (inclusive)
  std::string end_time;    // and before (exclusive)

  bool operator==(const TimeBounds&) const = default;
};
// Replace: an occurrence due while the previous one runs cancels it
// (DispatcherOptions::control_topic, common/cloudevent.h CancelEvent).
enum class ConcurrencyPolicy { kAllow, kForbid, kReplace };

struct TaskDefinition {
  std::string id;  // stable unique id: the ScheduledTask's UID
  std::string ns;  // namespace/name, for keys, sources and logs
  std::string name;
  int64_t generation = 0;
  Instant created{};  // anchor of "@every" schedules
  std::string schedule;
  std::string time_zone;  // "" = UTC
  bool suspend = false;
  std::optional<int64_t> starting_deadline_seconds;
  CatchUpPolicy catch_up = CatchUpPolicy::kLatest;
  int max_catch_up = 100;
  ConcurrencyPolicy concurrency = ConcurrencyPolicy::kAllow;
  int jitter_seconds = 0;
  std::string topic;                   // "" = the operator's default topic
  SharedValue<MessageExtras> message;  // key and headers; null when neither is set (memory per task)
  std::string payload_json = "null";
  int shards = 1;
  int timeout_seconds = 0;
  int max_attempts = 1;
  int backoff_seconds = 10;
  SharedValue<TimeBounds> bounds;  // null: an unbounded schedule (almost every task)
  // spec.schedules, instead of `schedule`: fires at the union of the entries.
  SharedValue<std::vector<ScheduleEntry>> schedules;

  bool operator==(const TaskDefinition&) const = default;

  // spec.target.key ("" = namespace/name) and spec.target.headers.
  const std::string& key() const;
  const std::vector<std::pair<std::string, std::string>>& headers() const;
};

// Why a task cannot be scheduled: a CamelCase condition `reason`
// (InvalidSchedule, UnknownTimeZone, InvalidTarget, PayloadTooLarge, InvalidSpec), the `field`
// at fault ("spec.schedule"), and what is wrong with it (`detail`, without the
// field). Callers place the field themselves (a condition message, a line of a
// file); nobody parses it out of a message.
struct TaskProblem {
  std::string reason;
  std::string field;
  std::string detail;
  std::string item;  // the entry of a map field at fault (a header's name), or ""

  // "field: detail", as a condition message or an Event says it.
  std::string Message() const { return field + ": " + detail; }
};

// Whether a header name is reserved for the CloudEvent the dispatcher writes
// (ce_* attributes and content-type, in any case): a task may not set it, so
// workers can trust those attributes.
bool IsReservedHeader(std::string_view name);

// Everything that keeps the dispatcher from firing the task, one problem per field
// (one per reserved header); empty when it can fire. The schedule is checked in
// UTC when the zone is the problem, so the two are reported independently.
// `cronlane validate` runs the same checks on files. The schedule is parsed once:
// when `schedule` is given and nothing is wrong, it receives the parsed schedule
// (not yet anchored; none for a runAt task), so a caller that goes on to fire the
// task does not parse again; `window` likewise receives its parsed bounds.
std::vector<TaskProblem> TaskProblems(const TaskDefinition& task, std::optional<Schedule>* schedule = nullptr,
                                      FireSpec* window = nullptr);
// The first of TaskProblems(), or nullopt.
std::optional<TaskProblem> CheckTask(const TaskDefinition& task);

// The task's fire times strictly after `after` and before `before` (none: no
// end), at most `max`, exactly as the dispatcher fires them (nominal times,
// before jitter); `cronlane next`, `cronlane status` and the console list them. InvalidArgument
// "FIELD: DETAIL" for the first problem TaskProblems finds.
Result<std::vector<Instant>> TaskFireTimes(const TaskDefinition& task, Instant after, std::optional<Instant> before,
                                           size_t max);

// Definitions are shared, immutable: the operator's cache, the dispatcher's table
// and fire batches hold the same one instead of copies.
using TaskDefinitionPtr = std::shared_ptr<const TaskDefinition>;

// What the dispatcher reports back about a task.
struct TaskState {
  std::optional<Instant> next_fire;  // none when suspended or never firing again
  std::optional<Instant> last_fire;  // scheduled time of the last fired occurrence
  // Set by an Upsert that refused the task (the first of TaskProblems()).
  std::optional<TaskProblem> problem;
  // A one-shot (runAt) or bounded (endTime) task with nothing left to fire.
  bool complete = false;
};

// A request to fire a task once, now, besides its schedule (the
// cronlane.dev/run-now annotation). `token` names the request: each token fires at
// most once. `force` ignores concurrencyPolicy Forbid.
struct RunRequest {
  std::string token;
  bool force = false;

  bool operator==(const RunRequest&) const = default;
};

// Whether `token` may name a run request: 1 to 63 of [A-Za-z0-9._-], starting with
// a letter or digit (it becomes part of the occurrence's ce_id).
bool ValidRunToken(std::string_view token);
// What ValidRunToken() asks for, in words: every refusal (operator, validate,
// trigger) says the same.
inline constexpr const char* kRunTokenRule =
    "1 to 63 letters, digits, '.', '_' or '-', starting with a letter or digit";

// A backfill: every occurrence of a task's fire times in [from, to) fired now, at
// most `per_second`, once per backfill across restarts and leaders, with ids of
// their own (BackfillOccurrenceId). Instants from the task's creation on belong to
// its live schedule and are left out. No catch-up, deadline, jitter or
// concurrencyPolicy applies (as Temporal's backfills run AllowAll).
struct BackfillDefinition {
  std::string id;       // the Backfill's UID
  std::string task_id;  // the task's UID
  std::string name;     // "namespace/name" of the Backfill: the ce_backfill attribute
  Instant from{};       // inclusive
  Instant to{};         // exclusive
  double per_second = 10;
  bool newest_first = false;

  bool operator==(const BackfillDefinition&) const = default;
};
struct BackfillState {
  int64_t total = 0;  // occurrences in the range
  int64_t fired = 0;  // committed so far
  bool done() const { return fired >= total; }
};
// A backfill of more occurrences is refused (TooManyOccurrences).
inline constexpr int64_t kMaxBackfillOccurrences = 100000;

// The operator's handle on the dispatcher. Implementations are thread-safe.
class TaskSink {
 public:
  virtual ~TaskSink() = default;
  // Adds or replaces a task (keyed by id). A task TaskProblems() refuses is not
  // scheduled: the call succeeds with `problem` set and no fire times, and any
  // previous version is removed (the caller reports the problem; it need not check
  // the task itself first, which would parse its schedule twice). Errors are for
  // the sink's own failures. The sink keeps `task` itself (never null), not a copy.
  virtual Result<TaskState> Upsert(TaskDefinitionPtr task) = 0;
  // The same with a copy of `task`.
  Result<TaskState> Upsert(const TaskDefinition& task) { return Upsert(std::make_shared<const TaskDefinition>(task)); }
  // Stops firing a task. Unknown ids are ignored. Its checkpoint stays: a task
  // that comes back (valid again) resumes after it.
  virtual void Remove(const std::string& id) = 0;
  // The task is gone for good (deleted; its id, the object's UID, never returns):
  // stops firing it and deletes its checkpoint, so the checkpoint topic follows the
  // live tasks. Unknown ids are forgotten too (a checkpoint left by a task deleted
  // while no operator ran).
  virtual void Forget(const std::string& id) = 0;
  // Current state of a task, NotFound when unknown.
  virtual Result<TaskState> State(const std::string& id) const = 0;
  // Fires one extra occurrence of the upserted task `id` now, once per token across
  // restarts and leaders: a token equal to the last one handled (its record is
  // committed with the run) or to the one in flight changes nothing, so every
  // reconcile may repeat the call. A newer token fires after the one in flight.
  // NotFound when the task is not scheduled (never upserted, or refused);
  // InvalidArgument for a token ValidRunToken() refuses. Works on a suspended task.
  virtual Status RequestRun(const std::string& id, const RunRequest& request) = 0;
  // Starts (or keeps) backfill `b.id` of the upserted task `b.task_id`; repeating the
  // call changes nothing (a backfill's range is fixed) and returns its progress.
  // Unavailable until the sink has restored its checkpoints (the progress of a
  // backfill a previous leader ran is in them): try again. NotFound when the task is
  // not scheduled; InvalidArgument when the range is empty or holds more than
  // kMaxBackfillOccurrences (the message starts with "TooManyOccurrences").
  virtual Result<BackfillState> UpsertBackfill(const BackfillDefinition& b) {
    (void)b;
    return FailedPrecondition("backfills are not supported by this sink");
  }
  // The backfill is gone (deleted, or its task was): it stops, and its record goes
  // (also a restored record no UpsertBackfill claimed). Unknown ids are ignored.
  virtual void ForgetBackfill(const std::string& id) { (void)id; }
};

}  // namespace cronlane::dispatcher
