// Fire-path benchmark against a real Kafka broker (run by `make bench`, which starts
// the local environment). For each task count N, every task is due in the same
// second (schedule */10 s); the bench measures:
//   - fire lag = Kafka message timestamp - scheduled time (p50/p99/max), and the
//     lag until a read_committed consumer sees the message;
//   - sustained fires/s of the dispatcher (transactions of up to 20k occurrences);
//   - RSS per task in the dispatcher's table;
//   - start-up with N checkpoints restored (fence + read checkpoints + upsert), and
//     the same after N more tasks fired once and were deleted (their checkpoints
//     and tombstones on the topic);
//   - in the same run, raw librdkafka producer throughput with the same message
//     size and acks, so the dispatcher's cost shows as a ratio.
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <thread>

#include "common/kafka.h"
#include "dispatcher/dispatcher.h"
#include "dispatcher/kafka_fire_sink.h"

namespace {

using namespace cronlane;
using namespace std::chrono_literals;
using Clk = std::chrono::system_clock;

double RssMiB() {
  std::ifstream in("/proc/self/statm");
  long pages = 0, resident = 0;
  in >> pages >> resident;
  return static_cast<double>(resident) * static_cast<double>(sysconf(_SC_PAGESIZE)) / (1024.0 * 1024.0);
}

double Pct(std::vector<int64_t> v, double p) {
  if (v.empty()) return -1;
  std::sort(v.begin(), v.end());
  size_t i = std::min(v.size() - 1, static_cast<size_t>(std::llround(p * static_cast<double>(v.size() - 1))));
  return static_cast<double>(v[i]);
}

// Polls one message; if it is a fired task, records its fire lag (broker timestamp
// minus scheduled time) and its visibility lag (now minus scheduled time), in ms.
// With `ids`, also writes "<ce_id> <scheduled unix ms> <kafka timestamp ms>" per message.
void PollSample(rd_kafka_t* consumer, std::vector<int64_t>& lag, std::vector<int64_t>& vis,
                std::ofstream* ids = nullptr) {
  auto m = kafka::Poll(consumer, 100ms);
  if (!m.ok() || !m->has_value()) return;
  int64_t now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clk::now().time_since_epoch()).count();
  auto sched = ParseRfc3339(std::string((*m)->HeaderValue("ce_time").value_or("")));
  if (!sched.ok()) return;
  int64_t s_ms = sched->time_since_epoch().count() * 1000;
  lag.push_back((*m)->timestamp_ms - s_ms);
  vis.push_back(now_ms - s_ms);
  if (ids != nullptr) {
    *ids << (*m)->HeaderValue("ce_id").value_or("?") << " " << s_ms << " " << (*m)->timestamp_ms << "\n";
  }
}

class NullObserver : public dispatcher::DispatcherObserver {
 public:
  void OnFired(const dispatcher::TaskDefinition&, dispatcher::Instant, std::optional<dispatcher::Instant>) override {}
  void OnSkipped(const dispatcher::TaskDefinition&, int, dispatcher::Instant, dispatcher::Instant, const std::string&,
                 const std::string&) override {}
  void OnFenced(const std::string&) override {}
};

// The CloudEvents source as the operator derives it (its ScheduledTask's API path),
// so the fire path costs here what it costs there.
std::string ApiPathSource(const dispatcher::TaskDefinition& t) {
  return "/apis/cronlane.dev/v1alpha1/namespaces/" + t.ns + "/scheduledtasks/" + t.name;
}

dispatcher::TaskDefinition Task(int i, const std::string& topic) {
  dispatcher::TaskDefinition t;
  t.id = "bench-task-" + std::to_string(i);
  t.ns = "bench";
  t.name = "task-" + std::to_string(i);
  t.schedule = "*/10 * * * * *";
  t.topic = topic;
  t.payload_json = R"({"job":"report","tenant":42,"dryRun":false})";
  t.catch_up = dispatcher::CatchUpPolicy::kAll;
  return t;
}

struct BenchResult {
  int tasks = 0;
  double lag_p50 = 0, lag_p99 = 0, lag_max = 0;  // message timestamp - scheduled (ms)
  double vis_p50 = 0, vis_p99 = 0, vis_max = 0;  // consumer receive - scheduled (ms)
  double fires_per_s = 0;
  double rss_per_task_bytes = 0;
  double restore_s = 0;
  double restore_deleted_s = 0;  // the same restart after n more tasks fired and were deleted
  size_t messages = 0;
  double raw_msgs_per_s = 0;
};

BenchResult RunOne(const std::string& bootstrap, int n, int bursts, const std::string& run_id,
                   const kafka::Properties& producer_extra) {
  BenchResult r;
  r.tasks = n;
  const std::string topic = "bench-" + run_id + "-" + std::to_string(n);
  kafka::Properties base{{"bootstrap.servers", bootstrap}};
  {
    auto admin = kafka::NewProducer(base);
    (void)kafka::CreateTopic(admin->get(), topic, 6, 1);
  }
  dispatcher::KafkaSinkOptions so;
  so.base = base;
  for (const auto& [k, v] : producer_extra) so.base[k] = v;
  so.transactional_id = "bench-" + run_id + "-" + std::to_string(n);
  so.checkpoint_topic = "bench-checkpoints-" + run_id + "-" + std::to_string(n);
  NullObserver obs;

  // Consumer first, so it sees everything.
  auto cprops = base;
  cprops["isolation.level"] = "read_committed";
  cprops["fetch.wait.max.ms"] = "10";
  auto consumer = kafka::NewConsumer(cprops);
  (void)kafka::AssignAll(consumer->get(), topic, 6, RD_KAFKA_OFFSET_END);

  double rss0 = RssMiB();
  dispatcher::KafkaFireSink sink(so);
  dispatcher::Dispatcher d(RealClock::Get(), sink, &obs, {.default_topic = topic, .event_source = ApiPathSource});
  for (int i = 0; i < n; ++i) (void)d.Upsert(Task(i, topic));
  r.rss_per_task_bytes = (RssMiB() - rss0) * 1024 * 1024 / n;
  if (!d.Start().ok()) {
    std::cerr << "dispatcher start failed\n";
    return r;
  }
  CancelToken cancel;
  std::thread runner([&] { d.Run(cancel); });
  std::vector<int64_t> lag, vis;
  const size_t want = static_cast<size_t>(n) * static_cast<size_t>(bursts);
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10 * bursts + 40);
  while (lag.size() < want && std::chrono::steady_clock::now() < until) {
    PollSample(consumer->get(), lag, vis);
  }
  cancel.Cancel();
  runner.join();
  auto st = d.Stats();
  r.messages = lag.size();
  r.lag_p50 = Pct(lag, 0.5);
  r.lag_p99 = Pct(lag, 0.99);
  r.lag_max = Pct(lag, 1.0);
  r.vis_p50 = Pct(vis, 0.5);
  r.vis_p99 = Pct(vis, 0.99);
  r.vis_max = Pct(vis, 1.0);
  // Sustained rate: one burst of n occurrences is committed within its max visible lag.
  r.fires_per_s = r.vis_max > 0 ? n / (r.vis_max / 1000.0) : 0;
  (void)st;

  // Restart: fence + read n checkpoints + upsert n tasks, until ready to fire.
  {
    auto t0 = std::chrono::steady_clock::now();
    dispatcher::KafkaFireSink sink2(so);
    dispatcher::Dispatcher d2(RealClock::Get(), sink2, &obs, {.default_topic = topic, .event_source = ApiPathSource});
    for (int i = 0; i < n; ++i) (void)d2.Upsert(Task(i, topic));
    auto s = d2.Start();
    r.restore_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!s.ok()) std::cerr << "restore failed: " << s.ToString() << "\n";
  }

  // Deleted tasks: n more tasks fire once each and are then deleted (Forget: a
  // tombstone for each checkpoint), as the operator does. The same restart as above
  // then reads a checkpoint topic holding n live and n deleted tasks: the deleted
  // ones' checkpoints and tombstones stay until the broker compacts them away.
  {
    dispatcher::KafkaFireSink sink3(so);
    dispatcher::Dispatcher d3(RealClock::Get(), sink3, &obs, {.default_topic = topic, .event_source = ApiPathSource});
    std::vector<std::string> ids;
    for (int i = 0; i < n; ++i) {
      auto t = Task(i, topic);
      t.id = "bench-deleted-" + std::to_string(i);
      t.name = "deleted-" + std::to_string(i);
      ids.push_back(t.id);
      (void)d3.Upsert(t);
    }
    if (d3.Start().ok()) {
      CancelToken stop;
      std::thread runner3([&] { d3.Run(stop); });
      auto deadline = std::chrono::steady_clock::now() + 60s;
      while (d3.Stats().fired < static_cast<uint64_t>(n) && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(100ms);
      }
      for (const auto& id : ids) d3.Forget(id);
      while (d3.Stats().tombstones < static_cast<uint64_t>(n) && std::chrono::steady_clock::now() < deadline) {
        std::this_thread::sleep_for(100ms);
      }
      stop.Cancel();
      runner3.join();
      auto st3 = d3.Stats();
      if (st3.tombstones < static_cast<uint64_t>(n)) {
        std::cerr << "deleted tasks: " << st3.fired << " fired, " << st3.tombstones << " tombstones of " << n << "\n";
      }
    }
    auto t0 = std::chrono::steady_clock::now();
    dispatcher::KafkaFireSink sink4(so);
    dispatcher::Dispatcher d4(RealClock::Get(), sink4, &obs, {.default_topic = topic, .event_source = ApiPathSource});
    for (int i = 0; i < n; ++i) (void)d4.Upsert(Task(i, topic));
    auto s = d4.Start();
    r.restore_deleted_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (!s.ok()) std::cerr << "restore with deleted tasks failed: " << s.ToString() << "\n";
    if (auto left = d4.UnclaimedCheckpoints(); !left.empty()) {
      std::cerr << "restore with deleted tasks: " << left.size() << " checkpoints of deleted tasks came back\n";
    }
  }

  // Raw librdkafka: the same messages, acks=all + idempotence, no transactions.
  {
    auto props = base;
    props["enable.idempotence"] = "true";
    props["acks"] = "all";
    props["linger.ms"] = "1";
    auto p = kafka::NewProducer(props);
    auto msgs = dispatcher::BuildMessages(Task(0, topic + "-raw"), dispatcher::Instant{}, 0s, topic);
    {
      auto admin = kafka::NewProducer(base);
      (void)kafka::CreateTopic(admin->get(), topic + "-raw", 6, 1);
    }
    const int count = std::max(n, 20000);
    auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < count; ++i) {
      while (!kafka::Produce(p->get(), topic + "-raw", msgs[0].key, msgs[0].value, msgs[0].headers).ok()) {
        rd_kafka_poll(p->get(), 5);
      }
    }
    (void)kafka::Flush(p->get(), 60s);
    r.raw_msgs_per_s = count / std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  return r;
}

// Consumes `topic` (read_committed) for `seconds` from its end and prints fire lag
// statistics of what arrived: used by hack/bench.sh for tasks fired through the
// operator (ScheduledTask CRs on the real apiserver).
// With `lag_out`, also writes every message's fire lag in ms, one per line.
int ConsumeOnly(const std::string& bootstrap, const std::string& topic, int seconds, const std::string& lag_out,
                const std::string& ids_out) {
  // The deadline counts from the start, waiting for the topic included.
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(seconds);
  kafka::Properties p{{"bootstrap.servers", bootstrap},
                      {"isolation.level", "read_committed"},
                      {"fetch.wait.max.ms", "10"},
                      {"allow.auto.create.topics", "false"}};
  auto consumer = kafka::NewConsumer(p);
  if (!consumer.ok()) return 2;
  // The dispatcher creates the topic with its first fire: wait for it, and then read
  // it from the beginning (everything in a new topic is new).
  auto parts = kafka::PartitionCount(consumer->get(), topic);
  const bool existed = parts.ok();
  for (int i = 0; i < 60 && !parts.ok(); ++i) {
    std::this_thread::sleep_for(500ms);
    parts = kafka::PartitionCount(consumer->get(), topic);
  }
  if (!parts.ok()) {
    std::cerr << parts.status().ToString() << "\n";
    return 2;
  }
  (void)kafka::AssignAll(consumer->get(), topic, *parts, existed ? RD_KAFKA_OFFSET_END : RD_KAFKA_OFFSET_BEGINNING);
  std::vector<int64_t> lag, vis;
  std::unique_ptr<std::ofstream> ids;
  if (!ids_out.empty()) ids = std::make_unique<std::ofstream>(ids_out);
  while (std::chrono::steady_clock::now() < until) {
    PollSample(consumer->get(), lag, vis, ids.get());
  }
  if (!lag_out.empty()) {
    std::ofstream out(lag_out);
    for (int64_t l : lag) out << l << "\n";
  }
  std::printf(
      "messages=%zu lag_p50=%.0f lag_p99=%.0f lag_max=%.0f visible_p50=%.0f visible_p99=%.0f visible_max=%.0f\n",
      lag.size(), Pct(lag, 0.5), Pct(lag, 0.99), Pct(lag, 1.0), Pct(vis, 0.5), Pct(vis, 0.99), Pct(vis, 1.0));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"fire_bench: dispatcher fire lag and throughput against a real Kafka broker"};
  std::string bootstrap;
  std::vector<int> sizes = {1000, 10000, 100000};
  int bursts = 3;
  app.add_option("--bootstrap", bootstrap, "Kafka bootstrap servers")->required()->envname("KAFKA_BOOTSTRAP");
  app.add_option("--tasks", sizes, "Task counts")->delimiter(',');
  app.add_option("--bursts", bursts, "Bursts (every 10 s) measured per size");
  std::string consume_topic;
  int consume_seconds = 30;
  app.add_option("--consume-topic", consume_topic, "Only measure messages arriving on this topic");
  app.add_option("--consume-seconds", consume_seconds, "How long --consume-topic reads");
  std::string lag_out;
  app.add_option("--lag-out", lag_out, "With --consume-topic: write each message's fire lag (ms) to this file");
  std::string ids_out;
  app.add_option("--ids-out", ids_out,
                 "With --consume-topic: write each message's ce_id, scheduled time and Kafka timestamp (ms)");
  std::vector<std::string> producer_props;
  app.add_option("--producer-property", producer_props,
                 "KEY=VALUE for the dispatcher's producer (e.g. compression.type=lz4), repeatable");
  CLI11_PARSE(app, argc, argv);
  kafka::Properties producer_extra;
  if (Status s = kafka::AddProperties(producer_props, producer_extra); !s.ok()) {
    std::fprintf(stderr, "%s\n", s.ToString().c_str());
    return 2;
  }
  if (!consume_topic.empty()) return ConsumeOnly(bootstrap, consume_topic, consume_seconds, lag_out, ids_out);
  std::string run_id = std::to_string(getpid());
  std::printf("%8s %10s %10s %10s %12s %12s %12s %12s %10s %12s %14s %12s %8s\n", "tasks", "lag_p50ms", "lag_p99ms",
              "lag_maxms", "visible_p50", "visible_p99", "visible_max", "fires/s", "B/task", "restore_s",
              "restore_+del_s", "raw_msgs/s", "ratio");
  for (int n : sizes) {
    BenchResult r = RunOne(bootstrap, n, bursts, run_id, producer_extra);
    std::printf("%8d %10.0f %10.0f %10.0f %12.0f %12.0f %12.0f %12.0f %10.0f %12.2f %14.2f %12.0f %8.2f\n", r.tasks,
                r.lag_p50, r.lag_p99, r.lag_max, r.vis_p50, r.vis_p99, r.vis_max, r.fires_per_s, r.rss_per_task_bytes,
                r.restore_s, r.restore_deleted_s, r.raw_msgs_per_s,
                r.fires_per_s > 0 ? r.raw_msgs_per_s / r.fires_per_s : 0.0);
    std::fflush(stdout);
    if (r.messages != static_cast<size_t>(n) * static_cast<size_t>(bursts)) {
      std::fprintf(stderr, "warning: %zu of %d messages seen for %d tasks\n", r.messages, n * bursts, n);
    }
  }
  return 0;
}
