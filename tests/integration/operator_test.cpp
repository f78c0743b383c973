// cronlane-operator against the real apiserver, driven with kubectl as users drive it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <thread>

#include "common/limits.h"
#include "tests/support/corpus.h"
#include "tests/support/process.h"
#include "tests/support/test_env.h"

namespace cronlane::testing {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

std::string Jsonpath(const std::string& ns, const std::string& obj, const std::string& path) {
  auto r = Kubectl("get " + obj + " -n " + ns + " -o jsonpath='" + path + "'");
  return r.exit_code == 0 ? r.output : "<error: " + r.output + ">";
}

std::string ApplyYaml(const std::string& ns, const std::string& yaml) {
  return KubectlApply(ns, yaml).output;
}

std::string TaskYaml(const std::string& name, const std::string& schedule, const std::string& extra = "") {
  return "apiVersion: cronlane.dev/v1alpha1\nkind: ScheduledTask\nmetadata:\n  name: " + name +
         "\nspec:\n  schedule: \"" + schedule + "\"\n  target: {topic: jobs}\n" + extra;
}

class OperatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ns_ = UniqueName("op");
    ASSERT_EQ(Kubectl("create namespace " + ns_).exit_code, 0);
  }
  void TearDown() override {
    for (auto& p : procs_) {
      if (HasFailure()) std::cerr << "---- operator log " << p->log_path() << "\n" << p->Log() << "\n";
    }
    procs_.clear();
    Kubectl("delete namespace " + ns_ + " --wait=false");
  }
  // Starts an operator watching only this test's namespace; returns its metrics port.
  Process& StartOperator(std::vector<std::string> extra = {}, int* metrics_port = nullptr, int* health_port = nullptr) {
    int mp = FreePort(), hp = FreePort();
    extra.insert(extra.begin(), {"--metrics-bind-address=127.0.0.1:" + std::to_string(mp),
                                 "--health-probe-bind-address=127.0.0.1:" + std::to_string(hp)});
    std::vector<std::string> argv = OperatorCommand(ns_, extra);
    std::string log = (std::filesystem::temp_directory_path() / (UniqueName("operator") + ".log")).string();
    procs_.push_back(std::make_unique<Process>(argv, log));
    if (metrics_port) *metrics_port = mp;
    if (health_port) *health_port = hp;
    return *procs_.back();
  }
  std::string ns_;
  std::vector<std::unique_ptr<Process>> procs_;
};

TEST_F(OperatorTest, CreateUpdateSuspendDeleteReachTheDispatcher) {
  int mport = 0, hport = 0;
  Process& op = StartOperator({}, &mport, &hport);
  ASSERT_TRUE(WaitUntil([&] { return HttpGet(hport, "/readyz") == "ok\n"; }, 20s)) << op.Log();
  auto scheduled = [&] { return MetricValue(HttpGet(mport, "/metrics"), "cronlane_tasks_scheduled").value_or(-1); };

  ApplyYaml(ns_, TaskYaml("hourly", "0 * * * *"));
  ASSERT_TRUE(WaitUntil(
      [&] { return Jsonpath(ns_, "st/hourly", "{.status.conditions[?(@.type==\"Ready\")].status}") == "True"; }, 15s));
  EXPECT_EQ(Jsonpath(ns_, "st/hourly", "{.status.conditions[?(@.type==\"Ready\")].reason}"), "Scheduled");
  EXPECT_EQ(Jsonpath(ns_, "st/hourly", "{.status.observedGeneration}"), "1");
  std::string next = Jsonpath(ns_, "st/hourly", "{.status.nextScheduleTime}");
  EXPECT_THAT(next, ::testing::MatchesRegex("[0-9-]+T[0-9]{2}:00:00Z"));
  EXPECT_EQ(scheduled(), 1);

  // A schedule update: observedGeneration follows, next fire moves to minute 30.
  ApplyYaml(ns_, TaskYaml("hourly", "30 * * * *"));
  ASSERT_TRUE(WaitUntil([&] { return Jsonpath(ns_, "st/hourly", "{.status.observedGeneration}") == "2"; }, 15s));
  EXPECT_THAT(Jsonpath(ns_, "st/hourly", "{.status.nextScheduleTime}"), ::testing::MatchesRegex(".*T[0-9]{2}:30:00Z"));

  // Suspend: Ready=True/Suspended (intended, healthy: GitOps tools must not wait on
  // it), no next fire, no Stalled.
  ApplyYaml(ns_, TaskYaml("hourly", "30 * * * *", "  suspend: true\n"));
  ASSERT_TRUE(WaitUntil(
      [&] { return Jsonpath(ns_, "st/hourly", "{.status.conditions[?(@.type==\"Ready\")].reason}") == "Suspended"; },
      15s));
  EXPECT_EQ(Jsonpath(ns_, "st/hourly", "{.status.conditions[?(@.type==\"Ready\")].status}"), "True");
  EXPECT_EQ(Jsonpath(ns_, "st/hourly", "{.status.conditions[?(@.type==\"Stalled\")].status}"), "");
  EXPECT_EQ(Jsonpath(ns_, "st/hourly", "{.status.nextScheduleTime}"), "");

  // Delete: gone from the dispatcher's table.
  ASSERT_EQ(Kubectl("delete st hourly -n " + ns_).exit_code, 0);
  EXPECT_TRUE(WaitUntil([&] { return scheduled() == 0; }, 15s));
  EXPECT_TRUE(op.Running());
}

TEST_F(OperatorTest, StatusIsWrittenOnceAndNotRetriggeredByItself) {
  int mport = 0, hport = 0;
  StartOperator({}, &mport, &hport);
  ASSERT_TRUE(WaitUntil([&] { return HttpGet(hport, "/readyz") == "ok\n"; }, 20s));
  for (int i = 0; i < 5; ++i) ApplyYaml(ns_, TaskYaml("t" + std::to_string(i), "0 0 * * *"));
  auto writes = [&] { return MetricValue(HttpGet(mport, "/metrics"), "cronlane_status_writes_total").value_or(-1); };
  ASSERT_TRUE(WaitUntil([&] { return writes() >= 5; }, 15s));
  std::this_thread::sleep_for(3s);
  double settled = writes();
  EXPECT_EQ(settled, 5) << "one status write per task";
  std::this_thread::sleep_for(3s);
  EXPECT_EQ(writes(), settled) << "status writes must not re-trigger reconciles that write again";
  // A label change (no generation bump) does not cause a status write either.
  Kubectl("label st t0 -n " + ns_ + " team=a");
  std::this_thread::sleep_for(2s);
  EXPECT_EQ(writes(), settled);

  // A restarted operator finds every status current and writes none of them again.
  procs_.back()->Signal(SIGTERM);
  ASSERT_EQ(procs_.back()->Wait(10s).value_or(-1), 0);
  StartOperator({}, &mport, &hport);
  ASSERT_TRUE(WaitUntil([&] { return HttpGet(hport, "/readyz") == "ok\n"; }, 20s));
  std::this_thread::sleep_for(3s);
  EXPECT_EQ(writes(), 0) << "a restart does not rewrite unchanged statuses";
}

TEST_F(OperatorTest, BadSpecsAreRefusedOrReportedAndTheOperatorKeepsRunning) {
  int mport = 0, hport = 0;
  Process& op = StartOperator({}, &mport, &hport);
  ASSERT_TRUE(WaitUntil([&] { return HttpGet(hport, "/readyz") == "ok\n"; }, 20s));
  auto corpus = LoadCorpus(std::string(CRONLANE_SOURCE_DIR) + "/tests/testdata/validate");
  std::string big = (std::filesystem::temp_directory_path() / UniqueName("payload")).string() + ".yaml";
  WriteLargePayloadManifest(big, kMaxPayloadBytes + 10);
  corpus.push_back({big, "semantic", "spec.payload", "ScheduledTask"});
  const std::map<std::string, std::string> reason_for = {{"spec.schedule", "InvalidSchedule"},
                                                         {"spec.timeZone", "UnknownTimeZone"},
                                                         {"spec.payload", "PayloadTooLarge"},
                                                         {"spec.target.headers", "InvalidTarget"},
                                                         {"spec.runAt", "InvalidSpec"},
                                                         {"spec.endTime", "InvalidSpec"},
                                                         {"spec.schedules[1].schedule", "InvalidSchedule"}};
  int semantic = 0, valid = 0;
  for (const auto& c : corpus) {
    if (c.kind != "ScheduledTask") continue;
    if (c.expect == "valid") ++valid;
    auto apply = Kubectl("apply -n " + ns_ + " -f " + ShellQuote(c.path));
    if (c.expect == "schema") {
      EXPECT_NE(apply.exit_code, 0) << c.path;
      continue;
    }
    ASSERT_EQ(apply.exit_code, 0) << c.path << apply.output;
    std::string name = Jsonpath(ns_, "-f " + ShellQuote(c.path), "{.metadata.name}");
    // Valid tasks are Scheduled (or Suspended: one sample says `suspend: yes`).
    EXPECT_TRUE(WaitUntil(
        [&] {
          std::string reason = Jsonpath(ns_, "st/" + name, "{.status.conditions[?(@.type==\"Ready\")].reason}");
          return c.expect == "valid" ? reason == "Scheduled" || reason == "Suspended" : !reason.empty();
        },
        15s))
        << c.path;
    if (c.expect == "semantic") {
      ++semantic;
      std::string reason = reason_for.at(c.field);
      EXPECT_EQ(Jsonpath(ns_, "st/" + name, "{.status.conditions[?(@.type==\"Ready\")].reason}"), reason) << c.path;
      EXPECT_THAT(Jsonpath(ns_, "st/" + name, "{.status.conditions[?(@.type==\"Ready\")].message}"),
                  HasSubstr(c.field));
      EXPECT_TRUE(WaitUntil(
          [&] {
            return Kubectl("get events -n " + ns_ + " --field-selector involvedObject.name=" + name +
                           ",reason=" + reason + ",type=Warning -o name")
                       .output.size() > 0;
          },
          10s))
          << "Warning event for " << c.path;
    }
  }
  EXPECT_GE(semantic, 4);
  EXPECT_TRUE(op.Running()) << "bad specs never crash the operator";
  EXPECT_EQ(HttpGet(hport, "/healthz"), "ok\n");
  EXPECT_GE(valid, 3);
  EXPECT_EQ(MetricValue(HttpGet(mport, "/metrics"), "cronlane_tasks_scheduled").value_or(-1), valid)
      << "only the valid tasks are scheduled";
}

TEST_F(OperatorTest, OneLeaderAndFailoverAfterKill9) {
  std::vector<std::string> le = {"--leader-elect", "--leader-election-namespace=" + ns_,
                                 "--leader-elect-lease-duration=4", "--leader-elect-renew-deadline=3",
                                 "--leader-elect-retry-period=1"};
  int m1 = 0, m2 = 0;
  Process& a = StartOperator(le, &m1);
  Process& b = StartOperator(le, &m2);
  auto leader = [&](int port) { return MetricValue(HttpGet(port, "/metrics"), "cronlane_leader").value_or(-1); };
  ASSERT_TRUE(WaitUntil([&] { return leader(m1) + leader(m2) == 1; }, 15s)) << a.Log() << b.Log();
  std::this_thread::sleep_for(3s);
  EXPECT_EQ(leader(m1) + leader(m2), 1) << "exactly one leader";
  std::string holder = Jsonpath(ns_, "lease/cronlane-operator", "{.spec.holderIdentity}");
  Process& lead = leader(m1) == 1 ? a : b;
  Process& standby = leader(m1) == 1 ? b : a;
  int standby_port = leader(m1) == 1 ? m2 : m1;
  EXPECT_THAT(holder, HasSubstr("_" + std::to_string(lead.pid()) + "_"));

  ApplyYaml(ns_, TaskYaml("failover", "0 * * * *"));
  // The standby keeps the shared cache warm: it holds the task before it leads, and
  // runs none of the leader's work.
  auto standby_metric = [&](const char* name) {
    return MetricValue(HttpGet(standby_port, "/metrics"), name).value_or(-1);
  };
  EXPECT_TRUE(WaitUntil([&] { return standby_metric("cronlane_tasks_cached") == 1; }, 10s)) << standby.Log();
  EXPECT_EQ(standby_metric("cronlane_tasks_scheduled"), -1) << "no dispatcher on a standby";
  lead.Signal(SIGKILL);
  auto t0 = std::chrono::steady_clock::now();
  // client-go semantics: the standby takes over once it has seen no renewal for the
  // lease duration (4 s), checking every retry period (1 s).
  ASSERT_TRUE(WaitUntil([&] { return leader(standby_port) == 1; }, 10s)) << standby.Log();
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  std::cout << "failover: standby became leader " << took.count() << " ms after kill -9\n";
  // Bound: the lease duration after the last renewal the standby saw (which is up to
  // one retry period old), plus one retry period to notice, plus slack for a loaded
  // machine and the metrics poll.
  EXPECT_LT(took, 4s + 2 * 1s + 3s);
  EXPECT_THAT(Jsonpath(ns_, "lease/cronlane-operator", "{.spec.holderIdentity}"),
              HasSubstr("_" + std::to_string(standby.pid()) + "_"));
  // The new leader reconciles.
  EXPECT_TRUE(WaitUntil(
      [&] { return Jsonpath(ns_, "st/failover", "{.status.conditions[?(@.type==\"Ready\")].status}") == "True"; },
      15s));

  // A clean shutdown releases the lease at once.
  standby.Signal(SIGTERM);
  EXPECT_EQ(standby.Wait(10s).value_or(-1), 0);
  EXPECT_EQ(Jsonpath(ns_, "lease/cronlane-operator", "{.spec.holderIdentity}"), "");
}

TEST_F(OperatorTest, JsonLogsAreOneObjectPerLineAndNeverShowTheKafkaPassword) {
  // Kafka refuses the connection (nothing listens on the port), so librdkafka logs
  // its own errors; a task with a bad schedule adds the operator's warnings.
  const std::string password = "s3cr3t-" + UniqueName("pw");
  std::vector<std::string> argv = OperatorCommand(
      ns_, {"--log-format=json", "--log-level=debug", "--kafka-bootstrap=127.0.0.1:" + std::to_string(FreePort()),
            "--kafka-property=security.protocol=SASL_PLAINTEXT", "--kafka-property=sasl.mechanisms=PLAIN",
            "--kafka-property=sasl.username=cronlane", "--kafka-property=sasl.password=" + password});
  std::string log = (std::filesystem::temp_directory_path() / (UniqueName("operator") + ".log")).string();
  procs_.push_back(std::make_unique<Process>(argv, log));
  Process& op = *procs_.back();
  ApplyYaml(ns_, TaskYaml("bad", "0 0 31 2 *"));
  ASSERT_TRUE(WaitUntil([&] { return op.Log().find("InvalidSchedule") != std::string::npos; }, 20s)) << op.Log();
  ASSERT_TRUE(WaitUntil([&] { return op.Log().find("kafka rdkafka") != std::string::npos; }, 20s))
      << "librdkafka's own log lines go through the logger\n"
      << op.Log();
  op.Signal(SIGTERM);
  EXPECT_EQ(op.Wait(20s).value_or(-1), 0) << op.Log();
  std::istringstream lines(op.Log());
  size_t n = 0;
  for (std::string line; std::getline(lines, line); ++n) {
    nlohmann::json j = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
    ASSERT_TRUE(j.is_object()) << "line " << n + 1 << " is not a JSON object: " << line;
    for (const char* key : {"ts", "level", "msg"}) {
      ASSERT_TRUE(j.contains(key) && j[key].is_string()) << "line " << n + 1 << " has no " << key << ": " << line;
    }
    EXPECT_EQ(line.find(password), std::string::npos) << "the password is logged: " << line;
  }
  EXPECT_GT(n, 5U);
}

TEST_F(OperatorTest, BadFlagsAndConfigExitNonZeroWithAMessage) {
  const std::string kafka = " --kafka-bootstrap=" + EnvVar("KAFKA_BOOTSTRAP");
  auto r = RunShell(std::string(CRONLANE_BIN_DIR) + "/cronlane-operator --kubeconfig /nonexistent/config" + kafka);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.output, HasSubstr("does not exist"));
  r = RunShell(std::string(CRONLANE_BIN_DIR) + "/cronlane-operator --log-level loud" + kafka);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.output, HasSubstr("--log-level"));
  r = RunShell(std::string(CRONLANE_BIN_DIR) + "/cronlane-operator --kubeconfig " + ShellQuote(EnvVar("KUBECONFIG")) +
               " --metrics-bind-address nonsense" + kafka);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.output, HasSubstr("bind address"));
  r = RunShell(std::string(CRONLANE_BIN_DIR) + "/cronlane-operator");
  EXPECT_NE(r.exit_code, 0);
  EXPECT_THAT(r.output, HasSubstr("--kafka-bootstrap is required"));
  r = RunShell(std::string(CRONLANE_BIN_DIR) + "/cronlane-operator --kafka-property nonsense" + kafka);
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.output, HasSubstr("--kafka-property #1 is not KEY=VALUE"));
  EXPECT_THAT(r.output, ::testing::Not(HasSubstr("nonsense"))) << "a malformed property may hold a password";
}

}  // namespace
}  // namespace cronlane::testing
