#include "operator/task_listing.h"

#include <spdlog/spdlog.h>

#include <utility>

namespace cronlane::op {

TaskListing::TaskListing(kube::KubeClient& client, std::vector<std::string> namespaces, Clock& clock,
                         std::chrono::milliseconds ttl)
    : client_(client), namespaces_(std::move(namespaces)), clock_(clock), ttl_(ttl) {}

Result<std::shared_ptr<const TaskListing::Tasks>> TaskListing::List() {
  auto tasks = std::make_shared<Tasks>();
  std::vector<std::string> nss = namespaces_;
  if (nss.empty()) nss.push_back("");
  for (const std::string& ns : nss) {
    auto listed = client_.List(kScheduledTasks.Path(ns) + "?resourceVersion=0", [&tasks](kube::Json& item) {
      auto task = ScheduledTaskFromJson(item);
      if (task) tasks->emplace(task->ns + "/" + task->name, std::move(*task));
    });
    if (!listed.ok()) return listed.status();
  }
  ++lists_;
  return std::shared_ptr<const Tasks>(std::move(tasks));
}

std::shared_ptr<const TaskListing::Tasks> TaskListing::Get() {
  MutexLock lock(mu_);
  const auto now = clock_.SteadyNow();
  if (tasks_ && listed_at_ && now - *listed_at_ < ttl_) return tasks_;
  auto listed = List();
  if (listed.ok()) {
    tasks_ = std::move(*listed);
    listed_at_ = now;
  } else {
    spdlog::warn("listing every ScheduledTask: {} (serving the previous listing)", listed.status().ToString());
    if (!tasks_) tasks_ = std::make_shared<const Tasks>();
  }
  return tasks_;
}

void TaskListing::Trim() {
  MutexLock lock(mu_);
  if (listed_at_ && clock_.SteadyNow() - *listed_at_ >= ttl_) {
    tasks_.reset();
    listed_at_.reset();
  }
}

}  // namespace cronlane::op
