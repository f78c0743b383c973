// Kafka with SASL/SCRAM, against the real broker's SASL_PLAINTEXT listener (credentials
// made up by tests/env/up.sh): the operator and a worker configured the way the
// manifests configure them (CRONLANE_KAFKA_PROPERTIES, from the Secret cronlane-kafka)
// fire and run a task; a wrong password is a clear, repeated error and no crash; the
// password never appears in logs, Events or status.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "tests/support/process.h"
#include "tests/support/test_env.h"

namespace cronlane::testing {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;

std::string Properties(const std::string& mechanism, const std::string& password) {
  return "security.protocol=SASL_PLAINTEXT;sasl.mechanism=" + mechanism +
         ";sasl.username=" + EnvVar("KAFKA_SASL_USER") + ";sasl.password=" + password;
}

class KafkaSecurityTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ns_ = UniqueName("sasl");
    dir_ = std::filesystem::temp_directory_path() / ns_;
    std::filesystem::create_directories(dir_);
    ASSERT_EQ(Kubectl("create namespace " + ns_).exit_code, 0);
  }
  void TearDown() override { Kubectl("delete namespace " + ns_ + " --wait=false"); }
  std::unique_ptr<Process> Operator(const std::string& props, const std::string& log) {
    return std::make_unique<Process>(
        std::vector<std::string>{
            std::string(CRONLANE_BIN_DIR) + "/cronlane-operator", "--kubeconfig=" + EnvVar("KUBECONFIG"),
            "--namespaces=" + ns_, "--kafka-bootstrap=" + EnvVar("KAFKA_SASL_BOOTSTRAP"), "--transactional-id=" + ns_,
            "--checkpoint-topic=" + ns_ + ".checkpoints", "--results-topic=" + ns_ + ".results",
            "--metrics-bind-address=0", "--health-probe-bind-address=0", "--log-format=text", "--log-level=debug"},
        (dir_ / log).string(), std::map<std::string, std::string>{{"CRONLANE_KAFKA_PROPERTIES", props}});
  }
  std::unique_ptr<Process> Worker(const std::string& props, const std::string& log) {
    return std::make_unique<Process>(
        std::vector<std::string>{std::string(CRONLANE_BIN_DIR) + "/cronlane-worker",
                                 "--kafka-bootstrap=" + EnvVar("KAFKA_SASL_BOOTSTRAP"), "--topic=" + ns_ + ".tasks",
                                 "--group=" + ns_, "--results-topic=" + ns_ + ".results", "--exec=echo task-ran $CE_ID",
                                 "--metrics-bind-address=0", "--health-probe-bind-address=0", "--log-format=text",
                                 "--log-level=debug"},
        (dir_ / log).string(), std::map<std::string, std::string>{{"CRONLANE_KAFKA_PROPERTIES", props}});
  }
  void Apply(const std::string& name) {
    std::string yaml = "apiVersion: cronlane.dev/v1alpha1\nkind: ScheduledTask\nmetadata: {name: " + name +
                       "}\nspec:\n  schedule: \"*/2 * * * * *\"\n  target: {topic: " + ns_ + ".tasks}\n";
    auto r = RunShell("printf '%s' " + ShellQuote(yaml) + " | kubectl --kubeconfig " +
                      ShellQuote(EnvVar("KUBECONFIG")) + " apply -n " + ns_ + " -f -");
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  std::string ns_;
  std::filesystem::path dir_;
};

TEST_F(KafkaSecurityTest, ScramOperatorAndWorkerFireAndRunATask) {
  const std::string password = EnvVar("KAFKA_SASL_PASSWORD");
  auto op = Operator(Properties("SCRAM-SHA-512", password), "operator.log");
  auto wk = Worker(Properties("SCRAM-SHA-256", password), "worker.log");
  Apply("scram");
  EXPECT_TRUE(WaitUntil([&] { return wk->Log().find("task-ran ") != std::string::npos; }, 60s))
      << op->Log() << wk->Log();
  EXPECT_TRUE(WaitUntil(
      [&] { return !Kubectl("get st scram -n " + ns_ + " -o jsonpath='{.status.lastSuccessfulTime}'").output.empty(); },
      30s))
      << op->Log();
  op->Signal(SIGTERM);
  wk->Signal(SIGTERM);
  EXPECT_EQ(op->Wait(20s).value_or(-1), 0);
  EXPECT_EQ(wk->Wait(20s).value_or(-1), 0);
  for (const auto* p : {op.get(), wk.get()}) EXPECT_THAT(p->Log(), Not(HasSubstr(password)));
  EXPECT_THAT(Kubectl("get st,events -n " + ns_ + " -o yaml").output, Not(HasSubstr(password)));
}

TEST_F(KafkaSecurityTest, AWrongPasswordIsAClearErrorAndNoCrash) {
  const std::string wrong = "not-" + EnvVar("KAFKA_SASL_PASSWORD");
  auto op = Operator(Properties("SCRAM-SHA-256", wrong), "operator-wrong.log");
  auto wk = Worker(Properties("SCRAM-SHA-256", wrong), "worker-wrong.log");
  Apply("wrong");
  EXPECT_TRUE(WaitUntil([&] { return op->Log().find("Authentication failed") != std::string::npos; }, 60s))
      << op->Log();
  EXPECT_TRUE(WaitUntil([&] { return wk->Log().find("Authentication failed") != std::string::npos; }, 60s))
      << wk->Log();
  EXPECT_TRUE(op->Running()) << op->Log();
  EXPECT_TRUE(wk->Running()) << wk->Log();
  op->Signal(SIGTERM);
  wk->Signal(SIGTERM);
  EXPECT_EQ(op->Wait(20s).value_or(-1), 0) << op->Log();
  EXPECT_EQ(wk->Wait(20s).value_or(-1), 0) << wk->Log();
  for (const auto* p : {op.get(), wk.get()}) EXPECT_THAT(p->Log(), Not(HasSubstr(wrong)));
}

TEST_F(KafkaSecurityTest, AMalformedPropertyIsRefusedWithoutEchoingIt) {
  Process op({std::string(CRONLANE_BIN_DIR) + "/cronlane-operator", "--kafka-bootstrap=x:1"},
             (dir_ / "bad.log").string(), {{"CRONLANE_KAFKA_PROPERTIES", "sasl.username=u;hunter2"}});
  EXPECT_EQ(op.Wait(10s).value_or(-1), 2);
  EXPECT_THAT(op.Log(), HasSubstr("--kafka-property #2 is not KEY=VALUE"));
  EXPECT_THAT(op.Log(), Not(HasSubstr("hunter2")));
}

}  // namespace
}  // namespace cronlane::testing
