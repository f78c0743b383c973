// The informer's lists through a scripted transport: the first list is served from
// the apiserver's watch cache (resourceVersion=0, as client-go's reflector asks),
// a relist after 410 Gone reads the latest state (no resourceVersion), and the
// relist's differences reach the handlers.
#include "operator/informer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <mutex>

#include "tests/support/process.h"

namespace cronlane::op {
namespace {

using namespace std::chrono_literals;
using testing::WaitUntil;

struct Named {
  std::string name;
};

// Lists answer {a, b} first and {a, c} after; the first watch ends with 410 Gone,
// later ones stay open until cancelled.
class ListsThenGone : public kube::Transport {
 public:
  Result<kube::HttpResponse> Send(const kube::HttpRequest& req) override {
    std::lock_guard lock(mu_);
    lists_.push_back(req.path);
    const char* items = lists_.size() == 1 ? R"([{"metadata":{"namespace":"ns","name":"a"}},
                                                   {"metadata":{"namespace":"ns","name":"b"}}])"
                                           : R"([{"metadata":{"namespace":"ns","name":"a"}},
                                                   {"metadata":{"namespace":"ns","name":"c"}}])";
    return kube::HttpResponse{200, std::string(R"({"items":)") + items + R"(,"metadata":{"resourceVersion":")" +
                                       std::to_string(10 * lists_.size()) + R"("}})"};
  }
  Result<int> Stream(const kube::HttpRequest& req, const std::function<bool(std::string_view)>&, CancelToken& cancel,
                     std::string* error_body) override {
    {
      std::lock_guard lock(mu_);
      watches_.push_back(req.path);
      if (watches_.size() == 1) {
        *error_body = R"({"kind":"Status","code":410,"reason":"Expired","message":"too old resource version"})";
        return 410;
      }
    }
    while (!cancel.WaitFor(1h)) {
    }
    return 200;
  }
  std::vector<std::string> lists() const {
    std::lock_guard lock(mu_);
    return lists_;
  }
  std::vector<std::string> watches() const {
    std::lock_guard lock(mu_);
    return watches_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::string> lists_, watches_;
};

TEST(Informer, FirstListFromTheWatchCacheRelistAfterGoneReadsTheLatest) {
  auto t = std::make_unique<ListsThenGone>();
  auto* transport = t.get();
  kube::KubeClient client(std::move(t), RealClock::Get(), 0, 1);
  Informer<Named> informer(
      client, {"cronlane.dev", "v1alpha1", "scheduledtasks"}, "ns",
      [](const kube::Json& o, const Named*) { return std::optional<Named>(Named{o["metadata"]["name"]}); },
      RealClock::Get(), {.initial_backoff = 1ms, .max_backoff = 1ms});
  std::mutex mu;
  std::vector<std::string> changes;
  informer.AddHandler([&](const std::string& key, const Named* old, const Named* now) {
    std::lock_guard lock(mu);
    changes.push_back((old ? "" : "+") + key + (now ? "" : " gone"));
  });
  CancelToken cancel;
  std::thread run([&] { informer.Run(cancel); });
  ASSERT_TRUE(WaitUntil([&] { return transport->watches().size() >= 2; }, 10s));
  cancel.Cancel();
  run.join();

  auto lists = transport->lists();
  ASSERT_EQ(lists.size(), 2U);
  EXPECT_EQ(lists[0], "/apis/cronlane.dev/v1alpha1/namespaces/ns/scheduledtasks?limit=500&resourceVersion=0");
  EXPECT_EQ(lists[1], "/apis/cronlane.dev/v1alpha1/namespaces/ns/scheduledtasks?limit=500")
      << "after 410 Gone, the latest state, not the watch cache's";
  auto watches = transport->watches();
  EXPECT_THAT(watches[0], ::testing::HasSubstr("resourceVersion=10&"));
  EXPECT_THAT(watches[1], ::testing::HasSubstr("resourceVersion=20&"));
  EXPECT_EQ(informer.Keys(), (std::vector<std::string>{"ns/a", "ns/c"}));
  std::lock_guard lock(mu);
  EXPECT_THAT(changes, ::testing::UnorderedElementsAre("+ns/a", "+ns/b", "ns/b gone", "ns/a", "+ns/c"));
}

}  // namespace
}  // namespace cronlane::op
