// End to end, the task lifecycle as users drive it with kubectl: run a task now
// with the cronlane.dev/run-now annotation. Each token fires exactly once across
// kill -9 of the leader and a failover to the standby, on a suspended task too,
// and status.lastRunNow says so. Real apiserver, real Kafka, read back
// read_committed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <csignal>
#include <filesystem>
#include <map>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/cloudevent.h"
#include "common/kafka.h"
#include "common/task_result.h"
#include "common/time.h"
#include "tests/support/operator_fixture.h"
#include "tests/support/process.h"
#include "tests/support/test_env.h"
#include "tests/support/topic_reader.h"

namespace cronlane::testing {
namespace {

using namespace std::chrono_literals;

class LifecycleTest : public OperatorFixture {
 protected:
  LifecycleTest() : OperatorFixture("life") {}

  std::string Task(const std::string& name, const std::string& topic, bool suspend) {
    return "apiVersion: cronlane.dev/v1alpha1\nkind: ScheduledTask\nmetadata: {name: " + name +
           "}\nspec:\n  schedule: \"" + (suspend ? "* * * * * *" : "0 0 1 1 *") +
           "\"\n  suspend: " + (suspend ? "true" : "false") + "\n  target: {topic: " + topic + "}\n";
  }
  void RunNow(const std::string& name, const std::string& token) {
    ASSERT_EQ(Kubectl("annotate --overwrite -n " + ns_ + " st/" + name + " cronlane.dev/run-now=" + token).exit_code,
              0);
  }
  std::string Uid(const std::string& name) {
    return KubectlGet("get st " + name + " -n " + ns_ + " -o jsonpath='{.metadata.uid}'");
  }
  std::string LeaseHolder() {
    return KubectlGet("get lease cronlane-operator -n " + ns_ + " -o jsonpath='{.spec.holderIdentity}'");
  }
  Process* Leader() {
    const std::string holder = LeaseHolder();
    for (auto& op : ops_) {
      if (op->Running() && holder.find("_" + std::to_string(op->pid()) + "_") != std::string::npos) return op.get();
    }
    return nullptr;
  }
  // ce_id -> how many times it was read, of the messages with ce_trigger=manual.
  static std::map<std::string, int> ManualIds(const TopicReader& reader) {
    std::map<std::string, int> out;
    for (const auto& m : reader.messages()) {
      if (m.HeaderValue("ce_trigger").value_or("") == "manual") ++out[std::string(m.HeaderValue("ce_id").value_or(""))];
    }
    return out;
  }
  const std::vector<std::string> le_ = {"--leader-elect", "--leader-elect-lease-duration=4",
                                        "--leader-elect-renew-deadline=3", "--leader-elect-retry-period=1"};
  std::vector<std::string> LeaderElection() {
    auto flags = le_;
    flags.push_back("--leader-election-namespace=" + ns_);
    return flags;
  }
};

TEST_F(LifecycleTest, RunNowFiresOnceAcrossKill9AndFailover) {
  const std::string topic = ns_ + ".runnow";
  TopicReader reader(topic);
  ASSERT_THAT(Apply(Task("report", topic, false)), ::testing::HasSubstr("created"));
  const std::string uid = Uid("report");
  ASSERT_FALSE(uid.empty());
  StartOperator(LeaderElection());
  ASSERT_TRUE(WaitUntil([&] { return Leader() != nullptr; }, 30s)) << "an operator leads";
  StartOperator(LeaderElection());

  RunNow("report", "t1");
  ASSERT_TRUE(reader.ReadUntil(1, 30s)) << "t1 fires";
  EXPECT_EQ(reader.messages()[0].HeaderValue("ce_id").value_or(""), uid + ":run-now:t1");
  EXPECT_EQ(reader.messages()[0].HeaderValue("ce_subject").value_or(""), ns_ + "/report");

  // A new token, and the leader killed at once: the standby takes over and fires
  // t2 once (whether or not the dead leader committed it), and never t1 again.
  Process* leader = Leader();
  ASSERT_NE(leader, nullptr);
  RunNow("report", "t2");
  leader->Signal(SIGKILL);
  leader->Wait(5s);
  ASSERT_TRUE(reader.ReadUntil(2, 40s)) << "t2 fires after the failover";
  StartOperator(LeaderElection());  // a new standby
  ASSERT_TRUE(WaitUntil([&] { return Leader() != nullptr; }, 30s));

  // Another reconcile of the same token (another annotation changes), then kill -9
  // the new leader too: the next one restores the record and fires nothing.
  ASSERT_EQ(Kubectl("annotate --overwrite -n " + ns_ + " st/report example.com/touched=1").exit_code, 0);
  leader = Leader();
  ASSERT_NE(leader, nullptr);
  leader->Signal(SIGKILL);
  leader->Wait(5s);
  ASSERT_TRUE(WaitUntil([&] { return Leader() != nullptr; }, 30s)) << "the standby leads";
  EXPECT_TRUE(WaitUntil(
      [&] { return KubectlGet("get st report -n " + ns_ + " -o jsonpath='{.status.lastRunNow.token}'") == "t2"; }, 30s))
      << "status.lastRunNow names the last token";
  RunNow("report", "t3");
  ASSERT_TRUE(reader.ReadUntil(3, 30s)) << "the third leader handles a new token";
  reader.ReadFor(3s);

  auto ids = ManualIds(reader);
  EXPECT_THAT(ids,
              ::testing::ElementsAre(::testing::Pair(uid + ":run-now:t1", 1), ::testing::Pair(uid + ":run-now:t2", 1),
                                     ::testing::Pair(uid + ":run-now:t3", 1)));
  EXPECT_EQ(reader.messages().size(), 3U) << "a yearly schedule fired nothing else";
  EXPECT_EQ(KubectlGet("get st report -n " + ns_ + " -o jsonpath='{.status.lastScheduleTime}'"), "")
      << "runs by hand leave the schedule's fields alone";
  EXPECT_TRUE(WaitUntil(
      [&] { return KubectlGet("get st report -n " + ns_ + " -o jsonpath='{.status.lastRunNow.result}'") == "Fired"; },
      30s));
}

TEST_F(LifecycleTest, RunNowOnASuspendedTaskAndABadTokenIsRefusedAtApply) {
  const std::string topic = ns_ + ".suspended";
  TopicReader reader(topic);
  ASSERT_THAT(Apply(Task("paused", topic, true)), ::testing::HasSubstr("created"));
  const std::string uid = Uid("paused");
  StartOperator();
  // The way users run it: `cronlane trigger NS/NAME | sh` (the CLI prints the kubectl command).
  auto triggered = RunShell(std::string(CRONLANE_BIN_DIR) + "/cronlane trigger " + ns_ +
                            "/paused --token once | KUBECONFIG=" + ShellQuote(EnvVar("KUBECONFIG")) + " sh");
  ASSERT_EQ(triggered.exit_code, 0) << triggered.output;
  ASSERT_TRUE(reader.ReadUntil(1, 30s)) << "run now works on a suspended task";
  reader.ReadFor(3s);
  ASSERT_EQ(reader.messages().size(), 1U) << "the every-second schedule stays suspended";
  EXPECT_EQ(reader.messages()[0].HeaderValue("ce_id").value_or(""), uid + ":run-now:once");

  // A bad token is refused at `kubectl annotate` by the ValidatingAdmissionPolicy
  // the CRDs come with (crds/policies/run-now.yaml), with the same words as
  // `cronlane validate`.
  auto refused = Kubectl("annotate --overwrite -n " + ns_ + " st/paused cronlane.dev/run-now=no/slashes");
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_THAT(refused.output, ::testing::HasSubstr("metadata.annotations[cronlane.dev/run-now]: \"no/slashes\" is "
                                                   "not a run-now token"));
  auto force = Kubectl("annotate --overwrite -n " + ns_ + " st/paused cronlane.dev/run-now-force=yes");
  EXPECT_NE(force.exit_code, 0);
  EXPECT_THAT(force.output, ::testing::HasSubstr("must be \"true\" or \"false\""));
  reader.ReadFor(2s);
  EXPECT_EQ(reader.messages().size(), 1U);
}

// The scheduled time of a message, from its ce_time.
int64_t Scheduled(const kafka::Message& m) {
  auto t = ParseRfc3339(m.HeaderValue("ce_time").value_or(""));
  return t.ok() ? t->time_since_epoch().count() : -1;
}

TEST_F(LifecycleTest, AOneShotFiresOnceAcrossKill9ThenIsComplete) {
  const std::string topic = ns_ + ".once";
  TopicReader reader(topic);
  const auto run_at = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()) + 8s;
  ASSERT_THAT(Apply("apiVersion: cronlane.dev/v1alpha1\nkind: ScheduledTask\nmetadata: {name: once}\nspec:\n"
                    "  runAt: \"" +
                    FormatRfc3339(run_at) + "\"\n  target: {topic: " + topic + "}\n"),
              ::testing::HasSubstr("created"));
  const std::string uid = Uid("once");
  Process& first = StartOperator();
  ASSERT_TRUE(reader.ReadUntil(1, 40s)) << "runAt fires";
  first.Signal(SIGKILL);
  first.Wait(5s);
  StartOperator();  // restores the checkpoint: nothing fires again
  ASSERT_EQ(Kubectl("wait --for=condition=Complete --timeout=60s -n " + ns_ + " st/once").exit_code, 0);
  reader.ReadFor(3s);
  ASSERT_EQ(reader.messages().size(), 1U) << "exactly once";
  EXPECT_EQ(reader.messages()[0].HeaderValue("ce_id").value_or(""),
            uid + ":" + std::to_string(run_at.time_since_epoch().count()));
  EXPECT_EQ(KubectlGet("get st once -n " + ns_ + " -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].reason}'"),
            "Completed");
  EXPECT_EQ(KubectlGet("get st once -n " + ns_ + " -o jsonpath='{.status.nextScheduleTime}'"), "");
}

TEST_F(LifecycleTest, ABoundedScheduleFiresOnlyInsideItsWindowThenIsComplete) {
  const std::string topic = ns_ + ".bounded";
  TopicReader reader(topic);
  const auto now = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now());
  const auto start = now + 8s, end = now + 11s;
  ASSERT_THAT(
      Apply("apiVersion: cronlane.dev/v1alpha1\nkind: ScheduledTask\nmetadata: {name: window}\nspec:\n"
            "  schedule: \"* * * * * *\"\n  startTime: \"" +
            FormatRfc3339(start) + "\"\n  endTime: \"" + FormatRfc3339(end) + "\"\n  target: {topic: " + topic + "}\n"),
      ::testing::HasSubstr("created"));
  StartOperator();
  ASSERT_EQ(Kubectl("wait --for=condition=Complete --timeout=60s -n " + ns_ + " st/window").exit_code, 0);
  reader.ReadFor(3s);
  std::vector<int64_t> times;
  for (const auto& m : reader.messages()) times.push_back(Scheduled(m));
  std::sort(times.begin(), times.end());
  const int64_t s = start.time_since_epoch().count();
  EXPECT_THAT(times, ::testing::ElementsAre(s, s + 1, s + 2)) << "[startTime, endTime): three seconds";
}

TEST_F(LifecycleTest, AOneShotWithTtlIsDeletedAfterItFinished) {
  const std::string topic = ns_ + ".ttl";
  TopicReader reader(topic);
  const auto run_at = std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()) + 5s;
  ASSERT_THAT(Apply("apiVersion: cronlane.dev/v1alpha1\nkind: ScheduledTask\nmetadata: {name: brief}\nspec:\n"
                    "  runAt: \"" +
                    FormatRfc3339(run_at) + "\"\n  ttlSecondsAfterFinished: 2\n  target: {topic: " + topic + "}\n"),
              ::testing::HasSubstr("created"));
  StartOperator();
  ASSERT_TRUE(reader.ReadUntil(1, 40s)) << "it fires";
  EXPECT_TRUE(
      WaitUntil([&] { return Kubectl("get st brief -n " + ns_).output.find("NotFound") != std::string::npos; }, 40s))
      << "deleted once Complete for 2 s";
  reader.ReadFor(2s);
  EXPECT_EQ(reader.messages().size(), 1U);
  // Refused at apply without runAt or endTime: nothing would ever finish.
  auto refused = KubectlApply(ns_,
                              "apiVersion: cronlane.dev/v1alpha1\nkind: ScheduledTask\nmetadata: {name: forever}\n"
                              "spec:\n  schedule: \"* * * * *\"\n  ttlSecondsAfterFinished: 5\n  target: {topic: x}\n");
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_THAT(refused.output, ::testing::HasSubstr("ttlSecondsAfterFinished needs runAt or endTime"));
}

TEST_F(LifecycleTest, TwoSchedulesFireTheirUnionOnce) {
  const std::string topic = ns_ + ".union";
  TopicReader reader(topic);
  ASSERT_THAT(Apply("apiVersion: cronlane.dev/v1alpha1\nkind: ScheduledTask\nmetadata: {name: union}\nspec:\n"
                    "  schedules:\n  - schedule: \"*/2 * * * * *\"\n  - schedule: \"*/3 * * * * *\"\n"
                    "  target: {topic: " +
                    topic + "}\n"),
              ::testing::HasSubstr("created"));
  StartOperator();
  ASSERT_TRUE(reader.ReadUntil(8, 40s));
  reader.ReadFor(2s);
  std::vector<int64_t> times;
  for (const auto& m : reader.messages()) times.push_back(Scheduled(m));
  std::sort(times.begin(), times.end());
  EXPECT_EQ(std::adjacent_find(times.begin(), times.end()), times.end()) << "an instant both select fires once";
  for (size_t i = 0; i < times.size(); ++i) {
    EXPECT_TRUE(times[i] % 2 == 0 || times[i] % 3 == 0) << times[i];
    // Between the first and last read, every instant of the union is there.
    if (i > 0) {
      for (int64_t t = times[i - 1] + 1; t < times[i]; ++t) EXPECT_FALSE(t % 2 == 0 || t % 3 == 0) << "missing " << t;
    }
  }
}

// Run history (slice 6): a real worker reports on the results topic; status shows
// the last runs newest first with their outcomes, a failure that was dead-lettered
// is a Warning Event, and `kubectl get st` shows the last outcome.
TEST_F(LifecycleTest, RecentRunsShowSuccessFailureAndDeadLetter) {
  const std::string topic = ns_ + ".runs", results = ns_ + ".results";
  CreateTestTopic(topic, 1);
  auto task = [&](const std::string& name, const std::string& mode) {
    return "apiVersion: cronlane.dev/v1alpha1\nkind: ScheduledTask\nmetadata: {name: " + name +
           "}\nspec:\n  schedule: \"*/2 * * * * *\"\n  target: {topic: " + topic + "}\n  payload: {mode: " + mode +
           "}\n  execution: {maxAttempts: 2, backoffSeconds: 0}\n";
  };
  ASSERT_THAT(Apply(task("good", "ok") + "---\n" + task("bad", "fail")), ::testing::HasSubstr("created"));
  StartOperator({"--results-topic=" + results});
  Process worker({std::string(CRONLANE_BIN_DIR) + "/cronlane-worker", "--kafka-bootstrap=" + EnvVar("KAFKA_BOOTSTRAP"),
                  "--topic=" + topic, "--group=" + ns_, "--exec=grep -q fail && exit 3; exit 0",
                  "--results-topic=" + results, "--dead-letter-topic=" + ns_ + ".dlq", "--metrics-bind-address=0",
                  "--health-probe-bind-address=0", "--log-format=text"},
                 (std::filesystem::temp_directory_path() / (UniqueName("life-worker") + ".log")).string());
  auto field = [&](const std::string& name, const std::string& path) {
    return KubectlGet("get st " + name + " -n " + ns_ + " -o jsonpath='{" + path + "}'");
  };
  ASSERT_TRUE(WaitUntil([&] { return field("good", ".status.recentRuns[2].outcome") == "Succeeded"; }, 60s))
      << field("good", ".status");
  ASSERT_TRUE(WaitUntil([&] { return field("bad", ".status.recentRuns[1].outcome") == "Failed"; }, 60s))
      << field("bad", ".status");

  auto runs = [&](const std::string& name) {
    return nlohmann::json::parse(KubectlGet("get st " + name + " -n " + ns_ + " -o json"))["status"];
  };
  nlohmann::json good = runs("good"), bad = runs("bad");
  for (const auto* status : {&good, &bad}) {
    const auto& list = (*status)["recentRuns"];
    ASSERT_GE(list.size(), 2U);
    EXPECT_LE(list.size(), 10U);
    for (size_t i = 1; i < list.size(); ++i) {
      EXPECT_GT(list[i - 1]["scheduledTime"].get<std::string>(), list[i]["scheduledTime"].get<std::string>())
          << "newest first, one entry per occurrence: " << list.dump();
    }
  }
  for (const auto& r : good["recentRuns"]) {
    EXPECT_EQ(r["outcome"], "Succeeded") << r.dump();
    EXPECT_EQ(r["trigger"], "Scheduled");
    EXPECT_EQ(r["attempts"], 1);
    EXPECT_FALSE(r.contains("deadLettered"));
  }
  EXPECT_TRUE(good.contains("lastSuccessfulTime"));
  EXPECT_FALSE(good.contains("lastFailureTime"));
  for (const auto& r : bad["recentRuns"]) {
    EXPECT_EQ(r["outcome"], "Failed") << r.dump();
    EXPECT_EQ(r["attempts"], 2) << "both attempts";
    EXPECT_TRUE(r.value("deadLettered", false)) << r.dump();
    EXPECT_GE(r["finishedTime"].get<std::string>(), r["scheduledTime"].get<std::string>());
  }
  EXPECT_TRUE(bad.contains("lastFailureTime"));
  EXPECT_FALSE(bad.contains("lastSuccessfulTime"));
  // The LastRun column.
  EXPECT_THAT(KubectlGet("get st bad -n " + ns_), ::testing::HasSubstr("Failed"));
  EXPECT_TRUE(WaitUntil(
      [&] {
        return Kubectl("get events -n " + ns_ +
                       " --field-selector reason=RunDeadLettered -o jsonpath='{.items[*].involvedObject.name}'")
                   .output.find("bad") != std::string::npos;
      },
      20s));

  // A run by hand on the suspended good task is an entry of its own, Manual.
  ASSERT_EQ(Kubectl("patch st good -n " + ns_ + " --type merge -p '{\"spec\":{\"suspend\":true}}'").exit_code, 0);
  RunNow("good", "history-1");
  // Its entry, wherever it sorts: a scheduled occurrence of the same second (fired
  // just before the suspend applied) sorts ahead of it.
  const std::string manual = ".status.recentRuns[?(@.trigger==\"Manual\")]";
  EXPECT_TRUE(WaitUntil([&] { return field("good", manual + ".outcome") == "Succeeded"; }, 30s))
      << field("good", ".status.recentRuns");
  EXPECT_EQ(field("good", manual + ".scheduledTime"), field("good", ".status.lastRunNow.time"));
}

// concurrencyPolicy Replace end to end: each occurrence of a task whose command
// never ends cancels the previous one through the control topic; the worker stops
// the command and reports it Cancelled, and status shows it.
TEST_F(LifecycleTest, ReplaceCancelsTheRunningOccurrence) {
  const std::string topic = ns_ + ".replace", results = ns_ + ".results", control = ns_ + ".control";
  CreateTestTopic(topic, 1);
  CreateTestTopic(control, 1);
  ASSERT_THAT(Apply("apiVersion: cronlane.dev/v1alpha1\nkind: ScheduledTask\nmetadata: {name: replace}\nspec:\n"
                    "  schedule: \"*/4 * * * * *\"\n  concurrencyPolicy: Replace\n  target: {topic: " +
                    topic + "}\n"),
              ::testing::HasSubstr("created"));
  StartOperator({"--results-topic=" + results, "--control-topic=" + control});
  const std::string started = (std::filesystem::temp_directory_path() / UniqueName("life-started")).string();
  Process worker({std::string(CRONLANE_BIN_DIR) + "/cronlane-worker", "--kafka-bootstrap=" + EnvVar("KAFKA_BOOTSTRAP"),
                  "--topic=" + topic, "--group=" + ns_, "--exec=echo \"$CE_ID\" >> " + started + "; exec sleep 600",
                  "--results-topic=" + results, "--control-topic=" + control, "--concurrency=2",
                  "--metrics-bind-address=0", "--health-probe-bind-address=0", "--log-format=text"},
                 (std::filesystem::temp_directory_path() / (UniqueName("life-worker") + ".log")).string());
  // Two occurrences replaced, each reported Cancelled after its one attempt.
  std::vector<kafka::Message> cancelled;
  ASSERT_TRUE(WaitUntil(
      [&] {
        cancelled.clear();
        for (auto& m : ReadTopic(results, 1, 100, 1s)) {
          if (m.value.find("\"outcome\":\"Cancelled\"") != std::string::npos) cancelled.push_back(m);
        }
        return cancelled.size() >= 2;
      },
      60s))
      << worker.Log();
  for (const auto& m : cancelled) {
    auto r = DecodeTaskResult(m.value);
    ASSERT_TRUE(r.ok()) << m.value;
    EXPECT_EQ(r->attempts, 1) << m.value;
    EXPECT_FALSE(r->dead_lettered);
  }
  // Every cancel on the control topic names the task and the occurrence replacing.
  auto cancels = ReadTopic(control, 1, 2, 10s);
  ASSERT_GE(cancels.size(), 2U);
  for (const auto& m : cancels) {
    auto e = DecodeCancelEvent(m);
    ASSERT_TRUE(e.ok()) << e.status().ToString();
    EXPECT_EQ(e->task_id, Uid("replace"));
    EXPECT_EQ(e->subject, ns_ + "/replace");
    EXPECT_EQ(e->id,
              e->task_id + ":" + std::to_string(ParseRfc3339(e->before)->time_since_epoch().count()) + ":cancel");
  }
  EXPECT_TRUE(WaitUntil(
      [&] {
        return KubectlGet("get st replace -n " + ns_ + " -o jsonpath='{.status.recentRuns[0].outcome}'") == "Cancelled";
      },
      30s));
  EXPECT_THAT(worker.Log(), ::testing::HasSubstr("cancelled by a newer occurrence (concurrencyPolicy Replace)"));
}

// A Backfill of 2,000 past seconds of an every-second task: each occurrence once,
// across kill -9 of the leader mid-way, while the live schedule keeps firing every
// second; status counts them and turns Complete.
TEST_F(LifecycleTest, BackfillOf2000FiresEachOnceAcrossKill9WhileTheLiveScheduleKeepsFiring) {
  const std::string topic = ns_ + ".backfill";
  TopicReader reader(topic, 3);
  ASSERT_THAT(Apply("apiVersion: cronlane.dev/v1alpha1\nkind: ScheduledTask\nmetadata: {name: tick}\nspec:\n"
                    "  schedule: \"* * * * * *\"\n  catchUpPolicy: All\n  target: {topic: " +
                    topic + "}\n"),
              ::testing::HasSubstr("created"));
  const std::string uid = Uid("tick");
  auto created = ParseRfc3339(KubectlGet("get st tick -n " + ns_ + " -o jsonpath='{.metadata.creationTimestamp}'"));
  ASSERT_TRUE(created.ok());
  StartOperator(LeaderElection());
  ASSERT_TRUE(WaitUntil([&] { return Leader() != nullptr; }, 30s)) << "an operator leads";
  StartOperator(LeaderElection());

  const Instant from = *created - std::chrono::seconds(2000);
  // `to` past the creation: the range is clipped to it (later seconds are the live schedule's).
  ASSERT_THAT(Apply("apiVersion: cronlane.dev/v1alpha1\nkind: Backfill\nmetadata: {name: fill}\nspec:\n"
                    "  taskName: tick\n  from: \"" +
                    FormatRfc3339(from) + "\"\n  to: \"" + FormatRfc3339(*created + std::chrono::hours(1)) +
                    "\"\n  maxPerSecond: 200\n"),
              ::testing::HasSubstr("created"));
  const std::string bf_uid = KubectlGet("get backfill fill -n " + ns_ + " -o jsonpath='{.metadata.uid}'");
  auto backfilled = [&] {
    std::map<std::string, int> ids;
    for (const auto& m : reader.messages()) {
      if (m.HeaderValue("ce_trigger").value_or("") == "backfill")
        ++ids[std::string(m.HeaderValue("ce_id").value_or(""))];
    }
    return ids;
  };
  ASSERT_TRUE(WaitUntil(
      [&] {
        reader.ReadFor(200ms);
        return backfilled().size() >= 300;
      },
      60s))
      << "the backfill starts";
  Process* leader = Leader();
  ASSERT_NE(leader, nullptr);
  leader->Signal(SIGKILL);
  leader->Wait(5s);
  EXPECT_TRUE(WaitUntil(
      [&] {
        reader.ReadFor(500ms);
        return backfilled().size() >= 2000;
      },
      90s))
      << "the standby resumes from the committed record: " << backfilled().size() << " of 2000";
  EXPECT_TRUE(WaitUntil(
      [&] {
        return KubectlGet("get backfill fill -n " + ns_ +
                          " -o jsonpath='{.status.conditions[?(@.type==\"Complete\")].status}'") == "True";
      },
      30s));
  // Everything committed so far (a duplicate would be in it), without sleeping.
  ASSERT_TRUE(reader.ReadToEnd(30s));

  // Exactly the seconds of [from, created), each once, with ids of their own.
  std::set<int64_t> seconds;
  int duplicates = 0;
  for (const auto& [id, n] : backfilled()) duplicates += n - 1;
  for (const auto& m : reader.messages()) {
    if (m.HeaderValue("ce_trigger").value_or("") != "backfill") continue;
    const int64_t at = ScheduledUnix(m);
    seconds.insert(at);
    EXPECT_EQ(m.HeaderValue("ce_id").value_or(""), uid + ":bf-" + bf_uid + ":" + std::to_string(at));
    EXPECT_EQ(m.HeaderValue("ce_backfill").value_or(""), ns_ + "/fill");
  }
  EXPECT_EQ(duplicates, 0);
  ASSERT_EQ(seconds.size(), 2000U);
  EXPECT_EQ(*seconds.begin(), from.time_since_epoch().count());
  EXPECT_EQ(*seconds.rbegin(), created->time_since_epoch().count() - 1);
  EXPECT_EQ(
      KubectlGet("get backfill fill -n " + ns_ + " -o jsonpath='{.status.fired}/{.status.total}/{.status.taskUID}'"),
      "2000/2000/" + uid);
  // Rate limited: 2,000 at 200 a second cannot be committed in less than 8 s with a
  // burst of one second's worth from each of the two leaders (6 s leaves room for
  // two more terms); unlimited, all would be in Kafka within a second, before the
  // kill. A lower bound only: a slow machine makes it longer, never shorter.
  int64_t first_ms = INT64_MAX, last_ms = 0;
  for (const auto& m : reader.messages()) {
    if (m.HeaderValue("ce_trigger").value_or("") != "backfill" || m.timestamp_ms < 0) continue;
    first_ms = std::min(first_ms, m.timestamp_ms);
    last_ms = std::max(last_ms, m.timestamp_ms);
  }
  EXPECT_GE(last_ms - first_ms, 6000) << "the backfill went faster than maxPerSecond";

  // The live schedule fired every second from its first occurrence on, once each
  // (catchUpPolicy All: the seconds of the failover fire late, not never).
  std::vector<kafka::Message> live;
  for (const auto& m : reader.messages()) {
    if (!m.HeaderValue("ce_trigger")) live.push_back(m);
  }
  auto [total, missing, dups] = Audit(live);
  EXPECT_GT(total, 10U);
  EXPECT_EQ(missing, 0U);
  EXPECT_EQ(dups, 0U);
}

// A Backfill for a task that does not exist yet waits (Ready=False TaskNotFound) and
// starts when the task is created; one whose task is re-created stays with the old
// incarnation (TaskReplaced) and fires nothing for the new one. Bad input: a spec
// edit, a range over the limit, from after to.
TEST_F(LifecycleTest, ABackfillWaitsForItsTaskAndStallsWhenTheTaskIsReplaced) {
  const std::string topic = ns_ + ".bfwait";
  TopicReader reader(topic, 3);
  StartOperator();
  auto condition = [&](const std::string& type, const std::string& field) {
    return KubectlGet("get backfill early -n " + ns_ + " -o jsonpath='{.status.conditions[?(@.type==\"" + type +
                      "\")]." + field + "}'");
  };
  // Made the way users make one: `cronlane backfill ... | kubectl create -f -`.
  auto created =
      RunShell(std::string(CRONLANE_BIN_DIR) + "/cronlane backfill " + ns_ +
               "/later --name early --from 2020-01-01T00:00:00Z --to 2020-01-01T00:00:05Z | kubectl --kubeconfig " +
               ShellQuote(EnvVar("KUBECONFIG")) + " create -f -");
  ASSERT_EQ(created.exit_code, 0) << created.output;
  ASSERT_THAT(created.output, ::testing::HasSubstr("backfill.cronlane.dev/early created"));
  EXPECT_TRUE(WaitUntil([&] { return condition("Ready", "reason") == "TaskNotFound"; }, 30s));
  EXPECT_EQ(condition("Ready", "status"), "False");
  EXPECT_EQ(condition("Stalled", "status"), "") << "not Stalled: the task may still be on its way";
  ASSERT_THAT(Apply("apiVersion: cronlane.dev/v1alpha1\nkind: ScheduledTask\nmetadata: {name: later}\nspec:\n"
                    "  schedule: \"* * * * * *\"\n  suspend: true\n  target: {topic: " +
                    topic + "}\n"),
              ::testing::HasSubstr("created"));
  EXPECT_TRUE(WaitUntil([&] { return condition("Complete", "status") == "True"; }, 30s))
      << "five seconds of 2020 fire once the task exists (a suspended task is backfilled too)";
  ASSERT_TRUE(reader.ReadToEnd(30s));
  EXPECT_EQ(reader.messages().size(), 5U) << "the five seconds, each once (Complete: all are committed)";
  const std::string first_uid = Uid("later");
  // The spec is immutable.
  auto edit = Kubectl("patch backfill early -n " + ns_ + " --type=merge -p '{\"spec\":{\"maxPerSecond\":5}}'");
  EXPECT_NE(edit.exit_code, 0);
  EXPECT_THAT(edit.output, ::testing::HasSubstr("spec is immutable"));

  ASSERT_THAT(Apply("apiVersion: cronlane.dev/v1alpha1\nkind: Backfill\nmetadata: {name: second}\nspec:\n"
                    "  taskName: later\n  from: \"2020-01-02T00:00:00Z\"\n  to: \"2020-01-02T00:10:00Z\"\n"
                    "  maxPerSecond: 1\n"),
              ::testing::HasSubstr("created"));
  EXPECT_TRUE(WaitUntil(
      [&] { return KubectlGet("get backfill second -n " + ns_ + " -o jsonpath='{.status.taskUID}'") == first_uid; },
      30s));
  ASSERT_EQ(Kubectl("delete st later -n " + ns_ + " --wait=true").exit_code, 0);
  ASSERT_THAT(Apply("apiVersion: cronlane.dev/v1alpha1\nkind: ScheduledTask\nmetadata: {name: later}\nspec:\n"
                    "  schedule: \"* * * * * *\"\n  suspend: true\n  target: {topic: " +
                    topic + "}\n"),
              ::testing::HasSubstr("created"));
  EXPECT_TRUE(WaitUntil(
      [&] {
        return KubectlGet("get backfill second -n " + ns_ +
                          " -o jsonpath='{.status.conditions[?(@.type==\"Stalled\")].reason}'") == "TaskReplaced";
      },
      30s));
  // A range over the operator's limit (100,000 occurrences; an every-second task
  // had 158 million seconds from 2000 to 2005) is a clear condition, not a crash.
  ASSERT_THAT(Apply("apiVersion: cronlane.dev/v1alpha1\nkind: Backfill\nmetadata: {name: huge}\nspec:\n"
                    "  taskName: later\n  from: \"2000-01-01T00:00:00Z\"\n  to: \"2005-01-01T00:00:00Z\"\n"),
              ::testing::HasSubstr("created"));
  EXPECT_TRUE(WaitUntil(
      [&] {
        return KubectlGet("get backfill huge -n " + ns_ +
                          " -o jsonpath='{.status.conditions[?(@.type==\"Stalled\")].reason}'") == "TooManyOccurrences";
      },
      30s));
  // from after to is refused at admission.
  auto inverted = Kubectl("create -n " + ns_ + " -f - <<< " +
                          ShellQuote("apiVersion: cronlane.dev/v1alpha1\nkind: Backfill\nmetadata: {name: inverted}\n"
                                     "spec: {taskName: later, from: \"2020-02-01T00:00:00Z\", to: "
                                     "\"2020-01-01T00:00:00Z\"}\n"));
  EXPECT_NE(inverted.exit_code, 0);
  EXPECT_THAT(inverted.output, ::testing::HasSubstr("from must be before to"));
  const std::string new_uid = Uid("later");
  ASSERT_TRUE(reader.ReadToEnd(30s));
  for (const auto& m : reader.messages()) {
    EXPECT_EQ(std::string(m.HeaderValue("ce_id").value_or("")).rfind(new_uid, 0), std::string::npos)
        << "nothing fires for the new task";
  }
}

}  // namespace
}  // namespace cronlane::testing
