// The worker's command handler with real /bin/sh processes: the timeout holds
// whatever the command does with stdin, attempts running at once do not share
// pipes, and the command sees the task's variables on top of the worker's
// environment.
#include "worker/exec_handler.h"

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <fstream>
#include <future>
#include <iterator>
#include <thread>
#include <vector>

namespace cronlane::worker {
namespace {

using namespace std::chrono_literals;

// The handler for a command the tests know is valid.
Handler Exec(const std::string& command, std::chrono::seconds timeout, Clock& clock = RealClock::Get(),
             ExecMode mode = ExecMode::kAuto) {
  auto h = ExecHandler(command, timeout, clock, mode);
  EXPECT_TRUE(h.ok()) << h.status().ToString();
  return h.ok() ? *h : Handler();
}

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
  Handler h = Exec("sleep 60", 60s);
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
  Handler h = Exec("sleep 600", std::chrono::hours(1), clock);
  CancelToken cancel, abort;
  EXPECT_EQ(h(Task("slow", ""), 1, cancel, abort), Outcome::kTimedOut);
  EXPECT_GE(clock.SteadyNow().time_since_epoch(), std::chrono::hours(1));
}

TEST(ExecHandler, ACommandThatIgnoresSigtermIsKilledFiveSecondsLater) {
  FakeClock clock;
  Handler h = Exec("trap '' TERM; sleep 600", std::chrono::hours(1), clock);
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
  Handler h = Exec("touch " + started + "; exec sleep 600", std::chrono::hours(1));
  std::thread aborter([&] {
    while (!std::ifstream(started)) std::this_thread::sleep_for(10ms);
    abort.Cancel();
  });
  EXPECT_EQ(h(Task("replaced", ""), 1, cancel, abort), Outcome::kCancelled);
  aborter.join();

  FakeClock clock;
  CancelToken cancelled;
  cancelled.Cancel();
  Handler stubborn = Exec("trap '' TERM; sleep 600", std::chrono::hours(1), clock);
  EXPECT_EQ(stubborn(Task("stubborn", ""), 1, cancel, cancelled), Outcome::kCancelled);
  EXPECT_GE(clock.SteadyNow().time_since_epoch(), kKillGrace) << "killed after the grace";
  EXPECT_LT(clock.SteadyNow().time_since_epoch(), std::chrono::hours(1)) << "not by the timeout";
}

TEST(ExecHandler, AttemptsRunningAtOnceEachSeeTheEndOfTheirOwnStdin) {
  // A command inheriting another attempt's pipe would hold that stdin open, and
  // `cat` there would wait for an end of input that never comes.
  Handler h = Exec("cat >/dev/null", 20s);
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
  Handler h = Exec(
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
  EXPECT_EQ(Exec("cat >/dev/null; exit 0", 10s)(Task("e", ""), 1, cancel, abort), Outcome::kSucceeded);
  EXPECT_EQ(Exec("exit 3", 10s)(Task("e", "x"), 1, cancel, abort), Outcome::kFailed);
}

// The worker blocks SIGTERM and SIGINT in every thread (TerminationSignals) and
// ignores SIGPIPE; a command inheriting that would never see the SIGTERM of a
// timeout or a cancel (only the SIGKILL five seconds later), nor die of a closed
// pipe. It starts as a fresh process does: nothing blocked, nothing ignored.
TEST(ExecHandler, TheCommandStartsWithNoSignalBlockedOrIgnored) {
  Handler h = Exec(
      R"sh(exec awk '/^Sig(Blk|Ign):/ && $2 !~ /^0+$/ { print; bad = 1 } END { exit bad }' /proc/self/status)sh", 10s);
  Outcome got = Outcome::kFailed;
  std::thread run([&] {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    CancelToken cancel, abort;
    got = h(Task("signals", ""), 1, cancel, abort);
  });
  run.join();
  EXPECT_EQ(got, Outcome::kSucceeded);
}

TEST(ExecHandler, ACommandWithoutShellSyntaxRunsWithoutAShell) {
  auto plain = PlanExec("  true  ", ExecMode::kAuto);
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->shell);
  EXPECT_TRUE(plain->path.ends_with("/true")) << plain->path;
  EXPECT_EQ(plain->argv, (std::vector<std::string>{"true"}));
  auto words = PlanExec("echo two  words", ExecMode::kArgv);
  ASSERT_TRUE(words.ok());
  EXPECT_EQ(words->argv, (std::vector<std::string>{"echo", "two", "words"}));
  auto absolute = PlanExec("/bin/echo --level=3", ExecMode::kAuto);
  ASSERT_TRUE(absolute.ok());
  EXPECT_EQ(absolute->path, "/bin/echo");
  EXPECT_FALSE(absolute->shell);

  for (const char* shell : {"echo $HOME", "cat > /tmp/x", "a | b", "a; b", "echo 'x y'", "ls *.txt", "FOO=1 env",
                            "~/bin/job", "echo a\\ b", "a\nb", "no-such-command-cronlane"}) {
    auto p = PlanExec(shell, ExecMode::kAuto);
    ASSERT_TRUE(p.ok()) << shell;
    EXPECT_TRUE(p->shell) << shell;
    EXPECT_EQ(p->argv, (std::vector<std::string>{"sh", "-c", shell}));
    auto refused = PlanExec(shell, ExecMode::kArgv);
    EXPECT_FALSE(refused.ok()) << shell;
  }
  EXPECT_NE(PlanExec("echo $HOME", ExecMode::kArgv).status().message().find("shell syntax ($)"), std::string::npos);
  EXPECT_NE(PlanExec("no-such-command-cronlane", ExecMode::kArgv).status().message().find("not on PATH"),
            std::string::npos);
  auto forced = PlanExec("true", ExecMode::kShell);
  ASSERT_TRUE(forced.ok());
  EXPECT_TRUE(forced->shell);
  EXPECT_FALSE(PlanExec(" ", ExecMode::kAuto).ok());
  EXPECT_FALSE(PlanExec("\r\v\f", ExecMode::kAuto).ok()) << "whitespace of any kind is no command";
  EXPECT_FALSE(ExecHandler("", 10s).ok());
  EXPECT_FALSE(ParseExecMode("bash").ok());
}

// Run directly, the words are the arguments as written (no shell to split or
// expand them), and the task's variables and payload reach the command as well.
TEST(ExecHandler, ADirectCommandGetsItsWordsTheTasksVariablesAndThePayload) {
  const std::string out = ::testing::TempDir() + "/exec-direct-out";
  std::remove(out.c_str());
  Handler h = Exec("/usr/bin/env", 10s, RealClock::Get(), ExecMode::kArgv);
  CancelToken cancel, abort;
  EXPECT_EQ(h(Task("id-direct", "payload"), 2, cancel, abort), Outcome::kSucceeded);
  Handler tee = Exec("tee " + out, 10s, RealClock::Get(), ExecMode::kArgv);
  EXPECT_EQ(tee(Task("id-direct", "the payload"), 1, cancel, abort), Outcome::kSucceeded);
  std::ifstream f(out);
  std::string got((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  EXPECT_EQ(got, "the payload");
  Handler check = Exec(R"sh(test "$CE_ID" = id-direct -a "$CRONLANE_ATTEMPT" = 2)sh", 10s);
  EXPECT_EQ(check(Task("id-direct", ""), 2, cancel, abort), Outcome::kSucceeded);
  EXPECT_EQ(Exec("false", 10s, RealClock::Get(), ExecMode::kArgv)(Task("f", ""), 1, cancel, abort), Outcome::kFailed);
}

}  // namespace
}  // namespace cronlane::worker
