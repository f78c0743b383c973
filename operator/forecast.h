#pragma once
// The operator's Forecaster (operator/workerpool_controller.h): the schedule's
// forecast per topic from the cached ScheduledTasks, through the dispatcher's
// ForecastMessages (the operator has no cron math). One pass over every task
// serves every topic and is reused for `reuse`, so pools polled together cost one
// pass; a request reaching past the computed window computes again.

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/thread_annotations.h"
#include "dispatcher/forecast.h"
#include "operator/cache.h"
#include "operator/scheduled_task.h"
#include "operator/task_listing.h"
#include "operator/workerpool_controller.h"

namespace cronlane::op {

class ScheduleForecaster final : public Forecaster {
 public:
  // `definitions`: every cached task's definition (called with no lock of ours held
  // but under mu_ of this forecaster: one pass at a time).
  using Definitions = std::function<std::vector<dispatcher::TaskDefinitionPtr>()>;
  ScheduleForecaster(Definitions definitions, std::string default_topic, Clock& clock,
                     std::chrono::seconds reuse = std::chrono::seconds(5),
                     std::chrono::seconds min_window = std::chrono::minutes(10));
  TopicForecast Forecast(const std::string& topic, std::chrono::system_clock::time_point from,
                         std::chrono::system_clock::time_point to) override;
  uint64_t passes() const;  // passes over the tasks so far (for tests and metrics)

 private:
  Definitions definitions_;
  const std::string default_topic_;
  Clock& clock_;
  const std::chrono::seconds reuse_, min_window_;
  mutable Mutex mu_;
  std::map<std::string, std::vector<dispatcher::ForecastPoint>> points_ GUARDED_BY(mu_);
  Instant from_ GUARDED_BY(mu_){}, to_ GUARDED_BY(mu_){};
  std::optional<std::chrono::steady_clock::time_point> computed_ GUARDED_BY(mu_);
  uint64_t passes_ GUARDED_BY(mu_) = 0;
};

// Every task's definition in `tasks` (the operator's shared cache), for the
// forecaster; `tasks` must outlive the returned function.
ScheduleForecaster::Definitions CachedDefinitions(const KindCache<ScheduledTask>& tasks);
// Every task's definition from `listing` (with --shards, where the cache holds only
// the replica's shards); `listing` must outlive the returned function.
ScheduleForecaster::Definitions ListedDefinitions(TaskListing& listing);

}  // namespace cronlane::op
