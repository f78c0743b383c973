// Unit tests of the cron engine: syntax, error messages, DST, leap years, month ends,
// and a brute-force oracle over random schedules.
#include "dispatcher/cron.h"

#include <date/tz.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <new>
#include <random>
#include <string>
#include <vector>

// Counts heap allocations made while g_count_allocs is set (see NoHeapAllocation).
namespace {
std::atomic<bool> g_count_allocs{false};
std::atomic<long> g_allocs{0};
}  // namespace
void* operator new(std::size_t n) {
  if (g_count_allocs.load(std::memory_order_relaxed)) g_allocs.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
// Not inlined: GCC at -O1 and above would otherwise see free() of a pointer from
// operator new at the call sites and warn (-Wmismatched-new-delete).
[[gnu::noinline]] void operator delete(void* p) noexcept {
  std::free(p);
}
[[gnu::noinline]] void operator delete(void* p, std::size_t) noexcept {
  std::free(p);
}

namespace cronlane::dispatcher {
namespace {

using ::testing::HasSubstr;

Instant T(const char* rfc3339) {
  auto t = ParseRfc3339(rfc3339);
  EXPECT_TRUE(t.ok()) << rfc3339 << ": " << t.status().message();
  return t.ok() ? *t : Instant{};
}

std::string S(std::optional<Instant> t) {
  return t ? FormatRfc3339(*t) : "none";
}

Schedule MustParse(const char* expr, const char* tz = "") {
  auto s = Schedule::Parse(expr, tz);
  EXPECT_TRUE(s.ok()) << expr << " in " << tz << ": " << s.status().message();
  return s.ok() ? *s : *Schedule::Parse("* * * * *");
}

std::string ParseError(const char* expr, const char* tz = "") {
  auto s = Schedule::Parse(expr, tz);
  if (s.ok()) return "<accepted>";
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  return s.status().message();
}

// ---- syntax and error messages ---------------------------------------------------

struct ErrorCase {
  const char* expr;
  const char* message;
};

class ParseErrorTest : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(ParseErrorTest, NamesFieldValueAndReason) {
  EXPECT_EQ(ParseError(GetParam().expr), GetParam().message) << GetParam().expr;
}

INSTANTIATE_TEST_SUITE_P(
    Cron, ParseErrorTest,
    ::testing::Values(
        ErrorCase{"", "schedule is empty"}, ErrorCase{"   ", "schedule is empty"},
        ErrorCase{"* * * *",
                  "expected 5 fields (minute hour day-of-month month day-of-week) or 6 with a leading seconds "
                  "field, found 4"},
        ErrorCase{"* * * * * * *",
                  "expected 5 fields (minute hour day-of-month month day-of-week) or 6 with a leading seconds "
                  "field, found 7"},
        ErrorCase{"61 * * * *", "minute: 61 is out of range 0-59"},
        ErrorCase{"* 24 * * *", "hour: 24 is out of range 0-23"},
        ErrorCase{"* * 32 * *", "day-of-month: 32 is out of range 1-31"},
        ErrorCase{"* * 0 * *", "day-of-month: 0 is out of range 1-31"},
        ErrorCase{"* * * 13 *", "month: 13 is out of range 1-12"},
        ErrorCase{"* * * 0 *", "month: 0 is out of range 1-12"},
        ErrorCase{"* * * * 7", "day-of-week: 7 is out of range 0-6"},
        ErrorCase{"60 * * * * *", "second: 60 is out of range 0-59"},
        ErrorCase{"99999999999 * * * *", "minute: 99999999999 is out of range 0-59"},
        ErrorCase{"a * * * *", "minute: \"a\" is not a number"},
        ErrorCase{"* * * foo *", "month: \"foo\" is not a number or a month name (jan-dec)"},
        ErrorCase{"* * * * monday", "day-of-week: \"monday\" is not a number or a day name (sun-sat)"},
        ErrorCase{"* * * mon *", "month: \"mon\" is not a number or a month name (jan-dec)"},
        ErrorCase{"*/0 * * * *", "minute: step \"0\" must be a positive number"},
        ErrorCase{"*/-1 * * * *", "minute: step \"-1\" is not a positive number"},
        ErrorCase{"*/ * * * *", "minute: step \"\" is not a positive number"},
        ErrorCase{"*/2/3 * * * *", "minute: too many slashes in \"*/2/3\""},
        ErrorCase{"1-2-3 * * * *", "minute: too many hyphens in \"1-2-3\""},
        ErrorCase{"5-3 * * * *", "minute: range 5-3 starts after it ends"},
        ErrorCase{"*-5 * * * *", "minute: \"*-5\" is not valid: * cannot start a range"},
        ErrorCase{"?-5/2 * * * *", "minute: \"?-5/2\" is not valid: ? cannot start a range"},
        ErrorCase{"/5 * * * *", "minute: missing range before the step in \"/5\""},
        ErrorCase{"1- * * * *", "minute: missing value"}, ErrorCase{"-5 * * * *", "minute: missing value"},
        ErrorCase{", * * * *", "minute: \",\" selects no values"},
        ErrorCase{"0 0 31 2 *", "schedule can never fire: day-of-month 31 does not exist in February"},
        ErrorCase{"0 0 30,31 2 *", "schedule can never fire: day-of-month 30 does not exist in February"},
        ErrorCase{"0 0 31 4,6 *",
                  "schedule can never fire: day-of-month 31 does not exist in April or the other selected months"},
        ErrorCase{"TZ=UTC 0 * * * *", "cannot use TZ or CRON_TZ in schedule, use the timeZone field instead"},
        ErrorCase{"CRON_TZ=Europe/Berlin 0 * * * *",
                  "cannot use TZ or CRON_TZ in schedule, use the timeZone field instead"},
        ErrorCase{"TZ=UTC", "cannot use TZ or CRON_TZ in schedule, use the timeZone field instead"},
        ErrorCase{"@fortnightly",
                  "unknown macro \"@fortnightly\" (supported: @yearly, @annually, @monthly, @weekly, @daily, "
                  "@midnight, @hourly)"},
        ErrorCase{"@DAILY",
                  "unknown macro \"@DAILY\" (supported: @yearly, @annually, @monthly, @weekly, @daily, "
                  "@midnight, @hourly)"},
        ErrorCase{"@every 5x", "@every: invalid duration \"5x\": unknown unit \"x\""},
        ErrorCase{"@every 5", "@every: invalid duration \"5\": missing unit (ns, us, ms, s, m, h)"},
        ErrorCase{"@every -5m", "@every: invalid duration \"-5m\": must not be negative"}));

TEST(CronParse, UnknownAndLocalTimeZonesAreRejected) {
  EXPECT_EQ(ParseError("0 * * * *", "Mars/Olympus_Mons"),
            "unknown time zone \"Mars/Olympus_Mons\" (use an IANA name such as \"America/New_York\")");
  EXPECT_THAT(ParseError("0 * * * *", "Local"), HasSubstr("\"Local\" is not allowed"));
  EXPECT_THAT(ParseError("0 * * * *", "local"), HasSubstr("\"Local\" is not allowed"));
  EXPECT_THAT(ParseError("0 * * * *", "../../etc/passwd"), HasSubstr("unknown time zone"));
}

TEST(CronParse, AcceptsWhatCronJobAccepts) {
  for (const char* expr : {"* * * * *",
                           "0 0 * JAN-mar Mon-FRI",
                           "? ? ? ? ?",
                           "+5 * * * *",
                           "05 08 * * *",
                           "1,,2 * * * *",
                           "0 0 29 2 *",
                           "0 0 31 1-12 *",
                           "0 0 31 2 mon",
                           "*/1 * * * *",
                           "  0   12  *  *  *  ",
                           "0\t12\t*\t*\t*",
                           "@yearly",
                           "@annually",
                           "@monthly",
                           "@weekly",
                           "@daily",
                           "@midnight",
                           "@hourly",
                           "@every 1h30m",
                           "@every 90s",
                           "@every 1.5h"}) {
    EXPECT_TRUE(Schedule::Parse(expr).ok()) << expr << ": " << Schedule::Parse(expr).status().message();
  }
}

TEST(CronParse, FieldBits) {
  auto e = CronExpr::Parse("*/15 1-10/3 5/10 jan,Mar sun-tue");
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->minutes(), (1ULL << 0) | (1ULL << 15) | (1ULL << 30) | (1ULL << 45));
  EXPECT_EQ(e->hours(), (1U << 1) | (1U << 4) | (1U << 7) | (1U << 10));
  EXPECT_EQ(e->days_of_month(), (1U << 5) | (1U << 15) | (1U << 25));  // "5/10" = 5-31/10
  EXPECT_EQ(e->months(), (1U << 1) | (1U << 3));
  EXPECT_EQ(e->days_of_week(), 0b111);
  EXPECT_EQ(e->seconds(), 1ULL) << "no seconds field means second 0";
  EXPECT_FALSE(e->has_seconds());

  auto with_seconds = CronExpr::Parse("*/20 * * * * *");
  ASSERT_TRUE(with_seconds.ok());
  EXPECT_TRUE(with_seconds->has_seconds());
  EXPECT_EQ(with_seconds->seconds(), (1ULL << 0) | (1ULL << 20) | (1ULL << 40));
}

TEST(CronParse, MacrosMeanWhatRobfigCronMeans) {
  auto same = [](const char* macro, const char* fields) {
    auto a = CronExpr::Parse(macro);
    auto b = CronExpr::Parse(fields);
    ASSERT_TRUE(a.ok() && b.ok());
    EXPECT_EQ(a->minutes(), b->minutes()) << macro;
    EXPECT_EQ(a->hours(), b->hours()) << macro;
    EXPECT_EQ(a->days_of_month(), b->days_of_month()) << macro;
    EXPECT_EQ(a->months(), b->months()) << macro;
    EXPECT_EQ(a->days_of_week(), b->days_of_week()) << macro;
  };
  same("@yearly", "0 0 1 1 *");
  same("@annually", "0 0 1 1 *");
  same("@monthly", "0 0 1 * *");
  same("@weekly", "0 0 * * 0");
  same("@daily", "0 0 * * *");
  same("@midnight", "0 0 * * *");
  same("@hourly", "0 * * * *");
}

// ---- day-of-month / day-of-week rule ----------------------------------------------

TEST(CronDays, BothRestrictedMeansEither) {
  // 2012-06-15 is a Friday, 2012-08-01 a Wednesday (robfig/cron TestActivation).
  auto e = *CronExpr::Parse("* * 1,15 * Sun");
  EXPECT_TRUE(e.Matches(2012, 6, 15, 0, 0, 0));
  EXPECT_TRUE(e.Matches(2012, 8, 1, 0, 0, 0));
  EXPECT_TRUE(e.Matches(2012, 7, 15, 0, 0, 0));  // a Sunday
  EXPECT_FALSE(e.Matches(2012, 7, 9, 0, 0, 0));  // Monday the 9th
}

TEST(CronDays, StepClearsTheStarSoEitherMatches) {
  auto e = *CronExpr::Parse("* * */2 * Sun");
  EXPECT_TRUE(e.Matches(2012, 7, 15, 0, 0, 0));   // Sunday the 15th
  EXPECT_TRUE(e.Matches(2012, 7, 9, 0, 0, 0));    // odd day 9 matches */2 (1,3,5,...)
  EXPECT_FALSE(e.Matches(2012, 7, 10, 0, 0, 0));  // Tuesday the 10th
}

TEST(CronDays, StarMeansBoth) {
  EXPECT_FALSE(CronExpr::Parse("* * 1,15 * *")->Matches(2012, 7, 9, 0, 0, 0));
  EXPECT_FALSE(CronExpr::Parse("* * * * Mon")->Matches(2012, 7, 15, 0, 0, 0));
  EXPECT_TRUE(CronExpr::Parse("* * * * Mon")->Matches(2012, 7, 9, 0, 0, 0));
  EXPECT_TRUE(CronExpr::Parse("* * ? * Mon")->Matches(2012, 7, 9, 0, 0, 0));
}

// ---- next fire, UTC ----------------------------------------------------------------

TEST(CronNext, Basics) {
  EXPECT_EQ(S(MustParse("*/15 * * * *").Next(T("2026-03-09T12:07:00Z"))), "2026-03-09T12:15:00Z");
  EXPECT_EQ(S(MustParse("*/15 * * * *").Next(T("2026-03-09T12:15:00Z"))), "2026-03-09T12:30:00Z");
  EXPECT_EQ(S(MustParse("*/15 * * * *").Next(T("2026-03-09T23:59:59Z"))), "2026-03-10T00:00:00Z");
  EXPECT_EQ(S(MustParse("* * * * * *").Next(T("2026-03-09T12:07:00Z"))), "2026-03-09T12:07:01Z");
  EXPECT_EQ(S(MustParse("*/10 * * * * *").Next(T("2026-12-31T23:59:55Z"))), "2027-01-01T00:00:00Z");
  EXPECT_EQ(S(MustParse("0 9 * * 1-5").Next(T("2026-11-20T10:00:00Z"))), "2026-11-23T09:00:00Z");  // Fri -> Mon
  EXPECT_EQ(S(MustParse("@yearly").Next(T("2026-06-01T00:00:00Z"))), "2027-01-01T00:00:00Z");
  EXPECT_EQ(S(MustParse("@weekly").Next(T("2026-11-21T00:00:00Z"))), "2026-11-22T00:00:00Z");
}

TEST(CronNext, MonthEnds) {
  EXPECT_EQ(S(MustParse("0 0 31 * *").Next(T("2026-04-01T00:00:00Z"))), "2026-05-31T00:00:00Z");
  EXPECT_EQ(S(MustParse("0 0 30 * *").Next(T("2026-01-31T00:00:00Z"))), "2026-03-30T00:00:00Z");
  EXPECT_EQ(S(MustParse("0 12 31 1-12 *").Next(T("2026-09-01T00:00:00Z"))), "2026-10-31T12:00:00Z");
}

TEST(CronNext, LeapYears) {
  EXPECT_EQ(S(MustParse("0 0 29 2 *").Next(T("2026-03-01T00:00:00Z"))), "2028-02-29T00:00:00Z");
  // 2100 is not a leap year: eight years between 29 Februaries.
  EXPECT_EQ(S(MustParse("0 0 29 2 *").Next(T("2096-03-01T00:00:00Z"))), "2104-02-29T00:00:00Z");
  EXPECT_EQ(S(MustParse("0 0 29 2 *").Next(T("1999-03-01T00:00:00Z"))), "2000-02-29T00:00:00Z");
  EXPECT_EQ(S(MustParse("0 0 * 2 *").Prev(T("2024-03-01T00:00:00Z"))), "2024-02-29T00:00:00Z");
}

TEST(CronNext, RobfigDomDowExamples) {
  // robfig/cron TestNext: dow step, and dom/dow OR.
  EXPECT_EQ(S(MustParse("0 0 0 * Feb Mon/2").Next(T("2012-07-09T23:35:00Z"))), "2013-02-01T00:00:00Z");
  EXPECT_EQ(S(MustParse("0 0 0 */5 Apr,Aug,Oct Mon").Next(T("2012-07-09T23:35:00Z"))), "2012-08-01T00:00:00Z");
}

// ---- DST ---------------------------------------------------------------------------

TEST(CronDst, NewYorkSpringForwardSkipsTheMissingHour) {
  auto s = MustParse("30 2 * * *", "America/New_York");
  // 2026-03-08 02:00 EST jumps to 03:00 EDT: 02:30 does not exist and does not fire.
  EXPECT_EQ(S(s.Next(T("2026-03-08T05:00:00Z"))), "2026-03-09T06:30:00Z");
  auto hourly = MustParse("0 * * * *", "America/New_York");
  EXPECT_EQ(S(hourly.Next(T("2026-03-08T06:00:00Z"))), "2026-03-08T07:00:00Z");  // 01:00 EST -> 03:00 EDT
  auto minutely = MustParse("* * * * *", "America/New_York");
  EXPECT_EQ(S(minutely.Next(T("2026-03-08T06:59:00Z"))), "2026-03-08T07:00:00Z");
}

TEST(CronDst, NewYorkFallBackFiresTwice) {
  auto s = MustParse("30 1 * * *", "America/New_York");
  // 2026-11-01 01:59:59 EDT falls back to 01:00 EST: 01:30 happens twice.
  std::vector<Instant> fires;
  EXPECT_EQ(s.Between(T("2026-11-01T00:00:00Z"), T("2026-11-03T00:00:00Z"), 10, fires), 3U);
  ASSERT_EQ(fires.size(), 3U);
  EXPECT_EQ(FormatRfc3339(fires[0]), "2026-11-01T05:30:00Z");  // 01:30 EDT
  EXPECT_EQ(FormatRfc3339(fires[1]), "2026-11-01T06:30:00Z");  // 01:30 EST
  EXPECT_EQ(FormatRfc3339(fires[2]), "2026-11-02T06:30:00Z");
  // robfig/cron: "0 0 1 * * ?" fires at 01:00 EDT and 01:00 EST.
  auto one = MustParse("0 0 1 * * ?", "America/New_York");
  EXPECT_EQ(S(one.Next(T("2026-11-01T05:00:00Z"))), "2026-11-01T06:00:00Z");
}

TEST(CronDst, Berlin) {
  auto s = MustParse("30 2 * * *", "Europe/Berlin");
  EXPECT_EQ(S(s.Next(T("2026-03-28T23:00:00Z"))), "2026-03-30T00:30:00Z");  // skipped on 29 March
  std::vector<Instant> fires;
  s.Between(T("2026-10-24T23:00:00Z"), T("2026-10-25T23:00:00Z"), 10, fires);
  ASSERT_EQ(fires.size(), 2U);
  EXPECT_EQ(FormatRfc3339(fires[0]), "2026-10-25T00:30:00Z");  // 02:30 CEST
  EXPECT_EQ(FormatRfc3339(fires[1]), "2026-10-25T01:30:00Z");  // 02:30 CET
}

TEST(CronDst, LordHoweHalfHourShift) {
  // DST ends 2026-04-05 02:00 (+11) -> 01:30 (+10:30); starts 2026-10-04 02:00 -> 02:30.
  std::vector<Instant> fires;
  MustParse("45 1 * * *", "Australia/Lord_Howe")
      .Between(T("2026-04-04T12:00:00Z"), T("2026-04-05T12:00:00Z"), 10, fires);
  ASSERT_EQ(fires.size(), 2U);
  EXPECT_EQ(FormatRfc3339(fires[0]), "2026-04-04T14:45:00Z");
  EXPECT_EQ(FormatRfc3339(fires[1]), "2026-04-04T15:15:00Z");
  EXPECT_EQ(S(MustParse("15 2 * * *", "Australia/Lord_Howe").Next(T("2026-10-03T12:00:00Z"))), "2026-10-04T15:15:00Z");
  // 02:15 on 4 October does not exist; 01:15 and 02:45 do.
  EXPECT_EQ(S(MustParse("45 2 * * *", "Australia/Lord_Howe").Next(T("2026-10-03T12:00:00Z"))), "2026-10-03T15:45:00Z");
}

TEST(CronDst, Chatham) {
  // +13:45 -> +12:45 at 03:45 on 2026-04-05; +12:45 -> +13:45 at 02:45 on 2026-09-27.
  std::vector<Instant> fires;
  MustParse("0 3 * * *", "Pacific/Chatham").Between(T("2026-04-04T10:00:00Z"), T("2026-04-05T10:00:00Z"), 10, fires);
  ASSERT_EQ(fires.size(), 2U);
  EXPECT_EQ(FormatRfc3339(fires[0]), "2026-04-04T13:15:00Z");
  EXPECT_EQ(FormatRfc3339(fires[1]), "2026-04-04T14:15:00Z");
  EXPECT_EQ(S(MustParse("0 3 * * *", "Pacific/Chatham").Next(T("2026-09-26T10:00:00Z"))), "2026-09-27T13:15:00Z");
}

TEST(CronDst, SaoPauloMissingMidnight) {
  // 2018-11-04 00:00 -03 jumped to 01:00 -02: the midnight did not exist.
  EXPECT_EQ(S(MustParse("0 0 * * *", "America/Sao_Paulo").Next(T("2018-11-03T12:00:00Z"))), "2018-11-05T02:00:00Z");
  // robfig/cron TestNext (issue #157).
  EXPECT_EQ(S(MustParse("0 0 9 10 * ?", "America/Sao_Paulo").Next(T("2018-10-17T09:00:00Z"))), "2018-11-10T11:00:00Z");
  // No DST since 2019.
  EXPECT_EQ(S(MustParse("0 0 * * *", "America/Sao_Paulo").Next(T("2026-11-01T12:00:00Z"))), "2026-11-02T03:00:00Z");
}

TEST(CronDst, KolkataHalfHourOffsetNoDst) {
  EXPECT_EQ(S(MustParse("0 9 * * *", "Asia/Kolkata").Next(T("2026-01-01T00:00:00Z"))), "2026-01-01T03:30:00Z");
  EXPECT_EQ(S(MustParse("0 9 * * *", "Asia/Kolkata").Next(T("2026-07-01T03:30:00Z"))), "2026-07-02T03:30:00Z");
}

// ---- Prev and Between -----------------------------------------------------------------

TEST(CronPrev, MostRecentAtOrBefore) {
  auto s = MustParse("*/15 * * * *");
  EXPECT_EQ(S(s.Prev(T("2026-03-09T12:15:00Z"))), "2026-03-09T12:15:00Z");
  EXPECT_EQ(S(s.Prev(T("2026-03-09T12:14:59Z"))), "2026-03-09T12:00:00Z");
  EXPECT_EQ(S(MustParse("0 0 1 1 *").Prev(T("2026-06-01T00:00:00Z"))), "2026-01-01T00:00:00Z");
  EXPECT_EQ(S(MustParse("30 1 * * *", "America/New_York").Prev(T("2026-11-01T06:45:00Z"))), "2026-11-01T06:30:00Z");
  EXPECT_EQ(S(MustParse("30 1 * * *", "America/New_York").Prev(T("2026-11-01T06:29:59Z"))), "2026-11-01T05:30:00Z");
  EXPECT_EQ(S(MustParse("30 2 * * *", "America/New_York").Prev(T("2026-03-08T12:00:00Z"))), "2026-03-07T07:30:00Z");
}

TEST(CronBetween, CapsTheCount) {
  std::vector<Instant> out;
  EXPECT_EQ(MustParse("* * * * *").Between(T("2026-01-01T00:00:00Z"), T("2026-01-01T01:00:00Z"), 1000, out), 60U);
  EXPECT_EQ(FormatRfc3339(out.front()), "2026-01-01T00:01:00Z");
  EXPECT_EQ(FormatRfc3339(out.back()), "2026-01-01T01:00:00Z") << "the interval is closed on the right";
  out.clear();
  EXPECT_EQ(MustParse("* * * * *").Between(T("2026-01-01T00:00:00Z"), T("2026-01-01T01:00:00Z"), 7, out), 7U);
}

TEST(CronEvery, AnchoredConstantDelay) {
  auto s = MustParse("@every 1h30m").Anchored(T("2026-01-01T00:00:10Z"));
  EXPECT_EQ(s.every(), std::chrono::seconds(5400));
  EXPECT_EQ(S(s.Next(T("2026-01-01T00:00:00Z"))), "2026-01-01T01:30:10Z");
  EXPECT_EQ(S(s.Next(T("2026-01-01T01:30:10Z"))), "2026-01-01T03:00:10Z");
  EXPECT_EQ(S(s.Prev(T("2026-01-01T03:00:09Z"))), "2026-01-01T01:30:10Z");
  EXPECT_EQ(MustParse("@every 500ms").every(), std::chrono::seconds(1)) << "under one second runs every second";
}

// ---- a brute-force oracle ----------------------------------------------------------------

// An instant fires iff its local civil time matches the fields: that single rule is the
// whole DST semantics (gap times have no instant; repeated times have two).
bool OracleFires(const CronExpr& e, const date::time_zone* zone, Instant u) {
  auto local = zone ? zone->to_local(u) : date::local_seconds{u.time_since_epoch()};
  auto day = date::floor<date::days>(local);
  date::year_month_day ymd{day};
  date::hh_mm_ss hms{local - day};
  return e.Matches(static_cast<int>(ymd.year()), static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()),
                   static_cast<unsigned>(hms.hours().count()), static_cast<unsigned>(hms.minutes().count()),
                   static_cast<unsigned>(hms.seconds().count()));
}

TEST(CronOracle, RandomSchedulesMatchBruteForce) {
  std::mt19937 rng(20261121);
  auto pick = [&rng](std::vector<std::string> options) {
    return options[std::uniform_int_distribution<size_t>(0, options.size() - 1)(rng)];
  };
  const std::vector<std::string> zones = {
      "", "America/New_York", "Europe/Berlin", "Australia/Lord_Howe", "Pacific/Chatham", "Asia/Kolkata"};
  // Windows around DST transitions and ordinary days.
  const std::vector<std::string> starts = {"2026-03-07T18:00:00Z", "2026-10-31T18:00:00Z", "2026-03-28T12:00:00Z",
                                           "2026-10-24T12:00:00Z", "2026-04-04T00:00:00Z", "2026-10-03T00:00:00Z",
                                           "2026-09-26T00:00:00Z", "2028-02-27T00:00:00Z"};
  size_t checked = 0, total_fires = 0;
  for (int iter = 0; iter < 300; ++iter) {
    std::string expr = pick({"*", "*/7", "0", "30", "15,45", "0-10/5", "59"}) + " " +
                       pick({"*", "1", "2", "3", "1-3", "*/4", "0,12,23"}) + " " +
                       pick({"*", "1", "29", "*/3", "15-31"}) + " " + pick({"*", "2", "3,4", "9-12", "*/2"}) + " " +
                       pick({"*", "0", "1-5", "sun,sat", "*/3"});
    std::string tz = pick(zones);
    auto sched = Schedule::Parse(expr, tz);
    if (!sched.ok()) continue;  // e.g. "29 2" is fine, but some combos cannot fire
    Instant from = T(pick(starts).c_str());
    Instant to = from + std::chrono::hours(48);
    std::vector<Instant> expected;
    for (Instant u = from + std::chrono::minutes(1); u <= to; u += std::chrono::minutes(1)) {
      if (OracleFires(sched->expr(), tz.empty() ? nullptr : date::locate_zone(tz), u)) expected.push_back(u);
    }
    std::vector<Instant> got;
    sched->Between(from, to, 100000, got);
    ++checked;
    total_fires += expected.size();
    ASSERT_EQ(got, expected) << "schedule \"" << expr << "\" in " << (tz.empty() ? "UTC" : tz) << " from "
                             << FormatRfc3339(from);
    // Prev agrees with Next.
    for (const Instant& t : got) {
      ASSERT_EQ(S(sched->Prev(t)), S(t));
      ASSERT_LT(*sched->Prev(t - std::chrono::seconds(1)), t);
    }
  }
  // The oracle must have had real work: most schedules parse and fire in 48 hours.
  EXPECT_GT(checked, 250U);
  EXPECT_GT(total_fires, 5000U);
}

TEST(CronAlloc, NextPrevAndBetweenDoNotAllocate) {
  auto utc = MustParse("*/5 * * * * *");
  auto ny = MustParse("30 2 * * *", "America/New_York");
  auto yearly = MustParse("0 0 29 2 *", "Europe/Berlin");
  std::vector<Instant> out;
  out.reserve(64);
  Instant t = T("2026-03-01T00:00:00Z");
  // The tz database and each zone's transitions load lazily on first use.
  (void)ny.Next(t);
  (void)yearly.Next(t);
  g_allocs = 0;
  g_count_allocs = true;
  for (int i = 0; i < 1000; ++i) {
    t = *utc.Next(t);
    (void)ny.Next(t);
    (void)ny.Prev(t);
    (void)yearly.Next(t);
  }
  utc.Between(t, t + std::chrono::minutes(5), 64, out);
  g_count_allocs = false;
  EXPECT_EQ(g_allocs.load(), 0);
  EXPECT_EQ(out.size(), 60U);
}

// ---- RFC 3339 ---------------------------------------------------------------------------

TEST(Rfc3339, ParseAndFormat) {
  EXPECT_EQ(FormatRfc3339(T("2026-03-09T13:00:00Z")), "2026-03-09T13:00:00Z");
  EXPECT_EQ(FormatRfc3339(T("2026-03-09T09:00:00-04:00")), "2026-03-09T13:00:00Z");
  EXPECT_EQ(FormatRfc3339(T("2026-03-09T18:30:00.123+05:30")), "2026-03-09T13:00:00Z");
  for (const char* bad : {"2026-03-09", "2026-02-30T00:00:00Z", "2026-03-09T13:00:00", "2026-03-09T25:00:00Z",
                          "yesterday", "2026-03-09T13:00:00+0100"}) {
    EXPECT_FALSE(ParseRfc3339(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace cronlane::dispatcher
