// The C++ Kubernetes client against the real apiserver: kubeconfig with client
// certificates over TLS, CRUD with the right error codes, status subresource,
// watches (events, cancel, 410 Gone on a too-old resourceVersion).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <map>
#include <thread>

#include "operator/kube/client.h"
#include "operator/kube/config.h"
#include "tests/support/process.h"
#include "tests/support/tcp_proxy.h"
#include "tests/support/test_env.h"

namespace cronlane::kube {
namespace {

using cronlane::testing::EnvVar;
using cronlane::testing::Kubectl;
using cronlane::testing::UniqueName;
using ::testing::HasSubstr;

const ResourceRef kTasks{"cronlane.dev", "v1alpha1", "scheduledtasks"};

std::unique_ptr<KubeClient> NewClient() {
  auto cfg = LoadKubeconfig(EnvVar("KUBECONFIG"));
  EXPECT_TRUE(cfg.ok()) << cfg.status().ToString();
  auto transport = NewHttpTransport(*cfg);
  EXPECT_TRUE(transport.ok()) << transport.status().ToString();
  return std::make_unique<KubeClient>(std::move(*transport), RealClock::Get(), 50, 100);
}

Json Task(const std::string& name, const std::string& schedule) {
  return {{"apiVersion", "cronlane.dev/v1alpha1"},
          {"kind", "ScheduledTask"},
          {"metadata", {{"name", name}}},
          {"spec", {{"schedule", schedule}, {"target", {{"topic", "t"}}}}}};
}

class KubeClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ns_ = UniqueName("client");
    ASSERT_EQ(Kubectl("create namespace " + ns_).exit_code, 0);
    client_ = NewClient();
  }
  void TearDown() override { Kubectl("delete namespace " + ns_ + " --wait=false"); }
  std::string ns_;
  std::unique_ptr<KubeClient> client_;
};

TEST_F(KubeClientTest, VersionOverTlsWithClientCertificate) {
  auto v = client_->Get("/version");
  ASSERT_TRUE(v.ok()) << v.status().ToString();
  EXPECT_THAT((*v)["gitVersion"].get<std::string>(), HasSubstr("v1.36"));
}

TEST_F(KubeClientTest, CrudAndErrorCodes) {
  auto created = client_->Create(kTasks.Path(ns_), Task("a", "0 * * * *"));
  ASSERT_TRUE(created.ok()) << created.status().ToString();
  EXPECT_EQ((*created)["spec"]["catchUpPolicy"], "Latest") << "schema defaults applied";
  std::string rv = (*created)["metadata"]["resourceVersion"];

  auto again = client_->Create(kTasks.Path(ns_), Task("a", "0 * * * *"));
  EXPECT_EQ(again.status().code(), StatusCode::kAlreadyExists) << again.status().ToString();

  auto invalid = client_->Create(kTasks.Path(ns_), Task("b", "CRON_TZ=UTC 0 * * * *"));
  EXPECT_EQ(invalid.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(invalid.status().message(), HasSubstr("use the timeZone field instead"));

  auto patched = client_->Patch(kTasks.Path(ns_, "a"), {{"spec", {{"suspend", true}}}});
  ASSERT_TRUE(patched.ok()) << patched.status().ToString();
  EXPECT_EQ((*patched)["spec"]["suspend"], true);

  // A replace with the stale resourceVersion loses against the patch.
  Json stale = *created;
  stale["spec"]["schedule"] = "5 * * * *";
  auto conflict = client_->Replace(kTasks.Path(ns_, "a"), stale);
  EXPECT_EQ(conflict.status().code(), StatusCode::kAborted) << conflict.status().ToString();

  auto status = client_->Patch(kTasks.Path(ns_, "a", "status"), {{"status", {{"firedCount", 7}}}});
  ASSERT_TRUE(status.ok()) << status.status().ToString();
  EXPECT_EQ((*status)["status"]["firedCount"], 7);
  EXPECT_EQ((*status)["metadata"]["generation"], 2) << "status writes do not bump generation";

  ASSERT_TRUE(client_->Delete(kTasks.Path(ns_, "a")).ok());
  EXPECT_EQ(client_->Get(kTasks.Path(ns_, "a")).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(client_->Delete(kTasks.Path(ns_, "a")).code(), StatusCode::kNotFound);
  EXPECT_GE(client_->requests(), 8U);
}

// A LIST is decoded while it arrives (ListStream over StreamBody's pieces of 256
// KiB): through the real apiserver, a response of several pieces whose items hold
// strings with quotes, braces and backslashes comes back item for item, and the
// list's resourceVersion with it.
TEST_F(KubeClientTest, AListOfSeveralPiecesComesBackItemForItem) {
  const ResourceRef configmaps{"", "v1", "configmaps"};
  std::map<std::string, std::string> made;
  for (int i = 0; i < 4; ++i) {
    std::string value;
    while (value.size() < 200 * 1024) value += "{\"]}[ \\ \" " + std::to_string(i) + " ";
    const std::string name = "big-" + std::to_string(i);
    Json cm = {{"apiVersion", "v1"}, {"kind", "ConfigMap"}, {"metadata", {{"name", name}}}, {"data", {{"v", value}}}};
    ASSERT_TRUE(client_->Create(configmaps.Path(ns_), cm).ok());
    made[name] = value;
  }
  std::map<std::string, std::string> listed;
  auto meta = client_->List(configmaps.Path(ns_), [&](Json& item) {
    const std::string name = item["metadata"].value("name", "");
    if (made.count(name) != 0) listed[name] = item["data"].value("v", "");
  });
  ASSERT_TRUE(meta.ok()) << meta.status().ToString();
  EXPECT_FALSE(meta->resource_version.empty());
  EXPECT_EQ(listed, made);
}

TEST_F(KubeClientTest, WatchDeliversEventsAndStopsOnCancel) {
  auto list = client_->Get(kTasks.Path(ns_));
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  std::string rv = (*list)["metadata"]["resourceVersion"];

  CancelToken cancel;
  std::vector<std::string> seen;
  std::mutex mu;
  Status watch_status;
  std::thread watcher([&] {
    watch_status = client_->Watch(
        kTasks.Path(ns_) + "?watch=1&allowWatchBookmarks=true&resourceVersion=" + rv,
        [&](std::string_view type, Json& obj) {
          if (type == "BOOKMARK") return true;
          std::lock_guard lock(mu);
          seen.push_back(std::string(type) + " " + obj["metadata"]["name"].get<std::string>());
          return true;
        },
        cancel);
  });
  ASSERT_TRUE(client_->Create(kTasks.Path(ns_), Task("w1", "0 * * * *")).ok());
  ASSERT_TRUE(client_->Patch(kTasks.Path(ns_, "w1"), {{"spec", {{"suspend", true}}}}).ok());
  ASSERT_TRUE(client_->Delete(kTasks.Path(ns_, "w1")).ok());
  for (int i = 0; i < 100; ++i) {
    {
      std::lock_guard lock(mu);
      if (seen.size() >= 3) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  auto t0 = std::chrono::steady_clock::now();
  cancel.Cancel();
  watcher.join();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5)) << "cancel ends a blocked watch promptly";
  EXPECT_TRUE(watch_status.ok()) << watch_status.ToString();
  EXPECT_EQ(seen, (std::vector<std::string>{"ADDED w1", "MODIFIED w1", "DELETED w1"}));
}

TEST_F(KubeClientTest, TooOldResourceVersionIsExpired) {
  CancelToken cancel;
  Status s = client_->Watch(
      kTasks.Path(ns_) + "?watch=1&resourceVersion=1", [](std::string_view, Json&) { return true; }, cancel);
  EXPECT_EQ(s.code(), StatusCode::kExpired) << s.ToString();
}

}  // namespace
}  // namespace cronlane::kube

namespace cronlane::kube {
namespace {

// Every request through a cut network (packets dropped: tests/support/tcp_proxy.h)
// fails within the request timeout, the first one and every one after it, while
// other requests and a watch hang on the same cut: a leader's Lease renewals rely
// on it to notice in time.
TEST(KubeClientTimeouts, EveryRequestThroughACutNetworkEndsWithinTheTimeout) {
  const auto [api_host, api_port] = cronlane::testing::ApiserverAddress();
  cronlane::testing::TcpProxy proxy(api_host, api_port);
  auto cfg = LoadKubeconfig(EnvVar("KUBECONFIG"));
  ASSERT_TRUE(cfg.ok());
  cfg->server = "https://127.0.0.1:" + std::to_string(proxy.port());
  auto transport = NewHttpTransport(*cfg, {.request_timeout_seconds = 1});
  ASSERT_TRUE(transport.ok());
  KubeClient client(std::move(*transport), RealClock::Get(), 50, 100);
  ASSERT_TRUE(client.Get("/api/v1/namespaces/default").ok());
  // Other traffic through the same cut, as an operator has: requests with a long
  // timeout and a watch.
  auto t2 = NewHttpTransport(*cfg, {.request_timeout_seconds = 30});
  ASSERT_TRUE(t2.ok());
  KubeClient busy(std::move(*t2), RealClock::Get(), 50, 100);
  CancelToken stop;
  std::vector<std::thread> others;
  for (int k = 0; k < 3; ++k) {
    others.emplace_back([&] {
      while (!stop.cancelled()) (void)busy.Get("/api/v1/namespaces/default");
    });
  }
  others.emplace_back([&] {
    while (!stop.cancelled()) {
      (void)busy.Watch(
          "/api/v1/namespaces?watch=1&resourceVersion=0", [](std::string_view, Json&) { return true; }, stop);
    }
  });
  // Cut once each of them has sent its first request.
  ASSERT_TRUE(cronlane::testing::WaitUntil([&] { return busy.requests() >= 4; }, std::chrono::seconds(10)));
  proxy.Partition();
  for (int i = 0; i < 4; ++i) {
    auto start = std::chrono::steady_clock::now();
    auto r = client.Get("/api/v1/namespaces/default");
    auto took = std::chrono::steady_clock::now() - start;
    EXPECT_FALSE(r.ok()) << i;
    EXPECT_LT(took, std::chrono::milliseconds(2500))
        << "request " << i << " took " << std::chrono::duration_cast<std::chrono::milliseconds>(took).count()
        << " ms: " << r.status().ToString();
  }
  proxy.Heal();
  EXPECT_TRUE(client.Get("/api/v1/namespaces/default").ok()) << "healed";
  stop.Cancel();
  for (auto& t : others) t.join();
}

}  // namespace
}  // namespace cronlane::kube
