// The pieces of `make bench-worker` (hack/bench-worker.sh) that need Kafka:
//   produce  N fired-task CloudEvents exactly as the dispatcher builds them (one
//            task each, unique ce_ids) onto a new topic of P partitions
//   consume  a bare librdkafka consumer reading the topic to its end, doing
//            nothing per message: the consumer's limit on this machine
//   pipe     a bare consume-produce-commit loop: for each message one result record
//            (its ce_id, as a worker writes it) produced without waiting, offsets
//            committed asynchronously every 500 messages, no delivery tracking:
//            what the two clients cost with no guarantee kept, the limit of a
//            worker that writes results and commits (time it with `results`)
//   results  waits until N results (distinct occurrences) are on a results topic
//            and prints the span between the first and the last one written (their
//            CreateTime), scaled to N tasks, the records read (repeats included)
//            and when the last was written
// Each prints one line of key=value pairs for the script's table.
#include <CLI/CLI.hpp>

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <iostream>
#include <map>
#include <set>
#include <string>
#include <thread>

#include "common/kafka.h"
#include "common/task_result.h"
#include "dispatcher/dispatcher.h"

using namespace cronlane;
using Steady = std::chrono::steady_clock;

namespace {

double CpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

int Produce(const std::string& bootstrap, const std::string& topic, int count, int partitions) {
  auto p = kafka::NewProducer({{"bootstrap.servers", bootstrap}, {"linger.ms", "5"}});
  if (!p.ok()) return std::cerr << p.status().ToString() << "\n", 1;
  if (Status s = kafka::CreateTopic(p->get(), topic, partitions, 1); !s.ok()) {
    return std::cerr << "create " << topic << ": " << s.ToString() << "\n", 1;
  }
  const auto start = Steady::now();
  for (int i = 0; i < count; ++i) {
    dispatcher::TaskDefinition t;
    t.id = "uid-bench-" + std::to_string(i);
    t.ns = "bench";
    t.name = "task-" + std::to_string(i);
    t.payload_json = "{\"n\":" + std::to_string(i) + "}";
    for (auto& m : dispatcher::BuildMessages(t, dispatcher::Instant{std::chrono::seconds{1800000000}},
                                             std::chrono::seconds(0), topic)) {
      Status s = kafka::Produce(p->get(), m.topic, m.key, m.value, m.headers);
      while (!s.ok()) {  // queue full: let deliveries drain
        (void)kafka::Flush(p->get(), std::chrono::milliseconds(100));
        s = kafka::Produce(p->get(), m.topic, m.key, m.value, m.headers);
      }
    }
  }
  if (Status s = kafka::Flush(p->get(), std::chrono::seconds(60)); !s.ok()) {
    return std::cerr << s.ToString() << "\n", 1;
  }
  std::cout << "produced=" << count << " seconds=" << std::chrono::duration<double>(Steady::now() - start).count()
            << "\n";
  return 0;
}

// A consumer set up as the worker's (worker/task_broker.cpp): manual commits,
// read_committed.
Result<kafka::HandlePtr> BenchConsumer(const std::string& bootstrap, const std::string& group) {
  return kafka::NewConsumer({{"bootstrap.servers", bootstrap},
                             {"group.id", group},
                             {"enable.auto.commit", "false"},
                             {"auto.offset.reset", "earliest"},
                             {"isolation.level", "read_committed"}});
}

int Consume(const std::string& bootstrap, const std::string& topic, int count, const std::string& group) {
  auto c = BenchConsumer(bootstrap, group);
  if (!c.ok()) return std::cerr << c.status().ToString() << "\n", 1;
  if (Status s = kafka::Subscribe(c->get(), {topic}); !s.ok()) return std::cerr << s.ToString() << "\n", 1;
  const double cpu0 = CpuSeconds();
  std::optional<Steady::time_point> first;
  int n = 0;
  const auto deadline = Steady::now() + std::chrono::minutes(10);
  while (n < count && Steady::now() < deadline) {
    auto m = kafka::Poll(c->get(), std::chrono::milliseconds(100));
    if (!m.ok() || !m->has_value()) continue;
    if (!first) first = Steady::now();
    ++n;
  }
  const auto last = Steady::now();
  const double cpu = CpuSeconds() - cpu0;
  (void)kafka::CloseConsumer(c->get());
  if (n < count) return std::cerr << "read " << n << " of " << count << "\n", 1;
  std::cout << "consumed=" << n << " seconds=" << std::chrono::duration<double>(last - *first).count()
            << " cpu_seconds=" << cpu << "\n";
  return 0;
}

int Pipe(const std::string& bootstrap, const std::string& topic, const std::string& results_topic, int count,
         const std::string& group) {
  auto c = BenchConsumer(bootstrap, group);
  if (!c.ok()) return std::cerr << c.status().ToString() << "\n", 1;
  auto p = kafka::NewProducer({{"bootstrap.servers", bootstrap}, {"enable.idempotence", "true"}, {"linger.ms", "5"}});
  if (!p.ok()) return std::cerr << p.status().ToString() << "\n", 1;
  (void)kafka::PartitionCount(p->get(), results_topic, std::chrono::seconds(5));  // as the worker's WarmUp
  if (Status s = kafka::Subscribe(c->get(), {topic}); !s.ok()) return std::cerr << s.ToString() << "\n", 1;
  const double cpu0 = CpuSeconds();
  int n = 0;
  std::map<std::pair<std::string, int32_t>, int64_t> next;  // offsets to commit
  const auto deadline = Steady::now() + std::chrono::minutes(10);
  while (n < count && Steady::now() < deadline) {
    auto m = kafka::Poll(c->get(), std::chrono::milliseconds(100));
    if (!m.ok() || !m->has_value()) continue;
    const kafka::Message& msg = **m;
    TaskResult r;
    r.id = msg.HeaderValue("ce_id").value_or("");
    r.outcome = RunOutcome::kSucceeded;
    r.attempts = 1;
    Status s;
    while (!(s = kafka::Produce(p->get(), results_topic, msg.key, EncodeTaskResult(r), {})).ok()) {
      if (s.code() != StatusCode::kUnavailable) return std::cerr << s.ToString() << "\n", 1;
      kafka::ServeDeliveries(p->get(), std::chrono::milliseconds(10));  // local queue full
    }
    next[{msg.topic, msg.partition}] = msg.offset + 1;
    if (++n % 500 == 0) {
      std::vector<kafka::PartitionOffset> offsets;
      offsets.reserve(next.size());
      for (const auto& [tp, o] : next) offsets.push_back({tp.first, tp.second, o});
      kafka::CommitOffsetsAsync(c->get(), offsets, [](const Status&) {});
    }
  }
  (void)kafka::Flush(p->get(), std::chrono::seconds(60));
  const double cpu = CpuSeconds() - cpu0;
  (void)kafka::CloseConsumer(c->get());
  if (n < count) return std::cerr << "read " << n << " of " << count << "\n", 1;
  std::cout << "piped=" << n << " cpu_seconds=" << cpu << "\n";
  return 0;
}

int Results(const std::string& bootstrap, const std::string& topic, int count, int timeout_s, bool wait_written) {
  auto c = kafka::NewConsumer({{"bootstrap.servers", bootstrap},
                               {"group.id", "bench-results-reader"},
                               {"enable.auto.commit", "false"},
                               {"auto.offset.reset", "earliest"}});
  if (!c.ok()) return std::cerr << c.status().ToString() << "\n", 1;
  if (wait_written) {
    // Read only once `count` records are written: decoding them while a worker
    // runs would take CPU from it on this 2-core machine (the pipe's reader runs
    // after the pipe, the consumer row reads alone). The watermark costs one
    // request per 50 ms.
    const auto until = Steady::now() + std::chrono::seconds(timeout_s);
    for (;;) {
      auto high = kafka::HighWatermark(c->get(), topic, 0);
      if (high.ok() && *high >= count) break;
      if (Steady::now() >= until) return std::cerr << "results: fewer than " << count << " written\n", 1;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  if (Status s = kafka::AssignAll(c->get(), topic, 1, 0); !s.ok()) return std::cerr << s.ToString() << "\n", 1;
  std::set<std::string> seen;
  int records = 0;  // result records read, a repeated occurrence included
  std::optional<Steady::time_point> first;
  // When the worker wrote them (the records' CreateTime, set by its producer): the
  // reader may see the first ones late, in a burst, so its own clock would flatter.
  int64_t first_ms = INT64_MAX, last_ms = 0;
  const auto start = Steady::now(), deadline = start + std::chrono::seconds(timeout_s);
  while (static_cast<int>(seen.size()) < count && Steady::now() < deadline) {
    auto m = kafka::Poll(c->get(), std::chrono::milliseconds(100));
    if (!m.ok() || !m->has_value()) continue;
    auto r = DecodeTaskResult((*m)->value);
    if (!r.ok()) continue;
    if (!first) first = Steady::now();
    ++records;
    if (seen.insert(r->id).second && (*m)->timestamp_ms > 0) {
      first_ms = std::min(first_ms, (*m)->timestamp_ms);
      last_ms = std::max(last_ms, (*m)->timestamp_ms);
    }
  }
  const auto last = Steady::now();
  if (static_cast<int>(seen.size()) < count) {
    return std::cerr << "results: " << seen.size() << " of " << count << " within " << timeout_s << " s\n", 1;
  }
  // The span from the first result written to the last; N - 1 tasks finished in it.
  const double span = static_cast<double>(last_ms - first_ms) / 1000.0;
  std::cout << "results=" << seen.size() << " first_after=" << std::chrono::duration<double>(*first - start).count()
            << " seconds=" << span * count / std::max(1, count - 1)
            << " total_seconds=" << std::chrono::duration<double>(last - start).count() << " records=" << records
            << " last_unix_ms=" << last_ms << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"cronlane worker benchmark helpers (hack/bench-worker.sh)"};
  app.require_subcommand(1);
  std::string bootstrap, topic, group = "bench-bare-consumer";
  int count = 5000, partitions = 4, timeout = 600;
  auto* produce = app.add_subcommand("produce", "N fired-task CloudEvents onto a new topic (0: just the topic)");
  auto* consume = app.add_subcommand("consume", "a bare consumer reading N messages");
  auto* results = app.add_subcommand("results", "wait for N results on a results topic");
  auto* pipe = app.add_subcommand("pipe", "a bare consume-produce-commit loop over N messages");
  std::string results_topic, pipe_group;
  pipe->add_option("--results-topic", results_topic)->required();
  pipe->add_option("--group", pipe_group, "Consumer group (default: the topic's name)");
  pipe->add_option("--count", count)->check(CLI::PositiveNumber);
  for (auto* s : {produce, consume, results, pipe}) {
    s->add_option("--bootstrap", bootstrap)->required();
    s->add_option("--topic", topic)->required();
  }
  // produce --count 0 only creates the topic (a results topic made before the
  // worker starts, as a deployment has it).
  produce->add_option("--count", count)->check(CLI::NonNegativeNumber);
  consume->add_option("--count", count)->check(CLI::PositiveNumber);
  results->add_option("--count", count)->check(CLI::PositiveNumber);
  produce->add_option("--partitions", partitions)->check(CLI::PositiveNumber);
  consume->add_option("--group", group);
  results->add_option("--timeout", timeout)->check(CLI::PositiveNumber);
  bool wait_written = false;
  results->add_flag("--wait-written", wait_written,
                    "Start reading once COUNT records are written (the topic's high watermark), so the reader takes "
                    "no CPU from the writer while it runs");
  CLI11_PARSE(app, argc, argv);
  if (*produce) return Produce(bootstrap, topic, count, partitions);
  if (*consume) return Consume(bootstrap, topic, count, group);
  if (*pipe) return Pipe(bootstrap, topic, results_topic, count, pipe_group.empty() ? topic : pipe_group);
  return Results(bootstrap, topic, count, timeout, wait_written);
}
