// common/time.h: RFC 3339 and MicroTime formatting and parsing, Go durations, local time.
#include "common/time.h"

#include <date/date.h>

#include <date/tz.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>

namespace cronlane {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

TEST(Time, Rfc3339AgreesWithDateFormatOnEveryKindOfInstant) {
  // FormatRfc3339 formats by hand (it is on the fire path); date::format is the oracle.
  using std::chrono::seconds;
  auto oracle = [](std::chrono::sys_seconds t) { return date::format("%FT%TZ", t); };
  // system_clock counts nanoseconds: it spans about 1678-2262.
  for (int64_t s : {int64_t{0}, int64_t{-1}, int64_t{951782400} /* 2000-02-29 */, int64_t{4107542399},
                    int64_t{-9000000000} /* 1684 */, int64_t{9000000000} /* 2255 */}) {
    std::chrono::sys_seconds t{seconds{s}};
    EXPECT_EQ(FormatRfc3339(t), oracle(t)) << s;
  }
  std::mt19937_64 rng(20261130);
  std::uniform_int_distribution<int64_t> any(-9000000000, 9000000000);
  for (int i = 0; i < 200000; ++i) {
    std::chrono::sys_seconds t{seconds{any(rng)}};
    ASSERT_EQ(FormatRfc3339(t), oracle(t)) << t.time_since_epoch().count();
  }
}

TEST(Time, Rfc3339RoundTripsAndFloorsToSeconds) {
  auto t = ParseRfc3339("2026-03-09T13:00:05Z");
  ASSERT_TRUE(t.ok());
  EXPECT_EQ(FormatRfc3339(*t), "2026-03-09T13:00:05Z");
  EXPECT_EQ(FormatRfc3339(std::chrono::system_clock::time_point(*t) + 999ms), "2026-03-09T13:00:05Z");
  EXPECT_EQ(FormatRfc3339(*ParseRfc3339("2026-03-09T09:00:05-04:00")), "2026-03-09T13:00:05Z");
  EXPECT_EQ(FormatRfc3339(*ParseRfc3339("2026-03-09T13:00:05.987654Z")), "2026-03-09T13:00:05Z");
  EXPECT_LT(FormatRfc3339(*t), FormatRfc3339(*t + 1s)) << "strings order like instants";
}

TEST(Time, MicroTimeKeepsMicroseconds) {
  auto t = std::chrono::system_clock::time_point(*ParseRfc3339("2026-03-09T13:00:05Z")) + 123456789ns;
  EXPECT_EQ(FormatMicroTime(t), "2026-03-09T13:00:05.123456Z");
}

TEST(Time, BadRfc3339IsAClearError) {
  for (const char* bad : {"", "2026-03-09", "2026-02-30T00:00:00Z", "2026-03-09T13:00:05", "2026-03-09T25:00:00Z",
                          "2026-03-09T13:00:05+0400"}) {
    auto r = ParseRfc3339(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_THAT(r.status().message(), HasSubstr("is not RFC 3339"));
  }
}

TEST(Time, GoDurations) {
  EXPECT_EQ(*ParseGoDuration("1h30m"), 5400s);
  EXPECT_EQ(*ParseGoDuration("1.5h"), 5400s);
  EXPECT_EQ(*ParseGoDuration("90s"), 90s);
  EXPECT_EQ(*ParseGoDuration("1500ms"), 1s) << "truncated to whole seconds";
  EXPECT_EQ(ParseGoDuration("5x").status().message(), "invalid duration \"5x\": unknown unit \"x\"");
  EXPECT_EQ(ParseGoDuration("-5m").status().message(), "invalid duration \"-5m\": must not be negative");
}

}  // namespace
}  // namespace cronlane
