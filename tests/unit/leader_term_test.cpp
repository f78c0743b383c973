// The leadership term's start-up order, with fakes at its Kafka seams (FireSink,
// ResultsSource) and a routed fake Kubernetes API: cached tasks reach the
// dispatcher while Kafka is still down; nothing fires, and no status is written,
// before the dispatcher started and the results replay finished; a fenced sink
// ends the term with kFenced; the term's metrics go when it ends.
#include "operator/leader_term.h"
#include "operator/ttl_cleaner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>

#include "tests/support/fake_kube.h"
#include "tests/support/process.h"

namespace cronlane::op {
namespace {

using namespace std::chrono_literals;
using kube::Json;
using testing::RecordingEvents;
using testing::RoutedTransport;
using testing::WaitUntil;

class FakeSink : public dispatcher::FireSink {
 public:
  std::atomic<bool> kafka_up{false};
  std::atomic<bool> fenced{false};
  std::atomic<int> init_attempts{0};
  std::atomic<bool> initialized{false};
  std::atomic<int> commits{0};
  Status Init() override {
    ++init_attempts;
    if (!kafka_up) return Unavailable("broker down");
    initialized = true;
    return Status::Ok();
  }
  Status Commit(const std::vector<dispatcher::OutMessage>&, const std::vector<dispatcher::Checkpoint>& cps) override {
    if (fenced) return Fenced("a newer producer");
    std::lock_guard lock(mu);
    for (const auto& c : cps) {
      if (c.deleted) tombstones.push_back(c.task_id);
    }
    ++commits;
    return Status::Ok();
  }
  Result<dispatcher::Checkpoints> ReadCheckpoints() override { return restore; }
  std::vector<std::string> Tombstones() {
    std::lock_guard lock(mu);
    return tombstones;
  }

  dispatcher::Checkpoints restore;  // what ReadCheckpoints() finds
  std::mutex mu;
  std::vector<std::string> tombstones;
};

class FakeResults : public dispatcher::ResultsSource {
 public:
  std::atomic<bool> replayed{false};
  mutable std::atomic<int> queries{0};  // how often the term asked: it is waiting at the barrier
  void Run(CancelToken& cancel) override {
    while (!cancel.WaitFor(1h)) {
    }
  }
  bool Replayed() const override {
    ++queries;
    return replayed.load();
  }
  uint64_t results() const override { return 0; }
  uint64_t invalid() const override { return 0; }
};

Json TaskJson(const std::string& name) {
  return Json{{"metadata",
               {{"namespace", "ns"},
                {"name", name},
                {"uid", "uid-" + name},
                {"generation", 1},
                {"resourceVersion", "5"},
                {"creationTimestamp", "2026-01-01T00:00:00Z"}}},
              {"spec", {{"schedule", "* * * * * *"}, {"target", {{"topic", "jobs"}}}}}};
}

std::optional<double> Metric(const CallbackMetrics& m, const std::string& name) {
  for (const auto& f : m.Collect()) {
    if (f.name == name && !f.metric.empty()) {
      return f.metric[0].gauge.value + f.metric[0].counter.value;
    }
  }
  return std::nullopt;
}

class LeaderTermTest : public ::testing::Test {
 protected:
  LeaderTermTest() {
    auto t = std::make_unique<RoutedTransport>();
    transport_ = t.get();
    Json list = {{"items", {TaskJson("a"), TaskJson("b")}}, {"metadata", {{"resourceVersion", "7"}}}};
    transport_->Route("GET /apis/cronlane.dev/v1alpha1/scheduledtasks?limit=500&resourceVersion=0", {200, list.dump()});
    for (const char* n : {"a", "b"}) {
      transport_->Route(std::string("PATCH /apis/cronlane.dev/v1alpha1/namespaces/ns/scheduledtasks/") + n + "/status",
                        {200, "{}"});
    }
    client_ = std::make_unique<kube::KubeClient>(std::move(t), RealClock::Get(), 0, 1);
    cache_ = std::make_unique<Cache>(*client_, std::vector<std::string>{}, RealClock::Get(), false);
    cache_thread_ = std::thread([this] { cache_->Run(cache_stop_); });
    EXPECT_TRUE(WaitUntil([&] { return cache_->Synced(); }, 10s));
  }
  ~LeaderTermTest() override {
    cache_stop_.Cancel();
    cache_thread_.join();
  }
  std::unique_ptr<LeaderTerm> Term(int fenced_restarts = 3) {
    TermWorld w;
    w.sink = [this] {
      auto s = std::make_unique<FakeSink>();
      s->restore = restore_;
      if (fence_new_sinks_) {  // Kafka up, and every commit fenced
        s->kafka_up = true;
        s->fenced = true;
      }
      ++sinks_made_;
      sink_ = s.get();
      return s;
    };
    w.results = [this](auto, auto, auto) {
      auto r = std::make_unique<FakeResults>();
      r->replayed = fence_new_sinks_.load();
      results_ = r.get();
      return r;
    };
    return std::make_unique<LeaderTerm>(*client_, *cache_, events_, RealClock::Get(), metrics_, std::move(w),
                                        LeaderTermOptions{.results_barrier = 60s,
                                                          .start_backoff = 20ms,
                                                          .max_start_backoff = 50ms,
                                                          .status_period = 50ms,
                                                          .fenced_restart_delay = 20ms,
                                                          .fenced_restarts = fenced_restarts});
  }
  size_t StatusPatches() const { return transport_->Sent("PATCH", "/status").size(); }

  RoutedTransport* transport_ = nullptr;
  std::unique_ptr<kube::KubeClient> client_;
  std::unique_ptr<Cache> cache_;
  CancelToken cache_stop_;
  std::thread cache_thread_;
  RecordingEvents events_;
  CallbackMetrics metrics_;
  dispatcher::Checkpoints restore_;  // for the next sink
  std::atomic<FakeSink*> sink_{nullptr};
  std::atomic<FakeResults*> results_{nullptr};
  std::atomic<bool> fence_new_sinks_{false};
  std::atomic<int> sinks_made_{0};
};

TEST_F(LeaderTermTest, StartUpOrder) {
  auto term = Term();
  CancelToken leading;
  Status result = Internal("not returned");
  std::thread t([&] { result = term->Start(leading); });

  // 2 before 3: every cached task is in the dispatcher while Kafka is down.
  ASSERT_TRUE(WaitUntil([&] { return Metric(metrics_, "cronlane_tasks_scheduled").value_or(0) == 2; }, 10s));
  ASSERT_TRUE(WaitUntil([&] { return sink_.load()->init_attempts >= 3; }, 10s)) << "start is retried";
  EXPECT_FALSE(sink_.load()->initialized);
  EXPECT_EQ(StatusPatches(), 0U) << "no status before the dispatcher runs";

  // 3 before 5, and 4 gates 5: the dispatcher started, but the results replay has not finished.
  sink_.load()->kafka_up = true;
  ASSERT_TRUE(WaitUntil([&] { return sink_.load()->initialized.load(); }, 10s));
  // Wait on the term itself: it keeps asking whether the replay is done.
  const int asked = results_.load()->queries.load();
  ASSERT_TRUE(WaitUntil([&] { return results_.load()->queries.load() >= asked + 5; }, 10s));
  EXPECT_EQ(sink_.load()->commits, 0) << "nothing fires before the results replay";
  EXPECT_EQ(StatusPatches(), 0U);

  // 5: fire and write status.
  results_.load()->replayed = true;
  ASSERT_TRUE(WaitUntil([&] { return sink_.load()->commits > 0; }, 10s));
  ASSERT_TRUE(WaitUntil([&] { return StatusPatches() >= 2; }, 10s));

  leading.Cancel();
  t.join();
  EXPECT_TRUE(result.ok()) << result.ToString();
  EXPECT_FALSE(Metric(metrics_, "cronlane_tasks_scheduled")) << "the term's metrics end with it";
}

TEST_F(LeaderTermTest, CheckpointsOfTasksDeletedWhileNoLeaderRanAreTombstoned) {
  restore_.fired = {{"uid-a", 1767225600}, {"uid-deleted", 1767225600}};
  auto term = Term();
  CancelToken leading;
  Status result;
  std::thread t([&] { result = term->Start(leading); });
  ASSERT_TRUE(WaitUntil([&] { return sink_.load() != nullptr && results_.load() != nullptr; }, 10s));
  sink_.load()->kafka_up = true;
  results_.load()->replayed = true;
  ASSERT_TRUE(WaitUntil([&] { return !sink_.load()->Tombstones().empty(); }, 10s));
  ASSERT_TRUE(WaitUntil([&] { return sink_.load()->commits > 2; }, 10s));  // a, b fire every second
  EXPECT_THAT(sink_.load()->Tombstones(), ::testing::ElementsAre("uid-deleted"))
      << "a task the cache holds keeps its checkpoint";
  EXPECT_EQ(Metric(metrics_, "cronlane_checkpoint_tombstones_total").value_or(0), 1);
  leading.Cancel();
  t.join();
  EXPECT_TRUE(result.ok()) << result.ToString();
}

// The broker fences a producer whose transaction it aborted (Kafka unreachable for
// longer than transaction.timeout.ms) while this replica still leads: a new term
// with a new producer, not an exit.
TEST_F(LeaderTermTest, AProducerFencedWhileLeadingStartsANewTerm) {
  auto term = Term();
  CancelToken leading;
  Status result = Internal("not returned");
  std::thread t([&] { result = term->Start(leading); });
  ASSERT_TRUE(WaitUntil([&] { return sink_.load() != nullptr && results_.load() != nullptr; }, 10s));
  FakeSink* first = sink_.load();
  first->fenced = true;
  first->kafka_up = true;
  results_.load()->replayed = true;
  // (The new sink may reuse the old one's address: count them.)
  ASSERT_TRUE(WaitUntil([&] { return sinks_made_.load() == 2 && !results_.load()->Replayed(); }, 10s))
      << "a new term, with a new producer";
  sink_.load()->kafka_up = true;
  results_.load()->replayed = true;
  ASSERT_TRUE(WaitUntil([&] { return sink_.load()->commits > 0; }, 10s)) << "and it fires";
  EXPECT_EQ(sinks_made_.load(), 2);
  leading.Cancel();
  t.join();
  EXPECT_TRUE(result.ok()) << result.ToString();
}

// Fenced again and again (another process with the same transactional.id): after
// `fenced_restarts` new terms the fence ends the runnable, and the replica exits.
TEST_F(LeaderTermTest, RepeatedFencesEndTheTermWithKFenced) {
  fence_new_sinks_ = true;
  auto term = Term(/*fenced_restarts=*/2);
  CancelToken leading;
  Status result;
  std::thread t([&] { result = term->Start(leading); });
  t.join();  // returns on its own
  EXPECT_EQ(result.code(), StatusCode::kFenced) << result.ToString();
  EXPECT_EQ(sinks_made_.load(), 3) << "the first term and two new ones";
}

TEST(ShardTerm, AShardsTermGetsItsOwnTransactionalIdPartitionAndBudgetShare) {
  dispatcher::KafkaSinkOptions base{.transactional_id = "tx", .checkpoint_partitions = 3};
  base.follower = std::make_shared<dispatcher::CheckpointFollower>(dispatcher::CheckpointFollowerOptions{});
  dispatcher::KafkaSinkOptions sink = ShardSinkOptions(base, 3, 8);
  EXPECT_EQ(sink.transactional_id, "tx-3") << "fences earlier holders of shard 3 and no one else";
  EXPECT_EQ(sink.shard, 3);
  EXPECT_EQ(sink.checkpoint_partitions, 8);
  EXPECT_EQ(sink.follower, nullptr);

  LeaderTermOptions term =
      ShardTermOptions({.fire_times = {10, 20}, .conditions = {20, 50}}, 3, 8, ShardLayout::kModulo);
  EXPECT_EQ(term.shard, 3);
  EXPECT_EQ(term.shards, 8);
  EXPECT_EQ(term.layout, ShardLayout::kModulo);
  EXPECT_FALSE(term.workerpools);
  EXPECT_DOUBLE_EQ(term.fire_times.qps, 1.25);
  EXPECT_EQ(term.fire_times.burst, 2);
  EXPECT_DOUBLE_EQ(term.conditions.qps, 2.5);
  EXPECT_EQ(term.conditions.burst, 6);
}

TEST(ShardTerm, TheSingleLeadersResultsFollowerHandsOnOnlyTheTasksItIsAskedFor) {
  FakeClock clock;
  TermWorld world = KafkaTermWorld({}, {}, clock);
  std::vector<std::string> finished;
  auto source = world.results(
      [](const std::string& id) { return id == "uid-a"; },
      [&](const std::string& id, dispatcher::Instant, const std::string&) { finished.push_back(id); }, nullptr);
  auto* follower = dynamic_cast<dispatcher::ResultsFollower*>(source.get());
  ASSERT_NE(follower, nullptr);
  for (const char* id : {"uid-a:1767225600", "uid-b:1767225600"}) {
    kafka::Message m;
    m.value = EncodeTaskResult({id, "team/x", "2026-01-01T00:00:00Z", RunOutcome::kSucceeded, 1, 10, 0, 1});
    follower->Handle(m);
  }
  EXPECT_THAT(finished, ::testing::ElementsAre("uid-a"));
}

TEST(TtlCleaner, DeletesAFinishedTaskAfterItsTtlWithAUidPrecondition) {
  auto task = [](const std::string& name, int ttl, const char* complete_since) {
    Json t = {
        {"metadata",
         {{"namespace", "ns"}, {"name", name}, {"uid", "uid-" + name}, {"generation", 1}, {"resourceVersion", "5"}}},
        {"spec", {{"runAt", "2026-01-01T00:00:00Z"}, {"target", {{"topic", "jobs"}}}}}};
    if (ttl >= 0) t["spec"]["ttlSecondsAfterFinished"] = ttl;
    if (complete_since != nullptr) {
      t["status"] = {{"conditions",
                      {{{"type", "Complete"},
                        {"status", "True"},
                        {"reason", "Completed"},
                        {"message", "x"},
                        {"lastTransitionTime", complete_since}}}}};
    }
    return t;
  };
  auto t = std::make_unique<RoutedTransport>();
  RoutedTransport* transport = t.get();
  Json list = {{"items",
                {task("due", 60, "2026-01-01T00:00:00Z"), task("later", 3600, "2026-01-01T00:00:00Z"),
                 task("no-ttl", -1, "2026-01-01T00:00:00Z"), task("running", 0, nullptr),
                 task("recreated", 0, "2026-01-01T00:00:00Z")}},
               {"metadata", {{"resourceVersion", "7"}}}};
  transport->Route("GET /apis/cronlane.dev/v1alpha1/scheduledtasks?limit=500&resourceVersion=0", {200, list.dump()});
  const std::string path = "/apis/cronlane.dev/v1alpha1/namespaces/ns/scheduledtasks/";
  transport->Route("DELETE " + path + "due", {200, "{}"});
  transport->Route("DELETE " + path + "later", {200, "{}"});
  transport->Route(
      "DELETE " + path + "recreated",
      {409, R"({"kind":"Status","reason":"Conflict","message":"Precondition failed: UID in precondition"})"});
  kube::KubeClient client(std::move(t), RealClock::Get(), 0, 1);
  Cache cache(client, {}, RealClock::Get(), false);
  CancelToken stop;
  std::thread cache_thread([&] { cache.Run(stop); });
  ASSERT_TRUE(WaitUntil([&] { return cache.Synced(); }, 10s));

  FakeClock clock{std::chrono::system_clock::time_point(*ParseRfc3339("2026-01-01T00:02:00Z"))};
  TtlCleaner cleaner(cache.tasks, client, clock);
  EXPECT_EQ(TtlCleaner::DeleteAt(*cache.tasks.Get("ns/due")), *ParseRfc3339("2026-01-01T00:01:00Z"));
  EXPECT_FALSE(TtlCleaner::DeleteAt(*cache.tasks.Get("ns/no-ttl")));
  EXPECT_FALSE(TtlCleaner::DeleteAt(*cache.tasks.Get("ns/running"))) << "not complete";
  EXPECT_TRUE(cleaner.Handle("ns/due"));
  EXPECT_FALSE(cleaner.Handle("ns/later")) << "an hour to go";
  EXPECT_FALSE(cleaner.Handle("ns/no-ttl"));
  EXPECT_FALSE(cleaner.Handle("ns/running"));
  EXPECT_FALSE(cleaner.Handle("ns/recreated")) << "a new object under the name: the precondition refuses";
  auto deletes = transport->Sent("DELETE", "/scheduledtasks/");
  ASSERT_EQ(deletes.size(), 2U) << "due and recreated only";
  EXPECT_EQ(Json::parse(deletes[0].body)["preconditions"]["uid"], "uid-due");
  EXPECT_EQ(cleaner.deleted(), 1U);
  clock.Advance(3600s);
  EXPECT_TRUE(cleaner.Handle("ns/later"));
  stop.Cancel();
  cache_thread.join();
}

}  // namespace
}  // namespace cronlane::op
