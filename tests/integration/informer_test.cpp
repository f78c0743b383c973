// The informer against the real apiserver: initial paginated list, watch events, and
// recovery from an expired resourceVersion (a real 410 Gone from the apiserver),
// after which the cache converges with no change missed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <map>
#include <mutex>
#include <regex>
#include <thread>

#include "operator/informer.h"
#include "operator/kube/client.h"
#include "operator/scheduled_task.h"
#include "tests/support/process.h"
#include "tests/support/test_env.h"

namespace cronlane::op {
namespace {

using namespace std::chrono_literals;
using cronlane::testing::EnvVar;
using cronlane::testing::Kubectl;
using cronlane::testing::UniqueName;
using cronlane::testing::WaitUntil;

// Wraps the real transport. When armed, the next watch waits at the gate until
// released, and is then sent with a resourceVersion the apiserver no longer has.
class GatedTransport : public kube::Transport {
 public:
  explicit GatedTransport(kube::TransportPtr real) : real_(std::move(real)) {}
  Result<kube::HttpResponse> Send(const kube::HttpRequest& req) override {
    if (req.path.find("limit=") != std::string::npos) {
      std::lock_guard lock(mu_);
      ++lists_;
      list_paths_.push_back(req.path);
    }
    return real_->Send(req);
  }
  Result<int> Stream(const kube::HttpRequest& req, const std::function<bool(std::string_view)>& on_line,
                     CancelToken& cancel, std::string* error_body) override {
    kube::HttpRequest r = req;
    {
      std::unique_lock lock(mu_);
      if (armed_) {
        waiting_ = true;
        cv_.notify_all();
        cv_.wait(lock, [&] { return released_ || cancel.cancelled(); });
        armed_ = false;
        r.path = std::regex_replace(r.path, std::regex("resourceVersion=[0-9]+"), "resourceVersion=1");
      }
    }
    return real_->Stream(r, on_line, cancel, error_body);
  }
  void Arm() {
    std::lock_guard lock(mu_);
    armed_ = true;
    released_ = false;
    waiting_ = false;
  }
  bool WaitForGate(std::chrono::seconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return waiting_; });
  }
  void Release() {
    std::lock_guard lock(mu_);
    released_ = true;
    cv_.notify_all();
  }
  int lists() const { return lists_.load(); }
  std::vector<std::string> list_paths() {
    std::lock_guard lock(mu_);
    return list_paths_;
  }

 private:
  kube::TransportPtr real_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool armed_ = false, waiting_ = false, released_ = false;
  std::atomic<int> lists_{0};
  std::vector<std::string> list_paths_;  // guarded by mu_
};

std::string Task(const std::string& name, const std::string& schedule) {
  return "apiVersion: cronlane.dev/v1alpha1\nkind: ScheduledTask\nmetadata: {name: " + name +
         "}\nspec:\n  schedule: \"" + schedule + "\"\n  target: {topic: t}\n";
}

void Apply(const std::string& ns, const std::string& yaml) {
  auto r = cronlane::testing::KubectlApply(ns, yaml);
  ASSERT_EQ(r.exit_code, 0) << r.output;
}

TEST(InformerAgainstApiserver, ListWatchAndRelistAfterExpiry) {
  std::string ns = UniqueName("informer");
  ASSERT_EQ(Kubectl("create namespace " + ns).exit_code, 0);
  // More objects than one page, so a list from etcd paginates.
  for (int i = 0; i < 7; ++i) Apply(ns, Task("pre-" + std::to_string(i), "0 * * * *"));

  auto cfg = kube::LoadKubeconfig(EnvVar("KUBECONFIG"));
  ASSERT_TRUE(cfg.ok());
  auto real = kube::NewHttpTransport(*cfg);
  ASSERT_TRUE(real.ok());
  auto gated = std::make_unique<GatedTransport>(std::move(*real));
  GatedTransport* gate = gated.get();
  kube::KubeClient client(std::move(gated), RealClock::Get(), 100, 100);
  InformerOptions opts;
  opts.page_size = 3;
  opts.min_watch_timeout = 1s;  // the server ends each watch after 1-2 s
  opts.initial_backoff = 100ms;
  Informer<ScheduledTask> informer(
      client, kScheduledTasks, ns,
      [](const Json& o, const ScheduledTask* previous) { return ScheduledTaskFromJson(o, previous); }, RealClock::Get(),
      opts);
  std::mutex mu;
  std::map<std::string, int> notified;  // key -> +1 per add/update, -1000 on delete
  informer.AddHandler([&](const std::string& key, const ScheduledTask*, const ScheduledTask* now) {
    std::lock_guard lock(mu);
    notified[key] += now == nullptr ? -1000 : 1;
  });
  CancelToken cancel;
  std::thread runner([&] { informer.Run(cancel); });

  ASSERT_TRUE(WaitUntil([&] { return informer.HasSynced(); }, 20s));
  EXPECT_EQ(informer.Size(), 7U);
  ASSERT_GE(gate->lists(), 1);
  EXPECT_THAT(gate->list_paths()[0], ::testing::HasSubstr("resourceVersion=0"))
      << "the first list is served by the apiserver's watch cache";

  // Watch events.
  Apply(ns, Task("live", "5 * * * *"));
  ASSERT_TRUE(WaitUntil([&] { return informer.Get(ns + "/live").has_value(); }, 10s));
  EXPECT_EQ(informer.Get(ns + "/live")->def->schedule, "5 * * * *");

  // Hold the next watch at the gate; change things while nobody watches; then let
  // the watch go out with an expired resourceVersion.
  gate->Arm();
  ASSERT_TRUE(gate->WaitForGate(10s)) << "the informer re-watches after each server-side timeout";
  Apply(ns, Task("created-while-away", "10 * * * *"));
  Apply(ns, Task("pre-1", "45 * * * *"));
  ASSERT_EQ(Kubectl("delete st pre-2 -n " + ns).exit_code, 0);
  const uint64_t relists_before = informer.relists();
  const size_t lists_before = gate->list_paths().size();
  gate->Release();

  ASSERT_TRUE(WaitUntil([&] { return informer.relists() > relists_before; }, 10s)) << "410 Gone must trigger a relist";
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto p1 = informer.Get(ns + "/pre-1");
        return informer.Get(ns + "/created-while-away").has_value() && !informer.Get(ns + "/pre-2").has_value() && p1 &&
               p1->def->schedule == "45 * * * *";
      },
      10s))
      << "the cache converges with every change made while the watch was away";
  {
    auto paths = gate->list_paths();
    ASSERT_GE(paths.size(), lists_before + 3) << "the relist reads the latest state from etcd: 7 objects in pages of 3";
    for (size_t i = lists_before; i < paths.size(); ++i) {
      EXPECT_THAT(paths[i], ::testing::Not(::testing::HasSubstr("resourceVersion="))) << paths[i];
    }
  }
  {
    std::lock_guard lock(mu);
    EXPECT_GT(notified[ns + "/created-while-away"], 0);
    EXPECT_LT(notified[ns + "/pre-2"], 0) << "a delete missed by the watch is still notified after the relist";
  }
  // And it keeps watching afterwards.
  Apply(ns, Task("after", "15 * * * *"));
  EXPECT_TRUE(WaitUntil([&] { return informer.Get(ns + "/after").has_value(); }, 10s));
  EXPECT_EQ(informer.Size(), 9U);

  cancel.Cancel();
  runner.join();
  Kubectl("delete namespace " + ns + " --wait=false");
}

}  // namespace
}  // namespace cronlane::op
