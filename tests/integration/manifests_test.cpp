// manifests/ for GitOps, against the real apiserver: each overlay applies with a
// server-side dry run, then for real, without Pod Security warnings, and `kubectl
// diff -k` afterwards is empty: nothing for a GitOps tool to fight over.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include <yaml-cpp/yaml.h>

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

// The optional webhook component (manifests/webhook) wires the operator to serve the
// path the webhook configuration names, behind a Service, with the certificate's
// Secret where --webhook-cert-dir reads it. Built as a user's overlay builds it (no
// cert-manager here, so not applied).
// The production overlay with `component`, built as a user's overlay builds it.
std::vector<YAML::Node> BuildWithComponent(const std::string& component) {
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / UniqueName("webhook-overlay");
  std::filesystem::create_directories(dir);
  const std::string manifests = std::filesystem::relative(std::string(CRONLANE_SOURCE_DIR) + "/manifests", dir);
  std::ofstream(dir / "kustomization.yaml")
      << "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
         "resources: ["
      << manifests << "/overlays/production]\ncomponents: [" << manifests << "/" << component << "]\n";
  auto built = RunShell("kubectl kustomize " + ShellQuote(dir.string()) + " 2>&1");
  std::filesystem::remove_all(dir);
  EXPECT_EQ(built.exit_code, 0) << built.output;
  return built.exit_code == 0 ? YAML::LoadAll(built.output) : std::vector<YAML::Node>{};
}
YAML::Node Find(const std::vector<YAML::Node>& items, const std::string& kind, const std::string& name) {
  for (const auto& o : items) {
    if (o["kind"].as<std::string>("") == kind && o["metadata"]["name"].as<std::string>("") == name) return o;
  }
  return YAML::Node();
}
std::string Text(const YAML::Node& n) {
  YAML::Emitter e;
  e << YAML::Flow << n;
  return std::string(e.c_str());
}

TEST(ManifestsWebhook, TheComponentWiresTheOperatorToTheWebhookConfiguration) {
  const std::vector<YAML::Node> items = BuildWithComponent("webhook");
  auto find = [&](const std::string& kind, const std::string& name) { return Find(items, kind, name); };
  auto text = Text;
  const YAML::Node deployment = find("Deployment", "cronlane-operator");
  ASSERT_TRUE(deployment.IsMap());
  const YAML::Node container = deployment["spec"]["template"]["spec"]["containers"][0];
  EXPECT_THAT(text(container["args"]), HasSubstr("--webhook-bind-address=:9443"));
  bool port = false;
  for (const auto& p : container["ports"])
    port = port || (p["name"].as<std::string>("") == "webhook" && p["containerPort"].as<int>(0) == 9443);
  EXPECT_TRUE(port) << text(container["ports"]);
  EXPECT_THAT(text(container["volumeMounts"]), HasSubstr("/tmp/k8s-webhook-server/serving-certs"));
  const YAML::Node config = find("ValidatingWebhookConfiguration", "cronlane");
  ASSERT_TRUE(config.IsMap());
  const YAML::Node hook = config["webhooks"][0];
  EXPECT_EQ(hook["clientConfig"]["service"]["path"].as<std::string>(""),
            "/validate-cronlane-dev-v1alpha1-scheduledtask");
  EXPECT_EQ(hook["failurePolicy"].as<std::string>(""), "Ignore");
  EXPECT_TRUE(find("Service", "cronlane-webhook").IsMap());
  EXPECT_TRUE(find("Certificate", "cronlane-webhook").IsMap());
  EXPECT_THAT(text(find("NetworkPolicy", "cronlane-operator")["spec"]["ingress"]), HasSubstr("webhook"));
  EXPECT_EQ(config["metadata"]["annotations"]["cert-manager.io/inject-ca-from"].as<std::string>(""),
            "cronlane-system/cronlane-webhook");
}

// Without cert-manager: the operator keeps the certificate in a Secret it may write
// (by name, but create), patches only its own configuration's caBundle, and mounts
// nothing.
TEST(ManifestsWebhook, TheSelfSignedComponentLetsTheOperatorKeepItsCertificate) {
  const std::vector<YAML::Node> items = BuildWithComponent("webhook-selfsigned");
  const YAML::Node deployment = Find(items, "Deployment", "cronlane-operator");
  ASSERT_TRUE(deployment.IsMap());
  const YAML::Node container = deployment["spec"]["template"]["spec"]["containers"][0];
  EXPECT_THAT(Text(container["args"]), HasSubstr("--webhook-bind-address=:9443"));
  EXPECT_THAT(Text(container["args"]), HasSubstr("--webhook-cert-secret=cronlane-webhook-tls"));
  EXPECT_THAT(Text(container["args"]), HasSubstr("--webhook-configuration=cronlane"));
  EXPECT_THAT(Text(container["volumeMounts"]), ::testing::Not(HasSubstr("serving-certs")));
  EXPECT_FALSE(Find(items, "Certificate", "cronlane-webhook").IsMap());
  const YAML::Node config = Find(items, "ValidatingWebhookConfiguration", "cronlane");
  ASSERT_TRUE(config.IsMap());
  EXPECT_THAT(Text(config["metadata"]), ::testing::Not(HasSubstr("inject-ca-from")));
  EXPECT_TRUE(Find(items, "Service", "cronlane-webhook").IsMap());
  const YAML::Node role = Find(items, "Role", "cronlane-webhook-certificate");
  EXPECT_THAT(Text(role["rules"]), HasSubstr("cronlane-webhook-tls"));
  const YAML::Node cluster_role = Find(items, "ClusterRole", "cronlane-webhook-configuration");
  EXPECT_EQ(cluster_role["rules"][0]["resourceNames"][0].as<std::string>(""), "cronlane") << Text(cluster_role);
  EXPECT_TRUE(Find(items, "ClusterRoleBinding", "cronlane-webhook-configuration").IsMap());
}

}  // namespace
}  // namespace cronlane::testing
