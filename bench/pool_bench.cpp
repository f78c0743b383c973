// The Kafka pieces of `make bench-pools` (hack/bench-pools.sh):
//   topics   creates COUNT topics PREFIX0..PREFIX<COUNT-1> of PARTITIONS each
//            (one admin request per topic; ones that exist are left as they are)
//   produce  puts MESSAGES messages on every one of those topics (keys spread
//            them over the partitions) and prints when the last was acknowledged
// Each prints one line of key=value pairs for the script.
// And for `make bench-burst` (hack/bench-burst.sh):
//   lag      every INTERVAL ms for SECONDS, one line "unix_ms topic lag" per
//            topic PREFIX0..: the lag of group PREFIX<i> on it, counted as a
//            WorkerPool counts it (operator/workerpool.h), -1 when unreadable
#include <CLI/CLI.hpp>

#include <chrono>
#include <iostream>
#include <string>
#include <thread>

#include "common/kafka.h"
#include "operator/workerpool.h"

using namespace cronlane;
using Steady = std::chrono::steady_clock;

namespace {

int CreateTopics(const std::string& bootstrap, const std::string& prefix, int count, int partitions) {
  auto p = kafka::NewProducer({{"bootstrap.servers", bootstrap}});
  if (!p.ok()) return std::cerr << p.status().ToString() << "\n", 1;
  const auto start = Steady::now();
  for (int i = 0; i < count; ++i) {
    const std::string topic = prefix + std::to_string(i);
    if (Status s = kafka::CreateTopic(p->get(), topic, partitions, 1); !s.ok()) {
      return std::cerr << "create " << topic << ": " << s.ToString() << "\n", 1;
    }
  }
  std::cout << "topics=" << count << " partitions=" << partitions
            << " seconds=" << std::chrono::duration<double>(Steady::now() - start).count() << "\n";
  return 0;
}

int ProduceAll(const std::string& bootstrap, const std::string& prefix, int count, int messages) {
  auto p = kafka::NewProducer({{"bootstrap.servers", bootstrap}, {"linger.ms", "5"}});
  if (!p.ok()) return std::cerr << p.status().ToString() << "\n", 1;
  const auto start = Steady::now();
  for (int i = 0; i < count; ++i) {
    const std::string topic = prefix + std::to_string(i);
    for (int m = 0; m < messages; ++m) {
      const std::string key = "k" + std::to_string(m);
      Status s = kafka::Produce(p->get(), topic, key, "{}");
      while (!s.ok()) {  // queue full: let deliveries drain
        (void)kafka::Flush(p->get(), std::chrono::milliseconds(100));
        s = kafka::Produce(p->get(), topic, key, "{}");
      }
    }
  }
  if (Status s = kafka::Flush(p->get(), std::chrono::seconds(60)); !s.ok()) {
    return std::cerr << s.ToString() << "\n", 1;
  }
  const auto now_ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch());
  std::cout << "produced=" << count * messages
            << " seconds=" << std::chrono::duration<double>(Steady::now() - start).count()
            << " acked_unix_ms=" << now_ms.count() << "\n";
  return 0;
}

int SampleLag(const std::string& bootstrap, const std::string& prefix, int count, int interval_ms, int seconds) {
  auto admin = kafka::NewConsumer({{"bootstrap.servers", bootstrap}});
  if (!admin.ok()) return std::cerr << admin.status().ToString() << "\n", 1;
  const auto end = Steady::now() + std::chrono::seconds(seconds);
  for (auto next = Steady::now(); next < end; next += std::chrono::milliseconds(interval_ms)) {
    std::this_thread::sleep_until(next);
    const auto unix_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch());
    for (int i = 0; i < count; ++i) {
      const std::string topic = prefix + std::to_string(i);
      auto offsets = kafka::GroupOffsets(admin->get(), topic, topic, std::chrono::milliseconds(interval_ms));
      const int64_t lag = offsets.ok() ? op::Measure({}, {{topic, std::move(*offsets)}}, nullptr).lag : -1;
      std::cout << unix_ms.count() << " " << topic << " " << lag << "\n";
    }
    std::cout.flush();
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"cronlane bench-pools: Kafka topics and messages for many WorkerPools"};
  app.require_subcommand(1);
  std::string bootstrap, prefix = "pool-";
  int count = 1000, partitions = 4, messages = 10;
  app.add_option("--bootstrap", bootstrap, "Kafka bootstrap servers")->required()->envname("KAFKA_BOOTSTRAP");
  app.add_option("--prefix", prefix, "Topic name prefix (topics PREFIX0..PREFIX<count-1>)");
  app.add_option("--count", count, "Topics")->check(CLI::Range(1, 100000));
  auto* topics = app.add_subcommand("topics", "Create the topics");
  topics->add_option("--partitions", partitions, "Partitions per topic")->check(CLI::Range(1, 1000));
  auto* produce = app.add_subcommand("produce", "Put messages on every topic");
  produce->add_option("--messages", messages, "Messages per topic")->check(CLI::Range(1, 1000000));
  int interval_ms = 500, seconds = 60;
  auto* lag = app.add_subcommand("lag", "Sample the lag of group PREFIX<i> on topic PREFIX<i>");
  lag->add_option("--interval-ms", interval_ms, "Between samples")->check(CLI::Range(50, 60000));
  lag->add_option("--seconds", seconds, "How long to sample")->check(CLI::Range(1, 86400));
  CLI11_PARSE(app, argc, argv);
  if (*lag) return SampleLag(bootstrap, prefix, count, interval_ms, seconds);
  if (*topics) return CreateTopics(bootstrap, prefix, count, partitions);
  return ProduceAll(bootstrap, prefix, count, messages);
}
