#include "cli/validate_command.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/limits.h"
#include "tests/support/corpus.h"

namespace cronlane::cli {
namespace {

using ::testing::HasSubstr;

struct Outcome {
  int code;
  std::string out;
  std::string err;
};

Outcome Validate(std::vector<std::string> paths, std::string output = "text") {
  std::ostringstream out, err;
  int code = RunValidate({.paths = std::move(paths), .output = std::move(output)}, out, err);
  return {code, out.str(), err.str()};
}

std::string TempFile(const std::string& name, const std::string& text) {
  auto dir = std::filesystem::temp_directory_path() / ("cronlane-validate-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  auto p = (dir / name).string();
  std::ofstream(p) << text;
  return p;
}

TEST(Validate, CorpusVerdicts) {
  auto corpus = testing::LoadCorpus(std::string(CRONLANE_SOURCE_DIR) + "/tests/testdata/validate");
  ASSERT_GE(corpus.size(), 15U);
  std::string big = TempFile("payload.yaml", "");
  testing::WriteLargePayloadManifest(big, kMaxPayloadBytes + 10);
  corpus.push_back({big, "semantic", "spec.payload", "ScheduledTask"});
  for (const auto& c : corpus) {
    Outcome r = Validate({c.path});
    if (c.expect == "valid") {
      EXPECT_EQ(r.code, 0) << c.path << "\n" << r.out;
      EXPECT_EQ(r.out, "") << c.path;
    } else {
      EXPECT_EQ(r.code, 1) << c.path;
      EXPECT_THAT(r.out, HasSubstr(": " + c.field + ": ")) << c.path;
      // file:line: Kind/name: field: message
      EXPECT_THAT(r.out,
                  ::testing::MatchesRegex(".*\\.yaml:[1-9][0-9]*: (ScheduledTask|WorkerPool|Backfill)/[a-z.-]+: .*\n"))
          << r.out;
    }
  }
}

TEST(Validate, ErrorMessagesNameFieldAndReason) {
  std::string f = TempFile("multi.yaml", R"(apiVersion: cronlane.dev/v1alpha1
kind: ScheduledTask
metadata: {name: one}
spec:
  schedule: "0 0 32 * *"
  target: {topic: t}
---
apiVersion: v1
kind: ConfigMap
metadata: {name: not-ours}
---
apiVersion: cronlane.dev/v1alpha1
kind: ScheduledTask
metadata: {name: two}
spec:
  schedule: "0 * * * *"
  timeZone: Nowhere/Special
  catchUpPolicy: Sometimes
  target: {topic: t}
)");
  Outcome r = Validate({f});
  EXPECT_EQ(r.code, 1);
  EXPECT_EQ(r.out, f + ":5: ScheduledTask/one: spec.schedule: day-of-month: 32 is out of range 1-31\n" + f +
                       ":17: ScheduledTask/two: spec.timeZone: unknown time zone \"Nowhere/Special\" (use an IANA "
                       "name such as \"America/New_York\")\n" +
                       f +
                       ":18: ScheduledTask/two: spec.catchUpPolicy: Unsupported value \"Sometimes\": supported "
                       "values: \"Latest\", \"All\", \"None\"\n");
  EXPECT_THAT(r.err, HasSubstr("2 cronlane document(s) in 1 file(s), 3 problem(s)"));
}

TEST(Validate, JsonOutputForMachines) {
  std::string f = TempFile("json.yaml",
                           "apiVersion: cronlane.dev/v1alpha1\nkind: ScheduledTask\nmetadata: {name: j}\n"
                           "spec:\n  schedule: \"61 * * * *\"\n  target: {topic: t}\n");
  Outcome r = Validate({f}, "json");
  EXPECT_EQ(r.code, 1);
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j.size(), 1U);
  EXPECT_EQ(j[0]["file"], f);
  EXPECT_EQ(j[0]["line"], 5);
  EXPECT_EQ(j[0]["kind"], "ScheduledTask");
  EXPECT_EQ(j[0]["name"], "j");
  EXPECT_EQ(j[0]["field"], "spec.schedule");
  EXPECT_EQ(j[0]["message"], "minute: 61 is out of range 0-59");
  Outcome ok = Validate({std::string(CRONLANE_SOURCE_DIR) + "/manifests/samples"}, "json");
  EXPECT_EQ(ok.code, 0) << ok.out;
  EXPECT_EQ(nlohmann::json::parse(ok.out).size(), 0U);
}

TEST(Validate, DirectoriesAreSearchedRecursively) {
  Outcome r = Validate({std::string(CRONLANE_SOURCE_DIR) + "/tests/testdata/validate"});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.out, HasSubstr("semantic-bad-cron.yaml:6: ScheduledTask/bad-cron: spec.schedule:"));
  EXPECT_THAT(r.out, ::testing::Not(HasSubstr("valid-full.yaml")));
}

TEST(Validate, SyntaxErrorsAndUsage) {
  std::string f = TempFile("broken.yaml", "a: 1\nb: [unclosed\n");
  Outcome r = Validate({f});
  EXPECT_EQ(r.code, 1);
  EXPECT_THAT(r.out, HasSubstr("broken.yaml:"));
  EXPECT_THAT(r.out, HasSubstr("YAML syntax error"));
  Outcome missing = Validate({"/does/not/exist.yaml"});
  EXPECT_EQ(missing.code, 2);
  EXPECT_EQ(missing.err, "cronlane validate: /does/not/exist.yaml: no such file or directory\n");
  EXPECT_EQ(Validate({f}, "xml").code, 2);
  std::string unknown =
      TempFile("kind.yaml", "apiVersion: cronlane.dev/v1alpha1\nkind: CronTab\nmetadata: {name: x}\n");
  EXPECT_THAT(Validate({unknown}).out, HasSubstr("kind: unknown kind \"CronTab\" in cronlane.dev"));
  std::string version = TempFile("ver.yaml", "apiVersion: cronlane.dev/v9\nkind: ScheduledTask\nmetadata: {name: x}\n");
  EXPECT_THAT(Validate({version}).out, HasSubstr("apiVersion: version \"v9\" of ScheduledTask is not served"));
}

}  // namespace
}  // namespace cronlane::cli
