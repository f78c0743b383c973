// The Manager's lifecycle without servers: the shared cache starts first and is
// synced before any leader runnable; leader runnables start in the order added and
// stop in reverse; a runnable that fails (kFenced) ends the run with its status;
// metrics added through a Scope disappear with it. The leader elector, cut off from
// the apiserver, stops leading at the renew deadline and calls on_stop_overdue when
// its work does not stop before someone else may take the Lease.
#include "operator/manager.h"

#include "operator/leader_election.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <thread>

#include <prometheus/histogram.h>

#include "common/metrics.h"
#include "tests/support/fake_kube.h"
#include "tests/support/process.h"

namespace cronlane::op {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;
using testing::RecordingEvents;
using testing::RoutedTransport;

class Log {
 public:
  void Add(const std::string& s) {
    std::lock_guard lock(mu_);
    lines_.push_back(s);
  }
  std::vector<std::string> lines() const {
    std::lock_guard lock(mu_);
    return lines_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> lines_;
};

class FakeRunnable : public Runnable {
 public:
  FakeRunnable(std::string name, bool leader, Log& log, const Cache* cache = nullptr, Status result = {})
      : name_(std::move(name)), leader_(leader), log_(log), cache_(cache), result_(std::move(result)) {}
  Status Start(CancelToken& cancel) override {
    log_.Add("start " + name_ + (cache_ != nullptr && cache_->Synced() ? " (synced)" : ""));
    if (!result_.ok()) return result_;
    while (!cancel.WaitFor(1h)) {
    }
    log_.Add("stop " + name_);
    return Status::Ok();
  }
  bool NeedsLeaderElection() const override { return leader_; }
  std::string Name() const override { return name_; }

 private:
  std::string name_;
  bool leader_;
  Log& log_;
  const Cache* cache_;
  Status result_;
};

class ManagerTest : public ::testing::Test {
 protected:
  ManagerTest() {
    auto t = std::make_unique<RoutedTransport>();
    t->Route("GET /apis/cronlane.dev/v1alpha1/scheduledtasks?limit=500&resourceVersion=0",
             {200, R"({"items": [], "metadata": {"resourceVersion": "7"}})"});
    client_ = std::make_unique<kube::KubeClient>(std::move(t), RealClock::Get(), 0, 1);
  }
  std::unique_ptr<Manager> Make() {
    return std::make_unique<Manager>(*client_, events_, RealClock::Get(),
                                     ManagerOptions{.workerpools = false, .backfills = false});
  }
  std::unique_ptr<kube::KubeClient> client_;
  RecordingEvents events_;
  Log log_;
};

TEST_F(ManagerTest, LeaderRunnablesStartInOrderAfterTheCacheAndStopInReverse) {
  auto m = Make();
  m->Add(std::make_unique<FakeRunnable>("a", true, log_, &m->cache()));
  m->Add(std::make_unique<FakeRunnable>("everywhere", false, log_));
  m->Add(std::make_unique<FakeRunnable>("b", true, log_, &m->cache()));
  CancelToken cancel;
  Status result;
  std::thread run([&] { result = m->Run(cancel); });
  ASSERT_TRUE(testing::WaitUntil([&] { return log_.lines().size() == 3; }, 10s));
  EXPECT_TRUE(m->IsLeader()) << "without leader election this replica leads";
  cancel.Cancel();
  run.join();
  EXPECT_TRUE(result.ok()) << result.ToString();
  auto lines = log_.lines();
  ASSERT_EQ(lines.size(), 6U);
  // Runnables start on threads of their own (their first lines may interleave, as
  // may the replica-wide one's); every leader runnable starts after the cache
  // synced, and they stop one after the other in reverse order.
  std::vector<std::string> leader_lines;
  for (const auto& l : lines) {
    if (l.find("everywhere") == std::string::npos) leader_lines.push_back(l);
  }
  ASSERT_EQ(leader_lines.size(), 4U);
  EXPECT_THAT(std::vector<std::string>(leader_lines.begin(), leader_lines.begin() + 2),
              ::testing::UnorderedElementsAre("start a (synced)", "start b (synced)"));
  EXPECT_THAT(std::vector<std::string>(leader_lines.begin() + 2, leader_lines.end()), ElementsAre("stop b", "stop a"));
  EXPECT_FALSE(m->IsLeader());
}

TEST_F(ManagerTest, AFencedRunnableEndsTheRunWithItsStatus) {
  auto m = Make();
  m->Add(std::make_unique<FakeRunnable>("a", true, log_));
  m->Add(std::make_unique<FakeRunnable>("fenced", true, log_, nullptr, Fenced("a newer leader")));
  CancelToken cancel;
  Status result = m->Run(cancel);  // returns on its own
  EXPECT_EQ(result.code(), StatusCode::kFenced) << result.ToString();
  EXPECT_THAT(log_.lines(), ::testing::Contains("stop a")) << "the others were stopped";
}

// A Lease API that answers until it is cut off (503), as seen from one replica.
class LeaseElectorTest : public ::testing::Test {
 protected:
  const std::string lease_ = "/apis/coordination.k8s.io/v1/namespaces/ns/leases/l";
  LeaseElectorTest() {
    transport_->Route("GET " + lease_, {404, R"({"kind":"Status","reason":"NotFound"})"});
    transport_->Route("POST /apis/coordination.k8s.io/v1/namespaces/ns/leases",
                      {201, R"({"metadata":{"name":"l","namespace":"ns","uid":"u","resourceVersion":"1"},
                               "spec":{"holderIdentity":"me"}})"});
  }
  // Leads, then is cut off; `lead` holds on for `stuck` after it was cancelled.
  // Returns Run()'s result; `overdue` tells whether on_stop_overdue was called.
  bool LeadThenCutOff(std::chrono::milliseconds stuck, bool& overdue) {
    std::atomic<bool> called{false};
    CancelToken release;  // what the stuck work waits for
    LeaderElectionConfig config{.lease_namespace = "ns",
                                .lease_name = "l",
                                .identity = "me",
                                .lease_duration = 600ms,
                                .renew_deadline = 300ms,
                                .retry_period = 50ms,
                                .on_stop_overdue = [&] {
                                  called = true;
                                  release.Cancel();
                                }};
    LeaderElector elector(client_, RealClock::Get(), events_, config);
    CancelToken cancel;
    bool lost = false;
    std::thread run([&] {
      lost = elector.Run(cancel, [&](CancelToken& leading) {
        leading.WaitFor(1h);
        release.WaitFor(stuck);  // a request that outlasts the cut
      });
    });
    EXPECT_TRUE(testing::WaitUntil([&] { return elector.IsLeader(); }, 5s));
    transport_->Route("GET " + lease_, {503, R"({"kind":"Status","reason":"ServiceUnavailable"})"});
    run.join();
    overdue = called;
    return lost;
  }
  RoutedTransport* transport_ = new RoutedTransport;
  kube::KubeClient client_{kube::TransportPtr(transport_), RealClock::Get(), 1000, 1000};
  RecordingEvents events_;
};

TEST_F(LeaseElectorTest, WorkStillStuckWhenTheLeaseMayBeTakenIsOverdue) {
  bool overdue = false;
  EXPECT_TRUE(LeadThenCutOff(3s, overdue)) << "lost at the renew deadline";
  EXPECT_TRUE(overdue) << "the work was still running lease_duration - renew_deadline after the loss";
}

TEST_F(LeaseElectorTest, WorkThatStopsInTimeIsNotOverdue) {
  bool overdue = false;
  EXPECT_TRUE(LeadThenCutOff(0ms, overdue));
  EXPECT_FALSE(overdue);
}

TEST_F(LeaseElectorTest, ARenewalThatHangsDoesNotKeepTheLeaderPastTheRenewDeadline) {
  // A cut network drops packets: the renewal neither succeeds nor fails until its
  // request times out (here: never). The leader must stop at the renew deadline
  // anyway, before a standby may take the Lease, not when the request returns.
  LeaderElectionConfig config{.lease_namespace = "ns",
                              .lease_name = "l",
                              .identity = "me",
                              .lease_duration = 600ms,
                              .renew_deadline = 300ms,
                              .retry_period = 50ms};
  LeaderElector elector(client_, RealClock::Get(), events_, config);
  CancelToken cancel;
  std::atomic<bool> stopped_leading{false};
  bool lost = false;
  std::thread run([&] {
    lost = elector.Run(cancel, [&](CancelToken& leading) {
      leading.WaitFor(1h);
      stopped_leading = true;
    });
  });
  ASSERT_TRUE(testing::WaitUntil([&] { return elector.IsLeader(); }, 5s));
  transport_->Hang();
  EXPECT_TRUE(testing::WaitUntil([&] { return stopped_leading.load(); }, 10s))
      << "leading must stop while the renewal still hangs";
  EXPECT_GE(transport_->hung(), 1);
  EXPECT_FALSE(elector.IsLeader());
  transport_->Unhang();
  run.join();
  EXPECT_TRUE(lost);
}

TEST(CallbackMetricsScope, RemovesItsMetricsAndKeepsTheRest) {
  CallbackMetrics m;
  m.Add("kept", "h", CallbackMetrics::Type::kGauge, [] { return 1.0; });
  auto names = [&] {
    std::vector<std::string> out;
    for (const auto& f : m.Collect()) out.push_back(f.name);
    return out;
  };
  {
    CallbackMetrics::Scope scope(m);
    scope.Add("scoped", "h", CallbackMetrics::Type::kCounter, [] { return 2.0; });
    EXPECT_THAT(names(), ElementsAre("kept", "scoped"));
  }
  EXPECT_THAT(names(), ElementsAre("kept"));
}

// A histogram its owner keeps is exposed as one, with the Scope's labels.
TEST(CallbackMetricsScope, HistogramsAreSerializedWithBucketsAndLabels) {
  CallbackMetrics m;
  prometheus::Histogram h(prometheus::Histogram::BucketBoundaries{0.1, 1});
  h.Observe(0.05);
  h.Observe(0.5);
  CallbackMetrics::Scope scope(m, {{"shard", "3"}});
  scope.AddHistogram("lag_seconds", "h", [&] { return h.Collect(); });
  const std::string text = SerializeMetrics({&m});
  EXPECT_THAT(text, ::testing::HasSubstr("# TYPE lag_seconds histogram"));
  EXPECT_THAT(text, ::testing::HasSubstr("lag_seconds_bucket{shard=\"3\",le=\"0.1\"} 1"));
  EXPECT_THAT(text, ::testing::HasSubstr("lag_seconds_bucket{shard=\"3\",le=\"1\"} 2"));
  EXPECT_THAT(text, ::testing::HasSubstr("lag_seconds_count{shard=\"3\"} 2"));
}

}  // namespace
}  // namespace cronlane::op
