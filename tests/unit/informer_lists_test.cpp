// The informer's lists through a scripted transport: the first list is served from
// the apiserver's watch cache (resourceVersion=0, as client-go's reflector asks),
// a relist after 410 Gone reads the latest state (no resourceVersion), and the
// relist's differences reach the handlers.
#include "operator/informer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <utility>
#include <vector>

#include "operator/cache.h"
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

// Lists answer by the shardSelector they carry (or, `ignore_selector`, like a
// server without the gate: everything); each watch sends `watch_events` lines, then
// stays open until cancelled.
class ScopedLists : public kube::Transport {
 public:
  explicit ScopedLists(bool ignore_selector) : ignore_selector_(ignore_selector) {}
  Result<kube::HttpResponse> Send(const kube::HttpRequest& req) override {
    std::lock_guard lock(mu_);
    lists_.push_back(req.path);
    std::vector<std::string> names = {"a1", "b1", "c1"};
    std::string items;
    for (const auto& n : names) {
      const bool asked = req.path.find("shardSelector=") == std::string::npos || ignore_selector_ ||
                         req.path.find("shardSelector=" + std::string(1, n[0])) != std::string::npos ||
                         (req.path.find("shardSelector=ab") != std::string::npos && n[0] != 'c');
      if (!asked) continue;
      if (!items.empty()) items += ",";
      items += R"({"metadata":{"namespace":"ns","name":")" + n + R"("}})";
    }
    return kube::HttpResponse{200, R"({"items":[)" + items + R"(],"metadata":{"resourceVersion":"10"}})"};
  }
  Result<int> Stream(const kube::HttpRequest& req, const std::function<bool(std::string_view)>& on_line,
                     CancelToken& cancel, std::string*) override {
    std::vector<std::string> events;
    {
      std::lock_guard lock(mu_);
      watches_.push_back(req.path);
      events = watch_events_;
    }
    for (const auto& e : events) on_line(e);
    while (!cancel.WaitFor(1h)) {
    }
    return 200;
  }
  void SendOnWatch(std::vector<std::string> events) {
    std::lock_guard lock(mu_);
    watch_events_ = std::move(events);
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
  const bool ignore_selector_;
  mutable std::mutex mu_;
  std::vector<std::string> lists_, watches_, watch_events_;
};

// ScopedLists whose lists wait inside Send until Release() lets them answer, and
// which records how many were waiting at once.
class HeldLists : public ScopedLists {
 public:
  HeldLists() : ScopedLists(false) {}
  Result<kube::HttpResponse> Send(const kube::HttpRequest& req) override {
    {
      std::unique_lock lock(mu_);
      ++in_flight_;
      max_in_flight_ = std::max(max_in_flight_, in_flight_);
      cv_.wait(lock, [&] { return released_ > 0; });
      --released_;
      --in_flight_;
    }
    return ScopedLists::Send(req);
  }
  void Release(int n) {
    std::lock_guard lock(mu_);
    released_ += n;
    cv_.notify_all();
  }
  int in_flight() const {
    std::lock_guard lock(mu_);
    return in_flight_;
  }
  int max_in_flight() const {
    std::lock_guard lock(mu_);
    return max_in_flight_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable cv_;
  int in_flight_ = 0, max_in_flight_ = 0, released_ = 0;
};

InformerScope Only(const std::string& prefixes) {
  return {.query = "shardSelector=" + prefixes, .keep = [prefixes](const Json& o) {
            return prefixes.find(o["metadata"]["name"].get<std::string>()[0]) != std::string::npos;
          }};
}

class InformerScopes : public ::testing::Test {
 protected:
  void Start(bool ignore_selector) {
    auto t = std::make_unique<ScopedLists>(ignore_selector);
    transport_ = t.get();
    client_ = std::make_unique<kube::KubeClient>(std::move(t), RealClock::Get(), 0, 1);
    informer_ = std::make_unique<Informer<Named>>(
        *client_, kube::ResourceRef{"cronlane.dev", "v1alpha1", "scheduledtasks"}, "ns",
        [](const kube::Json& o, const Named*) { return std::optional<Named>(Named{o["metadata"]["name"]}); },
        RealClock::Get(), InformerOptions{.initial_backoff = 1ms, .max_backoff = 1ms});
    informer_->AddHandler([this](const std::string& key, const Named* old, const Named* now) {
      std::lock_guard lock(mu_);
      changes_.push_back((old ? "" : "+") + key + (now ? "" : " gone"));
    });
  }
  void Run() {
    runner_ = std::thread([this] { informer_->Run(cancel_); });
  }
  // Sets `scope` and waits until the cache reflects it.
  void Scope(InformerScope scope) {
    const uint64_t gen = informer_->SetScope(std::move(scope));
    ASSERT_TRUE(WaitUntil([&] { return informer_->SyncedGeneration() == gen; }, 10s)) << "generation " << gen;
  }
  std::vector<std::string> TakeChanges() {
    std::lock_guard lock(mu_);
    return std::exchange(changes_, {});
  }
  void TearDown() override {
    cancel_.Cancel();
    if (runner_.joinable()) runner_.join();
  }

  ScopedLists* transport_ = nullptr;
  std::unique_ptr<kube::KubeClient> client_;
  std::unique_ptr<Informer<Named>> informer_;
  CancelToken cancel_;
  std::thread runner_;
  std::mutex mu_;
  std::vector<std::string> changes_;
};

TEST_F(InformerScopes, EachNewScopeIsListedFromTheWatchCacheAndReplacesTheCache) {
  Start(false);
  informer_->SetScope({.nothing = true});  // a replica that holds no shard yet
  Run();
  ASSERT_TRUE(WaitUntil([&] { return informer_->SyncedGeneration() == 1; }, 10s));
  EXPECT_TRUE(informer_->HasSynced());
  EXPECT_TRUE(informer_->Keys().empty());
  EXPECT_TRUE(transport_->lists().empty()) << "nothing in scope: nothing listed";
  EXPECT_TRUE(transport_->watches().empty()) << "and nothing watched";

  Scope(Only("a"));
  EXPECT_EQ(informer_->Keys(), (std::vector<std::string>{"ns/a1"}));
  EXPECT_EQ(transport_->lists().back(),
            "/apis/cronlane.dev/v1alpha1/namespaces/ns/scheduledtasks?limit=500&shardSelector=a&resourceVersion=0");
  ASSERT_TRUE(WaitUntil([&] { return !transport_->watches().empty(); }, 10s));
  EXPECT_THAT(transport_->watches().back(), ::testing::HasSubstr("resourceVersion=10&"));
  EXPECT_THAT(transport_->watches().back(), ::testing::EndsWith("&shardSelector=a"));
  EXPECT_THAT(TakeChanges(), ::testing::ElementsAre("+ns/a1"));

  Scope(Only("ab"));  // another shard taken
  EXPECT_EQ(informer_->Keys(), (std::vector<std::string>{"ns/a1", "ns/b1"}));
  EXPECT_THAT(TakeChanges(), ::testing::UnorderedElementsAre("ns/a1", "+ns/b1"));
  EXPECT_EQ(transport_->lists().size(), 2U);

  Scope(Only("b"));  // one given up
  EXPECT_EQ(informer_->Keys(), (std::vector<std::string>{"ns/b1"}));
  EXPECT_THAT(TakeChanges(), ::testing::UnorderedElementsAre("ns/a1 gone", "ns/b1"));
  EXPECT_THAT(transport_->lists().back(), ::testing::HasSubstr("shardSelector=b&resourceVersion=0"));
  ASSERT_TRUE(WaitUntil(
      [&] {
        auto w = transport_->watches();
        return !w.empty() && w.back().find("shardSelector=b") != std::string::npos;
      },
      10s));
  EXPECT_EQ(informer_->out_of_scope(), 0U);

  Scope({.nothing = true});
  EXPECT_TRUE(informer_->Keys().empty());
  EXPECT_THAT(TakeChanges(), ::testing::ElementsAre("ns/b1 gone"));
  EXPECT_EQ(transport_->lists().size(), 3U);
}

TEST_F(InformerScopes, WhatAServerIgnoringTheSelectorSendsIsDroppedAndCounted) {
  Start(true);
  transport_->SendOnWatch(
      {R"({"type":"ADDED","object":{"metadata":{"namespace":"ns","name":"c2","resourceVersion":"11"}}})",
       R"({"type":"ADDED","object":{"metadata":{"namespace":"ns","name":"a2","resourceVersion":"12"}}})"});
  informer_->SetScope(Only("a"));
  Run();
  ASSERT_TRUE(WaitUntil([&] { return informer_->Size() == 2; }, 10s));
  EXPECT_EQ(informer_->Keys(), (std::vector<std::string>{"ns/a1", "ns/a2"}));
  EXPECT_EQ(informer_->out_of_scope(), 3U) << "b1 and c1 listed, c2 watched";
  EXPECT_EQ(informer_->ResourceVersion(), "12");
}

// A cache of tasks in namespace "ns" by name, for SetShards with ShardNamed.
std::unique_ptr<KindCache<Named>> ShardedCache(kube::KubeClient& client, std::shared_ptr<ListGate> gate = nullptr) {
  return std::make_unique<KindCache<Named>>(
      client, kube::ResourceRef{"cronlane.dev", "v1alpha1", "scheduledtasks"}, std::vector<std::string>{"ns"},
      [](const kube::Json& o, const Named*) { return std::optional<Named>(Named{o["metadata"]["name"]}); },
      RealClock::Get(), InformerOptions{.initial_backoff = 1ms, .max_backoff = 1ms, .list_gate = std::move(gate)});
}
// Shard i holds the tasks whose name starts with 'a' + i.
InformerScope ShardNamed(int shard) {
  return Only(std::string(1, static_cast<char>('a' + shard)));
}

// A cache of held shards (range layout): an informer per shard, so taking a
// shard lists only that shard, and giving one up lists nothing.
TEST(KindCacheShards, ATakeListsOnlyTheTakenShardAndAGiveUpListsNothing) {
  auto t = std::make_unique<ScopedLists>(false);
  ScopedLists* transport = t.get();
  kube::KubeClient client(std::move(t), RealClock::Get(), 0, 1);
  auto owned = ShardedCache(client);
  KindCache<Named>& cache = *owned;
  std::mutex mu;
  std::vector<std::string> added;
  cache.Subscribe([&](const std::string& key, const Named* old, const Named*) {
    std::lock_guard lock(mu);
    if (!old) added.push_back(key);
  });
  cache.SetShards({}, ShardNamed);  // before Run: the replica holds nothing yet
  CancelToken cancel;
  std::thread run([&] { cache.Run(cancel); });
  ASSERT_TRUE(WaitUntil([&] { return cache.Synced(); }, 10s));
  EXPECT_TRUE(transport->lists().empty()) << "a replica holding no shard listed";

  cache.SetShards({0}, ShardNamed);
  ASSERT_TRUE(WaitUntil([&] { return cache.ShardSynced(0); }, 10s));
  EXPECT_EQ(cache.Keys(), (std::vector<std::string>{"ns/a1"}));
  ASSERT_EQ(transport->lists().size(), 1U);
  EXPECT_THAT(transport->lists().back(), ::testing::HasSubstr("shardSelector=a&"));

  cache.SetShards({0, 1}, ShardNamed);
  EXPECT_FALSE(cache.ShardSynced(2));
  ASSERT_TRUE(WaitUntil([&] { return cache.ShardSynced(1); }, 10s));
  EXPECT_EQ(cache.Size(), 2U);
  ASSERT_EQ(transport->lists().size(), 2U) << "taking shard 1 listed shard 0 again";
  EXPECT_THAT(transport->lists().back(), ::testing::HasSubstr("shardSelector=b&"));
  EXPECT_EQ(cache.Get("ns/b1")->name, "b1");

  cache.SetShards({1}, ShardNamed);
  EXPECT_FALSE(cache.ShardSynced(0));
  EXPECT_EQ(cache.Keys(), (std::vector<std::string>{"ns/b1"}));
  EXPECT_FALSE(cache.Get("ns/a1").has_value());
  EXPECT_EQ(transport->lists().size(), 2U) << "giving a shard up listed";
  {
    std::lock_guard lock(mu);
    EXPECT_THAT(added, ::testing::ElementsAre("ns/a1", "ns/b1"));
  }
  cancel.Cancel();
  run.join();
  EXPECT_EQ(cache.Size(), 0U) << "the shards' informers outlived Run";
}

// Shards taken together list two at a time: the third waits for a slot (the
// gate's waiting count says it got there) and lists once one of the first two is in.
TEST(KindCacheShards, ShardsTakenTogetherListTwoAtATime) {
  auto t = std::make_unique<HeldLists>();
  HeldLists* transport = t.get();
  kube::KubeClient client(std::move(t), RealClock::Get(), 0, 1);
  auto gate = std::make_shared<ListGate>(2);
  auto owned = ShardedCache(client, gate);
  KindCache<Named>& cache = *owned;
  CancelToken cancel;
  cache.SetShards({}, ShardNamed);
  std::thread run([&] { cache.Run(cancel); });
  cache.SetShards({0, 1, 2}, ShardNamed);
  ASSERT_TRUE(WaitUntil([&] { return transport->in_flight() == 2 && gate->Waiting() == 1; }, 10s))
      << "in flight " << transport->in_flight() << ", waiting for a slot " << gate->Waiting();
  transport->Release(1);
  ASSERT_TRUE(WaitUntil([&] { return cache.Size() == 1 && transport->in_flight() == 2; }, 10s))
      << "one list answered, and the third began";
  transport->Release(2);
  ASSERT_TRUE(WaitUntil([&] { return cache.ShardSynced(0) && cache.ShardSynced(1) && cache.ShardSynced(2); }, 10s));
  EXPECT_EQ(cache.Size(), 3U);
  EXPECT_EQ(transport->max_in_flight(), 2);
  transport->Release(100);  // no later list waits
  cancel.Cancel();
  run.join();
}

// The gate's slots: a third Enter waits until a Leave, and a cancel ends a wait
// without taking a slot.
TEST(ListGate, ATakerWaitsForASlotAndACancelEndsTheWait) {
  ListGate gate(2);
  CancelToken never;
  ASSERT_TRUE(gate.Enter(never));
  ASSERT_TRUE(gate.Enter(never));
  EXPECT_EQ(gate.Free(), 0);
  std::atomic<bool> entered{false};
  std::thread third([&] { entered = gate.Enter(never); });
  ASSERT_TRUE(WaitUntil([&] { return gate.Waiting() == 1; }, 10s));
  EXPECT_FALSE(entered.load()) << "a third entered two slots";
  gate.Leave();
  third.join();
  EXPECT_TRUE(entered.load());
  EXPECT_EQ(gate.Free(), 0);

  CancelToken cancel;
  std::atomic<int> result{-1};
  std::thread waiting([&] { result = gate.Enter(cancel) ? 1 : 0; });
  ASSERT_TRUE(WaitUntil([&] { return gate.Waiting() == 1; }, 10s));
  EXPECT_EQ(result.load(), -1);
  cancel.Cancel();
  waiting.join();
  EXPECT_EQ(result.load(), 0);
  EXPECT_FALSE(gate.Enter(cancel)) << "a cancelled token takes no slot";
  EXPECT_EQ(gate.Free(), 0);
  gate.Leave();
  gate.Leave();
  EXPECT_EQ(gate.Free(), 2);
}

}  // namespace
}  // namespace cronlane::op
