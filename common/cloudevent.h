#pragma once
// Decoding a fired task from a Kafka message (CloudEvents 1.0, Kafka protocol
// binding, binary mode), as cronlane's dispatcher writes it. Shared by workers.

#include <map>
#include <string>

#include "common/kafka.h"
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
  int timeout_seconds = 0;                     // 0 = the worker's default
  std::map<std::string, std::string> headers;  // every header as received
};

// InvalidArgument when a required attribute (specversion 1.0, id, source, type) is
// missing or a number is malformed.
Result<FiredTask> DecodeFiredTask(const kafka::Message& m);

}  // namespace cronlane
