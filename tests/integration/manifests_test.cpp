// manifests/ for GitOps, against the real apiserver: each overlay applies with a
// server-side dry run, then for real, without Pod Security warnings, and `kubectl
// diff -k` afterwards is empty: nothing for a GitOps tool to fight over.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/support/test_env.h"

namespace cronlane::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

std::string Overlay(const std::string& name) {
  return std::string(CRONLANE_SOURCE_DIR) + "/manifests/overlays/" + name;
}

// Each test installs from scratch and leaves nothing behind: on the environment's
// node an install runs real Pods (the operator's Lease, its Kafka settings).
class Installs {
 protected:
  Installs() { UninstallCronlane(); }
  ~Installs() { UninstallCronlane(); }
};

class ManifestsTest : public ::testing::TestWithParam<std::string>, protected Installs {};
class Manifests : public ::testing::Test, protected Installs {};

TEST_P(ManifestsTest, AppliesDryRunThenForRealWithNoDrift) {
  const std::string dir = Overlay(GetParam());
  // A server-side dry run checks namespaced objects against their namespace, so on
  // a fresh cluster the namespace is applied first (docs/operations.md, "Install"):
  // the test does the same rather than rely on an earlier test having created it.
  auto ns = Kubectl("apply -f " + std::string(CRONLANE_SOURCE_DIR) + "/manifests/base/namespace.yaml");
  ASSERT_EQ(ns.exit_code, 0) << ns.output;
  auto dry = Kubectl("apply -k " + dir + " --dry-run=server");
  ASSERT_EQ(dry.exit_code, 0) << dry.output;
  EXPECT_THAT(dry.output, HasSubstr("deployment.apps/cronlane-operator"));
  EXPECT_THAT(dry.output, Not(HasSubstr("PodSecurity"))) << "the pods meet the restricted profile";
  auto real = Kubectl("apply -k " + dir);
  ASSERT_EQ(real.exit_code, 0) << real.output;
  EXPECT_THAT(real.output, Not(HasSubstr("PodSecurity")));
  EXPECT_THAT(real.output, Not(HasSubstr("Warning")));
  auto diff = Kubectl("diff -k " + dir);
  EXPECT_EQ(diff.exit_code, 0) << "kubectl diff -k found drift:\n" << diff.output;
  EXPECT_EQ(diff.output, "");
}

INSTANTIATE_TEST_SUITE_P(Overlays, ManifestsTest, ::testing::Values("dev", "production"));

TEST_F(Manifests, OverlaysDifferWhereTheyShould) {
  ASSERT_EQ(Kubectl("apply -k " + Overlay("dev")).exit_code, 0);
  EXPECT_EQ(Kubectl("get deployment cronlane-operator -n cronlane-system -o jsonpath='{.spec.replicas}'").output, "1");
  EXPECT_EQ(Kubectl("get workerpool cronlane-worker -n cronlane-system -o jsonpath='{.spec.maxReplicas}'").output, "2");
  ASSERT_EQ(Kubectl("apply -k " + Overlay("production")).exit_code, 0);
  EXPECT_EQ(Kubectl("get deployment cronlane-operator -n cronlane-system -o jsonpath='{.spec.replicas}'").output, "2");
  EXPECT_EQ(Kubectl("get pdb cronlane-operator -n cronlane-system -o jsonpath='{.spec.minAvailable}'").output, "1");
  EXPECT_THAT(Kubectl("get deployment cronlane-operator -n cronlane-system -o "
                      "jsonpath='{.spec.template.spec.affinity.podAntiAffinity}'")
                  .output,
              HasSubstr("kubernetes.io/hostname"));
  EXPECT_EQ(Kubectl("get namespace cronlane-system -o "
                    "jsonpath='{.metadata.labels.pod-security\\.kubernetes\\.io/enforce}'")
                .output,
            "restricted");
  // The worker Deployment leaves replicas to its WorkerPool: scaling it is no drift.
  ASSERT_EQ(Kubectl("scale deployment cronlane-worker -n cronlane-system --replicas=3").exit_code, 0);
  auto diff = Kubectl("diff -k " + Overlay("production"));
  EXPECT_EQ(diff.exit_code, 0) << diff.output;
}

}  // namespace
}  // namespace cronlane::testing
