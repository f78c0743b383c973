// common/backoff.h and common/retry_policy.h: the one backoff and the one retry
// schedule that the worker runs and the dispatcher bounds.
#include <gtest/gtest.h>

#include "common/backoff.h"
#include "common/retry_policy.h"

namespace cronlane {
namespace {

using namespace std::chrono_literals;

TEST(Backoff, DoublesUpToTheCapAndResets) {
  Backoff b({100ms, 450ms});
  EXPECT_EQ(b.Next(), 100ms);
  EXPECT_EQ(b.Next(), 200ms);
  EXPECT_EQ(b.Next(), 400ms);
  EXPECT_EQ(b.Next(), 450ms);
  EXPECT_EQ(b.Next(), 450ms);
  b.Reset();
  EXPECT_EQ(b.Next(), 100ms);
}

TEST(Backoff, JitterOnlyLengthens) {
  Backoff b({1000ms, 1000ms, 0.5});
  for (int i = 0; i < 200; ++i) {
    auto d = b.Next();
    EXPECT_GE(d, 1000ms);
    EXPECT_LT(d, 1500ms);
  }
}

TEST(Backoff, DelayByFailureCount) {
  EXPECT_EQ(Backoff::Delay(100ms, 350ms, 0), 100ms);
  EXPECT_EQ(Backoff::Delay(100ms, 350ms, 1), 200ms);
  EXPECT_EQ(Backoff::Delay(100ms, 350ms, 2), 350ms);
  EXPECT_EQ(Backoff::Delay(100ms, 350ms, 1000), 350ms) << "no overflow";
}

TEST(RetryPolicy, WaitsDoubleFromBackoffSecondsCappedAtFiveMinutes) {
  RetryPolicy p{5, 100s, 0s};
  EXPECT_EQ(p.BackoffAfter(1), 100s);
  EXPECT_EQ(p.BackoffAfter(2), 200s);
  EXPECT_EQ(p.BackoffAfter(3), 300s);
  EXPECT_EQ(p.BackoffAfter(4), 300s);
  RetryPolicy slow{3, 3600s, 0s};
  EXPECT_EQ(slow.BackoffAfter(1), 3600s) << "a backoffSeconds above the cap is kept, never shortened";
  EXPECT_EQ(slow.BackoffAfter(2), 3600s);
}

TEST(RetryPolicy, LongestRunIsEveryAttemptToItsTimeoutPlusTheWaits) {
  EXPECT_FALSE(RetryPolicy({3, 10s, 0s}).LongestRun()) << "no timeout: unbounded";
  // 60 s slack + 3 x 30 s + waits of 10 s and 20 s.
  EXPECT_EQ(RetryPolicy({3, 10s, 30s}).LongestRun(), 60s + 90s + 30s);
  EXPECT_EQ(RetryPolicy({1, 10s, 30s}).LongestRun(), 90s);
  EXPECT_EQ(RetryPolicy({100, 3600s, 86400s}).LongestRun(), RetryPolicy::kMaxRun);
}

}  // namespace
}  // namespace cronlane
