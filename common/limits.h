#pragma once
// Limits shared by the operator, the dispatcher and `cronlane validate`.

#include <cstddef>

namespace cronlane {

// Largest ScheduledTask payload, as compact JSON. Kafka's default message limit is
// 1 MiB; a fired message also carries headers, and shards multiply it.
inline constexpr size_t kMaxPayloadBytes = size_t{128} * 1024;

}  // namespace cronlane
