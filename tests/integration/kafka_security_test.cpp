// Kafka security against the real broker's listeners (tests/env/up.sh makes the
// certificates and credentials per run): SASL/SCRAM in plain text, TLS with a client
// certificate, SASL PLAIN over TLS. The operator and a worker configured the way the
// manifests configure them (CRONLANE_KAFKA_PROPERTIES, from the Secret cronlane-kafka,
// files as its mounted keys) fire and run a task; a wrong password or CA is a clear,
// repeated error and no crash; a CA file that cannot be read ends the start-up; the
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
  std::unique_ptr<Process> Operator(const std::string& props, const std::string& log,
                                    const std::string& bootstrap = EnvVar("KAFKA_SASL_BOOTSTRAP")) {
    return std::make_unique<Process>(
        OperatorCommand(ns_,
                        {"--kafka-bootstrap=" + bootstrap, "--results-topic=" + ns_ + ".results", "--log-level=debug"}),
        (dir_ / log).string(), std::map<std::string, std::string>{{"CRONLANE_KAFKA_PROPERTIES", props}});
  }
  std::unique_ptr<Process> Worker(const std::string& props, const std::string& log,
                                  const std::string& bootstrap = EnvVar("KAFKA_SASL_BOOTSTRAP")) {
    return std::make_unique<Process>(
        std::vector<std::string>{std::string(CRONLANE_BIN_DIR) + "/cronlane-worker", "--kafka-bootstrap=" + bootstrap,
                                 "--topic=" + ns_ + ".tasks", "--group=" + ns_, "--results-topic=" + ns_ + ".results",
                                 "--exec=echo task-ran $CE_ID", "--metrics-bind-address=0",
                                 "--health-probe-bind-address=0", "--log-format=text", "--log-level=debug"},
        (dir_ / log).string(), std::map<std::string, std::string>{{"CRONLANE_KAFKA_PROPERTIES", props}});
  }
  void Apply(const std::string& name) {
    std::string yaml = "apiVersion: cronlane.dev/v1alpha1\nkind: ScheduledTask\nmetadata: {name: " + name +
                       "}\nspec:\n  schedule: \"*/2 * * * * *\"\n  target: {topic: " + ns_ + ".tasks}\n";
    auto r = KubectlApply(ns_, yaml);
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  // Applies task `name`, waits until the worker ran it and the operator recorded
  // its success, then stops both: each exits 0 and neither logged `password`.
  void ExpectFiredAndRun(Process& op, Process& wk, const std::string& name, const std::string& password) {
    Apply(name);
    EXPECT_TRUE(WaitUntil([&] { return wk.Log().find("task-ran ") != std::string::npos; }, 60s))
        << op.Log() << wk.Log();
    EXPECT_TRUE(WaitUntil(
        [&] {
          return !KubectlGet("get st " + name + " -n " + ns_ + " -o jsonpath='{.status.lastSuccessfulTime}'").empty();
        },
        30s))
        << op.Log();
    op.Signal(SIGTERM);
    wk.Signal(SIGTERM);
    EXPECT_EQ(op.Wait(20s).value_or(-1), 0);
    EXPECT_EQ(wk.Wait(20s).value_or(-1), 0);
    for (const auto* p : {&op, &wk}) EXPECT_THAT(p->Log(), Not(HasSubstr(password)));
  }
  std::string ns_;
  std::filesystem::path dir_;
};

TEST_F(KafkaSecurityTest, ScramOperatorAndWorkerFireAndRunATask) {
  const std::string password = EnvVar("KAFKA_SASL_PASSWORD");
  auto op = Operator(Properties("SCRAM-SHA-512", password), "operator.log");
  auto wk = Worker(Properties("SCRAM-SHA-256", password), "worker.log");
  ExpectFiredAndRun(*op, *wk, "scram", password);
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

std::string ClientCertificate() {
  return "security.protocol=SSL;ssl.ca.location=" + EnvVar("KAFKA_CA_FILE") +
         ";ssl.certificate.location=" + EnvVar("KAFKA_CLIENT_CERT_FILE") +
         ";ssl.key.location=" + EnvVar("KAFKA_CLIENT_KEY_FILE");
}

std::string PlainOverTls(const std::string& password, const std::string& ca) {
  return "security.protocol=SASL_SSL;sasl.mechanism=PLAIN;sasl.username=" + EnvVar("KAFKA_SASL_USER") +
         ";sasl.password=" + password + ";ssl.ca.location=" + ca;
}

TEST_F(KafkaSecurityTest, TlsWithAClientCertificateAndSaslPlainOverTlsFireAndRunATask) {
  const std::string password = EnvVar("KAFKA_SASL_PASSWORD");
  auto op = Operator(ClientCertificate(), "operator-tls.log", EnvVar("KAFKA_SSL_BOOTSTRAP"));
  auto wk =
      Worker(PlainOverTls(password, EnvVar("KAFKA_CA_FILE")), "worker-tls.log", EnvVar("KAFKA_SASL_SSL_BOOTSTRAP"));
  ExpectFiredAndRun(*op, *wk, "tls", password);
}

TEST_F(KafkaSecurityTest, AWrongCaIsAClearErrorAndNoCrash) {
  // A CA of its own, which did not sign the broker's certificate.
  const std::string other_ca = (dir_ / "other-ca.crt").string();
  auto made = RunShell("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=other-ca -keyout " +
                       ShellQuote((dir_ / "other-ca.key").string()) + " -out " + ShellQuote(other_ca) + " 2>&1");
  ASSERT_EQ(made.exit_code, 0) << made.output;
  auto op = Operator(PlainOverTls(EnvVar("KAFKA_SASL_PASSWORD"), other_ca), "operator-ca.log",
                     EnvVar("KAFKA_SASL_SSL_BOOTSTRAP"));
  auto wk = Worker(PlainOverTls(EnvVar("KAFKA_SASL_PASSWORD"), other_ca), "worker-ca.log",
                   EnvVar("KAFKA_SASL_SSL_BOOTSTRAP"));
  Apply("wrong-ca");
  for (const auto* p : {op.get(), wk.get()}) {
    EXPECT_TRUE(WaitUntil([&] { return p->Log().find("certificate verify failed") != std::string::npos; }, 60s))
        << p->Log();
  }
  EXPECT_TRUE(op->Running()) << op->Log();
  EXPECT_TRUE(wk->Running()) << wk->Log();
  EXPECT_THAT(Kubectl("get st wrong-ca -n " + ns_ + " -o jsonpath='{.status.lastScheduleTime}'").output,
              ::testing::IsEmpty())
      << "nothing reached Kafka, so nothing was recorded as fired";
  op->Signal(SIGTERM);
  wk->Signal(SIGTERM);
  EXPECT_EQ(op->Wait(20s).value_or(-1), 0) << op->Log();
  EXPECT_EQ(wk->Wait(20s).value_or(-1), 0) << wk->Log();
}

TEST_F(KafkaSecurityTest, ACaFileThatCannotBeReadEndsTheStartUp) {
  const std::string props = "security.protocol=SSL;ssl.ca.location=" + (dir_ / "absent.crt").string();
  auto op = Operator(props, "operator-absent.log", EnvVar("KAFKA_SSL_BOOTSTRAP"));
  auto wk = Worker(props, "worker-absent.log", EnvVar("KAFKA_SSL_BOOTSTRAP"));
  EXPECT_EQ(op->Wait(20s).value_or(-1), 2) << op->Log();
  EXPECT_NE(wk->Wait(20s).value_or(0), 0) << wk->Log();
  EXPECT_THAT(op->Log(), HasSubstr("Kafka configuration: creating Kafka producer: ssl.ca.location failed"));
  EXPECT_THAT(wk->Log(), HasSubstr("ssl.ca.location failed"));
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
