// The admission webhook against the real apiserver, registered the way a user
// registers it (a ValidatingWebhookConfiguration with a URL and a caBundle; scoped
// to the test's namespace): `kubectl apply` of every ScheduledTask of the bad-input
// corpus that the operator would refuse fails at once, with the field in the
// message; the valid ones are created; an update to a bad schedule is refused.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/limits.h"
#include "tests/support/corpus.h"
#include "tests/support/operator_fixture.h"
#include "tests/support/process.h"
#include "tests/support/test_env.h"

namespace cronlane::testing {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

class WebhookTest : public OperatorFixture {
 protected:
  WebhookTest() : OperatorFixture("webhook") {}
  void TearDown() override {
    Kubectl("delete validatingwebhookconfiguration cronlane-" + ns_ + " --ignore-not-found");
    OperatorFixture::TearDown();
  }
  // A serving certificate for 127.0.0.1 signed by the environment's CA, in `dir`
  // as tls.crt and tls.key (what a cert-manager Secret mount holds).
  void MakeCertificate(const std::string& dir) {
    const std::string ca_dir = std::filesystem::path(EnvVar("KUBE_CA_FILE")).parent_path().string();
    std::filesystem::create_directories(dir);
    std::ofstream(dir + "/ext") << "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n";
    auto r = RunShell("cd " + ShellQuote(dir) +
                      " && openssl req -newkey rsa:2048 -nodes -keyout tls.key -out tls.csr -subj /CN=cronlane-webhook "
                      "2>&1 && openssl x509 -req -in tls.csr -CA " +
                      ShellQuote(ca_dir + "/ca.crt") + " -CAkey " + ShellQuote(ca_dir + "/ca.key") +
                      " -CAcreateserial -CAserial tls.srl -out tls.crt -days 1 -extfile ext 2>&1");
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
  // `with_ca`: the environment's CA as caBundle; without, none (the operator writes it).
  void Register(int port, bool with_ca = true) {
    auto ca = RunShell("base64 -w0 " + ShellQuote(EnvVar("KUBE_CA_FILE")));
    ASSERT_EQ(ca.exit_code, 0);
    if (!with_ca) ca.output.clear();
    const std::string yaml =
        "apiVersion: admissionregistration.k8s.io/v1\nkind: ValidatingWebhookConfiguration\nmetadata: {name: "
        "cronlane-" +
        ns_ + "}\nwebhooks:\n- name: scheduledtasks.cronlane.dev\n  clientConfig:\n    url: https://127.0.0.1:" +
        std::to_string(port) + "/validate-cronlane-dev-v1alpha1-scheduledtask\n" +
        (ca.output.empty() ? "" : "    caBundle: " + ca.output + "\n") +
        "  rules:\n  - {apiGroups: [cronlane.dev], apiVersions: [v1alpha1], operations: [CREATE, UPDATE], "
        "resources: [scheduledtasks]}\n  namespaceSelector: {matchLabels: {kubernetes.io/metadata.name: " +
        ns_ + "}}\n  failurePolicy: Fail\n  sideEffects: None\n  admissionReviewVersions: [v1]\n  timeoutSeconds: 5\n";
    auto r = KubectlApply(ns_, yaml);
    ASSERT_EQ(r.exit_code, 0) << r.output;
  }
};

TEST_F(WebhookTest, KubectlApplyRefusesWhatTheOperatorWouldRefuse) {
  const std::string dir = (std::filesystem::temp_directory_path() / UniqueName("webhook-certs")).string();
  MakeCertificate(dir);
  ASSERT_FALSE(HasFatalFailure());
  const int port = FreePort();
  StartOperator({"--webhook-bind-address=127.0.0.1:" + std::to_string(port), "--webhook-cert-dir=" + dir});
  Register(port);
  ASSERT_FALSE(HasFatalFailure());
  const std::string probe =
      "apiVersion: cronlane.dev/v1alpha1\nkind: ScheduledTask\nmetadata: {name: probe}\n"
      "spec: {schedule: \"0 9 * * *\", target: {topic: t}}\n";
  // failurePolicy Fail: applies fail until the replica serves the webhook.
  ASSERT_TRUE(WaitUntil([&] { return KubectlApply(ns_, probe).exit_code == 0; }, 30s)) << "the webhook serves";

  auto corpus = LoadCorpus(std::string(CRONLANE_SOURCE_DIR) + "/tests/testdata/validate");
  const std::string big = (std::filesystem::temp_directory_path() / UniqueName("payload")).string() + ".yaml";
  WriteLargePayloadManifest(big, kMaxPayloadBytes + 10);
  corpus.push_back({big, "semantic", "spec.payload", "ScheduledTask"});
  int refused = 0, accepted = 0;
  for (const auto& c : corpus) {
    if (c.kind != "ScheduledTask" || c.expect == "schema") continue;
    auto r = Kubectl("apply -n " + ns_ + " -f " + ShellQuote(c.path));
    if (c.expect == "semantic") {
      EXPECT_NE(r.exit_code, 0) << c.path << ": applied:\n" << r.output;
      EXPECT_THAT(r.output, HasSubstr("denied the request: ScheduledTask")) << c.path;
      EXPECT_THAT(r.output, HasSubstr(c.field + ": ")) << c.path;
      ++refused;
    } else {
      EXPECT_EQ(r.exit_code, 0) << c.path << "\n" << r.output;
      ++accepted;
    }
  }
  EXPECT_GE(refused, 8);
  EXPECT_GE(accepted, 5);

  // An update to a schedule that never fires is refused too; the task keeps its spec.
  auto update = Kubectl("patch st probe -n " + ns_ + " --type=merge -p '{\"spec\":{\"schedule\":\"0 0 30 2 *\"}}'");
  EXPECT_NE(update.exit_code, 0);
  EXPECT_THAT(update.output, HasSubstr("spec.schedule: "));
  EXPECT_EQ(KubectlGet("get st probe -n " + ns_ + " -o jsonpath='{.spec.schedule}'"), "0 9 * * *");
  std::filesystem::remove_all(dir);
  std::filesystem::remove(big);
}

TEST_F(WebhookTest, AnUnreadableCertificateEndsTheStartWithAClearError) {
  Process& op = StartOperator({"--webhook-bind-address=127.0.0.1:" + std::to_string(FreePort()),
                               "--webhook-cert-dir=/nonexistent-cronlane-certs"});
  EXPECT_EQ(op.Wait(30s), 2);
  EXPECT_THAT(op.Log(), HasSubstr("admission webhook: cannot read /nonexistent-cronlane-certs/tls.crt"));
}

// --webhook-cert-secret: the operator makes a CA and serving certificate in a Secret,
// writes the CA into the configuration's caBundle, and a second replica serves the
// same certificate from the same Secret; when the certificate is due, a running
// replica re-issues it from the same CA and every replica serves the new one; a
// caBundle someone removed is written again.
TEST_F(WebhookTest, WithoutCertManagerTheReplicasShareACertificateTheyMakeAndRotate) {
  const int port = FreePort(), port_b = FreePort(), port_c = FreePort();
  Register(port, /*with_ca=*/false);
  ASSERT_FALSE(HasFatalFailure());
  auto flags = [&](int p, const std::string& id) {
    return std::vector<std::string>{"--webhook-bind-address=127.0.0.1:" + std::to_string(p),
                                    "--webhook-cert-secret=webhook-tls",
                                    "--webhook-cert-hosts=127.0.0.1",
                                    "--webhook-configuration=cronlane-" + ns_,
                                    "--webhook-cert-check-period=1",
                                    "--leader-election-namespace=" + ns_,
                                    "--transactional-id=" + ns_ + id,
                                    "--checkpoint-topic=" + ns_ + id + ".checkpoints"};
  };
  Process& a = StartOperator(flags(port, "-a"));
  const std::string bad =
      "apiVersion: cronlane.dev/v1alpha1\nkind: ScheduledTask\nmetadata: {name: bad}\n"
      "spec: {schedule: \"0 0 30 2 *\", target: {topic: t}}\n";
  // Refused by the webhook (not by a TLS failure, which failurePolicy Fail also refuses).
  ASSERT_TRUE(
      WaitUntil([&] { return KubectlApply(ns_, bad).output.find("denied the request") != std::string::npos; }, 60s))
      << KubectlApply(ns_, bad).output << "\n"
      << a.Log();
  auto secret = [&](const std::string& key) {
    return KubectlGet("get secret webhook-tls -n " + ns_ + " -o jsonpath='{.data." + key + "}'");
  };
  const std::string ca = secret("ca\\.crt"), cert = secret("tls\\.crt");
  ASSERT_FALSE(ca.empty());
  EXPECT_EQ(KubectlGet("get validatingwebhookconfiguration cronlane-" + ns_ +
                       " -o jsonpath='{.webhooks[0].clientConfig.caBundle}'"),
            ca);
  EXPECT_EQ(KubectlGet("get secret webhook-tls -n " + ns_ + " -o jsonpath='{.type}'"), "kubernetes.io/tls");
  const std::string version =
      KubectlGet("get secret webhook-tls -n " + ns_ + " -o jsonpath='{.metadata.resourceVersion}'");
  // The fingerprint and end date a replica serves; empty while nothing listens (x509's
  // "Could not read certificate" goes to stderr, which RunShell would capture).
  auto served = [](int p) {
    return RunShell("openssl s_client -connect 127.0.0.1:" + std::to_string(p) +
                    " </dev/null 2>/dev/null | openssl x509 -noout -fingerprint -enddate 2>/dev/null")
        .output;
  };
  auto serving = [&](int p) { return served(p).find("Fingerprint") != std::string::npos; };
  const std::string first = served(port);
  EXPECT_THAT(first, HasSubstr("Fingerprint"));

  // A second replica uses the Secret as it is.
  Process& b = StartOperator(flags(port_b, "-b"));
  ASSERT_TRUE(WaitUntil([&] { return serving(port_b); }, 30s)) << b.Log();
  EXPECT_EQ(served(port_b), first);
  EXPECT_EQ(KubectlGet("get secret webhook-tls -n " + ns_ + " -o jsonpath='{.metadata.resourceVersion}'"), version);

  // A serving certificate that ends tomorrow (signed by the same CA) is re-issued
  // by the next replica to start; the CA, and so the caBundle, stay.
  const std::string dir = (std::filesystem::temp_directory_path() / UniqueName("webhook-due")).string();
  std::filesystem::create_directories(dir);
  auto made = RunShell(
      "cd " + ShellQuote(dir) + " && kubectl --kubeconfig " + ShellQuote(EnvVar("KUBECONFIG")) +
      " get secret webhook-tls -n " + ns_ + " -o jsonpath='{.data.ca\\.key}' | base64 -d > ca.key && echo " + ca +
      " | base64 -d > ca.crt && openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout tls.key "
      "-out tls.csr -subj /CN=127.0.0.1 2>&1 && printf 'subjectAltName=IP:127.0.0.1\\n' > ext && openssl x509 -req "
      "-in tls.csr -CA ca.crt -CAkey ca.key -CAcreateserial -CAserial tls.srl -out tls.crt -days 1 -extfile ext "
      "2>&1 && kubectl --kubeconfig " +
      ShellQuote(EnvVar("KUBECONFIG")) + " patch secret webhook-tls -n " + ns_ +
      " --type=merge -p \"{\\\"data\\\":{\\\"tls.crt\\\":\\\"$(base64 -w0 tls.crt)\\\",\\\"tls.key\\\":\\\"$(base64 "
      "-w0 "
      "tls.key)\\\"}}\" 2>&1");
  ASSERT_EQ(made.exit_code, 0) << made.output;
  // What was patched in, from the file (a replica may re-issue it before the Secret
  // could be read back).
  const std::string due = RunShell("base64 -w0 " + ShellQuote(dir + "/tls.crt")).output;
  ASSERT_FALSE(due.empty());
  ASSERT_NE(due, cert);
  // The running replicas re-read the Secret every second here: one of them re-issues
  // the certificate (the other's update loses on the resourceVersion and re-reads).
  EXPECT_TRUE(WaitUntil([&] { return secret("tls\\.crt") != due && !secret("tls\\.crt").empty(); }, 30s))
      << a.Log() << b.Log();
  EXPECT_EQ(secret("ca\\.crt"), ca);
  EXPECT_TRUE(a.Log().find("its certificate is due") != std::string::npos ||
              b.Log().find("its certificate is due") != std::string::npos);
  // A replica that starts now uses it as it is, and all three serve the same pair.
  const std::string renewed = secret("tls\\.crt");
  Process& c = StartOperator(flags(port_c, "-c"));
  ASSERT_TRUE(WaitUntil([&] { return serving(port_c); }, 30s)) << c.Log();
  EXPECT_EQ(secret("tls\\.crt"), renewed);
  EXPECT_TRUE(WaitUntil([&] { return served(port) == served(port_c) && served(port_b) == served(port_c); }, 30s))
      << served(port) << served(port_b) << served(port_c);
  EXPECT_NE(served(port_c), first);
  EXPECT_THAT(KubectlApply(ns_, bad).output, HasSubstr("denied the request"));

  // A configuration reset by someone (a GitOps sync) gets the CA back.
  auto reset = Kubectl("patch validatingwebhookconfiguration cronlane-" + ns_ +
                       " --type=json -p '[{\"op\":\"remove\",\"path\":\"/webhooks/0/clientConfig/caBundle\"}]'");
  ASSERT_EQ(reset.exit_code, 0) << reset.output;
  EXPECT_TRUE(WaitUntil(
      [&] {
        return KubectlGet("get validatingwebhookconfiguration cronlane-" + ns_ +
                          " -o jsonpath='{.webhooks[0].clientConfig.caBundle}'") == ca;
      },
      30s));
  std::filesystem::remove_all(dir);
}

TEST_F(WebhookTest, ASecretItCannotCreateEndsTheStartWithAClearError) {
  Process& op = StartOperator({"--webhook-bind-address=127.0.0.1:" + std::to_string(FreePort()),
                               "--webhook-cert-secret=webhook-tls", "--leader-election-namespace=no-such-namespace-x"});
  EXPECT_EQ(op.Wait(120s), 2) << op.Log();
  EXPECT_THAT(op.Log(), HasSubstr("cannot get a serving certificate in Secret no-such-namespace-x/webhook-tls"));
}

}  // namespace
}  // namespace cronlane::testing
