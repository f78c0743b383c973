#include "dispatcher/schedule_table.h"

namespace cronlane::dispatcher {

TaskState ScheduleTable::StateLocked(const Entry& e) const {
  TaskState s;
  s.last_fire = e.last_fire;
  if (!e.def.suspend) {
    Instant now = std::chrono::floor<std::chrono::seconds>(clock_.Now());
    s.next_fire = e.schedule.Next(now);
  }
  return s;
}

Result<TaskState> ScheduleTable::Upsert(const TaskDefinition& task) {
  if (auto problem = CheckTask(task)) {
    Remove(task.id);
    return InvalidArgument(problem->reason + ": " + problem->message);
  }
  auto schedule = Schedule::Parse(task.schedule, task.time_zone);
  if (!schedule.ok()) return schedule.status();  // CheckTask covers this; kept for safety
  std::lock_guard lock(mu_);
  auto it = tasks_.find(task.id);
  std::optional<Instant> last = it != tasks_.end() ? it->second.last_fire : std::nullopt;
  Entry e{task, schedule->Anchored(task.created), last};
  TaskState state = StateLocked(e);
  tasks_.insert_or_assign(task.id, std::move(e));
  return state;
}

void ScheduleTable::Remove(const std::string& id) {
  std::lock_guard lock(mu_);
  tasks_.erase(id);
}

Result<TaskState> ScheduleTable::State(const std::string& id) const {
  std::lock_guard lock(mu_);
  auto it = tasks_.find(id);
  if (it == tasks_.end()) return NotFound("task " + id + " is not scheduled");
  return StateLocked(it->second);
}

size_t ScheduleTable::size() const {
  std::lock_guard lock(mu_);
  return tasks_.size();
}

std::optional<TaskDefinition> ScheduleTable::Definition(const std::string& id) const {
  std::lock_guard lock(mu_);
  auto it = tasks_.find(id);
  if (it == tasks_.end()) return std::nullopt;
  return it->second.def;
}

}  // namespace cronlane::dispatcher
