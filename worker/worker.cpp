#include "worker/worker.h"

#include "common/backoff.h"
#include "common/retry_policy.h"
#include "common/task_result.h"

#include <spdlog/spdlog.h>

#include <algorithm>

namespace cronlane::worker {

using namespace std::chrono_literals;

Worker::Worker(WorkerOptions options, Handler handler, Clock& clock, TaskBroker* broker)
    : options_(std::move(options)),
      handler_(std::move(handler)),
      clock_(clock),
      broker_(broker),
      recent_(options_.dedupe_window) {
  max_writing_ = static_cast<size_t>(std::max(1, options_.max_writing));
}

WorkerStats Worker::Stats() const {
  MutexLock lock(mu_);
  WorkerStats s = stats_;
  s.attempts = attempts_.load(std::memory_order_relaxed);
  return s;
}

Worker::~Worker() {
  {
    MutexLock lock(mu_);
    stopping_ = true;
    delivery_stop_ = true;
  }
  cv_.notify_all();
  work_cv_.notify_all();
  for (auto& t : pool_) {
    if (t.joinable()) t.join();
  }
  // Its delivery callbacks (records still queued, reported failed) add to
  // delivered_ (the delivery thread has ended; nothing settles them): it goes
  // while the members do not.
  owned_broker_.reset();
}

int Worker::Writing() const {
  MutexLock lock(mu_);
  return static_cast<int>(writing_.size());
}

int Worker::InFlight() const {
  MutexLock lock(mu_);
  return in_flight_;
}

void Worker::Forget(const std::string& id) {
  MutexLock lock(seen_mu_);
  recent_.Erase(id);
}

bool Worker::Seen(const std::string& id) {
  MutexLock lock(seen_mu_);
  return !recent_.Insert(id);
}

void Worker::Add(Count c, WorkerStats& s) {
  switch (c) {
    case Count::kNone:
      break;
    case Count::kSucceeded:
      ++s.succeeded;
      break;
    case Count::kDeadLettered:
      ++s.dead_lettered;
      [[fallthrough]];
    case Count::kFailed:
      ++s.failed;
      break;
    case Count::kCancelled:
      ++s.cancelled;
      break;
    case Count::kDuplicate:
      ++s.duplicates;
      break;
    case Count::kInvalid:
      ++s.invalid;
      break;
  }
}

void Worker::AddResult(FiredTask& t, RunOutcome outcome, int attempts, std::chrono::milliseconds took,
                       Verdict& v) const {
  if (options_.results_topic.empty()) {
    v.id = std::move(t.id);
    return;
  }
  // The id, subject and time move through the result into the record and the
  // verdict: no copy of them per task.
  TaskResult r{std::move(t.id), std::move(t.subject), std::move(t.time), outcome,
               attempts,        took.count(),         t.shard_index,     t.shard_count};
  // A failure is dead-lettered right after its result is recorded (Process).
  r.dead_lettered = outcome == RunOutcome::kFailed && !options_.dead_letter_topic.empty();
  std::string value = EncodeTaskResult(r);
  v.records.push_back({&options_.results_topic, std::move(r.subject), std::move(value), {}});
  v.id = std::move(r.id);
}

Worker::Verdict Worker::Process(kafka::Message& m, CancelToken& cancel, Running& running,
                                std::chrono::steady_clock::time_point started) {
  Verdict v;
  auto decoded = TakeFiredTask(m);  // takes its value and headers (left as they were on an error)
  if (!decoded.ok()) {
    spdlog::warn("{}[{}]@{}: {}; dead-lettered", m.topic, m.partition, m.offset, decoded.status().message());
    if (!options_.dead_letter_topic.empty())
      v.records.push_back({&options_.dead_letter_topic, m.key, m.value, m.headers});
    v.count = Count::kInvalid;
    return v;
  }
  FiredTask& t = *decoded;
  if (Seen(t.id)) {
    spdlog::info("{} already processed recently: skipped", t.id);
    v.count = Count::kDuplicate;
    return v;
  }
  const Attempts a = RunAttempts(t, cancel, running);
  v.ended = clock_.SteadyNow();
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(v.ended - started);
  switch (a.outcome) {
    case RunOutcome::kCancelled:
      spdlog::info("{} cancelled by a newer occurrence (concurrencyPolicy Replace) after {} attempt(s)", t.id,
                   a.attempts);
      v.count = Count::kCancelled;
      AddResult(t, RunOutcome::kCancelled, a.attempts, took, v);
      return v;
    case RunOutcome::kSucceeded:
      task_duration_.Observe(std::chrono::duration<double>(took).count());
      v.count = Count::kSucceeded;
      AddResult(t, RunOutcome::kSucceeded, a.attempts, took, v);
      return v;
    default:
      break;
  }
  if (a.handed_back) {
    // Shutting down before the outcome: hand the message back (no commit) so
    // another worker runs it.
    Forget(t.id);
    v.handed_back = true;
    return v;
  }
  task_duration_.Observe(std::chrono::duration<double>(took).count());
  // The outcome is durable (result, then dead letter) before the offset may move past it.
  v.count = options_.dead_letter_topic.empty() ? Count::kFailed : Count::kDeadLettered;
  AddResult(t, RunOutcome::kFailed, t.max_attempts, took, v);
  if (!options_.dead_letter_topic.empty()) {
    // The message as it came (its value and headers are in `t` now).
    t.headers.push_back({"cronlane_attempts", std::to_string(t.max_attempts)});
    v.records.push_back({&options_.dead_letter_topic, m.key, std::move(t.payload), std::move(t.headers)});
  }
  return v;
}

Worker::Attempts Worker::RunAttempts(const FiredTask& t, CancelToken& cancel, Running& running) {
  // concurrencyPolicy Replace: `abort` fires when a cancel event names this
  // occurrence (or already did). An occurrence without a readable ce_time is never
  // cancelled. While it runs, `running` (this pool thread's) names it to Cancel.
  const std::string_view task_id = TaskIdOf(t.id);
  const auto scheduled = ParseRfc3339(t.time);
  CancelToken abort;
  if (scheduled.ok()) {
    MutexLock lock(cancel_mu_);
    if (CancelledLocked(task_id, *scheduled)) abort.Cancel();
    running = Running{task_id, *scheduled, &abort};
  }
  struct Unlist {
    Worker& w;
    Running& running;
    ~Unlist() {
      MutexLock lock(w.cancel_mu_);
      running.abort = nullptr;
    }
  } unlist{*this, running};
  const RetryPolicy retry{t.max_attempts, std::chrono::seconds(t.backoff_seconds), std::chrono::seconds(0)};
  for (int attempt = 1; attempt <= t.max_attempts; ++attempt) {
    if (abort.cancelled()) return {RunOutcome::kCancelled, attempt - 1};
    attempts_.fetch_add(1, std::memory_order_relaxed);
    Outcome o = handler_(t, attempt, cancel, abort);
    if (o == Outcome::kSucceeded) return {RunOutcome::kSucceeded, attempt};
    if (o == Outcome::kCancelled || abort.cancelled()) return {RunOutcome::kCancelled, attempt};
    if (cancel.cancelled()) return {RunOutcome::kFailed, attempt, /*handed_back=*/true};
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
      if (cancel.cancelled()) return {RunOutcome::kFailed, attempt, /*handed_back=*/true};
    }
  }
  if (abort.cancelled()) return {RunOutcome::kCancelled, t.max_attempts};
  return {RunOutcome::kFailed, t.max_attempts};
}

void Worker::Cancel(const std::string& task_id, Instant before) {
  MutexLock lock(cancel_mu_);
  auto [it, added] = cancels_.try_emplace(task_id, before);
  if (!added && it->second < before) it->second = before;
  for (const Running& r : running_) {
    if (r.abort != nullptr && r.task_id == task_id && r.scheduled < before) r.abort->Cancel();
  }
  // Cancels of occurrences older than the memory no longer matter: their messages
  // were consumed long ago (or the next worker start replays the same window).
  if (cancels_.size() > 10000) {
    const Instant horizon = std::chrono::floor<std::chrono::seconds>(clock_.Now()) - options_.cancel_memory;
    std::erase_if(cancels_, [&](const auto& c) { return c.second < horizon; });
  }
}

bool Worker::CancelledLocked(std::string_view task_id, Instant scheduled) const {
  auto it = cancels_.find(task_id);
  return it != cancels_.end() && scheduled < it->second;
}

void Worker::PoolThread(CancelToken& cancel, Running& running) {
  // A pool thread settles the message it ran and takes the next one under one
  // lock; it waits only with nothing queued and nothing of its own to produce.
  struct Ran {
    PartitionState* partition;
    int64_t offset;
    Verdict verdict;
    std::chrono::steady_clock::duration took;
  };
  std::optional<Ran> ran;
  while (true) {
    std::optional<Queued> next;
    std::optional<uint64_t> send;
    const Record* record = nullptr;
    bool wake = false;
    {
      MutexLock lock(mu_);
      if (ran) {
        Verdict& v = ran->verdict;
        // A moving average over about the last 8 messages (the first one seeds it).
        const double ns = static_cast<double>(std::chrono::nanoseconds(ran->took).count());
        run_ns_ = run_ns_ == 0 ? ns : run_ns_ + (ns - run_ns_) / 8;
        --in_flight_;  // this pool thread is free; the partition keeps the message running until it finished
        // The polling thread waits (when full) for room for a batch of fetches, or
        // (revoke, shutdown) for nothing left: woken when one of those is reached.
        wake = in_flight_ == refill_at_ || in_flight_ == 0;
        if (v.handed_back || v.records.empty()) {
          if (!v.handed_back) Add(v.count, stats_);
          wake |= FinishLocked(*ran->partition, ran->offset, !v.handed_back);
        } else {
          auto [key, slot] = writing_.Add();
          PendingWrite& w = *slot;
          w.partition = ran->partition;
          w.offset = ran->offset;
          w.verdict = std::move(v);
          w.in_flight = true;
          send = key;
          record = &w.verdict.records[0];  // stays put while in flight (SendRecord)
        }
        ran.reset();
      }
      if (!send) work_cv_.wait(lock.native(), [&]() REQUIRES(mu_) { return stopping_ || !queue_.empty(); });
      if (!queue_.empty()) {
        next.emplace(std::move(queue_.front()));
        queue_.pop_front();
      } else if (!send) {
        return;  // stopping and nothing left
      }
    }
    if (wake) cv_.notify_all();
    if (send) ProduceRecord(*send, *record);
    if (!next) continue;
    const auto started = clock_.SteadyNow();
    queue_wait_.Observe(std::chrono::duration<double>(started - next->at).count());
    if (next->m.raw) {
      next->m.m = kafka::ToMessage(*next->m.raw);
      next->m.raw.reset();
    }
    Verdict v = Process(next->m.m, cancel, running, started);
    const auto ended = v.ended != std::chrono::steady_clock::time_point{} ? v.ended : clock_.SteadyNow();
    ran.emplace(Ran{next->partition, next->m.offset(), std::move(v), ended - started});
  }
}

std::pair<uint64_t, Worker::PendingWrite*> Worker::WriteSlots::Add() {
  uint32_t index;
  if (free_.empty()) {
    index = static_cast<uint32_t>(slots_.size());
    slots_.emplace_back();
  } else {
    index = free_.back();
    free_.pop_back();
  }
  Slot& slot = slots_[index];
  slot.live = true;
  ++live_;
  return {(uint64_t{slot.generation} << 32) | index, &slot.write};
}

Worker::PendingWrite* Worker::WriteSlots::Find(uint64_t key) {
  const uint64_t index = key & 0xffffffffu;
  if (index >= slots_.size()) return nullptr;
  Slot& slot = slots_[index];
  return slot.live && slot.generation == (key >> 32) ? &slot.write : nullptr;
}

void Worker::WriteSlots::Erase(uint64_t key) {
  const auto index = static_cast<uint32_t>(key & 0xffffffffu);
  Slot& slot = slots_[index];
  slot.write = PendingWrite{};
  slot.live = false;
  ++slot.generation;
  --live_;
  free_.push_back(index);
}

int Worker::AheadLocked(int concurrency) const {
  const int least = std::max(0, options_.prefetch);
  if (run_ns_ <= 0 || options_.prefetch_time <= std::chrono::milliseconds(0)) return least;
  // What the pool runs in prefetch_time; a message that took no measurable time
  // counts as 1 µs.
  const double ns = std::chrono::duration<double, std::nano>(options_.prefetch_time).count();
  const double runs = concurrency * ns / std::max(run_ns_, 1000.0);
  return std::max(least, static_cast<int>(std::min<double>(runs, std::max(least, options_.max_prefetch))));
}

bool Worker::FinishLocked(PartitionState& p, int64_t offset, bool finished) {
  --p.running;
  if (finished) {
    // Usually the first (or near it): found from the front.
    if (auto it = std::lower_bound(p.unfinished.begin(), p.unfinished.end(), offset);
        it != p.unfinished.end() && *it == offset) {
      p.unfinished.erase(it);
    }
    p.finished_next = std::max(p.finished_next, offset + 1);
    ++finished_since_commit_;
  }  // a handed-back offset stays unfinished: nothing at or after it is committed
  return p.running == 0;
}

void Worker::SendRecord(uint64_t key) {
  // Produced without a copy: the record stays in writing_ (unchanged) while it is
  // in flight, since only its delivery report (or the refusal below) takes it out.
  const Record* r = nullptr;
  {
    MutexLock lock(mu_);
    PendingWrite* w = writing_.Find(key);
    if (w == nullptr) return;
    r = &w->verdict.records[w->next];
    w->in_flight = true;
  }
  ProduceRecord(key, *r);
}

void Worker::ProduceRecord(uint64_t key, const Record& r) {
  // The outcome is settled with the others served in the same ServeDeliveries
  // (DeliveryThread), under one lock.
  Status s = broker_->Produce(*r.topic, r.key, r.value, r.headers,
                              [this, key](const Status& delivered) { delivered_.emplace_back(key, delivered); });
  if (!s.ok()) OnRecordDelivered(key, s);  // not queued (a full local queue): retried like a failed delivery
}

bool Worker::SettleLocked(uint64_t key, const Status& s, bool& next) {
  next = false;
  PendingWrite* found = writing_.Find(key);
  if (found == nullptr) return false;
  bool wake = false;
  PendingWrite& w = *found;
  w.in_flight = false;
  if (s.ok()) {
    if (++w.next < w.verdict.records.size()) {
      next = true;  // the dead letter, after its result is on the broker
    } else {
      Add(w.verdict.count, stats_);
      wake = FinishLocked(*w.partition, w.offset, true);
      writing_.Erase(key);
    }
  } else {
    ++stats_.record_failures;
    spdlog::warn("writing to {}: {}; retrying (the message's offset waits)", *w.verdict.records[w.next].topic,
                 s.ToString());
    if (shutting_down_) {
      // Shutting down: hand it back; the next owner runs it again.
      Forget(w.verdict.id);
      wake = FinishLocked(*w.partition, w.offset, false);
      writing_.Erase(key);
    } else {
      if (!w.backoff) w.backoff.emplace(BackoffPolicy{options_.record_retry, options_.max_record_retry, 0.2});
      retries_.emplace(clock_.SteadyNow() + w.backoff->Next(), key);
    }
  }
  // The polling thread may wait for the writes to drop below max_writing_.
  return wake || writing_.empty() || writing_.size() == max_writing_ - 1;
}

void Worker::OnRecordDelivered(uint64_t key, const Status& s) {
  bool next = false, wake = false;
  {
    MutexLock lock(mu_);
    wake = SettleLocked(key, s, next);
  }
  // Only a revoke (a partition with nothing running) and the shutdown (nothing
  // being written) wait for records.
  if (wake) cv_.notify_all();
  if (next) SendRecord(key);
}

void Worker::SettleDelivered() {
  if (delivered_.empty()) return;
  std::vector<uint64_t> next_records;
  bool wake = false;
  {
    MutexLock lock(mu_);
    for (const auto& [key, s] : delivered_) {
      bool next = false;
      wake |= SettleLocked(key, s, next);
      if (next) next_records.push_back(key);
    }
  }
  delivered_.clear();
  if (wake) cv_.notify_all();
  for (uint64_t key : next_records) SendRecord(key);
}

void Worker::DeliveryThread() {
  while (true) {
    std::vector<uint64_t> due;
    std::chrono::milliseconds wait{100};
    {
      MutexLock lock(mu_);
      if (delivery_stop_ && writing_.empty()) return;
      const auto now = clock_.SteadyNow();
      while (!retries_.empty() && retries_.begin()->first <= now) {
        due.push_back(retries_.begin()->second);
        retries_.erase(retries_.begin());
      }
      if (!retries_.empty()) {
        wait = std::min(wait, std::chrono::ceil<std::chrono::milliseconds>(retries_.begin()->first - now));
      }
    }
    for (uint64_t key : due) SendRecord(key);
    broker_->ServeDeliveries(due.empty() ? wait : std::chrono::milliseconds(0));
    SettleDelivered();
  }
}

void Worker::HandBackRetriesLocked() {
  for (const auto& [due, key] : retries_) {
    PendingWrite* w = writing_.Find(key);
    if (w == nullptr) continue;
    Forget(w->verdict.id);
    FinishLocked(*w->partition, w->offset, false);
    writing_.Erase(key);
  }
  retries_.clear();
}

void Worker::CommitReady(bool sync, const std::vector<TopicPartition>* only) {
  std::vector<kafka::PartitionOffset> todo;
  {
    MutexLock lock(mu_);
    auto consider = [&](const TopicPartition& tp, PartitionState& p) {
      // Everything before the lowest unfinished message is done; with nothing
      // unfinished, everything up to the end last reached (markers included) is.
      int64_t point = p.unfinished.empty() ? std::max(p.finished_next, p.end) : p.unfinished.front();
      if (point > p.committed && (sync || point > p.committing)) {
        todo.push_back({tp.first, tp.second, point});
        p.committing = std::max(p.committing, point);
      }
    };
    if (only != nullptr) {
      for (const auto& tp : *only) {
        if (auto it = partitions_.find(tp); it != partitions_.end()) consider(tp, it->second);
      }
    } else {
      for (auto& [tp, p] : partitions_) consider(tp, p);
    }
    // A message counts as finished only once its records were delivered, so the
    // commit needs no flush. A revoke's commit covers only its partitions: the
    // others still count for the next one.
    if (only == nullptr) finished_since_commit_ = 0;
  }
  if (todo.empty()) return;
  const auto sent = clock_.SteadyNow();
  auto settle = [this, todo, sent](const Status& s) {
    commit_latency_.Observe(std::chrono::duration<double>(clock_.SteadyNow() - sent).count());
    MutexLock lock(mu_);
    if (!s.ok()) {
      ++stats_.commit_failures;
      ++finished_since_commit_;  // so the next interval sends it again
    }
    for (const auto& o : todo) {
      auto it = partitions_.find({o.topic, o.partition});
      if (it == partitions_.end()) continue;  // revoked meanwhile (its revoke committed synchronously)
      if (s.ok()) {
        it->second.committed = std::max(it->second.committed, o.offset);
      } else {
        it->second.committing = it->second.committed;  // sent again by the next commit
      }
    }
    if (!s.ok()) spdlog::warn("commit: {}", s.ToString());
  };
  if (sync) {
    settle(broker_->Commit(todo));
  } else {
    broker_->CommitAsync(todo, settle);
  }
}

Worker::PartitionState& Worker::PartitionLocked(std::string_view topic, int32_t partition) {
  auto it = partitions_.find(PartitionView{topic, partition});
  if (it == partitions_.end()) it = partitions_.try_emplace({std::string(topic), partition}).first;
  return it->second;
}

void Worker::QueuePolled() {
  if (polled_.empty()) return;
  const auto now = clock_.SteadyNow();
  {
    MutexLock lock(mu_);
    for (auto& m : polled_) {
      PartitionState& p = PartitionLocked(m.topic(), m.partition());
      const int64_t offset = m.offset();
      // In order as consumed; an offset behind the last (not seen in practice) goes
      // to its place.
      if (p.unfinished.empty() || p.unfinished.back() < offset) {
        p.unfinished.push_back(offset);
      } else if (auto at = std::lower_bound(p.unfinished.begin(), p.unfinished.end(), offset);
                 at == p.unfinished.end() || *at != offset) {
        p.unfinished.insert(at, offset);
      }
      ++p.running;
      ++in_flight_;
      queue_.push_back({std::move(m), &p, now});
    }
  }
  if (polled_.size() == 1) {
    work_cv_.notify_one();
  } else {
    work_cv_.notify_all();
  }
  polled_.clear();
}

void Worker::OnAssigned(rd_kafka_t* /*consumer*/, const std::vector<TopicPartition>& partitions) {
  // librdkafka keeps a partition's pause through a revoke and a new assignment
  // (and a new one starts unpaused): the polling loop applies its state to them.
  new_assignment_ = true;
  spdlog::info("assigned {} partition(s)", partitions.size());
}

void Worker::OnRevoked(rd_kafka_t* /*consumer*/, const std::vector<TopicPartition>& partitions) {
  // Finish what runs on these partitions (results written included) and commit it
  // before another member starts reading them from the committed offset.
  // Messages of theirs fetched in this burst and not queued yet are dropped: never
  // counted, they stay uncommitted and the next owner reads them.
  std::erase_if(polled_, [&](const Fetched& m) { return m.In(partitions); });
  {
    MutexLock lock(mu_);
    // Queued messages of revoked partitions are handed back unprocessed.
    for (auto it = queue_.begin(); it != queue_.end();) {
      if (it->m.In(partitions)) {
        --it->partition->running;
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
  CommitReady(/*sync=*/true, &partitions);
  MutexLock lock(mu_);
  for (const auto& tp : partitions) partitions_.erase(tp);
  spdlog::info("revoked {} partition(s) after finishing their running tasks", partitions.size());
}

Status Worker::Run(CancelToken& cancel) {
  if (broker_ == nullptr) {
    auto made = NewKafkaTaskBroker(options_.base, options_.group, options_.record_timeout);
    if (!made.ok()) return made.status();
    owned_broker_ = std::move(*made);
    broker_ = owned_broker_.get();
  }
  {
    std::vector<std::string> record_topics;
    for (const auto* t : {&options_.results_topic, &options_.dead_letter_topic}) {
      if (!t->empty()) record_topics.push_back(*t);
    }
    if (!record_topics.empty()) broker_->WarmUp(record_topics, std::chrono::seconds(5));
  }
  if (Status s = broker_->Subscribe(options_.topics, this); !s.ok()) return s;
  const int concurrency = std::max(1, options_.concurrency);
  // Messages held at once: running, and fetched ahead for the next free slot
  // (AheadLocked: more when tasks are short). A full polling thread fetches again
  // when half of those ahead were taken.
  int limit = 0;
  auto set_limit = [&]() REQUIRES(mu_) {
    const int ahead = AheadLocked(concurrency);
    limit = concurrency + ahead;
    refill_at_ = limit - std::max(1, ahead / 2);
  };
  {
    MutexLock lock(mu_);
    set_limit();
  }
  {
    MutexLock lock(cancel_mu_);
    running_.assign(static_cast<size_t>(concurrency), Running{});  // before the threads that write them
    for (Running& slot : running_) {
      pool_.emplace_back([this, &cancel, &slot] { PoolThread(cancel, slot); });
    }
  }
  std::thread delivery([this] { DeliveryThread(); });
  spdlog::info("worker joined group {} on {} topic(s), concurrency {}", options_.group, options_.topics.size(),
               concurrency);
  // On cancel, records waiting for a retry hand their messages back at once: a
  // revoke waiting for them (OnRevoked) ends, and so does the shutdown.
  int wake_id = cancel.Register([this] {
    {
      MutexLock lock(mu_);
      shutting_down_ = true;
      HandBackRetriesLocked();
    }
    cv_.notify_all();
  });
  auto last_commit = clock_.SteadyNow();
  // Full: `limit` messages held, or too many finished ones waiting for their
  // records. The consumer is then paused rather than left unpolled, so Poll keeps
  // serving rebalances and commit outcomes (and max.poll.interval.ms holds however
  // long the tasks run).
  auto full = [&]() REQUIRES(mu_) { return in_flight_ >= limit || writing_.size() >= max_writing_; };
  bool paused = false;
  while (!cancel.cancelled()) {
    bool commit_due = false, is_full = false;
    int in_flight = 0;
    {
      MutexLock lock(mu_);
      set_limit();
      if (full()) {
        // Until a batch can be fetched (refill_at_), not for each free slot.
        cv_.wait_for(lock.native(), 100ms, [&]() REQUIRES(mu_) {
          return (in_flight_ <= refill_at_ && writing_.size() < max_writing_) || cancel.cancelled();
        });
      }
      is_full = full();
      in_flight = in_flight_;
      commit_due = finished_since_commit_ >= options_.commit_every ||
                   (finished_since_commit_ > 0 && clock_.SteadyNow() - last_commit >= options_.commit_interval);
    }
    if (cancel.cancelled()) break;  // shutting down: fetch nothing more
    if (commit_due) {
      CommitReady(/*sync=*/false);
      last_commit = clock_.SteadyNow();
    }
    if (is_full != paused || new_assignment_) {
      new_assignment_ = false;
      if (Status s = broker_->SetPaused(is_full); s.ok()) {
        paused = is_full;
      } else {
        spdlog::warn("{}", s.ToString());
      }
    }
    // The poll also serves the outcomes of asynchronous commits. A message fetched
    // before a pause may still come; it is taken like any other. Messages already
    // fetched are taken in a burst (up to the room left) and queued together.
    auto timeout = is_full ? 0ms : in_flight > 0 ? 20ms : 200ms;
    const size_t burst = static_cast<size_t>(std::clamp(limit - in_flight, 1, 64));
    while (true) {
      auto polled = broker_->Poll(timeout);
      timeout = 0ms;
      if (!polled.ok()) {
        spdlog::warn("consume: {}", polled.status().ToString());
        break;
      }
      if (const auto& eof = polled->eof; eof && eof->partition >= 0 && eof->offset >= 0) {
        // Every message before this end was consumed (and is queued first, so the
        // end is never committed past one of them); it is committed once finished.
        QueuePolled();
        MutexLock lock(mu_);
        PartitionState& p = PartitionLocked(eof->topic, eof->partition);
        if (eof->offset > p.end) {
          p.end = eof->offset;
          ++finished_since_commit_;  // the end moved: worth a commit at the next interval
        }
      }
      if (polled->raw) {
        polled_.push_back({{}, std::move(polled->raw)});
      } else if (polled->message) {
        polled_.push_back({std::move(*polled->message), nullptr});
      } else {
        if (polled->eof) continue;  // more may be fetched (other partitions)
        break;
      }
      if (polled_.size() >= burst) break;
    }
    QueuePolled();
  }
  // Shutdown: stop fetching, let running attempts finish (a retry wait is cut
  // short and its message handed back) and their records be written (one that
  // fails now is handed back), commit, leave the group.
  {
    MutexLock lock(mu_);
    // Messages not started yet are handed back: their offsets stay unfinished, so
    // the commit stops before them and the next owner runs them.
    for (const auto& q : queue_) {
      --q.partition->running;
      --in_flight_;
    }
    queue_.clear();
    shutting_down_ = true;
    // Records waiting for a retry are not retried now: their messages are handed
    // back (the next owner runs them again).
    HandBackRetriesLocked();
    cv_.wait(lock.native(), [&]() REQUIRES(mu_) { return in_flight_ == 0 && writing_.empty(); });
    stopping_ = true;
    delivery_stop_ = true;
  }
  work_cv_.notify_all();
  for (auto& t : pool_) t.join();
  pool_.clear();
  delivery.join();
  cancel.Unregister(wake_id);
  CommitReady(/*sync=*/true);
  Status closed = broker_->Close();
  if (!closed.ok()) spdlog::warn("{}", closed.ToString());
  spdlog::info("worker left group {}", options_.group);
  return Status::Ok();
}

}  // namespace cronlane::worker
