#include "operator/manager.h"

#include <spdlog/spdlog.h>

#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <cstdlib>
#include <thread>

namespace cronlane::op {

Manager::Manager(kube::KubeClient& client, EventRecorder& events, Clock& clock, ManagerOptions options)
    : client_(client),
      options_(std::move(options)),
      cache_(client, options_.namespaces, clock, options_.workerpools, options_.informer, options_.backfills) {
  if (options_.leader_election) {
    kube::KubeClient& leases = options_.lease_client != nullptr ? *options_.lease_client : client;
    LeaderElectionConfig config = *options_.leader_election;
    if (options_.exit_on_lost_lease && !config.on_stop_overdue) {
      // Firing stopped when leading was cancelled; what still waits (a status write
      // to an apiserver this replica cannot reach, up to its request timeout) is
      // not worth holding a replica that must restart anyway.
      config.on_stop_overdue = [] {
        spdlog::error("exiting without waiting for it");
        spdlog::shutdown();
        std::_Exit(1);
      };
    }
    elector_ = std::make_unique<LeaderElector>(leases, clock, events, std::move(config));
  }
  using T = CallbackMetrics::Type;
  metrics_.Add("cronlane_leader", "1 while this replica leads (always 1 without --leader-elect)", T::kGauge,
               [this] { return IsLeader() ? 1.0 : 0.0; });
  metrics_.Add("cronlane_tasks_cached", "ScheduledTasks in the informer cache (every replica)", T::kGauge,
               [this] { return static_cast<double>(cache_.tasks.Size()); });
  metrics_.Add("cronlane_cache_synced", "1 once the informer cache has listed every watched kind", T::kGauge,
               [this] { return cache_.Synced() ? 1.0 : 0.0; });
  metrics_.Add("cronlane_kube_requests_total", "Requests sent to the Kubernetes API", T::kCounter,
               [this] { return static_cast<double>(client_.requests()); });
}

Manager::~Manager() = default;

void MemoryTrimmer::FixMmapThreshold() {
#ifdef __GLIBC__
  mallopt(M_MMAP_THRESHOLD, 256 * 1024);  // also turns the dynamic threshold off
#endif
}

Status MemoryTrimmer::Start(CancelToken& cancel) {
  while (!cancel.WaitFor(period_)) {
#ifdef __GLIBC__
    malloc_trim(0);
#endif
  }
  return Status::Ok();
}

void Manager::AddReadyCheck(std::string name, std::function<bool()> ready) {
  ready_checks_.emplace_back(std::move(name), std::move(ready));
}

void Manager::Add(std::unique_ptr<Runnable> runnable) {
  runnables_.push_back(std::move(runnable));
}

void Manager::Fail(const Status& s) {
  MutexLock lock(mu_);
  if (failure_.ok()) failure_ = s;
  if (stop_ != nullptr) stop_->Cancel();
}

void Manager::RunTerm(CancelToken& leading) {
  leading_ = true;
  while (!cache_.Synced()) {
    if (leading.WaitFor(std::chrono::milliseconds(50))) break;
  }
  std::vector<Runnable*> term;
  for (auto& r : runnables_) {
    if (r->NeedsLeaderElection()) term.push_back(r.get());
  }
  std::vector<std::unique_ptr<CancelToken>> tokens;
  std::vector<std::thread> threads;
  if (!leading.cancelled()) {
    spdlog::info("leading: starting {} runnable(s), cache holds {} task(s)", term.size(), cache_.tasks.Size());
    for (Runnable* r : term) {
      tokens.push_back(std::make_unique<CancelToken>());
      CancelToken& token = *tokens.back();
      threads.emplace_back([this, r, &token] {
        Status s = r->Start(token);
        if (!s.ok()) {
          spdlog::error("{} stopped: {}", r->Name(), s.ToString());
          Fail(s);
        }
      });
    }
    while (!leading.WaitFor(std::chrono::seconds(3600))) {
    }
  }
  // Reverse order: what started last (and may use what started first) stops first.
  for (size_t i = threads.size(); i-- > 0;) {
    tokens[i]->Cancel();
    threads[i].join();
  }
  leading_ = false;
}

Status Manager::Run(CancelToken& cancel) {
  HttpServer metrics_server(options_.metrics_addr);
  metrics_server.Handle("/metrics", [this] {
    return HttpReply{200, SerializeMetrics({&metrics_}), "text/plain; version=0.0.4; charset=utf-8"};
  });
  HttpServer health_server(options_.health_addr);
  health_server.Handle("/healthz", [] { return HttpReply{200, "ok\n"}; });
  health_server.Handle("/readyz", [this] {
    if (!cache_.Synced()) return HttpReply{503, "cache not synced\n"};
    for (const auto& [name, ready] : ready_checks_) {
      if (!ready()) return HttpReply{503, name + " not ready\n"};
    }
    return HttpReply{200, elector_ && !IsLeader() ? "ok (standby)\n" : "ok\n"};
  });
  for (HttpServer* srv : {&metrics_server, &health_server}) {
    if (Status s = srv->Start(); !s.ok()) return s;
  }

  CancelToken stop;  // ends the run: `cancel`, or a runnable that failed
  {
    MutexLock lock(mu_);
    stop_ = &stop;
    failure_ = Status::Ok();
  }
  int reg = cancel.Register([&stop] { stop.Cancel(); });

  std::thread cache_thread([this, &stop] { cache_.Run(stop); });
  std::vector<std::thread> everywhere;
  for (auto& r : runnables_) {
    if (r->NeedsLeaderElection()) continue;
    Runnable* p = r.get();
    everywhere.emplace_back([this, p, &stop] {
      Status s = p->Start(stop);
      if (!s.ok()) {
        spdlog::error("{} stopped: {}", p->Name(), s.ToString());
        Fail(s);
      }
    });
  }

  if (!elector_) {
    RunTerm(stop);
  } else {
    while (!stop.cancelled()) {
      bool lost = elector_->Run(stop, [this](CancelToken& leading) { RunTerm(leading); });
      if (!lost) break;
      if (options_.exit_on_lost_lease) {
        Fail(Aborted("lost the leader lease"));
        break;
      }
      spdlog::warn("lost the leader lease: its runnables stopped; campaigning again");
    }
  }
  stop.Cancel();
  for (auto& t : everywhere) t.join();
  cache_thread.join();
  cancel.Unregister(reg);
  MutexLock lock(mu_);
  stop_ = nullptr;
  return failure_;
}

}  // namespace cronlane::op
