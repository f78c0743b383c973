#pragma once
// A gtest fixture for end-to-end tests that run cronlane-operator processes
// against the test environment: a namespace of its own per test, operators
// started with everything named after it (topics, transactional.id, Leases), their
// logs printed when the test failed, and `kubectl apply` of YAML the way users do.
// Header-only.

#include <gtest/gtest.h>

#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/process.h"
#include "tests/support/test_env.h"

namespace cronlane::testing {

// YAML of `n` ScheduledTasks t0..t<n-1>, each due every second with catchUpPolicy
// All, firing to `topic`.
inline std::string EverySecondTasks(int n, const std::string& topic) {
  std::string yaml;
  for (int i = 0; i < n; ++i) {
    yaml += "---\napiVersion: cronlane.dev/v1alpha1\nkind: ScheduledTask\nmetadata: {name: t" + std::to_string(i) +
            "}\nspec:\n  schedule: \"* * * * * *\"\n  catchUpPolicy: All\n  target: {topic: " + topic + "}\n";
  }
  return yaml;
}

class OperatorFixture : public ::testing::Test {
 protected:
  // `prefix` names the namespace and the operators' log files.
  explicit OperatorFixture(std::string prefix) : prefix_(std::move(prefix)) {}

  void SetUp() override {
    ns_ = UniqueName(prefix_);
    ASSERT_EQ(Kubectl("create namespace " + ns_).exit_code, 0);
  }
  void TearDown() override {
    if (HasFailure()) {
      for (const auto& log : logs_) std::cerr << "---- " << log << "\n" << RunShell("tail -50 " + log).output;
    }
    ops_.clear();
    Kubectl("delete namespace " + ns_ + " --wait=false");
  }
  // An operator watching the test's namespace: OperatorCommand(ns_, extra).
  Process& StartOperator(const std::vector<std::string>& extra = {}) {
    std::string log = (std::filesystem::temp_directory_path() / (UniqueName(prefix_ + "-op") + ".log")).string();
    logs_.push_back(log);
    ops_.push_back(std::make_unique<Process>(OperatorCommand(ns_, extra), log));
    return *ops_.back();
  }
  // KubectlApply(ns_, yaml); returns kubectl's output.
  std::string Apply(const std::string& yaml) { return KubectlApply(ns_, yaml).output; }

  std::string ns_;
  std::vector<std::unique_ptr<Process>> ops_;
  std::vector<std::string> logs_;

 private:
  std::string prefix_;
};

}  // namespace cronlane::testing
