// Unit tests of WorkerPool scaling: the replica rules, the scale-down stabilization
// window, decoding, and one poll of the controller against a routed fake API and a
// fake lag reader (conditions, Events, /scale patches).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <thread>

#include "operator/forecast.h"
#include "operator/workerpool.h"
#include "operator/workerpool_controller.h"
#include "tests/support/fake_kube.h"

namespace cronlane::op {
namespace {

using kube::HttpRequest;
using kube::HttpResponse;
using kube::Json;
using ::testing::HasSubstr;
using testing::RecordingEvents;
using testing::RoutedTransport;
using namespace std::chrono_literals;

WorkerPoolSpec Spec(int64_t threshold, int32_t min, int32_t max) {
  WorkerPoolSpec s;
  s.target_name = "workers";
  s.topics = {"t"};
  s.consumer_group = "g";
  s.lag_threshold = threshold;
  s.min_replicas = min;
  s.max_replicas = max;
  return s;
}

// `lag` counted on `partitions` partitions, `with_lag` of them with lag (default:
// every one, when there is lag).
LagMeasurement Lag(int64_t lag, int32_t partitions, int32_t with_lag = -1) {
  return {.lag = lag,
          .partitions = partitions,
          .partitions_with_lag = with_lag >= 0 ? with_lag
                                 : lag > 0     ? partitions
                                               : 0};
}

TEST(Recommend, CeilOfLagOverThreshold) {
  auto s = Spec(10, 0, 100);
  s.allow_idle_consumers = true;
  EXPECT_EQ(Recommend(s, Lag(0, 6), 0), 0);
  EXPECT_EQ(Recommend(s, Lag(1, 6), 0), 1);
  EXPECT_EQ(Recommend(s, Lag(10, 6), 0), 1);
  EXPECT_EQ(Recommend(s, Lag(11, 6), 0), 2);
  EXPECT_EQ(Recommend(s, Lag(95, 6), 3), 10);
}

TEST(Recommend, ClampsToMinMaxAndPartitions) {
  auto s = Spec(10, 0, 8);
  EXPECT_EQ(Recommend(s, Lag(1000, 6), 0), 6) << "capped at the partition count";
  s.allow_idle_consumers = true;
  EXPECT_EQ(Recommend(s, Lag(1000, 6), 0), 8) << "capped at maxReplicas";
  s = Spec(10, 2, 8);
  EXPECT_EQ(Recommend(s, Lag(0, 6), 5), 2) << "no lag: minReplicas";
  s = Spec(10, 4, 8);
  EXPECT_EQ(Recommend(s, Lag(1000, 3), 0), 4) << "minReplicas wins over the partition cap";
}

TEST(Recommend, ActivationOnlyGovernsLeavingZero) {
  auto s = Spec(10, 0, 10);
  s.activation_lag_threshold = 5;
  EXPECT_EQ(Recommend(s, Lag(5, 6), 0), 0) << "at zero, lag <= activation stays at zero";
  EXPECT_EQ(Recommend(s, Lag(6, 6), 0), 1);
  EXPECT_EQ(Recommend(s, Lag(3, 6), 2), 1) << "a running pool drains a small lag instead of stranding it";
  EXPECT_EQ(Recommend(s, Lag(0, 6), 2), 0);
}

// KEDA's limitToPartitionsWithLag: a consumer beyond the partitions with lag would
// only wait.
TEST(Recommend, LimitToPartitionsWithLagCapsAtThePartitionsThatHaveLag) {
  auto s = Spec(10, 0, 10);
  EXPECT_EQ(Recommend(s, Lag(1000, 6, 2), 0), 6) << "without it: every partition";
  s.limit_to_partitions_with_lag = true;
  EXPECT_EQ(Recommend(s, Lag(1000, 6, 2), 0), 2);
  EXPECT_EQ(Recommend(s, Lag(15, 6, 2), 0), 2) << "ceil(15 / 10), no rounding past the cap";
  EXPECT_EQ(Recommend(s, Lag(0, 6, 0), 3), 0);
  s.min_replicas = 3;
  EXPECT_EQ(Recommend(s, Lag(1000, 6, 2), 0), 3) << "minReplicas still wins";
}

// Persistent lag (excludePersistentLag) adds no replicas but keeps one; from zero
// it is work nobody tried yet, so activation counts it.
TEST(Recommend, PersistentLagKeepsOneReplicaAndCountsForActivation) {
  auto s = Spec(10, 0, 10);
  s.activation_lag_threshold = 20;
  LagMeasurement stuck{.lag = 0, .partitions = 6, .persistent_lag = 50, .persistent_partitions = 1};
  EXPECT_EQ(Recommend(s, stuck, 4), 1) << "held at one, not scaled for 50";
  EXPECT_EQ(Recommend(s, stuck, 0), 1) << "50 > activation 20";
  s.activation_lag_threshold = 100;
  EXPECT_EQ(Recommend(s, stuck, 0), 0) << "50 <= activation 100";
  s.activation_lag_threshold = 0;
  LagMeasurement mixed{
      .lag = 100, .partitions = 6, .partitions_with_lag = 2, .persistent_lag = 1000, .persistent_partitions = 1};
  EXPECT_EQ(Recommend(s, mixed, 1), 6) << "ceil(100 / 10) = 10, capped at 6 partitions";
  s.limit_to_partitions_with_lag = true;
  EXPECT_EQ(Recommend(s, mixed, 1), 2) << "the persistent partition does not count as one with lag";
  s.limit_to_partitions_with_lag = false;
  s.exclude_persistent_lag = true;
  s.allow_idle_consumers = true;
  EXPECT_EQ(Recommend(s, stuck, 2), 1);
}

TEST(Measure, SumsTopicsAndExcludesOnlyAnOffsetThatStoodStill) {
  auto s = Spec(10, 0, 10);
  // {partition, committed, low, high}
  const std::vector<TopicOffsets> topics = {
      {"a", {{0, 5, 0, 10}, {1, 3, 0, 3}}},  // a[0] lag 5, a[1] none
      {"b", {{0, -1, 0, 4}}},                // b[0] never committed: lag 4
  };
  LagMeasurement m = Measure(s, topics, nullptr);
  EXPECT_EQ(m.lag, 9);
  EXPECT_EQ(m.partitions, 3);
  EXPECT_EQ(m.partitions_with_lag, 2);
  EXPECT_EQ(m.persistent_lag, 0);
  EXPECT_EQ(m.lagging, (CommittedOffsets{{{"a", 0}, 5}, {{"b", 0}, -1}})) << "partitions without lag are not kept";

  const CommittedOffsets same = m.lagging;
  EXPECT_EQ(Measure(s, topics, &same).persistent_lag, 0) << "excludePersistentLag is off";
  s.exclude_persistent_lag = true;
  m = Measure(s, topics, &same);
  EXPECT_EQ(m.lag, 0);
  EXPECT_EQ(m.persistent_lag, 9);
  EXPECT_EQ(m.persistent_partitions, 2) << "a consumer that never commits is stuck too";
  EXPECT_EQ(m.partitions_with_lag, 0);

  const CommittedOffsets moved = {{{"a", 0}, 4}, {{"b", 0}, -1}};
  m = Measure(s, topics, &moved);
  EXPECT_EQ(m.lag, 5) << "a[0] moved from 4 to 5: counted";
  EXPECT_EQ(m.persistent_lag, 4);
  EXPECT_EQ(m.partitions_with_lag, 1);
  const CommittedOffsets other_topic = {{{"c", 0}, 5}};
  EXPECT_EQ(Measure(s, topics, &other_topic).lag, 9) << "keyed by topic and partition";
}

TEST(Stabilizer, ScalesUpAtOnceAndDownAfterTheWindow) {
  Stabilizer st;
  auto t0 = std::chrono::system_clock::time_point(1000s);
  EXPECT_EQ(st.Apply(t0, 3, 30s), 3);
  EXPECT_EQ(st.Apply(t0 + 5s, 6, 30s), 6) << "up at once";
  EXPECT_EQ(st.Apply(t0 + 10s, 0, 30s), 6) << "down waits";
  EXPECT_EQ(st.Apply(t0 + 34s, 1, 30s), 6) << "6 was recommended 29 s ago";
  EXPECT_EQ(st.Apply(t0 + 36s, 1, 30s), 1) << "the 6 left the window; the 0 at +10 s is lower than 1";
  EXPECT_EQ(st.Apply(t0 + 37s, 0, 0s), 0) << "window 0: no stabilization";
}

TEST(Stabilizer, SeedDelaysScaleDownAfterRestart) {
  Stabilizer st;
  auto t0 = std::chrono::system_clock::time_point(1000s);
  st.Seed(t0, 4);
  EXPECT_EQ(st.Apply(t0 + 1s, 0, 60s), 4);
  EXPECT_EQ(st.Apply(t0 + 61s, 0, 60s), 0);
}

TEST(WorkerPoolFromJson, DecodesSpecWithDefaultsAndStatus) {
  Json obj = Json::parse(R"({
    "metadata": {"namespace": "ns", "name": "p", "uid": "u1", "generation": 3, "resourceVersion": "7"},
    "spec": {"scaleTargetRef": {"name": "w"}, "topic": "t", "consumerGroup": "g", "maxReplicas": 4},
    "status": {"lag": 12, "partitions": 6, "desiredReplicas": 2,
               "conditions": [{"type": "Ready", "status": "True", "reason": "Measured"}]}})");
  auto p = WorkerPoolFromJson(obj);
  ASSERT_TRUE(p);
  EXPECT_EQ(p->spec.target_api_version, "apps/v1");
  EXPECT_EQ(p->spec.target_kind, "Deployment");
  EXPECT_EQ(p->spec.target_name, "w");
  EXPECT_EQ(p->spec.lag_threshold, 10);
  EXPECT_EQ(p->spec.max_replicas, 4);
  EXPECT_EQ(p->spec.poll_interval_seconds, 5);
  EXPECT_EQ(p->status.lag, 12);
  EXPECT_EQ(p->status.desired_replicas, 2);
  EXPECT_FALSE(p->status.current_replicas.has_value());
  ASSERT_NE(p->status.Find("Ready"), nullptr);
  EXPECT_EQ(p->status.Find("Ready")->reason, "Measured");
  Json patch = WorkerPoolStatusPatch(p->status);
  EXPECT_TRUE(patch["status"]["currentReplicas"].is_null());
  EXPECT_EQ(patch["status"]["lag"], 12);
  EXPECT_FALSE(WorkerPoolFromJson(Json::parse(R"({"metadata": {"name": "x", "uid": "u"}})")));
}

TEST(WorkerPoolFromJson, DecodesTopicsTheKedaOptionsAndTheirStatus) {
  auto p = WorkerPoolFromJson(Json::parse(R"({
    "metadata": {"namespace": "ns", "name": "p", "uid": "u1"},
    "spec": {"scaleTargetRef": {"name": "w"}, "topics": ["a", "b", "a"], "consumerGroup": "g",
             "limitToPartitionsWithLag": true, "excludePersistentLag": true,
             "fallback": {"failureThreshold": 2, "replicas": 4}},
    "status": {"persistentLag": 7, "persistentPartitions": 1, "failures": 3}})"));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->spec.topics, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(p->spec.limit_to_partitions_with_lag);
  EXPECT_TRUE(p->spec.exclude_persistent_lag);
  ASSERT_TRUE(p->spec.fallback);
  EXPECT_EQ(p->spec.fallback->failure_threshold, 2);
  EXPECT_EQ(p->spec.fallback->replicas, 4);
  EXPECT_EQ(p->status.persistent_lag, 7);
  EXPECT_EQ(p->status.persistent_partitions, 1);
  EXPECT_EQ(p->status.failures, 3);
  Json patch = WorkerPoolStatusPatch(p->status);
  EXPECT_EQ(patch["status"]["persistentLag"], 7);
  EXPECT_EQ(patch["status"]["failures"], 3);
  p->status.failures.reset();
  EXPECT_TRUE(WorkerPoolStatusPatch(p->status)["status"]["failures"].is_null()) << "removed after a success";

  auto single = WorkerPoolFromJson(Json::parse(R"({"metadata": {"name": "p", "uid": "u"}, "spec": {"topic": "t"}})"));
  EXPECT_EQ(single->spec.topics, std::vector<std::string>{"t"});
  EXPECT_FALSE(single->spec.limit_to_partitions_with_lag);
  EXPECT_FALSE(single->spec.exclude_persistent_lag);
  EXPECT_FALSE(single->spec.fallback);
}

TEST(PredictReplicas, CeilOfTheForecastCappedLikeTheLagRule) {
  auto spec = Spec(10, 0, 8);
  EXPECT_EQ(PredictReplicas(spec, 0, 6), 0);
  EXPECT_EQ(PredictReplicas(spec, 1, 6), 1);
  EXPECT_EQ(PredictReplicas(spec, 40, 6), 4);
  EXPECT_EQ(PredictReplicas(spec, 400, 6), 6) << "capped at the partitions";
  EXPECT_EQ(PredictReplicas(spec, 400, 0), 8) << "unknown partitions: maxReplicas";
  spec.allow_idle_consumers = true;
  EXPECT_EQ(PredictReplicas(spec, 400, 6), 8);
  EXPECT_EQ(PredictReplicas(Spec(10, 2, 8), 0, 6), 2) << "minReplicas";
}

TEST(WorkerPoolFromJson, DecodesPredictiveAndTheForecastStatus) {
  auto p = WorkerPoolFromJson(Json::parse(R"({
    "metadata": {"namespace": "ns", "name": "p", "uid": "u1"},
    "spec": {"scaleTargetRef": {"name": "w"}, "topic": "t", "consumerGroup": "g", "predictive": {"leadSeconds": 90}},
    "status": {"forecast": {"messages": 400, "firstTime": "2026-12-02T09:00:00Z"}}})"));
  ASSERT_TRUE(p);
  EXPECT_EQ(p->spec.predictive_lead_seconds, 90);
  EXPECT_EQ(p->status.forecast_messages, 400);
  EXPECT_EQ(p->status.forecast_time, "2026-12-02T09:00:00Z");
  Json patch = WorkerPoolStatusPatch(p->status);
  EXPECT_EQ(patch["status"]["forecast"]["messages"], 400);
  p->status.forecast_messages.reset();
  EXPECT_TRUE(WorkerPoolStatusPatch(p->status)["status"]["forecast"].is_null()) << "removed for a reactive pool";
  auto defaulted = WorkerPoolFromJson(Json::parse(R"({"metadata": {"name": "p", "uid": "u"},
    "spec": {"topic": "t", "predictive": {}}})"));
  EXPECT_EQ(defaulted->spec.predictive_lead_seconds, 60);
  auto reactive = WorkerPoolFromJson(Json::parse(R"({"metadata": {"name": "p", "uid": "u"}, "spec": {"topic": "t"}})"));
  EXPECT_EQ(reactive->spec.predictive_lead_seconds, 0);
}

// One pass over the tasks serves every topic and pool for `reuse`; a later or
// longer window computes again.
TEST(ScheduleForecaster, SumsTheWindowAndReusesOnePass) {
  FakeClock clock(std::chrono::system_clock::time_point(1'800'000'020s));
  auto task = [](const std::string& name, const std::string& topic, int shards) {
    auto t = std::make_shared<dispatcher::TaskDefinition>();
    t->id = "uid-" + name;
    t->ns = "ns";
    t->name = name;
    t->schedule = "* * * * *";
    t->topic = topic;
    t->shards = shards;
    return dispatcher::TaskDefinitionPtr(t);
  };
  int calls = 0;
  ScheduleForecaster f(
      [&] {
        ++calls;
        return std::vector<dispatcher::TaskDefinitionPtr>{task("a", "", 3), task("b", "other", 1)};
      },
      "default", clock, 5s, 10min);
  const auto now = clock.Now();  // 20 s past a minute
  auto d = f.Forecast("default", now, now + 60s);
  EXPECT_EQ(d.messages, 3) << "the next minute's 3 shards";
  ASSERT_TRUE(d.first);
  EXPECT_EQ(*d.first, now + 40s);
  EXPECT_EQ(f.Forecast("other", now, now + 150s).messages, 2) << "two minutes in 150 s from :20";
  EXPECT_EQ(f.Forecast("nobody", now, now + 60s).messages, 0);
  EXPECT_EQ(calls, 1) << "one pass for every topic";
  clock.Advance(6s);
  EXPECT_EQ(f.Forecast("default", clock.Now(), clock.Now() + 60s).messages, 3);
  EXPECT_EQ(calls, 2) << "older than reuse";
  EXPECT_EQ(f.Forecast("default", clock.Now(), clock.Now() + 20min).messages, 60);
  EXPECT_EQ(calls, 3) << "past the computed window";
}

TEST(WorkerPoolLag, CountsWhatTheGroupHasYetToRead) {
  // {partition, committed, low, high}
  EXPECT_EQ(LagOf({0, 7, 0, 10}), 3) << "from the commit to the end";
  EXPECT_EQ(LagOf({0, -1, 4, 10}), 6) << "no commit: everything still in the log";
  EXPECT_EQ(LagOf({0, 2, 5, 10}), 5) << "a commit retention deleted counts from the low watermark";
  EXPECT_EQ(LagOf({0, 12, 0, 10}), 0) << "never negative";
  const WorkerPoolSpec spec;
  const LagMeasurement m = Measure(spec, {{"t", {{0, 7, 0, 10}, {1, -1, 4, 10}, {2, 10, 0, 10}}}}, nullptr);
  EXPECT_EQ(m.lag, 9);
  EXPECT_EQ(m.partitions, 3);
  EXPECT_EQ(m.partitions_with_lag, 2);
  EXPECT_EQ(Measure(spec, {}, nullptr).lag, 0);
}

class FakeLag : public LagReader {
 public:
  // What every topic answers, unless `by_topic` names it.
  Result<std::vector<kafka::PartitionOffsets>> result = std::vector<kafka::PartitionOffsets>{};
  std::map<std::string, Result<std::vector<kafka::PartitionOffsets>>> by_topic;
  Result<std::vector<kafka::PartitionOffsets>> Offsets(const std::string&, const std::string& topic) override {
    if (auto it = by_topic.find(topic); it != by_topic.end()) return it->second;
    return result;
  }
  // Partitions whose lags are `lags` (committed at 0, high watermark = lag).
  void Set(std::vector<int64_t> lags) {
    std::vector<kafka::PartitionOffsets> out;
    for (size_t i = 0; i < lags.size(); ++i) out.push_back({static_cast<int32_t>(i), 0, 0, lags[i]});
    result = out;
  }
};

constexpr const char* kAppsDiscovery = R"({"resources": [
  {"name": "deployments", "kind": "Deployment", "namespaced": true},
  {"name": "deployments/scale", "kind": "Scale", "namespaced": true},
  {"name": "deployments/status", "kind": "Deployment", "namespaced": true},
  {"name": "controllerrevisions", "kind": "ControllerRevision", "namespaced": true}]})";
constexpr const char* kScalePath = "/apis/apps/v1/namespaces/ns/deployments/workers/scale";

class ControllerTest : public ::testing::Test {
 protected:
  ControllerTest() : clock_(std::chrono::system_clock::time_point(1'700'000'000s)) {
    auto t = std::make_unique<RoutedTransport>();
    transport_ = t.get();
    client_ = std::make_unique<kube::KubeClient>(std::move(t), clock_, 0, 1);
    transport_->Route("GET /apis/apps/v1", {200, kAppsDiscovery});
    SetScale(0, 0);
    transport_->Route("PATCH /apis/cronlane.dev/v1alpha1/namespaces/ns/workerpools/p/status", {200, "{}"});
    pool_.ns = "ns";
    pool_.name = "p";
    pool_.uid = "u1";
    pool_.generation = 1;
    pool_.spec = Spec(10, 0, 10);
    pool_.spec.scale_down_stabilization_seconds = 30;
    pool_cache_ =
        std::make_unique<KindCache<WorkerPool>>(*client_, kWorkerPools, std::vector<std::string>{},
                                                DecodeIgnoringPrevious<WorkerPool, WorkerPoolFromJson>, clock_);
    controller_ = std::make_unique<WorkerPoolController>(*client_, *pool_cache_, lag_, events_, clock_);
    controller_->SetLookupForTest([this](const std::string&) { return std::optional<WorkerPool>(pool_); });
  }
  void SetScale(int spec, int status) {
    transport_->Route(std::string("GET ") + kScalePath,
                      {200, Json{{"spec", {{"replicas", spec}}}, {"status", {{"replicas", status}}}}.dump()});
    transport_->Route(std::string("PATCH ") + kScalePath,
                      {200, Json{{"spec", {{"replicas", spec}}}, {"status", {{"replicas", status}}}}.dump()});
  }
  // The last status written, decoded, and fed back into the cached pool (as the informer would).
  WorkerPoolStatus LastStatus() {
    auto writes = transport_->Sent("PATCH", "/workerpools/p/status");
    EXPECT_FALSE(writes.empty());
    if (writes.empty()) return {};
    Json obj = {{"metadata", {{"name", "p"}, {"uid", "u1"}}}, {"spec", Json::object()}};
    obj["status"] = Json::parse(writes.back().body)["status"];
    pool_.status = WorkerPoolFromJson(obj)->status;
    return pool_.status;
  }
  std::vector<int> ScalePatches() {
    std::vector<int> out;
    for (const auto& r : transport_->Sent("PATCH", "/deployments/workers/scale")) {
      out.push_back(Json::parse(r.body)["spec"]["replicas"].get<int>());
    }
    return out;
  }

  FakeClock clock_;
  RoutedTransport* transport_ = nullptr;
  std::unique_ptr<kube::KubeClient> client_;
  FakeLag lag_;
  RecordingEvents events_;
  WorkerPool pool_;
  std::unique_ptr<KindCache<WorkerPool>> pool_cache_;  // never run: pools come from SetLookupForTest
  std::unique_ptr<WorkerPoolController> controller_;
};

TEST_F(ControllerTest, ScalesFromZeroToTheLagAndBackAfterTheWindow) {
  lag_.Set({10, 10, 5, 0, 0, 0});  // 25 over 6 partitions
  ASSERT_TRUE(controller_->Reconcile("ns/p").ok());
  EXPECT_EQ(ScalePatches(), std::vector<int>{3});
  auto st = LastStatus();
  EXPECT_EQ(st.lag, 25);
  EXPECT_EQ(st.partitions, 6);
  EXPECT_EQ(st.desired_replicas, 3);
  EXPECT_FALSE(st.last_scale_time.empty());
  ASSERT_NE(st.Find("Ready"), nullptr);
  EXPECT_EQ(st.Find("Ready")->status, "True");
  EXPECT_THAT(st.Find("Ready")->message, HasSubstr("lag 25 on 6 partition(s)"));
  EXPECT_EQ(st.Find("Active")->status, "True");
  EXPECT_THAT(events_.Lines(),
              ::testing::ElementsAre(HasSubstr("Normal Scaled: Scaled Deployment/workers from 0 to 3")));

  // Drained: the window holds the pool at 3, then it returns to minReplicas.
  SetScale(3, 3);
  lag_.Set({0, 0, 0, 0, 0, 0});
  clock_.Advance(5s);
  ASSERT_TRUE(controller_->Reconcile("ns/p").ok());
  EXPECT_EQ(ScalePatches(), std::vector<int>{3});
  EXPECT_EQ(LastStatus().desired_replicas, 3);
  clock_.Advance(30s);
  ASSERT_TRUE(controller_->Reconcile("ns/p").ok());
  EXPECT_EQ(ScalePatches(), (std::vector<int>{3, 0}));
  st = LastStatus();
  EXPECT_EQ(st.desired_replicas, 0);
  EXPECT_EQ(st.Find("Active")->status, "False");
}

TEST_F(ControllerTest, WritesStatusOnlyWhenItChanged) {
  lag_.Set({0, 0});
  ASSERT_TRUE(controller_->Reconcile("ns/p").ok());
  LastStatus();
  size_t writes = transport_->Sent("PATCH", "/status").size();
  clock_.Advance(5s);
  ASSERT_TRUE(controller_->Reconcile("ns/p").ok());
  EXPECT_EQ(transport_->Sent("PATCH", "/status").size(), writes);
  EXPECT_TRUE(ScalePatches().empty());
}

TEST_F(ControllerTest, MissingTargetIsAConditionAndRecovers) {
  transport_->Route(std::string("GET ") + kScalePath, {404, R"({"kind":"Status","reason":"NotFound"})"});
  lag_.Set({40});
  ASSERT_TRUE(controller_->Reconcile("ns/p").ok());
  auto st = LastStatus();
  EXPECT_EQ(st.Find("Ready")->status, "False");
  EXPECT_EQ(st.Find("Ready")->reason, kReasonTargetNotFound);
  ASSERT_NE(st.Find("Stalled"), nullptr) << "a missing target needs a person: kstatus says Failed";
  EXPECT_EQ(st.Find("Stalled")->status, "True");
  EXPECT_EQ(st.Find("Stalled")->reason, kReasonTargetNotFound);
  EXPECT_EQ(st.lag, 40) << "the lag is still reported";
  EXPECT_TRUE(ScalePatches().empty());
  EXPECT_THAT(events_.Lines(), ::testing::ElementsAre(HasSubstr("Warning TargetNotFound")));
  clock_.Advance(5s);
  ASSERT_TRUE(controller_->Reconcile("ns/p").ok());
  EXPECT_EQ(events_.Lines().size(), 1u) << "one Warning per reason change, not per poll";

  SetScale(0, 0);
  clock_.Advance(5s);
  ASSERT_TRUE(controller_->Reconcile("ns/p").ok());
  EXPECT_EQ(LastStatus().Find("Ready")->reason, kReasonMeasured);
  EXPECT_EQ(LastStatus().Find("Stalled"), nullptr) << "recovered: no longer stalled";
  EXPECT_EQ(ScalePatches(), std::vector<int>{1}) << "40 on one partition: capped at 1";
}

TEST_F(ControllerTest, TopicAndBrokerProblemsKeepTheReplicas) {
  SetScale(2, 2);
  lag_.result = NotFound("topic t does not exist");
  ASSERT_TRUE(controller_->Reconcile("ns/p").ok());
  EXPECT_EQ(LastStatus().Find("Ready")->reason, kReasonTopicNotFound);
  EXPECT_EQ(LastStatus().Find("Ready")->status, "True") << "no topic yet is no work, not a broken pool";
  EXPECT_EQ(LastStatus().Find("Stalled"), nullptr);
  EXPECT_THAT(events_.Lines(), ::testing::ElementsAre(HasSubstr("Warning TopicNotFound")));
  lag_.result = Unavailable("Local: Broker transport failure");
  ASSERT_TRUE(controller_->Reconcile("ns/p").ok());
  auto st = LastStatus();
  EXPECT_EQ(st.Find("Ready")->reason, kReasonKafkaUnavailable);
  EXPECT_EQ(st.Find("Ready")->status, "False");
  EXPECT_EQ(st.Find("Stalled"), nullptr) << "a broker outage is retried, not a person's problem";
  EXPECT_THAT(st.Find("Ready")->message, HasSubstr("Broker transport failure"));
  EXPECT_EQ(st.current_replicas, 2);
  EXPECT_TRUE(ScalePatches().empty()) << "an unknown lag never scales";
}

TEST_F(ControllerTest, SeveralTopicsAreSummedAndOneUnreadableTopicIsAnUnknownLag) {
  pool_.spec.topics = {"a", "b"};
  lag_.by_topic.insert_or_assign("a", std::vector<kafka::PartitionOffsets>{{0, 0, 0, 30}});
  lag_.by_topic.insert_or_assign("b", std::vector<kafka::PartitionOffsets>{{0, 0, 0, 25}, {1, 0, 0, 5}});
  ASSERT_TRUE(controller_->Reconcile("ns/p").ok());
  EXPECT_EQ(ScalePatches(), std::vector<int>{3}) << "60 over 3 partitions: 6 wanted, capped at 3";
  auto st = LastStatus();
  EXPECT_EQ(st.lag, 60);
  EXPECT_EQ(st.partitions, 3);

  // A topic not created yet holds no work; the other is measured.
  SetScale(3, 3);
  lag_.by_topic.insert_or_assign("b", NotFound("unknown topic b"));
  clock_.Advance(5s);
  ASSERT_TRUE(controller_->Reconcile("ns/p").ok());
  st = LastStatus();
  EXPECT_EQ(st.lag, 30);
  EXPECT_EQ(st.Find("Ready")->reason, kReasonMeasured);
  EXPECT_THAT(st.Find("Ready")->message, HasSubstr("not created yet: b"));

  // One topic that cannot be read is an unknown lag, never a lag of 0 (KEDA #4098).
  pool_.spec.scale_down_stabilization_seconds = 0;
  lag_.by_topic.insert_or_assign("a", std::vector<kafka::PartitionOffsets>{{0, 0, 0, 0}});
  lag_.by_topic.insert_or_assign("b", Unavailable("Local: Broker transport failure"));
  clock_.Advance(5s);
  ASSERT_TRUE(controller_->Reconcile("ns/p").ok());
  st = LastStatus();
  EXPECT_EQ(st.Find("Ready")->reason, kReasonKafkaUnavailable);
  EXPECT_EQ(st.failures, 1);
  EXPECT_EQ(ScalePatches(), std::vector<int>{3}) << "kept at 3";
}

// excludePersistentLag: a partition whose committed offset stands still while the
// workers run adds no replicas, but keeps one; once it moves it counts again.
TEST_F(ControllerTest, PersistentLagIsExcludedWhileTheWorkersRunAndCountsOnceItMoves) {
  pool_.spec.exclude_persistent_lag = true;
  pool_.spec.scale_down_stabilization_seconds = 0;
  auto offsets = [this](int64_t committed) {
    lag_.result =
        std::vector<kafka::PartitionOffsets>{{0, committed, 0, 105}, {1, 0, 0, 0}, {2, 0, 0, 0}, {3, 0, 0, 0}};
  };
  offsets(5);
  ASSERT_TRUE(controller_->Reconcile("ns/p").ok());
  EXPECT_EQ(ScalePatches(), std::vector<int>{4}) << "100 counts, capped at 4 partitions";
  clock_.Advance(5s);
  ASSERT_TRUE(controller_->Reconcile("ns/p").ok());
  EXPECT_EQ(ScalePatches(), (std::vector<int>{4, 4}))
      << "the target still runs no replica (Pods pending): an offset cannot move, nothing is persistent";
  EXPECT_EQ(LastStatus().persistent_lag, 0);

  SetScale(4, 4);
  clock_.Advance(5s);
  ASSERT_TRUE(controller_->Reconcile("ns/p").ok());
  EXPECT_EQ(ScalePatches(), (std::vector<int>{4, 4})) << "the last poll had no workers: nothing to compare with";
  clock_.Advance(5s);
  ASSERT_TRUE(controller_->Reconcile("ns/p").ok());
  EXPECT_EQ(ScalePatches(), (std::vector<int>{4, 4, 1})) << "stood still with workers: held at one";
  auto st = LastStatus();
  EXPECT_EQ(st.lag, 100) << "status.lag is the whole lag";
  EXPECT_EQ(st.persistent_lag, 100);
  EXPECT_EQ(st.persistent_partitions, 1);
  EXPECT_THAT(st.Find("Ready")->message, HasSubstr("100 of it persistent on 1 partition(s) and not counted"));

  SetScale(1, 1);
  offsets(6);
  clock_.Advance(5s);
  ASSERT_TRUE(controller_->Reconcile("ns/p").ok());
  EXPECT_EQ(ScalePatches(), (std::vector<int>{4, 4, 1, 4})) << "it moved: 99 counts again";
  EXPECT_EQ(LastStatus().persistent_lag, 0);
}

// spec.fallback (KEDA's static fallback): more than failureThreshold failed
// measurements in a row scale to fallback.replicas; one success ends it.
TEST_F(ControllerTest, FallbackAfterMoreThanFailureThresholdFailuresUntilOneSucceeds) {
  pool_.spec.fallback = WorkerPoolFallback{.failure_threshold = 2, .replicas = 5};
  pool_.spec.scale_down_stabilization_seconds = 0;
  SetScale(1, 1);
  lag_.result = Unavailable("Local: Broker transport failure");
  for (int i = 1; i <= 2; ++i) {
    ASSERT_TRUE(controller_->Reconcile("ns/p").ok());
    auto st = LastStatus();
    EXPECT_EQ(st.failures, i);
    EXPECT_EQ(st.Find("Fallback")->status, "False");
    clock_.Advance(5s);
  }
  EXPECT_TRUE(ScalePatches().empty()) << "within the threshold the replicas are kept";
  ASSERT_TRUE(controller_->Reconcile("ns/p").ok());
  EXPECT_EQ(ScalePatches(), std::vector<int>{5});
  auto st = LastStatus();
  EXPECT_EQ(st.failures, 3);
  EXPECT_EQ(st.Find("Fallback")->status, "True");
  EXPECT_EQ(st.Find("Fallback")->reason, "MeasurementFailing");
  EXPECT_EQ(st.Find("Active")->reason, "Fallback");
  EXPECT_EQ(st.Find("Ready")->reason, kReasonKafkaUnavailable);
  EXPECT_THAT(events_.Lines(), ::testing::Contains(HasSubstr("from 1 to 5 replicas: lag unknown for 3 poll(s)")));

  SetScale(5, 5);
  lag_.Set({0});
  clock_.Advance(5s);
  ASSERT_TRUE(controller_->Reconcile("ns/p").ok());
  st = LastStatus();
  EXPECT_FALSE(st.failures.has_value());
  EXPECT_EQ(st.Find("Fallback")->status, "False");
  EXPECT_EQ(ScalePatches(), (std::vector<int>{5, 0})) << "measured again: the lag rules";

  // A new leader continues the count from status, so an outage that outlives a
  // failover does not restart it.
  pool_.status.failures = 7;
  pool_.uid = "u2";
  lag_.result = Unavailable("Local: Broker transport failure");
  SetScale(0, 0);
  clock_.Advance(5s);
  ASSERT_TRUE(controller_->Reconcile("ns/p").ok());
  EXPECT_EQ(ScalePatches(), (std::vector<int>{5, 0, 5}));
  EXPECT_EQ(LastStatus().failures, 8);

  pool_.spec.fallback.reset();
  clock_.Advance(5s);
  ASSERT_TRUE(controller_->Reconcile("ns/p").ok());
  EXPECT_EQ(LastStatus().Find("Fallback"), nullptr) << "removed with spec.fallback";
}

TEST_F(ControllerTest, KindWithoutScaleIsNotScalable) {
  pool_.spec.target_kind = "ControllerRevision";
  lag_.Set({1});
  ASSERT_TRUE(controller_->Reconcile("ns/p").ok());
  auto st = LastStatus();
  EXPECT_EQ(st.Find("Ready")->reason, kReasonTargetNotScalable);
  EXPECT_EQ(st.Find("Stalled")->reason, kReasonTargetNotScalable);
  EXPECT_THAT(st.Find("Ready")->message, HasSubstr("no /scale subresource"));
  pool_.spec.target_kind = "Gizmo";
  ASSERT_TRUE(controller_->Reconcile("ns/p").ok());
  EXPECT_THAT(LastStatus().Find("Ready")->message, HasSubstr("serves no kind Gizmo"));
}

TEST_F(ControllerTest, ApiOutageIsRetriedNotReported) {
  transport_->Route(std::string("GET ") + kScalePath, {503, R"({"kind":"Status","message":"etcd down"})"});
  lag_.Set({5});
  auto s = controller_->Reconcile("ns/p");
  EXPECT_EQ(s.status().code(), StatusCode::kUnavailable);
  EXPECT_TRUE(transport_->Sent("PATCH", "/status").empty());
}

TEST_F(ControllerTest, APollRequeuesThePoolAfterItsIntervalAndAGonePoolNot) {
  pool_.spec.poll_interval_seconds = 7;
  lag_.Set({5});
  auto next = controller_->Reconcile("ns/p");
  ASSERT_TRUE(next.ok());
  EXPECT_EQ(*next, std::optional<std::chrono::seconds>(7s));
  controller_->SetLookupForTest([](const std::string&) { return std::optional<WorkerPool>(); });
  next = controller_->Reconcile("ns/p");
  ASSERT_TRUE(next.ok());
  EXPECT_FALSE(next->has_value());
}

// A LagReader whose "slow" topic answers only when released, as a broker call that
// waits for its timeout; every other topic has a lag of 5.
class BlockingLag : public LagReader {
 public:
  Result<std::vector<kafka::PartitionOffsets>> Offsets(const std::string&, const std::string& topic) override {
    if (topic == "slow") {
      slow_started.Cancel();
      release.WaitFor(60s);
      return Unavailable("timed out");
    }
    return std::vector<kafka::PartitionOffsets>{{0, 0, 0, 5}};
  }
  CancelToken slow_started, release;
};

// Pools are polled concurrently: one whose broker call waits holds one worker, and
// the others are polled meanwhile (polled one after another, ns/p waited for
// ns/slow's timeout).
TEST_F(ControllerTest, APoolWaitingForItsBrokerDoesNotDelayTheOthers) {
  BlockingLag lag;
  WorkerPoolController c(*client_, *pool_cache_, lag, events_, clock_);
  WorkerPool slow = pool_;
  slow.name = "slow";
  slow.uid = "u2";
  slow.spec.topics = {"slow"};
  c.SetLookupForTest(
      [&](const std::string& key) { return std::optional<WorkerPool>(key == "ns/slow" ? slow : pool_); });
  c.SetKeysForTest({"ns/slow", "ns/p"});  // the slow one first
  CancelToken stop;
  std::thread run([&] { c.Run(stop, 2); });
  ASSERT_TRUE(lag.slow_started.WaitFor(30s));
  bool polled = false;
  for (auto until = std::chrono::steady_clock::now() + 30s; !polled && std::chrono::steady_clock::now() < until;) {
    polled = !transport_->Sent("PATCH", "/workerpools/p/status").empty();
    if (!polled) lag.release.WaitFor(10ms);
  }
  EXPECT_TRUE(polled) << "ns/p was not polled while ns/slow waited for its broker";
  lag.release.Cancel();
  stop.Cancel();
  run.join();
}

class FakeForecaster : public Forecaster {
 public:
  TopicForecast next;
  std::vector<std::pair<std::string, std::chrono::seconds>> asked;  // topic, window length
  TopicForecast Forecast(const std::string& topic, std::chrono::system_clock::time_point from,
                         std::chrono::system_clock::time_point to) override {
    asked.emplace_back(topic, std::chrono::duration_cast<std::chrono::seconds>(to - from));
    return next;
  }
};

TEST_F(ControllerTest, APredictivePoolScalesForTheForecastBeforeAnyLag) {
  FakeForecaster forecast;
  WorkerPoolController c(*client_, *pool_cache_, lag_, events_, clock_, &forecast);
  c.SetLookupForTest([this](const std::string&) { return std::optional<WorkerPool>(pool_); });
  lag_.Set({0, 0, 0, 0, 0, 0});
  forecast.next = {40, clock_.Now() + 45s};

  // Without spec.predictive the forecast is not even asked for.
  ASSERT_TRUE(c.Reconcile("ns/p").ok());
  EXPECT_TRUE(ScalePatches().empty());
  EXPECT_TRUE(forecast.asked.empty());
  EXPECT_FALSE(LastStatus().forecast_messages.has_value());

  pool_.spec.predictive_lead_seconds = 60;
  clock_.Advance(5s);
  ASSERT_TRUE(c.Reconcile("ns/p").ok());
  ASSERT_EQ(forecast.asked.size(), 1u);
  EXPECT_EQ(forecast.asked[0], (std::pair<std::string, std::chrono::seconds>{"t", 65s}))
      << "the lead and one poll interval: a poll sees a burst at least leadSeconds ahead";
  EXPECT_EQ(ScalePatches(), std::vector<int>{4}) << "ceil(40 / 10) before the burst, with no lag yet";
  auto st = LastStatus();
  EXPECT_EQ(st.forecast_messages, 40);
  EXPECT_EQ(st.forecast_time, FormatRfc3339(std::chrono::floor<std::chrono::seconds>(clock_.Now() + 40s)));
  EXPECT_EQ(st.Find("Active")->reason, "BurstPredicted");
  EXPECT_THAT(events_.Lines(), ::testing::ElementsAre(HasSubstr(
                                   "Normal PredictedBurst: Scaled Deployment/workers from 0 to 4 replicas: predicted "
                                   "burst of 40 message(s) from")));

  // The burst landed: its lag (larger than the forecast now) scales as usual.
  SetScale(4, 4);
  lag_.Set({10, 10, 10, 10, 10, 10});
  forecast.next = {};
  clock_.Advance(5s);
  ASSERT_TRUE(c.Reconcile("ns/p").ok());
  EXPECT_EQ(ScalePatches(), (std::vector<int>{4, 6}));
  EXPECT_THAT(events_.Lines().back(),
              HasSubstr("Normal Scaled: Scaled Deployment/workers from 4 to 6 replicas: lag 60"));
  EXPECT_EQ(LastStatus().Find("Active")->reason, "LagPresent");
}

// The first burst creates the topic: a predictive pool scales for it although no
// lag can be measured yet (a reactive one keeps its replicas).
TEST_F(ControllerTest, APredictivePoolScalesAheadOfATopicThatDoesNotExistYet) {
  FakeForecaster forecast;
  WorkerPoolController c(*client_, *pool_cache_, lag_, events_, clock_, &forecast);
  c.SetLookupForTest([this](const std::string&) { return std::optional<WorkerPool>(pool_); });
  lag_.result = NotFound("unknown topic t");
  forecast.next = {30, clock_.Now() + 40s};
  ASSERT_TRUE(c.Reconcile("ns/p").ok());
  EXPECT_TRUE(ScalePatches().empty()) << "reactive: nothing to measure, nothing scaled";
  pool_.spec.predictive_lead_seconds = 60;
  clock_.Advance(5s);
  ASSERT_TRUE(c.Reconcile("ns/p").ok());
  EXPECT_EQ(ScalePatches(), std::vector<int>{3}) << "ceil(30 / 10), no partition cap";
  auto st = LastStatus();
  EXPECT_EQ(st.Find("Ready")->reason, "TopicNotFound");
  EXPECT_THAT(st.Find("Ready")->message, HasSubstr("predicted burst of 30 message(s)"));
  EXPECT_EQ(st.forecast_messages, 30);
  EXPECT_THAT(events_.Lines(),
              ::testing::Contains(::testing::AllOf(
                  HasSubstr("Normal PredictedBurst: Scaled Deployment/workers from 0 to 3 replicas: predicted burst of "
                            "30 message(s) from"),
                  HasSubstr("topic t not created yet"))));
}

}  // namespace
}  // namespace cronlane::op
