#pragma once
// Time as cronlane writes and reads it, in one place: RFC 3339 (status fields,
// CloudEvents ce_time, creationTimestamp), Kubernetes MicroTime (Lease renewTime,
// Event eventTime), Go-style durations (@every), and local time for people.
// Pure functions; thread-safe.

#include <chrono>
#include <string>
#include <string_view>

#include "common/status.h"

namespace cronlane {

// An instant at whole seconds, UTC: what schedules fire at.
using Instant = std::chrono::sys_seconds;

// RFC 3339 UTC at whole seconds (floored): 2026-03-09T13:00:00Z. Strings of this
// form order like the instants they stand for.
std::string FormatRfc3339(std::chrono::system_clock::time_point t);
// Kubernetes MicroTime, RFC 3339 with microseconds: 2026-03-09T13:00:00.123456Z.
std::string FormatMicroTime(std::chrono::system_clock::time_point t);
// Parses RFC 3339 (Z or ±hh:mm offset; fractional seconds are truncated).
// InvalidArgument names the text and shows the expected form.
Result<Instant> ParseRfc3339(std::string_view text);

// Parses a Go duration ("1h30m", "90s", "1.5h"), truncated to whole seconds.
// InvalidArgument: "invalid duration "5x": unknown unit "x"".
Result<std::chrono::seconds> ParseGoDuration(std::string_view text);

}  // namespace cronlane
