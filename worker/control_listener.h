#pragma once
// Follows the control topic for one worker: the cancel events of
// concurrencyPolicy Replace (common/cloudevent.h CancelEvent). Every worker reads
// every cancel, so it reads without a consumer group; read_committed, so a cancel
// is seen exactly when the occurrence replacing the cancelled one is committed;
// from `lookback` ago, so a worker started after a cancel still knows it when it
// consumes an older occurrence of that task. A missing topic is waited for.
// Messages of other types are ignored (room for other control events).
//
// Threads: Run() on one thread of its own, which also calls `on_cancel`.

#include <atomic>
#include <chrono>
#include <functional>
#include <set>
#include <string>

#include "common/cancel.h"
#include "common/clock.h"
#include "common/kafka.h"
#include "common/logging.h"
#include "common/time.h"

namespace cronlane::worker {

struct ControlListenerOptions {
  kafka::Properties base;  // bootstrap.servers, security
  std::string topic = "cronlane.control";
  std::chrono::seconds lookback{600};
};

class ControlListener {
 public:
  // Occurrences of task UID `task_id` scheduled before `before` are cancelled.
  using OnCancel = std::function<void(const std::string& task_id, Instant before)>;
  ControlListener(ControlListenerOptions options, Clock& clock, OnCancel on_cancel);

  // Reads from `lookback` ago, then follows, until `cancel` fires; retries while
  // the topic is missing or the broker unreachable.
  void Run(CancelToken& cancel);
  // Handles one record (tests feed records directly).
  void Handle(const kafka::Message& m);

  // True once the read from `lookback` ago reached the end of every partition (or
  // the topic does not exist): the worker then knows every cancel that could
  // concern what it consumes.
  bool Replayed() const { return replayed_.load(); }
  uint64_t cancels() const { return cancels_.load(); }
  uint64_t invalid() const { return invalid_.load(); }

 private:
  ControlListenerOptions options_;
  Clock& clock_;
  OnCancel on_cancel_;
  std::atomic<bool> replayed_{false};
  std::atomic<uint64_t> cancels_{0};
  std::atomic<uint64_t> invalid_{0};
  LogThrottle invalid_log_;
};

}  // namespace cronlane::worker
