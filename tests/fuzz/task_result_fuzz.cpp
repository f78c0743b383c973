// libFuzzer target for the results record decoder (common/task_result.h), which the
// operator reads from a topic any worker (or anyone with write access) produces to.
// Any crash, sanitizer report or broken invariant is a bug.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/task_result.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using cronlane::DecodeTaskResult;
  auto r = DecodeTaskResult(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!r.ok()) {
    if (r.status().message().empty()) __builtin_trap();
    return 0;
  }
  // What the results follower relies on: it counts shards up to shard_count.
  if (r->shard_count < 1 || r->shard_index < 0 || r->shard_index >= r->shard_count) __builtin_trap();
  if (r->attempts < 0 || r->duration_ms < 0) __builtin_trap();
  // An accepted record survives its own encoding unchanged.
  auto again = DecodeTaskResult(cronlane::EncodeTaskResult(*r));
  if (!again.ok()) __builtin_trap();
  if (again->id != r->id || again->subject != r->subject || again->time != r->time || again->outcome != r->outcome ||
      again->dead_lettered != r->dead_lettered || again->attempts != r->attempts ||
      again->duration_ms != r->duration_ms || again->shard_index != r->shard_index ||
      again->shard_count != r->shard_count) {
    __builtin_trap();
  }
  return 0;
}
