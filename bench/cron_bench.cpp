// Cost of Schedule::Next() for representative schedules, and of one forecast pass
// of predictive WorkerPools over many tasks. Run with `make bench`.
#include <benchmark/benchmark.h>

#include <memory>
#include <string>
#include <vector>

#include "dispatcher/cron.h"
#include "dispatcher/forecast.h"

namespace {

using cronlane::dispatcher::Instant;
using cronlane::dispatcher::Schedule;

void BM_Next(benchmark::State& state, const char* expr, const char* tz) {
  auto s = Schedule::Parse(expr, tz);
  if (!s.ok()) {
    state.SkipWithError(s.status().message().c_str());
    return;
  }
  // Walk forward from a fixed instant so every call does real work, restarting
  // periodically so sparse schedules stay inside the search horizon.
  const Instant start = *cronlane::ParseRfc3339("2026-01-01T00:00:00Z");
  Instant t = start;
  int n = 0;
  for (auto _ : state) {
    auto next = s->Next(t);
    benchmark::DoNotOptimize(next);
    t = next ? *next : start;
    if (++n == 1000) {
      n = 0;
      t = start;
    }
  }
}

BENCHMARK_CAPTURE(BM_Next, every_minute_utc, "* * * * *", "");
BENCHMARK_CAPTURE(BM_Next, every_second_utc, "* * * * * *", "");
BENCHMARK_CAPTURE(BM_Next, every_15min_weekdays_utc, "*/15 9-17 * * 1-5", "");
BENCHMARK_CAPTURE(BM_Next, sparse_yearly_utc, "0 0 1 1 *", "");
BENCHMARK_CAPTURE(BM_Next, leap_day_utc, "0 0 29 2 *", "");
BENCHMARK_CAPTURE(BM_Next, every_minute_new_york, "* * * * *", "America/New_York");
BENCHMARK_CAPTURE(BM_Next, daily_0230_new_york, "30 2 * * *", "America/New_York");
BENCHMARK_CAPTURE(BM_Next, every_second_lord_howe, "* * * * * *", "Australia/Lord_Howe");
BENCHMARK_CAPTURE(BM_Next, monthly_dom_or_dow_berlin, "0 12 1,15 * mon", "Europe/Berlin");

void BM_Parse(benchmark::State& state) {
  for (auto _ : state) {
    auto s = Schedule::Parse("*/15 9-17 1,15 jan-jun mon-fri", "Europe/Berlin");
    benchmark::DoNotOptimize(s);
  }
}
BENCHMARK(BM_Parse);

// One pass of the operator's ScheduleForecaster: ForecastMessages over N cached
// tasks for its 10-minute window. Tasks fire every minute (10 times in the
// window) or hourly, on 10 topics, as a cluster of mostly frequent tasks would.
void BM_ForecastPass(benchmark::State& state) {
  std::vector<cronlane::dispatcher::TaskDefinitionPtr> tasks;
  const auto n = static_cast<int>(state.range(0));
  for (int i = 0; i < n; ++i) {
    auto t = std::make_shared<cronlane::dispatcher::TaskDefinition>();
    t->id = "uid-" + std::to_string(i);
    t->ns = "ns";
    t->name = "t" + std::to_string(i);
    t->schedule = i % 2 == 0 ? "* * * * *" : std::to_string(i % 60) + " * * * *";
    t->topic = "topic-" + std::to_string(i % 10);
    tasks.push_back(std::move(t));
  }
  const Instant from{std::chrono::seconds{1'800'000'000}};
  for (auto _ : state) {
    auto f = cronlane::dispatcher::ForecastMessages(tasks, "default", from, from + std::chrono::minutes(10));
    benchmark::DoNotOptimize(f);
  }
  state.SetItemsProcessed(state.iterations() * n);
}
BENCHMARK(BM_ForecastPass)->Arg(10000)->Arg(100000)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
