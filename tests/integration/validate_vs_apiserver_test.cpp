// `cronlane validate` agrees with the real apiserver: what the apiserver refuses at
// apply, validate refuses as a schema problem; what it accepts, validate accepts
// unless the operator would refuse it (schedule, time zone, payload size).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "common/limits.h"
#include "tests/support/corpus.h"
#include "tests/support/test_env.h"

namespace cronlane::testing {
namespace {

TEST(ValidateVsApiserver, SameVerdictsOnTheCorpus) {
  auto corpus = LoadCorpus(std::string(CRONLANE_SOURCE_DIR) + "/tests/testdata/validate");
  ASSERT_GE(corpus.size(), 15U);
  std::string big = (std::filesystem::temp_directory_path() / UniqueName("payload")).string() + ".yaml";
  WriteLargePayloadManifest(big, kMaxPayloadBytes + 10);
  corpus.push_back({big, "semantic", "spec.payload", "ScheduledTask"});

  std::string ns = UniqueName("validate");
  ASSERT_EQ(Kubectl("create namespace " + ns).exit_code, 0);
  for (const auto& c : corpus) {
    auto server = Kubectl("apply --dry-run=server -n " + ns + " -f " + ShellQuote(c.path));
    auto offline = RunShell(std::string(CRONLANE_BIN_DIR) + "/cronlane validate " + ShellQuote(c.path));
    if (c.expect == "schema") {
      EXPECT_NE(server.exit_code, 0) << c.path << ": the apiserver accepted it:\n" << server.output;
      EXPECT_THAT(server.output, ::testing::HasSubstr(c.field)) << c.path;
    } else {
      EXPECT_EQ(server.exit_code, 0) << c.path << ": the apiserver refused it:\n" << server.output;
    }
    EXPECT_EQ(offline.exit_code, c.expect == "valid" ? 0 : 1) << c.path << "\n" << offline.output;
  }
  Kubectl("delete namespace " + ns + " --wait=false");
}

}  // namespace
}  // namespace cronlane::testing
