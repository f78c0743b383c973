#include "dispatcher/cron.h"

#include <date/date.h>
#include <date/tz.h>

#include <algorithm>
#include <array>
#include <bit>
#include <cctype>
#include <charconv>
#include <stdexcept>
#include <string>

#include "common/text.h"

namespace cronlane::dispatcher {
namespace {

constexpr int64_t kDay = 86400;
constexpr int64_t kHorizonSeconds = int64_t{kSearchHorizonYears} * 366 * kDay;

struct FieldSpec {
  std::string_view name;
  unsigned min;
  unsigned max;
  const std::array<std::string_view, 12>* names;  // index i = value min+i; may be null
  unsigned name_count;
};

constexpr std::array<std::string_view, 12> kMonthNames = {"jan", "feb", "mar", "apr", "may", "jun",
                                                          "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr std::array<std::string_view, 12> kDayNames = {"sun", "mon", "tue", "wed", "thu", "fri", "sat"};

constexpr FieldSpec kSecond{"second", 0, 59, nullptr, 0};
constexpr FieldSpec kMinute{"minute", 0, 59, nullptr, 0};
constexpr FieldSpec kHour{"hour", 0, 23, nullptr, 0};
constexpr FieldSpec kDom{"day-of-month", 1, 31, nullptr, 0};
constexpr FieldSpec kMonth{"month", 1, 12, &kMonthNames, 12};
constexpr FieldSpec kDow{"day-of-week", 0, 6, &kDayNames, 7};

struct FieldBits {
  uint64_t bits = 0;
  bool star = false;
};

// A number or (for month and day-of-week) a three-letter name.
Result<unsigned> ParseValue(std::string_view text, const FieldSpec& f) {
  if (text.empty()) return InvalidArgument(std::string(f.name) + ": missing value");
  if (f.names != nullptr) {
    for (unsigned i = 0; i < f.name_count; ++i) {
      if (EqualsIgnoreCase(text, (*f.names)[i])) return f.min + i;
    }
  }
  std::string_view digits = text.starts_with('+') ? text.substr(1) : text;  // strconv.Atoi accepts "+5"
  if (digits.empty() || !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; })) {
    std::string what = f.names == nullptr  ? "is not a number"
                       : f.name == "month" ? "is not a number or a month name (jan-dec)"
                                           : "is not a number or a day name (sun-sat)";
    return InvalidArgument(std::string(f.name) + ": " + Quote(text) + " " + what);
  }
  unsigned v = 0;
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
  if (ec != std::errc() || v > f.max || v < f.min) {
    return InvalidArgument(std::string(f.name) + ": " + std::string(text) + " is out of range " +
                           std::to_string(f.min) + "-" + std::to_string(f.max));
  }
  (void)ptr;
  return v;
}

// One comma-separated item: *, ?, N, N-M, with an optional /step.
Result<FieldBits> ParseItem(std::string_view item, const FieldSpec& f) {
  if (item.empty()) return InvalidArgument(std::string(f.name) + ": empty list element");
  std::string_view range = item;
  std::string_view step_text;
  bool has_step = false;
  if (auto slash = item.find('/'); slash != std::string_view::npos) {
    range = item.substr(0, slash);
    step_text = item.substr(slash + 1);
    has_step = true;
    if (step_text.find('/') != std::string_view::npos) {
      return InvalidArgument(std::string(f.name) + ": too many slashes in " + Quote(item));
    }
  }
  FieldBits out;
  unsigned start = f.min;
  unsigned end = f.max;
  bool single = false;
  if (range == "*" || range == "?") {
    out.star = true;
  } else if (range.front() == '*' || range.front() == '?') {
    // robfig/cron silently reads "*-5" as "*"; refuse it instead of guessing.
    return InvalidArgument(std::string(f.name) + ": " + Quote(item) +
                           " is not valid: " + std::string(1, range.front()) + " cannot start a range");
  } else if (range.empty()) {
    return InvalidArgument(std::string(f.name) + ": missing range before the step in " + Quote(item));
  } else {
    auto dash = range.find('-');
    auto lo = ParseValue(range.substr(0, dash), f);
    if (!lo.ok()) return lo.status();
    start = end = *lo;
    if (dash == std::string_view::npos) {
      single = true;
    } else {
      std::string_view hi_text = range.substr(dash + 1);
      if (hi_text.find('-') != std::string_view::npos) {
        return InvalidArgument(std::string(f.name) + ": too many hyphens in " + Quote(item));
      }
      auto hi = ParseValue(hi_text, f);
      if (!hi.ok()) return hi.status();
      end = *hi;
      if (start > end) {
        return InvalidArgument(std::string(f.name) + ": range " + std::string(range) + " starts after it ends");
      }
    }
  }
  unsigned step = 1;
  if (has_step) {
    if (step_text.empty() ||
        !std::all_of(step_text.begin(), step_text.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      return InvalidArgument(std::string(f.name) + ": step " + Quote(step_text) + " is not a positive number");
    }
    auto [p, ec] = std::from_chars(step_text.data(), step_text.data() + step_text.size(), step);
    (void)p;
    if (ec != std::errc() || step == 0) {
      return InvalidArgument(std::string(f.name) + ": step " + Quote(step_text) + " must be a positive number");
    }
    if (single) end = f.max;  // "N/step" means N-max/step, as in robfig/cron
    if (step > 1) out.star = false;
  }
  for (unsigned v = start; v <= end; v += step) out.bits |= uint64_t{1} << v;
  return out;
}

Result<FieldBits> ParseField(std::string_view text, const FieldSpec& f) {
  FieldBits out;
  size_t pos = 0;
  bool any = false;
  while (true) {
    size_t comma = text.find(',', pos);
    std::string_view part = text.substr(pos, comma == std::string_view::npos ? std::string_view::npos : comma - pos);
    if (!part.empty()) {  // robfig/cron drops empty list elements ("1,,2")
      auto item = ParseItem(part, f);
      if (!item.ok()) return item.status();
      out.bits |= item->bits;
      out.star = out.star || item->star;
      any = true;
    }
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  if (!any) return InvalidArgument(std::string(f.name) + ": " + Quote(text) + " selects no values");
  return out;
}

bool IsLeap(int y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

unsigned DaysInMonth(int y, unsigned m) {
  static constexpr std::array<unsigned, 13> kDays = {0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && IsLeap(y) ? 29 : kDays[m];
}

// Lowest set bit >= from, or -1.
int NextBit(uint64_t mask, int from) {
  if (from >= 64) return -1;
  uint64_t m = mask & (~uint64_t{0} << from);
  return m == 0 ? -1 : std::countr_zero(m);
}

// Highest set bit <= from, or -1.
int PrevBit(uint64_t mask, int from) {
  if (from < 0) return -1;
  uint64_t m = from >= 63 ? mask : mask & ((uint64_t{2} << from) - 1);
  return m == 0 ? -1 : std::bit_width(m) - 1;
}

struct Civil {
  int y;
  unsigned mo, d, h, mi, s;
};

int64_t FloorDiv(int64_t a, int64_t b) {
  return a / b - ((a % b != 0) && ((a < 0) != (b < 0)));
}

Civil ToCivil(int64_t secs) {
  int64_t days = FloorDiv(secs, kDay);
  int64_t rem = secs - days * kDay;
  date::year_month_day ymd{date::sys_days{date::days{days}}};
  return {static_cast<int>(ymd.year()),      static_cast<unsigned>(ymd.month()),   static_cast<unsigned>(ymd.day()),
          static_cast<unsigned>(rem / 3600), static_cast<unsigned>(rem / 60 % 60), static_cast<unsigned>(rem % 60)};
}

int64_t DaysFromCivil(int y, unsigned mo, unsigned d) {
  return date::sys_days{date::year{y} / date::month{mo} / date::day{d}}.time_since_epoch().count();
}

int64_t FromCivil(const Civil& c) {
  return DaysFromCivil(c.y, c.mo, c.d) * kDay + int64_t{c.h} * 3600 + int64_t{c.mi} * 60 + c.s;
}

}  // namespace

bool CronExpr::DayMatches(int year, unsigned month, unsigned day) const {
  bool dom_ok = (dom_ >> day) & 1U;
  unsigned wd = date::weekday{date::sys_days{date::days{DaysFromCivil(year, month, day)}}}.c_encoding();
  bool dow_ok = (dow_ >> wd) & 1U;
  // robfig/cron: if either field is unrestricted (*), both must match; when both are
  // restricted, a day matching either fires.
  if (dom_star_ || dow_star_) return dom_ok && dow_ok;
  return dom_ok || dow_ok;
}

bool CronExpr::Matches(int year, unsigned month, unsigned day, unsigned hour, unsigned minute, unsigned second) const {
  if (month < 1 || month > 12 || day < 1 || day > DaysInMonth(year, month) || hour > 23 || minute > 59 || second > 59) {
    return false;
  }
  return ((month_ >> month) & 1U) && ((hour_ >> hour) & 1U) && ((minute_ >> minute) & 1U) &&
         ((second_ >> second) & 1U) && DayMatches(year, month, day);
}

Result<CronExpr> CronExpr::Parse(std::string_view expr) {
  auto is_space = [](char c) { return std::isspace(static_cast<unsigned char>(c)) != 0; };
  while (!expr.empty() && is_space(expr.front())) expr.remove_prefix(1);
  while (!expr.empty() && is_space(expr.back())) expr.remove_suffix(1);
  if (expr.empty()) return InvalidArgument("schedule is empty");
  if (expr.find("TZ") != std::string_view::npos) {  // as Kubernetes: TZ=, CRON_TZ=
    return InvalidArgument("cannot use TZ or CRON_TZ in schedule, use the timeZone field instead");
  }

  CronExpr out;
  if (expr.front() == '@') {
    // Macros, with robfig/cron's meaning.
    const std::string_view m = expr;
    std::string_view fields;
    if (m == "@yearly" || m == "@annually")
      fields = "0 0 1 1 *";
    else if (m == "@monthly")
      fields = "0 0 1 * *";
    else if (m == "@weekly")
      fields = "0 0 * * 0";
    else if (m == "@daily" || m == "@midnight")
      fields = "0 0 * * *";
    else if (m == "@hourly")
      fields = "0 * * * *";
    else if (m.starts_with("@every ")) {
      return InvalidArgument("@every is a schedule, not a cron expression");  // handled by Schedule::Parse
    } else {
      return InvalidArgument("unknown macro " + Quote(m) +
                             " (supported: @yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly)");
    }
    return Parse(fields);
  }

  std::array<std::string_view, 7> f{};
  size_t n = 0;
  size_t i = 0;
  while (i < expr.size()) {
    while (i < expr.size() && is_space(expr[i])) ++i;
    if (i >= expr.size()) break;
    size_t j = i;
    while (j < expr.size() && !is_space(expr[j])) ++j;
    if (n < f.size()) f[n] = expr.substr(i, j - i);
    ++n;
    i = j;
  }
  if (n != 5 && n != 6) {
    return InvalidArgument(
        "expected 5 fields (minute hour day-of-month month day-of-week) or 6 with a leading "
        "seconds field, found " +
        std::to_string(n));
  }
  size_t k = 0;
  if (n == 6) {
    auto s = ParseField(f[k++], kSecond);
    if (!s.ok()) return s.status();
    out.second_ = s->bits;
    out.has_seconds_ = true;
  }
  auto mi = ParseField(f[k++], kMinute);
  if (!mi.ok()) return mi.status();
  auto h = ParseField(f[k++], kHour);
  if (!h.ok()) return h.status();
  auto dom = ParseField(f[k++], kDom);
  if (!dom.ok()) return dom.status();
  auto mo = ParseField(f[k++], kMonth);
  if (!mo.ok()) return mo.status();
  auto dow = ParseField(f[k++], kDow);
  if (!dow.ok()) return dow.status();
  out.minute_ = mi->bits;
  out.hour_ = static_cast<uint32_t>(h->bits);
  out.dom_ = static_cast<uint32_t>(dom->bits);
  out.dom_star_ = dom->star;
  out.month_ = static_cast<uint16_t>(mo->bits);
  out.dow_ = static_cast<uint8_t>(dow->bits);
  out.dow_star_ = dow->star;

  // A day-of-month that exists in none of the selected months can never fire
  // (unless day-of-week is restricted too, which ORs the two).
  if (!out.dom_star_ && out.dow_star_) {
    bool possible = false;
    for (unsigned m = 1; m <= 12 && !possible; ++m) {
      if (!((out.month_ >> m) & 1U)) continue;
      const unsigned max_day = m == 2 ? 29 : DaysInMonth(2001, m);  // 29 February exists in leap years
      const auto valid_days = static_cast<uint32_t>(((uint64_t{1} << (max_day + 1)) - 1) & ~uint64_t{1});
      possible = (out.dom_ & valid_days) != 0;
    }
    if (!possible) {
      static constexpr std::array<std::string_view, 13> kFull = {
          "",     "January", "February",  "March",   "April",    "May",     "June",
          "July", "August",  "September", "October", "November", "December"};
      int first_day = NextBit(out.dom_, 1);
      int first_month = NextBit(out.month_, 1);
      return InvalidArgument("schedule can never fire: day-of-month " + std::to_string(first_day) +
                             " does not exist in " + std::string(kFull[static_cast<size_t>(first_month)]) +
                             (std::popcount(out.month_) > 1 ? " or the other selected months" : ""));
    }
  }
  return out;
}

namespace {

// First matching civil time in [from, limit), as local seconds.
std::optional<int64_t> NextCivil(const CronExpr& e, int64_t from, int64_t limit, auto day_matches) {
  if (from >= limit) return std::nullopt;
  Civil c = ToCivil(from);
  const int max_year = ToCivil(limit - 1).y;
  const uint64_t months = e.months(), hours = e.hours(), minutes = e.minutes(), seconds = e.seconds();
  const uint64_t dom = e.days_of_month();
  const bool dom_only = !e.dom_star() && e.dow_star();
  while (true) {
    if (c.y > max_year) return std::nullopt;
    if (!((months >> c.mo) & 1U)) {
      int nm = NextBit(months, static_cast<int>(c.mo) + 1);
      if (nm < 0) {
        ++c.y;
        nm = NextBit(months, 1);
      }
      c.mo = static_cast<unsigned>(nm);
      c.d = 1;
      c.h = c.mi = c.s = 0;
      continue;
    }
    if (c.d > DaysInMonth(c.y, c.mo)) {
      if (++c.mo > 12) {
        c.mo = 1;
        ++c.y;
      }
      c.d = 1;
      c.h = c.mi = c.s = 0;
      continue;
    }
    if (!day_matches(c.y, c.mo, c.d)) {
      // When only day-of-month restricts the day, jump straight to its next value.
      if (dom_only) {
        int nd = NextBit(dom, static_cast<int>(c.d) + 1);
        c.d = nd < 0 ? 32 : static_cast<unsigned>(nd);
      } else {
        ++c.d;
      }
      c.h = c.mi = c.s = 0;
      continue;
    }
    if (!((hours >> c.h) & 1U)) {
      int nh = NextBit(hours, static_cast<int>(c.h) + 1);
      if (nh < 0) {
        ++c.d;
        c.h = c.mi = c.s = 0;
        continue;
      }
      c.h = static_cast<unsigned>(nh);
      c.mi = c.s = 0;
    }
    if (!((minutes >> c.mi) & 1U)) {
      int nmi = NextBit(minutes, static_cast<int>(c.mi) + 1);
      if (nmi < 0) {
        c.mi = c.s = 0;
        if (++c.h > 23) {
          c.h = 0;
          ++c.d;
        }
        continue;
      }
      c.mi = static_cast<unsigned>(nmi);
      c.s = 0;
    }
    if (!((seconds >> c.s) & 1U)) {
      int ns = NextBit(seconds, static_cast<int>(c.s) + 1);
      if (ns < 0) {
        c.s = 0;
        if (++c.mi > 59) {
          c.mi = 0;
          if (++c.h > 23) {
            c.h = 0;
            ++c.d;
          }
        }
        continue;
      }
      c.s = static_cast<unsigned>(ns);
    }
    int64_t t = FromCivil(c);
    if (t >= limit) return std::nullopt;
    return t;
  }
}

// Last matching civil time in [floor, from], as local seconds.
std::optional<int64_t> PrevCivil(const CronExpr& e, int64_t from, int64_t floor, auto day_matches) {
  if (from < floor) return std::nullopt;
  Civil c = ToCivil(from);
  const int min_year = ToCivil(floor).y;
  const uint64_t months = e.months(), hours = e.hours(), minutes = e.minutes(), seconds = e.seconds();
  const uint64_t dom = e.days_of_month();
  const bool dom_only = !e.dom_star() && e.dow_star();
  auto day_end = [&c] {
    c.h = 23;
    c.mi = 59;
    c.s = 59;
  };
  while (true) {
    if (c.y < min_year) return std::nullopt;
    if (!((months >> c.mo) & 1U)) {
      int pm = PrevBit(months, static_cast<int>(c.mo) - 1);
      if (pm < 1) {
        --c.y;
        pm = PrevBit(months, 12);
      }
      c.mo = static_cast<unsigned>(pm);
      c.d = DaysInMonth(c.y, c.mo);
      day_end();
      continue;
    }
    if (c.d == 0) {
      if (--c.mo == 0) {
        c.mo = 12;
        --c.y;
      }
      c.d = DaysInMonth(c.y, c.mo);
      day_end();
      continue;
    }
    if (!day_matches(c.y, c.mo, c.d)) {
      if (dom_only) {
        int pd = PrevBit(dom, static_cast<int>(c.d) - 1);
        c.d = pd < 1 ? 0 : static_cast<unsigned>(pd);
      } else {
        --c.d;
      }
      day_end();
      continue;
    }
    if (!((hours >> c.h) & 1U)) {
      int ph = PrevBit(hours, static_cast<int>(c.h) - 1);
      if (ph < 0) {
        --c.d;
        day_end();
        continue;
      }
      c.h = static_cast<unsigned>(ph);
      c.mi = 59;
      c.s = 59;
    }
    if (!((minutes >> c.mi) & 1U)) {
      int pmi = PrevBit(minutes, static_cast<int>(c.mi) - 1);
      if (pmi < 0) {
        c.mi = 59;
        c.s = 59;
        if (c.h == 0) {
          --c.d;
          c.h = 23;
        } else {
          --c.h;
        }
        continue;
      }
      c.mi = static_cast<unsigned>(pmi);
      c.s = 59;
    }
    if (!((seconds >> c.s) & 1U)) {
      int ps = PrevBit(seconds, static_cast<int>(c.s) - 1);
      if (ps < 0) {
        c.s = 59;
        if (c.mi == 0) {
          c.mi = 59;
          if (c.h == 0) {
            c.h = 23;
            --c.d;
          } else {
            --c.h;
          }
        } else {
          --c.mi;
        }
        continue;
      }
      c.s = static_cast<unsigned>(ps);
    }
    int64_t t = FromCivil(c);
    if (t < floor) return std::nullopt;
    return t;
  }
}

}  // namespace

Schedule Schedule::Anchored(Instant anchor) const {
  Schedule s = *this;
  s.anchor_ = anchor;
  return s;
}

Result<Schedule> Schedule::Parse(std::string_view expr, std::string_view time_zone) {
  std::string_view trimmed = expr;
  while (!trimmed.empty() && std::isspace(static_cast<unsigned char>(trimmed.front()))) trimmed.remove_prefix(1);
  while (!trimmed.empty() && std::isspace(static_cast<unsigned char>(trimmed.back()))) trimmed.remove_suffix(1);
  if (trimmed.starts_with("@every ")) {
    // robfig/cron's constant-delay schedule, accepted by Kubernetes CronJob: sub-second
    // parts are dropped and anything under one second runs every second.
    auto d = ParseGoDuration(trimmed.substr(7));
    if (!d.ok()) return InvalidArgument("@every: " + d.status().message());
    auto zone = LocateZone(time_zone);
    if (!zone.ok()) return zone.status();
    Schedule s;
    s.every_ = std::max(*d, std::chrono::seconds{1});
    s.zone_ = *zone;
    if (!time_zone.empty()) s.tz_name_ = std::string(time_zone);
    return s;
  }
  auto e = CronExpr::Parse(expr);
  if (!e.ok()) return e.status();
  auto zone = LocateZone(time_zone);
  if (!zone.ok()) return zone.status();
  Schedule s;
  s.expr_ = *e;
  s.zone_ = *zone;
  if (!time_zone.empty()) s.tz_name_ = std::string(time_zone);
  return s;
}

std::optional<Instant> Schedule::Next(Instant after) const {
  if (every_.count() > 0) {
    if (after < anchor_) return anchor_ + every_;
    auto k = (after - anchor_) / every_ + 1;
    return anchor_ + every_ * k;
  }
  auto day_matches = [this](int y, unsigned m, unsigned d) { return expr_.DayMatches(y, m, d); };
  const int64_t start = after.time_since_epoch().count() + 1;
  const int64_t horizon = start + kHorizonSeconds;
  if (zone_ == nullptr) {
    auto t = NextCivil(expr_, start, horizon, day_matches);
    if (!t) return std::nullopt;
    return Instant{std::chrono::seconds{*t}};
  }
  // Walk the zone's UTC-offset segments; within one segment local time is a
  // monotonic shift of UTC, so the civil search is exact there. Local times in a
  // spring-forward gap belong to no segment (no fire); local times repeated at a
  // fall-back belong to two (a fire in each).
  for (int64_t t = start; t < horizon;) {
    date::sys_info info = zone_->Info(Instant{std::chrono::seconds{t}});
    const int64_t off = info.offset.count();
    const int64_t seg_end = std::min<int64_t>(info.end.time_since_epoch().count(), horizon);
    if (auto local = NextCivil(expr_, t + off, seg_end + off, day_matches)) {
      return Instant{std::chrono::seconds{*local - off}};
    }
    t = seg_end;
  }
  return std::nullopt;
}

std::optional<Instant> Schedule::Prev(Instant at) const {
  if (every_.count() > 0) {
    if (at < anchor_ + every_) return std::nullopt;
    return anchor_ + every_ * ((at - anchor_) / every_);
  }
  auto day_matches = [this](int y, unsigned m, unsigned d) { return expr_.DayMatches(y, m, d); };
  const int64_t start = at.time_since_epoch().count();
  const int64_t floor = start - kHorizonSeconds;
  if (zone_ == nullptr) {
    auto t = PrevCivil(expr_, start, floor, day_matches);
    if (!t) return std::nullopt;
    return Instant{std::chrono::seconds{*t}};
  }
  for (int64_t t = start; t >= floor;) {
    date::sys_info info = zone_->Info(Instant{std::chrono::seconds{t}});
    const int64_t off = info.offset.count();
    const int64_t seg_begin = std::max<int64_t>(info.begin.time_since_epoch().count(), floor);
    if (auto local = PrevCivil(expr_, t + off, seg_begin + off, day_matches)) {
      return Instant{std::chrono::seconds{*local - off}};
    }
    t = seg_begin - 1;
  }
  return std::nullopt;
}

size_t Schedule::Between(Instant from, Instant to, size_t cap, std::vector<Instant>& out) const {
  size_t n = 0;
  for (auto t = Next(from); t && *t <= to && n < cap; t = Next(*t)) {
    out.push_back(*t);
    ++n;
  }
  return n;
}

}  // namespace cronlane::dispatcher
