// The schedule forecast behind predictive WorkerPools: messages per topic and fire
// time, exactly where the dispatcher would fire them (shards, jitter, suspended
// tasks, other topics, time zones across DST, the per-task cap).
#include "dispatcher/forecast.h"

#include <gtest/gtest.h>

#include <memory>
#include <string>

#include "common/time.h"

namespace cronlane::dispatcher {
namespace {

using namespace std::chrono_literals;

Instant At(const char* rfc3339) {
  auto t = ParseRfc3339(rfc3339);
  EXPECT_TRUE(t.ok()) << rfc3339;
  return *t;
}

TaskDefinitionPtr Task(const std::string& name, const std::string& schedule, int shards = 1,
                       const std::string& topic = "", const std::string& zone = "") {
  auto t = std::make_shared<TaskDefinition>();
  t->id = "uid-" + name;
  t->ns = "ns";
  t->name = name;
  t->created = At("2026-01-01T00:00:00Z");
  t->schedule = schedule;
  t->shards = shards;
  t->topic = topic;
  t->time_zone = zone;
  return t;
}

TEST(Forecast, CountsEveryShardOfEveryOccurrenceInTheWindowByTopic) {
  auto a = Task("a", "*/5 * * * *", 4);                  // default topic, 4 messages a fire
  auto b = Task("b", "0 * * * *");                       // default topic, on the hour with a
  auto c = Task("c", "*/10 * * * *", 2, "other.topic");  // another topic
  const Instant from = At("2026-06-01T10:00:00Z"), to = At("2026-06-01T10:20:00Z");
  auto f = ForecastMessages({a, b, c}, "cronlane.tasks", from, to);
  ASSERT_EQ(f.size(), 2u);
  EXPECT_EQ(f["cronlane.tasks"],
            (std::vector<ForecastPoint>{{from, 5}, {from + 5min, 4}, {from + 10min, 4}, {from + 15min, 4}}))
      << "from is inclusive, to exclusive; a's 4 shards and b's one at 10:00";
  EXPECT_EQ(f["other.topic"], (std::vector<ForecastPoint>{{from, 2}, {from + 10min, 2}}));
}

TEST(Forecast, SuspendedRefusedAndJitteredTasks) {
  auto suspended = Task("s", "* * * * *");
  std::const_pointer_cast<TaskDefinition>(suspended)->suspend = true;
  auto refused = Task("r", "not a schedule");
  auto jittered = Task("j", "0 * * * *");
  std::const_pointer_cast<TaskDefinition>(jittered)->jitter_seconds = 300;
  const Instant from = At("2026-06-01T10:00:00Z");
  auto f = ForecastMessages({suspended, refused, jittered}, "t", from, from + 1h);
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f["t"], (std::vector<ForecastPoint>{{from, 1}})) << "jitter: counted at the nominal time";
  EXPECT_TRUE(ForecastMessages({suspended, refused}, "t", from, from + 1h).empty());
  EXPECT_TRUE(ForecastMessages({jittered}, "t", from, from).empty()) << "an empty window";
}

// A local-time schedule across both DST changes in Europe/Berlin: the forecast
// lists what the dispatcher fires (TaskFireTimes), shard for shard.
TEST(Forecast, FollowsTheDispatchersFireTimesAcrossDaylightSavingTime) {
  for (const char* day : {"2026-03-29T00:00:00Z", "2026-10-25T00:00:00Z"}) {
    auto t = Task("dst", "30 2 * * *", 3, "", "Europe/Berlin");
    const Instant from = At(day) - 12h, to = At(day) + 36h;
    auto fires = TaskFireTimes(*t, from - 1s, to, 100);
    ASSERT_TRUE(fires.ok());
    std::vector<ForecastPoint> want;
    for (Instant i : *fires) want.push_back({i, 3});
    auto f = ForecastMessages({t}, "t", from, to);
    EXPECT_EQ(f["t"], want) << day;
    EXPECT_FALSE(want.empty()) << day;
  }
}

TEST(Forecast, AFrequentTaskIsCappedPerTask) {
  auto every_second = Task("s", "@every 1s");
  const Instant from = At("2026-06-01T10:00:00Z");
  auto f = ForecastMessages({every_second}, "t", from, from + 2h, /*max_per_task=*/3600);
  ASSERT_EQ(f["t"].size(), 3600u);
  EXPECT_EQ(f["t"].back().at, from + 3599s);
}

}  // namespace
}  // namespace cronlane::dispatcher
