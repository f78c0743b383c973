#pragma once
// Reading back what the operator fired, for end-to-end tests: a read_committed
// consumer that keeps every message, and an audit of every-second tasks (each
// occurrence exactly once, none missing between a task's first and last).
// Header-only; tests that include it link cronlane_common.

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <map>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "common/kafka.h"
#include "common/time.h"
#include "tests/support/test_env.h"

namespace cronlane::testing {

// Deletes a topic (the admin API, as `kafka-topics.sh --delete` does); fails the
// calling test when the broker refuses.
inline void DeleteTopic(const std::string& topic) {
  auto admin = kafka::NewProducer({{"bootstrap.servers", EnvVar("KAFKA_BOOTSTRAP")}});
  ASSERT_TRUE(admin.ok()) << admin.status().ToString();
  auto deleted = kafka::DeleteTopic(admin->get(), topic);
  ASSERT_TRUE(deleted.ok()) << deleted.ToString();
}

// Creates `topic` on the environment's broker with `partitions` and topic
// `configs` (one that exists already is left as it is); fails the calling test
// when the broker refuses.
inline void CreateTestTopic(const std::string& topic, int partitions, const kafka::Properties& configs = {}) {
  auto admin = kafka::NewProducer({{"bootstrap.servers", EnvVar("KAFKA_BOOTSTRAP")}});
  ASSERT_TRUE(admin.ok()) << admin.status().ToString();
  auto created = kafka::CreateTopic(admin->get(), topic, partitions, 1, configs);
  ASSERT_TRUE(created.ok()) << "creating " << topic << ": " << created.ToString();
}

// A read_committed consumer of every partition of one topic (created with
// `partitions` when it does not exist) that keeps everything it has read.
class TopicReader {
 public:
  explicit TopicReader(const std::string& topic, int partitions = 3) : topic_(topic), partitions_(partitions) {
    CreateTestTopic(topic, partitions);
    auto c =
        kafka::NewConsumer({{"bootstrap.servers", EnvVar("KAFKA_BOOTSTRAP")}, {"isolation.level", "read_committed"}});
    EXPECT_TRUE(c.ok());
    if (!c.ok()) return;
    consumer_ = std::move(*c);
    EXPECT_TRUE(kafka::AssignAll(consumer_.get(), topic, partitions).ok());
  }
  // Reads for `d`; returns everything read so far.
  const std::vector<kafka::Message>& ReadFor(std::chrono::milliseconds d) {
    auto until = std::chrono::steady_clock::now() + d;
    while (std::chrono::steady_clock::now() < until) {
      auto m = kafka::Poll(consumer_.get(), std::chrono::milliseconds(100));
      if (m.ok() && m->has_value()) messages_.push_back(**m);
    }
    return messages_;
  }
  // Reads until at least `n` messages were read in all, for at most `timeout`.
  bool ReadUntil(size_t n, std::chrono::milliseconds timeout) {
    auto until = std::chrono::steady_clock::now() + timeout;
    while (messages_.size() < n && std::chrono::steady_clock::now() < until) {
      auto m = kafka::Poll(consumer_.get(), std::chrono::milliseconds(100));
      if (m.ok() && m->has_value()) messages_.push_back(**m);
    }
    return messages_.size() >= n;
  }
  // Reads until every partition's position reaches its high watermark as it is now
  // (everything committed so far, transaction markers included), for at most
  // `timeout`: what "nothing more arrived" means without sleeping. False on timeout.
  bool ReadToEnd(std::chrono::milliseconds timeout) {
    std::vector<int64_t> high(static_cast<size_t>(partitions_), 0);
    for (int p = 0; p < partitions_; ++p) {
      int64_t low = 0;
      if (rd_kafka_query_watermark_offsets(consumer_.get(), topic_.c_str(), p, &low, &high[static_cast<size_t>(p)],
                                           5000) != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return false;
      }
    }
    auto until = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < until) {
      rd_kafka_topic_partition_list_t* list = rd_kafka_topic_partition_list_new(partitions_);
      for (int p = 0; p < partitions_; ++p) rd_kafka_topic_partition_list_add(list, topic_.c_str(), p);
      rd_kafka_position(consumer_.get(), list);
      bool done = true;
      for (int p = 0; p < partitions_; ++p) {
        const int64_t at = list->elems[p].offset;
        if (high[static_cast<size_t>(p)] > 0 && (at < 0 || at < high[static_cast<size_t>(p)])) done = false;
      }
      rd_kafka_topic_partition_list_destroy(list);
      if (done) return true;
      auto m = kafka::Poll(consumer_.get(), std::chrono::milliseconds(100));
      if (m.ok() && m->has_value()) messages_.push_back(**m);
    }
    return false;
  }
  const std::vector<kafka::Message>& messages() const { return messages_; }

 private:
  std::string topic_;
  int partitions_ = 0;
  kafka::HandlePtr consumer_;
  std::vector<kafka::Message> messages_;
};

// The committed messages of `topic` (`partitions` of them) once `want` were read,
// or all of them after `wait`.
inline std::vector<kafka::Message> ReadTopic(const std::string& topic, int partitions, size_t want,
                                             std::chrono::milliseconds wait) {
  TopicReader reader(topic, partitions);
  reader.ReadUntil(want, wait);
  return reader.messages();
}

inline int64_t ScheduledUnix(const kafka::Message& m) {
  auto t = ParseRfc3339(std::string(m.HeaderValue("ce_time").value_or("")));
  return t.ok() ? t->time_since_epoch().count() : -1;
}

// Checks that every task fired every second from its first to its last occurrence,
// each exactly once. Returns {total, missing, duplicated}.
inline std::tuple<size_t, size_t, size_t> Audit(const std::vector<kafka::Message>& messages) {
  std::map<std::string, std::vector<int64_t>> by_task;
  std::set<std::string> ids;
  size_t dups = 0;
  for (const auto& m : messages) {
    if (!ids.insert(std::string(m.HeaderValue("ce_id").value_or(""))).second) ++dups;
    by_task[std::string(m.HeaderValue("ce_subject").value_or(""))].push_back(ScheduledUnix(m));
  }
  size_t missing = 0, total = 0;
  for (auto& [task, times] : by_task) {
    std::sort(times.begin(), times.end());
    times.erase(std::unique(times.begin(), times.end()), times.end());
    missing += static_cast<size_t>(times.back() - times.front() + 1) - times.size();
    total += times.size();
  }
  return {total, missing, dups};
}

}  // namespace cronlane::testing
