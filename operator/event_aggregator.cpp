#include "operator/event_aggregator.h"

#include <vector>

namespace cronlane::op {

EventAggregator::EventAggregator(EventRecorder& sink, Clock& clock, EventAggregatorOptions options)
    : sink_(sink), clock_(clock), options_(options) {}

void EventAggregator::Record(const ObjectRef& regarding, const std::string& type, const std::string& reason,
                             const std::string& action, const std::string& note) {
  MutexLock lock(mu_);
  if (queue_.size() >= options_.max_queued) {
    ++dropped_;
    return;
  }
  queue_.push_back({regarding, type, reason, action, note});
}

int EventAggregator::Flush() {
  std::deque<Queued> queued;
  {
    MutexLock lock(mu_);
    queued.swap(queue_);
  }
  const auto now = clock_.SteadyNow();
  std::vector<Queued> out;
  uint64_t folded_now = 0;
  for (auto& q : queued) {
    Group& g = groups_[{q.ref.ns, q.ref.kind, q.type, q.reason}];
    if (g.sent_in_window == 0 && g.folded == 0) g.window_start = now;
    if (now - g.window_start >= options_.window) {
      g.window_start = now;
      g.sent_in_window = 0;
    }
    if (g.sent_in_window < options_.max_individual) {
      ++g.sent_in_window;
      out.push_back(std::move(q));
    } else {
      ++g.folded;
      ++folded_now;
      g.latest = std::move(q);
    }
  }
  for (auto it = groups_.begin(); it != groups_.end();) {
    Group& g = it->second;
    if (g.folded > 0 && (!g.last_combined || now - *g.last_combined >= options_.combine_interval)) {
      Queued c = g.latest;
      c.note = "(combined from " + std::to_string(g.folded) + " similar events in namespace " + c.ref.ns +
               ", latest shown) " + c.note;
      out.push_back(std::move(c));
      g.folded = 0;
      g.last_combined = now;
    }
    // Forget quiet groups so the map follows what is happening, not history.
    if (g.folded == 0 && now - g.window_start >= options_.window &&
        (!g.last_combined || now - *g.last_combined >= options_.combine_interval)) {
      it = groups_.erase(it);
    } else {
      ++it;
    }
  }
  for (const auto& e : out) sink_.Record(e.ref, e.type, e.reason, e.action, e.note);
  MutexLock lock(mu_);
  sent_ += out.size();
  combined_ += folded_now;
  return static_cast<int>(out.size());
}

uint64_t EventAggregator::sent() const {
  MutexLock lock(mu_);
  return sent_;
}
uint64_t EventAggregator::combined() const {
  MutexLock lock(mu_);
  return combined_;
}
uint64_t EventAggregator::dropped() const {
  MutexLock lock(mu_);
  return dropped_;
}

}  // namespace cronlane::op
