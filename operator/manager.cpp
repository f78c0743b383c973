#include "operator/manager.h"

#include <spdlog/spdlog.h>

#include <thread>

namespace cronlane::op {

Manager::Manager(kube::KubeClient& client, dispatcher::TaskSink& sink, StatusWriter& status, EventRecorder& events,
                 Clock& clock, ManagerOptions options)
    : client_(client),
      clock_(clock),
      options_(std::move(options)),
      queue_(clock),
      reconciler_([this](const std::string& key) { return Lookup(key); }, sink, status, events, clock) {
  std::vector<std::string> namespaces = options_.namespaces;
  if (namespaces.empty()) namespaces.push_back("");  // all namespaces
  for (const auto& ns : namespaces) {
    auto inf = std::make_unique<Informer<ScheduledTask>>(client_, kScheduledTasks, ns, ScheduledTaskFromJson, clock_,
                                                         options_.informer);
    inf->AddHandler([this](const std::string& key, const ScheduledTask* old, const ScheduledTask* now) {
      if (TaskReconciler::NeedsReconcile(old, now)) queue_.Add(key);
    });
    informers_.push_back(std::move(inf));
  }
}

Manager::~Manager() = default;

bool Manager::Synced() const {
  for (const auto& i : informers_) {
    if (!i->HasSynced()) return false;
  }
  return true;
}

std::optional<ScheduledTask> Manager::Lookup(const std::string& key) const {
  for (const auto& i : informers_) {
    if (auto t = i->Get(key)) return t;
  }
  return std::nullopt;
}

size_t Manager::CachedTasks() const {
  size_t n = 0;
  for (const auto& i : informers_) n += i->Size();
  return n;
}

void Manager::Worker() {
  while (auto key = queue_.Get()) {
    ++reconciles_;
    Status s = reconciler_.Reconcile(*key);
    if (s.ok()) {
      queue_.Forget(*key);
    } else {
      ++reconcile_errors_;
      spdlog::warn("reconcile {} failed (retry {}): {}", *key, queue_.Retries(*key) + 1, s.ToString());
      queue_.AddRateLimited(*key);
    }
    queue_.Done(*key);
  }
}

void Manager::Run(CancelToken& cancel) {
  std::vector<std::thread> threads;
  for (auto& inf : informers_) {
    threads.emplace_back([&inf, &cancel] { inf->Run(cancel); });
  }
  for (int i = 0; i < std::max(1, options_.workers); ++i) threads.emplace_back([this] { Worker(); });
  int id = cancel.Register([this] { queue_.ShutDown(); });
  for (auto& t : threads) t.join();
  cancel.Unregister(id);
}

}  // namespace cronlane::op
