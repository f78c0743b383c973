// The RBAC in manifests/base is sufficient and minimal: the operator runs under the
// ServiceAccount's own token and does its job, and `kubectl auth can-i --as` shows
// it can do what it needs and nothing else.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "tests/support/process.h"
#include "tests/support/test_env.h"

namespace cronlane::testing {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

const std::string kAs = "--as=system:serviceaccount:cronlane-system:cronlane-operator";

class RbacTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto r = Kubectl("apply -k " + std::string(CRONLANE_SOURCE_DIR) + "/manifests/base");
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  bool CanI(const std::string& what) {
    auto r = Kubectl("auth can-i " + kAs + " " + what);
    return r.output.rfind("yes", 0) == 0;
  }
};

TEST_F(RbacTest, AllowsWhatTheOperatorNeeds) {
  for (const char* what :
       {"list scheduledtasks.cronlane.dev -A", "watch scheduledtasks.cronlane.dev -A",
        "get scheduledtasks.cronlane.dev -n team-a", "patch scheduledtasks.cronlane.dev --subresource=status -n team-a",
        "create events.events.k8s.io -n team-a", "get leases.coordination.k8s.io -n cronlane-system",
        "create leases.coordination.k8s.io -n cronlane-system", "update leases.coordination.k8s.io -n cronlane-system",
        "list leases.coordination.k8s.io -n cronlane-system", "delete leases.coordination.k8s.io -n cronlane-system",
        "watch workerpools.cronlane.dev -A", "patch workerpools.cronlane.dev --subresource=status -n team-a",
        "get deployments.apps --subresource=scale -n team-a", "patch deployments.apps --subresource=scale -n team-a",
        "patch statefulsets.apps --subresource=scale -n team-a", "delete scheduledtasks.cronlane.dev -n team-a",
        "watch backfills.cronlane.dev -A", "patch backfills.cronlane.dev --subresource=status -n team-a"}) {
    EXPECT_TRUE(CanI(what)) << what;
  }
}

TEST_F(RbacTest, DeniesEverythingElse) {
  for (const char* what :
       {"create scheduledtasks.cronlane.dev -n team-a", "update scheduledtasks.cronlane.dev -n team-a",
        "patch scheduledtasks.cronlane.dev -n team-a", "get secrets -A", "get secrets -n cronlane-system",
        "list pods -A", "create events -n team-a", "delete events.events.k8s.io -n team-a",
        "update leases.coordination.k8s.io -n default", "delete leases.coordination.k8s.io -n default",
        "create deployments.apps -A", "patch deployments.apps -n team-a", "get deployments.apps -n team-a",
        "patch workerpools.cronlane.dev -n team-a", "create backfills.cronlane.dev -n team-a",
        "patch backfills.cronlane.dev -n team-a", "delete backfills.cronlane.dev -n team-a", "'*' '*'"}) {
    EXPECT_FALSE(CanI(what)) << what;
  }
}

TEST_F(RbacTest, OperatorWorksWithOnlyItsServiceAccountToken) {
  std::string ns = UniqueName("rbac");
  ASSERT_EQ(Kubectl("create namespace " + ns).exit_code, 0);
  auto token = Kubectl("create token cronlane-operator -n cronlane-system --duration=1h");
  ASSERT_EQ(token.exit_code, 0) << token.output;
  std::string tok = token.output;
  while (!tok.empty() && (tok.back() == '\n' || tok.back() == '\r')) tok.pop_back();
  auto dir = std::filesystem::temp_directory_path() / UniqueName("rbac-kubeconfig");
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "config") << "apiVersion: v1\nkind: Config\ncurrent-context: sa\nclusters:\n- name: local\n  "
                                   "cluster:\n    server: "
                                << EnvVar("KUBE_APISERVER_URL")
                                << "\n    certificate-authority: " << EnvVar("KUBE_CA_FILE")
                                << "\nusers:\n- name: sa\n  user:\n    token: " << tok
                                << "\ncontexts:\n- name: sa\n  context: {cluster: local, user: sa}\n";
  int mport = FreePort();
  std::string lease = UniqueName("lease");
  Process op(OperatorCommand(ns, {"--kubeconfig=" + (dir / "config").string(), "--leader-elect",
                                  "--leader-election-namespace=cronlane-system", "--leader-election-id=" + lease,
                                  "--shards=2", "--metrics-bind-address=127.0.0.1:" + std::to_string(mport)}),
             (dir / "operator.log").string());
  auto apply = [&](const std::string& name, const std::string& schedule) {
    std::string yaml = "apiVersion: cronlane.dev/v1alpha1\nkind: ScheduledTask\nmetadata: {name: " + name +
                       "}\nspec:\n  schedule: \"" + schedule + "\"\n  target: {topic: t}\n";
    return KubectlApply(ns, yaml);
  };
  ASSERT_EQ(apply("good", "0 * * * *").exit_code, 0);
  ASSERT_EQ(apply("bad", "0 0 30 2 *").exit_code, 0);
  auto reason = [&](const std::string& name) {
    return Kubectl("get st " + name + " -n " + ns + " -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].reason}'")
        .output;
  };
  EXPECT_TRUE(WaitUntil([&] { return reason("good") == "Scheduled" && reason("bad") == "InvalidSchedule"; }, 30s))
      << op.Log();
  EXPECT_TRUE(WaitUntil(
      [&] { return !KubectlGet("get events -n " + ns + " --field-selector reason=InvalidSchedule -o name").empty(); },
      10s));
  // With --shards the leader Lease guards the WorkerPool controller; the shards
  // have Leases of their own, listed by label.
  for (const std::string& name : {lease, lease + "-shard-0", lease + "-shard-1"}) {
    EXPECT_TRUE(WaitUntil(
        [&] {
          return Kubectl("get lease " + name + " -n cronlane-system -o jsonpath='{.spec.holderIdentity}'")
                     .output.find("_" + std::to_string(op.pid()) + "_") != std::string::npos;
        },
        10s))
        << name;
  }
  std::string log = op.Log();
  EXPECT_THAT(log, ::testing::Not(HasSubstr("PERMISSION_DENIED"))) << log;
  EXPECT_THAT(log, ::testing::Not(HasSubstr("forbidden"))) << log;
  op.Signal(SIGTERM);
  EXPECT_EQ(op.Wait(10s).value_or(-1), 0) << op.Log();
  // Shutting down released the shards and deleted the member Lease.
  EXPECT_EQ(Kubectl("get lease " + lease + "-shard-0 -n cronlane-system -o jsonpath='{.spec.holderIdentity}'").output,
            "");
  EXPECT_EQ(Kubectl("get leases -n cronlane-system -l cronlane.dev/lease-role=member,cronlane.dev/lease-group=" +
                    lease + " -o name")
                .output,
            "");
  log = op.Log();
  EXPECT_THAT(log, ::testing::Not(HasSubstr("forbidden"))) << log;
  Kubectl("delete namespace " + ns + " --wait=false");
}

}  // namespace
}  // namespace cronlane::testing
