// Unit tests of the Backfill controller (operator/backfill_controller.h): one
// reconcile at a time against a routed fake API and a fake TaskSink at the
// dispatcher seam, with simulated time. Decoding of the typed object too.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <mutex>

#include "operator/backfill.h"
#include "operator/backfill_controller.h"
#include "tests/support/fake_kube.h"

namespace cronlane::op {
namespace {

using kube::Json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using testing::RecordingEvents;
using testing::RoutedTransport;
using namespace std::chrono_literals;

constexpr const char* kStatusPath = "/apis/cronlane.dev/v1alpha1/namespaces/ns/backfills/fill/status";

// The dispatcher seam: scripted UpsertBackfill answers; what it was asked.
class FakeTaskSink : public dispatcher::TaskSink {
 public:
  explicit FakeTaskSink(const RoutedTransport& transport) : transport_(transport) {}
  Result<dispatcher::TaskState> Upsert(dispatcher::TaskDefinitionPtr) override { return dispatcher::TaskState{}; }
  void Remove(const std::string&) override {}
  void Forget(const std::string&) override {}
  Result<dispatcher::TaskState> State(const std::string&) const override { return NotFound("none"); }
  Status RequestRun(const std::string&, const dispatcher::RunRequest&) override { return Status::Ok(); }
  Result<dispatcher::BackfillState> UpsertBackfill(const dispatcher::BackfillDefinition& b) override {
    std::lock_guard lock(mu);
    upserts.push_back(b);
    status_writes_at_upsert.push_back(transport_.Sent("PATCH", "/status").size());
    return answer;
  }
  void ForgetBackfill(const std::string& id) override {
    std::lock_guard lock(mu);
    forgotten.push_back(id);
  }

  std::mutex mu;
  Result<dispatcher::BackfillState> answer = dispatcher::BackfillState{10, 0};
  std::vector<dispatcher::BackfillDefinition> upserts;
  std::vector<size_t> status_writes_at_upsert;  // status PATCHes sent before each upsert
  std::vector<std::string> forgotten;

 private:
  const RoutedTransport& transport_;
};

class BackfillControllerTest : public ::testing::Test {
 protected:
  BackfillControllerTest() : clock_(std::chrono::system_clock::time_point(1'767'225'600s)), sink_(*transport()) {
    transport_->Route(std::string("PATCH ") + kStatusPath, {200, "{}"});
    backfill_ = *BackfillFromJson(Json::parse(R"({
      "metadata": {"namespace": "ns", "name": "fill", "uid": "bf-uid", "generation": 1},
      "spec": {"taskName": "report", "from": "2025-12-01T00:00:00Z", "to": "2026-01-01T00:00:00Z",
               "maxPerSecond": 50, "order": "NewestFirst"}})"));
    task_.ns = "ns";
    task_.name = "report";
    task_.uid = "task-1";
    backfills_ = std::make_unique<KindCache<Backfill>>(*client_, kBackfills, std::vector<std::string>{},
                                                       DecodeIgnoringPrevious<Backfill, BackfillFromJson>, clock_);
    tasks_ = std::make_unique<KindCache<ScheduledTask>>(
        *client_, kScheduledTasks, std::vector<std::string>{},
        [](const Json& o, const ScheduledTask* p) { return ScheduledTaskFromJson(o, p); }, clock_);
    controller_ = std::make_unique<BackfillController>(*client_, *backfills_, *tasks_, sink_, events_, clock_);
    controller_->SetLookupsForTest(
        [this](const std::string& key) -> std::optional<Backfill> {
          if (!backfill_exists_ || key != "ns/fill") return std::nullopt;
          return backfill_;
        },
        [this](const std::string& key) -> std::optional<ScheduledTask> {
          if (!task_exists_ || key != "ns/report") return std::nullopt;
          return task_;
        });
  }
  RoutedTransport* transport() {
    if (transport_ == nullptr) {
      auto t = std::make_unique<RoutedTransport>();
      transport_ = t.get();
      client_ = std::make_unique<kube::KubeClient>(std::move(t), clock_, 0, 1);
    }
    return transport_;
  }
  size_t Writes() const { return transport_->Sent("PATCH", "/status").size(); }
  // The last status written, fed back into the cached Backfill (as the informer would).
  BackfillStatus LastStatus() {
    auto writes = transport_->Sent("PATCH", "/backfills/fill/status");
    EXPECT_FALSE(writes.empty());
    if (writes.empty()) return {};
    Json obj = {{"metadata", {{"namespace", "ns"}, {"name", "fill"}, {"uid", backfill_.uid}}},
                {"spec", Json::object()},
                {"status", Json::parse(writes.back().body)["status"]}};
    backfill_.status = BackfillFromJson(obj)->status;
    return backfill_.status;
  }
  std::optional<std::chrono::milliseconds> Reconcile() {
    auto r = controller_->Reconcile("ns/fill");
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? *r : std::nullopt;
  }
  std::string Ready(const BackfillStatus& s) {
    const Condition* c = s.Find(kConditionReady);
    return c == nullptr ? "<none>" : c->status + " " + c->reason;
  }

  FakeClock clock_;
  RoutedTransport* transport_ = nullptr;
  std::unique_ptr<kube::KubeClient> client_;
  FakeTaskSink sink_;
  RecordingEvents events_;
  Backfill backfill_;
  ScheduledTask task_;
  bool backfill_exists_ = true, task_exists_ = true;
  std::unique_ptr<KindCache<Backfill>> backfills_;  // never run: objects come from the lookups
  std::unique_ptr<KindCache<ScheduledTask>> tasks_;
  std::unique_ptr<BackfillController> controller_;
};

TEST(BackfillFromJson, DecodesSpecDefaultsAndStatus) {
  auto b = BackfillFromJson(Json::parse(R"({
    "metadata": {"namespace": "ns", "name": "f", "uid": "u"},
    "spec": {"taskName": "t", "from": "2026-01-01T00:00:00+01:00", "to": "not a time"},
    "status": {"taskUID": "tu", "total": 7, "fired": 3, "startTime": "2026-01-02T00:00:00Z"}})"));
  ASSERT_TRUE(b.has_value());
  EXPECT_EQ(b->TaskKey(), "ns/t");
  ASSERT_TRUE(b->spec.from.has_value());
  EXPECT_EQ(FormatRfc3339(*b->spec.from), "2025-12-31T23:00:00Z");
  EXPECT_FALSE(b->spec.to.has_value()) << "unparsable: absent, and the controller says so";
  EXPECT_EQ(b->spec.max_per_second, 10);
  EXPECT_FALSE(b->spec.newest_first);
  EXPECT_EQ(b->status.task_uid, "tu");
  EXPECT_EQ(b->status.total, 7);
  EXPECT_EQ(b->status.fired, 3);
  EXPECT_FALSE(BackfillFromJson(Json::parse(R"({"metadata": {"name": "f", "uid": "u"}})")).has_value());
}

TEST_F(BackfillControllerTest, PinsTheTaskUidBeforeFiring) {
  EXPECT_FALSE(Reconcile().has_value());
  ASSERT_EQ(sink_.upserts.size(), 1U);
  EXPECT_EQ(sink_.status_writes_at_upsert[0], 1U) << "status.taskUID is written before the dispatcher gets it";
  auto first = Json::parse(transport_->Sent("PATCH", "/status")[0].body)["status"];
  EXPECT_EQ(first["taskUID"], "task-1");
  EXPECT_TRUE(first["startTime"].is_string());
  const auto& def = sink_.upserts[0];
  EXPECT_EQ(def.id, "bf-uid");
  EXPECT_EQ(def.task_id, "task-1");
  EXPECT_EQ(def.name, "ns/fill");
  EXPECT_EQ(FormatRfc3339(def.from), "2025-12-01T00:00:00Z");
  EXPECT_EQ(FormatRfc3339(def.to), "2026-01-01T00:00:00Z");
  EXPECT_EQ(def.per_second, 50);
  EXPECT_TRUE(def.newest_first);
  auto st = LastStatus();
  EXPECT_EQ(st.total, 10);
  EXPECT_EQ(st.fired, 0);
  EXPECT_EQ(Ready(st), "True Backfilling");
  EXPECT_EQ(st.Find(kConditionComplete)->status, "False");
  EXPECT_EQ(st.Find(kConditionStalled), nullptr);
}

TEST_F(BackfillControllerTest, ARecreatedTaskStalls) {
  Reconcile();
  LastStatus();
  const size_t upserts = sink_.upserts.size();
  task_.uid = "task-2";  // deleted and created again under the name
  Reconcile();
  EXPECT_EQ(sink_.upserts.size(), upserts) << "never handed over for the new task";
  auto st = LastStatus();
  EXPECT_EQ(st.task_uid, "task-1") << "the pin stays";
  EXPECT_EQ(Ready(st), "False TaskReplaced");
  ASSERT_NE(st.Find(kConditionStalled), nullptr);
  EXPECT_EQ(st.Find(kConditionStalled)->status, "True");
  EXPECT_THAT(events_.Lines(), ::testing::Contains(HasSubstr("Warning TaskReplaced")));
  task_exists_ = false;  // and deleted: still stalled, now TaskNotFound
  Reconcile();
  EXPECT_EQ(Ready(LastStatus()), "False TaskNotFound");
}

TEST_F(BackfillControllerTest, AMissingTaskWaitsUnpinnedAndStartsWhenCreated) {
  task_exists_ = false;
  Reconcile();
  EXPECT_TRUE(sink_.upserts.empty());
  auto st = LastStatus();
  EXPECT_EQ(st.task_uid, "");
  EXPECT_EQ(Ready(st), "False TaskNotFound");
  EXPECT_EQ(st.Find(kConditionStalled), nullptr) << "a task applied after its Backfill is no mistake";
  EXPECT_THAT(st.Find(kConditionReady)->message, HasSubstr("starts when it is created"));
  EXPECT_THAT(events_.Lines(), ElementsAre(HasSubstr("Warning TaskNotFound")));
  task_exists_ = true;  // created: the next reconcile (the task's watch queues it) pins it
  Reconcile();
  EXPECT_EQ(sink_.upserts.size(), 1U);
  st = LastStatus();
  EXPECT_EQ(st.task_uid, "task-1");
  EXPECT_EQ(Ready(st), "True Backfilling");
  EXPECT_EQ(st.Find(kConditionStalled), nullptr);
}

// With shards, the shard of the Backfill's UID reports a missing task, but its cache
// holds only its own shards' tasks: the API decides whether the task is missing.
TEST_F(BackfillControllerTest, AShardAsksTheApiBeforeCallingATaskMissing) {
  BackfillController sharded(*client_, *backfills_, *tasks_, sink_, events_, clock_,
                             [](const std::string& uid) { return uid == "bf-uid"; });
  sharded.SetLookupsForTest([this](const std::string&) -> std::optional<Backfill> { return backfill_; },
                            [](const std::string&) -> std::optional<ScheduledTask> { return std::nullopt; });
  const std::string task_path = kScheduledTasks.Path("ns", "report");
  transport_->Route("GET " + task_path, {200, R"({"metadata": {"namespace": "ns", "name": "report", "uid": "t-9"}})"});
  auto r = sharded.Reconcile("ns/fill");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(transport_->Sent("GET", task_path).size(), 1U);
  EXPECT_EQ(Writes(), 0U) << "the task exists in another replica's shard: its shard pins it";
  EXPECT_TRUE(events_.Lines().empty());

  transport_->Route("GET " + task_path, {500, R"({"kind":"Status","message":"etcd is slow"})"});
  EXPECT_FALSE(sharded.Reconcile("ns/fill").ok()) << "an unanswered question is retried, not a missing task";
  EXPECT_EQ(Writes(), 0U);

  transport_->Route("GET " + task_path,
                    {404, R"({"kind":"Status","reason":"NotFound","message":"scheduledtasks \"report\" not found"})"});
  r = sharded.Reconcile("ns/fill");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(Ready(LastStatus()), "False TaskNotFound");
}

TEST_F(BackfillControllerTest, AStaleCacheLosesNoFieldAndCompleteStaysTerminal) {
  // The cache never shows our writes here (the watch is behind).
  Reconcile();
  auto first = Json::parse(transport_->Sent("PATCH", "/status").back().body)["status"];
  ASSERT_TRUE(first["startTime"].is_string());
  sink_.answer = dispatcher::BackfillState{10, 10};
  clock_.Advance(1s);
  Reconcile();
  auto done = Json::parse(transport_->Sent("PATCH", "/status").back().body)["status"];
  EXPECT_EQ(done["startTime"], first["startTime"]) << "kept from what was written, not the stale cache";
  EXPECT_EQ(done["taskUID"], "task-1");
  EXPECT_EQ(done["fired"], 10);
  ASSERT_TRUE(done["completionTime"].is_string());
  const size_t writes = Writes(), upserts = sink_.upserts.size();
  clock_.Advance(10s);
  Reconcile();
  EXPECT_EQ(sink_.upserts.size(), upserts) << "Complete, as written, is terminal";
  EXPECT_EQ(Writes(), writes) << "completionTime does not move";
}

TEST_F(BackfillControllerTest, ADispatcherNotStartedIsRetriedQuietly) {
  sink_.answer = Unavailable("the dispatcher has not restored its checkpoints yet");
  auto next = Reconcile();
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(*next, 2000ms);
  auto st = LastStatus();  // the pin only
  EXPECT_EQ(st.task_uid, "task-1");
  EXPECT_FALSE(st.fired.has_value()) << "no progress claimed before the record is read";
  EXPECT_TRUE(events_.Lines().empty());
}

TEST_F(BackfillControllerTest, ProgressIsWrittenAtMostEveryPeriodAndCompletionAtOnce) {
  Reconcile();
  LastStatus();
  size_t writes = Writes();
  sink_.answer = dispatcher::BackfillState{10, 4};
  clock_.Advance(1s);
  auto next = Reconcile();
  EXPECT_EQ(Writes(), writes) << "progress alone waits for the period";
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(*next, 4000ms);
  clock_.Advance(4s);
  EXPECT_FALSE(Reconcile().has_value());
  EXPECT_EQ(Writes(), writes + 1);
  EXPECT_EQ(LastStatus().fired, 4);
  sink_.answer = dispatcher::BackfillState{10, 10};
  clock_.Advance(1s);
  Reconcile();
  EXPECT_EQ(Writes(), writes + 2) << "completion is written at once";
  auto st = LastStatus();
  EXPECT_EQ(st.fired, 10);
  EXPECT_EQ(Ready(st), "True Completed");
  EXPECT_EQ(st.Find(kConditionComplete)->status, "True");
  EXPECT_FALSE(st.completion_time.empty());
  EXPECT_THAT(events_.Lines(), ElementsAre(HasSubstr("Normal Completed: all 10 occurrences")));
  // Complete is terminal: not handed over again (a new leader's record keeps it done).
  const size_t upserts = sink_.upserts.size();
  Reconcile();
  EXPECT_EQ(sink_.upserts.size(), upserts);
}

TEST_F(BackfillControllerTest, RefusedRangesStall) {
  sink_.answer = InvalidArgument("TooManyOccurrences: backfill ns/fill covers more than 100000 occurrences");
  Reconcile();
  auto st = LastStatus();
  EXPECT_EQ(Ready(st), "False TooManyOccurrences");
  EXPECT_EQ(st.Find(kConditionStalled)->status, "True");
  EXPECT_THAT(st.Find(kConditionReady)->message, HasSubstr("100000"));

  backfill_.spec.to = backfill_.spec.from;
  Reconcile();
  EXPECT_EQ(Ready(LastStatus()), "False InvalidRange");
}

TEST_F(BackfillControllerTest, ATaskNotScheduledIsRetriedAndReportedAfterTheGrace) {
  Reconcile();  // pinned
  LastStatus();
  const size_t writes = Writes();
  sink_.answer = NotFound("task task-1 is not scheduled");
  auto next = Reconcile();
  ASSERT_TRUE(next.has_value());
  EXPECT_EQ(*next, 2000ms);
  EXPECT_EQ(Writes(), writes) << "a new term upserts tasks and backfills at once: no condition yet";
  clock_.Advance(31s);
  Reconcile();
  auto st = LastStatus();
  EXPECT_EQ(Ready(st), "False TaskNotScheduled");
  EXPECT_EQ(st.Find(kConditionStalled), nullptr) << "the task's own conditions say what to fix";
  sink_.answer = dispatcher::BackfillState{10, 1};
  Reconcile();
  EXPECT_EQ(Ready(LastStatus()), "True Backfilling");
}

TEST_F(BackfillControllerTest, DeletedOrRecreatedBackfillsAreForgotten) {
  Reconcile();
  backfill_.uid = "bf-uid-2";  // deleted and created again under the name
  backfill_.status = {};
  Reconcile();
  EXPECT_THAT(sink_.forgotten, ElementsAre("bf-uid"));
  ASSERT_EQ(sink_.upserts.size(), 2U);
  EXPECT_EQ(sink_.upserts[1].id, "bf-uid-2");
  backfill_exists_ = false;
  Reconcile();
  EXPECT_THAT(sink_.forgotten, ElementsAre("bf-uid", "bf-uid-2"));
}

}  // namespace
}  // namespace cronlane::op
