// Cost of Schedule::Next() for representative schedules. Run with `make bench`.
#include <benchmark/benchmark.h>

#include "dispatcher/cron.h"

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

}  // namespace

BENCHMARK_MAIN();
