#pragma once
// The Kafka seam of the WorkerPool controller: a consumer group's offsets on every
// partition of a topic. What counts as lag is decided from them by the WorkerPool's
// rules (operator/workerpool.h, LagOf), not here.

#include <chrono>
#include <mutex>
#include <string>
#include <vector>

#include "common/kafka.h"
#include "common/status.h"
#include "common/thread_annotations.h"

namespace cronlane::op {

// Contract: NotFound when the topic does not exist; any other error means the
// offsets are unknown (broker unreachable, authorization, timeout). Thread-safe.
class LagReader {
 public:
  virtual ~LagReader() = default;
  virtual Result<std::vector<kafka::PartitionOffsets>> Offsets(const std::string& group, const std::string& topic) = 0;
};

// LagReader over librdkafka's admin API. The client handle is a consumer that
// never joins a group (so metadata requests never auto-create a topic), created on
// first use.
class KafkaLagReader final : public LagReader {
 public:
  explicit KafkaLagReader(kafka::Properties props, std::chrono::milliseconds timeout = std::chrono::seconds(4));
  Result<std::vector<kafka::PartitionOffsets>> Offsets(const std::string& group, const std::string& topic) override;

 private:
  kafka::Properties props_;
  std::chrono::milliseconds timeout_;
  Mutex mu_;
  kafka::HandlePtr client_ GUARDED_BY(mu_);  // made once, then used without the lock
};

}  // namespace cronlane::op
