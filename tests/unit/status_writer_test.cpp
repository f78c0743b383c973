// The ScheduledTask status path without servers: the reconciler schedules a task
// without waiting for any API call, hands the fields it owns to the StatusWriter,
// which is the only writer of status (condition changes first, each kind under its
// own budget), and Warning Events are aggregated instead of sent one per task.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <set>

#include <map>

#include "operator/event_aggregator.h"
#include "operator/interner.h"
#include "operator/status_writer.h"
#include "operator/task_reconciler.h"
#include "operator/workerpool.h"
#include "tests/support/fake_kube.h"

namespace cronlane::op {
namespace {

using kube::Json;
using ::testing::HasSubstr;
using testing::RecordingEvents;
using testing::RoutedTransport;
using namespace std::chrono_literals;

dispatcher::Instant T(const char* s) {
  return *ParseRfc3339(s);
}

// Records what reaches the dispatcher.
class FakeTaskSink : public dispatcher::TaskSink {
 public:
  std::map<std::string, dispatcher::TaskDefinition> tasks;
  using TaskSink::Upsert;
  Result<dispatcher::TaskState> Upsert(dispatcher::TaskDefinitionPtr t) override {
    if (auto problem = dispatcher::CheckTask(*t)) {  // refused as the dispatcher refuses
      tasks.erase(t->id);
      return dispatcher::TaskState{std::nullopt, std::nullopt, std::move(problem)};
    }
    tasks[t->id] = *t;
    if (complete.count(t->id) != 0) {
      return dispatcher::TaskState{std::nullopt, T("2026-01-01T00:00:05Z"), std::nullopt, true};
    }
    return dispatcher::TaskState{T("2026-01-01T01:00:00Z"), std::nullopt};
  }
  void Remove(const std::string& id) override { tasks.erase(id); }
  void Forget(const std::string& id) override {
    tasks.erase(id);
    forgotten.push_back(id);
  }
  std::vector<std::string> forgotten;
  std::set<std::string> complete;  // ids the sink reports complete
  Result<dispatcher::TaskState> State(const std::string&) const override { return NotFound("x"); }
  Status RequestRun(const std::string& id, const dispatcher::RunRequest& request) override {
    if (tasks.count(id) == 0) return NotFound("task " + id + " is not scheduled");
    if (!dispatcher::ValidRunToken(request.token)) return InvalidArgument("bad token " + request.token);
    requests.emplace_back(id, request);
    return Status::Ok();
  }
  std::vector<std::pair<std::string, dispatcher::RunRequest>> requests;
};

ScheduledTask Task(const std::string& name, int64_t generation = 1) {
  ScheduledTask t;
  t.ns = "ns";
  t.name = name;
  t.uid = "uid-" + name;
  t.generation = generation;
  auto def = std::make_shared<dispatcher::TaskDefinition>();
  def->id = t.uid;
  def->ns = t.ns;
  def->name = name;
  def->schedule = "0 * * * *";
  def->topic = "jobs";
  t.def = def;
  return t;
}

class StatusPathTest : public ::testing::Test {
 protected:
  StatusPathTest() : clock_(std::chrono::system_clock::time_point(T("2026-01-01T00:00:00Z"))) {
    auto t = std::make_unique<RoutedTransport>();
    transport_ = t.get();
    client_ = std::make_unique<kube::KubeClient>(std::move(t), clock_, 0, 1);
    aggregator_ = std::make_unique<EventAggregator>(events_, clock_);
    MakeWriter({0, 1}, {0, 1});
  }
  void MakeWriter(StatusBudget times, StatusBudget conditions) {
    reconciler_.reset();
    writer_ = std::make_unique<StatusWriter>(*client_, lookup_, *aggregator_, clock_, times, conditions, nullptr);
    reconciler_ = std::make_unique<TaskReconciler>(lookup_, sink_, *writer_, *aggregator_, clock_);
  }
  void Cache(const ScheduledTask& t) {
    cache_[t.ns + "/" + t.name] = t;
    transport_->Route("PATCH " + kScheduledTasks.Path(t.ns, t.name, "status"), {200, "{}"});
  }
  std::vector<Json> Patches(const std::string& name) const {
    std::vector<Json> out;
    for (const auto& r : transport_->Sent("PATCH", "/scheduledtasks/" + name + "/status")) {
      out.push_back(Json::parse(r.body)["status"]);
    }
    return out;
  }

  FakeClock clock_;
  RoutedTransport* transport_ = nullptr;
  std::unique_ptr<kube::KubeClient> client_;
  RecordingEvents events_;
  std::unique_ptr<EventAggregator> aggregator_;
  std::map<std::string, ScheduledTask> cache_;
  StatusWriter::Lookup lookup_ = [this](const std::string& key) -> std::optional<ScheduledTask> {
    auto it = cache_.find(key);
    if (it == cache_.end()) return std::nullopt;
    return it->second;
  };
  FakeTaskSink sink_;
  std::unique_ptr<StatusWriter> writer_;
  std::unique_ptr<TaskReconciler> reconciler_;
};

TEST_F(StatusPathTest, ReconcileSchedulesWithoutAnyApiCallAndTheWriterWritesOnce) {
  Cache(Task("a"));
  ASSERT_TRUE(reconciler_->Reconcile("ns/a").ok());
  EXPECT_EQ(sink_.tasks.count("uid-a"), 1U) << "scheduled";
  EXPECT_TRUE(Patches("a").empty()) << "the reconcile itself sends nothing";
  EXPECT_EQ(writer_->backlog(), 1U);

  ASSERT_TRUE(reconciler_->Reconcile("ns/a").ok());
  EXPECT_EQ(reconciler_->status_updates(), 1U) << "a repeated reconcile hands nothing over again";

  EXPECT_EQ(writer_->Flush(), 1);
  auto p = Patches("a");
  ASSERT_EQ(p.size(), 1U);
  EXPECT_EQ(p[0]["observedGeneration"], 1);
  EXPECT_EQ(p[0]["conditions"][0]["type"], "Ready");
  EXPECT_EQ(p[0]["conditions"][0]["status"], "True");
  EXPECT_EQ(p[0]["conditions"][0]["reason"], "Scheduled");
  EXPECT_EQ(p[0]["nextScheduleTime"], "2026-01-01T01:00:00Z");
  EXPECT_EQ(writer_->Flush(), 0) << "nothing left";
  EXPECT_EQ(writer_->backlog(), 0U);
}

TEST_F(StatusPathTest, OneWriterPerFieldNoStaleFireTimesFromTheCache) {
  ScheduledTask t = Task("a");
  t.status.fired_count = 3;
  t.status.last_schedule_time = T("2026-01-01T00:00:00Z");
  Cache(t);
  dispatcher::TaskDefinition def = *t.def;
  writer_->OnFired(def, T("2026-01-01T01:00:00Z"), T("2026-01-01T02:00:00Z"));
  EXPECT_EQ(writer_->Flush(), 1);
  // The cache has not seen that write yet when a spec change is reconciled.
  t.generation = 2;
  cache_["ns/a"].generation = 2;
  ASSERT_TRUE(reconciler_->Reconcile("ns/a").ok());
  EXPECT_EQ(writer_->Flush(), 1);
  auto p = Patches("a");
  ASSERT_EQ(p.size(), 2U);
  EXPECT_FALSE(p[0].contains("conditions")) << "a fire-time write carries no conditions";
  EXPECT_EQ(p[0]["firedCount"], 4);
  EXPECT_EQ(p[1]["observedGeneration"], 2);
  EXPECT_EQ(p[1]["firedCount"], 4) << "not the cache's stale 3";
  EXPECT_EQ(p[1]["lastScheduleTime"], "2026-01-01T01:00:00Z");
  EXPECT_EQ(p[1]["nextScheduleTime"], "2026-01-01T02:00:00Z")
      << "the dispatcher's newer next fire wins over the reconcile's older view";
}

TEST_F(StatusPathTest, TheShardIsWrittenWithTheConditionsAndRemovedWithoutShards) {
  ScheduledTask t = Task("sharded");
  Cache(t);
  writer_->OnReconciled(t, 1, {}, std::nullopt, 5);
  EXPECT_EQ(writer_->Flush(), 1);
  EXPECT_EQ(Patches("sharded").back()["shard"], 5);
  writer_->OnReconciled(t, 2, {}, std::nullopt);
  EXPECT_EQ(writer_->Flush(), 1);
  EXPECT_TRUE(Patches("sharded").back()["shard"].is_null()) << "a merge patch's null removes status.shard";
}

TEST_F(StatusPathTest, NextFireFromTheDispatcherStartReachesTheFirstWrite) {
  // Reconciled while the dispatcher waited for Kafka: no next fire yet.
  ScheduledTask t = Task("early");
  Cache(t);
  writer_->OnReconciled(t, 1, {}, std::nullopt);
  writer_->OnScheduled(*t.def, T("2026-01-01T01:00:00Z"));
  EXPECT_EQ(writer_->Flush(), 1);
  auto p = Patches("early");
  ASSERT_EQ(p.size(), 1U);
  EXPECT_EQ(p[0]["nextScheduleTime"], "2026-01-01T01:00:00Z");

  // A task whose status already shows that time (a restart) costs no write.
  ScheduledTask current = Task("current");
  current.status.next_schedule_time = T("2026-01-01T01:00:00Z");
  Cache(current);
  writer_->OnScheduled(*current.def, T("2026-01-01T01:00:00Z"));
  EXPECT_EQ(writer_->tracked(), 1U) << "no entry for it";
  writer_->OnScheduled(*current.def, T("2026-01-01T02:00:00Z"));
  EXPECT_EQ(writer_->Flush(), 1);
  EXPECT_EQ(Patches("current").back()["nextScheduleTime"], "2026-01-01T02:00:00Z");
}

TEST_F(StatusPathTest, ConditionsAndFireTimesHaveBudgetsOfTheirOwn) {
  MakeWriter({.qps = 1, .burst = 1}, {.qps = 2, .burst = 2});
  for (int i = 0; i < 5; ++i) {
    Cache(Task("t" + std::to_string(i)));
    ASSERT_TRUE(reconciler_->Reconcile("ns/t" + std::to_string(i)).ok());
  }
  ScheduledTask old = Task("old");
  old.status.observed_generation = 1;
  old.status.next_schedule_time = T("2026-01-01T00:00:00Z");
  Cache(old);
  writer_->OnFired(*old.def, T("2026-01-01T00:00:00Z"), T("2026-01-01T01:00:00Z"));

  EXPECT_EQ(sink_.tasks.size(), 5U) << "all five scheduled at once, whatever the budgets";
  EXPECT_EQ(writer_->Flush(), 3) << "two condition writes (burst 2) and one fire-time write (burst 1)";
  EXPECT_EQ(Patches("old").size(), 1U) << "fire times are not starved by new tasks";
  EXPECT_EQ(writer_->Flush(), 0) << "both budgets spent";
  clock_.Advance(1s);
  EXPECT_EQ(writer_->Flush(), 2);
  clock_.Advance(1s);
  EXPECT_EQ(writer_->Flush(), 1);
  EXPECT_EQ(writer_->backlog(), 0U);
}

TEST_F(StatusPathTest, EveryDirtyTaskGetsItsTurnUnderTheBudget) {
  // Three tasks fire every minute; the budget writes one status a pass. A task that
  // fired again after its write goes to the back: "a" is not written again before
  // "b" and "c" had theirs (walking the tasks in key order, "a" would win every pass).
  MakeWriter({.qps = 1, .burst = 1}, {0, 1});
  for (const char* name : {"a", "b", "c"}) {
    ScheduledTask t = Task(name);
    t.status.observed_generation = 1;
    Cache(t);
    writer_->OnFired(*t.def, T("2026-01-01T00:00:00Z"), T("2026-01-01T01:00:00Z"));
  }
  std::vector<std::string> order;
  for (int pass = 0; pass < 4; ++pass) {
    const auto before = transport_->Sent("PATCH", "/status").size();
    ASSERT_EQ(writer_->Flush(), 1) << "pass " << pass;
    const auto& sent = transport_->Sent("PATCH", "/status");
    ASSERT_EQ(sent.size(), before + 1);
    const std::string& path = sent.back().path;
    order.push_back(path.substr(path.rfind("/scheduledtasks/") + 16, 1));
    // The task just written fires again at once.
    writer_->OnFired(*cache_["ns/" + order.back()].def, T("2026-01-01T01:00:00Z"), T("2026-01-01T02:00:00Z"));
    clock_.Advance(1s);
  }
  EXPECT_THAT(order, ::testing::ElementsAre("a", "b", "c", "a"));
}

TEST_F(StatusPathTest, ARecreatedTaskReplacesTheOldIncarnationInTheDispatcher) {
  Cache(Task("a"));
  ASSERT_TRUE(reconciler_->Reconcile("ns/a").ok());
  ScheduledTask again = Task("a");
  again.uid = "uid-a-2";
  auto def = std::make_shared<dispatcher::TaskDefinition>(*again.def);
  def->id = again.uid;
  again.def = def;
  Cache(again);  // deleted and created again before the reconciler saw the delete
  ASSERT_TRUE(reconciler_->Reconcile("ns/a").ok());
  EXPECT_EQ(sink_.tasks.count("uid-a"), 0U) << "the old incarnation stops firing";
  EXPECT_EQ(sink_.tasks.count("uid-a-2"), 1U);
  EXPECT_THAT(sink_.forgotten, ::testing::ElementsAre("uid-a")) << "and its checkpoint goes";
  cache_.erase("ns/a");
  ASSERT_TRUE(reconciler_->Reconcile("ns/a").ok());
  EXPECT_TRUE(sink_.tasks.empty());
  EXPECT_THAT(sink_.forgotten, ::testing::ElementsAre("uid-a", "uid-a-2"));
}

TEST_F(StatusPathTest, DeletedTaskIsForgotten) {
  Cache(Task("a"));
  ASSERT_TRUE(reconciler_->Reconcile("ns/a").ok());
  cache_.erase("ns/a");
  ASSERT_TRUE(reconciler_->Reconcile("ns/a").ok());
  EXPECT_EQ(sink_.tasks.count("uid-a"), 0U);
  EXPECT_THAT(sink_.forgotten, ::testing::ElementsAre("uid-a")) << "deleted: its checkpoint is tombstoned";
  EXPECT_EQ(writer_->backlog(), 0U);
  EXPECT_EQ(writer_->Flush(), 0);
  EXPECT_EQ(writer_->tracked(), 0U);

  // A fire committed while the task was being deleted: its write finds no object,
  // and the entry goes instead of staying forever.
  writer_->OnFired(*Task("gone").def, T("2026-01-01T01:00:00Z"), std::nullopt);
  EXPECT_EQ(writer_->tracked(), 1U);
  EXPECT_EQ(writer_->Flush(), 0) << "404: not a write";
  EXPECT_EQ(writer_->tracked(), 0U);
}

// The queues point at entries (no key copies): an entry forgotten while queued waits
// for the queues to let go, a name that comes back meanwhile takes it over, and a
// forgotten task is never written.
TEST_F(StatusPathTest, ForgottenWhileQueuedAndBackUnderTheSameName) {
  Cache(Task("a"));
  Cache(Task("b"));
  ASSERT_TRUE(reconciler_->Reconcile("ns/a").ok());
  ASSERT_TRUE(reconciler_->Reconcile("ns/b").ok());
  writer_->OnFired(*cache_["ns/b"].def, T("2026-01-01T01:00:00Z"), T("2026-01-01T02:00:00Z"));  // both queues
  writer_->Forget("ns/a");
  writer_->Forget("ns/b");
  EXPECT_EQ(writer_->tracked(), 0U);
  EXPECT_EQ(writer_->backlog(), 0U);

  ScheduledTask again = Task("a");  // created again under the old name
  again.uid = "uid-a-2";
  auto def = std::make_shared<dispatcher::TaskDefinition>(*again.def);
  def->id = again.uid;
  again.def = def;
  Cache(again);
  ASSERT_TRUE(reconciler_->Reconcile("ns/a").ok());
  EXPECT_EQ(writer_->tracked(), 1U);

  EXPECT_EQ(writer_->Flush(), 1) << "the new incarnation is written, the forgotten task is not";
  EXPECT_EQ(Patches("a").size(), 1U);
  EXPECT_TRUE(Patches("b").empty());
  EXPECT_EQ(writer_->tracked(), 1U);
  // b's fire-times turn comes and goes; a fires and is written again.
  writer_->OnFired(*again.def, T("2026-01-01T01:00:00Z"), T("2026-01-01T02:00:00Z"));
  EXPECT_EQ(writer_->Flush(), 1);
  EXPECT_EQ(Patches("a").size(), 2U);
  EXPECT_EQ(writer_->Flush(), 0);
  writer_->Forget("ns/a");
  EXPECT_EQ(writer_->tracked(), 0U);
}

TEST_F(StatusPathTest, InvalidSpecIsAConditionAndOneWarning) {
  ScheduledTask t = Task("bad");
  auto bad = std::make_shared<dispatcher::TaskDefinition>(*t.def);
  bad->schedule = "0 0 31 2 *";
  t.def = bad;
  Cache(t);
  ASSERT_TRUE(reconciler_->Reconcile("ns/bad").ok());
  ASSERT_TRUE(reconciler_->Reconcile("ns/bad").ok());
  EXPECT_EQ(sink_.tasks.count("uid-bad"), 0U);
  EXPECT_TRUE(sink_.forgotten.empty()) << "invalid is not deleted: the checkpoint stays for when it is fixed";
  EXPECT_EQ(writer_->Flush(), 1);
  auto p = Patches("bad");
  ASSERT_EQ(p.size(), 1U);
  EXPECT_EQ(p[0]["conditions"][0]["status"], "False");
  EXPECT_EQ(p[0]["conditions"][0]["reason"], "InvalidSchedule");
  EXPECT_EQ(p[0]["conditions"][1]["type"], "Stalled");
  EXPECT_EQ(p[0]["conditions"][1]["status"], "True");
  EXPECT_THAT(events_.Lines(), ::testing::ElementsAre(HasSubstr("Warning InvalidSchedule")));
}

// What kstatus (Flux, kpt) and Argo CD's health check read: Reconciling (as the CRD
// defaults it) goes with the first write, suspension is Ready, a spec problem is
// Stalled as well as not Ready, and a fix removes Stalled. Every condition carries
// the generation it describes.
TEST_F(StatusPathTest, ConditionsFollowTheKstatusConventions) {
  auto conditions = [&](const std::string& name) {
    auto p = Patches(name);
    EXPECT_FALSE(p.empty());
    std::map<std::string, std::string> out;  // type -> "status/reason/generation"
    if (p.empty()) return out;
    for (const auto& c : p.back()["conditions"]) {
      out[c["type"].get<std::string>()] = c["status"].get<std::string>() + "/" + c["reason"].get<std::string>() + "/" +
                                          std::to_string(c["observedGeneration"].get<int64_t>());
    }
    EXPECT_EQ(p.back()["conditions"][0]["type"], "Ready") << "Ready comes first";
    return out;
  };
  using M = std::map<std::string, std::string>;
  ScheduledTask t = Task("a", 3);
  t.status.conditions =
      InternConditions({{kConditionReconciling, "True", "Pending", "not yet observed", "", 0}});  // CRD default
  Cache(t);
  ASSERT_TRUE(reconciler_->Reconcile("ns/a").ok());
  writer_->Flush();
  EXPECT_EQ(conditions("a"), (M{{"Ready", "True/Scheduled/3"}}));

  auto suspended = std::make_shared<dispatcher::TaskDefinition>(*t.def);
  suspended->suspend = true;
  t.def = suspended;
  t.generation = 4;
  Cache(t);
  ASSERT_TRUE(reconciler_->Reconcile("ns/a").ok());
  writer_->Flush();
  EXPECT_EQ(conditions("a"), (M{{"Ready", "True/Suspended/4"}})) << "suspension is intended: Ready";
  EXPECT_EQ(sink_.tasks.count("uid-a"), 1U);

  auto bad = std::make_shared<dispatcher::TaskDefinition>(*t.def);
  bad->suspend = false;
  bad->time_zone = "Mars/Olympus_Mons";
  t.def = bad;
  t.generation = 5;
  Cache(t);
  ASSERT_TRUE(reconciler_->Reconcile("ns/a").ok());
  writer_->Flush();
  EXPECT_EQ(conditions("a"), (M{{"Ready", "False/UnknownTimeZone/5"}, {"Stalled", "True/UnknownTimeZone/5"}}));

  // The cache now shows that write; the fix removes Stalled.
  std::vector<Condition> written;
  const std::vector<Json> patches = Patches("a");  // held: the loop reads into it
  for (const auto& c : patches.back()["conditions"]) {
    written.push_back(
        {c["type"], c["status"], c["reason"], c["message"], c["lastTransitionTime"], c["observedGeneration"]});
  }
  t.status.conditions = InternConditions(written);
  auto fixed = std::make_shared<dispatcher::TaskDefinition>(*bad);
  fixed->time_zone = "Europe/Berlin";
  t.def = fixed;
  t.generation = 6;
  Cache(t);
  ASSERT_TRUE(reconciler_->Reconcile("ns/a").ok());
  writer_->Flush();
  EXPECT_EQ(conditions("a"), (M{{"Ready", "True/Scheduled/6"}}));
}

TEST_F(StatusPathTest, SkipEventsAreQueuedAndAggregated) {
  for (int i = 0; i < 100; ++i) {
    ScheduledTask t = Task("t" + std::to_string(i));
    Cache(t);
    writer_->OnSkipped(*t.def, 1, T("2026-01-01T00:00:00Z"), T("2026-01-01T00:00:00Z"), "MissedSchedule",
                       "1 occurrence(s) not fired");
  }
  EXPECT_TRUE(events_.recorded().empty()) << "OnSkipped does not call the API";
  writer_->Flush();
  auto lines = events_.Lines();
  ASSERT_EQ(lines.size(), 11U) << "ten as they are, then one combined";
  EXPECT_THAT(lines.back(), HasSubstr("(combined from 90 similar events in namespace ns"));
  EXPECT_EQ(events_.recorded().back().ref.name, "t99") << "the combined Event is about the latest object";

  for (int i = 0; i < 50; ++i) {
    writer_->OnSkipped(*Task("t1").def, 1, T("2026-01-01T00:00:00Z"), T("2026-01-01T00:00:00Z"), "MissedSchedule",
                       "again");
  }
  writer_->Flush();
  EXPECT_EQ(events_.Lines().size(), 11U) << "at most one combined Event per interval";
  clock_.Advance(61s);
  writer_->Flush();
  ASSERT_EQ(events_.Lines().size(), 12U);
  EXPECT_THAT(events_.Lines().back(), HasSubstr("(combined from 50 similar"));
  EXPECT_EQ(aggregator_->combined(), 140U);

  // Another reason is a group of its own.
  writer_->OnSkipped(*Task("t1").def, 1, T("2026-01-01T00:00:00Z"), T("2026-01-01T00:00:00Z"), "TooManyMissed", "x");
  writer_->Flush();
  EXPECT_THAT(events_.Lines().back(), HasSubstr("Warning TooManyMissed: x"));
}

TEST_F(StatusPathTest, ARunNowAnnotationReconcilesWithoutAGenerationChange) {
  Json obj = Json::parse(R"({"metadata": {"namespace": "ns", "name": "a", "uid": "uid-a", "generation": 1},
                             "spec": {"schedule": "0 * * * *", "target": {"topic": "t"}}})");
  auto before = ScheduledTaskFromJson(obj);
  ASSERT_TRUE(before);
  EXPECT_FALSE(before->run_now);
  obj["metadata"]["annotations"] = {{"cronlane.dev/run-now", "tok-1"}, {"other", "x"}};
  auto annotated = ScheduledTaskFromJson(obj, &*before);
  ASSERT_TRUE(annotated && annotated->run_now);
  EXPECT_EQ(annotated->run_now->token, "tok-1");
  EXPECT_FALSE(annotated->run_now->force);
  EXPECT_EQ(annotated->def.get(), before->def.get()) << "the spec did not change";
  EXPECT_TRUE(TaskReconciler::NeedsReconcile(&*before, &*annotated)) << "same generation, a new request";
  auto again = ScheduledTaskFromJson(obj, &*annotated);
  EXPECT_EQ(again->run_now.get(), annotated->run_now.get()) << "shared, not a copy per update";
  EXPECT_FALSE(TaskReconciler::NeedsReconcile(&*annotated, &*again)) << "a status write is not a request";
  obj["metadata"]["annotations"]["cronlane.dev/run-now-force"] = "true";
  auto forced = ScheduledTaskFromJson(obj, &*again);
  EXPECT_TRUE(forced->run_now->force);
  EXPECT_TRUE(TaskReconciler::NeedsReconcile(&*again, &*forced));

  Cache(*forced);
  ASSERT_TRUE(reconciler_->Reconcile("ns/a").ok());
  ASSERT_EQ(sink_.requests.size(), 1U);
  EXPECT_EQ(sink_.requests[0].first, "uid-a");
  EXPECT_EQ(sink_.requests[0].second, (dispatcher::RunRequest{"tok-1", true}));

  // A bad token is refused with a Warning, not handed on.
  obj["metadata"]["annotations"]["cronlane.dev/run-now"] = "not a token";
  Cache(*ScheduledTaskFromJson(obj, &*forced));
  ASSERT_TRUE(reconciler_->Reconcile("ns/a").ok());
  EXPECT_EQ(sink_.requests.size(), 1U);
  writer_->Flush();
  EXPECT_THAT(events_.Lines(), ::testing::Contains(HasSubstr("Warning RunNowRefused")));
}

TEST_F(StatusPathTest, AHandledRunNowIsWrittenOnceWithTheFireTimes) {
  ScheduledTask t = Task("a");
  Cache(t);
  writer_->OnRunNow(*t.def, "tok-1", T("2026-01-01T00:00:05Z"), dispatcher::RunNowResult::kFired, "fired");
  EXPECT_EQ(writer_->Flush(), 1);
  auto p = Patches("a");
  ASSERT_EQ(p.size(), 1U);
  EXPECT_EQ(p[0]["lastRunNow"]["token"], "tok-1");
  EXPECT_EQ(p[0]["lastRunNow"]["time"], "2026-01-01T00:00:05Z");
  EXPECT_EQ(p[0]["lastRunNow"]["result"], "Fired");
  EXPECT_EQ(p[0]["firedCount"], 1) << "a manual run counts as fired";
  writer_->OnFired(*t.def, T("2026-01-01T01:00:00Z"), std::nullopt);
  EXPECT_EQ(writer_->Flush(), 1);
  p = Patches("a");
  ASSERT_EQ(p.size(), 2U);
  EXPECT_FALSE(p[1].contains("lastRunNow")) << "written once: the merge patch keeps it";
  writer_->OnRunNow(*t.def, "tok-2", T("2026-01-01T00:00:06Z"), dispatcher::RunNowResult::kSkipped, "busy");
  writer_->Flush();
  p = Patches("a");
  EXPECT_EQ(p.back()["lastRunNow"]["result"], "Skipped");
  EXPECT_THAT(events_.Lines(), ::testing::ElementsAre(HasSubstr("Normal RunNow"), HasSubstr("Warning RunNowSkipped")));
}

// A worker's result for task "ns/<name>": scheduled at `scheduled`, reported at
// scheduled + 5 s.
dispatcher::RunResult Result(const std::string& name, const char* scheduled, RunOutcome outcome, int attempts = 1,
                             dispatcher::Trigger trigger = dispatcher::Trigger::kSchedule) {
  dispatcher::RunResult r;
  r.subject = "ns/" + name;
  r.trigger = trigger;
  r.scheduled = T(scheduled);
  r.finished = r.scheduled + 5s;
  r.outcome = outcome;
  r.attempts = attempts;
  r.duration_ms = 1000 * attempts;
  return r;
}

// "Succeeded@00:01" for each entry of a written recentRuns (minutes of the hour).
std::vector<std::string> Runs(const Json& status) {
  std::vector<std::string> out;
  for (const auto& r : status["recentRuns"]) {
    out.push_back(r["outcome"].get<std::string>() + "@" + r["scheduledTime"].get<std::string>().substr(14, 5) +
                  (r.value("trigger", "") == "Manual" ? " manual" : "") + (r.contains("deadLettered") ? " dlq" : ""));
  }
  return out;
}

TEST(RunHistory, ShardsAndDuplicatesMergeIntoOneEntryAndAReplayChangesNothing) {
  auto ok = Result("a", "2026-01-01T00:01:00Z", RunOutcome::kSucceeded);
  RunMerge m = MergeRun(nullptr, ok);
  ASSERT_TRUE(m.changed && m.history);
  EXPECT_FALSE(m.newly_failed);
  // Another shard of the same occurrence failed after 3 attempts, later.
  auto shard = Result("a", "2026-01-01T00:01:00Z", RunOutcome::kFailed, 3);
  shard.finished += 10s;
  m = MergeRun(m.history, shard);
  EXPECT_TRUE(m.changed);
  EXPECT_TRUE(m.newly_failed);
  ASSERT_EQ(m.history->runs.size(), 1U) << "one entry per occurrence";
  const RecentRun& e = m.history->runs[0];
  EXPECT_EQ(e.outcome, RunOutcome::kFailed);
  EXPECT_EQ(e.attempts, 3);
  EXPECT_EQ(e.DurationMs(), 3000);
  EXPECT_EQ(e.Finished(), T("2026-01-01T00:01:15Z"));
  EXPECT_EQ(m.history->last_failure, T("2026-01-01T00:01:15Z"));
  // Replays of either result (a new leader reading the lookback) change nothing.
  for (const dispatcher::RunResult& again : {ok, shard}) {
    RunMerge r = MergeRun(m.history, again);
    EXPECT_FALSE(r.changed);
    EXPECT_FALSE(r.newly_failed);
    EXPECT_EQ(r.history.get(), m.history.get()) << "the same object, not a copy";
  }
  // A run-now handled in the same second is an occurrence of its own.
  auto manual = Result("a", "2026-01-01T00:01:00Z", RunOutcome::kSucceeded, 1, dispatcher::Trigger::kManual);
  m = MergeRun(m.history, manual);
  ASSERT_EQ(m.history->runs.size(), 2U);
  // Dead-lettered later: a new event is due, the outcome stays Failed.
  shard.dead_lettered = true;
  m = MergeRun(m.history, shard);
  EXPECT_TRUE(m.changed);
  EXPECT_FALSE(m.newly_failed);
  EXPECT_TRUE(m.newly_dead_lettered);
}

TEST(RunHistory, KeepsTheTenNewestNewestFirstAndRoundTripsThroughStatus) {
  SharedRunHistory h;
  // Out of order: minutes 0..11, odd ones first.
  for (int minute : {1, 3, 5, 7, 9, 11, 0, 2, 4, 6, 8, 10}) {
    char at[32];
    std::snprintf(at, sizeof at, "2026-01-01T00:%02d:00Z", minute);
    h = MergeRun(h, Result("a", at, minute % 4 == 0 ? RunOutcome::kFailed : RunOutcome::kSucceeded)).history;
  }
  ASSERT_EQ(h->runs.size(), kMaxRecentRuns);
  Json status = {{"recentRuns", RecentRunsJson(*h)}};
  EXPECT_THAT(Runs(status),
              ::testing::ElementsAre("Succeeded@11:00", "Succeeded@10:00", "Succeeded@09:00", "Failed@08:00",
                                     "Succeeded@07:00", "Succeeded@06:00", "Succeeded@05:00", "Failed@04:00",
                                     "Succeeded@03:00", "Succeeded@02:00"));
  EXPECT_EQ(h->last_failure, T("2026-01-01T00:08:05Z"));
  // Older than every entry of a full history: dropped, nothing changes.
  EXPECT_FALSE(MergeRun(h, Result("a", "2026-01-01T00:00:30Z", RunOutcome::kSucceeded)).changed);
  status["lastFailureTime"] = FormatRfc3339(*h->last_failure);
  auto back = RunHistoryFromJson(status, nullptr);
  ASSERT_TRUE(back);
  EXPECT_EQ(*back, *h);
  EXPECT_EQ(RunHistoryFromJson(status, back).get(), back.get()) << "an unchanged history is shared";
  EXPECT_FALSE(RunHistoryFromJson(Json::object(), nullptr)) << "no results: no history";
  // 16 bytes a run: a duration past 49 days is kept in seconds, the times from 2000 on.
  RecentRun r;
  r.SetDurationMs(int64_t{60} * 86400 * 1000 + 999);
  EXPECT_EQ(r.DurationMs(), int64_t{60} * 86400 * 1000);
  r.SetDurationMs(4294967295);
  EXPECT_EQ(r.DurationMs(), 4294967295);
  r.SetScheduled(T("2136-01-01T00:00:00Z"));
  EXPECT_EQ(r.Scheduled(), T("2136-01-01T00:00:00Z"));
  // Entries that do not parse are left out, not a failure.
  status["recentRuns"].push_back({{"scheduledTime", "yesterday"}});
  status["recentRuns"].push_back(7);
  EXPECT_EQ(RunHistoryFromJson(status, nullptr)->runs.size(), kMaxRecentRuns);
}

TEST_F(StatusPathTest, RecentRunsKeepTenNewestFirstOnTheFireTimesBudget) {
  MakeWriter({1, 1}, {0, 1});
  ScheduledTask t = Task("a");
  Cache(t);
  for (int minute = 0; minute < 12; ++minute) {
    char at[32];
    std::snprintf(at, sizeof at, "2026-01-01T00:%02d:00Z", minute);
    writer_->OnResult("uid-a", Result("a", at, minute == 7 ? RunOutcome::kFailed : RunOutcome::kSucceeded));
  }
  writer_->OnResult("uid-other", Result("a", "2026-01-01T00:30:00Z", RunOutcome::kFailed));  // another incarnation
  EXPECT_EQ(writer_->Flush(), 1) << "twelve results, one write";
  auto p = Patches("a");
  ASSERT_EQ(p.size(), 1U);
  EXPECT_THAT(Runs(p[0]),
              ::testing::ElementsAre("Succeeded@11:00", "Succeeded@10:00", "Succeeded@09:00", "Succeeded@08:00",
                                     "Failed@07:00", "Succeeded@06:00", "Succeeded@05:00", "Succeeded@04:00",
                                     "Succeeded@03:00", "Succeeded@02:00"));
  EXPECT_EQ(p[0]["recentRuns"][0], Json::parse(R"({"trigger": "Scheduled", "scheduledTime": "2026-01-01T00:11:00Z",
                            "finishedTime": "2026-01-01T00:11:05Z", "outcome": "Succeeded", "attempts": 1,
                            "durationMs": 1000})"));
  EXPECT_EQ(p[0]["lastSuccessfulTime"], "2026-01-01T00:11:05Z");
  EXPECT_EQ(p[0]["lastFailureTime"], "2026-01-01T00:07:05Z");

  // The watch has not delivered the write yet when the next result comes: the
  // write carries the runs the cache does not show.
  writer_->OnResult("uid-a",
                    Result("a", "2026-01-01T00:12:00Z", RunOutcome::kSucceeded, 1, dispatcher::Trigger::kManual));
  EXPECT_EQ(writer_->Flush(), 0) << "one write a second";
  clock_.Advance(1s);
  EXPECT_EQ(writer_->Flush(), 1);
  p = Patches("a");
  ASSERT_EQ(p.size(), 2U);
  EXPECT_THAT(Runs(p[1]),
              ::testing::ElementsAre("Succeeded@12:00 manual", "Succeeded@11:00", "Succeeded@10:00", "Succeeded@09:00",
                                     "Succeeded@08:00", "Failed@07:00", "Succeeded@06:00", "Succeeded@05:00",
                                     "Succeeded@04:00", "Succeeded@03:00"));

  // The watch delivers it: the writer then shares the cache's copy (one per task).
  cache_["ns/a"].status.runs = RunHistoryFromJson(p[1], nullptr);
  const SharedRunHistory& cached = cache_["ns/a"].status.runs;
  EXPECT_EQ(cached.use_count(), 1);
  clock_.Advance(1s);
  EXPECT_EQ(writer_->Flush(), 0);
  EXPECT_EQ(cached.use_count(), 2) << "the writer let its own copy go";

  // A fire-times write without new runs leaves recentRuns alone; replays write nothing.
  writer_->OnFired(*t.def, T("2026-01-01T01:00:00Z"), std::nullopt);
  clock_.Advance(1s);
  EXPECT_EQ(writer_->Flush(), 1);
  EXPECT_FALSE(Patches("a").back().contains("recentRuns"));
  writer_->OnResult("uid-a", Result("a", "2026-01-01T00:11:00Z", RunOutcome::kSucceeded));
  clock_.Advance(1s);
  EXPECT_EQ(writer_->Flush(), 0) << "a replayed result changes nothing";
  EXPECT_TRUE(events_.Lines().size() == 1U && events_.Lines()[0].rfind("Warning RunFailed:", 0) == 0)
      << ::testing::PrintToString(events_.Lines());
}

TEST_F(StatusPathTest, FailedRunsAreAggregatedWarnings) {
  ScheduledTask t = Task("a");
  Cache(t);
  // Three shards of one occurrence fail: one Event.
  for (int i = 0; i < 3; ++i) writer_->OnResult("uid-a", Result("a", "2026-01-01T00:00:00Z", RunOutcome::kFailed, 2));
  auto dead = Result("a", "2026-01-01T00:01:00Z", RunOutcome::kFailed, 3, dispatcher::Trigger::kManual);
  dead.dead_lettered = true;
  writer_->OnResult("uid-a", dead);
  writer_->OnResult("uid-a", Result("a", "2026-01-01T00:02:00Z", RunOutcome::kCancelled));
  writer_->Flush();
  EXPECT_THAT(events_.Lines(),
              ::testing::ElementsAre(
                  "Warning RunFailed: the occurrence scheduled at 2026-01-01T00:00:00Z failed after 2 attempt(s)",
                  "Warning RunDeadLettered: the run-now handled at 2026-01-01T00:01:00Z failed after 3 attempt(s); "
                  "the worker dead-lettered it"));
  EXPECT_EQ(events_.recorded()[0].ref.uid, "uid-a");
  // A new leader replays them: no more Events.
  auto replay = std::make_unique<StatusWriter>(*client_, lookup_, *aggregator_, clock_, StatusBudget{0, 1},
                                               StatusBudget{0, 1}, nullptr);
  cache_["ns/a"].status.runs = RunHistoryFromJson(Patches("a").back(), nullptr);
  for (int i = 0; i < 3; ++i) replay->OnResult("uid-a", Result("a", "2026-01-01T00:00:00Z", RunOutcome::kFailed, 2));
  replay->OnResult("uid-a", dead);
  EXPECT_EQ(replay->Flush(), 0);
  EXPECT_EQ(events_.Lines().size(), 2U);
  // Thirty failing tasks: RunFailed Events up to ten in the window (the first was
  // a's), then one combined.
  for (int i = 0; i < 30; ++i) {
    ScheduledTask f = Task("f" + std::to_string(i));
    Cache(f);
    writer_->OnResult(f.uid, Result(f.name, "2026-01-01T00:05:00Z", RunOutcome::kFailed));
  }
  writer_->Flush();
  EXPECT_EQ(events_.Lines().size(), 2U + 9U + 1U);
  EXPECT_THAT(events_.Lines().back(), HasSubstr("(combined from 21 similar events in namespace ns"));
}

TEST_F(StatusPathTest, ACompletedOneShotIsReadyAndCompleteUntilItsSpecChanges) {
  Json obj = Json::parse(R"({"metadata": {"namespace": "ns", "name": "once", "uid": "uid-once", "generation": 1},
                             "spec": {"runAt": "2026-01-01T00:00:05Z", "target": {"topic": "t"}}})");
  auto t = ScheduledTaskFromJson(obj);
  ASSERT_TRUE(t && t->def->bounds);
  EXPECT_EQ(t->def->bounds->run_at, "2026-01-01T00:00:05Z");
  EXPECT_EQ(t->def->schedule, "");
  auto same = ScheduledTaskFromJson(obj, &*t);
  EXPECT_EQ(same->def.get(), t->def.get()) << "bounds compare by value: the definition is shared";
  Cache(*t);
  ASSERT_TRUE(reconciler_->Reconcile("ns/once").ok());
  writer_->Flush();
  auto p = Patches("once");
  ASSERT_EQ(p.size(), 1U);
  EXPECT_EQ(p[0]["conditions"][0]["reason"], "Scheduled");
  EXPECT_EQ(p[0]["conditions"][0]["message"], "The task fires once, at spec.runAt");
  EXPECT_EQ(p[0]["conditions"].size(), 1U);

  // The dispatcher fired it: complete.
  sink_.complete.insert("uid-once");
  t->status.conditions = InternConditions(ConditionsFromJson(p[0]));
  Cache(*t);
  ASSERT_TRUE(reconciler_->Reconcile("ns/once").ok());
  writer_->Flush();
  p = Patches("once");
  ASSERT_EQ(p.size(), 2U);
  EXPECT_EQ(p[1]["conditions"][0]["type"], "Ready");
  EXPECT_EQ(p[1]["conditions"][0]["status"], "True");
  EXPECT_EQ(p[1]["conditions"][0]["reason"], "Completed");
  EXPECT_EQ(p[1]["conditions"][0]["message"], "spec.runAt fired at 2026-01-01T00:00:05Z");
  ASSERT_EQ(p[1]["conditions"].size(), 2U);
  EXPECT_EQ(p[1]["conditions"][1]["type"], "Complete");
  EXPECT_EQ(p[1]["conditions"][1]["status"], "True");

  // A new runAt: no longer complete, and the Complete condition goes.
  sink_.complete.clear();
  t->status.conditions = InternConditions(ConditionsFromJson(p[1]));
  t->generation = 2;
  Cache(*t);
  ASSERT_TRUE(reconciler_->Reconcile("ns/once").ok());
  writer_->Flush();
  p = Patches("once");
  ASSERT_EQ(p.size(), 3U);
  EXPECT_EQ(p[2]["conditions"].size(), 1U);
  EXPECT_EQ(p[2]["conditions"][0]["reason"], "Scheduled");
}

// An object's name may be 253 characters long; the Event's name is made from it
// and must stay a valid name (at most 253, no '-' or '.' before the suffix).
TEST(KubeEventRecorder, EventNamesStayValidForTheLongestObjectNames) {
  auto* transport = new RoutedTransport;
  transport->Route("POST /apis/events.k8s.io/v1/namespaces/ns/events", {201, "{}"});
  FakeClock clock;
  kube::KubeClient client{kube::TransportPtr(transport), clock, 1000, 1000};
  KubeEventRecorder recorder(client, clock, "cronlane.dev/operator", "test");
  // "n-n-...n" and "nn-n-...n": wherever the cut falls, one of them has a '-' there.
  std::string dashes_odd, dashes_even = "n";
  for (int i = 0; i < 126; ++i) dashes_odd += "n-", dashes_even += "n-";
  dashes_odd += "n";
  for (const std::string& name : {std::string(253, 'n'), dashes_odd, dashes_even, std::string("short")}) {
    ASSERT_LE(name.size(), 253U);
    recorder.Record({"cronlane.dev/v1alpha1", "ScheduledTask", "ns", name, "u", ""}, "Warning", "R", "A", "note");
  }
  auto sent = transport->Sent("POST", "/events");
  ASSERT_EQ(sent.size(), 4U);
  for (const auto& req : sent) {
    auto body = Json::parse(req.body);
    const std::string event_name = body["metadata"]["name"];
    EXPECT_LE(event_name.size(), 253U) << event_name;
    const std::string head = event_name.substr(0, event_name.rfind('.'));
    EXPECT_TRUE(head.back() != '-' && head.back() != '.') << event_name;
    EXPECT_EQ(body["regarding"]["name"].get<std::string>().substr(0, head.size()), head)
        << "the Event names its object in full";
  }
  EXPECT_EQ(recorder.failures(), 0U);
}

TEST(EventAggregator, WindowResetsAndQueueIsBounded) {
  FakeClock clock;
  RecordingEvents sink;
  EventAggregator agg(sink, clock, {.window = 600s, .max_individual = 2, .combine_interval = 60s, .max_queued = 3});
  ObjectRef ref{"v1", "K", "ns", "o", "u", ""};
  for (int i = 0; i < 5; ++i) agg.Record(ref, "Warning", "R", "A", "n" + std::to_string(i));
  EXPECT_EQ(agg.dropped(), 2U);
  EXPECT_EQ(agg.Flush(), 3) << "two individual, one combined";
  clock.Advance(601s);
  agg.Record(ref, "Warning", "R", "A", "later");
  EXPECT_EQ(agg.Flush(), 1);
  EXPECT_THAT(sink.Lines().back(), ::testing::EndsWith("Warning R: later")) << "a new window sends as it is";
}

TEST(ScheduledTaskFromJson, SharesAnUnchangedDefinitionWithThePreviousObject) {
  Json obj = Json::parse(R"({"metadata": {"namespace": "ns", "name": "a", "uid": "u", "generation": 1},
                             "spec": {"schedule": "0 * * * *", "target": {"topic": "t"}, "payload": {"x": 1}}})");
  auto first = ScheduledTaskFromJson(obj);
  ASSERT_TRUE(first && first->def);
  obj["status"] = {{"firedCount", 3}};  // a status write: same spec
  auto second = ScheduledTaskFromJson(obj, &*first);
  ASSERT_TRUE(second);
  EXPECT_EQ(second->def.get(), first->def.get()) << "one definition, not a copy per update";
  EXPECT_EQ(second->status.fired_count, 3);
  obj["spec"]["schedule"] = "30 * * * *";
  auto third = ScheduledTaskFromJson(obj, &*second);
  EXPECT_NE(third->def.get(), first->def.get());
  EXPECT_EQ(third->def->schedule, "30 * * * *");
}

// Found by tests/fuzz/object_json_fuzz.cpp: a field of another type than the
// schema's threw out of the decoder, and an integer past int's range wrapped into
// one that passed the checks (2^32 + 1 shards fired as 1).
TEST(ScheduledTaskFromJson, OtherTypesReadAsAbsentAndBigNumbersStayOutOfRange) {
  Json obj = Json::parse(R"({"metadata": {"namespace": "ns", "name": "a", "uid": "u"},
                             "spec": {"schedule": "0 * * * *", "suspend": "yes", "shards": 4294967297,
                                      "jitterSeconds": -3, "maxCatchUp": 18446744073709551615,
                                      "execution": {"maxAttempts": 4294967297}}})");
  std::optional<ScheduledTask> t;
  ASSERT_NO_THROW(t = ScheduledTaskFromJson(obj));
  ASSERT_TRUE(t && t->def);
  EXPECT_FALSE(t->def->suspend);
  std::map<std::string, std::string> problems;
  for (const auto& p : dispatcher::TaskProblems(*t->def)) problems[p.field] = p.reason + ": " + p.detail;
  EXPECT_EQ(problems["spec.shards"], "InvalidTarget: 2147483647 is out of range 1-1024");
  EXPECT_EQ(problems["spec.jitterSeconds"], "InvalidSpec: -3 is out of range 0-3600");
  EXPECT_EQ(problems["spec.maxCatchUp"], "InvalidSpec: 2147483647 is out of range 1-10000");
  EXPECT_EQ(problems["spec.execution.maxAttempts"], "InvalidSpec: 2147483647 is out of range 1-100");
  EXPECT_EQ(problems.size(), 4U);

  Json pool = Json::parse(R"({"metadata": {"namespace": "ns", "name": "p", "uid": "u"},
                              "spec": {"topic": "t", "allowIdleConsumers": "true"}})");
  std::optional<WorkerPool> p;
  ASSERT_NO_THROW(p = WorkerPoolFromJson(pool));
  ASSERT_TRUE(p);
  EXPECT_FALSE(p->spec.allow_idle_consumers);
}

TEST(ScheduledTaskFromJson, EqualConditionsAreOneSharedCopyAcrossTasks) {
  auto with_ready = [](const std::string& name, const std::string& since) {
    Json o = Json::parse(R"({"metadata": {"namespace": "ns", "uid": "u", "generation": 1},
                             "spec": {"schedule": "0 * * * *", "target": {"topic": "t"}}})");
    o["metadata"]["name"] = name;
    o["status"] = {{"conditions",
                    {{{"type", "Ready"},
                      {"status", "True"},
                      {"reason", "Scheduled"},
                      {"message", "The task fires according to spec.schedule"},
                      {"lastTransitionTime", since},
                      {"observedGeneration", 1}}}}};
    return *ScheduledTaskFromJson(o);
  };
  ScheduledTask a = with_ready("a", "2026-01-01T00:00:00Z");
  ScheduledTask b = with_ready("b", "2026-01-01T00:00:00Z");
  ScheduledTask c = with_ready("c", "2026-01-01T00:00:01Z");
  ASSERT_NE(a.status.Find("Ready"), nullptr);
  EXPECT_EQ(a.status.Find("Ready")->reason, "Scheduled");
  EXPECT_EQ(a.status.conditions.get(), b.status.conditions.get()) << "equal conditions: one copy";
  EXPECT_NE(a.status.conditions.get(), c.status.conditions.get()) << "another transition time: another copy";
  EXPECT_EQ(a.status, b.status);
  EXPECT_NE(a.status, c.status) << "compared by value";
  ScheduledTask none = *ScheduledTaskFromJson(
      Json::parse(R"({"metadata": {"namespace": "ns", "name": "n", "uid": "u"}, "spec": {"schedule": "0 * * * *"}})"));
  EXPECT_EQ(none.status.conditions, nullptr);
  EXPECT_TRUE(none.status.Conditions().empty());
}

}  // namespace
}  // namespace cronlane::op

namespace cronlane::op {
namespace {

struct IntHash {
  size_t operator()(int v) const { return std::hash<int>{}(v); }
};

TEST(Interner, SharesEqualValuesAndForgetsThoseNobodyHolds) {
  Interner<int, IntHash> interner;
  auto kept = interner.Intern(7);
  EXPECT_EQ(interner.Intern(7).get(), kept.get()) << "an equal value held elsewhere is shared";
  for (int i = 0; i < 5000; ++i) (void)interner.Intern(1000 + i);  // released at once
  EXPECT_LT(interner.size(), 2100U) << "released values are swept, the table does not grow with every value";
  EXPECT_EQ(interner.Intern(7).get(), kept.get()) << "a held value survives the sweeps";
}

}  // namespace
}  // namespace cronlane::op
