#pragma once
// The record a worker writes to the results topic when an occurrence (one shard of
// it) finished, and the operator reads back for status.lastSuccessfulTime and
// concurrencyPolicy Forbid. JSON, keyed by the task's namespace/name:
//   {"id": "<uid>:<unix>[:<shard>]", "subject": "ns/name", "time": "<scheduled RFC 3339>",
//    "outcome": "Succeeded"|"Failed"|"Cancelled", "attempts": 2, "durationMs": 812,
//    "shardIndex": 0, "shardCount": 1, "deadLettered": true}
// deadLettered is written only when true (the worker also wrote the message to its
// dead-letter topic). Readers take an outcome they do not know as Failed, and
// ignore fields they do not know.

#include <cstdint>
#include <string>
#include <string_view>

#include "common/occurrence_id.h"
#include "common/status.h"

namespace cronlane {

// How an occurrence (or one shard of it) ended on a worker.
enum class RunOutcome : uint8_t { kSucceeded, kFailed, kCancelled };
// "Succeeded", "Failed", "Cancelled".
const char* RunOutcomeName(RunOutcome o);
// The inverse; a name it does not know is kFailed.
RunOutcome ParseRunOutcome(std::string_view name);

struct TaskResult {
  std::string id;       // the occurrence's ce_id
  std::string subject;  // namespace/name
  std::string time;     // the occurrence's scheduled time (ce_time)
  RunOutcome outcome = RunOutcome::kFailed;
  int attempts = 0;
  int64_t duration_ms = 0;
  int shard_index = 0;
  int shard_count = 1;
  bool dead_lettered = false;  // the message went to the worker's dead-letter topic

  bool succeeded() const { return outcome == RunOutcome::kSucceeded; }

  // The task's UID: the id up to its first ':'.
  std::string TaskId() const { return std::string(TaskIdOf(id)); }
};

std::string EncodeTaskResult(const TaskResult& r);
// InvalidArgument for anything but a JSON object with id, subject, time and outcome.
Result<TaskResult> DecodeTaskResult(std::string_view json);

}  // namespace cronlane
