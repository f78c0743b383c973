// cronlane on Kubernetes, the way a user installs it: the project's image loaded
// into the local node's containerd, `kubectl apply -k manifests/overlays/local`, and
// the operator running as Pods of its Deployment with its ServiceAccount token,
// probes, non-root user and read-only root filesystem. Tasks applied with kubectl in
// a namespace of the test fire through the operator Pods into the environment's
// Kafka; the test reads them back from the host and audits them (each occurrence
// once, none missing).
//
// One process for the suite (ctest runs it whole): SetUpTestSuite installs, the
// tests share the install, TearDownTestSuite removes it (UninstallCronlane).

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <string>

#include "tests/support/operator_fixture.h"
#include "tests/support/process.h"
#include "tests/support/test_env.h"
#include "tests/support/topic_reader.h"

namespace cronlane::testing {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

const std::string kSystem = "cronlane-system";
const std::string kOverlay = std::string(CRONLANE_SOURCE_DIR) + "/manifests/overlays/local";

// The operator's Pods that are not being deleted, and whether each is Ready.
std::map<std::string, bool> OperatorPodsReady() {
  std::istringstream in(KubectlGet("get pods -n " + kSystem +
                                   " -l app.kubernetes.io/name=cronlane-operator --no-headers -o custom-columns="
                                   "NAME:.metadata.name,DELETING:.metadata.deletionTimestamp,"
                                   "READY:'.status.conditions[?(@.type==\"Ready\")].status'"));
  std::map<std::string, bool> pods;
  for (std::string name, deleting, ready; in >> name >> deleting >> ready;) {
    if (deleting == "<none>") pods[name] = ready == "True";
  }
  return pods;
}

std::vector<std::string> OperatorPods() {
  std::vector<std::string> names;
  for (const auto& [name, ready] : OperatorPodsReady()) names.push_back(name);
  return names;
}

std::set<std::string> ReadyOperatorPods() {
  std::set<std::string> names;
  for (const auto& [name, ready] : OperatorPodsReady()) {
    if (ready) names.insert(name);
  }
  return names;
}

// The leader Lease's holder (hostname_pid_..., the hostname being the Pod's name).
std::string LeaseHolder() {
  return KubectlGet("get lease cronlane-operator -n " + kSystem + " -o jsonpath='{.spec.holderIdentity}'");
}

// The Pod named in the Lease's holder, or "".
std::string LeaderPod() {
  const std::string holder = LeaseHolder();
  const auto sep = holder.find('_');
  return sep == std::string::npos ? "" : holder.substr(0, sep);
}

class ClusterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    UninstallCronlane();
    LoadImageIntoNode();
    if (HasFatalFailure()) return;
    auto applied = Kubectl("apply -k " + ShellQuote(kOverlay));
    ASSERT_EQ(applied.exit_code, 0) << applied.output;
    auto rolled = Kubectl("rollout status deployment/cronlane-operator -n " + kSystem + " --timeout=180s");
    ASSERT_EQ(rolled.exit_code, 0) << rolled.output << Kubectl("describe pods -n " + kSystem).output;
  }
  static void TearDownTestSuite() { UninstallCronlane(); }
  void SetUp() override {
    ns_ = UniqueName("cluster");
    ASSERT_EQ(Kubectl("create namespace " + ns_).exit_code, 0);
  }
  void TearDown() override {
    if (HasFailure()) {
      std::cerr << Kubectl("get pods -n " + kSystem + " -o wide").output;
      for (const auto& pod : OperatorPods()) {
        std::cerr << "---- " << pod << "\n" << Kubectl("logs --tail=40 " + pod + " -n " + kSystem).output;
      }
    }
    Kubectl("delete namespace " + ns_ + " --wait=false");
  }
  // EverySecondTasks(n, topic) in the test's namespace; kubectl's output.
  std::string Apply(int n, const std::string& topic) { return KubectlApply(ns_, EverySecondTasks(n, topic)).output; }
  // The operator Pods until `n` are Ready, within `timeout`.
  static bool WaitForReadyPods(size_t n, std::chrono::milliseconds timeout) {
    return WaitUntil([n] { return ReadyOperatorPods().size() == n; }, timeout);
  }

  std::string ns_;
};

TEST_F(ClusterTest, TheOperatorPodRunsAsInstalledAndFiresEveryOccurrenceOnce) {
  ASSERT_TRUE(WaitForReadyPods(1, 60s)) << "the dev overlay runs one operator Pod, Ready (its probes answer)";
  const std::string pod = *ReadyOperatorPods().begin();
  ASSERT_TRUE(WaitUntil([&] { return LeaderPod() == pod; }, 60s)) << "the Pod leads: " << LeaseHolder();

  // As the manifests say: a non-root user, a root filesystem it cannot write, and
  // no credential but its ServiceAccount's token (in-cluster config, no kubeconfig).
  auto exec = [&](const std::string& cmd) { return Kubectl("exec " + pod + " -n " + kSystem + " -- " + cmd); };
  auto uid = exec("id -u");
  ASSERT_EQ(uid.exit_code, 0) << uid.output;
  EXPECT_EQ(uid.output, "65532\n");
  auto write = exec("touch /tmp/cronlane-was-here");  // /tmp: writable to anyone, were the root writable
  EXPECT_NE(write.exit_code, 0);
  EXPECT_THAT(write.output, HasSubstr("Read-only file system"));
  auto token = exec("cat /var/run/secrets/kubernetes.io/serviceaccount/namespace");
  EXPECT_EQ(token.output, kSystem) << "the ServiceAccount token is mounted";
  auto env = exec("env");
  EXPECT_THAT(env.output, HasSubstr("KUBERNETES_SERVICE_HOST=10.0.0.1"));
  EXPECT_THAT(env.output, ::testing::Not(HasSubstr("KUBECONFIG")));
  EXPECT_EQ(KubectlGet("get pod " + pod + " -n " + kSystem + " -o jsonpath='{.spec.serviceAccountName}'"),
            "cronlane-operator");

  const std::string topic = ns_ + ".jobs";
  TopicReader reader(topic);
  ASSERT_THAT(Apply(5, topic), HasSubstr("t4 created"));
  ASSERT_TRUE(reader.ReadUntil(30, 60s)) << "five every-second tasks fire through the operator Pod";
  reader.ReadFor(3s);
  auto [total, missing, dups] = Audit(reader.messages());
  std::cout << "operator Pod: " << total << " occurrences, " << missing << " missing, " << dups << " duplicated\n";
  EXPECT_EQ(missing, 0U);
  EXPECT_EQ(dups, 0U);
  EXPECT_FALSE(KubectlGet("get st t0 -n " + ns_ + " -o jsonpath='{.status.lastScheduleTime}'").empty())
      << "the operator Pod writes status";

  // The console (the dev overlay's component) as docs/operations.md opens it: bound
  // to the Pod's loopback, reached through kubectl port-forward.
  const int local = FreePort();
  std::string kubectl = RunShell("command -v kubectl").output;  // Process runs a path, not a PATH lookup
  kubectl.erase(kubectl.find_last_not_of('\n') + 1);
  Process forward({kubectl, "--kubeconfig", EnvVar("KUBECONFIG"), "port-forward", "-n", kSystem, "pod/" + pod,
                   std::to_string(local) + ":8082"},
                  (std::filesystem::temp_directory_path() / (ns_ + "-port-forward.log")).string());
  EXPECT_TRUE(WaitUntil(
      [&] { return HttpGet(local, "/api/v1/overview?namespace=" + ns_).find("\"tasksTotal\":5") != std::string::npos; },
      60s))
      << forward.Log() << "\n"
      << HttpGet(local, "/api/v1/overview?namespace=" + ns_);
  EXPECT_THAT(HttpGet(local, "/"), HasSubstr("<title>cronlane console</title>"));
}

TEST_F(ClusterTest, KillingTheLeaderPodAndARollingUpdateLoseAndDuplicateNothing) {
  ASSERT_EQ(Kubectl("scale deployment/cronlane-operator -n " + kSystem + " --replicas=2").exit_code, 0);
  ASSERT_TRUE(WaitForReadyPods(2, 120s)) << "a leader and a standby, both Ready";
  const std::string topic = ns_ + ".failover";
  TopicReader reader(topic);
  ASSERT_THAT(Apply(10, topic), HasSubstr("t9 created"));
  ASSERT_TRUE(reader.ReadUntil(30, 60s)) << "the tasks fire";

  // kill the leader's Pod without a grace period: the standby takes over.
  const std::string leader = LeaderPod();
  ASSERT_FALSE(leader.empty()) << LeaseHolder();
  ASSERT_EQ(Kubectl("delete pod " + leader + " -n " + kSystem + " --grace-period=0 --force").exit_code, 0);
  ASSERT_TRUE(WaitUntil(
      [&] {
        const std::string now = LeaderPod();
        return !now.empty() && now != leader;
      },
      90s))
      << "another Pod leads after the leader's Pod was killed; holder " << LeaseHolder();
  size_t before = reader.messages().size();
  ASSERT_TRUE(reader.ReadUntil(before + 30, 60s)) << "the new leader fires";

  // A rolling update to a new image tag (the same image under another name).
  LoadImageIntoNode("cronlane/cronlane:rollout");
  ASSERT_FALSE(HasFatalFailure());
  ASSERT_EQ(
      Kubectl("set image deployment/cronlane-operator -n " + kSystem + " operator=cronlane/cronlane:rollout").exit_code,
      0);
  auto rolled = Kubectl("rollout status deployment/cronlane-operator -n " + kSystem + " --timeout=240s");
  ASSERT_EQ(rolled.exit_code, 0) << rolled.output;
  ASSERT_TRUE(WaitForReadyPods(2, 120s));
  before = reader.messages().size();
  ASSERT_TRUE(reader.ReadUntil(before + 30, 60s)) << "the updated Deployment fires";
  reader.ReadFor(3s);
  auto [total, missing, dups] = Audit(reader.messages());
  std::cout << "leader Pod killed, then a rolling update: " << total << " occurrences, " << missing << " missing, "
            << dups << " duplicated\n";
  EXPECT_EQ(missing, 0U);
  EXPECT_EQ(dups, 0U);
  for (const auto& pod : OperatorPods()) {
    EXPECT_EQ(KubectlGet("get pod " + pod + " -n " + kSystem + " -o jsonpath='{.spec.containers[0].image}'"),
              "cronlane/cronlane:rollout");
  }
}

// The webhook without cert-manager, as installed (manifests/webhook-selfsigned):
// the operator Pod makes its certificate, writes the CA into the configuration, and
// the apiserver reaches it through the Service: a bad task is refused at apply.
TEST_F(ClusterTest, TheOperatorPodServesTheWebhookWithACertificateItMadeItself) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / (ns_ + "-overlay");
  std::filesystem::create_directories(dir);
  const std::string manifests = std::filesystem::relative(std::string(CRONLANE_SOURCE_DIR) + "/manifests", dir);
  std::ofstream(dir / "kustomization.yaml")
      << "resources: [" << manifests << "/overlays/local]\ncomponents: [" << manifests << "/webhook-selfsigned]\n";
  auto applied = Kubectl("apply -k " + ShellQuote(dir.string()));
  ASSERT_EQ(applied.exit_code, 0) << applied.output;
  auto rolled = Kubectl("rollout status deployment/cronlane-operator -n " + kSystem + " --timeout=180s");
  ASSERT_EQ(rolled.exit_code, 0) << rolled.output;
  const std::string bad =
      "apiVersion: cronlane.dev/v1alpha1\nkind: ScheduledTask\nmetadata: {name: bad}\n"
      "spec: {schedule: \"0 0 30 2 *\", target: {topic: t}}\n";
  // failurePolicy Ignore: until the Pod serves, the apply goes through (and is undone).
  std::string out;
  EXPECT_TRUE(WaitUntil(
      [&] {
        out = KubectlApply(ns_, bad).output;
        if (out.find("denied the request") != std::string::npos) return true;
        Kubectl("delete st bad -n " + ns_ + " --ignore-not-found");
        return false;
      },
      90s))
      << out;
  EXPECT_THAT(out, HasSubstr("spec.schedule: "));
  EXPECT_FALSE(KubectlGet("get validatingwebhookconfiguration cronlane -o "
                          "jsonpath='{.webhooks[0].clientConfig.caBundle}'")
                   .empty());
  EXPECT_EQ(KubectlGet("get secret cronlane-webhook-tls -n " + kSystem + " -o jsonpath='{.type}'"),
            "kubernetes.io/tls");
  EXPECT_THAT(KubectlApply(ns_, EverySecondTasks(1, ns_ + ".jobs")).output, HasSubstr("t0 created"));
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace cronlane::testing
