#include "operator/workqueue.h"

#include <gtest/gtest.h>

#include <thread>

#include "tests/support/process.h"

namespace cronlane::op {
namespace {

using namespace std::chrono_literals;

TEST(WorkQueue, DeduplicatesQueuedKeys) {
  FakeClock clock;
  WorkQueue q(clock);
  q.Add("a");
  q.Add("b");
  q.Add("a");
  EXPECT_EQ(q.Len(), 2U);
  EXPECT_EQ(q.Get(), "a");
  EXPECT_EQ(q.Get(), "b");
  q.Done("a");
  q.Done("b");
  EXPECT_EQ(q.Len(), 0U);
}

TEST(WorkQueue, KeyAddedWhileProcessingIsRequeuedOnDone) {
  FakeClock clock;
  WorkQueue q(clock);
  q.Add("a");
  ASSERT_EQ(q.Get(), "a");
  q.Add("a");  // processing: not handed out twice
  EXPECT_EQ(q.Len(), 0U);
  q.Done("a");
  EXPECT_EQ(q.Len(), 1U);
  EXPECT_EQ(q.Get(), "a");
}

TEST(WorkQueue, AddAfterWaitsForTheClock) {
  FakeClock clock;
  WorkQueue q(clock);
  q.AddAfter("later", 5s);
  q.AddAfter("later", 10s);  // the earlier time wins
  std::optional<std::string> got;
  std::thread t([&] { got = q.Get(); });
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(got.has_value());
  clock.Advance(5s);
  t.join();
  EXPECT_EQ(got, "later");
}

TEST(WorkQueue, RateLimitedBackoffDoublesAndForgetResets) {
  FakeClock clock;
  WorkQueue q(clock, {.base_backoff = 100ms, .max_backoff = 350ms});
  q.AddRateLimited("k");
  EXPECT_EQ(q.Retries("k"), 1);
  clock.Advance(99ms);
  EXPECT_EQ(q.Len(), 0U);
  clock.Advance(1ms);
  EXPECT_EQ(q.Get(), "k");
  q.Done("k");
  q.AddRateLimited("k");  // 200 ms
  q.AddRateLimited("k");  // would be 400 ms, capped at 350
  EXPECT_EQ(q.Retries("k"), 3);
  q.Forget("k");
  EXPECT_EQ(q.Retries("k"), 0);
}

TEST(WorkQueue, ShutDownWakesWaiters) {
  FakeClock clock;
  WorkQueue q(clock);
  std::optional<std::string> got = "x";
  std::thread t([&] { got = q.Get(); });
  // ShutDown must wake a Get() that is already blocked, not only refuse later ones.
  ASSERT_TRUE(testing::WaitUntil([&] { return q.Waiting() == 1; }, 5s));
  q.ShutDown();
  t.join();
  EXPECT_FALSE(got.has_value());
  EXPECT_EQ(q.Waiting(), 0U);
  q.Add("ignored");
  EXPECT_EQ(q.Len(), 0U);
}

}  // namespace
}  // namespace cronlane::op
