#include "operator/lag_reader.h"

namespace cronlane::op {

KafkaLagReader::KafkaLagReader(kafka::Properties props, std::chrono::milliseconds timeout)
    : props_(std::move(props)), timeout_(timeout) {}

Result<std::vector<kafka::PartitionOffsets>> KafkaLagReader::Offsets(const std::string& group,
                                                                     const std::string& topic) {
  MutexLock lock(mu_);
  if (!client_) {
    kafka::Properties p = props_;
    p.erase("group.id");
    p["allow.auto.create.topics"] = "false";
    auto c = kafka::NewConsumer(p);
    if (!c.ok()) return c.status();
    client_ = std::move(*c);
  }
  return kafka::GroupOffsets(client_.get(), group, topic, timeout_);
}

}  // namespace cronlane::op
