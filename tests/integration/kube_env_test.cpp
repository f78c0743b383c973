// The local control plane is a real kube-apiserver: the ScheduledTask CRD is served,
// and a sample applies and reads back with kubectl the way users drive it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <string>

#include "tests/support/process.h"
#include "tests/support/test_env.h"

namespace cronlane::testing {
namespace {

using ::testing::HasSubstr;

TEST(KubeEnv, ApiserverIsRealAndCrdIsEstablished) {
  auto version = Kubectl("version -o json");
  ASSERT_EQ(version.exit_code, 0) << version.output;
  // The 1.36 control plane (tests/env/versions.sh) and a kubectl of the same
  // minor first on PATH (make, tests/env/lib.sh), not Debian's 1.32.
  const auto v = nlohmann::json::parse(version.output, nullptr, false);
  ASSERT_FALSE(v.is_discarded()) << version.output;
  EXPECT_THAT(v["serverVersion"].value("gitVersion", ""), ::testing::StartsWith("v1.36."));
  EXPECT_THAT(v["clientVersion"].value("gitVersion", ""), ::testing::StartsWith("v1.36."));
  for (std::string crd_name : {"scheduledtasks.cronlane.dev", "workerpools.cronlane.dev"}) {
    auto crd =
        Kubectl("get crd " + crd_name + " -o jsonpath='{.status.conditions[?(@.type==\"Established\")].status}'");
    ASSERT_EQ(crd.exit_code, 0) << crd.output;
    EXPECT_EQ(crd.output, "True") << crd_name;
  }
  // The apiserver publishes a CRD's OpenAPI schema a moment after it is Established.
  CommandResult explain;
  WaitUntil(
      [&] {
        explain = Kubectl("explain scheduledtask.spec.catchUpPolicy");
        return explain.exit_code == 0;
      },
      std::chrono::seconds(20));
  ASSERT_EQ(explain.exit_code, 0) << explain.output;
  EXPECT_THAT(explain.output, HasSubstr("Latest fires only the most recent missed occurrence"));
}

TEST(KubeEnv, ApplySampleAndReadItBack) {
  std::string ns = UniqueName("kube-env");
  ASSERT_EQ(Kubectl("create namespace " + ns).exit_code, 0);
  auto apply =
      Kubectl("apply -n " + ns + " -f " + std::string(CRONLANE_SOURCE_DIR) + "/manifests/samples/hello-every-5s.yaml");
  ASSERT_EQ(apply.exit_code, 0) << apply.output;
  EXPECT_THAT(apply.output, HasSubstr("scheduledtask.cronlane.dev/hello-every-5s created"));

  auto get = Kubectl("get st hello-every-5s -n " + ns +
                     " -o jsonpath='{.spec.schedule}|{.spec.timeZone}|{.spec.target.topic}|{.spec.payload.greeting}|"
                     "{.spec.catchUpPolicy}|{.spec.shards}'");
  ASSERT_EQ(get.exit_code, 0) << get.output;
  // Defaults from the schema are applied by the apiserver.
  EXPECT_EQ(get.output, "*/5 * * * * *|Europe/Berlin|cronlane.demo|hello|Latest|1");

  auto table = Kubectl("get scheduledtasks -n " + ns);
  ASSERT_EQ(table.exit_code, 0) << table.output;
  EXPECT_THAT(table.output, HasSubstr("SCHEDULE"));
  EXPECT_THAT(table.output, HasSubstr("TIMEZONE"));
  EXPECT_THAT(table.output, HasSubstr("*/5 * * * * *"));

  auto category = Kubectl("get cronlane -n " + ns + " -o name");
  EXPECT_THAT(category.output, HasSubstr("scheduledtask.cronlane.dev/hello-every-5s"));

  // The status subresource exists: a status patch does not touch spec.
  auto patch = Kubectl("patch st hello-every-5s -n " + ns +
                       " --subresource=status --type=merge -p '{\"status\":{\"firedCount\":3}}'");
  ASSERT_EQ(patch.exit_code, 0) << patch.output;
  auto fired = Kubectl("get st hello-every-5s -n " + ns + " -o jsonpath='{.status.firedCount}'");
  EXPECT_EQ(fired.output, "3");
  EXPECT_EQ(Kubectl("delete namespace " + ns + " --wait=false").exit_code, 0);
}

TEST(KubeEnv, SchemaRejectsBadInputAtApply) {
  std::string ns = UniqueName("kube-env-bad");
  ASSERT_EQ(Kubectl("create namespace " + ns).exit_code, 0);
  auto apply = [&ns](const std::string& spec) {
    std::string doc = "apiVersion: cronlane.dev/v1alpha1\nkind: ScheduledTask\nmetadata:\n  name: bad\nspec:\n" + spec;
    return KubectlApply(ns, doc);
  };
  auto tz = apply("  schedule: \"TZ=UTC 0 * * * *\"\n  target: {topic: t}\n");
  EXPECT_NE(tz.exit_code, 0);
  EXPECT_THAT(tz.output, HasSubstr("cannot use TZ or CRON_TZ in schedule, use the timeZone field instead"));
  auto policy = apply("  schedule: \"0 * * * *\"\n  catchUpPolicy: Sometimes\n  target: {topic: t}\n");
  EXPECT_NE(policy.exit_code, 0);
  EXPECT_THAT(policy.output, HasSubstr("Unsupported value: \"Sometimes\""));
  auto deadline = apply("  schedule: \"0 * * * *\"\n  startingDeadlineSeconds: -5\n  target: {topic: t}\n");
  EXPECT_NE(deadline.exit_code, 0);
  EXPECT_THAT(deadline.output, HasSubstr("should be greater than or equal to 0"));
  auto missing = apply("  target: {topic: t}\n");
  EXPECT_NE(missing.exit_code, 0);
  // 1.33 writes `Invalid value: "object": set ...`, 1.36 `Invalid value: set ...`.
  EXPECT_THAT(missing.output, HasSubstr("spec.schedule: Invalid value: "));
  EXPECT_THAT(missing.output, HasSubstr("set exactly one of schedule, schedules (recurring) or runAt (once)"));
  EXPECT_EQ(Kubectl("delete namespace " + ns + " --wait=false").exit_code, 0);
}

}  // namespace
}  // namespace cronlane::testing
