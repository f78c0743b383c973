// The dispatcher's Kafka fire path against the real broker: transactional commits
// with checkpoints, fencing of an older producer with the same transactional.id,
// an abandoned open transaction aborted by the new leader, tombstones, a warm
// standby's checkpoint follower handing over, and the dispatcher firing in real
// time.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <iostream>
#include <map>
#include <set>
#include <thread>

#include "common/hash.h"
#include "common/kafka.h"
#include "dispatcher/checkpoint_follower.h"
#include "dispatcher/dispatcher.h"
#include "dispatcher/kafka_fire_sink.h"
#include "dispatcher/reshard.h"
#include "tests/support/process.h"
#include "tests/support/test_env.h"
#include "tests/support/topic_reader.h"

namespace cronlane::dispatcher {
namespace {

using namespace std::chrono_literals;
using cronlane::testing::CreateTestTopic;
using cronlane::testing::EnvVar;
using cronlane::testing::ReadTopic;
using cronlane::testing::UniqueName;

kafka::Properties Base() {
  return {{"bootstrap.servers", EnvVar("KAFKA_BOOTSTRAP")}};
}

KafkaSinkOptions Options(const std::string& suffix) {
  KafkaSinkOptions o;
  o.base = Base();
  o.transactional_id = "txn-" + suffix;
  o.checkpoint_topic = "checkpoints-" + suffix;
  o.checkpoint_partitions = 2;
  return o;
}

OutMessage Msg(const std::string& topic, const std::string& id) {
  return {topic, "k", "{}", {{"ce_id", id}}};
}

TEST(KafkaFireSink, CommitsMessagesAndCheckpointsTogether) {
  std::string s = UniqueName("sink");
  std::string topic = "fired-" + s;
  CreateTestTopic(topic, 1);
  KafkaFireSink sink(Options(s));
  ASSERT_TRUE(sink.Init().ok());
  auto empty = sink.ReadCheckpoints();
  ASSERT_TRUE(empty.ok()) << empty.status().ToString();
  EXPECT_EQ(empty->size(), 0U);
  ASSERT_TRUE(sink.Commit({Msg(topic, "a:1"), Msg(topic, "b:1")}, {{"a", 1}, {"b", 1}}).ok());
  ASSERT_TRUE(sink.Commit({Msg(topic, "a:2")}, {{"a", 2}}).ok());
  auto got = ReadTopic(topic, 1, 3, 20s);
  ASSERT_EQ(got.size(), 3U);
  EXPECT_EQ(got[2].HeaderValue("ce_id").value_or(""), "a:2");
  auto cps = sink.ReadCheckpoints();
  ASSERT_TRUE(cps.ok()) << cps.status().ToString();
  EXPECT_EQ(cps->fired, (std::unordered_map<std::string, int64_t>{{"a", 2}, {"b", 1}}));
}

// Whether the records of `key` on `topic` have null values (the raw librdkafka view:
// an empty value is not a tombstone, and compaction keeps it).
std::vector<bool> NullValues(const std::string& topic, int partitions, const std::string& key, size_t want) {
  auto props = Base();
  props["isolation.level"] = "read_committed";
  auto c = kafka::NewConsumer(props);
  EXPECT_TRUE(c.ok());
  EXPECT_TRUE(kafka::AssignAll(c->get(), topic, partitions).ok());
  std::vector<bool> out;
  auto until = std::chrono::steady_clock::now() + 20s;
  while (std::chrono::steady_clock::now() < until && out.size() < want) {
    rd_kafka_message_t* m = rd_kafka_consumer_poll(c->get(), 200);
    if (m == nullptr) continue;
    if (m->err == RD_KAFKA_RESP_ERR_NO_ERROR && m->key != nullptr &&
        std::string(static_cast<const char*>(m->key), m->key_len) == key) {
      out.push_back(m->payload == nullptr);
    }
    rd_kafka_message_destroy(m);
  }
  return out;
}

TEST(KafkaFireSink, ATombstoneDeletesACheckpoint) {
  std::string s = UniqueName("tomb");
  std::string topic = "fired-" + s;
  CreateTestTopic(topic, 1);
  auto o = Options(s);
  KafkaFireSink sink(o);
  ASSERT_TRUE(sink.Init().ok());
  ASSERT_TRUE(sink.Commit({Msg(topic, "a:1"), Msg(topic, "b:1")}, {{"a", 1}, {"b", 1}}).ok());
  ASSERT_TRUE(sink.Commit({}, {{"a", 0, true}}).ok());
  auto cps = sink.ReadCheckpoints();
  ASSERT_TRUE(cps.ok()) << cps.status().ToString();
  EXPECT_EQ(cps->fired, (std::unordered_map<std::string, int64_t>{{"b", 1}}));
  EXPECT_EQ(NullValues(o.checkpoint_topic, o.checkpoint_partitions, "a", 2), (std::vector<bool>{false, true}))
      << "a tombstone is a null value, which compaction removes with the key";
}

// A leader's sink whose last transaction is left open (it was killed mid-commit):
// a checkpoint that must never be restored.
void AbandonOpenTransaction(const std::string& transactional_id, const std::string& checkpoint_topic) {
  auto props = Base();
  props["transactional.id"] = transactional_id;
  auto p = kafka::NewProducer(props);
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE(kafka::InitTransactions(p->get(), 30s).ok());
  ASSERT_TRUE(kafka::BeginTransaction(p->get()).ok());
  ASSERT_TRUE(kafka::Produce(p->get(), checkpoint_topic, "x", "999").ok());
  ASSERT_TRUE(kafka::Flush(p->get(), 10s).ok());
}

TEST(CheckpointFollower, AWarmStandbyTakesOverExactlyWhatWasCommitted) {
  std::string s = UniqueName("follow");
  auto o = Options(s);
  // A standby starts before any leader created the topic, and waits for it.
  auto follower = std::make_shared<CheckpointFollower>(
      CheckpointFollowerOptions{.base = Base(), .topic = o.checkpoint_topic, .retry = 200ms, .max_retry = 500ms});
  CancelToken stop;
  std::thread following([&] { follower->Run(stop); });

  KafkaFireSink old_leader(o);
  ASSERT_TRUE(old_leader.Init().ok());
  ASSERT_TRUE(old_leader.Commit({}, {{"x", 1}, {"y", 1}, {"z", 1}}).ok());
  ASSERT_TRUE(cronlane::testing::WaitUntil([&] { return follower->Size() == 3; }, 30s))
      << "the standby follows what the leader commits";

  // The old leader's last commits, then it dies inside a transaction; the new
  // leader takes over right after fencing it, before the follower may have read
  // the tail.
  for (int i = 2; i <= 20; ++i) ASSERT_TRUE(old_leader.Commit({}, {{"x", i}, {"z", i}}).ok());
  ASSERT_TRUE(old_leader.Commit({}, {{"y", 0, true}}).ok());
  AbandonOpenTransaction(o.transactional_id, o.checkpoint_topic);
  auto n = o;
  n.follower = follower;
  n.follower_timeout = 20s;
  KafkaFireSink new_leader(n);
  ASSERT_TRUE(new_leader.Init().ok());
  const uint64_t records_before = follower->Records();
  auto t0 = std::chrono::steady_clock::now();
  auto cps = new_leader.ReadCheckpoints();
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  ASSERT_TRUE(cps.ok()) << cps.status().ToString();
  EXPECT_EQ(cps->fired, (std::unordered_map<std::string, int64_t>{{"x", 20}, {"z", 20}}))
      << "committed tail read, tombstone applied, open txn not";
  std::cout << "take-over: " << took.count() << " ms, " << follower->Records() - records_before
            << " records read after the request\n";
  EXPECT_EQ(follower->Size(), 0U) << "handed over";
  EXPECT_EQ(follower->TakeOver(1s).status().code(), StatusCode::kUnavailable)
      << "the sink took the follower's checkpoints (no read from the beginning)";
  stop.Cancel();
  following.join();

  // A read from the beginning agrees.
  KafkaFireSink cold(o);
  ASSERT_TRUE(cold.Init().ok());
  auto again = cold.ReadCheckpoints();
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(*again, *cps);
}

// The broker's view of a topic's configuration (DescribeConfigs).
std::map<std::string, std::string> TopicConfig(const std::string& topic) {
  std::map<std::string, std::string> out;
  auto admin = kafka::NewProducer(Base());
  EXPECT_TRUE(admin.ok());
  rd_kafka_t* rk = admin->get();
  rd_kafka_queue_t* q = rd_kafka_queue_new(rk);
  rd_kafka_ConfigResource_t* res = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic.c_str());
  rd_kafka_DescribeConfigs(rk, &res, 1, nullptr, q);
  rd_kafka_event_t* ev = rd_kafka_queue_poll(q, 10000);
  if (ev != nullptr && rd_kafka_event_error(ev) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    size_t n = 0;
    const rd_kafka_ConfigResource_t** rs =
        rd_kafka_DescribeConfigs_result_resources(rd_kafka_event_DescribeConfigs_result(ev), &n);
    for (size_t i = 0; i < n; ++i) {
      size_t m = 0;
      const rd_kafka_ConfigEntry_t** entries = rd_kafka_ConfigResource_configs(rs[i], &m);
      for (size_t j = 0; j < m; ++j) {
        const char* v = rd_kafka_ConfigEntry_value(entries[j]);
        out[rd_kafka_ConfigEntry_name(entries[j])] = v ? v : "";
      }
    }
  }
  if (ev != nullptr) rd_kafka_event_destroy(ev);
  rd_kafka_ConfigResource_destroy(res);
  rd_kafka_queue_destroy(q);
  return out;
}

TEST(KafkaFireSink, CheckpointTopicIsCompactedInSmallSegments) {
  // With the broker's 1 GiB default segments compaction would not run for hours
  // at 100k tasks, and a new leader would read every checkpoint ever written.
  auto o = Options(UniqueName("cfg"));
  KafkaFireSink sink(o);
  ASSERT_TRUE(sink.Init().ok());
  auto config = TopicConfig(o.checkpoint_topic);
  EXPECT_EQ(config["cleanup.policy"], "compact");
  EXPECT_EQ(config["segment.bytes"], std::to_string(16 * 1024 * 1024));
  EXPECT_EQ(config["segment.ms"], "600000");
}

TEST(KafkaFireSink, NewLeaderFencesTheOldOne) {
  std::string s = UniqueName("fence");
  std::string topic = "fired-" + s;
  CreateTestTopic(topic, 1);
  KafkaFireSink old_leader(Options(s));
  ASSERT_TRUE(old_leader.Init().ok());
  ASSERT_TRUE(old_leader.Commit({Msg(topic, "x:1")}, {{"x", 1}}).ok());
  KafkaFireSink new_leader(Options(s));
  ASSERT_TRUE(new_leader.Init().ok());
  Status stale = old_leader.Commit({Msg(topic, "x:2-from-old")}, {{"x", 2}});
  EXPECT_EQ(stale.code(), StatusCode::kFenced) << stale.ToString();
  ASSERT_TRUE(new_leader.Commit({Msg(topic, "x:2")}, {{"x", 2}}).ok());
  auto got = ReadTopic(topic, 1, 3, 5s);
  std::vector<std::string> ids;
  for (const auto& m : got) ids.push_back(std::string(m.HeaderValue("ce_id").value_or("")));
  EXPECT_EQ(ids, (std::vector<std::string>{"x:1", "x:2"}));
}

TEST(KafkaFireSink, AbandonedTransactionIsAbortedByTheNextLeader) {
  std::string s = UniqueName("abandon");
  std::string topic = "fired-" + s;
  CreateTestTopic(topic, 1);
  {
    // A leader that dies mid-transaction: produced, never committed.
    auto props = Base();
    props["transactional.id"] = "txn-" + s;
    auto p = kafka::NewProducer(props);
    ASSERT_TRUE(p.ok());
    ASSERT_TRUE(kafka::InitTransactions(p->get(), 30s).ok());
    ASSERT_TRUE(kafka::BeginTransaction(p->get()).ok());
    ASSERT_TRUE(kafka::Produce(p->get(), topic, "k", "never-committed", {{"ce_id", "lost:1"}}).ok());
    ASSERT_TRUE(kafka::Flush(p->get(), 10s).ok());
    // Destroyed without commit or abort.
  }
  KafkaFireSink next(Options(s));
  auto t0 = std::chrono::steady_clock::now();
  ASSERT_TRUE(next.Init().ok());
  ASSERT_TRUE(next.Commit({Msg(topic, "after:1")}, {{"after", 1}}).ok());
  auto got = ReadTopic(topic, 1, 1, 20s);
  auto stall = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - t0);
  std::cout << "read_committed saw the new leader's commit " << stall.count() << " ms after it started\n";
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].HeaderValue("ce_id").value_or(""), "after:1");
  EXPECT_LT(stall, 10s) << "init_transactions must abort the open transaction, not wait for its timeout";
}

class NullObserver : public DispatcherObserver {
 public:
  void OnFired(const TaskDefinition&, Instant, std::optional<Instant>) override {}
  void OnSkipped(const TaskDefinition&, int, Instant, Instant, const std::string&, const std::string&) override {}
  void OnFenced(const std::string&) override {}
};

TEST(DispatcherWithKafka, FiresEverySecondInRealTime) {
  std::string s = UniqueName("rt");
  std::string topic = "fired-" + s;
  CreateTestTopic(topic, 1);
  KafkaFireSink sink(Options(s));
  NullObserver obs;
  Dispatcher d(RealClock::Get(), sink, &obs, {.default_topic = topic});
  ASSERT_TRUE(d.Start().ok());
  TaskDefinition t;
  t.id = "uid-rt";
  t.ns = "ns";
  t.name = "rt";
  t.schedule = "* * * * * *";
  ASSERT_TRUE(d.Upsert(t).ok());
  CancelToken cancel;
  std::thread runner([&] { d.Run(cancel); });
  std::this_thread::sleep_for(3500ms);
  cancel.Cancel();
  runner.join();
  auto st = d.Stats();
  EXPECT_GE(st.fired, 3U);
  auto got = ReadTopic(topic, 1, st.fired, 10s);
  ASSERT_EQ(got.size(), st.fired);
  std::set<std::string> ids;
  for (const auto& m : got) {
    ids.insert(std::string(m.HeaderValue("ce_id").value_or("")));
    // Fire lag: the broker's timestamp against the scheduled time.
    auto scheduled = *ParseRfc3339(std::string(m.HeaderValue("ce_time").value_or("")));
    int64_t lag_ms = m.timestamp_ms - scheduled.time_since_epoch().count() * 1000;
    EXPECT_GE(lag_ms, 0);
    EXPECT_LT(lag_ms, 2000);
  }
  EXPECT_EQ(ids.size(), got.size());
}

// Changing --shards (cronlane-operator reshard-checkpoints): every task's latest
// checkpoint and typed record lands in its new shard's partition, tombstones stay
// applied, the old layout's producers are fenced, and a used target is refused.
TEST(Reshard, CopiesEveryCheckpointIntoItsNewShardAndFencesTheOldLayout) {
  const std::string s = UniqueName("reshard");
  KafkaSinkOptions old_layout;  // --shards 1, as the operator runs it by default
  old_layout.base = Base();
  old_layout.transactional_id = "txn-" + s;
  old_layout.checkpoint_topic = "cp1-" + s;
  KafkaFireSink old_replica(old_layout);
  ASSERT_TRUE(old_replica.Init().ok());
  Checkpoints expected;
  std::vector<Checkpoint> first, later;
  for (int n = 0; n < 200; ++n) {
    const std::string uid = "uid-" + std::to_string(n);
    first.push_back({uid, 1000 + n});
    later.push_back({uid, 2000 + n});  // the latest one wins
    expected.fired[uid] = 2000 + n;
  }
  ASSERT_TRUE(old_replica.Commit({}, first).ok());
  ASSERT_TRUE(old_replica.Commit({}, later).ok());
  ASSERT_TRUE(old_replica.Commit({}, {{"uid-3", 0, true}, {"uid-7", 0, false, "/run-now", "token-1"}}).ok());
  expected.fired.erase("uid-3");
  expected.records["uid-7/run-now"] = "token-1";

  ReshardOptions o{.base = Base(),
                   .transactional_id = "txn-" + s,
                   .from_topic = "cp1-" + s,
                   .from_shards = 1,
                   .to_topic = "cp4-" + s,
                   .to_shards = 4,
                   .batch = 64};
  auto report = ReshardCheckpoints(o);
  ASSERT_TRUE(report.ok()) << report.status().ToString();
  EXPECT_EQ(report->checkpoints, 199U);
  EXPECT_EQ(report->records, 1U);
  ASSERT_EQ(report->per_shard.size(), 4U);

  // What each shard of the new layout restores, as the operator's shard sink reads it.
  auto shard_reads = [&](const std::string& topic, int shards) {
    Checkpoints merged;
    for (int i = 0; i < shards; ++i) {
      KafkaSinkOptions r;
      r.base = Base();
      r.checkpoint_topic = topic;
      r.checkpoint_partitions = shards;
      r.shard = i;
      auto got = KafkaFireSink(r).ReadCheckpoints();
      EXPECT_TRUE(got.ok()) << got.status().ToString();
      if (!got.ok()) continue;
      for (const auto& [uid, t] : got->fired) {
        EXPECT_EQ(ShardOf(uid, shards), i) << uid << " restored by the wrong shard";
        merged.fired[uid] = t;
      }
      for (const auto& [key, text] : got->records) {
        EXPECT_EQ(ShardOf(CheckpointOwner(key), shards), i) << key;
        merged.records[key] = text;
      }
    }
    return merged;
  };
  EXPECT_EQ(shard_reads("cp4-" + s, 4), expected);

  // The old layout's producer, still alive, can no longer commit.
  EXPECT_FALSE(old_replica.Commit({}, {{"uid-1", 9999}}).ok()) << "the old layout was not fenced";

  // A target that holds records is refused; so are the same topic and a wrong count.
  auto again = ReshardCheckpoints(o);
  EXPECT_EQ(again.status().code(), StatusCode::kFailedPrecondition) << again.status().ToString();
  auto same = o;
  same.to_topic = same.from_topic;
  EXPECT_EQ(ReshardCheckpoints(same).status().code(), StatusCode::kInvalidArgument);
  auto wrong = o;
  wrong.from_topic = "cp4-" + s;
  wrong.from_shards = 3;  // it has 4 partitions
  wrong.to_topic = "cpx-" + s;
  EXPECT_FALSE(ReshardCheckpoints(wrong).ok());

  // 4 shards to 2, from the sharded layout.
  auto down = o;
  down.from_topic = "cp4-" + s;
  down.from_shards = 4;
  down.to_topic = "cp2-" + s;
  down.to_shards = 2;
  auto halved = ReshardCheckpoints(down);
  ASSERT_TRUE(halved.ok()) << halved.status().ToString();
  EXPECT_EQ(shard_reads("cp2-" + s, 2), expected);
}

}  // namespace
}  // namespace cronlane::dispatcher
