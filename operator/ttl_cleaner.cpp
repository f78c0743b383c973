#include "operator/ttl_cleaner.h"

#include <spdlog/spdlog.h>

#include "common/time.h"

namespace cronlane::op {

TtlCleaner::TtlCleaner(KindCache<ScheduledTask>& cache, kube::KubeClient& client, Clock& clock, Owns owns)
    : cache_(cache), client_(client), clock_(clock), owns_(std::move(owns)), queue_(clock) {}

std::optional<Instant> TtlCleaner::DeleteAt(const ScheduledTask& t) {
  if (t.ttl_seconds_after_finished < 0 || t.deleting) return std::nullopt;
  const Condition* complete = t.status.Find(kConditionComplete);
  if (complete == nullptr || complete->status != "True") return std::nullopt;
  auto since = ParseRfc3339(complete->last_transition_time);
  if (!since.ok()) return std::nullopt;
  return *since + std::chrono::seconds{t.ttl_seconds_after_finished};
}

bool TtlCleaner::Handle(const std::string& key) {
  auto t = cache_.Get(key);
  if (!t || (owns_ && !owns_(*t))) return false;
  auto at = DeleteAt(*t);
  if (!at) return false;
  const auto now = clock_.Now();
  if (now < *at) {
    queue_.AddAfter(key, *at - now);
    return false;
  }
  Status s = client_.Delete(kScheduledTasks.Path(t->ns, t->name), {{"preconditions", {{"uid", t->uid}}}});
  if (s.ok()) {
    ++deleted_;
    spdlog::info("task {} finished at {} and its ttlSecondsAfterFinished ({} s) passed: deleted", key,
                 FormatRfc3339(*at - std::chrono::seconds{t->ttl_seconds_after_finished}),
                 t->ttl_seconds_after_finished);
    return true;
  }
  if (s.code() == StatusCode::kNotFound || s.code() == StatusCode::kAborted) return false;  // gone, or re-created
  spdlog::warn("deleting finished task {}: {}; retrying", key, s.ToString());
  queue_.AddRateLimited(key);
  return false;
}

void TtlCleaner::Run(CancelToken& cancel) {
  int sub = cache_.Subscribe([this](const std::string& key, const ScheduledTask*, const ScheduledTask* now) {
    if (now != nullptr && DeleteAt(*now)) queue_.Add(key);
  });
  for (const auto& key : cache_.Keys()) {
    if (auto t = cache_.Get(key); t && DeleteAt(*t)) queue_.Add(key);
  }
  std::thread worker([this] {
    while (auto key = queue_.Get()) {
      Handle(*key);
      queue_.Done(*key);
    }
  });
  int id = cancel.Register([this] { queue_.ShutDown(); });
  worker.join();
  cancel.Unregister(id);
  cache_.Unsubscribe(sub);
}

}  // namespace cronlane::op
