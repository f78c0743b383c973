#include "worker/worker.h"

#include "common/backoff.h"
#include "common/retry_policy.h"
#include "common/task_result.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace cronlane::worker {

using namespace std::chrono_literals;

Worker::Worker(WorkerOptions options, Handler handler, Clock& clock)
    : options_(std::move(options)), handler_(std::move(handler)), clock_(clock) {}

WorkerStats Worker::Stats() const {
  MutexLock lock(mu_);
  return stats_;
}

Worker::~Worker() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : pool_) {
    if (t.joinable()) t.join();
  }
}

int Worker::InFlight() const {
  MutexLock lock(mu_);
  return in_flight_;
}

void Worker::Forget(const std::string& id) {
  MutexLock lock(seen_mu_);
  recent_set_.erase(id);
}

bool Worker::Seen(const std::string& id) {
  MutexLock lock(seen_mu_);
  if (recent_set_.count(id) != 0) return true;
  recent_.push_back(id);
  recent_set_.insert(id);
  while (recent_.size() > options_.dedupe_window) {
    recent_set_.erase(recent_.front());
    recent_.pop_front();
  }
  return false;
}

bool Worker::Record(const std::string& topic, const std::optional<std::string>& key, const std::string& value,
                    const std::vector<kafka::Header>& headers, CancelToken& cancel) {
  Backoff backoff({options_.record_retry, options_.max_record_retry, 0.2});
  while (true) {
    std::optional<std::string_view> k;
    if (key) k = *key;
    Status s = kafka::ProduceAndWait(producer_.get(), topic, k, value, headers, options_.record_timeout);
    if (s.ok()) return true;
    {
      MutexLock lock(mu_);
      ++stats_.record_failures;
    }
    spdlog::warn("writing to {}: {}; retrying (the message's offset waits)", topic, s.ToString());
    if (cancel.WaitFor(backoff.Next())) return false;
  }
}

bool Worker::Report(const FiredTask& t, RunOutcome outcome, int attempts, std::chrono::milliseconds took,
                    CancelToken& cancel) {
  if (options_.results_topic.empty()) return true;
  TaskResult r{t.id, t.subject, t.time, outcome, attempts, took.count(), t.shard_index, t.shard_count};
  // A failure is dead-lettered right after its result is recorded (Process).
  r.dead_lettered = outcome == RunOutcome::kFailed && !options_.dead_letter_topic.empty();
  return Record(options_.results_topic, t.subject, EncodeTaskResult(r), {}, cancel);
}

bool Worker::Process(const kafka::Message& m, CancelToken& cancel) {
  auto decoded = DecodeFiredTask(m);
  if (!decoded.ok()) {
    spdlog::warn("{}[{}]@{}: {}; dead-lettered", m.topic, m.partition, m.offset, decoded.status().message());
    if (!options_.dead_letter_topic.empty() && !Record(options_.dead_letter_topic, m.key, m.value, m.headers, cancel)) {
      return false;  // shutting down before the dead letter was written: hand it back
    }
    MutexLock lock(mu_);
    ++stats_.invalid;
    return true;
  }
  const FiredTask& t = *decoded;
  if (Seen(t.id)) {
    spdlog::info("{} already processed recently: skipped", t.id);
    MutexLock lock(mu_);
    ++stats_.duplicates;
    return true;
  }
  // concurrencyPolicy Replace: `abort` fires when a cancel event names this
  // occurrence (or already did). An occurrence without a readable ce_time is never
  // cancelled.
  const std::string task_id = t.TaskId();
  const auto scheduled = ParseRfc3339(t.time);
  CancelToken abort;
  {
    MutexLock lock(mu_);
    if (scheduled.ok() && CancelledLocked(task_id, *scheduled)) abort.Cancel();
    if (scheduled.ok()) running_.emplace(task_id, Running{*scheduled, &abort});
  }
  struct Unlist {
    Worker& w;
    const std::string& task_id;
    const CancelToken* abort;
    ~Unlist() {
      MutexLock lock(w.mu_);
      auto [from, to] = w.running_.equal_range(task_id);
      for (auto it = from; it != to; ++it) {
        if (it->second.abort == abort) {
          w.running_.erase(it);
          break;
        }
      }
    }
  } unlist{*this, task_id, &abort};
  auto started = clock_.SteadyNow();
  // Reports the occurrence Cancelled after `attempts` attempts; false if shutting
  // down before the result was written (it is handed back).
  auto report_cancelled = [&](int attempts) {
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(clock_.SteadyNow() - started);
    if (!Report(t, RunOutcome::kCancelled, attempts, took, cancel)) {
      Forget(t.id);
      return false;
    }
    spdlog::info("{} cancelled by a newer occurrence (concurrencyPolicy Replace) after {} attempt(s)", t.id, attempts);
    MutexLock lock(mu_);
    ++stats_.cancelled;
    return true;
  };
  const RetryPolicy retry{t.max_attempts, std::chrono::seconds(t.backoff_seconds), std::chrono::seconds(0)};
  for (int attempt = 1; attempt <= t.max_attempts; ++attempt) {
    if (abort.cancelled()) return report_cancelled(attempt - 1);
    {
      MutexLock lock(mu_);
      ++stats_.attempts;
    }
    Outcome o = handler_(t, attempt, cancel, abort);
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(clock_.SteadyNow() - started);
    if (o == Outcome::kSucceeded) {
      if (!Report(t, RunOutcome::kSucceeded, attempt, took, cancel)) {
        Forget(t.id);  // shutting down before the result was written: hand it back
        return false;
      }
      task_duration_.Observe(std::chrono::duration<double>(took).count());
      MutexLock lock(mu_);
      ++stats_.succeeded;
      return true;
    }
    if (o == Outcome::kCancelled || abort.cancelled()) return report_cancelled(attempt);
    if (cancel.cancelled()) {
      // Shutting down mid-task: hand it back (no commit) so another worker runs it.
      Forget(t.id);
      return false;
    }
    spdlog::warn("{} attempt {}/{} {}", t.id, attempt, t.max_attempts,
                 o == Outcome::kTimedOut ? "timed out" : "failed");
    if (attempt < t.max_attempts) {
      // The backoff ends early on shutdown (handed back) or a cancel (reported).
      CancelToken wake;
      const int on_shutdown = cancel.Register([&wake] { wake.Cancel(); });
      const int on_abort = abort.Register([&wake] { wake.Cancel(); });
      wake.WaitFor(retry.BackoffAfter(attempt));
      cancel.Unregister(on_shutdown);
      abort.Unregister(on_abort);
      if (cancel.cancelled()) {
        Forget(t.id);
        return false;
      }
    }
  }
  if (abort.cancelled()) return report_cancelled(t.max_attempts);
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(clock_.SteadyNow() - started);
  task_duration_.Observe(std::chrono::duration<double>(took).count());
  // The outcome is durable (result, dead letter) before the offset may move past it.
  bool recorded = Report(t, RunOutcome::kFailed, t.max_attempts, took, cancel);
  if (recorded && !options_.dead_letter_topic.empty()) {
    auto headers = m.headers;
    headers.push_back({"cronlane_attempts", std::to_string(t.max_attempts)});
    recorded = Record(options_.dead_letter_topic, m.key, m.value, headers, cancel);
  }
  if (!recorded) {
    Forget(t.id);
    return false;
  }
  MutexLock lock(mu_);
  ++stats_.failed;
  if (!options_.dead_letter_topic.empty()) ++stats_.dead_lettered;
  return true;
}

void Worker::Cancel(const std::string& task_id, Instant before) {
  MutexLock lock(mu_);
  auto [it, added] = cancels_.try_emplace(task_id, before);
  if (!added && it->second < before) it->second = before;
  auto [from, to] = running_.equal_range(task_id);
  for (auto r = from; r != to; ++r) {
    if (r->second.scheduled < before) r->second.abort->Cancel();
  }
  // Cancels of occurrences older than the memory no longer matter: their messages
  // were consumed long ago (or the next worker start replays the same window).
  if (cancels_.size() > 10000) {
    const Instant horizon = std::chrono::floor<std::chrono::seconds>(clock_.Now()) - options_.cancel_memory;
    std::erase_if(cancels_, [&](const auto& c) { return c.second < horizon; });
  }
}

bool Worker::CancelledLocked(const std::string& task_id, Instant scheduled) const {
  auto it = cancels_.find(task_id);
  return it != cancels_.end() && scheduled < it->second;
}

void Worker::PoolThread(CancelToken& cancel) {
  while (true) {
    kafka::Message m;
    {
      MutexLock lock(mu_);
      cv_.wait(lock.native(), [&]() REQUIRES(mu_) { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping and nothing left
      m = std::move(queue_.front());
      queue_.pop_front();
    }
    bool finished = Process(m, cancel);
    {
      MutexLock lock(mu_);
      PartitionState& p = partitions_[{m.topic, m.partition}];
      --p.running;
      --in_flight_;
      if (finished) {
        p.unfinished.erase(m.offset);
        p.finished_next = std::max(p.finished_next, m.offset + 1);
        ++finished_since_commit_;
      }  // a handed-back offset stays unfinished: nothing at or after it is committed
    }
    cv_.notify_all();
  }
}

void Worker::CommitReady(const std::vector<TopicPartition>* only) {
  std::vector<std::pair<TopicPartition, int64_t>> todo;
  {
    MutexLock lock(mu_);
    auto consider = [&](const TopicPartition& tp, const PartitionState& p) {
      // Everything before the lowest unfinished message is done; with nothing
      // unfinished, everything up to the end last reached (markers included) is.
      int64_t point = p.unfinished.empty() ? std::max(p.finished_next, p.end) : *p.unfinished.begin();
      if (point > p.committed) todo.emplace_back(tp, point);
    };
    if (only != nullptr) {
      for (const auto& tp : *only) {
        if (auto it = partitions_.find(tp); it != partitions_.end()) consider(tp, it->second);
      }
    } else {
      for (const auto& [tp, p] : partitions_) consider(tp, p);
    }
  }
  // A message counts as finished only once its result and dead letter were
  // delivered (Record waits for each), so no flush is needed before the commit.
  {
    MutexLock lock(mu_);
    finished_since_commit_ = 0;
  }
  if (todo.empty()) return;
  for (const auto& [tp, offset] : todo) {
    Status c = kafka::CommitOffset(consumer_.get(), tp.first, tp.second, offset);
    if (!c.ok()) {
      spdlog::warn("commit {}[{}]@{}: {}", tp.first, tp.second, offset, c.ToString());
      continue;
    }
    MutexLock lock(mu_);
    partitions_[tp].committed = offset;
  }
}

void Worker::OnAssigned(rd_kafka_t* /*consumer*/, const std::vector<TopicPartition>& partitions) {
  spdlog::info("assigned {} partition(s)", partitions.size());
}

void Worker::OnRevoked(rd_kafka_t* /*consumer*/, const std::vector<TopicPartition>& partitions) {
  // Finish what runs on these partitions and commit it before another member
  // starts reading them from the committed offset.
  {
    MutexLock lock(mu_);
    // Queued messages of revoked partitions are handed back unprocessed.
    for (auto it = queue_.begin(); it != queue_.end();) {
      TopicPartition tp{it->topic, it->partition};
      if (std::find(partitions.begin(), partitions.end(), tp) != partitions.end()) {
        PartitionState& p = partitions_[tp];
        --p.running;
        --in_flight_;
        it = queue_.erase(it);
      } else {
        ++it;
      }
    }
    cv_.wait(lock.native(), [&]() REQUIRES(mu_) {
      return std::all_of(partitions.begin(), partitions.end(), [&](const TopicPartition& tp) REQUIRES(mu_) {
        auto it = partitions_.find(tp);
        return it == partitions_.end() || it->second.running == 0;
      });
    });
  }
  cv_.notify_all();
  CommitReady(&partitions);
  MutexLock lock(mu_);
  for (const auto& tp : partitions) partitions_.erase(tp);
  spdlog::info("revoked {} partition(s) after finishing their running tasks", partitions.size());
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
  // End-of-partition events tell where a partition ends past its transaction markers.
  cp["enable.partition.eof"] = "true";
  auto consumer = kafka::NewConsumer(cp, this);
  if (!consumer.ok()) return consumer.status();
  consumer_ = std::move(*consumer);
  kafka::Properties pp = options_.base;
  pp["enable.idempotence"] = "true";
  // Each record is waited for (Record): lingering for a batch would only delay it.
  pp.try_emplace("linger.ms", "0");
  auto producer = kafka::NewProducer(pp);
  if (!producer.ok()) return producer.status();
  producer_ = std::move(*producer);
  if (Status s = kafka::Subscribe(consumer_.get(), options_.topics); !s.ok()) return s;
  const int concurrency = std::max(1, options_.concurrency);
  for (int i = 0; i < concurrency; ++i) pool_.emplace_back([this, &cancel] { PoolThread(cancel); });
  spdlog::info("worker joined group {} on {} topic(s), concurrency {}", options_.group, options_.topics.size(),
               concurrency);
  int wake_id = cancel.Register([this] { cv_.notify_all(); });
  auto last_commit = clock_.SteadyNow();
  while (!cancel.cancelled()) {
    bool commit_due = false;
    {
      MutexLock lock(mu_);
      cv_.wait_for(lock.native(), 200ms,
                   [&]() REQUIRES(mu_) { return in_flight_ < concurrency || cancel.cancelled(); });
      commit_due = finished_since_commit_ >= options_.commit_every ||
                   clock_.SteadyNow() - last_commit >= options_.commit_interval;
      if (!commit_due && (in_flight_ >= concurrency || cancel.cancelled())) continue;
    }
    if (commit_due) {
      CommitReady();
      last_commit = clock_.SteadyNow();
    }
    {
      MutexLock lock(mu_);
      if (in_flight_ >= concurrency || cancel.cancelled()) continue;  // shutting down: fetch nothing more
    }
    auto polled = kafka::PollWithEof(consumer_.get(), InFlight() > 0 ? 20ms : 200ms);
    if (!polled.ok()) {
      spdlog::warn("consume: {}", polled.status().ToString());
      continue;
    }
    if (const auto& eof = polled->eof; eof && eof->partition >= 0 && eof->offset >= 0) {
      // Every message before this end was consumed; it is committed once finished.
      MutexLock lock(mu_);
      int64_t& end = partitions_[{eof->topic, eof->partition}].end;
      end = std::max(end, eof->offset);
    }
    if (!polled->message) continue;
    {
      MutexLock lock(mu_);
      kafka::Message& m = *polled->message;
      PartitionState& p = partitions_[{m.topic, m.partition}];
      p.unfinished.insert(m.offset);
      ++p.running;
      ++in_flight_;
      queue_.push_back(std::move(m));
    }
    cv_.notify_all();
  }
  // Shutdown: stop fetching, let running attempts finish (a retry wait is cut
  // short and its message handed back), commit, leave the group.
  {
    MutexLock lock(mu_);
    // Messages not started yet are handed back: their offsets stay unfinished, so
    // the commit stops before them and the next owner runs them.
    for (const auto& q : queue_) {
      --partitions_[{q.topic, q.partition}].running;
      --in_flight_;
    }
    queue_.clear();
    cv_.wait(lock.native(), [&]() REQUIRES(mu_) { return in_flight_ == 0; });
    stopping_ = true;
  }
  cv_.notify_all();
  for (auto& t : pool_) t.join();
  pool_.clear();
  cancel.Unregister(wake_id);
  CommitReady();
  (void)kafka::Flush(producer_.get(), 10s);
  Status closed = kafka::CloseConsumer(consumer_.get());
  if (!closed.ok()) spdlog::warn("{}", closed.ToString());
  spdlog::info("worker left group {}", options_.group);
  return Status::Ok();
}

}  // namespace cronlane::worker
