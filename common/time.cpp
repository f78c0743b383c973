#include "common/time.h"

#include <fmt/format.h>

#include <date/date.h>
#include <date/tz.h>

#include <string>

#include "common/text.h"

namespace cronlane {

std::string FormatRfc3339(std::chrono::system_clock::time_point t) {
  // fmt rather than date::format: the dispatcher formats every fired occurrence's
  // ce_time, and a stream with its locale per call was a sixth of the fire path's
  // CPU at 100k occurrences a second. Years outside 0000-9999 (not expressible in
  // RFC 3339) go through date::format.
  const auto secs = std::chrono::floor<std::chrono::seconds>(t);
  const auto days = std::chrono::floor<date::days>(secs);
  const date::year_month_day ymd{days};
  const int year = static_cast<int>(ymd.year());
  if (year < 0 || year > 9999) return date::format("%FT%TZ", secs);
  const date::hh_mm_ss hms{secs - days};
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", year, static_cast<unsigned>(ymd.month()),
                     static_cast<unsigned>(ymd.day()), hms.hours().count(), hms.minutes().count(),
                     hms.seconds().count());
}

std::string FormatMicroTime(std::chrono::system_clock::time_point t) {
  return date::format("%FT%TZ", std::chrono::floor<std::chrono::microseconds>(t));
}

Result<Instant> ParseRfc3339(std::string_view s) {
  auto bad = [&s] { return InvalidArgument("time " + Quote(s) + " is not RFC 3339 (e.g. 2026-03-09T13:00:00Z)"); };
  auto num = [&s](size_t pos, size_t len, int& out) {
    if (pos + len > s.size()) return false;
    out = 0;
    for (size_t i = pos; i < pos + len; ++i) {
      if (s[i] < '0' || s[i] > '9') return false;
      out = out * 10 + (s[i] - '0');
    }
    return true;
  };
  int y, mo, d, h, mi, sec;
  if (s.size() < 20 || !num(0, 4, y) || s[4] != '-' || !num(5, 2, mo) || s[7] != '-' || !num(8, 2, d) ||
      (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !num(11, 2, h) || s[13] != ':' || !num(14, 2, mi) ||
      s[16] != ':' || !num(17, 2, sec)) {
    return bad();
  }
  size_t pos = 19;
  if (s[pos] == '.') {
    ++pos;
    size_t digits = 0;
    while (pos < s.size() && s[pos] >= '0' && s[pos] <= '9') ++pos, ++digits;
    if (digits == 0) return bad();
  }
  int offset = 0;
  if (pos < s.size() && (s[pos] == 'Z' || s[pos] == 'z') && pos + 1 == s.size()) {
    offset = 0;
  } else if (pos < s.size() && (s[pos] == '+' || s[pos] == '-') && pos + 6 == s.size() && s[pos + 3] == ':') {
    int oh, om;
    if (!num(pos + 1, 2, oh) || !num(pos + 4, 2, om) || oh > 23 || om > 59) return bad();
    offset = (oh * 3600 + om * 60) * (s[pos] == '-' ? -1 : 1);
  } else {
    return bad();
  }
  date::year_month_day ymd{date::year{y}, date::month{static_cast<unsigned>(mo)}, date::day{static_cast<unsigned>(d)}};
  if (!ymd.ok() || h > 23 || mi > 59 || sec > 60) return bad();
  if (sec == 60) sec = 59;  // leap second: clamp
  auto t = date::sys_days{ymd} + std::chrono::hours{h} + std::chrono::minutes{mi} + std::chrono::seconds{sec} -
           std::chrono::seconds{offset};
  return Instant{std::chrono::duration_cast<std::chrono::seconds>(t.time_since_epoch())};
}

Result<std::chrono::seconds> ParseGoDuration(std::string_view text) {
  auto bad = [&text](std::string_view why) {
    return InvalidArgument("invalid duration " + Quote(text) + ": " + std::string(why));
  };
  std::string_view s = text;
  if (s.empty()) return bad("empty");
  bool negative = false;
  if (s.front() == '+' || s.front() == '-') {
    negative = s.front() == '-';
    s.remove_prefix(1);
  }
  if (s == "0") return std::chrono::seconds{0};
  if (s.empty()) return bad("missing number");
  long double total_ns = 0;
  while (!s.empty()) {
    size_t i = 0;
    long double v = 0;
    bool digits = false;
    while (i < s.size() && s[i] >= '0' && s[i] <= '9') v = v * 10 + (s[i++] - '0'), digits = true;
    if (i < s.size() && s[i] == '.') {
      ++i;
      long double scale = 0.1L;
      while (i < s.size() && s[i] >= '0' && s[i] <= '9') v += (s[i++] - '0') * scale, scale /= 10, digits = true;
    }
    if (!digits) return bad("expected a number");
    size_t u = i;
    while (u < s.size() && !(s[u] >= '0' && s[u] <= '9') && s[u] != '.') ++u;
    std::string_view unit = s.substr(i, u - i);
    long double mult = 0;
    if (unit == "ns")
      mult = 1;
    else if (unit == "us" || unit == "\u00b5s" || unit == "\u03bcs")
      mult = 1e3L;
    else if (unit == "ms")
      mult = 1e6L;
    else if (unit == "s")
      mult = 1e9L;
    else if (unit == "m")
      mult = 60e9L;
    else if (unit == "h")
      mult = 3600e9L;
    else if (unit.empty())
      return bad("missing unit (ns, us, ms, s, m, h)");
    else
      return bad("unknown unit " + Quote(unit));
    total_ns += v * mult;
    if (total_ns > 9.2e18L) return bad("too large");
    s.remove_prefix(u);
  }
  if (negative) return bad("must not be negative");
  return std::chrono::seconds{static_cast<int64_t>(total_ns / 1e9L)};
}

}  // namespace cronlane
