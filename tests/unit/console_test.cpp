// Unit tests of the console's API (operator/console.h): the overview built from
// cached objects on simulated time — fires of the next hour in the task's zone,
// which tasks are shown first, recent runs across tasks, the namespace filter,
// WorkerPool history — and the embedded page.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>

#include "operator/console.h"

namespace cronlane::op {
namespace {

using kube::Json;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using namespace std::chrono_literals;

// 2026-01-01T08:00:05Z
const auto kStart = std::chrono::system_clock::time_point(1'767'254'405s);

class ConsoleTest : public ::testing::Test {
 protected:
  ConsoleTest() : clock_(kStart) {}

  void AddTask(const std::string& ns, const std::string& name, Json spec, Json status = Json::object()) {
    Json o = {{"metadata",
               {{"namespace", ns},
                {"name", name},
                {"uid", "uid-" + name},
                {"generation", 1},
                {"creationTimestamp", "2025-12-01T00:00:00Z"}}},
              {"spec", std::move(spec)},
              {"status", std::move(status)}};
    auto t = ScheduledTaskFromJson(o);
    ASSERT_TRUE(t.has_value());
    tasks_[t->Key()] = *t;
  }
  void SetPool(const std::string& ns, const std::string& name, std::optional<int64_t> lag, int replicas) {
    Json status = {{"currentReplicas", replicas}, {"desiredReplicas", replicas}};
    if (lag) status["lag"] = *lag;
    auto p = WorkerPoolFromJson(
        {{"metadata", {{"namespace", ns}, {"name", name}, {"uid", "uid-" + name}, {"generation", 1}}},
         {"spec", {{"scaleTargetRef", {{"name", "workers"}}}, {"topic", "jobs"}}},
         {"status", status}});
    ASSERT_TRUE(p.has_value());
    pools_[p->Key()] = *p;
  }
  Console& Make(const ConsoleOptions& options = {}) {
    console_ =
        std::make_unique<Console>(ConsoleSource{.task_keys =
                                                    [this] {
                                                      std::vector<std::string> keys;
                                                      for (const auto& [k, t] : tasks_) keys.push_back(k);
                                                      return keys;
                                                    },
                                                .task = [this](const std::string& key) -> std::optional<ScheduledTask> {
                                                  auto it = tasks_.find(key);
                                                  if (it == tasks_.end()) return std::nullopt;
                                                  return it->second;
                                                },
                                                .pools =
                                                    [this] {
                                                      std::vector<WorkerPool> out;
                                                      for (const auto& [k, p] : pools_) out.push_back(p);
                                                      return out;
                                                    },
                                                .backfills = nullptr},
                                  clock_, options);
    return *console_;
  }
  Json Overview(const std::string& ns = "") { return Json::parse(console_->Overview(ns)); }
  static const Json& Task(const Json& overview, const std::string& name) {
    for (const auto& t : overview["tasks"]) {
      if (t["name"] == name) return t;
    }
    static const Json none;
    ADD_FAILURE() << "no task " << name << " in " << overview.dump();
    return none;
  }
  static std::vector<std::string> Names(const Json& overview) {
    std::vector<std::string> out;
    for (const auto& t : overview["tasks"]) out.push_back(t["name"]);
    return out;
  }

  FakeClock clock_;
  std::map<std::string, ScheduledTask> tasks_;
  std::map<std::string, WorkerPool> pools_;
  std::unique_ptr<Console> console_;
};

const Json kReady = {{"conditions", {{{"type", "Ready"}, {"status", "True"}, {"reason", "Scheduled"}}}}};

TEST_F(ConsoleTest, ListsTheNextHoursFiresInTheTasksZone) {
  AddTask("ns", "ten", {{"schedule", "*/10 * * * *"}, {"target", {{"topic", "jobs"}}}}, kReady);
  // 09:30 in Berlin is 08:30Z in winter; 17:00 in New York is outside the hour.
  AddTask("ns", "berlin", {{"schedule", "30 9 * * *"}, {"timeZone", "Europe/Berlin"}, {"target", {{"topic", "j"}}}},
          kReady);
  AddTask("ns", "ny", {{"schedule", "0 17 * * *"}, {"timeZone", "America/New_York"}, {"target", {{"topic", "j"}}}},
          kReady);
  Make();
  Json o = Overview();
  EXPECT_EQ(o["now"], "2026-01-01T08:00:05Z");
  EXPECT_EQ(o["horizonSeconds"], 3600);
  EXPECT_EQ(Task(o, "ten")["fires"], Json({"2026-01-01T08:10:00Z", "2026-01-01T08:20:00Z", "2026-01-01T08:30:00Z",
                                           "2026-01-01T08:40:00Z", "2026-01-01T08:50:00Z", "2026-01-01T09:00:00Z"}));
  EXPECT_EQ(Task(o, "berlin")["fires"], Json({"2026-01-01T08:30:00Z"}));
  EXPECT_EQ(Task(o, "berlin")["timeZone"], "Europe/Berlin");
  EXPECT_EQ(Task(o, "ny")["fires"], Json::array());
  EXPECT_EQ(Task(o, "ten")["firesCut"], false);
  EXPECT_EQ(Task(o, "ten")["fireCount"], 6);
  EXPECT_EQ(Task(o, "ten")["lastFire"], "2026-01-01T09:00:00Z");
  EXPECT_EQ(Task(o, "ny")["lastFire"], nullptr);
  EXPECT_EQ(Task(o, "ten")["ready"]["status"], "True");
}

TEST_F(ConsoleTest, CutsATaskThatFiresMoreOftenThanItDraws) {
  AddTask("ns", "every-second", {{"schedule", "* * * * * *"}, {"target", {{"topic", "jobs"}}}}, kReady);
  Make(ConsoleOptions{.max_fires_per_task = 30});
  Json t = Task(Overview(), "every-second");
  ASSERT_EQ(t["fires"].size(), 30U);
  EXPECT_EQ(t["fires"][0], "2026-01-01T08:00:06Z");
  EXPECT_EQ(t["firesCut"], true);
  // The count and the last fire of the hour are still exact: now < fire < now + 1 h.
  EXPECT_EQ(t["fireCount"], 3599);
  EXPECT_EQ(t["lastFire"], "2026-01-01T09:00:04Z");
}

TEST_F(ConsoleTest, ShowsProblemsFirstThenTheSoonestAndSaysHowManyAreLeftOut) {
  Json soon = kReady, later = kReady,
       broken = {{"conditions",
                  {{{"type", "Ready"},
                    {"status", "False"},
                    {"reason", "InvalidSchedule"},
                    {"message", "spec.schedule: bad"}}}}};
  soon["nextScheduleTime"] = "2026-01-01T08:01:00Z";
  later["nextScheduleTime"] = "2026-01-01T08:30:00Z";
  AddTask("ns", "a-later", {{"schedule", "30 * * * *"}, {"target", {{"topic", "j"}}}}, later);
  AddTask("ns", "b-soon", {{"schedule", "* * * * *"}, {"target", {{"topic", "j"}}}}, soon);
  AddTask("ns", "c-suspended", {{"schedule", "* * * * *"}, {"suspend", true}, {"target", {{"topic", "j"}}}}, kReady);
  AddTask("ns", "d-broken", {{"schedule", "61 * * * *"}, {"target", {{"topic", "j"}}}}, broken);
  Make();
  Json o = Overview();
  EXPECT_THAT(Names(o), ElementsAre("d-broken", "b-soon", "a-later", "c-suspended"));
  EXPECT_THAT(Task(o, "d-broken")["problem"].get<std::string>(), HasSubstr("spec.schedule"));
  EXPECT_EQ(Task(o, "d-broken")["ready"]["reason"], "InvalidSchedule");
  EXPECT_EQ(Task(o, "c-suspended")["fires"], Json::array());
  EXPECT_EQ(Task(o, "c-suspended")["suspended"], true);
  EXPECT_EQ(o["tasksTotal"], 4);

  Make(ConsoleOptions{.max_tasks = 2});
  o = Overview();
  EXPECT_THAT(Names(o), ElementsAre("d-broken", "b-soon"));
  EXPECT_EQ(o["tasksTotal"], 4);
}

TEST_F(ConsoleTest, MergesRecentRunsOfAllTasksNewestFirst) {
  Json a = kReady, b = kReady;
  a["recentRuns"] = {{{"trigger", "Schedule"},
                      {"scheduledTime", "2026-01-01T07:59:00Z"},
                      {"finishedTime", "2026-01-01T07:59:30Z"},
                      {"outcome", "Succeeded"},
                      {"attempts", 1},
                      {"durationMs", 30000}},
                     {{"trigger", "Schedule"},
                      {"scheduledTime", "2026-01-01T07:50:00Z"},
                      {"finishedTime", "2026-01-01T07:50:02Z"},
                      {"outcome", "Failed"},
                      {"attempts", 3},
                      {"durationMs", 2000}}};
  b["recentRuns"] = {{{"trigger", "Manual"},
                      {"scheduledTime", "2026-01-01T07:55:00Z"},
                      {"finishedTime", "2026-01-01T07:55:01Z"},
                      {"outcome", "Cancelled"},
                      {"attempts", 1},
                      {"durationMs", 1000},
                      {"deadLettered", true}}};
  AddTask("ns", "a", {{"schedule", "* * * * *"}, {"target", {{"topic", "j"}}}}, a);
  AddTask("other", "b", {{"schedule", "* * * * *"}, {"target", {{"topic", "j"}}}}, b);
  Make(ConsoleOptions{.max_runs = 2});
  Json o = Overview();
  ASSERT_EQ(o["recentRuns"].size(), 2U);
  EXPECT_EQ(o["recentRuns"][0]["task"], "a");
  EXPECT_EQ(o["recentRuns"][0]["outcome"], "Succeeded");
  EXPECT_EQ(o["recentRuns"][1]["task"], "b");
  EXPECT_EQ(o["recentRuns"][1]["namespace"], "other");
  EXPECT_EQ(o["recentRuns"][1]["deadLettered"], true);
  EXPECT_EQ(Task(o, "a")["lastRun"]["outcome"], "Succeeded");

  // The namespace filter keeps only that namespace's tasks and runs, and lists them all.
  Json other = Overview("other");
  EXPECT_THAT(Names(other), ElementsAre("b"));
  ASSERT_EQ(other["recentRuns"].size(), 1U);
  EXPECT_EQ(other["recentRuns"][0]["task"], "b");
  EXPECT_EQ(other["namespaces"], Json({"ns", "other"}));
}

TEST_F(ConsoleTest, KeepsEachPoolsLagAndReplicasOverTheWindowAndForgetsDeletedPools) {
  SetPool("ns", "pool", 40, 2);
  SetPool("ns", "gone", std::nullopt, 0);
  Make(ConsoleOptions{.pool_history = 60s, .reuse = 0ms});
  console_->Sample();
  clock_.Advance(30s);
  SetPool("ns", "pool", 10, 3);
  console_->Sample();
  Json o = Overview();
  ASSERT_EQ(o["workerPools"].size(), 2U);
  EXPECT_EQ(o["workerPools"][1]["name"], "pool");
  EXPECT_EQ(o["workerPools"][1]["lag"], 10);
  EXPECT_EQ(o["workerPools"][1]["history"], Json({{1'767'254'405, 40, 2, 2}, {1'767'254'435, 10, 3, 3}}));
  EXPECT_EQ(o["workerPools"][0]["history"], Json({{1'767'254'405, nullptr, 0, 0}, {1'767'254'435, nullptr, 0, 0}}));

  // 61 s after the first sample it leaves the window; a deleted pool leaves the history.
  pools_.erase("ns/gone");
  clock_.Advance(31s);
  console_->Sample();
  SetPool("ns", "gone", 5, 1);  // re-created: starts a new history
  console_->Sample();
  o = Overview();
  EXPECT_EQ(o["workerPools"][1]["history"].size(), 3U);  // 435, 466 and the second sample at 466
  EXPECT_EQ(o["workerPools"][1]["history"][0][0], 1'767'254'435);
  EXPECT_EQ(o["workerPools"][0]["history"], Json({{1'767'254'466, 5, 1, 1}}));
}

TEST_F(ConsoleTest, ServesTheSameOverviewWithinTheReuseWindow) {
  AddTask("ns", "a", {{"schedule", "* * * * *"}, {"target", {{"topic", "j"}}}}, kReady);
  Make(ConsoleOptions{.reuse = 1000ms});
  EXPECT_EQ(Overview()["tasksTotal"], 1);
  AddTask("ns", "b", {{"schedule", "* * * * *"}, {"target", {{"topic", "j"}}}}, kReady);
  EXPECT_EQ(Overview()["tasksTotal"], 1);
  EXPECT_EQ(Overview("ns")["tasksTotal"], 2);  // another filter is another overview
  clock_.Advance(1s);
  EXPECT_EQ(Overview()["tasksTotal"], 2);
}

TEST_F(ConsoleTest, ThePageIsEmbeddedWholeAndReadsTheApi) {
  std::string_view page = Console::Page();
  EXPECT_THAT(std::string(page), HasSubstr("<!doctype html>"));
  EXPECT_THAT(std::string(page), HasSubstr("api/v1/overview"));
  EXPECT_THAT(std::string(page), HasSubstr("</html>"));
  EXPECT_EQ(std::string(kConsoleOverviewPath), "/api/v1/overview");
}

}  // namespace
}  // namespace cronlane::op
