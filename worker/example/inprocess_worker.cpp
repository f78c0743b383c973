// An in-process worker: the task is a C++ function, not a process. This is the
// library's entry point for users who need many small tasks per second — a
// function call per task instead of a fork+exec — with every guarantee of
// cronlane-worker (at-least-once, results and dead letters on the broker before
// the offset moves, drain on SIGTERM and on revoke, retries with the task's
// backoff, concurrencyPolicy Replace through Worker::Cancel).
//
// Build your own by linking the `cronlane_worker` library and replacing Work()
// below. `make bench-worker` runs this binary as its "in-process" row.
#include <CLI/CLI.hpp>

#include <atomic>
#include <iostream>
#include <string>

#include "common/logging.h"
#include "common/signals.h"
#include "worker/worker.h"

namespace {

std::atomic<uint64_t> payload_bytes{0};

// The work of one task, on one of the worker's pool threads (several at once up to
// --concurrency). Return kSucceeded, or kFailed to retry (up to the task's
// maxAttempts, then the dead-letter topic). Return early when `shutdown` fires
// (the task is handed back to another worker) or `abort` fires (the occurrence
// was cancelled: return kCancelled).
cronlane::worker::Outcome Work(const cronlane::FiredTask& task, int /*attempt*/, cronlane::CancelToken& /*shutdown*/,
                               cronlane::CancelToken& /*abort*/) {
  payload_bytes += task.payload.size();
  return cronlane::worker::Outcome::kSucceeded;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace cronlane;
  CLI::App app{"cronlane-example-worker: an in-process cronlane worker (a function per task)"};
  worker::WorkerOptions o;
  std::string bootstrap;
  app.add_option("--kafka-bootstrap", bootstrap, "Kafka bootstrap servers")->required();
  app.add_option("--topic", o.topics, "Topic to consume (repeatable)")->required();
  app.add_option("--group", o.group, "Consumer group")->capture_default_str();
  app.add_option("--results-topic", o.results_topic, "Topic for one result record per finished occurrence");
  app.add_option("--dead-letter-topic", o.dead_letter_topic, "Topic for tasks that failed every attempt");
  app.add_option("--concurrency", o.concurrency, "Tasks run at once")
      ->check(CLI::Range(1, 1024))
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  if (Status s = SetupLogging("info", "text", "example-worker"); !s.ok()) {
    std::cerr << s.message() << "\n";
    return 2;
  }
  TerminationSignals signals;  // before any thread starts
  o.base = {{"bootstrap.servers", bootstrap}};
  worker::Worker w(o, Work, RealClock::Get());
  CancelToken cancel;
  signals.CancelOnSignal(cancel, "finishing running tasks, then leaving the group");
  if (Status s = w.Run(cancel); !s.ok()) {
    std::cerr << "cronlane-example-worker: " << s.ToString() << "\n";
    return 1;
  }
  const auto stats = w.Stats();
  std::cout << "succeeded=" << stats.succeeded << " failed=" << stats.failed << " payload_bytes=" << payload_bytes
            << "\n";
  return 0;
}
