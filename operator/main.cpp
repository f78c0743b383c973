// cronlane-operator: watches ScheduledTasks and fires them through Kafka.
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <atomic>
#include <iostream>
#include <optional>
#include <sstream>
#include <thread>

#include "common/backoff.h"
#include "common/cancel.h"
#include "common/hash.h"
#include "common/http_server.h"
#include "common/logging.h"
#include "common/signals.h"
#include "common/version.h"
#include "dispatcher/kafka_fire_sink.h"
#include "dispatcher/reshard.h"
#include "dispatcher/results_follower.h"
#include "dispatcher/results_hub.h"
#include "operator/admission.h"
#include "operator/console.h"
#include "operator/forecast.h"
#include "operator/kube/client.h"
#include "operator/kube/config.h"
#include "operator/leader_term.h"
#include "operator/manager.h"
#include "operator/shard_coordinator.h"
#include "operator/shard_selector.h"
#include "operator/task_listing.h"
#include "operator/webhook_certs.h"
#include "operator/workerpool_controller.h"

namespace {

using namespace cronlane;

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
  std::string console_addr = "0", console_allowed_hosts = "localhost,127.0.0.1,[::1]";
  std::string webhook_addr = "0", webhook_cert_dir = "/tmp/k8s-webhook-server/serving-certs",
              webhook_cert_name = "tls.crt", webhook_key_name = "tls.key";
  std::string webhook_cert_secret, webhook_service = "cronlane-webhook", webhook_cert_hosts, webhook_configuration;
  int webhook_cert_check_period = 60;
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
  int workerpool_workers = 16;
  bool backfills = true;
  std::string results_topic = "cronlane.results";
  std::string control_topic = "cronlane.control";
  int results_lookback = 3600;
  int forbid_running_limit = 3600;
  std::vector<std::string> kafka_properties;
  int shards = 1;
  std::string shard_layout = "auto";
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
  app.add_option("--control-topic", f.control_topic,
                 "Topic of the cancel events of concurrencyPolicy Replace, followed by every worker (empty: "
                 "Replace fires as Allow)")
      ->envname("CRONLANE_CONTROL_TOPIC")
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
  app.add_option("--workerpool-workers", f.workerpool_workers,
                 "WorkerPools polled at once (a poll waits on the apiserver and the broker; --kube-api-qps also "
                 "bounds the polls per second)")
      ->envname("CRONLANE_WORKERPOOL_WORKERS")
      ->check(CLI::Range(1, 256))
      ->capture_default_str();
  app.add_option("--backfills", f.backfills,
                 "Run Backfills (needs the Backfill CRD, and RBAC on backfills and backfills/status)")
      ->envname("CRONLANE_BACKFILLS")
      ->capture_default_str();
  app.add_option("--webhook-bind-address", f.webhook_addr,
                 "HTTPS address of the validating admission webhook (every replica serves it), 0 disables")
      ->envname("CRONLANE_WEBHOOK_BIND_ADDRESS")
      ->capture_default_str();
  app.add_option("--webhook-cert-dir", f.webhook_cert_dir,
                 "Directory of the webhook's serving certificate and key (e.g. a cert-manager Secret's mount)")
      ->envname("CRONLANE_WEBHOOK_CERT_DIR")
      ->capture_default_str();
  app.add_option("--webhook-cert-name", f.webhook_cert_name, "Certificate file (PEM chain) in --webhook-cert-dir")
      ->capture_default_str();
  app.add_option("--webhook-key-name", f.webhook_key_name, "Private key file (PEM) in --webhook-cert-dir")
      ->capture_default_str();
  app.add_option("--webhook-cert-secret", f.webhook_cert_secret,
                 "Make and rotate the webhook's CA and serving certificate in this Secret of the operator's namespace, "
                 "shared by every replica, instead of reading --webhook-cert-dir")
      ->envname("CRONLANE_WEBHOOK_CERT_SECRET");
  app.add_option("--webhook-service", f.webhook_service,
                 "With --webhook-cert-secret: the Service the certificate is for (NAME.NAMESPACE.svc)")
      ->capture_default_str();
  app.add_option("--webhook-cert-hosts", f.webhook_cert_hosts,
                 "With --webhook-cert-secret: comma-separated DNS names or IPs instead of the Service's names");
  app.add_option("--webhook-configuration", f.webhook_configuration,
                 "With --webhook-cert-secret: the ValidatingWebhookConfiguration whose caBundle the operator writes")
      ->envname("CRONLANE_WEBHOOK_CONFIGURATION");
  app.add_option("--webhook-cert-check-period", f.webhook_cert_check_period,
                 "With --webhook-cert-secret: seconds between re-reads of the Secret (rotation) and checks of the "
                 "caBundle")
      ->check(CLI::Range(1, 3600))
      ->capture_default_str();
  app.add_option("--console-bind-address", f.console_addr,
                 "HTTP address of the read-only console (a web page and its JSON API; every replica serves it), "
                 "0 disables. Bind it to 127.0.0.1 and reach it with kubectl port-forward")
      ->envname("CRONLANE_CONSOLE_BIND_ADDRESS")
      ->capture_default_str();
  app.add_option("--console-allowed-hosts", f.console_allowed_hosts,
                 "Host header names the console answers (comma-separated; * for any): a page opened through "
                 "port-forward cannot be read by other sites through DNS rebinding")
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
  app.add_option("--shards", f.shards,
                 "Split the tasks into this many shards, each fired by one replica at a time (Leases "
                 "<leader-election-id>-shard-<i>); 1 = one leader fires everything. Needs --leader-elect; one value "
                 "per installation")
      ->envname("CRONLANE_SHARDS")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--shard-layout", f.shard_layout,
                 "With --shards: how a task's UID picks its shard. range (hash ranges, which a Kubernetes 1.36 "
                 "apiserver can filter by), modulo (before this flag existed), or auto: what the checkpoint topic was "
                 "written with, range for a new topic. A value the topic does not fit stops the start-up "
                 "(docs/operations.md, \"Shard layouts\")")
      ->envname("CRONLANE_SHARD_LAYOUT")
      ->check(CLI::IsMember({"auto", "range", "modulo"}))
      ->capture_default_str();
  // Changing --shards: copies the checkpoints into the new layout, then exits.
  std::string reshard_from;
  int reshard_from_shards = 1;
  CLI::App* reshard = app.add_subcommand(
      "reshard-checkpoints",
      "With every replica stopped: copy the checkpoints of the old layout (--from-checkpoint-topic, --from-shards) "
      "into --checkpoint-topic (a new topic) for --shards and --shard-layout (auto: range), fencing the old layout's "
      "producers first and reading the copy back; then exit (docs/operations.md, \"Changing the number of "
      "shards\")");
  reshard->fallthrough();
  reshard->add_option("--from-checkpoint-topic", reshard_from, "The checkpoint topic the replicas used until now")
      ->required();
  reshard->add_option("--from-shards", reshard_from_shards, "The --shards the replicas ran with until now")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (*reshard) {
    kafka::Properties props{{"bootstrap.servers", f.kafka_bootstrap}};
    Status s = kafka::AddProperties(f.kafka_properties, props);
    if (s.ok()) s = SetupLogging(f.log_level, f.log_format, "operator");
    if (!s.ok()) {
      std::cerr << "cronlane-operator: " << s.message() << "\n";
      return 2;
    }
    const ShardLayout to_layout = ParseShardLayout(f.shard_layout).value_or(ShardLayout::kRange);
    auto done = dispatcher::ReshardCheckpoints({.base = props,
                                                .transactional_id = f.transactional_id,
                                                .from_topic = reshard_from,
                                                .from_shards = reshard_from_shards,
                                                .to_topic = f.checkpoint_topic,
                                                .to_shards = f.shards,
                                                .to_layout = to_layout,
                                                .replication_factor = f.replication_factor});
    if (!done.ok()) {
      std::cerr << "cronlane-operator reshard-checkpoints: " << done.status().ToString() << "\n";
      return done.status().code() == StatusCode::kInvalidArgument ? 2 : 1;
    }
    std::cout << "copied " << done->checkpoints << " checkpoint(s) and " << done->records << " record(s) from "
              << reshard_from << " (" << reshard_from_shards << " shard(s)) to " << f.checkpoint_topic << " ("
              << f.shards << " shard(s)"
              << (f.shards > 1 ? ", " + std::string(ShardLayoutName(to_layout)) + " layout" : "") << "), read back\n";
    return 0;
  }
  if (f.shards > 1 && !f.leader_elect) {
    std::cerr << "cronlane-operator: --shards above 1 needs --leader-elect (the shards are held with Leases)\n";
    return 2;
  }
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
  CancelToken shutdown;  // SIGTERM, SIGINT
  signals.CancelOnSignal(shutdown, "shutting down");

  // librdkafka checks some settings only when a client is made (a CA or key file
  // that cannot be read, an unknown property, a mechanism it lacks). Those never
  // heal by retrying, so they end the start-up here, as the worker's do, instead of
  // failing every leadership term. The client connects to nothing before it is
  // asked; it also answers the sharded start-up's partition check below, and is
  // closed after it.
  kafka::Properties probe_props = kafka_props;
  probe_props["allow.auto.create.topics"] = "false";  // asking must not create a topic
  auto kafka_probe = kafka::NewProducer(probe_props);
  if (!kafka_probe.ok()) {
    spdlog::error("Kafka configuration: {}", kafka_probe.status().message());
    return 2;
  }

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

  const std::string identity = Hostname() + "_" + std::to_string(getpid()) + "_" +
                               std::to_string(clock.Now().time_since_epoch().count() % 1000000);
  if (f.backfills) {
    // An upgrade that did not install the Backfill CRD (or its RBAC) must not stop
    // everything else: the shared cache waits for every informer's first list.
    const auto nss = SplitComma(f.namespaces);
    auto probe = client.Get(op::kBackfills.Path(nss.empty() ? "" : nss.front()) + "?limit=1");
    if (!probe.ok() &&
        (probe.status().code() == StatusCode::kNotFound || probe.status().code() == StatusCode::kPermissionDenied)) {
      spdlog::error(
          "Backfills disabled: {} (install the Backfill CRD from crds/ and the RBAC rules on backfills and "
          "backfills/status from manifests/base, or pass --backfills=false)",
          probe.status().message());
      f.backfills = false;
    }
  }
  op::ManagerOptions mo{.namespaces = SplitComma(f.namespaces),
                        .workerpools = f.workerpools,
                        .backfills = f.backfills,
                        .metrics_addr = f.metrics_addr,
                        .health_addr = f.health_addr,
                        .exit_on_lost_lease = f.shards == 1};
  auto to_ms = [](double s) { return std::chrono::milliseconds(static_cast<int64_t>(s * 1000)); };
  const std::string mo_lease_namespace = f.lease_namespace.empty() ? cfg->default_namespace : f.lease_namespace;
  if (f.leader_elect) {
    mo.leader_election = op::LeaderElectionConfig{.lease_namespace = mo_lease_namespace,
                                                  .lease_name = f.lease_name,
                                                  .identity = identity,
                                                  .lease_duration = to_ms(f.lease_duration),
                                                  .renew_deadline = to_ms(f.renew_deadline),
                                                  .retry_period = to_ms(f.retry_period)};
  }
  // Lease traffic (the leader Lease, and shard and member Leases) has a client of
  // its own: its own rate limit, so busy status writes never delay a renewal, and a
  // request timeout of half the renew deadline, so a renewal that hangs (the
  // apiserver unreachable from this replica only) fails in time for the replica to
  // stop before the Lease can expire and someone else fires (kubernetes#44887).
  std::unique_ptr<kube::KubeClient> lease_client;
  if (f.leader_elect) {
    auto lease_transport =
        kube::NewHttpTransport(*cfg, {.request_timeout_seconds = std::max(1, static_cast<int>(f.renew_deadline / 2)),
                                      .user_agent = "cronlane-operator/leases"});
    if (!lease_transport.ok()) {
      spdlog::error("{}", lease_transport.status().message());
      return 2;
    }
    lease_client = std::make_unique<kube::KubeClient>(std::move(*lease_transport), clock, 10 + f.shards, 20 + f.shards);
    mo.lease_client = lease_client.get();
  }
  op::Manager manager(client, events, clock, std::move(mo));

  dispatcher::KafkaSinkOptions sink{.base = kafka_props,
                                    .transactional_id = f.transactional_id,
                                    .checkpoint_topic = f.checkpoint_topic,
                                    .replication_factor = f.replication_factor,
                                    .create_topics = f.create_topics,
                                    .topic_partitions = f.topic_partitions};
  dispatcher::ResultsFollowerOptions results{
      .base = kafka_props, .topic = f.results_topic, .lookback = std::chrono::seconds(f.results_lookback)};
  if (f.leader_elect && f.shards == 1) {
    // A standby follows the checkpoint topic, so its takeover reads only the tail.
    auto follower = std::make_shared<dispatcher::CheckpointFollower>(
        dispatcher::CheckpointFollowerOptions{.base = kafka_props, .topic = f.checkpoint_topic});
    sink.follower = follower;
    manager.Add(std::make_unique<op::FuncRunnable>("checkpoint-follower", false, [follower](CancelToken& cancel) {
      follower->Run(cancel);
      return Status::Ok();
    }));
    manager.metrics().Add("cronlane_checkpoints_followed",
                          "Checkpoints a standby holds from following the checkpoint topic (0 once it leads)",
                          CallbackMetrics::Type::kGauge, [follower] { return static_cast<double>(follower->Size()); });
  }
  op::MemoryTrimmer::FixMmapThreshold();
  manager.Add(std::make_unique<op::MemoryTrimmer>());
  const op::LeaderTermOptions term{.dispatcher = {.default_topic = f.default_topic,
                                                  .forbid_running_limit = std::chrono::seconds(f.forbid_running_limit),
                                                  .control_topic = f.control_topic},
                                   .fire_times = {f.status_qps, f.status_burst},
                                   .conditions = {f.condition_qps, f.condition_burst},
                                   .workers = f.workers,
                                   .kafka_description = f.kafka_bootstrap,
                                   .workerpool_workers = f.workerpool_workers};
  std::unique_ptr<op::ShardCoordinator> shards;
  std::unique_ptr<op::TaskListing> console_tasks, forecast_tasks;  // with --shards
  if (f.shards == 1) {
    kafka_probe->reset();
    manager.Add(std::make_unique<op::LeaderTerm>(client, manager.cache(), events, clock, manager.metrics(),
                                                 op::KafkaTermWorld(sink, results, clock), term));
  } else {
    // A topic with another partition count is refused now rather than by every
    // shard's start; Kafka being unreachable here is not (each shard checks again).
    Status parts = dispatcher::CheckCheckpointPartitions(kafka_probe->get(), f.checkpoint_topic, f.shards);
    if (parts.code() == StatusCode::kFailedPrecondition) {
      spdlog::error("{}", parts.message());
      return 2;
    }
    kafka_probe->reset();
    // The layout every replica must agree on, from where the checkpoints sit. With
    // auto it cannot be guessed, so Kafka being unreachable is waited out; with a
    // given layout each shard's take-over checks its partition again.
    const std::optional<ShardLayout> wanted = ParseShardLayout(f.shard_layout);
    Backoff backoff({std::chrono::seconds(1), std::chrono::seconds(30), 0.2});
    for (;;) {
      auto layout = dispatcher::CheckCheckpointLayout(kafka_props, f.checkpoint_topic, f.shards, wanted);
      if (layout.ok()) {
        sink.layout = *layout;
        break;
      }
      if (layout.status().code() == StatusCode::kFailedPrecondition) {
        spdlog::error("{}", layout.status().message());
        return 2;
      }
      if (wanted) {
        spdlog::warn(
            "--shard-layout {}: not checked against the checkpoint topic ({}); each shard checks its own "
            "partition when taken",
            f.shard_layout, layout.status().ToString());
        sink.layout = *wanted;
        break;
      }
      spdlog::warn("--shard-layout auto: {}; trying again (or give --shard-layout)", layout.status().ToString());
      if (shutdown.WaitFor(backoff.Next())) return 0;
    }
    spdlog::info("{} shards, {} layout (--shard-layout {})", f.shards, ShardLayoutName(sink.layout), f.shard_layout);
    manager.metrics().AddFamily(
        "cronlane_shard_layout", "With --shards: 1, labelled with the shard layout this replica runs (range, modulo)",
        CallbackMetrics::Type::kGauge, [layout = sink.layout] {
          return std::vector<CallbackMetrics::Sample>{{{{"layout", std::string(ShardLayoutName(layout))}}, 1.0}};
        });
    // The task cache holds only the held shards' tasks (the coordinator scopes it);
    // the readers of every task list them instead: the console (10 s old at most)
    // and the forecast of predictive pools (a minute: one LIST a minute on the
    // leader-Lease replica, only while a predictive pool forecasts).
    console_tasks =
        std::make_unique<op::TaskListing>(client, SplitComma(f.namespaces), clock, std::chrono::seconds(10));
    forecast_tasks =
        std::make_unique<op::TaskListing>(client, SplitComma(f.namespaces), clock, std::chrono::minutes(1));
    manager.Add(std::make_unique<op::FuncRunnable>("shard-cache-upkeep", false, [&](CancelToken& cancel) {
      bool warned = false;
      while (!cancel.WaitFor(std::chrono::seconds(10))) {
        console_tasks->Trim();
        forecast_tasks->Trim();
        // With the range layout the apiserver sends only the held shards' tasks,
        // if it can: one that ignores shardSelector costs every replica the
        // whole stream (each still caches only its own).
        const uint64_t outside = manager.cache().tasks.OutOfScope();
        if (!warned && outside > 0 && sink.layout == ShardLayout::kRange) {
          warned = true;
          spdlog::warn(
              "the apiserver sent {} ScheduledTask(s) of shards this replica does not hold: it ignores "
              "shardSelector (Kubernetes 1.36+ with --feature-gates ShardedListAndWatch=true filters them); every "
              "replica receives every task, and caches only its own",
              outside);
        }
      }
      return Status::Ok();
    }));
    manager.metrics().Add("cronlane_shard_cache_out_of_scope_total",
                          "With --shards: ScheduledTasks the apiserver sent that belong to shards this replica does "
                          "not hold, dropped (it ignores shardSelector, or the modulo layout)",
                          CallbackMetrics::Type::kCounter,
                          [&manager] { return static_cast<double>(manager.cache().tasks.OutOfScope()); });
    if (f.workerpools) {
      // WorkerPools are not sharded: the holder of the leader Lease scales them all.
      manager.Add(std::make_unique<op::FuncRunnable>("workerpool-controller", true, [&](CancelToken& cancel) {
        op::KafkaLagReader lag(kafka_props);
        // Predictive pools forecast from every task (all shards'), whichever
        // replica fires them.
        op::ScheduleForecaster forecaster(op::ListedDefinitions(*forecast_tasks), f.default_topic, clock);
        op::WorkerPoolController pools(client, *manager.cache().pools, lag, events, clock, &forecaster);
        CallbackMetrics::Scope m(manager.metrics());
        pools.RegisterMetrics(m);
        pools.Run(cancel, f.workerpool_workers);
        return Status::Ok();
      }));
    }
    // One results follower for the replica, shared by the shards it holds.
    auto hub = std::make_shared<dispatcher::ResultsHub>(results, clock);
    manager.Add(std::make_unique<op::FuncRunnable>("results-hub", false, [hub](CancelToken& cancel) {
      hub->Run(cancel);
      return Status::Ok();
    }));
    manager.metrics().Add("cronlane_results_tasks_remembered",
                          "With --shards: tasks whose latest result the replica's shared results follower keeps",
                          CallbackMetrics::Type::kGauge, [hub] { return static_cast<double>(hub->Remembered()); });
    op::ShardWork work = [&, sink, term, hub](int shard, CancelToken& cancel) {
      op::LeaderTerm t(client, manager.cache(), events, clock, manager.metrics(),
                       op::ShardTermWorld(op::ShardSinkOptions(sink, shard, f.shards), hub),
                       op::ShardTermOptions(term, shard, f.shards, sink.layout));
      return t.Start(cancel);
    };
    // What the replica caches follows the shards it holds. Range layout: an
    // informer per held shard, listing only its range (a take lists one shard).
    // Modulo: the apiserver cannot select its shards, so one informer whose
    // filter follows the held shards (each change re-lists everything).
    op::ShardCacheScope cache_scope;
    op::KindCache<op::ScheduledTask>& task_cache = manager.cache().tasks;
    if (sink.layout == ShardLayout::kRange) {
      cache_scope.scope = [&task_cache, n = f.shards](const std::set<int>& held) {
        task_cache.SetShards(held, [n](int shard) { return op::ShardScope({shard}, n, ShardLayout::kRange); });
      };
      cache_scope.synced = [&task_cache](int shard) { return task_cache.ShardSynced(shard); };
    } else {
      auto generation = std::make_shared<std::atomic<uint64_t>>(0);
      cache_scope.scope = [&task_cache, n = f.shards, generation](const std::set<int>& held) {
        generation->store(task_cache.SetScope(op::ShardScope(held, n, ShardLayout::kModulo)));
      };
      cache_scope.synced = [&task_cache, generation](int) {
        return task_cache.SyncedGeneration() >= generation->load();
      };
    }
    shards = std::make_unique<op::ShardCoordinator>(
        *lease_client, clock, events,
        op::ShardingConfig{.lease_namespace = mo_lease_namespace,
                           .lease_prefix = f.lease_name,
                           .identity = identity,
                           .shards = f.shards,
                           .lease_duration = to_ms(f.lease_duration),
                           .renew_deadline = to_ms(f.renew_deadline),
                           .retry_period = to_ms(f.retry_period),
                           .join_grace = 2 * to_ms(f.lease_duration)},
        [&manager] { return manager.cache().Synced(); }, std::move(work), std::move(cache_scope));
    shards->RegisterMetrics(manager.metrics());
    op::ShardCoordinator* coordinator = shards.get();
    manager.Add(std::make_unique<op::FuncRunnable>("shard-coordinator", false,
                                                   [coordinator](CancelToken& c) { return coordinator->Start(c); }));
  }

  // The admission webhook: on every replica, leader or not, from start to exit.
  // Its counters are shared with the handler and the metrics, which may outlive this scope's order.
  struct WebhookCounts {
    std::atomic<uint64_t> reviews{0}, denials{0};
  };
  auto counts = std::make_shared<WebhookCounts>();
  // Its certificate: from files (cert-manager's Secret, mounted), or made by the
  // operator in a Secret every replica shares (--webhook-cert-secret).
  std::unique_ptr<op::WebhookCertificates> webhook_certs;
  if (f.webhook_addr != "0" && !f.webhook_cert_secret.empty()) {
    std::vector<std::string> hosts = SplitComma(f.webhook_cert_hosts);
    if (hosts.empty()) {
      hosts = {f.webhook_service + "." + mo_lease_namespace + ".svc",
               f.webhook_service + "." + mo_lease_namespace + ".svc.cluster.local"};
    }
    webhook_certs = std::make_unique<op::WebhookCertificates>(
        client, clock,
        op::WebhookCertOptions{.ns = mo_lease_namespace,
                               .secret = f.webhook_cert_secret,
                               .hosts = hosts,
                               .configuration = f.webhook_configuration,
                               .period = std::chrono::seconds(f.webhook_cert_check_period)});
    // Before serving: retried while the API server is unreachable, for up to a minute.
    Status s = webhook_certs->Ensure();
    for (int i = 0; !s.ok() && i < 12 &&
                    (s.code() == StatusCode::kUnavailable || s.code() == StatusCode::kAborted ||
                     s.code() == StatusCode::kDeadlineExceeded);
         ++i) {
      spdlog::warn("webhook: serving certificate: {} (retrying)", s.message());
      clock.SleepFor(std::chrono::seconds(5));
      s = webhook_certs->Ensure();
    }
    if (!s.ok()) {
      spdlog::error("webhook: cannot get a serving certificate in Secret {}/{}: {}", mo_lease_namespace,
                    f.webhook_cert_secret, s.message());
      return 2;
    }
    op::WebhookCertificates* certs = webhook_certs.get();
    manager.Add(std::make_unique<op::FuncRunnable>("webhook-certificates", false,
                                                   [certs](CancelToken& c) { return certs->Run(c); }));
  }
  HttpServer webhook(f.webhook_addr, webhook_certs ? webhook_certs->Source()
                                                   : TlsFromFiles({f.webhook_cert_dir + "/" + f.webhook_cert_name,
                                                                   f.webhook_cert_dir + "/" + f.webhook_key_name}));
  if (!webhook.disabled()) {
    webhook.HandlePost(op::kValidateScheduledTaskPath, [counts](const std::string& body) {
      ++counts->reviews;
      kube::Json review = kube::Json::parse(body, nullptr, false);
      auto answer = op::ReviewAdmission(review);
      if (!answer.ok()) return HttpReply{400, answer.status().message() + "\n"};
      if (!(*answer)["response"]["allowed"].get<bool>()) {
        ++counts->denials;
        spdlog::info("admission: refused {}", (*answer)["response"]["status"]["message"].get<std::string>());
      }
      return HttpReply{200, answer->dump(), "application/json"};
    });
    manager.metrics().Add("cronlane_webhook_reviews_total", "Admission reviews answered by this replica",
                          CallbackMetrics::Type::kCounter,
                          [counts] { return static_cast<double>(counts->reviews.load()); });
    manager.metrics().Add("cronlane_webhook_denied_total",
                          "Admission reviews this replica refused (a ScheduledTask that would never be scheduled)",
                          CallbackMetrics::Type::kCounter,
                          [counts] { return static_cast<double>(counts->denials.load()); });
    if (Status s = webhook.Start(); !s.ok()) {
      spdlog::error("admission webhook: {}", s.message());
      return 2;
    }
    spdlog::info("admission webhook serving https://{}{}", f.webhook_addr, op::kValidateScheduledTaskPath);
  }

  // The console: on every replica, from the shared cache; its sampler of WorkerPool
  // status runs as a runnable that needs no leadership.
  std::unique_ptr<op::Console> console;
  HttpServer console_server(f.console_addr);
  if (!console_server.disabled()) {
    op::Cache& cache = manager.cache();
    op::ConsoleSource source{
        .task_keys = [&cache] { return cache.tasks.Keys(); },
        .task = [&cache](const std::string& key) { return cache.tasks.Get(key); },
        .pools = [&cache] { return cache.pools ? cache.pools->List() : std::vector<op::WorkerPool>{}; },
        .backfills = [&cache] { return cache.backfills ? cache.backfills->List() : std::vector<op::Backfill>{}; }};
    if (console_tasks) {  // the cache holds only this replica's shards
      op::TaskListing* listing = console_tasks.get();
      source.task_keys = [listing] {
        auto tasks = listing->Get();
        std::vector<std::string> keys;
        keys.reserve(tasks->size());
        for (const auto& [key, t] : *tasks) keys.push_back(key);
        return keys;
      };
      source.task = [listing](const std::string& key) -> std::optional<op::ScheduledTask> {
        auto tasks = listing->Get();
        auto it = tasks->find(key);
        if (it == tasks->end()) return std::nullopt;
        return it->second;
      };
    }
    console = std::make_unique<op::Console>(std::move(source), clock, op::ConsoleOptions{.replica = identity});
    op::Console* c = console.get();
    console_server.AllowHosts(SplitComma(f.console_allowed_hosts));
    console_server.Handle("/", [] {
      return HttpReply{200, std::string(op::Console::Page()), "text/html; charset=utf-8"};
    });
    console_server.HandleQuery(op::kConsoleOverviewPath, [c](const HttpQuery& q) {
      auto ns = q.find("namespace");
      return HttpReply{200, c->Overview(ns == q.end() ? "" : ns->second), "application/json"};
    });
    manager.Add(
        std::make_unique<op::FuncRunnable>("console", false, [c](CancelToken& cancel) { return c->Run(cancel); }));
    if (Status s = console_server.Start(); !s.ok()) {
      spdlog::error("console: {}", s.message());
      return 2;
    }
    spdlog::info("console serving http://{}/", f.console_addr);
  }

  spdlog::info("cronlane-operator {} starting: API {} ({}), namespaces {}, Kafka {}", kVersion, cfg->server,
               cfg->source, f.namespaces.empty() ? "all" : f.namespaces, f.kafka_bootstrap);
  Status s = manager.Run(shutdown);
  if (s.ok()) {
    spdlog::info("stopped");
    return 0;
  }
  spdlog::error("stopped: {}", s.ToString());
  return s.code() == StatusCode::kFenced || s.code() == StatusCode::kAborted ? 1 : 2;
}
