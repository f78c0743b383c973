// cronlane-worker: consumes fired tasks and runs a command per task (or logs them).
#include <signal.h>
#include <spdlog/spdlog.h>
#include <CLI/CLI.hpp>

#include <iostream>
#include <thread>

#include "common/http_server.h"
#include "common/logging.h"
#include "common/metrics.h"
#include "common/signals.h"
#include "common/version.h"
#include "worker/control_listener.h"
#include "worker/exec_handler.h"
#include "worker/worker.h"

int main(int argc, char** argv) {
  using namespace cronlane;
  CLI::App app{"cronlane-worker: runs fired cronlane tasks from Kafka"};
  app.set_version_flag("--version", std::string("cronlane-worker ") + kVersion);
  worker::WorkerOptions o;
  std::string bootstrap, exec, exec_mode = "auto", log_level = "info", log_format = "json", metrics_addr = ":8080",
                               health_addr = ":8081";
  int timeout = 600;
  app.add_option("--kafka-bootstrap", bootstrap, "Kafka bootstrap servers")
      ->envname("CRONLANE_KAFKA_BOOTSTRAP")
      ->required();
  std::vector<std::string> kafka_properties;
  app.add_option("--kafka-property", kafka_properties,
                 "Extra librdkafka property KEY=VALUE (security.protocol, sasl.*, ssl.*); repeatable")
      ->envname("CRONLANE_KAFKA_PROPERTIES")
      ->delimiter(';');
  app.add_option("--topic", o.topics, "Topic to consume (repeatable)")->envname("CRONLANE_TOPICS")->required();
  app.add_option("--group", o.group, "Consumer group")->envname("CRONLANE_GROUP")->capture_default_str();
  app.add_option("--exec", exec,
                 "Shell command per task (payload on stdin, CE_* in the environment); "
                 "without it the worker logs each task")
      ->envname("CRONLANE_EXEC");
  app.add_option("--exec-mode", exec_mode,
                 "auto: run --exec without a shell when it has no shell syntax (quotes, $, |, ;, globs ...), "
                 "else sh -c; shell: always sh -c; argv: never a shell (a command with shell syntax is refused)")
      ->envname("CRONLANE_EXEC_MODE")
      ->check(CLI::IsMember({"auto", "shell", "argv"}))
      ->capture_default_str();
  app.add_option("--concurrency", o.concurrency, "Tasks run at once by this worker")
      ->envname("CRONLANE_CONCURRENCY")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  app.add_option("--timeout", timeout, "Seconds an attempt may run when the task sets no timeout")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  app.add_option("--results-topic", o.results_topic, "Topic for one result record per finished occurrence")
      ->envname("CRONLANE_RESULTS_TOPIC");
  app.add_option("--dead-letter-topic", o.dead_letter_topic, "Topic for tasks that failed every attempt")
      ->envname("CRONLANE_DEAD_LETTER_TOPIC");
  worker::ControlListenerOptions control;
  int control_lookback = 600;
  app.add_option("--control-topic", control.topic,
                 "Topic of cancel events (concurrencyPolicy Replace), as the operator's --control-topic; empty: "
                 "occurrences are never cancelled")
      ->envname("CRONLANE_CONTROL_TOPIC")
      ->capture_default_str();
  app.add_option("--control-lookback", control_lookback,
                 "Seconds of cancel events read at start (and how long a cancel is remembered)")
      ->check(CLI::Range(0, 86400))
      ->capture_default_str();
  app.add_option("--metrics-bind-address", metrics_addr, "/metrics address, 0 disables")->capture_default_str();
  app.add_option("--health-probe-bind-address", health_addr, "/healthz address, 0 disables")->capture_default_str();
  app.add_option("--log-level", log_level)->capture_default_str();
  app.add_option("--log-format", log_format)->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (Status s = SetupLogging(log_level, log_format, "worker"); !s.ok()) {
    std::cerr << "cronlane-worker: " << s.message() << "\n";
    return 2;
  }
  o.base = {{"bootstrap.servers", bootstrap}};
  if (Status s = kafka::AddProperties(kafka_properties, o.base); !s.ok()) {
    std::cerr << "cronlane-worker: " << s.message() << "\n";
    return 2;
  }
  TerminationSignals signals;

  worker::Handler handler = [](const FiredTask& t, int, CancelToken&, CancelToken&) {
    spdlog::info("task {} ({}) scheduled {} payload {}", t.subject, t.id, t.time, t.payload);
    return worker::Outcome::kSucceeded;
  };
  if (!exec.empty()) {
    auto mode = worker::ParseExecMode(exec_mode);
    auto made = mode.ok() ? worker::ExecHandler(exec, std::chrono::seconds(timeout), RealClock::Get(), *mode)
                          : Result<worker::Handler>(mode.status());
    if (!made.ok()) {
      std::cerr << "cronlane-worker: --exec: " << made.status().message() << "\n";
      return 2;
    }
    handler = std::move(*made);
  }
  o.cancel_memory = std::chrono::seconds(control_lookback);
  worker::Worker w(o, handler, RealClock::Get());
  control.base = o.base;
  control.lookback = std::chrono::seconds(control_lookback);
  worker::ControlListener listener(control, RealClock::Get(),
                                   [&w](const std::string& task_id, Instant before) { w.Cancel(task_id, before); });

  CallbackMetrics metrics;
  using T = CallbackMetrics::Type;
  metrics.Add("cronlane_worker_succeeded_total", "Tasks that succeeded", T::kCounter,
              [&] { return static_cast<double>(w.Stats().succeeded); });
  metrics.Add("cronlane_worker_failed_total", "Tasks that failed every attempt", T::kCounter,
              [&] { return static_cast<double>(w.Stats().failed); });
  metrics.Add("cronlane_worker_attempts_total", "Attempts run", T::kCounter,
              [&] { return static_cast<double>(w.Stats().attempts); });
  metrics.Add("cronlane_worker_duplicates_total", "Redelivered tasks skipped", T::kCounter,
              [&] { return static_cast<double>(w.Stats().duplicates); });
  metrics.Add("cronlane_worker_cancelled_total",
              "Occurrences cancelled by a newer one (concurrencyPolicy Replace), running or not yet started",
              T::kCounter, [&] { return static_cast<double>(w.Stats().cancelled); });
  metrics.Add("cronlane_worker_dead_lettered_total", "Tasks sent to the dead-letter topic", T::kCounter,
              [&] { return static_cast<double>(w.Stats().dead_lettered); });
  metrics.Add("cronlane_worker_record_failures_total",
              "Writes of a result or dead letter that failed and were retried (the offset waits)", T::kCounter,
              [&] { return static_cast<double>(w.Stats().record_failures); });
  metrics.Add("cronlane_worker_commit_failures_total",
              "Offset commits the broker refused (the next commit covers them)", T::kCounter,
              [&] { return static_cast<double>(w.Stats().commit_failures); });
  metrics.Add("cronlane_worker_in_flight", "Tasks consumed and waiting for or running their handler", T::kGauge,
              [&] { return static_cast<double>(w.InFlight()); });
  metrics.Add("cronlane_worker_writing", "Finished tasks whose result or dead letter is not on the broker yet",
              T::kGauge, [&] { return static_cast<double>(w.Writing()); });
  metrics.Add("cronlane_worker_concurrency", "Tasks this worker runs at once (--concurrency)", T::kGauge,
              [c = o.concurrency] { return static_cast<double>(c); });
  metrics.AddHistogram("cronlane_worker_task_duration_seconds",
                       "Start to outcome of each occurrence (all attempts and backoffs)",
                       [&] { return w.TaskDuration(); });
  metrics.AddHistogram("cronlane_worker_queue_wait_seconds",
                       "Consumed to started: how long a task waited for a free slot of --concurrency",
                       [&] { return w.QueueWait(); });
  metrics.AddHistogram("cronlane_worker_commit_seconds", "Sending an offset commit to its outcome",
                       [&] { return w.CommitLatency(); });
  HttpServer metrics_server(metrics_addr);
  metrics_server.Handle("/metrics", [&] {
    return HttpReply{200, SerializeMetrics({&metrics}), "text/plain; version=0.0.4"};
  });
  HttpServer health_server(health_addr);
  health_server.Handle("/healthz", [] { return HttpReply{200, "ok\n"}; });
  for (HttpServer* srv : {&metrics_server, &health_server}) {
    if (Status s = srv->Start(); !s.ok()) {
      spdlog::error("{}", s.message());
      return 2;
    }
  }
  CancelToken cancel;
  signals.CancelOnSignal(cancel, "finishing running tasks, then leaving the group");
  // The listener stops only after the worker: a cancel still reaches the attempts
  // that finish during shutdown.
  CancelToken stop_listener;
  std::thread listening;
  if (!control.topic.empty()) listening = std::thread([&] { listener.Run(stop_listener); });
  // Cancels already on the topic are known before the first message is consumed
  // (up to 10 s: a broker that does not answer must not keep the worker idle).
  for (int i = 0; i < 100 && !control.topic.empty() && !listener.Replayed() && !cancel.cancelled(); ++i) {
    cancel.WaitFor(std::chrono::milliseconds(100));
  }
  Status s = w.Run(cancel);
  stop_listener.Cancel();
  if (listening.joinable()) listening.join();
  if (!s.ok()) {
    spdlog::error("{}", s.ToString());
    return 1;
  }
  return 0;
}
