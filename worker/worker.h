#pragma once
// The worker library: join a consumer group on the task topics, decode each fired
// task, run the handler, and commit the offset only after the handler finished
// (at-least-once). Failed attempts are retried with exponential backoff up to the
// task's ce_maxattempts, then sent to a dead-letter topic; a ce_id seen recently is
// skipped (redeliveries after a rebalance); each finished occurrence is reported on
// a results topic. On cancel (SIGTERM) it stops fetching, lets running attempts
// finish, hands back a message waiting for a retry (no commit, so another worker
// gets it), commits, and leaves the group.
//
// concurrencyPolicy Replace: Cancel(task, before), fed from the control topic
// (worker/control_listener.h), aborts the running attempts of that task's
// occurrences scheduled before `before` (the handler stops its command) and marks
// later-consumed ones of them cancelled: each is reported Cancelled, never retried
// or dead-lettered, and committed.
//
// Concurrency: up to `concurrency` messages run at once on a pool of threads, in
// any order (also within a partition). A partition's offset is committed up to its
// lowest unfinished message, so nothing is skipped. When the group rebalances, the
// worker finishes the running messages of the partitions it loses and commits them
// before giving them up, so a scale-in or scale-out runs nothing twice. When it
// reaches the end of a partition with everything finished it commits that end
// offset, which lies past the transaction markers (the dispatcher produces
// transactionally), so the group's lag reaches 0.
//
// Records and commits are batched without weakening any of that. A pool thread
// that finished a message queues its result (and dead letter) and takes the next
// message; a delivery thread serves the delivery reports, and only when every
// record of a message is on the broker does that message count as finished. A
// record that fails is produced again with backoff, holding its offset back. The
// polling thread commits what finished asynchronously, every commit_interval or
// after commit_every messages; a revoke and the shutdown commit synchronously.
//
// Threads: the polling thread (Run: fetch, commit, rebalance callbacks), the pool
// threads (handler), the delivery thread (record outcomes and retries). mu_
// guards the shared state, cancel_mu_ the cancels, seen_mu_ the ids seen.
// seen_mu_ may be taken while mu_ is held (forgetting a handed-back id), never the
// reverse; cancel_mu_ is taken alone. None is held across a TaskBroker call or a
// handler.

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include <prometheus/client_metric.h>
#include <prometheus/histogram.h>

#include "common/backoff.h"
#include "common/cancel.h"
#include "common/clock.h"
#include "common/cloudevent.h"
#include "common/kafka.h"
#include "common/task_result.h"
#include "common/thread_annotations.h"
#include "common/time.h"
#include "worker/recent_ids.h"
#include "worker/task_broker.h"

namespace cronlane::worker {

// What a handler reports for one attempt.
enum class Outcome { kSucceeded, kFailed, kTimedOut, kCancelled };

// Runs one attempt. `shutdown` fires when the worker shuts down; a handler that
// returns early because of it should return kFailed (the message is handed back).
// `abort` fires when the occurrence was cancelled (concurrencyPolicy Replace): the
// handler stops the attempt and returns kCancelled.
using Handler = std::function<Outcome(const FiredTask& task, int attempt, CancelToken& shutdown, CancelToken& abort)>;

struct WorkerOptions {
  kafka::Properties base;  // bootstrap.servers, security
  std::string group = "cronlane-workers";
  std::vector<std::string> topics;
  std::string dead_letter_topic;  // "" = none: failed tasks are logged and committed
  std::string results_topic;      // "" = no results
  size_t dedupe_window = 10000;   // recently seen ce_ids remembered (at most 2^30)
  int concurrency = 1;            // messages processed at once
  // Messages fetched ahead of a free pool thread (handed back unstarted on a revoke
  // or shutdown), so a short task does not wait for the polling thread: at least
  // `prefetch`; with short tasks, as many as the pool runs in `prefetch_time` at the
  // measured time per task, at most `max_prefetch` (0 s: always `prefetch`).
  int prefetch = 16;
  std::chrono::milliseconds prefetch_time{10};
  int max_prefetch = 1024;
  // Finished messages whose result or dead letter is not on the broker yet, at
  // most: beyond it (a results topic that cannot be written) fetching pauses.
  int max_writing = 10000;
  // A result or dead letter that could not be written is retried with this
  // backoff until it is durable; the message's offset is not committed before.
  std::chrono::milliseconds record_retry{500};
  std::chrono::milliseconds max_record_retry{30000};
  std::chrono::milliseconds record_timeout{30000};  // per attempt: the delivery report
  std::chrono::seconds cancel_memory{600};          // how long a cancel is remembered
  // Finished offsets are committed (asynchronously, from the polling thread) at
  // most this often, or sooner once `commit_every` messages finished since the
  // last commit; a revoke and the shutdown commit at once, synchronously. A kill -9
  // redelivers what finished since the last commit (at-least-once, as before).
  std::chrono::milliseconds commit_interval{200};
  int commit_every = 500;
};

struct WorkerStats {
  uint64_t succeeded = 0, failed = 0, dead_lettered = 0, duplicates = 0, invalid = 0, attempts = 0;
  uint64_t cancelled = 0;        // occurrences cancelled (concurrencyPolicy Replace), run or not
  uint64_t record_failures = 0;  // attempts to write a result or dead letter that failed (retried)
  uint64_t commit_failures = 0;  // commits the broker refused (the next one covers them)
};

class Worker final : private kafka::RebalanceListener {
 public:
  // `broker` (optional, must outlive the Worker): the Kafka seam; without one, Run
  // makes the librdkafka one from `options`.
  Worker(WorkerOptions options, Handler handler, Clock& clock, TaskBroker* broker = nullptr);
  ~Worker() override;
  // Consumes until `cancel` fires; returns an error only if Kafka could not be
  // joined at all.
  Status Run(CancelToken& cancel);
  WorkerStats Stats() const;
  int InFlight() const;
  // Finished messages whose result or dead letter is not on the broker yet.
  int Writing() const;
  // A cancel event (concurrencyPolicy Replace): occurrences of task UID `task_id`
  // scheduled before `before` stop (running) or never start (not yet consumed).
  // Thread-safe; the control listener's thread calls it. Cancels are remembered for
  // `cancel_memory` (the listener replays that much on start).
  void Cancel(const std::string& task_id, Instant before);
  // Seconds from an occurrence's start to its outcome (every attempt and backoff),
  // for the occurrences that reached one; thread-safe.
  prometheus::ClientMetric TaskDuration() const { return task_duration_.Collect(); }
  // Seconds from a message's consumption to its handler's start (waiting for a
  // pool thread); thread-safe.
  prometheus::ClientMetric QueueWait() const { return queue_wait_.Collect(); }
  // Seconds from sending a commit to its outcome (asynchronous and synchronous);
  // thread-safe.
  prometheus::ClientMetric CommitLatency() const { return commit_latency_.Collect(); }

 private:
  using TopicPartition = std::pair<std::string, int32_t>;
  // Finds a partition by a topic name it does not copy (the polled message's).
  struct TopicPartitionLess {
    using is_transparent = void;
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      const std::string_view at = a.first, bt = b.first;
      return at != bt ? at < bt : a.second < b.second;
    }
  };
  using PartitionView = std::pair<std::string_view, int32_t>;
  struct PartitionState {
    // Consumed, not finished (running, or handed back), in ascending order: offsets
    // are consumed in order, and are mostly finished in order.
    std::deque<int64_t> unfinished;
    int running = 0;
    int64_t finished_next = -1;  // highest finished offset + 1
    int64_t end = -1;            // offset of the partition's end when last reached (EOF)
    int64_t committed = -1;      // what this worker last committed (confirmed)
    int64_t committing = -1;     // sent asynchronously, outcome not known yet
  };

  // A record to write before a message counts as finished.
  struct Record {
    const std::string* topic = nullptr;  // options_.results_topic or dead_letter_topic
    std::optional<std::string> key;
    std::string value;
    std::vector<kafka::Header> headers;
  };
  // What a finished message adds to the stats.
  enum class Count : uint8_t { kNone, kSucceeded, kFailed, kDeadLettered, kCancelled, kDuplicate, kInvalid };
  static void Add(Count c, WorkerStats& s);
  // What became of a message on a pool thread.
  struct Verdict {
    bool handed_back = false;                       // shutdown first: not finished, its offset stays back
    std::vector<Record> records;                    // written in order, each after the previous is on the broker
    std::string id;                                 // its ce_id, forgotten if the records are never written
    Count count = Count::kNone;                     // added (under mu_) once it finished
    std::chrono::steady_clock::time_point ended{};  // when its attempts ended (not set: none ran)
  };
  // A finished message whose records are being written (delivery thread).
  struct PendingWrite {
    PartitionState* partition = nullptr;  // partitions_ keeps it while the message runs
    int64_t offset = 0;
    Verdict verdict;
    size_t next = 0;  // the record in flight, or waiting in retries_
    bool in_flight = false;
    std::optional<Backoff> backoff;  // made on the first failure
  };
  // A fetched message: librdkafka's own (the real broker; the pool thread that
  // runs it copies its parts and parses its headers, so the polling thread only
  // hands it over, and what a task allocates is allocated and freed on one
  // thread) or a copy (a fake broker).
  struct Fetched {
    kafka::Message m;
    kafka::MessagePtr raw;
    std::string_view topic() const { return raw ? kafka::TopicOf(*raw) : std::string_view(m.topic); }
    int32_t partition() const { return raw ? raw->partition : m.partition; }
    int64_t offset() const { return raw ? raw->offset : m.offset; }
    bool In(const std::vector<std::pair<std::string, int32_t>>& partitions) const {
      return std::any_of(partitions.begin(), partitions.end(),
                         [&](const auto& tp) { return tp.second == partition() && tp.first == topic(); });
    }
  };
  struct Queued {
    Fetched m;
    PartitionState* partition = nullptr;       // partitions_ keeps it while the message runs
    std::chrono::steady_clock::time_point at;  // consumed
  };

  // A running occurrence, named to Cancel: its task UID (a view into its ce_id),
  // scheduled time and abort token (null: the slot is free).
  struct Running {
    std::string_view task_id;
    Instant scheduled;
    CancelToken* abort = nullptr;
  };
  // Runs the handler on one message; takes its value and headers (a message that
  // is not a fired task keeps them, for its dead letter). `running`: the calling
  // pool thread's slot in running_.
  // `started`: when the pool thread took it.
  Verdict Process(kafka::Message& m, CancelToken& cancel, Running& running,
                  std::chrono::steady_clock::time_point started);
  // How the attempts at an occurrence ended: an outcome after `attempts`, or
  // handed back (shutdown first).
  struct Attempts {
    RunOutcome outcome;
    int attempts = 0;
    bool handed_back = false;
  };
  Attempts RunAttempts(const FiredTask& t, CancelToken& cancel, Running& running);
  // Adds the occurrence's result record to `v` (when results are configured) and
  // moves its id into v.id; takes t's id, subject and time.
  void AddResult(FiredTask& t, RunOutcome outcome, int attempts, std::chrono::milliseconds took, Verdict& v) const;
  bool Seen(const std::string& id);
  // The latest cancel of the task, if its occurrence scheduled at `scheduled` is
  // cancelled by it.
  bool CancelledLocked(std::string_view task_id, Instant scheduled) const REQUIRES(cancel_mu_);
  void Forget(const std::string& id);
  void PoolThread(CancelToken& cancel, Running& running);
  // Marks a message finished (its offset may be committed) or handed back.
  // True when its partition has nothing running any more.
  bool FinishLocked(PartitionState& p, int64_t offset, bool finished) REQUIRES(mu_);
  // The state of a partition (made on its first message or end), found without
  // copying the topic name.
  PartitionState& PartitionLocked(std::string_view topic, int32_t partition) REQUIRES(mu_);
  // Produces writing_[key]'s next record; on a refusal schedules a retry.
  void SendRecord(uint64_t key);
  // Produces `r`, writing_[key]'s record in flight (no lock held).
  void ProduceRecord(uint64_t key, const Record& r);
  // The outcome of writing_[key]'s record in flight: the next record is due
  // (`next`), it finished, or it waits for a retry. True when the polling thread
  // may be waiting for it (a revoke, the shutdown, room under max_writing_).
  bool SettleLocked(uint64_t key, const Status& s, bool& next) REQUIRES(mu_);
  // One outcome (a record Produce refused; the calling thread).
  void OnRecordDelivered(uint64_t key, const Status& s);
  // The outcomes one ServeDeliveries gave (delivered_), under one lock; then the
  // records due next. Delivery thread.
  void SettleDelivered();
  void DeliveryThread();
  // Hands back the messages whose records wait for a retry (shutdown).
  void HandBackRetriesLocked() REQUIRES(mu_);
  // Commits every partition whose commit point moved. Poll thread only. `sync`
  // waits for the outcome (revoke, shutdown); `only` limits it to some partitions.
  void CommitReady(bool sync, const std::vector<TopicPartition>* only = nullptr);
  void OnAssigned(rd_kafka_t* consumer, const std::vector<TopicPartition>& partitions) override;
  void OnRevoked(rd_kafka_t* consumer, const std::vector<TopicPartition>& partitions) override;

  WorkerOptions options_;
  Handler handler_;
  Clock& clock_;
  std::unique_ptr<TaskBroker> owned_broker_;
  TaskBroker* broker_;

  // Cancels and the running occurrences they may stop (Cancel and the pool
  // threads); apart from mu_, so a task's start and end do not wait for it.
  Mutex cancel_mu_;
  std::atomic<uint64_t> attempts_{0};  // WorkerStats::attempts
  Mutex seen_mu_;
  RecentIds recent_ GUARDED_BY(seen_mu_);  // the dedupe window

  mutable Mutex mu_;
  std::condition_variable cv_;       // the polling thread waits: room to fetch, revokes, shutdown
  std::condition_variable work_cv_;  // pool threads wait: a queued message, or stopping
  WorkerStats stats_ GUARDED_BY(mu_);
  std::map<TopicPartition, PartitionState, TopicPartitionLess> partitions_ GUARDED_BY(mu_);
  std::deque<Queued> queue_ GUARDED_BY(mu_);  // consumed, waiting for a pool thread
  int in_flight_ GUARDED_BY(mu_) = 0;         // queued + running (at most concurrency + prefetch)
  // The finished messages whose records are being written, by key: a slot and its
  // generation, so a key whose write ended never finds the slot's next write, and
  // a steady flow reuses the slots (no allocation per message). An entry stays put
  // until erased (a record in flight is produced from where it lies).
  class WriteSlots {
   public:
    // A new entry and its key.
    std::pair<uint64_t, PendingWrite*> Add();
    // The live entry of `key`, or null.
    PendingWrite* Find(uint64_t key);
    // Ends the live entry of `key` (found by Find).
    void Erase(uint64_t key);
    size_t size() const { return live_; }
    bool empty() const { return live_ == 0; }

   private:
    struct Slot {
      uint32_t generation = 0;
      bool live = false;
      PendingWrite write;
    };
    std::deque<Slot> slots_;      // a deque: growing it moves no entry
    std::vector<uint32_t> free_;  // slots not live
    size_t live_ = 0;
  };
  WriteSlots writing_ GUARDED_BY(mu_);
  // Records that failed, by when they are produced again.
  std::multimap<std::chrono::steady_clock::time_point, uint64_t> retries_ GUARDED_BY(mu_);
  int refill_at_ GUARDED_BY(mu_) = 0;  // a full polling thread fetches again at this many in flight
  // The time a pool thread spends on a message (moving average, pool threads), and
  // the messages fetched ahead it gives (WorkerOptions::prefetch).
  double run_ns_ GUARDED_BY(mu_) = 0;
  int AheadLocked(int concurrency) const REQUIRES(mu_);
  size_t max_writing_ = 1000;    // options_.max_writing, at least 1
  bool new_assignment_ = false;  // polling thread only: pause state not yet applied to it
  // Polling thread only: messages fetched in this burst, not counted or queued yet.
  std::vector<Fetched> polled_;
  // Delivery thread only: outcomes served by ServeDeliveries, not settled yet.
  std::vector<std::pair<uint64_t, Status>> delivered_;
  // Counts polled_'s messages as running and queues them for the pool.
  void QueuePolled();
  bool shutting_down_ GUARDED_BY(mu_) = false;  // a record that fails now is handed back
  bool delivery_stop_ GUARDED_BY(mu_) = false;
  int finished_since_commit_ GUARDED_BY(mu_) = 0;
  bool stopping_ GUARDED_BY(mu_) = false;
  std::vector<std::thread> pool_;  // started and joined by the poll thread only
  // Cancels by task UID: occurrences scheduled before the instant are cancelled.
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, Instant, StringHash, std::equal_to<>> cancels_ GUARDED_BY(cancel_mu_);
  // The occurrence each pool thread runs (one slot per thread, made before they
  // start; a thread writes only its own): Cancel aborts the ones it names.
  std::vector<Running> running_ GUARDED_BY(cancel_mu_);
  prometheus::Histogram task_duration_{
      prometheus::Histogram::BucketBoundaries{0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 1800, 3600}};
  prometheus::Histogram queue_wait_{
      prometheus::Histogram::BucketBoundaries{0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60, 300}};
  prometheus::Histogram commit_latency_{
      prometheus::Histogram::BucketBoundaries{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5}};
};

}  // namespace cronlane::worker
