#pragma once
// The record a worker writes to the results topic when an occurrence (one shard of
// it) finished, and the operator reads back for status.lastSuccessfulTime and
// concurrencyPolicy Forbid. JSON, keyed by the task's namespace/name:
//   {"id": "<uid>:<unix>[:<shard>]", "subject": "ns/name", "time": "<scheduled RFC 3339>",
//    "outcome": "Succeeded"|"Failed", "attempts": 2, "durationMs": 812,
//    "shardIndex": 0, "shardCount": 1}

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace cronlane {

struct TaskResult {
  std::string id;       // the occurrence's ce_id
  std::string subject;  // namespace/name
  std::string time;     // the occurrence's scheduled time (ce_time)
  bool succeeded = false;
  int attempts = 0;
  int64_t duration_ms = 0;
  int shard_index = 0;
  int shard_count = 1;

  // The task's UID: the id up to its first ':'.
  std::string TaskId() const { return id.substr(0, id.find(':')); }
};

std::string EncodeTaskResult(const TaskResult& r);
// InvalidArgument for anything but a JSON object with id, subject, time and outcome.
Result<TaskResult> DecodeTaskResult(std::string_view json);

}  // namespace cronlane
