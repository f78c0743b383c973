#pragma once
// Decoding a fired task from a Kafka message (CloudEvents 1.0, Kafka protocol
// binding, binary mode), as cronlane's dispatcher writes it, and the cancel event
// of concurrencyPolicy Replace on the control topic. Shared by the dispatcher and
// workers.

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/kafka.h"
#include "common/occurrence_id.h"
#include "common/status.h"

namespace cronlane {

struct FiredTask {
  std::string id;       // ce_id: unique per occurrence (and shard)
  std::string source;   // ce_source
  std::string type;     // ce_type
  std::string time;     // ce_time: the scheduled time, RFC 3339
  std::string subject;  // ce_subject: namespace/name
  std::string key;      // Kafka key
  std::string payload;  // the value (JSON)
  int shard_index = 0;
  int shard_count = 1;
  int max_attempts = 1;
  int backoff_seconds = 10;
  int timeout_seconds = 0;             // 0 = the worker's default
  std::vector<kafka::Header> headers;  // every header as received, in order

  // The task's UID: the id up to its first ':'.
  std::string TaskId() const { return std::string(TaskIdOf(id)); }
  // The first header of that name, if any.
  std::optional<std::string_view> Header(std::string_view name) const { return kafka::FindHeader(headers, name); }
};

// InvalidArgument when a required attribute (specversion 1.0, id, source, type) is
// missing or a number is malformed.
Result<FiredTask> DecodeFiredTask(const kafka::Message& m);
// The same, taking the message's value and headers instead of copying them (a
// worker's per-task path); on an error `m` is left as it was.
Result<FiredTask> TakeFiredTask(kafka::Message& m);

// concurrencyPolicy Replace: a CloudEvent on the control topic, committed in the
// same transaction as the occurrence that replaces the running one. Every
// occurrence of task `task_id` whose ce_time is before `before` stops: a worker
// running one stops its command and reports it Cancelled; one not yet started is
// reported Cancelled without running. Headers (binary mode, no data):
//   ce_specversion 1.0, ce_type dev.cronlane.task.cancel, ce_id <new ce_id>:cancel,
//   ce_source, ce_time <now>, ce_subject <ns>/<name>,
//   ce_canceltask <task UID>, ce_cancelbefore <ce_time of the new occurrence>.
inline constexpr const char* kCancelEventType = "dev.cronlane.task.cancel";
struct CancelEvent {
  std::string id;       // ce_id
  std::string source;   // ce_source
  std::string subject;  // ce_subject: namespace/name
  std::string task_id;  // ce_canceltask: the task's UID
  std::string before;   // ce_cancelbefore: RFC 3339
};
std::vector<kafka::Header> CancelEventHeaders(const CancelEvent& e, const std::string& time);
// InvalidArgument when `m` is not a cancel event or lacks one of its attributes.
Result<CancelEvent> DecodeCancelEvent(const kafka::Message& m);

}  // namespace cronlane
