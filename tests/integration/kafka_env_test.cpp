// The local Kafka is a real broker: produce/consume through librdkafka, and
// transactions where a read_committed consumer sees only committed messages.
#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <string>
#include <vector>

#include "common/kafka.h"
#include "tests/support/test_env.h"

namespace cronlane::testing {
namespace {

using namespace std::chrono_literals;

kafka::Properties Base() {
  return {{"bootstrap.servers", EnvVar("KAFKA_BOOTSTRAP")}};
}

// Consumes from all partitions of `topic` until `want` messages arrived or `deadline` passed.
std::vector<kafka::Message> ConsumeAll(const std::string& topic, int partitions, const std::string& isolation,
                                       size_t want, std::chrono::seconds deadline) {
  auto props = Base();
  props["isolation.level"] = isolation;
  props["enable.partition.eof"] = "false";
  auto consumer = kafka::NewConsumer(props);
  EXPECT_TRUE(consumer.ok()) << consumer.status().ToString();
  if (!consumer.ok()) return {};
  auto assigned = kafka::AssignAll(consumer->get(), topic, partitions);
  EXPECT_TRUE(assigned.ok()) << assigned.ToString();
  std::vector<kafka::Message> out;
  auto until = std::chrono::steady_clock::now() + deadline;
  while (out.size() < want && std::chrono::steady_clock::now() < until) {
    auto m = kafka::Poll(consumer->get(), 200ms);
    EXPECT_TRUE(m.ok()) << m.status().ToString();
    if (m.ok() && m->has_value()) out.push_back(std::move(**m));
  }
  return out;
}

TEST(KafkaEnv, ProduceAndConsume) {
  auto producer = kafka::NewProducer(Base());
  ASSERT_TRUE(producer.ok()) << producer.status().ToString();
  std::string topic = UniqueName("env-plain");
  ASSERT_TRUE(kafka::CreateTopic(producer->get(), topic, 3, 1).ok());
  auto parts = kafka::PartitionCount(producer->get(), topic);
  ASSERT_TRUE(parts.ok()) << parts.status().ToString();
  EXPECT_EQ(*parts, 3);

  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(kafka::Produce(producer->get(), topic, "key-" + std::to_string(i), "value-" + std::to_string(i),
                               {{"ce_id", "id-" + std::to_string(i)}})
                    .ok());
  }
  ASSERT_TRUE(kafka::Flush(producer->get(), 10s).ok());

  auto got = ConsumeAll(topic, 3, "read_uncommitted", 10, 30s);
  ASSERT_EQ(got.size(), 10U);
  std::set<std::string> values;
  for (const auto& m : got) {
    values.insert(m.value);
    ASSERT_TRUE(m.key.has_value());
    EXPECT_EQ(m.HeaderValue("ce_id").value_or(""), "id-" + m.key->substr(4));
    EXPECT_GT(m.timestamp_ms, 0);
  }
  EXPECT_EQ(values.size(), 10U);
}

TEST(KafkaEnv, ReadCommittedSeesOnlyCommittedTransactions) {
  std::string topic = UniqueName("env-txn");
  auto props = Base();
  props["transactional.id"] = UniqueName("env-txn-producer");
  auto producer = kafka::NewProducer(props);
  ASSERT_TRUE(producer.ok()) << producer.status().ToString();
  ASSERT_TRUE(kafka::CreateTopic(producer->get(), topic, 1, 1).ok());
  ASSERT_TRUE(kafka::InitTransactions(producer->get(), 30s).ok());

  ASSERT_TRUE(kafka::BeginTransaction(producer->get()).ok());
  ASSERT_TRUE(kafka::Produce(producer->get(), topic, "k", "aborted-1").ok());
  ASSERT_TRUE(kafka::Produce(producer->get(), topic, "k", "aborted-2").ok());
  ASSERT_TRUE(kafka::Flush(producer->get(), 10s).ok());
  auto abort = kafka::AbortTransaction(producer->get(), 30s);
  ASSERT_TRUE(abort.ok()) << abort.ToString();

  ASSERT_TRUE(kafka::BeginTransaction(producer->get()).ok());
  ASSERT_TRUE(kafka::Produce(producer->get(), topic, "k", "committed-1").ok());
  ASSERT_TRUE(kafka::Produce(producer->get(), topic, "k", "committed-2").ok());
  auto commit = kafka::CommitTransaction(producer->get(), 30s);
  ASSERT_TRUE(commit.ok()) << commit.ToString();

  // read_committed: only the committed pair. Wait a little past it to be sure
  // nothing else arrives.
  auto committed = ConsumeAll(topic, 1, "read_committed", 3, 5s);
  ASSERT_EQ(committed.size(), 2U);
  EXPECT_EQ(committed[0].value, "committed-1");
  EXPECT_EQ(committed[1].value, "committed-2");

  // read_uncommitted sees the aborted records too: the abort really happened on the broker.
  auto all = ConsumeAll(topic, 1, "read_uncommitted", 4, 30s);
  ASSERT_EQ(all.size(), 4U);
  EXPECT_EQ(all[0].value, "aborted-1");
}

TEST(KafkaEnv, CompactedTopicCreation) {
  auto props = Base();
  props["allow.auto.create.topics"] = "false";  // the local broker auto-creates for kcat users
  auto producer = kafka::NewProducer(props);
  ASSERT_TRUE(producer.ok());
  std::string topic = UniqueName("env-compact");
  ASSERT_TRUE(kafka::CreateTopic(producer->get(), topic, 1, 1, {{"cleanup.policy", "compact"}}).ok());
  // Creating it again is fine when ok_if_exists, an error otherwise.
  EXPECT_TRUE(kafka::CreateTopic(producer->get(), topic, 1, 1).ok());
  auto again = kafka::CreateTopic(producer->get(), topic, 1, 1, {}, /*ok_if_exists=*/false);
  EXPECT_EQ(again.code(), StatusCode::kAlreadyExists) << again.ToString();
  auto bad = kafka::CreateTopic(producer->get(), topic + "-bad", 1, 1, {{"cleanup.policy", "sometimes"}});
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(kafka::PartitionCount(producer->get(), "does-not-exist-" + topic).status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace cronlane::testing
