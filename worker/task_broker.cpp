#include "worker/task_broker.h"

#include <string_view>
#include <utility>

#include <spdlog/spdlog.h>

namespace cronlane::worker {
namespace {

class KafkaTaskBroker final : public TaskBroker {
 public:
  KafkaTaskBroker(kafka::Properties consumer_props, kafka::HandlePtr producer)
      : consumer_props_(std::move(consumer_props)), producer_(std::move(producer)) {}
  ~KafkaTaskBroker() override {
    // Delivery callbacks of records still queued run here (an error for each one
    // not delivered); the worker waits for none of them any more.
    (void)kafka::Flush(producer_.get(), std::chrono::seconds(10));
  }
  Status Subscribe(const std::vector<std::string>& topics, kafka::RebalanceListener* listener) override {
    // The listener is part of the consumer's configuration: the consumer is made here.
    auto consumer = kafka::NewConsumer(consumer_props_, listener);
    if (!consumer.ok()) return consumer.status();
    consumer_ = std::move(*consumer);
    return kafka::Subscribe(consumer_.get(), topics);
  }
  Result<kafka::Polled> Poll(std::chrono::milliseconds timeout) override {
    // Uncopied: the pool thread that runs a message copies it (Worker::Fetched).
    return kafka::PollRawWithEof(consumer_.get(), timeout);
  }
  Status Commit(const std::vector<kafka::PartitionOffset>& offsets) override {
    return kafka::CommitOffsets(consumer_.get(), offsets);
  }
  void CommitAsync(const std::vector<kafka::PartitionOffset>& offsets, std::function<void(Status)> done) override {
    kafka::CommitOffsetsAsync(consumer_.get(), offsets, std::move(done));
  }
  Status SetPaused(bool paused) override { return kafka::PauseAssigned(consumer_.get(), paused); }
  Status Close() override { return kafka::CloseConsumer(consumer_.get()); }
  Status Produce(const std::string& topic, const std::optional<std::string>& key, const std::string& value,
                 const std::vector<kafka::Header>& headers, std::function<void(Status)> done) override {
    std::optional<std::string_view> k;
    if (key) k = *key;
    return kafka::ProduceAsync(producer_.get(), topic, k, value, headers, std::move(done));
  }
  void ServeDeliveries(std::chrono::milliseconds timeout) override { kafka::ServeDeliveries(producer_.get(), timeout); }
  void WarmUp(const std::vector<std::string>& topics, std::chrono::milliseconds timeout) override {
    const auto until = std::chrono::steady_clock::now() + timeout;
    for (const auto& t : topics) {
      const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
      if (left <= std::chrono::milliseconds(0)) return;
      // A metadata request on the producer: it learns the leaders (and connects).
      if (auto n = kafka::PartitionCount(producer_.get(), t, left); !n.ok()) {
        spdlog::info("producer not ready for {} yet ({}); the first record will wait for it", t, n.status().ToString());
      }
    }
  }

 private:
  kafka::Properties consumer_props_;
  kafka::HandlePtr consumer_;
  kafka::HandlePtr producer_;
};

}  // namespace

Result<std::unique_ptr<TaskBroker>> NewKafkaTaskBroker(const kafka::Properties& base, const std::string& group,
                                                       std::chrono::milliseconds record_timeout) {
  kafka::Properties cp = base;
  cp["group.id"] = group;
  cp["enable.auto.commit"] = "false";
  cp["auto.offset.reset"] = "earliest";
  cp["isolation.level"] = "read_committed";
  // A worker that dies (kill -9, node loss) hands its partitions over after 10 s
  // instead of the broker's 45 s default.
  cp.try_emplace("session.timeout.ms", "10000");
  // End-of-partition events tell where a partition ends past its transaction markers.
  cp["enable.partition.eof"] = "true";
  kafka::Properties pp = base;
  pp["enable.idempotence"] = "true";
  // Records wait up to 5 ms to share a request: no pool thread waits for them, and
  // a commit comes every 200 ms at the earliest; fewer, larger requests leave the
  // CPU to the tasks (and to the broker).
  pp.try_emplace("linger.ms", "5");
  // An undelivered record is reported failed after this long (then retried by the
  // worker with its backoff), not after librdkafka's default 300 s.
  pp["message.timeout.ms"] = std::to_string(record_timeout.count());
  auto producer = kafka::NewProducer(pp);
  if (!producer.ok()) return producer.status();
  return std::unique_ptr<TaskBroker>(new KafkaTaskBroker(std::move(cp), std::move(*producer)));
}

}  // namespace cronlane::worker
