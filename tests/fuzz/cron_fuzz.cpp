// libFuzzer target for the cron parser and the fire-time math. Any crash, sanitizer
// report or broken invariant (__builtin_trap) is a bug.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "dispatcher/cron.h"

namespace {
constexpr std::string_view kZones[] = {"",
                                       "America/New_York",
                                       "Europe/Berlin",
                                       "Australia/Lord_Howe",
                                       "Pacific/Chatham",
                                       "Asia/Kolkata",
                                       "America/Sao_Paulo",
                                       "Nowhere/Bad"};
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using cronlane::dispatcher::Instant;
  using cronlane::dispatcher::Schedule;
  if (size < 5) return 0;
  const std::string_view zone = kZones[data[0] % (sizeof(kZones) / sizeof(kZones[0]))];
  // Four bytes pick an instant between 1970 and ~2106.
  const int64_t secs = static_cast<int64_t>(data[1]) << 24 | data[2] << 16 | data[3] << 8 | data[4];
  const std::string_view expr(reinterpret_cast<const char*>(data + 5), size - 5);
  auto s = Schedule::Parse(expr, zone);
  if (!s.ok()) {
    if (s.status().message().empty()) __builtin_trap();  // every error explains itself
    return 0;
  }
  Instant t{std::chrono::seconds{secs}};
  for (int i = 0; i < 4; ++i) {
    auto next = s->Next(t);
    if (!next) break;
    if (*next <= t) __builtin_trap();  // strictly after
    auto prev = s->Prev(*next);
    if (!prev || *prev != *next) __builtin_trap();  // a fire time is its own most recent fire
    auto before = s->Prev(*next - std::chrono::seconds{1});
    if (before && *before >= *next) __builtin_trap();
    if (before && *before > t) __builtin_trap();  // Next() skipped no fire in (t, next)
    t = *next;
  }
  return 0;
}
