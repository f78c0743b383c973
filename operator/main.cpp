// cronlane-operator: watches ScheduledTasks and hands them to the dispatcher.
#include <CLI/CLI.hpp>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <iostream>
#include <sstream>
#include <thread>

#include "common/cancel.h"
#include "common/http_server.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "common/version.h"
#include "dispatcher/schedule_table.h"
#include "operator/kube/client.h"
#include "operator/kube/config.h"
#include "operator/leader_election.h"
#include "operator/manager.h"

namespace {

std::vector<std::string> SplitComma(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  for (std::string part; std::getline(ss, part, ',');) {
    if (!part.empty()) out.push_back(part);
  }
  return out;
}

std::string Hostname() {
  char buf[256] = {};
  gethostname(buf, sizeof buf - 1);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace cronlane;
  CLI::App app{"cronlane-operator: fires ScheduledTasks through Kafka"};
  app.set_version_flag("--version", std::string("cronlane-operator ") + kVersion);
  std::string kubeconfig, context, namespaces, metrics_addr = ":8080", health_addr = ":8081";
  std::string log_level = "info", log_format = "json";
  double qps = 20;
  int burst = 30, workers = 2;
  bool leader_elect = false;
  std::string lease_namespace, lease_name = "cronlane-operator";
  double lease_duration = 15, renew_deadline = 10, retry_period = 2;
  app.add_option("--kubeconfig", kubeconfig, "Path to a kubeconfig (default: $KUBECONFIG, in-cluster, ~/.kube/config)")
      ->envname("CRONLANE_KUBECONFIG");
  app.add_option("--context", context, "kubeconfig context (default: current)")->envname("CRONLANE_CONTEXT");
  app.add_option("--namespaces", namespaces, "Comma-separated namespaces to watch (default: all)")
      ->envname("CRONLANE_NAMESPACES");
  app.add_option("--metrics-bind-address", metrics_addr, "Prometheus /metrics address, 0 disables")
      ->envname("CRONLANE_METRICS_BIND_ADDRESS")
      ->capture_default_str();
  app.add_option("--health-probe-bind-address", health_addr, "/healthz and /readyz address, 0 disables")
      ->envname("CRONLANE_HEALTH_PROBE_BIND_ADDRESS")
      ->capture_default_str();
  app.add_option("--log-level", log_level, "trace, debug, info, warn or error")
      ->envname("CRONLANE_LOG_LEVEL")
      ->capture_default_str();
  app.add_option("--log-format", log_format, "json or text")->envname("CRONLANE_LOG_FORMAT")->capture_default_str();
  app.add_option("--kube-api-qps", qps, "Client-side rate limit of Kubernetes API requests per second")
      ->envname("CRONLANE_KUBE_API_QPS")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--kube-api-burst", burst, "Burst allowed above --kube-api-qps")
      ->envname("CRONLANE_KUBE_API_BURST")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--workers", workers, "Concurrent reconciles")
      ->envname("CRONLANE_WORKERS")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_flag("--leader-elect", leader_elect, "Run only while holding the leader Lease (for several replicas)")
      ->envname("CRONLANE_LEADER_ELECT");
  app.add_option("--leader-election-namespace", lease_namespace,
                 "Namespace of the Lease (default: the kubeconfig's or service account's namespace)")
      ->envname("CRONLANE_LEADER_ELECTION_NAMESPACE");
  app.add_option("--leader-election-id", lease_name, "Name of the Lease")
      ->envname("CRONLANE_LEADER_ELECTION_ID")
      ->capture_default_str();
  app.add_option("--leader-elect-lease-duration", lease_duration, "Seconds a standby waits before taking over")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--leader-elect-renew-deadline", renew_deadline, "Seconds the leader keeps trying to renew")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--leader-elect-retry-period", retry_period, "Seconds between acquire/renew attempts")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (leader_elect && !(renew_deadline < lease_duration && retry_period < renew_deadline)) {
    std::cerr << "cronlane-operator: need --leader-elect-retry-period < --leader-elect-renew-deadline < "
                 "--leader-elect-lease-duration\n";
    return 2;
  }

  if (Status s = SetupLogging(log_level, log_format, "operator"); !s.ok()) {
    std::cerr << "cronlane-operator: " << s.message() << "\n";
    return 2;
  }

  // Signals are handled on one thread with sigwait; block them everywhere else.
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  auto cfg = kube::LoadDefault(kubeconfig, context);
  if (!cfg.ok()) {
    spdlog::error("Kubernetes configuration: {}", cfg.status().message());
    return 2;
  }
  auto transport = kube::NewHttpTransport(*cfg);
  if (!transport.ok()) {
    spdlog::error("{}", transport.status().message());
    return 2;
  }
  Clock& clock = RealClock::Get();
  kube::KubeClient client(std::move(*transport), clock, qps, burst);
  dispatcher::ScheduleTable table(clock);
  op::KubeEventRecorder events(client, clock, "cronlane.dev/operator", Hostname());
  op::Manager manager(client, table, events, clock, {.namespaces = SplitComma(namespaces), .workers = workers});

  CallbackMetrics metrics;
  using T = CallbackMetrics::Type;
  metrics.Add("cronlane_tasks_cached", "ScheduledTasks in the informer cache", T::kGauge,
              [&] { return static_cast<double>(manager.CachedTasks()); });
  metrics.Add("cronlane_tasks_scheduled", "Tasks in the dispatcher's schedule table", T::kGauge,
              [&] { return static_cast<double>(table.size()); });
  metrics.Add("cronlane_reconcile_total", "Reconciles run", T::kCounter,
              [&] { return static_cast<double>(manager.reconciles()); });
  metrics.Add("cronlane_reconcile_errors_total", "Reconciles that failed and were retried", T::kCounter,
              [&] { return static_cast<double>(manager.reconcile_errors()); });
  metrics.Add("cronlane_status_writes_total", "Status patches written", T::kCounter,
              [&] { return static_cast<double>(manager.reconciler().status_writes()); });
  metrics.Add("cronlane_kube_requests_total", "Requests sent to the Kubernetes API", T::kCounter,
              [&] { return static_cast<double>(client.requests()); });
  metrics.Add("cronlane_workqueue_depth", "Keys waiting in the work queue", T::kGauge,
              [&] { return static_cast<double>(manager.queue().Len()); });

  HttpServer metrics_server(metrics_addr);
  metrics_server.Handle("/metrics", [&] {
    return HttpReply{200, SerializeMetrics({&metrics}), "text/plain; version=0.0.4; charset=utf-8"};
  });
  HttpServer health_server(health_addr);
  health_server.Handle("/healthz", [] { return HttpReply{200, "ok\n"}; });
  std::unique_ptr<op::LeaderElector> elector;
  if (leader_elect) {
    using ms = std::chrono::milliseconds;
    auto to_ms = [](double s) { return ms(static_cast<int64_t>(s * 1000)); };
    elector = std::make_unique<op::LeaderElector>(
        client, clock, events,
        op::LeaderElectionConfig{.lease_namespace = lease_namespace.empty() ? cfg->default_namespace : lease_namespace,
                                 .lease_name = lease_name,
                                 .identity = Hostname() + "_" + std::to_string(getpid()) + "_" +
                                             std::to_string(clock.Now().time_since_epoch().count() % 1000000),
                                 .lease_duration = to_ms(lease_duration),
                                 .renew_deadline = to_ms(renew_deadline),
                                 .retry_period = to_ms(retry_period)});
  }
  health_server.Handle("/readyz", [&] {
    if (elector && !elector->IsLeader()) return HttpReply{200, "ok (standby)\n"};
    return manager.Synced() ? HttpReply{200, "ok\n"} : HttpReply{503, "informer caches not synced\n"};
  });
  metrics.Add("cronlane_leader", "1 while this replica holds the leader Lease (always 1 without --leader-elect)",
              T::kGauge, [&] { return !elector || elector->IsLeader() ? 1.0 : 0.0; });
  for (HttpServer* srv : {&metrics_server, &health_server}) {
    if (Status s = srv->Start(); !s.ok()) {
      spdlog::error("{}", s.message());
      return 2;
    }
  }

  CancelToken cancel;
  std::thread signal_thread([&] {
    int sig = 0;
    sigwait(&sigs, &sig);
    spdlog::info("received signal {}, shutting down", sig);
    cancel.Cancel();
  });
  signal_thread.detach();

  spdlog::info("cronlane-operator {} starting: API {} ({}), namespaces {}", kVersion, cfg->server, cfg->source,
               namespaces.empty() ? "all" : namespaces);
  if (!elector) {
    manager.Run(cancel);
    spdlog::info("stopped");
    return 0;
  }
  spdlog::info("leader election on lease {}/{} as {}", lease_namespace.empty() ? cfg->default_namespace : lease_namespace,
               lease_name, elector->identity());
  bool lost = elector->Run(cancel, [&](CancelToken& leading) { manager.Run(leading); });
  if (lost) {
    // Kubernetes restarts us; we rejoin as a candidate with a fresh state.
    return 1;
  }
  spdlog::info("stopped");
  return 0;
}
