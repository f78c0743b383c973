// TaskListing: every ScheduledTask from one LIST, served again within its ttl,
// listed again after it, the previous listing served while the apiserver fails,
// and nothing kept once Trim() finds it old.
#include "operator/task_listing.h"

#include <gtest/gtest.h>

#include "operator/forecast.h"
#include "tests/support/fake_kube.h"

namespace cronlane::op {
namespace {

using namespace std::chrono_literals;
using kube::Json;

Json TaskJson(const std::string& ns, const std::string& name) {
  return Json{{"metadata",
               {{"namespace", ns},
                {"name", name},
                {"uid", "uid-" + name},
                {"generation", 1},
                {"resourceVersion", "5"},
                {"creationTimestamp", "2026-01-01T00:00:00Z"}}},
              {"spec", {{"schedule", "* * * * *"}, {"target", {{"topic", "jobs"}}}}}};
}

kube::HttpResponse ListOf(const std::vector<Json>& items) {
  return {200, Json{{"kind", "ScheduledTaskList"}, {"metadata", {{"resourceVersion", "9"}}}, {"items", items}}.dump()};
}

const std::string kAll = "GET /apis/cronlane.dev/v1alpha1/scheduledtasks?resourceVersion=0";

TEST(TaskListing, ListsEveryTaskOnceWithinItsTtl) {
  auto transport = std::make_unique<testing::RoutedTransport>();
  auto* routes = transport.get();
  routes->Route(kAll, ListOf({TaskJson("a", "one"), TaskJson("b", "two"), {{"metadata", {{"name", "bad"}}}}}));
  FakeClock clock;
  kube::KubeClient client(std::move(transport), clock, 1e6, 1000000);
  TaskListing listing(client, {}, clock, 10s);
  EXPECT_EQ(listing.lists(), 0U) << "listed before anyone asked";
  auto tasks = listing.Get();
  ASSERT_EQ(tasks->size(), 2U) << "an undecodable item is skipped";
  EXPECT_EQ(tasks->begin()->first, "a/one");
  EXPECT_EQ(tasks->at("b/two").uid, "uid-two");
  // The forecast of predictive pools reads every task's definition from it.
  auto defs = ListedDefinitions(listing)();
  ASSERT_EQ(defs.size(), 2U);
  EXPECT_EQ(defs[0], tasks->at("a/one").def);
  clock.Advance(9s);
  EXPECT_EQ(listing.Get(), tasks);
  EXPECT_EQ(listing.lists(), 1U);

  routes->Route(kAll, ListOf({TaskJson("a", "one")}));
  clock.Advance(1s);
  EXPECT_EQ(listing.Get()->size(), 1U) << "not listed again after the ttl";
  EXPECT_EQ(listing.lists(), 2U);

  // The apiserver fails: the previous listing, and the next call tries again.
  routes->Route(kAll, {500, R"({"kind":"Status","reason":"InternalError","message":"boom"})"});
  clock.Advance(10s);
  EXPECT_EQ(listing.Get()->size(), 1U);
  EXPECT_EQ(listing.lists(), 2U);
  routes->Route(kAll, ListOf({}));
  EXPECT_EQ(listing.Get()->size(), 0U);
  EXPECT_EQ(listing.lists(), 3U);
}

TEST(TaskListing, ListsEachWatchedNamespaceAndTrimsWhatNoOneAskedFor) {
  auto transport = std::make_unique<testing::RoutedTransport>();
  auto* routes = transport.get();
  routes->Route("GET /apis/cronlane.dev/v1alpha1/namespaces/a/scheduledtasks?resourceVersion=0",
                ListOf({TaskJson("a", "one")}));
  routes->Route("GET /apis/cronlane.dev/v1alpha1/namespaces/b/scheduledtasks?resourceVersion=0",
                ListOf({TaskJson("b", "two")}));
  FakeClock clock;
  kube::KubeClient client(std::move(transport), clock, 1e6, 1000000);
  TaskListing listing(client, {"a", "b"}, clock, 10s);
  std::weak_ptr<const TaskListing::Tasks> held = listing.Get();
  EXPECT_EQ(held.lock()->size(), 2U);
  listing.Trim();
  EXPECT_FALSE(held.expired()) << "trimmed within its ttl";
  clock.Advance(10s);
  listing.Trim();
  EXPECT_TRUE(held.expired()) << "a listing no one asked for within the ttl is kept";
  EXPECT_EQ(listing.Get()->size(), 2U);
  EXPECT_EQ(listing.lists(), 2U);
}

}  // namespace
}  // namespace cronlane::op
