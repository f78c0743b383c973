#pragma once
// The ScheduledTask as the operator caches it: typed and trimmed (no JSON DOM, no
// managedFields), with conversions from the API object and to a status patch.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/time.h"
#include "dispatcher/task.h"
#include "operator/kube/client.h"
#include "operator/object_fields.h"
#include "operator/run_history.h"

namespace cronlane::op {

// Also the CloudEvents source of every fired occurrence: kScheduledTasks.Path(ns, name).
inline const kube::ResourceRef kScheduledTasks{"cronlane.dev", "v1alpha1", "scheduledtasks"};
inline constexpr const char* kScheduledTaskApiVersion = "cronlane.dev/v1alpha1";
// Run the task once, now: the value is a token naming the request (each token fires
// at most once), e.g. `kubectl annotate st/x cronlane.dev/run-now=$(date +%s)`.
inline constexpr const char* kRunNowAnnotation = "cronlane.dev/run-now";
// "true": the run-now request ignores concurrencyPolicy Forbid.
inline constexpr const char* kRunNowForceAnnotation = "cronlane.dev/run-now-force";
// The condition a finished one-shot or bounded task carries (operator/object_fields.h
// kConditionComplete) is what ttlSecondsAfterFinished counts from.

struct TaskStatus {
  int64_t observed_generation = 0;
  SharedConditions conditions;  // interned; null: none
  // Parsed once when decoded (an Instant is 8 bytes; the RFC 3339 string was a
  // heap string per field per task); none when unset or unparsable.
  std::optional<Instant> last_schedule_time;
  std::optional<Instant> next_schedule_time;
  std::optional<Instant> last_successful_time;
  int64_t fired_count = 0;
  int64_t missed_count = 0;
  int32_t shard = -1;  // with --shards: the shard that fires the task; -1 when unset
  // recentRuns and lastFailureTime; null while no worker reported a run.
  SharedRunHistory runs;
  // Compares conditions and runs by value.
  bool operator==(const TaskStatus& o) const;

  const std::vector<Condition>& Conditions() const;  // empty when none
  const Condition* Find(const std::string& type) const;
};

struct ScheduledTask : ObjectMeta {
  // spec.ttlSecondsAfterFinished; -1 when unset (first: it fits in ObjectMeta's
  // tail padding, no bytes per task).
  int32_t ttl_seconds_after_finished = -1;
  // The spec, as the dispatcher takes it; shared with the dispatcher, never null
  // in an object decoded by ScheduledTaskFromJson.
  dispatcher::TaskDefinitionPtr def;
  // The run-now annotations; null when there are none (most tasks: 16 bytes, not a
  // string per task).
  std::shared_ptr<const dispatcher::RunRequest> run_now;
  TaskStatus status;
};

// Decodes an API object; nullopt if it lacks metadata or a spec (never for objects
// the apiserver's schema admitted). With `previous` (the cached object of the same
// key) whose definition is equal, the result shares it.
std::optional<ScheduledTask> ScheduledTaskFromJson(const kube::Json& object, const ScheduledTask* previous = nullptr);

}  // namespace cronlane::op
