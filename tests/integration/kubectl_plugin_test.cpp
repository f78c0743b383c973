// `kubectl cronlane` against the real apiserver with the real kubectl: the binary
// installed as kubectl-cronlane is found by kubectl as a plugin, `status` reads the
// task and its WorkerPool through kubectl, and kubectl's plugin completion
// (kubectl_complete-cronlane) offers the subcommands and flags.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/support/test_env.h"

namespace cronlane::testing {
namespace {

using ::testing::HasSubstr;

// kubectl with the build's bin directory first on PATH (where kubectl-cronlane is).
// KUBECONFIG goes in the environment: kubectl refuses flags before a plugin's name,
// and the plugin's own kubectl calls inherit it, as they do for users.
CommandResult PluginKubectl(const std::string& args) {
  return RunShell("KUBECONFIG=" + ShellQuote(EnvVar("KUBECONFIG")) +
                  " PATH=" + ShellQuote(std::string(CRONLANE_BIN_DIR)) + ":\"$PATH\" kubectl " + args);
}

TEST(KubectlPlugin, StatusShowsTheScheduleNextFiresAndTheWorkerPool) {
  const std::string ns = UniqueName("plugin");
  ASSERT_EQ(Kubectl("create namespace " + ns).exit_code, 0);
  auto applied = KubectlApply(ns,
                              "apiVersion: cronlane.dev/v1alpha1\nkind: ScheduledTask\nmetadata: {name: report}\n"
                              "spec:\n  schedule: \"0 9 * * 1-5\"\n  timeZone: Europe/Berlin\n"
                              "  target: {topic: reports}\n---\napiVersion: cronlane.dev/v1alpha1\nkind: WorkerPool\n"
                              "metadata: {name: reporters}\n"
                              "spec: {scaleTargetRef: {name: w}, topic: reports, consumerGroup: g}\n");
  ASSERT_EQ(applied.exit_code, 0) << applied.output;

  // kubectl's habit: -n NAMESPACE.
  auto r = PluginKubectl("cronlane status report -n " + ns + " --local-zone America/New_York --count 3");
  ASSERT_EQ(r.exit_code, 0) << r.output;
  EXPECT_THAT(r.output, HasSubstr("ScheduledTask " + ns + "/report\n"));
  EXPECT_THAT(r.output, HasSubstr("schedule:    0 9 * * 1-5\n  timeZone:    Europe/Berlin\n"));
  // 09:00 in Berlin, 03:00 in New York, in summer or winter time.
  EXPECT_THAT(r.output, ::testing::ContainsRegex("Next fires:\n  [0-9-]+T09:00:00\\+0[12]:00 \\(CES?T\\)   local "
                                                 "[0-9-]+T0[23]:00:00-0[45]:00 \\(E[SD]T\\)\n"));
  EXPECT_THAT(r.output, HasSubstr("WorkerPool consuming reports:\n  reporters: lag"));

  auto missing = PluginKubectl("cronlane status " + ns + "/nope");
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_THAT(missing.output, HasSubstr("cronlane status: Error from server (NotFound)"));

  auto subcommands = PluginKubectl("__complete cronlane st 2>/dev/null");
  EXPECT_EQ(subcommands.output, "status\n:4\n");
  auto flags = PluginKubectl("__complete cronlane backfill --max 2>/dev/null");
  EXPECT_EQ(flags.output, "--max-per-second\n:4\n");
  Kubectl("delete namespace " + ns + " --wait=false");
}

}  // namespace
}  // namespace cronlane::testing
