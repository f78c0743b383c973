// The environment's apiserver (Kubernetes 1.36 with the ShardedListAndWatch gate
// on) filters ScheduledTask lists and watches by cronlane's range shards: what a
// replica's per-shard cache relies on, and the check that common/hash.h's FNV-1a
// and ShardHashRange are the apiserver's (a wrong seed or bound fails it).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "common/hash.h"
#include "operator/kube/client.h"
#include "operator/kube/config.h"
#include "operator/kube/transport.h"
#include "operator/scheduled_task.h"
#include "operator/shard_selector.h"
#include "tests/support/process.h"
#include "tests/support/test_env.h"

namespace cronlane::op {
namespace {

using namespace std::chrono_literals;
using cronlane::testing::EnvVar;
using cronlane::testing::Kubectl;
using cronlane::testing::UniqueName;
using cronlane::testing::WaitUntil;

constexpr int kShards = 4;

std::string Tasks(const std::string& prefix, int n) {
  std::string yaml;
  for (int i = 0; i < n; ++i) {
    yaml += "---\napiVersion: cronlane.dev/v1alpha1\nkind: ScheduledTask\nmetadata: {name: " + prefix +
            std::to_string(i) + "}\nspec:\n  schedule: \"0 * * * *\"\n  target: {topic: t}\n";
  }
  return yaml;
}

class ShardedListAndWatch : public ::testing::Test {
 protected:
  void SetUp() override {
    ns_ = UniqueName("shardsel");
    ASSERT_EQ(Kubectl("create namespace " + ns_).exit_code, 0);
    auto cfg = kube::LoadKubeconfig(EnvVar("KUBECONFIG"));
    ASSERT_TRUE(cfg.ok()) << cfg.status().ToString();
    auto transport = kube::NewHttpTransport(*cfg);
    ASSERT_TRUE(transport.ok()) << transport.status().ToString();
    client_ = std::make_unique<kube::KubeClient>(std::move(*transport), RealClock::Get(), 100, 100);
  }
  void TearDown() override { Kubectl("delete namespace " + ns_ + " --wait=false"); }

  // uid -> name of the tasks a LIST with `selector` ("" = none) returns.
  std::map<std::string, std::string> List(const std::string& selector, std::string* rv = nullptr) {
    std::string path = kScheduledTasks.Path(ns_);
    if (!selector.empty()) path += "?shardSelector=" + kube::UrlEscape(selector);
    std::map<std::string, std::string> out;
    auto meta = client_->List(path, [&](kube::Json& item) {
      out[item["metadata"]["uid"].get<std::string>()] = item["metadata"]["name"].get<std::string>();
    });
    EXPECT_TRUE(meta.ok()) << meta.status().ToString();
    if (meta.ok() && rv != nullptr) *rv = meta->resource_version;
    return out;
  }
  static std::set<std::string> InShards(const std::map<std::string, std::string>& all, const std::set<int>& shards) {
    std::set<std::string> out;
    for (const auto& [uid, _] : all) {
      if (shards.count(ShardOf(uid, kShards, ShardLayout::kRange)) != 0) out.insert(uid);
    }
    return out;
  }
  static std::set<std::string> Uids(const std::map<std::string, std::string>& m) {
    std::set<std::string> out;
    for (const auto& [uid, _] : m) out.insert(uid);
    return out;
  }

  std::string ns_;
  std::unique_ptr<kube::KubeClient> client_;
};

TEST_F(ShardedListAndWatch, TheApiserverSendsExactlyTheTasksOfTheRangesAsked) {
  auto applied = cronlane::testing::KubectlApply(ns_, Tasks("t", 80));
  ASSERT_EQ(applied.exit_code, 0) << applied.output;
  std::string rv;
  const auto all = List("", &rv);
  ASSERT_EQ(all.size(), 80U);

  size_t sum = 0;
  for (int i = 0; i < kShards; ++i) {
    const auto got = Uids(List(ShardRangeSelector({i}, kShards)));
    EXPECT_EQ(got, InShards(all, {i})) << "shard " << i;
    EXPECT_FALSE(got.empty()) << "80 tasks leave no shard empty";
    EXPECT_LT(got.size(), all.size()) << "the apiserver filtered nothing: is the gate on?";
    sum += got.size();
  }
  EXPECT_EQ(sum, all.size());
  EXPECT_EQ(Uids(List(ShardRangeSelector({1, 2}, kShards))), InShards(all, {1, 2})) << "adjacent: one range";
  EXPECT_EQ(Uids(List(ShardRangeSelector({0, 3}, kShards))), InShards(all, {0, 3})) << "two ranges, ||";

  // A watch from the list's resourceVersion with shard 1's range: ADDED for the new
  // tasks of shard 1 only.
  std::mutex mu;
  std::set<std::string> added;
  CancelToken cancel;
  const std::string watch_path = kScheduledTasks.Path(ns_) + "?watch=1&allowWatchBookmarks=true&resourceVersion=" + rv +
                                 "&shardSelector=" + kube::UrlEscape(ShardRangeSelector({1}, kShards));
  std::thread watcher([&] {
    Status s = client_->Watch(
        watch_path,
        [&](std::string_view type, kube::Json& object) {
          if (type == "ADDED") {
            std::lock_guard lock(mu);
            added.insert(object["metadata"]["uid"].get<std::string>());
          }
          return !cancel.cancelled();
        },
        cancel);
    (void)s;
  });
  applied = cronlane::testing::KubectlApply(ns_, Tasks("u", 40));
  ASSERT_EQ(applied.exit_code, 0) << applied.output;
  // A last task, created after the 40, that lands in shard 1: a watch delivers
  // events in resourceVersion order, so once its ADDED arrived, everything the
  // watch would send about the 40 has arrived too (no sleep).
  std::string marker;
  for (int i = 0; marker.empty() && i < 40; ++i) {
    const std::string name = "z" + std::to_string(i);
    applied = cronlane::testing::KubectlApply(ns_, Tasks(name, 1));
    ASSERT_EQ(applied.exit_code, 0) << applied.output;
    const std::string uid = Kubectl("get st " + name + "0 -n " + ns_ + " -o jsonpath='{.metadata.uid}'").output;
    if (ShardOf(uid, kShards, ShardLayout::kRange) == 1) marker = uid;
  }
  ASSERT_FALSE(marker.empty()) << "40 tasks, none in shard 1 of 4";
  std::map<std::string, std::string> fresh = List("");
  for (const auto& [uid, _] : all) fresh.erase(uid);
  const std::set<std::string> want = InShards(fresh, {1});  // the 40's and the markers' in shard 1
  EXPECT_TRUE(WaitUntil(
      [&] {
        std::lock_guard lock(mu);
        return added.count(marker) != 0;
      },
      20s));
  cancel.Cancel();
  watcher.join();
  std::lock_guard lock(mu);
  EXPECT_EQ(added, want);
}

}  // namespace
}  // namespace cronlane::op
