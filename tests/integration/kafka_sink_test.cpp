// The dispatcher's Kafka fire path against the real broker: transactional commits
// with checkpoints, fencing of an older producer with the same transactional.id,
// an abandoned open transaction aborted by the new leader, tombstones, a warm
// standby's checkpoint follower handing over, and the dispatcher firing in real
// time.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
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

// A UUID-shaped UID, as the apiserver gives (random in every position): FNV-1a's
// top bits, which pick a range shard, barely depend on a UID's last character,
// so "uid-0".."uid-9" would all land in one range shard.
std::string UuidFor(uint64_t n) {
  auto mix = [](uint64_t z) {  // splitmix64
    z += 0x9e3779b97f4a7c15ULL;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  };
  const uint64_t a = mix(n), b = mix(a);
  char out[40];
  std::snprintf(out, sizeof out, "%08x-%04x-4%03x-a%03x-%012llx", static_cast<unsigned>(a >> 32),
                static_cast<unsigned>((a >> 16) & 0xffff), static_cast<unsigned>(a & 0xfff),
                static_cast<unsigned>(b >> 52), static_cast<unsigned long long>(b & 0xffffffffffffULL));
  return out;
}

// What each shard of a layout restores, as the operator's shard sink reads it;
// every checkpoint must be read by its own shard.
Checkpoints ShardReads(const std::string& topic, int shards, ShardLayout layout) {
  Checkpoints merged;
  for (int i = 0; i < shards; ++i) {
    KafkaSinkOptions r;
    r.base = Base();
    r.checkpoint_topic = topic;
    r.checkpoint_partitions = shards;
    r.shard = i;
    r.layout = layout;
    auto got = KafkaFireSink(r).ReadCheckpoints();
    EXPECT_TRUE(got.ok()) << got.status().ToString();
    if (!got.ok()) continue;
    for (const auto& [uid, t] : got->fired) {
      EXPECT_EQ(ShardOf(uid, shards, layout), i) << uid << " restored by the wrong shard";
      merged.fired[uid] = t;
    }
    for (const auto& [key, text] : got->records) {
      EXPECT_EQ(ShardOf(CheckpointOwner(key), shards, layout), i) << key;
      merged.records[key] = text;
    }
  }
  return merged;
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
    const std::string uid = UuidFor(n);
    first.push_back({uid, 1000 + n});
    later.push_back({uid, 2000 + n});  // the latest one wins
    expected.fired[uid] = 2000 + n;
  }
  ASSERT_TRUE(old_replica.Commit({}, first).ok());
  ASSERT_TRUE(old_replica.Commit({}, later).ok());
  ASSERT_TRUE(old_replica.Commit({}, {{UuidFor(3), 0, true}, {UuidFor(7), 0, false, "/run-now", "token-1"}}).ok());
  expected.fired.erase(UuidFor(3));
  expected.records[UuidFor(7) + "/run-now"] = "token-1";

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
  for (size_t n : report->per_shard) EXPECT_GT(n, 25U) << "200 tasks over 4 shards";

  // What each shard of the new layout restores, as the operator's shard sink reads it.
  EXPECT_EQ(ShardReads("cp4-" + s, 4, ShardLayout::kRange), expected);

  // The old layout's producer, still alive, can no longer commit.
  EXPECT_FALSE(old_replica.Commit({}, {{UuidFor(1), 9999}}).ok()) << "the old layout was not fenced";

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
  EXPECT_EQ(ShardReads("cp2-" + s, 2, ShardLayout::kRange), expected);
}

// --shard-layout: the checkpoint topic says which layout wrote it (where its
// records sit); auto follows it, a layout it does not fit is refused at start-up
// and by a shard's take-over, and reshard-checkpoints moves between layouts.
TEST(ShardLayout, TheCheckpointTopicSaysWhichLayoutWroteIt) {
  const std::string s = UniqueName("layout");
  using L = ShardLayout;
  // Nothing there yet: auto starts the range layout; a given layout is kept.
  EXPECT_EQ(CheckCheckpointLayout(Base(), "cpnone-" + s, 4, std::nullopt).value(), L::kRange);
  EXPECT_EQ(CheckCheckpointLayout(Base(), "cpnone-" + s, 4, L::kModulo).value(), L::kModulo);

  Checkpoints expected;
  {
    KafkaSinkOptions one;  // --shards 1
    one.base = Base();
    one.transactional_id = "txn1-" + s;
    one.checkpoint_topic = "cp1-" + s;
    KafkaFireSink sink(one);
    ASSERT_TRUE(sink.Init().ok());
    std::vector<Checkpoint> cps;
    for (int n = 0; n < 100; ++n) {
      cps.push_back({UuidFor(n), 1000 + n});
      expected.fired[UuidFor(n)] = 1000 + n;
    }
    cps.push_back({UuidFor(5), 0, false, "/run-now", "token-5"});
    expected.records[UuidFor(5) + "/run-now"] = "token-5";
    ASSERT_TRUE(sink.Commit({}, cps).ok());
  }
  // 4 shards, modulo: as a replica from before --shard-layout wrote it.
  ReshardOptions o{.base = Base(),
                   .transactional_id = "txn1-" + s,
                   .from_topic = "cp1-" + s,
                   .to_topic = "cpm-" + s,
                   .to_shards = 4,
                   .to_layout = L::kModulo};
  ASSERT_TRUE(ReshardCheckpoints(o).ok());
  EXPECT_EQ(ShardReads("cpm-" + s, 4, L::kModulo), expected);
  EXPECT_EQ(CheckCheckpointLayout(Base(), "cpm-" + s, 4, std::nullopt).value(), L::kModulo);
  EXPECT_EQ(CheckCheckpointLayout(Base(), "cpm-" + s, 4, L::kModulo).value(), L::kModulo);
  auto refused = CheckCheckpointLayout(Base(), "cpm-" + s, 4, L::kRange);
  EXPECT_EQ(refused.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(), ::testing::HasSubstr("written with --shard-layout modulo"));
  EXPECT_THAT(refused.status().message(), ::testing::HasSubstr("reshard-checkpoints --shard-layout range"));
  {
    // What the layout check reads: where each record sits, keeping none of them
    // (at 100k tasks the map would be megabytes, built and thrown away at start).
    CheckpointFollower placement_only({.base = Base(), .topic = "cpm-" + s, .once = true, .shards = 4, .keep = false});
    CancelToken stop;
    std::thread reader([&] { placement_only.Run(stop); });
    auto got = placement_only.TakeOver(30s);
    stop.Cancel();
    reader.join();
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    EXPECT_EQ(got->size(), 0u);
    EXPECT_EQ(placement_only.Placement().checked, 101u);
    EXPECT_EQ(placement_only.Placement().Misplaced(L::kModulo), 0u);
    EXPECT_GT(placement_only.Placement().Misplaced(L::kRange), 0u);
  }
  // A shard of the range layout taking over a partition the modulo layout wrote:
  // refused (its tasks' checkpoints are elsewhere), for every shard but one whose
  // tasks happen to agree.
  int refused_takeovers = 0;
  for (int i = 0; i < 4; ++i) {
    KafkaSinkOptions r{.base = Base(), .checkpoint_topic = "cpm-" + s, .checkpoint_partitions = 4, .shard = i};
    r.layout = L::kRange;
    auto got = KafkaFireSink(r).ReadCheckpoints();
    if (!got.ok()) {
      EXPECT_EQ(got.status().code(), StatusCode::kFailedPrecondition) << got.status().ToString();
      ++refused_takeovers;
    }
  }
  EXPECT_EQ(refused_takeovers, 4) << "100 tasks: every partition holds some the range layout puts elsewhere";

  // modulo -> range, same S, a new topic: auto now says range.
  o.from_topic = "cpm-" + s;
  o.from_shards = 4;
  o.to_topic = "cpr-" + s;
  o.to_layout = L::kRange;
  ASSERT_TRUE(ReshardCheckpoints(o).ok());
  EXPECT_EQ(ShardReads("cpr-" + s, 4, L::kRange), expected);
  EXPECT_EQ(CheckCheckpointLayout(Base(), "cpr-" + s, 4, std::nullopt).value(), L::kRange);
  EXPECT_EQ(CheckCheckpointLayout(Base(), "cpr-" + s, 4, L::kModulo).status().code(), StatusCode::kFailedPrecondition);

  // Records both layouts put where they are: auto takes range.
  std::string both;
  for (int n = 0; both.empty(); ++n) {
    const std::string uid = UuidFor(2000 + n);
    if (ShardOf(uid, 4, L::kRange) == 1 && ShardOf(uid, 4, L::kModulo) == 1) both = uid;
  }
  KafkaSinkOptions one{.base = Base(),
                       .transactional_id = "txnb-" + s,
                       .checkpoint_topic = "cpb-" + s,
                       .checkpoint_partitions = 4,
                       .shard = 1};
  KafkaFireSink agreeing(one);
  ASSERT_TRUE(agreeing.Init().ok());
  ASSERT_TRUE(agreeing.Commit({}, {{both, 5}}).ok());
  EXPECT_EQ(CheckCheckpointLayout(Base(), "cpb-" + s, 4, std::nullopt).value(), L::kRange);
  EXPECT_EQ(CheckCheckpointLayout(Base(), "cpb-" + s, 4, L::kModulo).value(), L::kModulo);

  // A record no layout puts where it is: refused whatever is asked.
  std::string stray;
  for (int n = 0; stray.empty(); ++n) {
    const std::string uid = UuidFor(1000 + n);
    if (ShardOf(uid, 4, L::kRange) != 0 && ShardOf(uid, 4, L::kModulo) != 0) stray = uid;
  }
  KafkaSinkOptions w{.base = Base(),
                     .transactional_id = "txnw-" + s,
                     .checkpoint_topic = "cpr-" + s,
                     .checkpoint_partitions = 4,
                     .shard = 0};
  KafkaFireSink writer(w);
  ASSERT_TRUE(writer.Init().ok());
  ASSERT_TRUE(writer.Commit({}, {{stray, 77}}).ok());
  auto neither = CheckCheckpointLayout(Base(), "cpr-" + s, 4, std::nullopt);
  EXPECT_EQ(neither.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_THAT(neither.status().message(), ::testing::HasSubstr("fits neither layout"));
  EXPECT_THAT(neither.status().message(), ::testing::HasSubstr("key " + stray + " in partition 0"));
}

}  // namespace
}  // namespace cronlane::dispatcher
