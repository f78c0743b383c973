// What GitOps tools decide about live cronlane objects, asked of the tools' own code
// against the real apiserver: kstatus (sigs.k8s.io/cli-utils, the health library of
// Flux's kustomize-controller and kpt, built by tests/env/build-gitops-tools.sh),
// Argo CD's health check as shipped in manifests/gitops/argocd (run by Lua 5.1, the
// language of Argo CD's interpreter), `kubectl wait --for=condition=Ready`, and the
// Flux sample in manifests/gitops/flux checked by the API server with Flux's CRDs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
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

// The directory build-gitops-tools.sh prints (its last line; it builds on first use).
std::string GitopsTools() {
  static const std::string dir = [] {
    auto r = RunShell(std::string(CRONLANE_SOURCE_DIR) + "/tests/env/build-gitops-tools.sh");
    EXPECT_EQ(r.exit_code, 0) << r.output;
    std::string out = r.output;
    while (!out.empty() && out.back() == '\n') out.pop_back();
    return out.substr(out.rfind('\n') == std::string::npos ? 0 : out.rfind('\n') + 1);
  }();
  return dir;
}

// "namespace/name\tstatus\tmessage" lines -> name -> status (and messages).
std::map<std::string, std::string> ParseVerdicts(const std::string& out, std::map<std::string, std::string>* messages) {
  std::map<std::string, std::string> verdicts;
  std::istringstream in(out);
  std::string line;
  while (std::getline(in, line)) {
    auto tab1 = line.find('\t');
    if (tab1 == std::string::npos) continue;
    auto tab2 = line.find('\t', tab1 + 1);
    std::string key = line.substr(0, tab1);
    key = key.substr(key.find('/') + 1);
    verdicts[key] = line.substr(tab1 + 1, tab2 == std::string::npos ? std::string::npos : tab2 - tab1 - 1);
    if (messages != nullptr && tab2 != std::string::npos) (*messages)[key] = line.substr(tab2 + 1);
  }
  return verdicts;
}

class GitopsTest : public OperatorFixture {
 protected:
  GitopsTest() : OperatorFixture("gitops") {}

  // Four tasks, two pools and two backfills as a GitOps repository would hold them.
  void ApplyObjects() {
    const std::string topic = ns_ + ".gitops";
    auto task = [&](const std::string& name, const std::string& schedule, const std::string& extra) {
      return "---\napiVersion: cronlane.dev/v1alpha1\nkind: ScheduledTask\nmetadata: {name: " + name +
             "}\nspec:\n  schedule: \"" + schedule + "\"\n  target: {topic: " + topic + "}\n" + extra;
    };
    // The pools' topic has no traffic: the healthy pool measures a lag of 0 and stays
    // at 0 replicas.
    const std::string pool_topic = ns_ + ".pool";
    CreateTestTopic(pool_topic, 2);
    auto pool = [&](const std::string& name, const std::string& target) {
      return "---\napiVersion: cronlane.dev/v1alpha1\nkind: WorkerPool\nmetadata: {name: " + name +
             "}\nspec:\n  scaleTargetRef: {name: " + target + "}\n  topic: " + pool_topic +
             "\n  consumerGroup: " + ns_ + "\n  pollIntervalSeconds: 2\n";
    };
    // Three seconds of 2020: the one for a running task completes.
    auto backfill = [&](const std::string& name, const std::string& of) {
      return "---\napiVersion: cronlane.dev/v1alpha1\nkind: Backfill\nmetadata: {name: " + name +
             "}\nspec:\n  taskName: " + of + "\n  from: \"2020-01-01T00:00:00Z\"\n  to: \"2020-01-01T00:00:03Z\"\n";
    };
    std::string out =
        Apply(task("running", "* * * * * *", "") + task("suspended", "* * * * *", "  suspend: true\n") +
              task("never", "0 0 30 2 *", "") + task("badzone", "0 3 * * *", "  timeZone: Mars/Olympus_Mons\n") +
              "---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: workers}\nspec:\n  replicas: 0\n"
              "  selector: {matchLabels: {app: workers}}\n  template:\n    metadata: {labels: {app: workers}}\n"
              "    spec:\n      containers: [{name: w, image: cronlane/cronlane:0.1.0}]\n" +
              pool("healthy", "workers") + pool("orphan", "no-such-deployment") + backfill("filled", "running") +
              backfill("stray", "no-such-task"));
    ASSERT_THAT(out, HasSubstr("workerpool.cronlane.dev/orphan created")) << out;
    ASSERT_THAT(out, HasSubstr("backfill.cronlane.dev/stray created")) << out;
  }
  // kubectl get -o json of the test's tasks, pools and backfills, piped to `tool`.
  std::string Through(const std::string& tool) {
    auto r = Kubectl("get scheduledtasks,workerpools,backfills -n " + ns_ + " -o json | " + tool);
    EXPECT_EQ(r.exit_code, 0) << r.output;
    return r.output;
  }
  std::map<std::string, std::string> Kstatus(std::map<std::string, std::string>* messages = nullptr) {
    return ParseVerdicts(Through(GitopsTools() + "/bin/kstatus"), messages);
  }
  std::map<std::string, std::string> ArgoHealth(std::map<std::string, std::string>* messages = nullptr) {
    const std::string src = CRONLANE_SOURCE_DIR;
    return ParseVerdicts(
        Through("lua5.1 " + src + "/tests/gitops/argocd_health.lua " + src + "/manifests/gitops/argocd/health.lua"),
        messages);
  }
};

using Verdicts = std::map<std::string, std::string>;

TEST_F(GitopsTest, KstatusAndArgoCdReadTheConditionsAndKubectlWaitWorks) {
  ApplyObjects();
  ASSERT_FALSE(HasFatalFailure());
  // Before the operator has seen them, nothing is healthy yet: the CRDs default
  // Reconciling=True, so a pipeline waits instead of passing an unchecked spec.
  const Verdicts pending{{"running", "InProgress"}, {"suspended", "InProgress"}, {"never", "InProgress"},
                         {"badzone", "InProgress"}, {"healthy", "InProgress"},   {"orphan", "InProgress"},
                         {"filled", "InProgress"},  {"stray", "InProgress"}};
  EXPECT_EQ(Kstatus(), pending);
  const Verdicts argo_pending{{"running", "Progressing"}, {"suspended", "Progressing"}, {"never", "Progressing"},
                              {"badzone", "Progressing"}, {"healthy", "Progressing"},   {"orphan", "Progressing"},
                              {"filled", "Progressing"},  {"stray", "Progressing"}};
  EXPECT_EQ(ArgoHealth(), argo_pending);

  Process& op = StartOperator();
  const Verdicts expected{{"running", "Current"}, {"suspended", "Current"}, {"never", "Failed"},
                          {"badzone", "Failed"},  {"healthy", "Current"},   {"orphan", "Failed"},
                          {"filled", "Current"},  {"stray", "InProgress"}};
  Verdicts seen;
  ASSERT_TRUE(WaitUntil(
      [&] {
        seen = Kstatus();
        return seen == expected;
      },
      60s))
      << ::testing::PrintToString(seen) << "\n"
      << op.Log();
  // The Backfill of three seconds has fired them (Argo CD: Progressing until then).
  EXPECT_TRUE(WaitUntil(
      [&] {
        return KubectlGet("get backfill filled -n " + ns_ +
                          " -o jsonpath='{.status.conditions[?(@.type==\"Complete\")].status}'") == "True";
      },
      30s));
  // The Backfill of a task that does not exist is seen (not just pending): InProgress
  // either way, so the reason says which.
  EXPECT_TRUE(WaitUntil(
      [&] {
        return KubectlGet("get backfill stray -n " + ns_ +
                          " -o jsonpath='{.status.conditions[?(@.type==\"Ready\")].reason}'") == "TaskNotFound";
      },
      30s));
  Verdicts messages;
  Kstatus(&messages);
  EXPECT_THAT(messages["never"], HasSubstr("can never fire"));
  EXPECT_THAT(messages["badzone"], HasSubstr("Mars/Olympus_Mons"));
  EXPECT_THAT(messages["orphan"], HasSubstr("no-such-deployment"));

  messages.clear();
  EXPECT_EQ(ArgoHealth(&messages), (Verdicts{{"running", "Healthy"},
                                             {"suspended", "Suspended"},
                                             {"never", "Degraded"},
                                             {"badzone", "Degraded"},
                                             {"healthy", "Healthy"},
                                             {"orphan", "Degraded"},
                                             {"filled", "Healthy"},
                                             {"stray", "Progressing"}}));
  EXPECT_THAT(messages["stray"], HasSubstr("TaskNotFound"));
  EXPECT_THAT(messages["never"], HasSubstr("InvalidSchedule: spec.schedule"));
  EXPECT_THAT(messages["orphan"], HasSubstr("TargetNotFound"));

  // kubectl wait: the healthy ones are Ready, the broken ones never become so.
  auto ready = Kubectl("wait --for=condition=Ready --timeout=30s -n " + ns_ +
                       " scheduledtask/running scheduledtask/suspended workerpool/healthy");
  EXPECT_EQ(ready.exit_code, 0) << ready.output;
  auto broken = Kubectl("wait --for=condition=Ready --timeout=2s -n " + ns_ + " scheduledtask/never");
  EXPECT_NE(broken.exit_code, 0) << broken.output;
  auto stalled = Kubectl("wait --for=condition=Stalled --timeout=30s -n " + ns_ +
                         " scheduledtask/never scheduledtask/badzone workerpool/orphan");
  auto complete = Kubectl("wait --for=condition=Complete --timeout=30s -n " + ns_ + " backfill/filled");
  EXPECT_EQ(complete.exit_code, 0) << complete.output;
  EXPECT_EQ(stalled.exit_code, 0) << stalled.output;

  // A person fixes the spec: Stalled goes, the task is Current again.
  ASSERT_EQ(Kubectl("patch scheduledtask badzone -n " + ns_ + " --type=merge -p '{\"spec\":{\"timeZone\":\"UTC\"}}'")
                .exit_code,
            0);
  ASSERT_TRUE(WaitUntil(
      [&] {
        seen = Kstatus();
        return seen["badzone"] == "Current";
      },
      30s))
      << ::testing::PrintToString(seen);
  EXPECT_EQ(KubectlGet("get st badzone -n " + ns_ + " -o jsonpath='{.status.conditions[*].type}'"), "Ready");
}

// The Flux sample, checked by the API server with Flux's own CRDs (strict: an
// unknown or misplaced field is an error, not a warning).
TEST_F(GitopsTest, FluxSampleIsValidForFluxsOwnCrds) {
  auto crds = Kubectl("apply --server-side -f " + GitopsTools() + "/crds");
  ASSERT_EQ(crds.exit_code, 0) << crds.output;
  ASSERT_EQ(Kubectl("wait --for=condition=Established --timeout=60s crd/kustomizations.kustomize.toolkit.fluxcd.io "
                    "crd/gitrepositories.source.toolkit.fluxcd.io")
                .exit_code,
            0);
  Kubectl("create namespace flux-system");
  auto dry = Kubectl("apply --dry-run=server --validate=strict -f " + std::string(CRONLANE_SOURCE_DIR) +
                     "/manifests/gitops/flux/cronlane.yaml");
  EXPECT_EQ(dry.exit_code, 0) << dry.output;
  EXPECT_THAT(dry.output,
              HasSubstr("kustomization.kustomize.toolkit.fluxcd.io/cronlane-tasks created (server dry run)"));
  // The check can fail: a field Flux does not know is refused.
  const std::string bad =
      "apiVersion: kustomize.toolkit.fluxcd.io/v1\nkind: Kustomization\nmetadata: {name: x, namespace: flux-system}\n"
      "spec:\n  interval: 5m\n  sourceRef: {kind: GitRepository, name: cronlane}\n  prune: true\n  waitFor: true\n";
  auto refused = Kubectl("apply --dry-run=server --validate=strict -f - <<< " + ShellQuote(bad));
  EXPECT_NE(refused.exit_code, 0) << refused.output;
  EXPECT_THAT(refused.output, HasSubstr("waitFor"));
  Kubectl("delete namespace flux-system --wait=false");
  Kubectl("delete -f " + GitopsTools() + "/crds --wait=false");
}

}  // namespace
}  // namespace cronlane::testing
