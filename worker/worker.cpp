#include "worker/worker.h"

#include <spdlog/spdlog.h>
#include <nlohmann/json.hpp>

namespace cronlane::worker {

using namespace std::chrono_literals;

Worker::Worker(WorkerOptions options, Handler handler, Clock& clock)
    : options_(std::move(options)), handler_(std::move(handler)), clock_(clock) {}

WorkerStats Worker::Stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

bool Worker::Seen(const std::string& id) {
  if (recent_set_.count(id) != 0) return true;
  recent_.push_back(id);
  recent_set_.insert(id);
  while (recent_.size() > options_.dedupe_window) {
    recent_set_.erase(recent_.front());
    recent_.pop_front();
  }
  return false;
}

void Worker::Report(const FiredTask& t, const std::string& outcome, int attempts, std::chrono::milliseconds took) {
  if (options_.results_topic.empty()) return;
  nlohmann::json r = {{"id", t.id},         {"subject", t.subject}, {"time", t.time},
                      {"outcome", outcome}, {"attempts", attempts}, {"durationMs", took.count()}};
  Status s = kafka::Produce(producer_.get(), options_.results_topic, t.subject, r.dump());
  if (!s.ok()) spdlog::warn("result for {}: {}", t.id, s.ToString());
}

bool Worker::Process(const kafka::Message& m, CancelToken& cancel) {
  auto decoded = DecodeFiredTask(m);
  if (!decoded.ok()) {
    spdlog::warn("{}[{}]@{}: {}; dead-lettered", m.topic, m.partition, m.offset, decoded.status().message());
    if (!options_.dead_letter_topic.empty()) {
      (void)kafka::Produce(producer_.get(), options_.dead_letter_topic, m.key, m.value, m.headers);
    }
    std::lock_guard lock(mu_);
    ++stats_.invalid;
    return true;
  }
  const FiredTask& t = *decoded;
  if (Seen(t.id)) {
    spdlog::info("{} already processed recently: skipped", t.id);
    std::lock_guard lock(mu_);
    ++stats_.duplicates;
    return true;
  }
  auto started = clock_.SteadyNow();
  auto backoff = std::chrono::milliseconds(std::chrono::seconds(t.backoff_seconds));
  for (int attempt = 1; attempt <= t.max_attempts; ++attempt) {
    {
      std::lock_guard lock(mu_);
      ++stats_.attempts;
    }
    Outcome o = handler_(t, attempt, cancel);
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(clock_.SteadyNow() - started);
    if (o == Outcome::kSucceeded) {
      Report(t, "Succeeded", attempt, took);
      std::lock_guard lock(mu_);
      ++stats_.succeeded;
      return true;
    }
    if (cancel.cancelled()) {
      // Shutting down mid-task: hand it back (no commit) so another worker runs it.
      recent_set_.erase(t.id);
      return false;
    }
    spdlog::warn("{} attempt {}/{} {}", t.id, attempt, t.max_attempts,
                 o == Outcome::kTimedOut ? "timed out" : "failed");
    if (attempt < t.max_attempts) {
      if (cancel.WaitFor(backoff)) {
        recent_set_.erase(t.id);
        return false;
      }
      backoff = std::min(backoff * 2, options_.max_backoff);
    }
  }
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(clock_.SteadyNow() - started);
  Report(t, "Failed", t.max_attempts, took);
  if (!options_.dead_letter_topic.empty()) {
    auto headers = m.headers;
    headers.push_back({"cronlane_attempts", std::to_string(t.max_attempts)});
    (void)kafka::Produce(producer_.get(), options_.dead_letter_topic, m.key, m.value, headers);
  }
  std::lock_guard lock(mu_);
  ++stats_.failed;
  if (!options_.dead_letter_topic.empty()) ++stats_.dead_lettered;
  return true;
}

Status Worker::Run(CancelToken& cancel) {
  kafka::Properties cp = options_.base;
  cp["group.id"] = options_.group;
  cp["enable.auto.commit"] = "false";
  cp["auto.offset.reset"] = "earliest";
  cp["isolation.level"] = "read_committed";
  // A worker that dies (kill -9, node loss) hands its partitions over after 10 s
  // instead of the broker's 45 s default.
  cp.try_emplace("session.timeout.ms", "10000");
  auto consumer = kafka::NewConsumer(cp);
  if (!consumer.ok()) return consumer.status();
  consumer_ = std::move(*consumer);
  kafka::Properties pp = options_.base;
  pp["enable.idempotence"] = "true";
  auto producer = kafka::NewProducer(pp);
  if (!producer.ok()) return producer.status();
  producer_ = std::move(*producer);
  if (Status s = kafka::Subscribe(consumer_.get(), options_.topics); !s.ok()) return s;
  spdlog::info("worker joined group {} on {} topic(s)", options_.group, options_.topics.size());
  while (!cancel.cancelled()) {
    auto m = kafka::Poll(consumer_.get(), 200ms);
    if (!m.ok()) {
      spdlog::warn("consume: {}", m.status().ToString());
      continue;
    }
    if (!m->has_value()) continue;
    const kafka::Message& msg = **m;
    if (!Process(msg, cancel)) break;  // handed back: do not commit
    // Results and dead letters are durable before the offset moves on.
    (void)kafka::Flush(producer_.get(), 10s);
    Status c = kafka::CommitOffset(consumer_.get(), msg.topic, msg.partition, msg.offset + 1);
    if (!c.ok()) spdlog::warn("commit: {}", c.ToString());
  }
  (void)kafka::Flush(producer_.get(), 10s);
  Status closed = kafka::CloseConsumer(consumer_.get());
  if (!closed.ok()) spdlog::warn("{}", closed.ToString());
  spdlog::info("worker left group {}", options_.group);
  return Status::Ok();
}

}  // namespace cronlane::worker
