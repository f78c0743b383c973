// The ShardCoordinator on simulated time, against a fake Lease API at the
// transport seam (compare-and-set on resourceVersion, label-selected lists): two
// replicas split the shards and start their work; a replica cut off from the
// apiserver stops its shards' work before anyone may take them; shutdown hands
// everything over at once; work that ends by itself gives its shard up.
#include "operator/shard_coordinator.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <thread>

#include "tests/support/fake_kube.h"
#include "tests/support/process.h"

namespace cronlane::op {
namespace {

using namespace std::chrono_literals;
using kube::Json;
using testing::WaitUntil;

// Leases of one namespace, as the apiserver keeps them.
class LeaseApi {
 public:
  Result<kube::HttpResponse> Handle(const kube::HttpRequest& req) {
    std::lock_guard lock(mu_);
    const std::string base = "/apis/coordination.k8s.io/v1/namespaces/ns/leases";
    if (req.path.rfind(base, 0) != 0) return kube::HttpResponse{404, Status("NotFound")};
    std::string rest = req.path.substr(base.size());
    std::string query;
    if (auto q = rest.find('?'); q != std::string::npos) {
      query = rest.substr(q + 1);
      rest = rest.substr(0, q);
    }
    const std::string name = rest.empty() ? "" : rest.substr(1);
    if (req.method == "GET" && name.empty()) {
      Json list = {
          {"kind", "LeaseList"}, {"metadata", {{"resourceVersion", std::to_string(rv_)}}}, {"items", Json::array()}};
      for (const auto& [n, lease] : leases_) {
        if (query.find("lease-group%3Dgroup") == std::string::npos) continue;
        if (lease["metadata"]["labels"].value("cronlane.dev/lease-group", "") != "group") continue;
        list["items"].push_back(lease);
      }
      return kube::HttpResponse{200, list.dump()};
    }
    auto it = leases_.find(name);
    if (req.method == "GET") {
      if (it == leases_.end()) return kube::HttpResponse{404, Status("NotFound")};
      return kube::HttpResponse{200, it->second.dump()};
    }
    if (req.method == "POST") {
      Json lease = Json::parse(req.body);
      std::string n = lease["metadata"]["name"];
      if (leases_.count(n) != 0) return kube::HttpResponse{409, Status("AlreadyExists")};
      lease["metadata"]["resourceVersion"] = std::to_string(++rv_);
      lease["metadata"]["uid"] = "uid-" + n;
      leases_[n] = lease;
      return kube::HttpResponse{201, lease.dump()};
    }
    if (req.method == "PUT") {
      if (it == leases_.end()) return kube::HttpResponse{404, Status("NotFound")};
      Json lease = Json::parse(req.body);
      if (lease["metadata"].value("resourceVersion", "") != it->second["metadata"].value("resourceVersion", "")) {
        return kube::HttpResponse{409, Status("Conflict")};
      }
      lease["metadata"]["resourceVersion"] = std::to_string(++rv_);
      it->second = lease;
      return kube::HttpResponse{200, lease.dump()};
    }
    if (req.method == "DELETE") {
      if (it == leases_.end()) return kube::HttpResponse{404, Status("NotFound")};
      leases_.erase(it);
      return kube::HttpResponse{200, "{}"};
    }
    return kube::HttpResponse{405, Status("MethodNotAllowed")};
  }
  std::string Holder(const std::string& name) {
    std::lock_guard lock(mu_);
    auto it = leases_.find(name);
    return it == leases_.end() ? "<none>" : it->second["spec"].value("holderIdentity", "");
  }
  bool Exists(const std::string& name) {
    std::lock_guard lock(mu_);
    return leases_.count(name) != 0;
  }
  bool Joining(const std::string& name) {
    std::lock_guard lock(mu_);
    auto it = leases_.find(name);
    return it != leases_.end() &&
           it->second["metadata"].value("annotations", Json::object()).value(kJoiningAnnotation, "") == "true";
  }

 private:
  static std::string Status(const std::string& reason) {
    return Json{{"kind", "Status"}, {"reason", reason}, {"message", reason}}.dump();
  }
  std::mutex mu_;
  std::map<std::string, Json> leases_;
  int64_t rv_ = 0;
};

// One replica's connection to the LeaseApi; `down` cuts it off (503).
class Link : public kube::Transport {
 public:
  explicit Link(LeaseApi& api) : api_(api) {}
  Result<kube::HttpResponse> Send(const kube::HttpRequest& req) override {
    if (hang) {  // packets dropped: the request waits until the test lets it fail
      ++hung;
      unhang.WaitFor(std::chrono::hours(1));
      return Unavailable("the network dropped the request");
    }
    if (down) return kube::HttpResponse{503, R"({"kind":"Status","reason":"ServiceUnavailable"})"};
    return api_.Handle(req);
  }
  Result<int> Stream(const kube::HttpRequest&, const std::function<bool(std::string_view)>&, CancelToken&,
                     std::string*) override {
    return Unavailable("no watches");
  }
  std::atomic<bool> down{false};
  std::atomic<bool> hang{false};
  std::atomic<int> hung{0};
  CancelToken unhang;

 private:
  LeaseApi& api_;
};

// What each shard's work did, timed by the simulated clock.
class Works {
 public:
  explicit Works(Clock& clock) : clock_(clock) {}
  ShardWork For(const std::string& who, std::set<int> fail = {}) {
    return [this, who, fail](int shard, CancelToken& cancel) {
      {
        std::lock_guard lock(mu_);
        running_[who].insert(shard);
        started_[{who, shard}] = clock_.SteadyNow();
      }
      if (fail.count(shard) != 0) {
        std::lock_guard lock(mu_);
        running_[who].erase(shard);
        return Fenced("fenced");
      }
      // Timed when the coordinator cancels it (on its thread), not when this
      // thread wakes up (the test's clock may have moved on by then).
      int reg = cancel.Register([this, who, shard] {
        std::lock_guard lock(mu_);
        stopped_[{who, shard}] = clock_.SteadyNow();
      });
      while (!cancel.WaitFor(1h)) {
      }
      {
        std::unique_lock lock(mu_);  // still fencing, restoring...
        stop_cv_.wait(lock, [this] { return !slow_stop_; });
      }
      cancel.Unregister(reg);
      std::lock_guard lock(mu_);
      running_[who].erase(shard);
      return Status::Ok();
    };
  }
  // While set, cancelled work does not stop (a shard still starting up).
  void SetSlowStop(bool on) {
    {
      std::lock_guard lock(mu_);
      slow_stop_ = on;
    }
    stop_cv_.notify_all();
  }
  std::set<int> Running(const std::string& who) {
    std::lock_guard lock(mu_);
    return running_[who];
  }
  std::optional<std::chrono::steady_clock::time_point> Started(const std::string& who, int shard) {
    std::lock_guard lock(mu_);
    auto it = started_.find({who, shard});
    if (it == started_.end()) return std::nullopt;
    return it->second;
  }
  std::optional<std::chrono::steady_clock::time_point> Stopped(const std::string& who, int shard) {
    std::lock_guard lock(mu_);
    auto it = stopped_.find({who, shard});
    if (it == stopped_.end()) return std::nullopt;
    return it->second;
  }

 private:
  Clock& clock_;
  std::mutex mu_;
  std::condition_variable stop_cv_;
  bool slow_stop_ = false;  // guarded by mu_
  std::map<std::string, std::set<int>> running_;
  std::map<std::pair<std::string, int>, std::chrono::steady_clock::time_point> started_, stopped_;
};

class ShardCoordinatorTest : public ::testing::Test {
 protected:
  struct Replica {
    Link* link;
    std::unique_ptr<kube::KubeClient> client;
    std::unique_ptr<ShardCoordinator> coordinator;
  };
  Replica& Add(const std::string& who, int shards, std::set<int> fail = {}, ShardCacheScope scope = {}) {
    auto link = std::make_unique<Link>(api_);
    Link* l = link.get();
    auto client = std::make_unique<kube::KubeClient>(std::move(link), clock_, 1e6, 1000000);
    ShardingConfig config{.lease_namespace = "ns", .lease_prefix = "group", .identity = who, .shards = shards};
    auto c = std::make_unique<ShardCoordinator>(
        *client, clock_, events_, config, [] { return true; }, works_.For(who, std::move(fail)), std::move(scope));
    replicas_[who] = Replica{l, std::move(client), std::move(c)};
    return replicas_[who];
  }
  // One retry period for every replica (in name order), then the clock moves on.
  void Period(const std::vector<std::string>& who) {
    for (const auto& w : who) replicas_[w].coordinator->Tick();
    clock_.Advance(2s);
  }
  std::set<int> Owned(const std::string& who) {
    auto v = replicas_[who].coordinator->Owned();
    return {v.begin(), v.end()};
  }

  FakeClock clock_{std::chrono::system_clock::time_point{} + std::chrono::hours(24 * 365 * 56)};
  LeaseApi api_;
  testing::RecordingEvents events_;
  Works works_{clock_};
  std::map<std::string, Replica> replicas_;
};

TEST_F(ShardCoordinatorTest, TwoReplicasSplitTheShardsAndRunTheirWork) {
  Add("a", 4);
  Add("b", 4);
  for (int i = 0; i < 5; ++i) Period({"a", "b"});
  EXPECT_EQ(Owned("a").size(), 2U);
  EXPECT_EQ(Owned("b").size(), 2U);
  for (int s = 0; s < 4; ++s) {
    std::string holder = api_.Holder(ShardLeaseName("group", s));
    ASSERT_TRUE(holder == "a" || holder == "b") << s << ": " << holder;
    EXPECT_TRUE(WaitUntil([&] { return works_.Running(holder).count(s) == 1; }, 5s)) << "shard " << s;
  }
  EXPECT_TRUE(api_.Exists(MemberLeaseName("group", "a")));
  EXPECT_EQ(replicas_["a"].coordinator->Members(), 2U);
}

TEST_F(ShardCoordinatorTest, AReplicaCutOffFromTheApiserverStopsItsWorkBeforeAnotherMayTakeIt) {
  Add("a", 2);
  Add("b", 2);
  for (int i = 0; i < 5; ++i) Period({"a", "b"});
  ASSERT_EQ(Owned("a").size(), 1U);
  const int shard = *Owned("a").begin();
  ASSERT_TRUE(WaitUntil([&] { return works_.Running("a").count(shard) == 1; }, 5s));
  const auto renewed = clock_.SteadyNow() - 2s;  // a's last renewal: the last period's tick
  replicas_["a"].link->down = true;
  std::optional<std::chrono::steady_clock::time_point> taken;
  for (int i = 0; i < 15 && !taken; ++i) {
    replicas_["a"].coordinator->Tick();
    replicas_["b"].coordinator->Tick();
    if (Owned("b").size() == 2) taken = clock_.SteadyNow();
    clock_.Advance(2s);
  }
  ASSERT_TRUE(taken) << "b takes the shard once its Lease expired";
  EXPECT_TRUE(Owned("a").empty());
  EXPECT_EQ(replicas_["a"].coordinator->Lost(), 1U);
  ASSERT_TRUE(works_.Stopped("a", shard).has_value()) << "a stopped the shard's work";
  // a stops once its renew deadline (10 s) has passed, at its next tick; b takes the
  // shard only after the lease duration (15 s) as b timed it.
  EXPECT_LE(*works_.Stopped("a", shard) - renewed, 12s);
  EXPECT_GT(*taken - renewed, 15s);
  EXPECT_LT(*works_.Stopped("a", shard), *taken);
  EXPECT_TRUE(WaitUntil([&] { return works_.Running("b").count(shard) == 1; }, 5s));
}

TEST(ShardCoordinatorWatchdog, AReplicaWhoseRequestsHangStopsItsWorkAtTheRenewDeadline) {
  // On a cut network a request neither succeeds nor fails until it times out, and
  // one period makes several (member Lease, list, each shard). The work of every
  // held shard must stop at its renew deadline anyway, while the loop still waits.
  LeaseApi api;
  auto link = std::make_unique<Link>(api);
  Link* l = link.get();
  kube::KubeClient client(std::move(link), RealClock::Get(), 1e6, 1000000);
  testing::RecordingEvents events;
  Works works(RealClock::Get());
  ShardingConfig config{.lease_namespace = "ns",
                        .lease_prefix = "group",
                        .identity = "a",
                        .shards = 2,
                        .lease_duration = 600ms,
                        .renew_deadline = 300ms,
                        .retry_period = 50ms};
  ShardCoordinator c(
      client, RealClock::Get(), events, config, [] { return true; }, works.For("a"));
  CancelToken cancel;
  std::thread run([&] { (void)c.Start(cancel); });
  ASSERT_TRUE(WaitUntil([&] { return works.Running("a").size() == 2; }, 10s));
  l->hang = true;
  EXPECT_TRUE(WaitUntil([&] { return works.Running("a").empty(); }, 10s))
      << "the work must stop while the coordinator's request still hangs";
  EXPECT_GE(l->hung.load(), 1);
  l->unhang.Cancel();
  l->hang = false;
  EXPECT_TRUE(WaitUntil([&] { return c.Lost() == 2; }, 10s)) << "both shards counted as lost";
  cancel.Cancel();
  run.join();
}

TEST(ShardCoordinatorJoining, AReplicaAnnouncesItselfWhileItsCacheSyncsAndLeavesNoMemberLeaseWhenStopped) {
  LeaseApi api;
  kube::KubeClient client(std::make_unique<Link>(api), RealClock::Get(), 1e6, 1000000);
  testing::RecordingEvents events;
  Works works(RealClock::Get());
  ShardingConfig config{
      .lease_namespace = "ns", .lease_prefix = "group", .identity = "a", .shards = 2, .retry_period = 50ms};
  std::atomic<bool> ready{false};
  ShardCoordinator c(
      client, RealClock::Get(), events, config, [&] { return ready.load(); }, works.For("a"));
  const std::string member = MemberLeaseName("group", "a");
  {
    CancelToken cancel;
    std::thread run([&] { (void)c.Start(cancel); });
    EXPECT_TRUE(WaitUntil([&] { return api.Exists(member); }, 10s)) << "not announced before the cache synced";
    EXPECT_TRUE(c.Owned().empty());
    cancel.Cancel();
    run.join();
    EXPECT_FALSE(api.Exists(member)) << "a replica stopped while joining left its member Lease";
  }
  CancelToken cancel;
  std::thread run([&] { (void)c.Start(cancel); });
  ASSERT_TRUE(WaitUntil([&] { return api.Exists(member); }, 10s));
  ready = true;
  EXPECT_TRUE(WaitUntil([&] { return c.Owned().size() == 2; }, 10s));
  cancel.Cancel();
  run.join();
}

TEST_F(ShardCoordinatorTest, ShutdownHandsEverythingOverInOnePeriod) {
  Add("a", 4);
  Add("b", 4);
  for (int i = 0; i < 5; ++i) Period({"a", "b"});
  replicas_["a"].coordinator->Shutdown();
  EXPECT_TRUE(Owned("a").empty());
  EXPECT_TRUE(works_.Running("a").empty()) << "every shard's work stopped before the Leases were released";
  EXPECT_FALSE(api_.Exists(MemberLeaseName("group", "a")));
  Period({"b"});
  EXPECT_EQ(Owned("b").size(), 4U);
}

// Replicas whose caches sync at once (scoped to the shards they hold, so empty at
// start) and that start together each take their share: none takes every shard
// first only to give most back.
TEST(ShardCoordinatorJoining, ReplicasStartedTogetherTakeOnlyTheirShare) {
  LeaseApi api;
  testing::RecordingEvents events;
  Works works(RealClock::Get());
  std::vector<std::unique_ptr<kube::KubeClient>> clients;
  std::vector<std::unique_ptr<ShardCoordinator>> coordinators;
  for (const std::string who : {"a", "b"}) {
    clients.push_back(std::make_unique<kube::KubeClient>(std::make_unique<Link>(api), RealClock::Get(), 1e6, 1000000));
    ShardingConfig config{
        .lease_namespace = "ns", .lease_prefix = "group", .identity = who, .shards = 4, .retry_period = 300ms};
    coordinators.push_back(std::make_unique<ShardCoordinator>(
        *clients.back(), RealClock::Get(), events, config, [] { return true; }, works.For(who)));
  }
  CancelToken cancel;
  std::vector<std::thread> runs;
  for (auto& c : coordinators) runs.emplace_back([&c, &cancel] { (void)c->Start(cancel); });
  EXPECT_TRUE(
      WaitUntil([&] { return coordinators[0]->Owned().size() == 2 && coordinators[1]->Owned().size() == 2; }, 10s));
  EXPECT_EQ(coordinators[0]->Acquired(), 2U) << "a took shards it then gave to b";
  EXPECT_EQ(coordinators[1]->Acquired(), 2U) << "b took shards it then gave to a";
  cancel.Cancel();
  for (auto& t : runs) t.join();
}

TEST_F(ShardCoordinatorTest, AShardIsReleasedOnlyAfterItsWorkStoppedAndTheOthersStayRenewedMeanwhile) {
  Add("a", 4);
  Period({"a"});
  ASSERT_EQ(Owned("a").size(), 4U);
  ASSERT_TRUE(WaitUntil([&] { return works_.Running("a").size() == 4; }, 5s));
  works_.SetSlowStop(true);
  Add("b", 4);
  // a gives two shards up for b, but their work does not stop for 12 periods
  // (24 s, longer than the lease duration): a keeps renewing all four, b takes
  // nothing, and a's periods are not held up by the stopping work.
  for (int i = 0; i < 12; ++i) {
    Period({"a", "b"});
    EXPECT_TRUE(Owned("b").empty()) << "period " << i;
  }
  EXPECT_EQ(Owned("a").size(), 4U);
  EXPECT_EQ(works_.Running("a").size(), 4U);
  EXPECT_EQ(replicas_["a"].coordinator->Lost(), 0U);
  works_.SetSlowStop(false);
  ASSERT_TRUE(WaitUntil([&] { return works_.Running("a").size() == 2; }, 5s));
  Period({"a", "b"});  // a releases
  Period({"a", "b"});  // b takes
  EXPECT_EQ(Owned("a").size(), 2U);
  EXPECT_EQ(Owned("b").size(), 2U);
  EXPECT_EQ(replicas_["a"].coordinator->Released(), 2U);
}

// A replica whose cache is still syncing announces itself: the ready one takes only
// its share, for the join grace (default 30 s), then takes every shard; once the
// joiner is ready, shards move to it as for any join.
TEST_F(ShardCoordinatorTest, AReplicaStillJoiningIsLeftItsShareForTheJoinGrace) {
  Add("a", 4);
  Add("b", 4);
  auto& b = *replicas_["b"].coordinator;
  auto periods = [&](int n) {
    for (int i = 0; i < n; ++i) {
      b.Announce();
      Period({"a"});
    }
  };
  periods(1);
  ASSERT_TRUE(api_.Joining(MemberLeaseName("group", "b")));
  periods(13);  // 28 s of the 30 s grace
  EXPECT_EQ(Owned("a").size(), 2U) << "took the joining replica's share";
  periods(2);  // past the grace: b no longer counts until it is ready
  EXPECT_EQ(Owned("a").size(), 4U);
  EXPECT_TRUE(Owned("b").empty());
  EXPECT_FALSE(api_.Joining(MemberLeaseName("group", "a")));
  // b ready: a stops two shards' work, releases them once it stopped (its thread
  // ends on its own schedule), and b takes them.
  EXPECT_TRUE(WaitUntil(
      [&] {
        Period({"a", "b"});
        return Owned("b").size() == 2;
      },
      5s));
  EXPECT_EQ(Owned("a").size(), 2U);
  EXPECT_EQ(Owned("b").size(), 2U);
  EXPECT_FALSE(api_.Joining(MemberLeaseName("group", "b"))) << "a ready replica's member Lease is still marked";
}

TEST_F(ShardCoordinatorTest, WorkThatEndsByItselfGivesItsShardUp) {
  Add("a", 2, /*fail=*/{0});
  Period({"a"});
  ASSERT_EQ(Owned("a"), (std::set<int>{0, 1}));
  // The period after its work ended reaps it: lost and released. (The work's
  // thread ends on its own schedule, so the test waits on the coordinator.)
  ASSERT_TRUE(WaitUntil(
      [&] {
        replicas_["a"].coordinator->Tick();
        return replicas_["a"].coordinator->Lost() == 1;
      },
      5s));
  clock_.Advance(2s);
  EXPECT_EQ(api_.Holder(ShardLeaseName("group", 0)), "");
  // Not taken back for a lease duration (15 s from the reap: periods at +2 .. +14
  // s), then taken again in the first period after it (+16 s). Owned() is read
  // right after that period: its work fails again at once, so the period after
  // it would give the shard up again, depending on how soon that thread ends.
  for (int i = 0; i < 7; ++i) {
    Period({"a"});
    EXPECT_EQ(Owned("a"), (std::set<int>{1})) << "period " << i;
  }
  Period({"a"});
  EXPECT_EQ(Owned("a"), (std::set<int>{0, 1}));
}

// The task cache's scope as a KindCache keeps it: the test says when the cache
// has listed the shards of the latest scope (Sync).
class FakeScope {
 public:
  ShardCacheScope Seam() {
    return {.scope =
                [this](const std::set<int>& shards) {
                  std::lock_guard lock(mu_);
                  scopes_.push_back(shards);
                  std::erase_if(synced_, [&](int s) { return shards.count(s) == 0; });
                },
            .synced =
                [this](int shard) {
                  std::lock_guard lock(mu_);
                  asked_.insert(shard);
                  return synced_.count(shard) != 0;
                }};
  }
  // The shards whose work has asked whether the cache holds their tasks.
  std::set<int> Asked() {
    std::lock_guard lock(mu_);
    return asked_;
  }
  // The cache holds the shards of the latest scope.
  void Sync() {
    std::lock_guard lock(mu_);
    if (!scopes_.empty()) synced_ = scopes_.back();
  }
  std::vector<std::set<int>> Scopes() {
    std::lock_guard lock(mu_);
    return scopes_;
  }
  std::set<int> Latest() {
    std::lock_guard lock(mu_);
    return scopes_.empty() ? std::set<int>{-1} : scopes_.back();
  }

 private:
  std::mutex mu_;
  std::vector<std::set<int>> scopes_;
  std::set<int> synced_, asked_;
};

// A replica caches only the tasks of the shards it holds: none before it holds
// any; a taken shard's work starts only once the cache has listed the widened
// scope (a shard's work reads its tasks from the cache, and takes a task missing
// from it for deleted); a shard given up leaves the scope only after its work
// stopped.
TEST_F(ShardCoordinatorTest, TheCacheIsScopedToTheHeldShardsBeforeTheirWorkStartsAndAfterItStops) {
  FakeScope scope;
  Add("a", 4, {}, scope.Seam());
  ASSERT_EQ(scope.Scopes(), (std::vector<std::set<int>>{{}})) << "a new replica caches nothing";
  Period({"a"});
  EXPECT_EQ(Owned("a"), (std::set<int>{0, 1, 2, 3}));
  EXPECT_EQ(scope.Latest(), (std::set<int>{0, 1, 2, 3}));
  EXPECT_EQ(scope.Scopes().size(), 2U) << "the shards taken in one period widen the scope once";
  // Every shard's work is waiting on the cache (it asked, and was told no).
  ASSERT_TRUE(WaitUntil(
      [&] {
        return scope.Asked() == std::set<int>{0, 1, 2, 3};
      },
      5s))
      << "a shard's work did not wait for the cache";
  EXPECT_TRUE(works_.Running("a").empty()) << "work started before the cache listed its shard's tasks";
  scope.Sync();
  ASSERT_TRUE(WaitUntil([&] { return works_.Running("a").size() == 4; }, 5s));
  EXPECT_EQ(replicas_["a"].coordinator->CacheSyncs(), 4U);

  // b joins: a gives two shards up, whose work is slow to stop: they stay cached.
  works_.SetSlowStop(true);
  Add("b", 4);
  Period({"a", "b"});
  Period({"a", "b"});
  EXPECT_EQ(works_.Running("a").size(), 4U);
  EXPECT_EQ(scope.Latest(), (std::set<int>{0, 1, 2, 3})) << "narrowed while the given-up shards' work still ran";
  works_.SetSlowStop(false);
  ASSERT_TRUE(WaitUntil([&] { return works_.Running("a").size() == 2; }, 5s));
  Period({"a", "b"});  // a reaps, releases and narrows
  EXPECT_EQ(scope.Latest(), Owned("a"));
  EXPECT_EQ(Owned("a").size(), 2U);
  const size_t scopes = scope.Scopes().size();
  Period({"a", "b"});
  EXPECT_EQ(scope.Scopes().size(), scopes) << "an unchanged set of shards set the scope again";
}

TEST_F(ShardCoordinatorTest, ALostShardStaysCachedUntilItsWorkStopped) {
  FakeScope scope;
  Add("a", 2, {}, scope.Seam());
  Period({"a"});
  scope.Sync();
  ASSERT_TRUE(WaitUntil([&] { return works_.Running("a").size() == 2; }, 5s));
  works_.SetSlowStop(true);
  replicas_["a"].link->down = true;  // renewals fail: both shards lost at the renew deadline
  for (int i = 0; i < 8; ++i) Period({"a"});
  ASSERT_EQ(replicas_["a"].coordinator->Lost(), 2U);
  EXPECT_EQ(works_.Running("a").size(), 2U);
  EXPECT_EQ(scope.Latest(), (std::set<int>{0, 1})) << "a lost shard left the cache while its work still ran";
  works_.SetSlowStop(false);
  ASSERT_TRUE(WaitUntil([&] { return works_.Running("a").empty(); }, 5s));
  Period({"a"});
  EXPECT_EQ(scope.Latest(), (std::set<int>{}));
}

TEST_F(ShardCoordinatorTest, AShardGivenUpWhileTheCacheListsStartsNoWork) {
  FakeScope scope;
  Add("a", 2, {}, scope.Seam());
  Period({"a"});
  ASSERT_EQ(Owned("a").size(), 2U);
  replicas_["a"].coordinator->Shutdown();  // before the cache listed
  EXPECT_TRUE(works_.Running("a").empty());
  EXPECT_FALSE(works_.Started("a", 0).has_value());
  EXPECT_FALSE(works_.Started("a", 1).has_value());
  EXPECT_EQ(replicas_["a"].coordinator->CacheSyncs(), 0U);
}

TEST(ShardLeaseNames, AreValidObjectNamesWhateverTheIdentity) {
  EXPECT_EQ(MemberLeaseName("cronlane-operator", "Pod-7_123_456"), "cronlane-operator-member-pod-7-123-456");
  std::string name = MemberLeaseName("p", std::string(400, 'x') + "_");
  EXPECT_EQ(name.size(), 253U);
  EXPECT_EQ(MemberLeaseName("p", "a_"), "p-member-a");
  EXPECT_EQ(ShardLeaseName("p", 12), "p-shard-12");
}

}  // namespace
}  // namespace cronlane::op
