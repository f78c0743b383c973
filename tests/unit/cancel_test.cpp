// common/cancel.h: Unregister has std::stop_callback's guarantee (the callback is not
// running and never will), and a token may be destroyed as soon as a waiter sees it
// cancelled.
#include "common/cancel.h"

#include <gtest/gtest.h>

#include <atomic>
#include <memory>
#include <thread>

namespace cronlane {
namespace {

using namespace std::chrono_literals;

// A callback that another thread unregisters while Cancel() runs it: Unregister
// returns only after the callback has finished. The callback gives Unregister a
// second to return early (it did before the fix) and records whether it had.
TEST(CancelToken, UnregisterWaitsForTheCallbackThatIsRunning) {
  CancelToken token;
  CancelToken started, unregistered;
  std::atomic<bool> returned_while_running{false};
  int id = token.Register([&] {
    started.Cancel();
    returned_while_running = unregistered.WaitFor(1s);
  });
  std::thread canceller([&] { token.Cancel(); });
  ASSERT_TRUE(started.WaitFor(30s));
  token.Unregister(id);
  unregistered.Cancel();
  canceller.join();
  EXPECT_FALSE(returned_while_running);
}

TEST(CancelToken, UnregisterFromInsideTheCallbackDoesNotWait) {
  CancelToken token;
  int id = -1;
  bool ran = false;
  id = token.Register([&] {
    token.Unregister(id);
    ran = true;
  });
  token.Cancel();
  EXPECT_TRUE(ran);
}

TEST(CancelToken, ACallbackUnregisteredByAnEarlierOneDoesNotRun) {
  CancelToken token;
  int second = -1;
  bool second_ran = false;
  token.Register([&] { token.Unregister(second); });
  second = token.Register([&] { second_ran = true; });
  token.Cancel();
  EXPECT_FALSE(second_ran);
}

TEST(CancelToken, RegisterAfterCancelRunsAtOnceAndItsIdUnregisters) {
  CancelToken token;
  token.Cancel();
  bool ran = false;
  int id = token.Register([&] { ran = true; });
  EXPECT_TRUE(ran);
  token.Unregister(id);  // returns
  EXPECT_TRUE(token.cancelled());
}

// The waiter owns the token and destroys it as soon as it sees it cancelled; the
// cancelling thread must not touch it afterwards (a sanitizer build reports it if
// Cancel notifies after unlocking).
TEST(CancelToken, AWaiterMayDestroyTheTokenOnceItSeesItCancelled) {
  for (int i = 0; i < 200; ++i) {
    auto token = std::make_unique<CancelToken>();
    CancelToken* raw = token.get();
    std::thread waiter([t = std::move(token)]() mutable {
      while (!t->WaitFor(10s)) {
      }
      t.reset();
    });
    raw->Cancel();  // no callbacks: returns before the waiter can destroy it
    waiter.join();
  }
}

}  // namespace
}  // namespace cronlane
