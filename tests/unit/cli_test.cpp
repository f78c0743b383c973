#include "cli/backfill_command.h"
#include "cli/completion.h"
#include "cli/next_command.h"
#include "cli/shard_command.h"
#include "cli/status_command.h"
#include "cli/trigger_command.h"
#include "common/time.h"
#include "common/zone.h"
#include "dispatcher/task.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <fstream>
#include <sstream>

namespace cronlane::cli {
namespace {

TEST(CliNext, PrintsUtcInstantsStrictlyAfterFrom) {
  std::ostringstream out, err;
  NextOptions o{
      .schedules = {"0 13 * * *"}, .time_zone = "", .from = "2026-03-09T13:00:00Z", .count = 3, .local = false};
  EXPECT_EQ(RunNext(o, out, err), 0);
  EXPECT_EQ(out.str(), "2026-03-10T13:00:00Z\n2026-03-11T13:00:00Z\n2026-03-12T13:00:00Z\n");
  EXPECT_EQ(err.str(), "");
}

TEST(CliNext, LocalAddsTheZonedTime) {
  std::ostringstream out, err;
  NextOptions o{.schedules = {"30 1 * * *"},
                .time_zone = "America/New_York",
                .from = "2026-11-01T00:00:00Z",
                .count = 2,
                .local = true};
  EXPECT_EQ(RunNext(o, out, err), 0);
  EXPECT_EQ(out.str(),
            "2026-11-01T05:30:00Z  2026-11-01T01:30:00-04:00 (EDT)\n"
            "2026-11-01T06:30:00Z  2026-11-01T01:30:00-05:00 (EST)\n");
}

TEST(CliNext, InvalidInputIsOneLineAndExitTwo) {
  for (NextOptions o :
       {NextOptions{.schedules = {"0 0 32 * *"}}, NextOptions{.schedules = {"* * * * *"}, .time_zone = "Nowhere/City"},
        NextOptions{.schedules = {"* * * * *"}, .from = "tomorrow"},
        NextOptions{.schedules = {"* * * * *"}, .count = 0}}) {
    std::ostringstream out, err;
    EXPECT_EQ(RunNext(o, out, err), 2) << o.schedules.size();
    EXPECT_EQ(out.str(), "");
    std::string e = err.str();
    ASSERT_FALSE(e.empty());
    EXPECT_EQ(e.find('\n'), e.size() - 1) << "exactly one line: " << e;
    EXPECT_THAT(e, ::testing::StartsWith("cronlane next: "));
  }
}

TEST(CliShard, PrintsTheShardTheOperatorComputes) {
  // Expected values from an independent FNV-1a (Python) of the UIDs: the range
  // layout (the default) and the modulo one.
  std::ostringstream out, err;
  std::istringstream in;
  ShardOptions o{.shards = 16, .uids = {"abc", "5f1c7a2e-3b1d-4c55-9d2a-0c6e8f1b2a3d"}};
  EXPECT_EQ(RunShard(o, in, out, err), 0);
  EXPECT_EQ(out.str(),
            "abc 14 cronlane-operator-shard-14\n"
            "5f1c7a2e-3b1d-4c55-9d2a-0c6e8f1b2a3d 6 cronlane-operator-shard-6\n");
  EXPECT_EQ(err.str(), "");
  std::ostringstream out2;
  o.layout = "modulo";
  EXPECT_EQ(RunShard(o, in, out2, err), 0);
  EXPECT_EQ(out2.str(),
            "abc 13 cronlane-operator-shard-13\n"
            "5f1c7a2e-3b1d-4c55-9d2a-0c6e8f1b2a3d 5 cronlane-operator-shard-5\n");
  std::ostringstream out3, err3;
  o.layout = "hash";
  EXPECT_EQ(RunShard(o, in, out3, err3), 2);
  EXPECT_EQ(out3.str(), "");
  EXPECT_THAT(err3.str(), ::testing::HasSubstr("--shard-layout must be range or modulo"));
}

TEST(CliShard, ReadsUidsFromStdinAndRefusesBadInput) {
  std::ostringstream out, err;
  std::istringstream in("abc\r\n\n5f1c7a2e-3b1d-4c55-9d2a-0c6e8f1b2a3d\n");
  EXPECT_EQ(RunShard({.shards = 8, .uids = {}, .lease_prefix = "x"}, in, out, err), 0);
  EXPECT_EQ(out.str(), "abc 7 x-shard-7\n5f1c7a2e-3b1d-4c55-9d2a-0c6e8f1b2a3d 3 x-shard-3\n");
  std::ostringstream out2, err2;
  std::istringstream none;
  EXPECT_EQ(RunShard({.shards = 0, .uids = {"abc"}}, none, out2, err2), 2);
  EXPECT_EQ(out2.str(), "");
  EXPECT_THAT(err2.str(), ::testing::HasSubstr("--shards must be at least 1"));
}

}  // namespace
}  // namespace cronlane::cli

namespace cronlane::cli {
namespace {

TEST(Trigger, PrintsAnAnnotateCommandWithAFreshToken) {
  TriggerOptions o;
  o.task = "team/report";
  o.now = std::chrono::system_clock::time_point(std::chrono::seconds(1796144400));  // 2026-12-01T17:00:00Z
  o.random = 0xa1b2c3;
  std::ostringstream out, err;
  ASSERT_EQ(RunTrigger(o, out, err), 0) << err.str();
  EXPECT_EQ(out.str(),
            "kubectl annotate --overwrite -n team scheduledtask/report cronlane.dev/run-now=20261201T170000Z-a1b2c3 "
            "cronlane.dev/run-now-force=false\n");
  EXPECT_TRUE(dispatcher::ValidRunToken(FreshRunToken(o.now, 0xffffffff)));
  EXPECT_NE(FreshRunToken(o.now, 0xa1b2c3), FreshRunToken(o.now, 0xa1b2c4)) << "two triggers in one second differ";

  TriggerOptions p;
  p.task = "report";
  p.force = true;
  p.token = "manual-1";
  p.output = "patch";
  std::ostringstream out2;
  ASSERT_EQ(RunTrigger(p, out2, err), 0) << err.str();
  EXPECT_EQ(out2.str(),
            R"({"metadata":{"annotations":{"cronlane.dev/run-now":"manual-1","cronlane.dev/run-now-force":"true"}}})"
            "\n");
}

TEST(Trigger, RefusesABadTokenTaskOrOutput) {
  std::ostringstream out, err;
  EXPECT_EQ(RunTrigger({.task = "team/report", .token = "a b"}, out, err), 2);
  EXPECT_THAT(err.str(), ::testing::HasSubstr("not a run-now token"));
  for (const char* task : {"", "team/", "/report", "Team/report", "team/report;rm -rf /", "a/b/c"}) {
    std::ostringstream e;
    EXPECT_EQ(RunTrigger({.task = task, .token = "t"}, out, e), 2) << task;
  }
  std::ostringstream e;
  EXPECT_EQ(RunTrigger({.task = "report", .token = "t", .output = "yaml"}, out, e), 2);
  EXPECT_TRUE(out.str().empty()) << "nothing printed for a refused trigger";
}

}  // namespace
}  // namespace cronlane::cli

namespace cronlane::cli {
namespace {

TEST(Next, RepeatedSchedulesPrintTheirUnionOnce) {
  NextOptions o{.schedules = {"0 9 * * *", "0 9,17 * * *"}, .from = "2026-12-01T00:00:00Z", .count = 4};
  std::ostringstream out, err;
  ASSERT_EQ(RunNext(o, out, err), 0) << err.str();
  EXPECT_EQ(out.str(), "2026-12-01T09:00:00Z\n2026-12-01T17:00:00Z\n2026-12-02T09:00:00Z\n2026-12-02T17:00:00Z\n")
      << "09:00 both select fires once";
  o.schedules.push_back("0 0 32 * *");
  std::ostringstream e;
  EXPECT_EQ(RunNext(o, out, e), 2);
  EXPECT_THAT(e.str(), ::testing::StartsWith("cronlane next: --schedule: "));
}

// kubectl get st -o yaml | cronlane next -f -: the manifest's schedule(s), bounds,
// runAt and time zone, exactly as the dispatcher reads them.
TEST(Next, PreviewsTheTasksOfAManifest) {
  const std::string path = ::testing::TempDir() + "/next-manifest.yaml";
  {
    std::ofstream f(path);
    f << "apiVersion: cronlane.dev/v1alpha1\nkind: ScheduledTask\nmetadata: {name: two, namespace: team}\n"
         "spec:\n  schedules:\n  - schedule: \"0 9 * * *\"\n  - {schedule: \"30 9 * * *\", jitterSeconds: 5}\n"
         "  timeZone: Europe/Berlin\n  endTime: \"2026-12-02T09:15:00\"\n  target: {topic: t}\n"
         "---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: other}\n"
         "---\napiVersion: v1\nkind: List\nitems:\n- apiVersion: cronlane.dev/v1alpha1\n  kind: ScheduledTask\n"
         "  metadata: {name: once, namespace: team}\n  spec: {runAt: \"2026-12-24T18:00:00Z\", target: {topic: t}}\n";
  }
  NextOptions o{.from = "2026-12-01T00:00:00Z", .count = 10, .file = path};
  std::ostringstream out, err;
  ASSERT_EQ(RunNext(o, out, err), 0) << err.str();
  EXPECT_EQ(out.str(),
            "# team/two\n2026-12-01T08:00:00Z\n2026-12-01T08:30:00Z\n2026-12-02T08:00:00Z\n"
            "# team/once\n2026-12-24T18:00:00Z\n");

  // One task: no header. Flags that the manifest decides are refused with -f.
  {
    std::ofstream f(path);
    f << "kind: ScheduledTask\nspec: {schedule: \"0 0 1 1 *\", target: {topic: t}}\n";
  }
  std::ostringstream one;
  o.count = 1;
  ASSERT_EQ(RunNext(o, one, err), 0) << err.str();
  EXPECT_EQ(one.str(), "2027-01-01T00:00:00Z\n");
  for (NextOptions bad : {NextOptions{.schedules = {"* * * * *"}, .file = path},
                          NextOptions{.time_zone = "UTC", .file = path}, NextOptions{.file = path + ".missing"}}) {
    std::ostringstream e;
    EXPECT_EQ(RunNext(bad, out, e), 2) << bad.file;
    EXPECT_FALSE(e.str().empty());
  }
  {
    std::ofstream f(path);
    f << "kind: ScheduledTask\nspec: {schedule: \"0 0 32 * *\", target: {topic: t}}\n---\nkind: WorkerPool\n";
  }
  std::ostringstream e;
  EXPECT_EQ(RunNext(o, out, e), 2);
  EXPECT_THAT(e.str(), ::testing::HasSubstr("spec.schedule: ")) << "a manifest's problem names its field";
  {
    std::ofstream f(path);
    f << "kind: WorkerPool\nspec: {}\n";
  }
  std::ostringstream none;
  EXPECT_EQ(RunNext(o, out, none), 2);
  EXPECT_THAT(none.str(), ::testing::HasSubstr("no ScheduledTask"));
}

TEST(Next, HonoursRunAtStartAndEnd) {
  NextOptions o;
  o.schedules = {"0 9 * * *"};
  o.time_zone = "Europe/Berlin";
  o.start = "2026-12-30T00:00:00";
  o.end = "2027-01-01T09:00:00";  // exclusive: New Year's 09:00 does not fire
  o.from = "2026-12-01T00:00:00Z";
  o.count = 10;
  std::ostringstream out, err;
  ASSERT_EQ(RunNext(o, out, err), 0) << err.str();
  EXPECT_EQ(out.str(), "2026-12-30T08:00:00Z\n2026-12-31T08:00:00Z\n");

  NextOptions once;
  once.run_at = "2026-12-24T18:00:00+01:00";
  once.from = "2026-12-01T00:00:00Z";
  std::ostringstream out2;
  ASSERT_EQ(RunNext(once, out2, err), 0) << err.str();
  EXPECT_EQ(out2.str(), "2026-12-24T17:00:00Z\n") << "once, however large --count";

  for (NextOptions bad :
       {NextOptions{}, NextOptions{.schedules = {"* * * * *"}, .run_at = "2026-12-24T18:00:00Z"},
        NextOptions{.run_at = "2026-12-24T18:00:00Z", .end = "2026-12-25T00:00:00Z"},
        NextOptions{.schedules = {"* * * * *"}, .start = "2027-01-01T00:00:00Z", .end = "2026-01-01T00:00:00Z"},
        NextOptions{.run_at = "someday"}}) {
    std::ostringstream e;
    EXPECT_EQ(RunNext(bad, out, e), 2) << bad.schedules.size() << bad.run_at;
    EXPECT_FALSE(e.str().empty());
  }
}

TEST(Backfill, PrintsAManifestForKubectlCreate) {
  std::ostringstream out, err;
  ASSERT_EQ(RunBackfill({.task = "team/report",
                         .from = "2026-11-01T00:00:00Z",
                         .to = "2026-11-02T00:00:00+01:00",
                         .max_per_second = 20,
                         .order = "NewestFirst"},
                        out, err),
            0)
      << err.str();
  EXPECT_EQ(out.str(),
            "apiVersion: cronlane.dev/v1alpha1\nkind: Backfill\nmetadata:\n  generateName: report-backfill-\n"
            "  namespace: team\nspec:\n  taskName: report\n  from: \"2026-11-01T00:00:00Z\"\n"
            "  to: \"2026-11-01T23:00:00Z\"\n  maxPerSecond: 20\n  order: NewestFirst\n");
  std::ostringstream named;
  ASSERT_EQ(RunBackfill({.task = "report", .from = "2026-11-01T00:00:00Z", .to = "2026-11-02T00:00:00Z", .name = "nov"},
                        named, err),
            0);
  EXPECT_THAT(named.str(), ::testing::HasSubstr("metadata:\n  name: nov\nspec:"));
  EXPECT_THAT(named.str(), ::testing::HasSubstr("maxPerSecond: 10\n  order: OldestFirst"));
  // What the CRD would refuse is refused here, in one line.
  for (BackfillOptions bad :
       {BackfillOptions{.task = "Team/x", .from = "2026-11-01T00:00:00Z", .to = "2026-11-02T00:00:00Z"},
        BackfillOptions{.task = "x", .from = "2026-11-01T00:00:00Z", .to = "2026-11-02T00:00:00Z", .name = "team/y"},
        BackfillOptions{.task = "x", .from = "2026-11-02T00:00:00Z", .to = "2026-11-01T00:00:00Z"},
        BackfillOptions{.task = "x", .from = "2026-11-01T00:00:00", .to = "2026-11-02T00:00:00Z"},
        BackfillOptions{.task = "x", .from = "2026-11-01T00:00:00Z", .to = ""},
        BackfillOptions{
            .task = "x", .from = "2026-11-01T00:00:00Z", .to = "2026-11-02T00:00:00Z", .max_per_second = 1001},
        BackfillOptions{.task = "x", .from = "2026-11-01T00:00:00Z", .to = "2026-11-02T00:00:00Z", .order = "Random"},
        BackfillOptions{.task = "x", .from = "2026-11-01T00:00:00Z", .to = "2026-11-02T00:00:00Z", .dry_run = true}}) {
    std::ostringstream o, e;
    EXPECT_EQ(RunBackfill(bad, o, e), 2) << bad.task << " " << bad.from << " " << bad.to;
    EXPECT_EQ(o.str(), "");
    const std::string message = e.str();
    EXPECT_EQ(std::count(message.begin(), message.end(), '\n'), 1) << message;
  }
}

TEST(Backfill, DryRunPrintsTheOccurrencesOfTheManifest) {
  const std::string path = ::testing::TempDir() + "/backfill-task.yaml";
  {
    std::ofstream f(path);
    // As `kubectl get st report -o yaml` prints it: created at 00:05:30.
    f << "apiVersion: cronlane.dev/v1alpha1\nkind: ScheduledTask\n"
         "metadata: {name: report, namespace: team, creationTimestamp: \"2026-11-01T00:05:30Z\"}\n"
         "spec:\n  schedule: \"*/2 * * * *\"\n  timeZone: Europe/Berlin\n  target: {topic: t}\n";
  }
  BackfillOptions o{.task = "team/report",
                    .from = "2026-11-01T00:00:00Z",
                    .to = "2026-11-02T00:00:00Z",
                    .order = "NewestFirst",
                    .dry_run = true,
                    .file = path};
  std::ostringstream out, err;
  ASSERT_EQ(RunBackfill(o, out, err), 0) << err.str();
  EXPECT_EQ(out.str(),
            "2026-11-01T00:04:00Z\n2026-11-01T00:02:00Z\n2026-11-01T00:00:00Z\n"
            "# 3 occurrence(s) of team/report from 2026-11-01T00:00:00Z to 2026-11-01T00:05:30Z (clipped at the "
            "task's creationTimestamp), NewestFirst, at most 10 per second: about 1 s\n");
  std::ostringstream other, e1;
  o.task = "team/other";
  EXPECT_EQ(RunBackfill(o, other, e1), 2);
  EXPECT_THAT(e1.str(), ::testing::HasSubstr("no ScheduledTask team/other"));
  // "@every" counts from the task's creation, as the operator anchors it: every
  // instant is after the creation, so a backfill of it is empty, and status's next
  // fires keep the creation's phase.
  {
    std::ofstream f(path);
    f << "kind: ScheduledTask\nmetadata: {name: hourly, creationTimestamp: \"2026-11-01T00:30:00Z\"}\n"
         "spec: {schedule: \"@every 1h\", target: {topic: t}}\n";
  }
  std::ostringstream every, e0;
  ASSERT_EQ(RunBackfill({.task = "hourly",
                         .from = "2026-10-31T00:00:00Z",
                         .to = "2026-11-02T00:00:00Z",
                         .dry_run = true,
                         .file = path},
                        every, e0),
            0)
      << e0.str();
  EXPECT_THAT(every.str(), ::testing::StartsWith("# 0 occurrence(s) of hourly"));
  std::ostringstream shown;
  RenderStatus(nlohmann::json::parse(R"({"metadata": {"name": "hourly", "creationTimestamp": "2026-11-01T00:30:00Z"},
                                         "spec": {"schedule": "@every 1h", "target": {"topic": "t"}}})"),
               nullptr, *ParseRfc3339("2026-11-01T02:00:00Z"), nullptr, 1, shown);
  EXPECT_THAT(shown.str(), ::testing::HasSubstr("Next fires:\n  2026-11-01T02:30:00+00:00 (UTC)"));
  {
    std::ofstream f(path);
    f << "apiVersion: cronlane.dev/v1alpha1\nkind: ScheduledTask\n"
         "metadata: {name: report, namespace: team, creationTimestamp: \"2026-11-01T00:05:30Z\"}\n"
         "spec:\n  schedule: \"*/2 * * * *\"\n  timeZone: Europe/Berlin\n  target: {topic: t}\n";
  }
  std::ostringstream big, e2;
  o.task = "report";
  o.from = "2000-01-01T00:00:00Z";
  EXPECT_EQ(RunBackfill(o, big, e2), 2);
  EXPECT_THAT(e2.str(), ::testing::HasSubstr("TooManyOccurrences"));
}

TEST(Status, RendersScheduleNextFiresRunsAndTheServingPool) {
  const auto task = nlohmann::json::parse(R"({
    "metadata": {"namespace": "team", "name": "report"},
    "spec": {"schedule": "0 9 * * 1-5", "timeZone": "Europe/Berlin", "target": {"topic": "reports"}},
    "status": {"conditions": [{"type": "Ready", "status": "True", "reason": "Scheduled", "message": "next at 9"}],
               "lastScheduleTime": "2026-12-01T08:00:00Z", "firedCount": 7, "missedCount": 0,
               "recentRuns": [{"trigger": "Scheduled", "scheduledTime": "2026-12-01T08:00:00Z",
                               "finishedTime": "2026-12-01T08:00:03Z", "outcome": "Failed", "attempts": 3,
                               "durationMs": 1200, "deadLettered": true}]}})");
  const auto pools = nlohmann::json::parse(R"({"items": [
    {"metadata": {"name": "reporters"}, "spec": {"topic": "reports"},
     "status": {"lag": 4, "currentReplicas": 1, "desiredReplicas": 2,
                "conditions": [{"type": "Ready", "status": "True", "reason": "Measured"}]}},
    {"metadata": {"name": "others"}, "spec": {"topic": "other"}},
    {"metadata": {"name": "mixed"}, "spec": {"topics": ["other", "reports"]},
     "status": {"lag": 9, "currentReplicas": 3, "desiredReplicas": 3,
                "conditions": [{"type": "Ready", "status": "True", "reason": "Measured"}]}}]})");
  auto ny = LocateZone("America/New_York");
  ASSERT_TRUE(ny.ok());
  std::ostringstream out;
  RenderStatus(task, pools, *ParseRfc3339("2026-12-04T12:00:00Z"), *ny, 2, out);
  EXPECT_EQ(out.str(),
            "ScheduledTask team/report\n"
            "  schedule:    0 9 * * 1-5\n"
            "  timeZone:    Europe/Berlin\n"
            "  topic:       reports\n"
            "  suspended:   no\n"
            "  Ready:       True Scheduled: next at 9\n"
            "  last fired:  2026-12-01T08:00:00Z   last success: -   fired: 7   missed: 0\n"
            "\nNext fires:\n"
            "  2026-12-07T09:00:00+01:00 (CET)   local 2026-12-07T03:00:00-05:00 (EST)\n"
            "  2026-12-08T09:00:00+01:00 (CET)   local 2026-12-08T03:00:00-05:00 (EST)\n"
            "\nRecent runs (newest first):\n"
            "  SCHEDULED              TRIGGER    OUTCOME    ATTEMPTS  DURATION  FINISHED\n"
            "  2026-12-01T08:00:00Z   Scheduled  Failed     3         1200ms    2026-12-01T08:00:03Z  dead-lettered\n"
            "\nWorkerPools consuming reports:\n"
            "  reporters: lag 4, replicas 1 (desired 2), Ready True Measured\n"
            "  mixed: lag 9, replicas 3 (desired 3), Ready True Measured\n");
  // A task the dispatcher would refuse says why instead of listing fires.
  auto bad = task;
  bad["spec"]["schedule"] = "0 0 30 2 *";
  std::ostringstream refused;
  RenderStatus(bad, nullptr, *ParseRfc3339("2026-12-04T12:00:00Z"), nullptr, 2, refused);
  EXPECT_THAT(refused.str(), ::testing::HasSubstr("Next fires: none (spec.schedule: "));
  EXPECT_THAT(refused.str(), ::testing::Not(::testing::HasSubstr("WorkerPool")));
}

TEST(Status, RefusesABadNameAndReadsAFile) {
  std::ostringstream out, err;
  EXPECT_EQ(RunStatus({.task = "Team/x"}, out, err), 2);
  EXPECT_THAT(err.str(), ::testing::HasSubstr("is not NAMESPACE/NAME"));
  for (StatusOptions bad : {StatusOptions{.task = "--watch"}, StatusOptions{.task = "a/-b"},
                            StatusOptions{.task = "team/x", .ns = "other"}, StatusOptions{.task = "x", .ns = "a/b"}}) {
    std::ostringstream o2, e2;
    EXPECT_EQ(RunStatus(bad, o2, e2), 2) << bad.task << " -n " << bad.ns;
    EXPECT_FALSE(e2.str().empty());
  }
  const std::string path = ::testing::TempDir() + "/status-task.yaml";
  {
    std::ofstream f(path);
    f << "apiVersion: cronlane.dev/v1alpha1\nkind: ScheduledTask\nmetadata: {name: once, namespace: team}\n"
         "spec: {runAt: \"2100-01-01T00:00:00Z\", target: {topic: t}}\n";
  }
  std::ostringstream shown, e2;
  ASSERT_EQ(RunStatus({.task = "team/once", .file = path, .local_zone = "UTC"}, shown, e2), 0) << e2.str();
  EXPECT_THAT(shown.str(), ::testing::HasSubstr("runAt:       2100-01-01T00:00:00Z\n"));
  EXPECT_THAT(shown.str(), ::testing::HasSubstr("Next fires:\n  2100-01-01T00:00:00+00:00 (UTC)"));
  std::ostringstream none, e3;
  EXPECT_EQ(RunStatus({.task = "team/other", .file = path}, none, e3), 2);
  EXPECT_THAT(e3.str(), ::testing::HasSubstr("no ScheduledTask team/other"));
}

TEST(Completion, OffersSubcommandsThenTheirFlags) {
  CLI::App app{"test"};
  auto* next = app.add_subcommand("next", "");
  std::string s;
  int n = 0;
  next->add_option("--schedule,-s", s, "");
  next->add_option("--count,-n", n, "");
  app.add_subcommand("validate", "");
  EXPECT_THAT(Complete(app, {""}), ::testing::ElementsAre("next", "validate"));
  EXPECT_THAT(Complete(app, {"v"}), ::testing::ElementsAre("validate"));
  EXPECT_THAT(Complete(app, {"next", "--s"}), ::testing::ElementsAre("--schedule"));
  EXPECT_THAT(Complete(app, {"next", "--"}), ::testing::ElementsAre("--count", "--help", "--schedule"));
  EXPECT_TRUE(Complete(app, {"next", "x"}).empty()) << "arguments fall back to file names";
  std::ostringstream out;
  PrintCompletions(app, {"next", "x"}, out);
  EXPECT_EQ(out.str(), ":0\n");
  std::ostringstream script, err;
  EXPECT_EQ(RunCompletionScript("bash", "cronlane", script, err), 0);
  EXPECT_THAT(script.str(), ::testing::HasSubstr("complete -o filenames -F _cronlane cronlane"));
  EXPECT_EQ(RunCompletionScript("fish", "cronlane", script, err), 2);
}

}  // namespace
}  // namespace cronlane::cli
