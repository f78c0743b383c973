// cronlane-operator: watches ScheduledTasks and fires them through Kafka.
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <atomic>
#include <iostream>
#include <sstream>
#include <thread>

#include "common/cancel.h"
#include "common/http_server.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "common/signals.h"
#include "common/version.h"
#include "dispatcher/dispatcher.h"
#include "dispatcher/kafka_fire_sink.h"
#include "dispatcher/results_follower.h"
#include "operator/event_aggregator.h"
#include "operator/kube/client.h"
#include "operator/kube/config.h"
#include "operator/leader_election.h"
#include "operator/manager.h"
#include "operator/status_writer.h"
#include "operator/workerpool_controller.h"

namespace {

using namespace cronlane;

// Set when the dispatcher was fenced by a newer leader: the process exits 1.
std::atomic<bool> g_fenced{false};

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

struct Flags {
  std::string kubeconfig, context, namespaces, metrics_addr = ":8080", health_addr = ":8081";
  std::string log_level = "info", log_format = "json";
  double qps = 20, status_qps = 10, condition_qps = 20;
  int burst = 30, status_burst = 20, condition_burst = 50, workers = 2;
  bool leader_elect = false;
  std::string lease_namespace, lease_name = "cronlane-operator";
  double lease_duration = 15, renew_deadline = 10, retry_period = 2;
  std::string kafka_bootstrap, default_topic = "cronlane.tasks", checkpoint_topic = "cronlane.checkpoints";
  std::string transactional_id = "cronlane-dispatcher";
  int replication_factor = 1, topic_partitions = 6;
  bool create_topics = true;
  bool workerpools = true;
  std::string results_topic = "cronlane.results";
  int results_lookback = 3600;
  int forbid_running_limit = 3600;
  std::vector<std::string> kafka_properties;
};

// Everything that lives for one leadership term.
struct Term {
  Term(kube::KubeClient& client, op::EventRecorder& recorder, Clock& clock, const Flags& f,
       const kafka::Properties& kafka_props, CancelToken& leading)
      : events(recorder, clock),
        sink({.base = kafka_props,
              .transactional_id = f.transactional_id,
              .checkpoint_topic = f.checkpoint_topic,
              .replication_factor = f.replication_factor,
              .create_topics = f.create_topics,
              .topic_partitions = f.topic_partitions}),
        writer(
            client, [this](const std::string& key) { return manager ? manager->Lookup(key) : std::nullopt; }, events,
            clock, {f.status_qps, f.status_burst}, {f.condition_qps, f.condition_burst},
            [&leading](const std::string&) {
              g_fenced = true;
              leading.Cancel();
            }),
        dispatcher(
            clock, sink, &writer,
            {.default_topic = f.default_topic, .forbid_running_limit = std::chrono::seconds(f.forbid_running_limit)}),
        lag_reader(kafka_props),
        results(
            {.base = kafka_props, .topic = f.results_topic, .lookback = std::chrono::seconds(f.results_lookback)},
            clock, [this](const std::string& id, dispatcher::Instant at) { dispatcher.OnFinished(id, at); },
            [this](const std::string& subject, const std::string& uid, dispatcher::Instant at) {
              writer.OnSucceeded(subject, uid, at);
            }) {
    manager =
        std::make_unique<op::Manager>(client, dispatcher, writer, events, clock,
                                      op::ManagerOptions{.namespaces = SplitComma(f.namespaces), .workers = f.workers});
    if (f.workerpools) {
      pools = std::make_unique<op::WorkerPoolController>(client, lag_reader, recorder, clock,
                                                         op::WorkerPoolControllerOptions{SplitComma(f.namespaces)});
    }
  }
  op::EventAggregator events;  // flushed by the writer's thread
  dispatcher::KafkaFireSink sink;
  op::StatusWriter writer;
  dispatcher::Dispatcher dispatcher;
  std::unique_ptr<op::Manager> manager;
  op::KafkaLagReader lag_reader;
  dispatcher::ResultsFollower results;
  std::unique_ptr<op::WorkerPoolController> pools;  // null with --workerpools=false
};

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"cronlane-operator: fires ScheduledTasks through Kafka"};
  app.set_version_flag("--version", std::string("cronlane-operator ") + kVersion);
  Flags f;
  app.add_option("--kubeconfig", f.kubeconfig,
                 "Path to a kubeconfig (default: $KUBECONFIG, in-cluster, ~/.kube/config)")
      ->envname("CRONLANE_KUBECONFIG");
  app.add_option("--context", f.context, "kubeconfig context (default: current)")->envname("CRONLANE_CONTEXT");
  app.add_option("--namespaces", f.namespaces, "Comma-separated namespaces to watch (default: all)")
      ->envname("CRONLANE_NAMESPACES");
  app.add_option("--kafka-bootstrap", f.kafka_bootstrap, "Kafka bootstrap servers, host:port[,host:port]")
      ->envname("CRONLANE_KAFKA_BOOTSTRAP")
      ->required();
  app.add_option("--kafka-property", f.kafka_properties,
                 "Extra librdkafka property KEY=VALUE (security.protocol, sasl.*, ssl.*); repeatable")
      ->envname("CRONLANE_KAFKA_PROPERTIES")
      ->delimiter(';');
  app.add_option("--default-topic", f.default_topic, "Topic for tasks that name none")
      ->envname("CRONLANE_DEFAULT_TOPIC")
      ->capture_default_str();
  app.add_option("--checkpoint-topic", f.checkpoint_topic, "Compacted topic of fire checkpoints (created if missing)")
      ->envname("CRONLANE_CHECKPOINT_TOPIC")
      ->capture_default_str();
  app.add_option("--transactional-id", f.transactional_id, "Kafka transactional.id shared by all replicas")
      ->envname("CRONLANE_TRANSACTIONAL_ID")
      ->capture_default_str();
  app.add_option("--kafka-replication-factor", f.replication_factor, "Replication factor of topics cronlane creates")
      ->check(CLI::Range(1, 10))
      ->capture_default_str();
  app.add_option("--create-topics", f.create_topics, "Create a task's topic when it does not exist")
      ->envname("CRONLANE_CREATE_TOPICS")
      ->capture_default_str();
  app.add_option("--topic-partitions", f.topic_partitions, "Partitions of topics cronlane creates")
      ->check(CLI::Range(1, 10000))
      ->capture_default_str();
  app.add_option("--results-topic", f.results_topic,
                 "Topic workers report finished occurrences on (lastSuccessfulTime, concurrencyPolicy Forbid)")
      ->envname("CRONLANE_RESULTS_TOPIC")
      ->capture_default_str();
  app.add_option("--results-lookback", f.results_lookback,
                 "Seconds of results a new leader replays to learn which occurrences finished")
      ->envname("CRONLANE_RESULTS_LOOKBACK")
      ->check(CLI::Range(0, 7 * 86400))
      ->capture_default_str();
  app.add_option("--forbid-running-limit", f.forbid_running_limit,
                 "Seconds an occurrence of a Forbid task without execution.timeoutSeconds blocks the next one when "
                 "no result arrives")
      ->envname("CRONLANE_FORBID_RUNNING_LIMIT")
      ->check(CLI::Range(1, 7 * 86400))
      ->capture_default_str();
  app.add_option("--workerpools", f.workerpools,
                 "Scale WorkerPools by consumer-group lag (needs RBAC on targets' /scale)")
      ->envname("CRONLANE_WORKERPOOLS")
      ->capture_default_str();
  app.add_option("--metrics-bind-address", f.metrics_addr, "Prometheus /metrics address, 0 disables")
      ->envname("CRONLANE_METRICS_BIND_ADDRESS")
      ->capture_default_str();
  app.add_option("--health-probe-bind-address", f.health_addr, "/healthz and /readyz address, 0 disables")
      ->envname("CRONLANE_HEALTH_PROBE_BIND_ADDRESS")
      ->capture_default_str();
  app.add_option("--log-level", f.log_level, "trace, debug, info, warn or error")
      ->envname("CRONLANE_LOG_LEVEL")
      ->capture_default_str();
  app.add_option("--log-format", f.log_format, "json or text")->envname("CRONLANE_LOG_FORMAT")->capture_default_str();
  app.add_option("--kube-api-qps", f.qps, "Client-side rate limit of Kubernetes API requests per second")
      ->envname("CRONLANE_KUBE_API_QPS")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--kube-api-burst", f.burst, "Burst allowed above --kube-api-qps")
      ->envname("CRONLANE_KUBE_API_BURST")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--status-qps", f.status_qps, "Budget of status writes per second for fire times")
      ->envname("CRONLANE_STATUS_QPS")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--status-burst", f.status_burst, "Burst above --status-qps")
      ->envname("CRONLANE_STATUS_BURST")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--condition-qps", f.condition_qps,
                 "Budget of status writes per second for conditions and observedGeneration (new and changed tasks; "
                 "never delays firing)")
      ->envname("CRONLANE_CONDITION_QPS")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--condition-burst", f.condition_burst, "Burst above --condition-qps")
      ->envname("CRONLANE_CONDITION_BURST")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--workers", f.workers, "Concurrent reconciles")
      ->envname("CRONLANE_WORKERS")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  app.add_flag("--leader-elect", f.leader_elect, "Run only while holding the leader Lease (for several replicas)")
      ->envname("CRONLANE_LEADER_ELECT");
  app.add_option("--leader-election-namespace", f.lease_namespace,
                 "Namespace of the Lease (default: the kubeconfig's or service account's namespace)")
      ->envname("CRONLANE_LEADER_ELECTION_NAMESPACE");
  app.add_option("--leader-election-id", f.lease_name, "Name of the Lease")
      ->envname("CRONLANE_LEADER_ELECTION_ID")
      ->capture_default_str();
  app.add_option("--leader-elect-lease-duration", f.lease_duration, "Seconds a standby waits before taking over")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--leader-elect-renew-deadline", f.renew_deadline, "Seconds the leader keeps trying to renew")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--leader-elect-retry-period", f.retry_period, "Seconds between acquire/renew attempts")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (f.leader_elect && !(f.renew_deadline < f.lease_duration && f.retry_period < f.renew_deadline)) {
    std::cerr << "cronlane-operator: need --leader-elect-retry-period < --leader-elect-renew-deadline < "
                 "--leader-elect-lease-duration\n";
    return 2;
  }
  kafka::Properties kafka_props{{"bootstrap.servers", f.kafka_bootstrap}};
  if (Status s = kafka::AddProperties(f.kafka_properties, kafka_props); !s.ok()) {
    std::cerr << "cronlane-operator: " << s.message() << "\n";
    return 2;
  }
  if (Status s = SetupLogging(f.log_level, f.log_format, "operator"); !s.ok()) {
    std::cerr << "cronlane-operator: " << s.message() << "\n";
    return 2;
  }

  TerminationSignals signals;

  auto cfg = kube::LoadDefault(f.kubeconfig, f.context);
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
  kube::KubeClient client(std::move(*transport), clock, f.qps, f.burst);
  op::KubeEventRecorder events(client, clock, "cronlane.dev/operator", Hostname());

  std::atomic<Term*> term{nullptr};
  std::unique_ptr<op::LeaderElector> elector;
  if (f.leader_elect) {
    using ms = std::chrono::milliseconds;
    auto to_ms = [](double s) { return ms(static_cast<int64_t>(s * 1000)); };
    elector = std::make_unique<op::LeaderElector>(
        client, clock, events,
        op::LeaderElectionConfig{
            .lease_namespace = f.lease_namespace.empty() ? cfg->default_namespace : f.lease_namespace,
            .lease_name = f.lease_name,
            .identity = Hostname() + "_" + std::to_string(getpid()) + "_" +
                        std::to_string(clock.Now().time_since_epoch().count() % 1000000),
            .lease_duration = to_ms(f.lease_duration),
            .renew_deadline = to_ms(f.renew_deadline),
            .retry_period = to_ms(f.retry_period)});
  }

  CallbackMetrics metrics;
  using T = CallbackMetrics::Type;
  auto from_term = [&term](auto fn) {
    return [&term, fn]() -> double {
      Term* t = term.load();
      return t == nullptr ? 0.0 : static_cast<double>(fn(*t));
    };
  };
  metrics.Add("cronlane_leader", "1 while this replica leads (always 1 without --leader-elect)", T::kGauge,
              [&] { return !elector || elector->IsLeader() ? 1.0 : 0.0; });
  metrics.Add("cronlane_tasks_cached", "ScheduledTasks in the informer cache", T::kGauge,
              from_term([](Term& t) { return t.manager->CachedTasks(); }));
  metrics.Add("cronlane_tasks_scheduled", "Tasks in the dispatcher's schedule table", T::kGauge,
              from_term([](Term& t) { return t.dispatcher.Stats().tasks; }));
  metrics.Add("cronlane_occurrences_fired_total", "Occurrences committed to Kafka", T::kCounter,
              from_term([](Term& t) { return t.dispatcher.Stats().fired; }));
  metrics.Add("cronlane_messages_fired_total", "Messages committed to Kafka (occurrences x shards)", T::kCounter,
              from_term([](Term& t) { return t.dispatcher.Stats().messages; }));
  metrics.Add("cronlane_occurrences_skipped_total", "Occurrences not fired (catch-up policy, deadline)", T::kCounter,
              from_term([](Term& t) { return t.dispatcher.Stats().skipped; }));
  metrics.Add("cronlane_kafka_commits_total", "Kafka transactions committed", T::kCounter,
              from_term([](Term& t) { return t.dispatcher.Stats().commits; }));
  metrics.Add("cronlane_kafka_commit_failures_total", "Kafka transactions that failed and were retried", T::kCounter,
              from_term([](Term& t) { return t.dispatcher.Stats().commit_failures; }));
  metrics.Add("cronlane_occurrences_pending", "Occurrences due and waiting for a commit", T::kGauge,
              from_term([](Term& t) { return t.dispatcher.Stats().pending; }));
  metrics.Add("cronlane_reconcile_total", "Reconciles run", T::kCounter,
              from_term([](Term& t) { return t.manager->reconciles(); }));
  metrics.Add("cronlane_reconcile_errors_total", "Reconciles that failed and were retried", T::kCounter,
              from_term([](Term& t) { return t.manager->reconcile_errors(); }));
  metrics.Add("cronlane_status_writes_total", "Status patches written (reconciles and fire times)", T::kCounter,
              from_term([](Term& t) { return t.writer.writes(); }));
  metrics.Add("cronlane_status_backlog", "Tasks whose fire times wait for the status write budget", T::kGauge,
              from_term([](Term& t) { return t.writer.backlog(); }));
  metrics.Add("cronlane_workqueue_depth", "Keys waiting in the work queue", T::kGauge,
              from_term([](Term& t) { return t.manager->queue().Len(); }));
  // WorkerPools are scaled from the start of a term, even while the dispatcher
  // waits for Kafka, so they have their own pointer.
  std::atomic<op::WorkerPoolController*> pools{nullptr};
  auto pool_family = [&pools](auto fn) {
    return [&pools, fn]() {
      std::vector<CallbackMetrics::Sample> out;
      op::WorkerPoolController* c = pools.load();
      if (c == nullptr) return out;
      for (const auto& p : c->Snapshot()) {
        out.push_back({{{"namespace", p.ns}, {"workerpool", p.name}}, static_cast<double>(fn(p))});
      }
      return out;
    };
  };
  metrics.AddFamily("cronlane_workerpool_lag", "Consumer-group lag of a WorkerPool's topic (-1 = unknown)", T::kGauge,
                    pool_family([](const op::PoolSnapshot& p) { return p.lag; }));
  metrics.AddFamily("cronlane_workerpool_partitions", "Partitions of a WorkerPool's topic", T::kGauge,
                    pool_family([](const op::PoolSnapshot& p) { return p.partitions; }));
  metrics.AddFamily("cronlane_workerpool_desired_replicas", "Replicas a WorkerPool wants", T::kGauge,
                    pool_family([](const op::PoolSnapshot& p) { return p.desired; }));
  metrics.AddFamily("cronlane_workerpool_current_replicas", "Replicas of a WorkerPool's target (its /scale status)",
                    T::kGauge, pool_family([](const op::PoolSnapshot& p) { return p.current; }));
  metrics.AddFamily("cronlane_workerpool_ready", "1 while a WorkerPool's Ready condition is True", T::kGauge,
                    pool_family([](const op::PoolSnapshot& p) { return p.ready ? 1 : 0; }));
  metrics.Add("cronlane_workerpool_scales_total", "Scale changes patched onto WorkerPool targets", T::kCounter,
              [&pools] {
                op::WorkerPoolController* c = pools.load();
                return c == nullptr ? 0.0 : static_cast<double>(c->scales());
              });
  metrics.Add("cronlane_results_total", "Worker results read from the results topic", T::kCounter,
              from_term([](Term& t) { return t.results.results(); }));
  metrics.Add("cronlane_results_invalid_total", "Records on the results topic that could not be decoded", T::kCounter,
              from_term([](Term& t) { return t.results.invalid(); }));
  metrics.Add("cronlane_events_combined_total", "Warning Events folded into a combined Event (aggregation)",
              T::kCounter, from_term([](Term& t) { return t.events.combined(); }));
  metrics.Add("cronlane_kube_requests_total", "Requests sent to the Kubernetes API", T::kCounter,
              [&] { return static_cast<double>(client.requests()); });

  HttpServer metrics_server(f.metrics_addr);
  metrics_server.Handle("/metrics", [&] {
    return HttpReply{200, SerializeMetrics({&metrics}), "text/plain; version=0.0.4; charset=utf-8"};
  });
  HttpServer health_server(f.health_addr);
  health_server.Handle("/healthz", [] { return HttpReply{200, "ok\n"}; });
  health_server.Handle("/readyz", [&] {
    Term* t = term.load();
    if (elector && !elector->IsLeader()) return HttpReply{200, "ok (standby)\n"};
    return t != nullptr && t->manager->Synced() && (!t->pools || t->pools->Synced()) ? HttpReply{200, "ok\n"}
                                                                                     : HttpReply{503, "not synced\n"};
  });
  for (HttpServer* srv : {&metrics_server, &health_server}) {
    if (Status s = srv->Start(); !s.ok()) {
      spdlog::error("{}", s.message());
      return 2;
    }
  }

  CancelToken cancel;
  signals.CancelOnSignal(cancel, "shutting down");

  auto lead = [&](CancelToken& leading) {
    Term t(client, events, clock, f, kafka_props, leading);
    pools = t.pools.get();
    std::thread pools_thread([&] {
      if (t.pools) t.pools->Run(leading);
    });
    std::thread results_thread([&] { t.results.Run(leading); });
    struct JoinTermThreads {
      std::thread& pools_thread;
      std::thread& results_thread;
      std::atomic<op::WorkerPoolController*>& ptr;
      ~JoinTermThreads() {
        pools_thread.join();
        results_thread.join();
        ptr = nullptr;
      }
    } join_threads{pools_thread, results_thread, pools};
    // Fence older leaders and restore checkpoints before firing; Kafka may be down.
    auto backoff = std::chrono::milliseconds(500);
    while (!leading.cancelled()) {
      Status s = t.dispatcher.Start();
      if (s.ok()) break;
      spdlog::warn("dispatcher start (Kafka {}): {}; retrying", f.kafka_bootstrap, s.ToString());
      if (leading.WaitFor(backoff)) return;
      backoff = std::min(backoff * 2, std::chrono::milliseconds(10000));
    }
    // Learn which occurrences finished under the previous leader before firing
    // (concurrencyPolicy Forbid), for at most 10 s.
    for (int i = 0; i < 100 && !t.results.Replayed() && !leading.cancelled(); ++i) {
      leading.WaitFor(std::chrono::milliseconds(100));
    }
    if (leading.cancelled()) return;
    spdlog::info("dispatcher started: checkpoints restored, firing to Kafka {}", f.kafka_bootstrap);
    term = &t;
    std::thread disp([&] {
      t.dispatcher.Run(leading);
      if (!leading.cancelled()) leading.Cancel();
    });
    std::thread writer([&] { t.writer.Run(leading); });
    t.manager->Run(leading);
    disp.join();
    writer.join();
    term = nullptr;
  };

  spdlog::info("cronlane-operator {} starting: API {} ({}), namespaces {}, Kafka {}", kVersion, cfg->server,
               cfg->source, f.namespaces.empty() ? "all" : f.namespaces, f.kafka_bootstrap);
  if (!elector) {
    // Without leader election the process leads for its whole life; a fence still stops it.
    CancelToken& leading = cancel;
    lead(leading);
    spdlog::info("stopped");
    return g_fenced ? 1 : 0;
  }
  bool lost = elector->Run(cancel, lead);
  spdlog::info("stopped");
  return lost || g_fenced ? 1 : 0;
}
