#include "dispatcher/results_hub.h"

namespace cronlane::dispatcher {

class ResultsHub::Subscription final : public ResultsSource {
 public:
  Subscription(ResultsHub& hub, Subscriber s) : hub_(hub), subscriber_(std::move(s)) {
    subscriber_.delivered = &delivered_;
  }
  // Registers (handing over what the hub remembers), waits for `cancel`, leaves.
  void Run(CancelToken& cancel) override {
    int id = hub_.Add(subscriber_);
    while (!cancel.WaitFor(std::chrono::hours(1))) {
    }
    hub_.Remove(id);
  }
  bool Replayed() const override { return hub_.Replayed(); }
  uint64_t results() const override { return delivered_.load(); }
  uint64_t invalid() const override { return hub_.invalid(); }

 private:
  ResultsHub& hub_;
  Subscriber subscriber_;
  std::atomic<uint64_t> delivered_{0};
};

ResultsHub::ResultsHub(ResultsFollowerOptions options, Clock& clock)
    : clock_(clock),
      lookback_(options.lookback),
      follower_(
          std::move(options), clock,
          [this](const std::string& id, Instant at, const std::string& token) { Finished(id, at, token); },
          [this](const std::string& id, const RunResult& r) { Result(id, r); }) {}

void ResultsHub::Run(CancelToken& cancel) {
  follower_.Run(cancel);
}

std::unique_ptr<ResultsSource> ResultsHub::Subscribe(std::function<bool(const std::string& task_id)> owns,
                                                     ResultsFollower::OnFinished on_finished,
                                                     ResultsFollower::OnResult on_result) {
  return std::make_unique<Subscription>(*this,
                                        Subscriber{std::move(owns), std::move(on_finished), std::move(on_result)});
}

size_t ResultsHub::Remembered() const {
  MutexLock lock(mu_);
  return std::max({finished_.size(), succeeded_.size(), manual_finished_.size(), unsuccessful_.size()});
}

void ResultsHub::Prune() {
  MutexLock lock(mu_);
  PruneLocked();
}

void ResultsHub::PruneLocked() {
  since_prune_ = 0;
  const Instant horizon = std::chrono::floor<std::chrono::seconds>(clock_.Now()) - lookback_;
  std::erase_if(finished_, [&](const auto& e) { return e.second < horizon; });
  std::erase_if(manual_finished_, [&](const auto& e) { return e.second.at < horizon; });
  std::erase_if(succeeded_, [&](const auto& e) { return e.second.finished < horizon; });
  std::erase_if(unsuccessful_, [&](const auto& e) { return e.second.finished < horizon; });
}

void ResultsHub::Finished(const std::string& task_id, Instant scheduled, const std::string& manual_token) {
  MutexLock lock(mu_);
  if (++since_prune_ >= 4096) PruneLocked();
  if (manual_token.empty()) {
    auto [it, added] = finished_.try_emplace(task_id, scheduled);
    if (!added && it->second < scheduled) it->second = scheduled;
  } else {
    manual_finished_[task_id] = ManualFinished{manual_token, scheduled};
  }
  for (auto& [id, s] : subscribers_) {
    if (!s.owns(task_id)) continue;
    if (s.on_finished) s.on_finished(task_id, scheduled, manual_token);
    ++*s.delivered;
  }
}

void ResultsHub::Result(const std::string& task_id, const RunResult& r) {
  MutexLock lock(mu_);
  if (++since_prune_ >= 4096) PruneLocked();
  if (r.outcome == RunOutcome::kSucceeded) {
    auto [it, added] = succeeded_.try_emplace(task_id, r);
    if (!added && it->second.finished <= r.finished) it->second = r;
    if (auto u = unsuccessful_.find(task_id); u != unsuccessful_.end() && u->second.finished <= r.finished) {
      unsuccessful_.erase(u);
    }
  } else if (auto ok = succeeded_.find(task_id); ok == succeeded_.end() || ok->second.finished <= r.finished) {
    auto [it, added] = unsuccessful_.try_emplace(task_id, r);
    if (!added && it->second.finished <= r.finished) it->second = r;
  }
  for (auto& [id, s] : subscribers_) {
    if (!s.owns(task_id)) continue;
    if (s.on_result) s.on_result(task_id, r);
  }
}

int ResultsHub::Add(Subscriber s) {
  MutexLock lock(mu_);
  // What a replay would have said about this subscriber's tasks.
  static const std::string kScheduled;
  for (const auto& [task_id, at] : finished_) {
    if (!s.owns(task_id)) continue;
    if (s.on_finished) s.on_finished(task_id, at, kScheduled);
    ++*s.delivered;
  }
  for (const auto& [task_id, m] : manual_finished_) {
    if (s.owns(task_id) && s.on_finished) s.on_finished(task_id, m.at, m.token);
  }
  for (const auto* results : {&succeeded_, &unsuccessful_}) {
    for (const auto& [task_id, r] : *results) {
      if (s.owns(task_id) && s.on_result) s.on_result(task_id, r);
    }
  }
  int id = next_id_++;
  subscribers_.emplace(id, std::move(s));
  return id;
}

void ResultsHub::Remove(int id) {
  MutexLock lock(mu_);
  subscribers_.erase(id);
}

}  // namespace cronlane::dispatcher
