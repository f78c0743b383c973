#include "operator/lag_reader.h"

namespace cronlane::op {

KafkaLagReader::KafkaLagReader(kafka::Properties props, std::chrono::milliseconds timeout)
    : props_(std::move(props)), timeout_(timeout) {}

Result<std::vector<kafka::PartitionOffsets>> KafkaLagReader::Offsets(const std::string& group,
                                                                     const std::string& topic) {
  rd_kafka_t* client = nullptr;
  {
    MutexLock lock(mu_);
    if (!client_) {
      kafka::Properties p = props_;
      p.erase("group.id");
      p["allow.auto.create.topics"] = "false";
      auto c = kafka::NewConsumer(p);
      if (!c.ok()) return c.status();
      client_ = std::move(*c);
    }
    client = client_.get();
  }
  // Outside the lock: librdkafka's handle serves concurrent requests, so pools
  // measured at once do not queue behind one whose broker call waits for its
  // timeout. The handle lives as long as this reader.
  return kafka::GroupOffsets(client, group, topic, timeout_);
}

}  // namespace cronlane::op
