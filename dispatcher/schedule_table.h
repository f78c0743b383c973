#pragma once
// The dispatcher's schedule table: every known task with its parsed schedule and
// next fire time. This slice computes fire times; the timer queue and the Kafka
// fire path build on it.

#include <map>
#include <mutex>
#include <string>

#include "common/clock.h"
#include "dispatcher/task.h"

namespace cronlane::dispatcher {

class ScheduleTable final : public TaskSink {
 public:
  explicit ScheduleTable(Clock& clock) : clock_(clock) {}

  Result<TaskState> Upsert(const TaskDefinition& task) override;
  void Remove(const std::string& id) override;
  Result<TaskState> State(const std::string& id) const override;

  size_t size() const;
  // The definition last upserted for `id`, if any (for tests and debugging).
  std::optional<TaskDefinition> Definition(const std::string& id) const;

 private:
  struct Entry {
    TaskDefinition def;
    Schedule schedule;
    std::optional<Instant> last_fire;
  };
  TaskState StateLocked(const Entry& e) const;

  Clock& clock_;
  mutable std::mutex mu_;
  std::map<std::string, Entry> tasks_;
};

}  // namespace cronlane::dispatcher
