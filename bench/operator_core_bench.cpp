// operator_core_bench: what the operator itself costs at N ScheduledTasks, in one
// process, with nothing fake inside it. The real Manager (shared cache, informer),
// LeaderTerm (ScheduledTask controller, dispatcher, status writer) run as in
// production; only the world at the edges is in memory:
//   - an API that serves N objects as the apiserver does (paged LIST with `limit`
//     and `continue`, a watch that stays open, status PATCHes answered at once),
//     each object as `kubectl create` plus a status write leave it (managedFields of
//     both, conditions and fire times) unless --fresh;
//   - a Kafka sink whose commits succeed at once.
// It reports, per run: list time (with the time spent generating the JSON taken
// out), start → every task scheduled, and RSS per task once the cache synced (what
// a standby holds) and after every task was scheduled and status written for
// --seconds (what the leader holds). make bench-scale measures the same through the
// real apiserver and broker, where they share the cores; this separates the two.
//
// --history: each object's status also carries a full run history (10 recentRuns
// and lastFailureTime), what every task that runs shows after ten results.
//
//   operator_core_bench [--tasks N] [--page-size P] [--seconds S] [--fresh] [--same-second] [--history]
#define _TURN_OFF_PLATFORM_STRING  // NOLINT(bugprone-reserved-identifier): cpprestsdk's switch
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#ifdef __GLIBC__
#include <malloc.h>
#endif
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <mutex>
#include <string>
#include <thread>

#include "common/clock.h"
#include "common/time.h"
#include "operator/events.h"
#include "operator/leader_term.h"
#include "operator/manager.h"

using namespace cronlane;
using namespace std::chrono_literals;

namespace {

double StatusMiB(const char* field) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(field, 0) == 0) return std::stod(line.substr(std::strlen(field))) / 1024.0;
  }
  return 0;
}
double RssMiB() {
  return StatusMiB("VmRSS:");
}

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// The API at the edge: N ScheduledTasks in namespace "scale", served in pages.
class InMemoryApi final : public kube::Transport {
 public:
  InMemoryApi(int n, bool fresh, bool same_second, bool history)
      : n_(n), fresh_(fresh), same_second_(same_second), history_(history) {
    std::string runs;  // --history: the recentRuns and lastFailureTime members of status
    for (int m = 9; m >= 0; --m) {
      char run[256];
      std::snprintf(
          run, sizeof run,
          R"(%s{"trigger":"Scheduled","scheduledTime":"2026-11-30T08:%02d:00Z","finishedTime":"2026-11-30T08:%02d:07Z",)"
          R"("outcome":"%s","attempts":%d,"durationMs":%d})",
          m == 9 ? "" : ",", m, m, m == 4 ? "Failed" : "Succeeded", m == 4 ? 3 : 1, 6000 + 37 * m);
      runs += run;
    }
    runs = R"(,"recentRuns":[)" + runs + R"(],"lastFailureTime":"2026-11-30T08:04:07Z")";
    status_ = std::string(kStatus) + (history_ ? runs : "") + "}";
  }

  Result<kube::HttpResponse> Send(const kube::HttpRequest& req) override {
    ++requests_;
    if (req.method == "PATCH") {
      ++patches_;
      return kube::HttpResponse{200, "{}"};
    }
    if (req.method == "POST") return kube::HttpResponse{201, "{}"};
    if (req.method != "GET") return kube::HttpResponse{405, "{}"};
    if (req.path.find("/scheduledtasks?") == std::string::npos) {
      return kube::HttpResponse{200, R"({"metadata":{"resourceVersion":"1"},"items":[]})"};
    }
    auto t0 = std::chrono::steady_clock::now();
    // resourceVersion=0 is answered from the apiserver's watch cache, whole: the
    // limit does not apply.
    int limit = req.path.find("resourceVersion=0") != std::string::npos ? n_ : Query(req.path, "limit=", n_);
    int start = Query(req.path, "continue=", 0);
    int end = std::min(n_, start + limit);
    std::string body =
        R"({"apiVersion":"cronlane.dev/v1alpha1","kind":"ScheduledTaskList","metadata":{"resourceVersion":"1000")";
    if (end < n_) body += R"(,"continue":")" + std::to_string(end) + '"';
    body += R"(},"items":[)";
    for (int i = start; i < end; ++i) {
      if (i > start) body += ',';
      Object(i, body);
    }
    body += "]}";
    generate_ns_ += std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count();
    return kube::HttpResponse{200, std::move(body)};
  }

  Result<int> Stream(const kube::HttpRequest&, const std::function<bool(std::string_view)>&, CancelToken& cancel,
                     std::string*) override {
    while (!cancel.WaitFor(1h)) {
    }
    return 200;
  }

  double generate_seconds() const { return generate_ns_.load() / 1e9; }
  uint64_t patches() const { return patches_.load(); }

 private:
  static int Query(const std::string& path, const std::string& name, int def) {
    auto p = path.find(name);
    return p == std::string::npos ? def : std::atoi(path.c_str() + p + name.size());
  }

  // One object as the apiserver returns it after `kubectl create` and a status write.
  void Object(int i, std::string& out) const {
    char buf[8192];
    const int sec = same_second_ ? 0 : i % 60;
    int len = std::snprintf(
        buf, sizeof buf,
        R"({"apiVersion":"cronlane.dev/v1alpha1","kind":"ScheduledTask","metadata":{"creationTimestamp":"2026-11-30T08:00:00Z","generation":1,)"
        R"("managedFields":[{"apiVersion":"cronlane.dev/v1alpha1","fieldsType":"FieldsV1","fieldsV1":{"f:spec":{".":{},"f:catchUpPolicy":{},"f:concurrencyPolicy":{},"f:jitterSeconds":{},"f:maxCatchUp":{},"f:payload":{".":{},"f:job":{},"f:tenant":{}},"f:schedule":{},"f:shards":{},"f:suspend":{},"f:target":{".":{},"f:topic":{}}}},"manager":"kubectl-create","operation":"Update","time":"2026-11-30T08:00:00Z"})"
        "%s"
        R"(],"name":"t%d","namespace":"scale","resourceVersion":"%d","uid":"%08x-63e7-450f-a66d-1ac021715927"},)"
        R"("spec":{"catchUpPolicy":"Latest","concurrencyPolicy":"Allow","jitterSeconds":0,"maxCatchUp":100,"payload":{"job":"report","tenant":%d},"schedule":"%d * * * * *","shards":1,"suspend":false,"target":{"topic":"scale"}})"
        "%s}",
        fresh_
            ? ""
            : R"(,{"apiVersion":"cronlane.dev/v1alpha1","fieldsType":"FieldsV1","fieldsV1":{"f:status":{".":{},"f:conditions":{".":{},"k:{\"type\":\"Ready\"}":{".":{},"f:lastTransitionTime":{},"f:message":{},"f:observedGeneration":{},"f:reason":{},"f:status":{},"f:type":{}}},"f:firedCount":{},"f:lastScheduleTime":{},"f:missedCount":{},"f:nextScheduleTime":{},"f:observedGeneration":{}}},"manager":"cronlane-operator","operation":"Update","subresource":"status","time":"2026-11-30T08:01:00Z"})",
        i, 1000 + i, i, i % 97, sec, fresh_ ? "" : status_.c_str());
    out.append(buf, static_cast<size_t>(len));
  }

  const int n_;
  const bool fresh_;
  const bool same_second_;
  const bool history_;
  std::string runs_;    // --history: the recentRuns and lastFailureTime members of status
  std::string status_;  // what follows the spec: status, unless fresh
  static constexpr const char* kStatus =
      R"(,"status":{"conditions":[{"lastTransitionTime":"2026-11-30T08:00:01Z","message":"The task fires according to spec.schedule","observedGeneration":1,"reason":"Scheduled","status":"True","type":"Ready"}],"firedCount":3,"lastScheduleTime":"2026-11-30T08:02:00Z","missedCount":0,"nextScheduleTime":"2026-11-30T08:03:00Z","observedGeneration":1)";
  std::atomic<int64_t> generate_ns_{0};
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> patches_{0};
};

// Commits at once, and remembers when each message was committed against the time
// it was scheduled for (its ce_time), for the fire lag of the operator alone.
class InstantSink final : public dispatcher::FireSink {
 public:
  Status Init() override { return Status::Ok(); }
  Status Commit(const std::vector<dispatcher::OutMessage>& m, const std::vector<dispatcher::Checkpoint>&) override {
    const auto now = std::chrono::system_clock::now();
    std::lock_guard lock(mu_);
    for (const auto& msg : m) {
      for (const auto& h : msg.headers) {
        if (h.name == "ce_time") committed_.push_back({h.value, now});
      }
    }
    messages += m.size();
    return Status::Ok();
  }
  Result<dispatcher::Checkpoints> ReadCheckpoints() override { return dispatcher::Checkpoints{}; }

  // Commit time - scheduled time, in ms, of every message scheduled at or after
  // `from`, sorted.
  std::vector<double> LagsSince(std::chrono::system_clock::time_point from) {
    std::lock_guard lock(mu_);
    std::vector<double> out;
    for (const auto& [scheduled, at] : committed_) {
      auto t = ParseRfc3339(scheduled);
      if (!t.ok() || *t < from) continue;
      out.push_back(std::chrono::duration<double, std::milli>(at - *t).count());
    }
    std::sort(out.begin(), out.end());
    return out;
  }
  std::atomic<uint64_t> messages{0};

 private:
  std::mutex mu_;
  std::vector<std::pair<std::string, std::chrono::system_clock::time_point>> committed_;
};

// What the term owns: a handle on the sink that outlives it.
class SinkHandle final : public dispatcher::FireSink {
 public:
  explicit SinkHandle(dispatcher::FireSink& sink) : sink_(sink) {}
  Status Init() override { return sink_.Init(); }
  Status Commit(const std::vector<dispatcher::OutMessage>& m, const std::vector<dispatcher::Checkpoint>& c) override {
    return sink_.Commit(m, c);
  }
  Result<dispatcher::Checkpoints> ReadCheckpoints() override { return sink_.ReadCheckpoints(); }

 private:
  dispatcher::FireSink& sink_;
};

double Percentile(const std::vector<double>& sorted, double p) {
  if (sorted.empty()) return 0;
  return sorted[std::min(sorted.size() - 1, static_cast<size_t>(p * static_cast<double>(sorted.size())))];
}

class ReplayedResults final : public dispatcher::ResultsSource {
 public:
  void Run(CancelToken& cancel) override {
    while (!cancel.WaitFor(1h)) {
    }
  }
  bool Replayed() const override { return true; }
  uint64_t results() const override { return 0; }
  uint64_t invalid() const override { return 0; }
};

class NoEvents final : public op::EventRecorder {
 public:
  void Record(const op::ObjectRef&, const std::string&, const std::string&, const std::string&,
              const std::string&) override {}
};

std::optional<double> Metric(const CallbackMetrics& m, const std::string& name) {
  for (const auto& f : m.Collect()) {
    if (f.name == name && !f.metric.empty()) return f.metric[0].gauge.value + f.metric[0].counter.value;
  }
  return std::nullopt;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"The operator's start-up and memory at N tasks, with the API and Kafka in memory"};
  int n = 100000, page_size = 500, seconds = 20;
  double qps = 20;
  int burst = 30;
  bool fresh = false, same_second = false, history = false;
  app.add_option("--tasks", n, "ScheduledTasks the API serves");
  app.add_option("--page-size", page_size, "The informer's LIST page size");
  app.add_option("--seconds", seconds, "How long the leader runs after every task was scheduled");
  app.add_option("--kube-api-qps", qps, "The client's rate limit (the operator's default)");
  app.add_option("--kube-api-burst", burst, "The client's burst");
  app.add_flag("--fresh", fresh, "Objects as just created: no status, no status managedFields");
  app.add_flag("--same-second", same_second, "Every task due at second 0 (default: spread over the minute)");
  app.add_flag("--history", history, "Each status carries 10 recentRuns and lastFailureTime (not with --fresh)");
  CLI11_PARSE(app, argc, argv);
  spdlog::set_level(spdlog::level::warn);

  const double rss0 = RssMiB();
  auto api = std::make_unique<InMemoryApi>(n, fresh, same_second, history);
  InMemoryApi& api_ref = *api;
  Clock& clock = RealClock::Get();
  kube::KubeClient client(std::move(api), clock, qps, burst);
  NoEvents events;
  op::ManagerOptions mo{.namespaces = {"scale"}, .workerpools = false, .backfills = false};
  mo.informer.page_size = page_size;
  op::Manager manager(client, events, clock, mo);
  InstantSink sink_impl;
  InstantSink* sink = &sink_impl;
  op::TermWorld world;
  world.sink = [sink] { return std::make_unique<SinkHandle>(*sink); };
  world.results = [](auto, auto, auto) { return std::make_unique<ReplayedResults>(); };
  op::MemoryTrimmer::FixMmapThreshold();  // as operator/main.cpp does
  manager.Add(std::make_unique<op::MemoryTrimmer>());
  manager.Add(std::make_unique<op::LeaderTerm>(client, manager.cache(), events, clock, manager.metrics(), world,
                                               op::LeaderTermOptions{.dispatcher = {.default_topic = "scale"}}));

  CancelToken cancel;
  const auto t0 = std::chrono::steady_clock::now();
  std::thread run([&] { (void)manager.Run(cancel); });

  double synced_s = 0, scheduled_s = 0, rss_synced = 0;
  while (true) {
    std::this_thread::sleep_for(10ms);
    if (synced_s == 0 && manager.cache().Synced()) {
      synced_s = Seconds(std::chrono::steady_clock::now() - t0);
      rss_synced = RssMiB();  // the cache, before the term's tables fill (as on a standby)
    }
    if (Metric(manager.metrics(), "cronlane_tasks_scheduled").value_or(0) >= n) {
      scheduled_s = Seconds(std::chrono::steady_clock::now() - t0);
      break;
    }
    if (Seconds(std::chrono::steady_clock::now() - t0) > 600) {
      std::cerr << "not every task scheduled after 600 s\n";
      return 1;
    }
  }
  // Fire lag from the next whole second on (every task is scheduled by then).
  const auto lag_from = std::chrono::ceil<std::chrono::seconds>(std::chrono::system_clock::now());
  std::this_thread::sleep_for(std::chrono::seconds(seconds));
#ifdef __GLIBC__
  malloc_trim(0);
#endif
  const double rss_leader = RssMiB();
  const double fired = Metric(manager.metrics(), "cronlane_occurrences_fired_total").value_or(0);
  const double backlog = Metric(manager.metrics(), "cronlane_status_backlog").value_or(0);
  cancel.Cancel();
  run.join();
  const std::vector<double> lags = sink->LagsSince(lag_from);

  const double per = 1024.0 * 1024.0 / n;
  std::printf(
      "tasks=%d page_size=%d fresh=%d same_second=%d history=%d list_s=%.2f (generating the JSON %.2f s, taken out: "
      "%.2f) "
      "all_scheduled_s=%.2f rss_base_mib=%.1f standby_b_per_task=%.0f leader_b_per_task=%.0f "
      "peak_rss_mib=%.0f fired=%.0f lag_ms_p50=%.0f lag_ms_p99=%.0f lag_ms_max=%.0f status_patches=%llu "
      "status_backlog=%.0f\n",
      n, page_size, fresh ? 1 : 0, same_second ? 1 : 0, history ? 1 : 0, synced_s, api_ref.generate_seconds(),
      synced_s - api_ref.generate_seconds(), scheduled_s - api_ref.generate_seconds(), rss0, (rss_synced - rss0) * per,
      (rss_leader - rss0) * per, StatusMiB("VmHWM:"), fired, Percentile(lags, 0.5), Percentile(lags, 0.99),
      lags.empty() ? 0.0 : lags.back(), static_cast<unsigned long long>(api_ref.patches()), backlog);
  return 0;
}
