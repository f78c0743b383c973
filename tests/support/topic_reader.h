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

#include <librdkafka/rdkafka.h>

#include "common/kafka.h"
#include "common/time.h"
#include "tests/support/test_env.h"

namespace cronlane::testing {

// Deletes a topic (the admin API, as `kafka-topics.sh --delete` does); fails the
// calling test when the broker refuses.
inline void DeleteTopic(const std::string& topic) {
  auto admin = kafka::NewProducer({{"bootstrap.servers", EnvVar("KAFKA_BOOTSTRAP")}});
  ASSERT_TRUE(admin.ok());
  rd_kafka_t* rk = admin->get();
  rd_kafka_DeleteTopic_t* del = rd_kafka_DeleteTopic_new(topic.c_str());
  rd_kafka_queue_t* queue = rd_kafka_queue_new(rk);
  rd_kafka_DeleteTopics(rk, &del, 1, nullptr, queue);
  rd_kafka_DeleteTopic_destroy(del);
  rd_kafka_event_t* ev = rd_kafka_queue_poll(queue, 30000);
  ASSERT_NE(ev, nullptr) << "no answer to deleting " << topic;
  size_t n = 0;
  const rd_kafka_topic_result_t** results =
      rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev), &n);
  const rd_kafka_resp_err_t err = n == 1 ? rd_kafka_topic_result_error(results[0]) : rd_kafka_event_error(ev);
  rd_kafka_event_destroy(ev);
  rd_kafka_queue_destroy(queue);
  ASSERT_EQ(err, RD_KAFKA_RESP_ERR_NO_ERROR) << "deleting " << topic << ": " << rd_kafka_err2str(err);
}

// A read_committed consumer of one topic that keeps everything it has read.
class TopicReader {
 public:
  explicit TopicReader(const std::string& topic) {
    auto admin = kafka::NewProducer({{"bootstrap.servers", EnvVar("KAFKA_BOOTSTRAP")}});
    EXPECT_TRUE(admin.ok());
    EXPECT_TRUE(kafka::CreateTopic(admin->get(), topic, 3, 1).ok());
    auto c =
        kafka::NewConsumer({{"bootstrap.servers", EnvVar("KAFKA_BOOTSTRAP")}, {"isolation.level", "read_committed"}});
    EXPECT_TRUE(c.ok());
    consumer_ = std::move(*c);
    EXPECT_TRUE(kafka::AssignAll(consumer_.get(), topic, 3).ok());
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
  const std::vector<kafka::Message>& messages() const { return messages_; }

 private:
  kafka::HandlePtr consumer_;
  std::vector<kafka::Message> messages_;
};

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
