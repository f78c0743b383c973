// libFuzzer target for the workers' CloudEvent decoders (common/cloudevent.h). The
// input is split into Kafka headers ("name=value" lines up to an empty line) and
// the message value. Any crash, sanitizer report or broken invariant is a bug.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/cloudevent.h"
#include "common/task_result.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in(reinterpret_cast<const char*>(data), size);
  cronlane::kafka::Message m;
  m.topic = "fuzz";
  while (!in.empty()) {
    const size_t nl = in.find('\n');
    std::string_view line = in.substr(0, nl);
    in = nl == std::string_view::npos ? std::string_view() : in.substr(nl + 1);
    if (line.empty()) break;
    if (line == "key") {
      m.key = std::string(line);
      continue;
    }
    const size_t eq = line.find('=');
    m.headers.push_back({std::string(line.substr(0, eq)),
                         eq == std::string_view::npos ? std::string() : std::string(line.substr(eq + 1))});
  }
  m.value = std::string(in);
  // The control topic's cancel events (concurrencyPolicy Replace) come from the same bytes.
  if (auto c = cronlane::DecodeCancelEvent(m); c.ok()) {
    if (c->id.empty() || c->task_id.empty() || c->before.empty()) __builtin_trap();
  } else if (c.status().message().empty()) {
    __builtin_trap();
  }
  auto t = cronlane::DecodeFiredTask(m);
  if (!t.ok()) {
    if (t.status().message().empty()) __builtin_trap();  // every refusal says why
    return 0;
  }
  // What a worker relies on once a message is accepted.
  if (t->id.empty() || t->source.empty() || t->type.empty()) __builtin_trap();
  if (t->shard_count < 1 || t->shard_index < 0 || t->shard_index >= t->shard_count) __builtin_trap();
  if (t->max_attempts < 1 || t->backoff_seconds < 0 || t->timeout_seconds < 0) __builtin_trap();
  if (t->payload != m.value) __builtin_trap();
  // The worker records the outcome under the event's own attributes, whatever bytes
  // they hold; the record must encode (an exception here ends the worker).
  cronlane::TaskResult r{t->id, t->subject, t->time,        cronlane::RunOutcome::kSucceeded,
                         1,     0,          t->shard_index, t->shard_count};
  if (!cronlane::DecodeTaskResult(cronlane::EncodeTaskResult(r)).ok()) __builtin_trap();
  return 0;
}
