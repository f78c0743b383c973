#pragma once
// Cron schedules: parsing and fire-time math.
//
// A schedule reads exactly as Kubernetes CronJob reads it (robfig/cron v3
// ParseStandard: five fields, names, ranges, steps, lists, `?`, the
// day-of-month/day-of-week OR rule, @macros), plus an optional leading seconds
// field. Fire times are computed in an IANA time zone with CronJob's DST rules:
// a local time skipped by a spring-forward jump does not fire; a local time that
// occurs twice at a fall-back fires at each occurrence.
//
// Schedule is immutable after Parse and safe to share between threads. Next(),
// Prev() and Between() (with a reserved vector) never allocate.

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "common/time.h"
#include "common/zone.h"

namespace date {
class time_zone;
}

namespace cronlane::dispatcher {

using Instant = cronlane::Instant;  // common/time.h

// How far Next() and Prev() search before concluding a schedule does not fire.
// Ten years covers every schedule that can fire at all (29 February needs eight).
inline constexpr int kSearchHorizonYears = 10;

// The field part of a cron expression, with no time zone.
class CronExpr {
 public:
  // Parses an expression. On failure the Status message names the field, the value
  // and the reason, e.g. "day-of-month: 32 is out of range 1-31".
  static Result<CronExpr> Parse(std::string_view expr);

  // True when the expression had a seconds field (6 fields).
  bool has_seconds() const { return has_seconds_; }

  // Civil-time match, weekday 0 = Sunday.
  bool Matches(int year, unsigned month, unsigned day, unsigned hour, unsigned minute, unsigned second) const;

  // Raw bit sets, for tests and the validator: bit i set = value i selected.
  uint64_t seconds() const { return second_; }
  uint64_t minutes() const { return minute_; }
  uint32_t hours() const { return hour_; }
  uint32_t days_of_month() const { return dom_; }
  uint16_t months() const { return month_; }
  uint8_t days_of_week() const { return dow_; }
  // robfig/cron's star flags: the field was * or ? (see DayMatches).
  bool dom_star() const { return dom_star_; }
  bool dow_star() const { return dow_star_; }

 private:
  friend class Schedule;
  bool DayMatches(int year, unsigned month, unsigned day) const;

  uint64_t second_ = 1;  // {0} unless a seconds field is given
  uint64_t minute_ = 0;
  uint32_t hour_ = 0;
  uint32_t dom_ = 0;       // bits 1..31
  uint16_t month_ = 0;     // bits 1..12
  uint8_t dow_ = 0;        // bits 0..6, 0 = Sunday
  bool dom_star_ = false;  // robfig's "star bit": the field was * or ? (without a step > 1)
  bool dow_star_ = false;
  bool has_seconds_ = false;
};

// A cron expression in a time zone.
class Schedule {
 public:
  // Parses `expr` in `time_zone` (an IANA name; "" or "UTC" mean UTC). Fails with
  // InvalidArgument naming the problem: a bad field, an unknown time zone, a TZ=
  // prefix, or a schedule that can never fire (31 February).
  static Result<Schedule> Parse(std::string_view expr, std::string_view time_zone = "");

  // For "@every <duration>" schedules: fires at anchor + k * period (k >= 1), as
  // Kubernetes CronJob does from the object's creation time. Returns a copy with
  // the anchor set; no effect on cron expressions. The default anchor is the epoch.
  Schedule Anchored(Instant anchor) const;
  // The period of an "@every" schedule; zero for cron expressions.
  std::chrono::seconds every() const { return every_; }

  // The first fire time strictly after `after`; nullopt if none within the horizon.
  std::optional<Instant> Next(Instant after) const;

  // The most recent fire time at or before `at`; nullopt if none within the horizon.
  std::optional<Instant> Prev(Instant at) const;

  // Appends the fire times in (from, to] to `out`, at most `cap` of them, and returns
  // how many were appended. A return equal to `cap` means there may be more.
  size_t Between(Instant from, Instant to, size_t cap, std::vector<Instant>& out) const;

  const CronExpr& expr() const { return expr_; }
  // The zone's IANA name ("UTC" when none was given).
  const std::string& time_zone_name() const { return tz_name_; }
  // nullptr for UTC.
  const Zone* zone() const { return zone_; }

 private:
  CronExpr expr_;
  std::chrono::seconds every_{0};
  Instant anchor_{};
  const Zone* zone_ = nullptr;
  std::string tz_name_ = "UTC";
};

}  // namespace cronlane::dispatcher
