// The worker's command handler with real /bin/sh processes: the timeout holds
// whatever the command does with stdin, attempts running at once do not share
// pipes, and the command sees the task's variables on top of the worker's
// environment.
#include "worker/exec_handler.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <future>
#include <thread>
#include <vector>

namespace cronlane::worker {
namespace {

using namespace std::chrono_literals;

FiredTask Task(const std::string& id, std::string payload, int timeout_seconds = 0) {
  FiredTask t;
  t.id = id;
  t.source = "/ns/t";
  t.type = "dev.cronlane.task.fired";
  t.time = "2026-01-01T00:00:00Z";
  t.subject = "ns/t";
  t.payload = std::move(payload);
  t.timeout_seconds = timeout_seconds;
  return t;
}

TEST(ExecHandler, ATimeoutHoldsForACommandThatNeverReadsAPayloadLargerThanThePipe) {
  // 1 MiB does not fit the 64 KiB pipe: a blocking write would wait for `sleep`
  // to exit (60 s), and the timeout would only start then.
  Handler h = ExecHandler("sleep 60", 60s);
  CancelToken cancel, abort;
  FiredTask t = Task("big", std::string(1 << 20, 'x'), /*timeout_seconds=*/1);
  std::promise<Outcome> done;
  auto result = done.get_future();
  std::thread run([&] { done.set_value(h(t, 1, cancel, abort)); });
  const bool returned = result.wait_for(30s) == std::future_status::ready;
  run.join();  // at most until sleep 60 ends, if the timeout did not hold
  ASSERT_TRUE(returned) << "the attempt outlived its 1 s timeout by 30 s";
  EXPECT_EQ(result.get(), Outcome::kTimedOut);
}

// The timeout runs on the injected clock: an hour of simulated time passes in the
// handler's waits, so these return at once (on the real clock they would hang
// until ctest's timeout).
TEST(ExecHandler, TheTimeoutRunsOnTheInjectedClock) {
  FakeClock clock;
  Handler h = ExecHandler("sleep 600", std::chrono::hours(1), clock);
  CancelToken cancel, abort;
  EXPECT_EQ(h(Task("slow", ""), 1, cancel, abort), Outcome::kTimedOut);
  EXPECT_GE(clock.SteadyNow().time_since_epoch(), std::chrono::hours(1));
}

TEST(ExecHandler, ACommandThatIgnoresSigtermIsKilledFiveSecondsLater) {
  FakeClock clock;
  Handler h = ExecHandler("trap '' TERM; sleep 600", std::chrono::hours(1), clock);
  CancelToken cancel, abort;
  EXPECT_EQ(h(Task("stubborn", ""), 1, cancel, abort), Outcome::kTimedOut);
  EXPECT_GE(clock.SteadyNow().time_since_epoch(), std::chrono::hours(1) + 5s);
}

// concurrencyPolicy Replace: a cancelled occurrence's command gets SIGTERM (its
// process group) at once, and SIGKILL kKillGrace later if it ignores it.
TEST(ExecHandler, AnAbortSendsSigtermThenSigkillAfterTheGrace) {
  CancelToken cancel, abort;
  const std::string started = ::testing::TempDir() + "/exec-abort-started";
  std::remove(started.c_str());
  // The command tells it started, then would run for ten minutes; the abort comes
  // once it runs, and the attempt returns only when SIGTERM ended it.
  Handler h = ExecHandler("touch " + started + "; exec sleep 600", std::chrono::hours(1));
  std::thread aborter([&] {
    while (!std::ifstream(started)) std::this_thread::sleep_for(10ms);
    abort.Cancel();
  });
  EXPECT_EQ(h(Task("replaced", ""), 1, cancel, abort), Outcome::kCancelled);
  aborter.join();

  FakeClock clock;
  CancelToken cancelled;
  cancelled.Cancel();
  Handler stubborn = ExecHandler("trap '' TERM; sleep 600", std::chrono::hours(1), clock);
  EXPECT_EQ(stubborn(Task("stubborn", ""), 1, cancel, cancelled), Outcome::kCancelled);
  EXPECT_GE(clock.SteadyNow().time_since_epoch(), kKillGrace) << "killed after the grace";
  EXPECT_LT(clock.SteadyNow().time_since_epoch(), std::chrono::hours(1)) << "not by the timeout";
}

TEST(ExecHandler, AttemptsRunningAtOnceEachSeeTheEndOfTheirOwnStdin) {
  // A command inheriting another attempt's pipe would hold that stdin open, and
  // `cat` there would wait for an end of input that never comes.
  Handler h = ExecHandler("cat >/dev/null", 20s);
  std::vector<std::thread> threads;
  std::vector<int> outcomes(4 * 25, -1);
  for (int w = 0; w < 4; ++w) {
    threads.emplace_back([&, w] {
      CancelToken cancel, abort;
      for (int i = 0; i < 25; ++i) {
        FiredTask t = Task("t" + std::to_string(w) + "-" + std::to_string(i), std::string(100 * 1024, 'p'), 20);
        outcomes[static_cast<size_t>(w * 25 + i)] = static_cast<int>(h(t, 1, cancel, abort));
      }
    });
  }
  for (auto& t : threads) t.join();
  for (size_t i = 0; i < outcomes.size(); ++i) {
    EXPECT_EQ(outcomes[i], static_cast<int>(Outcome::kSucceeded)) << "attempt " << i;
  }
}

TEST(ExecHandler, TheCommandSeesTheTaskOnTopOfTheWorkersEnvironment) {
  ::setenv("CRONLANE_EXEC_TEST", "from-the-worker", 1);
  ::setenv("CE_ID", "stale-value", 1);
  Handler h = ExecHandler(
      R"sh(test "$CE_ID" = "id-7" && test "$CRONLANE_ATTEMPT" = 3 && test "$CE_SUBJECT" = ns/t &&
         test "$CRONLANE_EXEC_TEST" = from-the-worker && test "$(cat)" = payload)sh",
      10s);
  CancelToken cancel, abort;
  EXPECT_EQ(h(Task("id-7", "payload"), 3, cancel, abort), Outcome::kSucceeded);
  EXPECT_STREQ(::getenv("CE_ID"), "stale-value") << "the worker's own environment is not changed";
  EXPECT_EQ(h(Task("id-8", "payload"), 3, cancel, abort), Outcome::kFailed) << "and the check can fail";
  ::unsetenv("CE_ID");
  ::unsetenv("CRONLANE_EXEC_TEST");
}

TEST(ExecHandler, ExitStatusAndAnEmptyPayload) {
  CancelToken cancel, abort;
  EXPECT_EQ(ExecHandler("cat >/dev/null; exit 0", 10s)(Task("e", ""), 1, cancel, abort), Outcome::kSucceeded);
  EXPECT_EQ(ExecHandler("exit 3", 10s)(Task("e", "x"), 1, cancel, abort), Outcome::kFailed);
}

}  // namespace
}  // namespace cronlane::worker
