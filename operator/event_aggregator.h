#pragma once
// An EventRecorder that never blocks its caller and keeps a flood of similar Events
// from becoming a flood of API requests (client-go's EventCorrelator is the model).
//
// Record() only queues. Flush(), called by the one thread that owns the aggregator
// (the status writer's), sends what the rules allow to the underlying recorder:
// - Events are "similar" when they share namespace, kind, type and reason (they may
//   differ in object and note).
// - Within a window (10 min by default, from the first Event of a group) the first
//   `max_individual` (10) similar Events are sent as they are.
// - Beyond that they are counted; at most once per `combine_interval` (60 s) one
//   Event about the latest object says how many were combined and carries the
//   latest note, so 100k tasks skipping at once cost a handful of requests.
// - The queue holds at most `max_queued` Events; more are counted as dropped.
//
// Threading: Record() and the counters are safe from any thread; Flush() from one
// thread at a time. No lock is held while the underlying recorder runs.

#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <tuple>

#include "common/clock.h"
#include "common/thread_annotations.h"
#include "operator/events.h"

namespace cronlane::op {

struct EventAggregatorOptions {
  std::chrono::seconds window{600};
  int max_individual = 10;
  std::chrono::seconds combine_interval{60};
  size_t max_queued = 10000;
};

class EventAggregator final : public EventRecorder {
 public:
  EventAggregator(EventRecorder& sink, Clock& clock, EventAggregatorOptions options = {});

  // Queues an Event; returns at once.
  void Record(const ObjectRef& regarding, const std::string& type, const std::string& reason, const std::string& action,
              const std::string& note) override;

  // Sends what the rules allow now; returns how many Events were sent.
  int Flush();

  uint64_t sent() const;
  uint64_t combined() const;  // Events folded into a combined one
  uint64_t dropped() const;   // Events lost to a full queue

 private:
  struct Queued {
    ObjectRef ref;
    std::string type, reason, action, note;
  };
  using GroupKey = std::tuple<std::string, std::string, std::string, std::string>;  // ns, kind, type, reason
  struct Group {
    std::chrono::steady_clock::time_point window_start{};
    int sent_in_window = 0;
    int folded = 0;  // waiting for the next combined Event
    std::optional<std::chrono::steady_clock::time_point> last_combined;
    Queued latest;
  };

  EventRecorder& sink_;
  Clock& clock_;
  const EventAggregatorOptions options_;
  mutable Mutex mu_;
  std::deque<Queued> queue_ GUARDED_BY(mu_);
  std::map<GroupKey, Group> groups_;  // used by Flush() only
  uint64_t sent_ GUARDED_BY(mu_) = 0;
  uint64_t combined_ GUARDED_BY(mu_) = 0;
  uint64_t dropped_ GUARDED_BY(mu_) = 0;
};

}  // namespace cronlane::op
