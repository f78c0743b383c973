// The worker's batching of commits and records, through a fake TaskBroker on
// simulated time: commits come every commit_interval or after commit_every
// finished messages, never past an unfinished one; a record that fails holds its
// offset back and is produced again; a revoke and the shutdown commit
// synchronously what finished; a dead letter follows its result.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "worker/task_broker.h"
#include "worker/worker.h"

namespace cronlane::worker {
namespace {

using namespace std::chrono_literals;

struct Committed {
  int32_t partition;
  int64_t offset;
  bool sync;
};

// A broker in memory. The test adds messages and decides the fate of records;
// the worker's threads call the TaskBroker side.
class FakeBroker final : public TaskBroker {
 public:
  // --- the test's side
  void Add(int32_t partition, int64_t offset, const std::string& id, int max_attempts = 1) {
    kafka::Message m;
    m.topic = "tasks";
    m.partition = partition;
    m.offset = offset;
    m.key = "ns/t";
    m.headers = {{"ce_specversion", "1.0"},
                 {"ce_id", id},
                 {"ce_source", "/ns/t"},
                 {"ce_type", "dev.cronlane.task.fired"},
                 {"ce_time", "2026-01-01T00:00:00Z"},
                 {"ce_subject", "ns/t"},
                 {"ce_maxattempts", std::to_string(max_attempts)}};
    std::lock_guard lock(mu_);
    messages_.push_back(std::move(m));
    cv_.notify_all();
  }
  // The partition's end (an end-of-partition event at `offset`), in order with the
  // messages added.
  void AddEnd(int32_t partition, int64_t offset) {
    kafka::Message m;
    m.topic = "tasks";
    m.partition = partition;
    m.offset = offset;
    m.timestamp_ms = kEndMarker;
    std::lock_guard lock(mu_);
    messages_.push_back(std::move(m));
    cv_.notify_all();
  }
  void Revoke(std::vector<std::pair<std::string, int32_t>> partitions) {
    std::lock_guard lock(mu_);
    revoke_ = std::move(partitions);
    cv_.notify_all();
  }
  // The poll right after the next `events` messages or ends revokes `partitions`
  // (as librdkafka may, between two events the worker takes in one burst).
  void RevokeAfterEvents(int events, std::vector<std::pair<std::string, int32_t>> partitions) {
    std::lock_guard lock(mu_);
    revoke_after_events_ = events;
    revoke_after_ = std::move(partitions);
  }
  void Assign(std::vector<std::pair<std::string, int32_t>> partitions) {
    std::lock_guard lock(mu_);
    assign_ = std::move(partitions);
    cv_.notify_all();
  }
  void SetFailDeliveries(bool fail) {
    std::lock_guard lock(mu_);
    fail_ = fail;
    cv_.notify_all();
  }
  void SetHoldDeliveries(bool hold) {
    std::lock_guard lock(mu_);
    hold_ = hold;
    cv_.notify_all();
  }
  // Waits (real time, bounded) until `pred` holds over the broker's state.
  bool WaitFor(const std::function<bool()>& pred, std::chrono::seconds limit = 20s) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, limit, pred);
  }
  // Waits until the polling thread went round `n` more times (each round decides
  // whether a commit is due before it polls).
  bool WaitPolls(int n) {
    std::unique_lock lock(mu_);
    const int target = polls_ + n;
    return cv_.wait_for(lock, 20s, [&] { return polls_ >= target; });
  }
  std::vector<Committed> commits() {
    std::lock_guard lock(mu_);
    return commits_;
  }
  std::vector<std::string> delivered() {
    std::lock_guard lock(mu_);
    return delivered_;
  }
  size_t produced_pending() {
    std::lock_guard lock(mu_);
    return pending_.size();
  }
  // For predicates that run under WaitFor's lock.
  std::vector<Committed>& commits_locked() { return commits_; }
  std::vector<std::string>& delivered_locked() { return delivered_; }
  size_t pending_locked() const { return pending_.size(); }
  bool revoking_locked() const { return revoking_; }
  bool paused_locked() const { return paused_; }
  size_t waiting_locked() const { return messages_.size(); }
  std::vector<std::string> warmed_up() {
    std::lock_guard lock(mu_);
    return warmed_up_;
  }
  bool warmed_before_subscribe() {
    std::lock_guard lock(mu_);
    return warmed_before_subscribe_;
  }

  // --- the worker's side
  Status Subscribe(const std::vector<std::string>&, kafka::RebalanceListener* listener) override {
    std::lock_guard lock(mu_);
    listener_ = listener;
    return Status::Ok();
  }
  void WarmUp(const std::vector<std::string>& topics, std::chrono::milliseconds) override {
    std::lock_guard lock(mu_);
    warmed_up_ = topics;
    warmed_before_subscribe_ = listener_ == nullptr;
  }
  Result<kafka::Polled> Poll(std::chrono::milliseconds timeout) override {
    std::unique_lock lock(mu_);
    ++polls_;
    cv_.notify_all();
    auto next = [&] {
      return std::find_if(messages_.begin(), messages_.end(), [&](const kafka::Message& m) {
        return assigned_.contains(m.partition) && !paused_partitions_.contains(m.partition);
      });
    };
    auto ready = [&] {
      return next() != messages_.end() || !revoke_.empty() || !assign_.empty() || !commit_done_.empty();
    };
    cv_.wait_for(lock, std::min<std::chrono::milliseconds>(timeout, 5ms), ready);
    std::vector<std::function<void()>> done;
    done.swap(commit_done_);
    if (!revoke_.empty()) {
      auto parts = std::move(revoke_);
      revoke_.clear();
      revoking_ = true;
      cv_.notify_all();
      lock.unlock();
      for (auto& d : done) d();
      listener_->OnRevoked(nullptr, parts);
      lock.lock();
      for (const auto& [_, partition] : parts) assigned_.erase(partition);
      return kafka::Polled{};
    }
    if (!assign_.empty()) {
      auto parts = std::move(assign_);
      assign_.clear();
      for (const auto& [_, partition] : parts) assigned_.insert(partition);
      lock.unlock();
      for (auto& d : done) d();
      listener_->OnAssigned(nullptr, parts);
      return kafka::Polled{};
    }
    kafka::Polled p;
    if (auto it = next(); it != messages_.end()) {
      if (it->timestamp_ms == kEndMarker) {
        p.eof = kafka::PartitionOffset{it->topic, it->partition, it->offset};
      } else {
        p.message = std::move(*it);
      }
      messages_.erase(it);
      if (revoke_after_events_ > 0 && --revoke_after_events_ == 0) revoke_.swap(revoke_after_);  // the next Poll
    }
    lock.unlock();
    for (auto& d : done) d();
    return p;
  }
  Status Commit(const std::vector<kafka::PartitionOffset>& offsets) override {
    std::lock_guard lock(mu_);
    for (const auto& o : offsets) commits_.push_back({o.partition, o.offset, true});
    cv_.notify_all();
    return Status::Ok();
  }
  void CommitAsync(const std::vector<kafka::PartitionOffset>& offsets, std::function<void(Status)> done) override {
    std::lock_guard lock(mu_);
    for (const auto& o : offsets) commits_.push_back({o.partition, o.offset, false});
    commit_done_.push_back([done = std::move(done)] { done(Status::Ok()); });
    cv_.notify_all();
  }
  // As librdkafka: only the partitions assigned now, and a partition keeps its
  // pause through a revoke and a new assignment (librdkafka #1849).
  Status SetPaused(bool paused) override {
    std::lock_guard lock(mu_);
    paused_ = paused;
    for (int32_t partition : assigned_) {
      if (paused) {
        paused_partitions_.insert(partition);
      } else {
        paused_partitions_.erase(partition);
      }
    }
    if (paused) ++pauses_;
    cv_.notify_all();
    return Status::Ok();
  }
  Status Close() override { return Status::Ok(); }
  Status Produce(const std::string& topic, const std::optional<std::string>&, const std::string& value,
                 const std::vector<kafka::Header>&, std::function<void(Status)> done) override {
    std::lock_guard lock(mu_);
    pending_.push_back({topic + ":" + value, std::move(done)});
    cv_.notify_all();
    return Status::Ok();
  }
  void ServeDeliveries(std::chrono::milliseconds timeout) override {
    std::unique_lock lock(mu_);
    cv_.wait_for(lock, std::min<std::chrono::milliseconds>(timeout, 5ms), [&] { return !hold_ && !pending_.empty(); });
    if (hold_) return;
    std::vector<std::pair<std::function<void(Status)>, Status>> run;
    for (auto& [what, done] : pending_) {
      if (fail_) {
        run.emplace_back(std::move(done), Unavailable("broker down"));
      } else {
        delivered_.push_back(what);
        run.emplace_back(std::move(done), Status::Ok());
      }
    }
    pending_.clear();
    cv_.notify_all();
    lock.unlock();
    // The worker settles the outcomes after this call (tests wait for its
    // WorkerStats::record_failures).
    for (auto& [done, s] : run) done(s);
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  static constexpr int64_t kEndMarker = -42;  // a timestamp no message has: AddEnd's event
  std::deque<kafka::Message> messages_;
  std::vector<std::pair<std::string, int32_t>> revoke_, assign_, revoke_after_;
  int revoke_after_events_ = 0;
  std::set<int32_t> assigned_{0, 1, 2, 3};
  std::set<int32_t> paused_partitions_;
  bool revoking_ = false;
  std::vector<std::function<void()>> commit_done_;
  std::vector<Committed> commits_;
  std::vector<std::pair<std::string, std::function<void(Status)>>> pending_;
  std::vector<std::string> delivered_;
  bool fail_ = false, hold_ = false, paused_ = false;
  int polls_ = 0, pauses_ = 0;
  kafka::RebalanceListener* listener_ = nullptr;
  std::vector<std::string> warmed_up_;
  bool warmed_before_subscribe_ = false;
};

int64_t LastCommit(const std::vector<Committed>& commits, int32_t partition = 0) {
  int64_t last = -1;
  for (const auto& c : commits) {
    if (c.partition == partition) last = std::max(last, c.offset);
  }
  return last;
}

class WorkerBatchingTest : public ::testing::Test {
 protected:
  WorkerBatchingTest() {
    options.topics = {"tasks"};
    options.results_topic = "results";
    options.commit_interval = 200ms;
    options.commit_every = 3;
    options.record_retry = 10ms;
    options.max_record_retry = 10ms;
  }
  ~WorkerBatchingTest() override {
    release.Cancel();  // a test that failed early leaves no task held
    Stop();
  }
  void Start(Handler h = [](const FiredTask&, int, CancelToken&, CancelToken&) { return Outcome::kSucceeded; }) {
    worker = std::make_unique<Worker>(options, std::move(h), clock, &broker);
    running = std::thread([this] { ASSERT_TRUE(worker->Run(cancel).ok()); });
  }
  // Every task succeeds; the one with id "slow" runs until `release` is cancelled.
  void StartHoldingSlow() {
    Start([this](const FiredTask& t, int, CancelToken&, CancelToken&) {
      if (t.id == "slow") release.WaitFor(60s);
      return Outcome::kSucceeded;
    });
  }
  void Stop() {
    cancel.Cancel();
    if (running.joinable()) running.join();
  }
  // Until the worker counted `n` failed records (and so scheduled their retries:
  // the clock may then move past the backoff).
  bool WaitRecordFailures(uint64_t n) {
    return broker.WaitFor([&] { return worker->Stats().record_failures >= n; });
  }
  bool WaitDelivered(size_t n) {
    return broker.WaitFor([&] { return broker.delivered_locked().size() >= n; });
  }

  WorkerOptions options;
  FakeClock clock;
  FakeBroker broker;
  CancelToken cancel;
  CancelToken release;  // StartHoldingSlow's "slow" task runs until this
  std::unique_ptr<Worker> worker;
  std::thread running;
};

TEST_F(WorkerBatchingTest, CommitsAfterCommitEveryMessagesOrOnTheIntervalWhicheverComesFirst) {
  Start();
  broker.Add(0, 0, "a");
  broker.Add(0, 1, "b");
  ASSERT_TRUE(WaitDelivered(2));
  ASSERT_TRUE(broker.WaitPolls(3));
  EXPECT_TRUE(broker.commits().empty()) << "2 of commit_every 3, and no simulated time passed";
  broker.Add(0, 2, "c");
  ASSERT_TRUE(broker.WaitFor([&] { return LastCommit(broker.commits_locked()) == 3; })) << "the third message";
  EXPECT_FALSE(broker.commits().back().sync) << "asynchronous while running";

  broker.Add(0, 3, "d");
  ASSERT_TRUE(WaitDelivered(4));
  ASSERT_TRUE(broker.WaitPolls(3));
  EXPECT_EQ(LastCommit(broker.commits()), 3) << "1 of 3, the interval not over";
  clock.Advance(200ms);
  ASSERT_TRUE(broker.WaitFor([&] { return LastCommit(broker.commits_locked()) == 4; })) << "the interval";
  const size_t commits = broker.commits().size();
  clock.Advance(1s);
  ASSERT_TRUE(broker.WaitPolls(3));
  EXPECT_EQ(broker.commits().size(), commits) << "nothing new finished: no commit";
}

TEST_F(WorkerBatchingTest, NothingIsCommittedPastAnUnfinishedMessage) {
  options.concurrency = 2;
  options.commit_every = 1;
  StartHoldingSlow();
  broker.Add(0, 0, "slow");
  broker.Add(0, 1, "fast-1");
  broker.Add(0, 2, "fast-2");
  ASSERT_TRUE(WaitDelivered(2));
  clock.Advance(1s);
  ASSERT_TRUE(broker.WaitPolls(3));
  EXPECT_LE(LastCommit(broker.commits()), 0) << "offset 0 still runs";
  release.Cancel();
  ASSERT_TRUE(broker.WaitFor([&] { return LastCommit(broker.commits_locked()) == 3; }));
}

TEST_F(WorkerBatchingTest, ARecordThatFailsHoldsItsOffsetBackAndIsProducedAgain) {
  options.commit_every = 1;
  broker.SetFailDeliveries(true);
  Start();
  broker.Add(0, 0, "a");
  ASSERT_TRUE(WaitRecordFailures(1));
  clock.Advance(1s);  // past the interval, and past the retry's backoff
  ASSERT_TRUE(WaitRecordFailures(2)) << "produced again after the backoff";
  ASSERT_TRUE(broker.WaitPolls(3));
  EXPECT_TRUE(broker.commits().empty()) << "its result is not on the broker";

  broker.SetFailDeliveries(false);
  clock.Advance(1s);
  ASSERT_TRUE(broker.WaitFor([&] { return LastCommit(broker.commits_locked()) == 1; }));
  EXPECT_EQ(broker.delivered().size(), 1u);
  EXPECT_GE(worker->Stats().record_failures, 2u);
}

TEST_F(WorkerBatchingTest, ARevokeWaitsForTheRecordsThenCommitsSynchronously) {
  options.commit_every = 1000;
  broker.SetHoldDeliveries(true);
  Start();
  broker.Add(0, 0, "a");
  ASSERT_TRUE(broker.WaitFor([&] { return broker.pending_locked() == 1; }));
  broker.Revoke({{"tasks", 0}});
  ASSERT_TRUE(broker.WaitFor([&] { return broker.revoking_locked(); }));
  EXPECT_TRUE(broker.commits().empty()) << "the result is not delivered yet";
  broker.SetHoldDeliveries(false);
  ASSERT_TRUE(broker.WaitFor([&] { return LastCommit(broker.commits_locked()) == 1; }));
  EXPECT_TRUE(broker.commits().back().sync);
}

TEST_F(WorkerBatchingTest, ShutdownCommitsWhatFinishedAndHandsBackARecordThatCannotBeWritten) {
  options.commit_every = 1000;
  Start();
  broker.Add(0, 0, "a");
  ASSERT_TRUE(WaitDelivered(1));
  broker.SetFailDeliveries(true);
  broker.Add(0, 1, "b");
  ASSERT_TRUE(WaitRecordFailures(1));
  Stop();  // returns without waiting for the broker to come back
  auto commits = broker.commits();
  ASSERT_FALSE(commits.empty());
  EXPECT_EQ(commits.back().offset, 1) << "offset 1 handed back: its result was never written";
  EXPECT_TRUE(commits.back().sync);
}

TEST_F(WorkerBatchingTest, ADeadLetterIsWrittenOnlyAfterItsResult) {
  options.dead_letter_topic = "dlq";
  options.commit_every = 1;
  broker.SetHoldDeliveries(true);
  Start([](const FiredTask&, int, CancelToken&, CancelToken&) { return Outcome::kFailed; });
  broker.Add(0, 0, "doomed");
  ASSERT_TRUE(broker.WaitFor([&] { return broker.pending_locked() == 1; }));
  clock.Advance(1s);
  ASSERT_TRUE(broker.WaitPolls(3));
  EXPECT_EQ(broker.produced_pending(), 1u) << "only the result, until it is delivered";
  EXPECT_TRUE(broker.commits().empty());
  broker.SetHoldDeliveries(false);
  ASSERT_TRUE(broker.WaitFor([&] { return LastCommit(broker.commits_locked()) == 1; }));
  auto delivered = broker.delivered();
  ASSERT_EQ(delivered.size(), 2u);
  EXPECT_TRUE(delivered[0].starts_with("results:"));
  EXPECT_TRUE(delivered[1].starts_with("dlq:"));
  EXPECT_EQ(worker->Stats().dead_lettered, 1u);
}

// A results topic that cannot keep up: at most max_writing finished messages wait
// for their records; then fetching pauses (the consumer is still polled), and it
// resumes once they are written.
TEST_F(WorkerBatchingTest, FetchingPausesWhileTooManyRecordsWaitAndResumesAfter) {
  options.max_writing = 2;
  options.prefetch = 0;
  options.commit_every = 1;
  broker.SetHoldDeliveries(true);
  Start();
  for (int i = 0; i < 5; ++i) broker.Add(0, i, "m" + std::to_string(i));
  ASSERT_TRUE(broker.WaitFor([&] { return broker.pending_locked() == 2 && broker.paused_locked(); }));
  ASSERT_TRUE(broker.WaitPolls(3)) << "still polled while paused";
  EXPECT_EQ(broker.produced_pending(), 2u) << "no third task ran";
  broker.SetHoldDeliveries(false);
  ASSERT_TRUE(broker.WaitFor([&] { return broker.delivered_locked().size() == 5; }));
  ASSERT_TRUE(broker.WaitFor([&] { return LastCommit(broker.commits_locked()) == 5; }));
  EXPECT_TRUE(broker.WaitFor([&] { return !broker.paused_locked(); })) << "resumed";
}

// A revoke waits for the records of its partitions; when they cannot be written
// and the worker is told to stop, their messages are handed back and the worker
// stops instead of waiting for the broker.
TEST_F(WorkerBatchingTest, AStopDuringARevokeWaitingForFailingRecordsHandsThemBack) {
  broker.SetFailDeliveries(true);
  Start();
  broker.Add(0, 0, "a");
  ASSERT_TRUE(WaitRecordFailures(1));
  broker.Revoke({{"tasks", 0}});
  ASSERT_TRUE(broker.WaitFor([&] { return broker.revoking_locked(); }));
  auto stopped = std::async(std::launch::async, [&] { Stop(); });
  ASSERT_EQ(stopped.wait_for(20s), std::future_status::ready) << "the revoke still waits for the broker";
  EXPECT_LE(LastCommit(broker.commits()), 0) << "offset 0 handed back, not committed";
}

// librdkafka keeps a partition's pause through a revoke and a new assignment. A
// worker that was full (paused) when its partitions were revoked, and had room
// again before they came back, resumes them: it applies its pause state to every
// new assignment. (Before, it resumed the empty assignment between the two, and
// the partitions came back paused: a scale-in left a Pod idle with lag.)
TEST_F(WorkerBatchingTest, PartitionsRevokedWhilePausedAreFetchedAgainWhenTheyComeBack) {
  options.concurrency = 1;
  options.prefetch = 0;
  options.commit_every = 1;
  StartHoldingSlow();
  broker.Add(0, 0, "slow");
  ASSERT_TRUE(broker.WaitFor([&] { return broker.paused_locked(); })) << "full: paused";
  broker.Revoke({{"tasks", 0}, {"tasks", 1}, {"tasks", 2}, {"tasks", 3}});
  ASSERT_TRUE(broker.WaitFor([&] { return broker.revoking_locked(); }));
  release.Cancel();  // the revoke finishes the running task and commits it
  ASSERT_TRUE(broker.WaitFor([&] { return LastCommit(broker.commits_locked()) == 1; }));
  ASSERT_TRUE(broker.WaitPolls(3)) << "room again, with nothing assigned";
  broker.Add(0, 1, "after");
  broker.Assign({{"tasks", 0}, {"tasks", 1}, {"tasks", 2}, {"tasks", 3}});
  EXPECT_TRUE(WaitDelivered(2)) << "partition 0 came back paused and was never fetched";
}

// The polling thread takes the messages already fetched in a burst and queues
// them together; a revoke inside the burst must drop the ones of the revoked
// partitions (never counted, so never committed): the next owner runs them.
TEST_F(WorkerBatchingTest, AMessageOfAPartitionRevokedWithinAPollBurstIsLeftToTheNextOwner) {
  options.commit_every = 1;
  Start();
  broker.RevokeAfterEvents(1, {{"tasks", 1}});
  broker.Add(1, 0, "gone");
  ASSERT_TRUE(broker.WaitFor([&] { return broker.revoking_locked(); }));
  broker.Add(0, 0, "kept");
  ASSERT_TRUE(WaitDelivered(1));
  ASSERT_TRUE(broker.WaitFor([&] { return LastCommit(broker.commits_locked(), 0) == 1; }));
  ASSERT_TRUE(broker.WaitPolls(3));
  for (const auto& d : broker.delivered()) EXPECT_EQ(d.find("gone"), std::string::npos) << d;
  EXPECT_EQ(worker->Stats().succeeded, 1u);
  EXPECT_LE(LastCommit(broker.commits(), 1), 0) << "partition 1's message was not run here";
}

// A partition's end read in the same burst as a message before it, then a revoke
// of that partition: the message must be counted before the end is, or the
// revoke's commit passes it (the end) while the message is dropped unrun — lost.
TEST_F(WorkerBatchingTest, APartitionsEndInABurstIsNeverCommittedPastAMessageBeforeIt) {
  options.commit_every = 1;
  Start();
  broker.RevokeAfterEvents(2, {{"tasks", 0}});
  broker.Add(0, 0, "a");
  broker.AddEnd(0, 1);
  ASSERT_TRUE(broker.WaitFor([&] { return broker.revoking_locked(); }));
  ASSERT_TRUE(broker.WaitPolls(3));
  const auto delivered = broker.delivered();
  const bool ran = std::any_of(delivered.begin(), delivered.end(),
                               [](const std::string& d) { return d.find("\"id\":\"a\"") != std::string::npos; });
  EXPECT_TRUE(ran || LastCommit(broker.commits()) <= 0)
      << "offset 0 neither ran here nor left for the next owner: committed " << LastCommit(broker.commits());
}

TEST_F(WorkerBatchingTest, ReadiesTheProducerForItsRecordTopicsBeforeJoiningTheGroup) {
  options.dead_letter_topic = "dead";
  Start();
  broker.Add(0, 0, "a");
  ASSERT_TRUE(WaitDelivered(1));
  EXPECT_EQ(broker.warmed_up(), (std::vector<std::string>{"results", "dead"}));
  EXPECT_TRUE(broker.warmed_before_subscribe()) << "the first results must not wait for the producer";
}

TEST_F(WorkerBatchingTest, AnIdSeenWithinTheDedupeWindowIsSkippedAndOneOlderRunsAgain) {
  options.dedupe_window = 2;
  options.commit_every = 1;
  Start();
  broker.Add(0, 0, "a");
  broker.Add(0, 1, "a");  // a redelivery: skipped
  broker.Add(0, 2, "b");
  broker.Add(0, 3, "c");  // "a" leaves the window
  broker.Add(0, 4, "a");  // runs again
  ASSERT_TRUE(broker.WaitFor([&] { return LastCommit(broker.commits_locked()) == 5; }));
  ASSERT_TRUE(WaitDelivered(4));
  const auto stats = worker->Stats();
  EXPECT_EQ(stats.succeeded, 4u);
  EXPECT_EQ(stats.duplicates, 1u);
  int a = 0;
  for (const auto& d : broker.delivered()) a += d.find("\"id\":\"a\"") != std::string::npos ? 1 : 0;
  EXPECT_EQ(a, 2) << "one result for the redelivery skipped, one for the run after the window";
}

// How many messages a worker holds ahead of its pool (running one task that does
// not end, at concurrency 1, prefetch 2) after 8 tasks took `each` on the clock.
class WorkerPrefetchTest : public WorkerBatchingTest {
 protected:
  size_t HeldAfterTasksOf(std::chrono::microseconds each) {
    options.concurrency = 1;
    options.prefetch = 2;
    options.prefetch_time = 10ms;
    Start([this, each](const FiredTask& t, int, CancelToken&, CancelToken&) {
      if (t.id == "slow") {
        release.WaitFor(60s);
      } else {
        clock.Advance(each);
      }
      return Outcome::kSucceeded;
    });
    for (int i = 0; i < 8; ++i) broker.Add(0, i, "short" + std::to_string(i));
    EXPECT_TRUE(WaitDelivered(8));
    broker.Add(0, 8, "slow");
    constexpr int kMore = 300;
    for (int i = 0; i < kMore; ++i) broker.Add(0, 9 + i, "next" + std::to_string(i));
    EXPECT_TRUE(broker.WaitFor([&] { return broker.paused_locked(); })) << "full: paused";
    EXPECT_TRUE(broker.WaitPolls(3));
    return 1 + kMore - Waiting();
  }
  size_t Waiting() {
    size_t n = 0;
    broker.WaitFor([&] {
      n = broker.waiting_locked();
      return true;
    });
    return n;
  }
};

// Ahead of short tasks the worker fetches what its pool runs in prefetch_time:
// 10 ms at 100 µs a task is 100 messages, so it holds 101 (the running one too).
TEST_F(WorkerPrefetchTest, AheadOfShortTasksItFetchesWhatThePoolRunsInPrefetchTime) {
  EXPECT_EQ(HeldAfterTasksOf(100us), 101u);
}

// Ahead of long tasks (1 s each) it fetches only `prefetch` (2), so a long task
// does not hold messages another worker of the group could run.
TEST_F(WorkerPrefetchTest, AheadOfLongTasksItFetchesOnlyPrefetch) {
  EXPECT_EQ(HeldAfterTasksOf(1s), 3u);
}

}  // namespace
}  // namespace cronlane::worker
