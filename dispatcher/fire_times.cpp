#include "dispatcher/fire_times.h"

#include <charconv>

#include "common/time.h"
#include "common/zone.h"

namespace cronlane::dispatcher {
namespace {

using std::chrono::seconds;

// "YYYY-MM-DDTHH:MM:SS" as if it were UTC (the local wall clock as seconds), or
// nullopt when `text` is not exactly that.
std::optional<Instant> WallClock(std::string_view text) {
  if (text.size() != 19 || text[4] != '-' || text[7] != '-' || text[10] != 'T' || text[13] != ':' || text[16] != ':') {
    return std::nullopt;
  }
  auto parsed = ParseRfc3339(std::string(text) + "Z");
  if (!parsed.ok()) return std::nullopt;
  return *parsed;
}

seconds OffsetAt(const Zone* zone, Instant t) {
  return zone == nullptr ? seconds{0} : std::chrono::duration_cast<seconds>(zone->Info(t).offset);
}

}  // namespace

Result<Instant> ParseSpecTime(std::string_view text, const Zone* zone) {
  std::optional<Instant> wall = WallClock(text);
  if (!wall) {
    auto exact = ParseRfc3339(text);
    if (!exact.ok()) {
      return InvalidArgument("\"" + std::string(text) +
                             "\" is not a date-time (2026-12-24T18:00:00Z, 2026-12-24T18:00:00+01:00, or "
                             "2026-12-24T18:00:00 in spec.timeZone)");
    }
    return *exact;
  }
  // Local wall clock L: the instants t with t + offset(t) == L. Try the offsets in
  // force around L; the earliest match wins (a repeated hour's first occurrence).
  std::optional<Instant> best;
  for (seconds probe : {seconds{-86400}, seconds{0}, seconds{86400}}) {
    const seconds off = OffsetAt(zone, *wall + probe);
    const Instant t = *wall - off;
    if (OffsetAt(zone, t) == off && (!best || t < *best)) best = t;
  }
  if (!best) {
    return InvalidArgument("\"" + std::string(text) + "\" does not exist in " +
                           (zone == nullptr ? std::string("UTC") : zone->name()) +
                           " (a daylight-saving jump skips it)");
  }
  return *best;
}

std::optional<Instant> FireTimes::Next(Instant after) const {
  if (window_ != nullptr && window_->run_at) {
    return *window_->run_at > after ? window_->run_at : std::nullopt;
  }
  if (window_ != nullptr && window_->start && after < *window_->start) after = *window_->start - seconds{1};
  std::optional<Instant> n = schedule_.Next(after);
  if (window_ != nullptr) {
    for (const Schedule& s : window_->more) {
      if (auto m = s.Next(after); m && (!n || *m < *n)) n = m;
    }
  }
  if (n && window_ != nullptr && window_->end && *n >= *window_->end) return std::nullopt;
  return n;
}

std::optional<Instant> FireTimes::Prev(Instant at) const {
  if (window_ != nullptr && window_->run_at) {
    return *window_->run_at <= at ? window_->run_at : std::nullopt;
  }
  if (window_ != nullptr && window_->end && at >= *window_->end) at = *window_->end - seconds{1};
  std::optional<Instant> p = schedule_.Prev(at);
  if (window_ != nullptr) {
    for (const Schedule& s : window_->more) {
      if (auto m = s.Prev(at); m && (!p || *m > *p)) p = m;
    }
  }
  if (p && window_ != nullptr && window_->start && *p < *window_->start) return std::nullopt;
  return p;
}

int FireTimes::JitterSeconds(Instant t, int task_jitter) const {
  if (window_ == nullptr || window_->jitter.empty()) return task_jitter;
  for (size_t i = 0; i < window_->jitter.size(); ++i) {
    const Schedule& s = i == 0 ? schedule_ : window_->more[i - 1];
    if (s.Prev(t) == t) return window_->jitter[i] >= 0 ? window_->jitter[i] : task_jitter;
  }
  return task_jitter;
}

}  // namespace cronlane::dispatcher
