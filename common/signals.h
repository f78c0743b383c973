#pragma once
// SIGTERM and SIGINT as a CancelToken, for the binaries' main(). Construct
// TerminationSignals first thing in main, before any thread starts (threads
// inherit the blocked mask, so only the waiting thread ever receives them); then
// CancelOnSignal() waits on a detached thread, logs `what` and cancels.

#include <pthread.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <string>
#include <thread>

#include "common/cancel.h"

namespace cronlane {

class TerminationSignals {
 public:
  TerminationSignals() {
    sigemptyset(&set_);
    sigaddset(&set_, SIGTERM);
    sigaddset(&set_, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
  }
  // `cancel` must outlive the process's main (it is used from a detached thread).
  void CancelOnSignal(CancelToken& cancel, std::string what) {
    std::thread([this, &cancel, what = std::move(what)] {
      int sig = 0;
      sigwait(&set_, &sig);
      spdlog::info("received signal {}: {}", sig, what);
      cancel.Cancel();
    }).detach();
  }

 private:
  sigset_t set_;
};

}  // namespace cronlane
