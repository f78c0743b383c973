// cronlane-worker against the real broker: runs a command per fired task, retries and
// dead-letters failures, reports results; SIGTERM mid-task finishes the task and
// loses nothing; kill -9 mid-task gets the task redelivered and completed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include "common/cloudevent.h"
#include "common/kafka.h"
#include "common/task_result.h"
#include "dispatcher/dispatcher.h"
#include "operator/workerpool.h"
#include "tests/support/fired_tasks.h"
#include "tests/support/process.h"
#include "tests/support/test_env.h"
#include "tests/support/topic_reader.h"

namespace cronlane::testing {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

kafka::Properties Base() {
  return {{"bootstrap.servers", EnvVar("KAFKA_BOOTSTRAP")}};
}

std::vector<std::string> Fire(const std::string& topic, const std::vector<std::string>& payloads, int max_attempts) {
  return ProduceFiredTasks(EnvVar("KAFKA_BOOTSTRAP"), topic, payloads, max_attempts);
}

std::vector<std::string> Lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

class WorkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    id_ = UniqueName("worker");
    dir_ = std::filesystem::temp_directory_path() / id_;
    std::filesystem::create_directories(dir_);
    for (auto t : {".tasks", ".results", ".dlq", ".control"}) CreateTestTopic(id_ + t, 3);
  }
  // `metrics_port` 0: no /metrics.
  std::unique_ptr<Process> StartWorker(const std::string& exec, int concurrency = 1, std::string dlq = "",
                                       int metrics_port = 0) {
    if (dlq.empty()) dlq = id_ + ".dlq";
    return std::make_unique<Process>(
        std::vector<std::string>{
            std::string(CRONLANE_BIN_DIR) + "/cronlane-worker", "--kafka-bootstrap=" + EnvVar("KAFKA_BOOTSTRAP"),
            "--topic=" + id_ + ".tasks", "--group=" + id_, "--exec=" + exec, "--results-topic=" + id_ + ".results",
            "--dead-letter-topic=" + dlq, "--control-topic=" + id_ + ".control",
            "--metrics-bind-address=" +
                (metrics_port == 0 ? std::string("0") : "127.0.0.1:" + std::to_string(metrics_port)),
            "--health-probe-bind-address=0", "--log-format=text", "--concurrency=" + std::to_string(concurrency)},
        (dir_ / ("worker-" + std::to_string(n_++) + ".log")).string());
  }
  int64_t Lag() {
    auto admin = kafka::NewConsumer(Base());
    auto offsets = kafka::GroupOffsets(admin->get(), id_, id_ + ".tasks");
    EXPECT_TRUE(offsets.ok()) << offsets.status().ToString();
    return offsets.ok() ? op::Measure({}, {{id_ + ".tasks", *offsets}}, nullptr).lag : 0;  // as a WorkerPool counts it
  }
  std::string id_;
  std::filesystem::path dir_;
  int n_ = 0;
};

TEST_F(WorkerTest, RunsCommandsRetriesAndDeadLetters) {
  std::vector<std::string> payloads;
  for (int i = 0; i < 12; ++i) payloads.push_back(i % 4 == 3 ? R"({"mode":"fail"})" : R"({"mode":"ok"})");
  auto ids = Fire(id_ + ".tasks", payloads, 2);
  std::string done = (dir_ / "done").string(), attempts = (dir_ / "attempts").string();
  const int port = FreePort();
  auto w = StartWorker("echo \"$CE_ID $CRONLANE_ATTEMPT\" >> " + attempts +
                           "; grep -q fail && exit 3; echo \"$CE_ID $CE_SUBJECT\" >> " + done,
                       1, "", port);
  auto results = ReadTopic(id_ + ".results", 3, 12, 60s);
  ASSERT_EQ(results.size(), 12U) << w->Log();
  int succeeded = 0, failed = 0;
  for (const auto& r : results) {
    if (r.value.find("\"outcome\":\"Succeeded\"") != std::string::npos) ++succeeded;
    if (r.value.find("\"outcome\":\"Failed\"") != std::string::npos) {
      ++failed;
      EXPECT_NE(r.value.find("\"attempts\":2"), std::string::npos) << r.value;
      auto decoded = DecodeTaskResult(r.value);
      ASSERT_TRUE(decoded.ok()) << r.value;
      EXPECT_TRUE(decoded->dead_lettered) << "the worker has a dead-letter topic: " << r.value;
    } else {
      EXPECT_EQ(r.value.find("deadLettered"), std::string::npos) << r.value;
    }
  }
  EXPECT_EQ(succeeded, 9);
  EXPECT_EQ(failed, 3);
  auto lines = Lines(done);
  EXPECT_EQ(lines.size(), 9U);
  EXPECT_EQ(std::set<std::string>(lines.begin(), lines.end()).size(), 9U) << "each task ran once";
  EXPECT_EQ(Lines(attempts).size(), 9U + 3U * 2U) << "failures are retried up to ce_maxattempts";
  auto dlq = ReadTopic(id_ + ".dlq", 3, 3, 20s);
  ASSERT_EQ(dlq.size(), 3U);
  EXPECT_EQ(dlq[0].HeaderValue("cronlane_attempts").value_or(""), "2");
  // The worker's /metrics, scraped: every occurrence's duration is in the histogram,
  // the failed ones with their retry backoff (2 attempts), so they are the slowest.
  const std::string metrics = HttpGet(port, "/metrics");
  EXPECT_THAT(metrics, HasSubstr("# TYPE cronlane_worker_task_duration_seconds histogram"));
  EXPECT_THAT(metrics, HasSubstr("cronlane_worker_task_duration_seconds_count 12"));
  EXPECT_THAT(metrics, HasSubstr("cronlane_worker_succeeded_total 9"));
  EXPECT_THAT(metrics, HasSubstr("cronlane_worker_failed_total 3"));
  w->Signal(SIGTERM);
  EXPECT_EQ(w->Wait(20s).value_or(-1), 0) << w->Log();
}

// Sets one configuration value of a topic (AlterConfigs replaces the topic's
// dynamic configuration with what it is given).
void SetTopicConfig(const std::string& topic, const std::string& name, const std::string& value) {
  auto admin = kafka::NewProducer(Base());
  ASSERT_TRUE(admin.ok());
  rd_kafka_t* rk = admin->get();
  rd_kafka_queue_t* q = rd_kafka_queue_new(rk);
  rd_kafka_ConfigResource_t* res = rd_kafka_ConfigResource_new(RD_KAFKA_RESOURCE_TOPIC, topic.c_str());
  rd_kafka_ConfigResource_set_config(res, name.c_str(), value.c_str());
  rd_kafka_AlterConfigs(rk, &res, 1, nullptr, q);
  rd_kafka_event_t* ev = rd_kafka_queue_poll(q, 10000);
  ASSERT_NE(ev, nullptr);
  EXPECT_EQ(rd_kafka_event_error(ev), RD_KAFKA_RESP_ERR_NO_ERROR) << rd_kafka_event_error_string(ev);
  rd_kafka_event_destroy(ev);
  rd_kafka_ConfigResource_destroy(res);
  rd_kafka_queue_destroy(q);
}

TEST_F(WorkerTest, NothingIsCommittedPastAFailedTaskWhoseDeadLetterWasRefused) {
  // A dead-letter topic that refuses the record (larger than its max.message.bytes).
  const std::string dlq = id_ + ".dlq-small";
  CreateTestTopic(dlq, 1, {{"max.message.bytes", "64"}});
  Fire(id_ + ".tasks", {R"({"mode":"fail"})"}, 1);
  auto w = StartWorker("exit 3", 1, dlq);
  ASSERT_EQ(ReadTopic(id_ + ".results", 3, 1, 60s).size(), 1U) << w->Log();
  // Two refusals: the worker is retrying the dead letter, its task still unfinished.
  auto refusals = [&] {
    const std::string log = w->Log();
    size_t n = 0;
    for (size_t at = log.find("the message's offset waits"); at != std::string::npos;
         at = log.find("the message's offset waits", at + 1)) {
      ++n;
    }
    return n;
  };
  ASSERT_TRUE(WaitUntil([&] { return refusals() >= 2; }, 60s)) << w->Log();
  EXPECT_EQ(Lag(), 1) << "the failed task's offset stays uncommitted while its dead letter is not written";

  SetTopicConfig(dlq, "max.message.bytes", "1048588");
  auto letters = ReadTopic(dlq, 1, 1, 60s);
  ASSERT_EQ(letters.size(), 1U) << w->Log();
  EXPECT_EQ(letters[0].HeaderValue("cronlane_attempts").value_or(""), "1");
  ASSERT_TRUE(WaitUntil([&] { return Lag() == 0; }, 30s)) << "committed once the dead letter is durable";
  w->Signal(SIGTERM);
  EXPECT_EQ(w->Wait(20s).value_or(-1), 0) << w->Log();
}

TEST_F(WorkerTest, SigtermMidTaskFinishesItAndLosesNothing) {
  auto ids = Fire(id_ + ".tasks", {"{}", "{}", "{}", "{}"}, 1);
  std::string done = (dir_ / "done").string();
  const std::string cmd = "sleep 2; echo \"$CE_ID\" >> " + done;
  auto w = StartWorker(cmd);
  ASSERT_TRUE(WaitUntil([&] { return Lines(done).size() >= 1; }, 30s)) << w->Log();
  w->Signal(SIGTERM);  // during the second task
  EXPECT_EQ(w->Wait(30s).value_or(-1), 0) << w->Log();
  auto w2 = StartWorker(cmd);
  EXPECT_TRUE(WaitUntil([&] { return Lines(done).size() >= 4; }, 60s)) << w2->Log();
  std::this_thread::sleep_for(3s);
  auto lines = Lines(done);
  EXPECT_EQ(lines.size(), 4U) << "nothing lost, nothing run twice";
  EXPECT_EQ(std::set<std::string>(lines.begin(), lines.end()), std::set<std::string>(ids.begin(), ids.end()));
  w2->Signal(SIGTERM);
  w2->Wait(30s);
  // The results topic agrees: one Succeeded record per occurrence.
  auto results = ReadTopic(id_ + ".results", 3, 5, 10s);
  std::multiset<std::string> reported;
  for (const auto& r : results) {
    auto decoded = DecodeTaskResult(r.value);
    ASSERT_TRUE(decoded.ok()) << r.value;
    EXPECT_TRUE(decoded->succeeded());
    reported.insert(decoded->id);
  }
  EXPECT_EQ(reported, std::multiset<std::string>(ids.begin(), ids.end()));
}

// concurrencyPolicy Replace, the worker's half: a cancel event on the control
// topic (as the dispatcher commits it) for task0's occurrences before a later time.
void ProduceCancel(const std::string& topic, const std::string& task_id, const std::string& before) {
  auto p = kafka::NewProducer(Base());
  ASSERT_TRUE(p.ok());
  auto headers = CancelEventHeaders({task_id + ":1800000060:cancel", "/ns/task0", "ns/task0", task_id, before},
                                    "2027-01-15T08:01:00Z");
  ASSERT_TRUE(kafka::Produce(p->get(), topic, std::string("ns/task0"), "", headers).ok());
  ASSERT_TRUE(kafka::Flush(p->get(), 10s).ok());
}

// The results of the test's worker, decoded.
std::vector<TaskResult> Results(const std::string& topic, size_t n) {
  std::vector<TaskResult> out;
  for (const auto& r : ReadTopic(topic, 3, n, 30s)) {
    auto decoded = DecodeTaskResult(r.value);
    EXPECT_TRUE(decoded.ok()) << r.value;
    if (decoded.ok()) out.push_back(*decoded);
  }
  return out;
}

TEST_F(WorkerTest, ACancelStopsTheRunningAttemptAndReportsCancelled) {
  auto ids = Fire(id_ + ".tasks", {"{}"}, 3);  // scheduled 2027-01-15T08:00:00Z
  std::string started = (dir_ / "started").string(), done = (dir_ / "done").string();
  auto w = StartWorker("echo \"$CE_ID\" >> " + started + "; sleep 600; echo \"$CE_ID\" >> " + done);
  ASSERT_TRUE(WaitUntil([&] { return Lines(started).size() == 1; }, 30s)) << w->Log();
  // A cancel of an earlier time does not concern it.
  ProduceCancel(id_ + ".control", "uid-task0", "2027-01-15T08:00:00Z");
  ProduceCancel(id_ + ".control", "uid-other", "2027-01-15T09:00:00Z");
  ProduceCancel(id_ + ".control", "uid-task0", "2027-01-15T08:01:00Z");
  auto results = Results(id_ + ".results", 1);  // only once `sleep 600` was stopped
  ASSERT_EQ(results.size(), 1U) << w->Log();
  EXPECT_EQ(results[0].id, ids[0]);
  EXPECT_EQ(results[0].outcome, RunOutcome::kCancelled);
  EXPECT_EQ(results[0].attempts, 1) << "not retried";
  EXPECT_FALSE(results[0].dead_lettered);
  EXPECT_TRUE(Lines(done).empty());
  EXPECT_EQ(Lines(started).size(), 1U);
  EXPECT_TRUE(WaitUntil([&] { return Lag() == 0; }, 30s)) << "committed";
  EXPECT_TRUE(ReadTopic(id_ + ".dlq", 3, 1, 2s).empty()) << "a cancel is not a failure";
  w->Signal(SIGTERM);
  EXPECT_EQ(w->Wait(20s).value_or(-1), 0) << w->Log();
  EXPECT_THAT(w->Log(), HasSubstr("cancelled by a newer occurrence (concurrencyPolicy Replace) after 1 attempt(s)"));
}

TEST_F(WorkerTest, AnOccurrenceCancelledBeforeItIsConsumedNeverRuns) {
  ProduceCancel(id_ + ".control", "uid-task0", "2027-01-15T08:01:00Z");
  auto ids = Fire(id_ + ".tasks", {"{}", "{}"}, 1);  // task0 (cancelled) and task1
  std::string started = (dir_ / "started").string();
  auto w = StartWorker("echo \"$CE_ID\" >> " + started);
  auto results = Results(id_ + ".results", 2);
  ASSERT_EQ(results.size(), 2U) << w->Log();
  std::map<std::string, TaskResult> by_id;
  for (const auto& r : results) by_id[r.id] = r;
  EXPECT_EQ(by_id[ids[0]].outcome, RunOutcome::kCancelled);
  EXPECT_EQ(by_id[ids[0]].attempts, 0) << "never started";
  EXPECT_EQ(by_id[ids[1]].outcome, RunOutcome::kSucceeded);
  EXPECT_EQ(Lines(started), std::vector<std::string>{ids[1]});
  EXPECT_TRUE(WaitUntil([&] { return Lag() == 0; }, 30s));
  w->Signal(SIGTERM);
  EXPECT_EQ(w->Wait(20s).value_or(-1), 0) << w->Log();
}

TEST_F(WorkerTest, Kill9MidTaskIsRedeliveredAndCompletes) {
  auto ids = Fire(id_ + ".tasks", {"{}"}, 1);
  std::string started = (dir_ / "started").string(), done = (dir_ / "done").string();
  const std::string cmd = "echo \"$CE_ID\" >> " + started + "; sleep 2; echo \"$CE_ID\" >> " + done;
  auto w = StartWorker(cmd);
  ASSERT_TRUE(WaitUntil([&] { return Lines(started).size() == 1; }, 30s)) << w->Log();
  w->Signal(SIGKILL);
  w->Wait(10s);
  EXPECT_TRUE(Lines(done).empty());
  auto w2 = StartWorker(cmd);
  EXPECT_TRUE(WaitUntil([&] { return Lines(done).size() == 1; }, 60s)) << w2->Log();
  EXPECT_EQ(Lines(done), std::vector<std::string>{ids[0]});
  EXPECT_EQ(Lines(started).size(), 2U) << "the at-least-once redelivery ran it again";
  w2->Signal(SIGTERM);
  w2->Wait(30s);
}

// Commits are batched (every 200 ms or 500 tasks) and results written without
// waiting: a kill -9 mid-batch redelivers only messages at or past the committed
// offsets, and every message still gets its result.
TEST_F(WorkerTest, Kill9MidBatchRedeliversOnlyUncommittedMessagesAndLosesNone) {
  const int n = 400;
  auto ids = Fire(id_ + ".tasks", std::vector<std::string>(n, "{}"), 1);
  TopicReader results(id_ + ".results", 3);
  auto w = StartWorker("sleep 0.05", 4);  // about 80 a second
  ASSERT_TRUE(results.ReadUntil(100, 60s)) << w->Log();
  w->Signal(SIGKILL);
  w->Wait(10s);
  auto admin = kafka::NewConsumer(Base());
  auto offsets = kafka::GroupOffsets(admin->get(), id_, id_ + ".tasks");
  ASSERT_TRUE(offsets.ok()) << offsets.status().ToString();
  std::map<int32_t, int64_t> committed;
  int64_t total_committed = 0;
  for (const auto& p : *offsets) {
    committed[p.partition] = std::max<int64_t>(0, p.committed);
    total_committed += committed[p.partition];
  }
  ASSERT_GT(total_committed, 0) << "a commit came within the first 100 tasks";
  ASSERT_LT(total_committed, n) << "killed before the end";

  auto w2 = StartWorker("sleep 0.05", 4);
  ASSERT_TRUE(WaitUntil([&] { return Lag() == 0; }, 120s)) << w2->Log();
  ASSERT_TRUE(results.ReadToEnd(30s));
  TopicReader tasks(id_ + ".tasks", 3);
  ASSERT_TRUE(tasks.ReadUntil(n, 30s));
  std::map<std::string, std::pair<int32_t, int64_t>> where;  // ce_id -> partition, offset
  for (const auto& m : tasks.messages())
    where[std::string(m.HeaderValue("ce_id").value_or(""))] = {m.partition, m.offset};
  std::map<std::string, int> runs;
  for (const auto& m : results.messages()) {
    auto r = DecodeTaskResult(m.value);
    ASSERT_TRUE(r.ok());
    ++runs[r->id];
  }
  int redelivered = 0;
  for (const auto& id : ids) {
    ASSERT_TRUE(runs.count(id) == 1) << id << " has no result: lost";
    if (runs[id] == 1) continue;
    ++redelivered;
    EXPECT_EQ(runs[id], 2) << id;
    const auto [partition, offset] = where[id];
    EXPECT_GE(offset, committed[partition]) << id << " ran twice though its offset was committed";
  }
  EXPECT_EQ(runs.size(), static_cast<size_t>(n));
  std::cout << "committed " << total_committed << " of " << n << " at the kill; ran twice: " << redelivered << "\n";
  w2->Signal(SIGTERM);
  EXPECT_EQ(w2->Wait(20s).value_or(-1), 0) << w2->Log();
}

TEST_F(WorkerTest, RunsUpToConcurrencyTasksAtOnceAndCommitsThemAll) {
  std::vector<std::string> payloads(12, "{}");
  auto ids = Fire(id_ + ".tasks", payloads, 1);
  std::string running = (dir_ / "running").string(), peaks = (dir_ / "peaks").string(), done = (dir_ / "done").string();
  std::filesystem::create_directories(running);
  // Each task marks itself running, records how many run now, and unmarks itself.
  auto w = StartWorker("touch " + running + "/$CE_ID; sleep 1; ls " + running + " | wc -l >> " + peaks + "; rm " +
                           running + "/$CE_ID; echo $CE_ID >> " + done,
                       4);
  ASSERT_TRUE(WaitUntil([&] { return Lines(done).size() >= 12; }, 60s)) << w->Log();
  int peak = 0;
  for (const auto& l : Lines(peaks)) peak = std::max(peak, std::stoi(l));
  EXPECT_GE(peak, 2) << "tasks overlap";
  EXPECT_LE(peak, 4) << "never more than --concurrency";
  auto lines = Lines(done);
  EXPECT_EQ(std::set<std::string>(lines.begin(), lines.end()), std::set<std::string>(ids.begin(), ids.end()));
  EXPECT_EQ(lines.size(), 12U);
  EXPECT_TRUE(WaitUntil([&] { return Lag() == 0; }, 20s)) << "every offset committed; lag " << Lag();
  w->Signal(SIGTERM);
  EXPECT_EQ(w->Wait(20s).value_or(-1), 0) << w->Log();
}

TEST_F(WorkerTest, GroupLagCountsAFreshGroupAndReachesZeroOnATransactionalTopic) {
  // Produce as the dispatcher does: in transactions, so every batch ends with a
  // commit marker that occupies an offset no consumer ever receives.
  auto p = kafka::NewProducer({{"bootstrap.servers", EnvVar("KAFKA_BOOTSTRAP")}, {"transactional.id", id_}});
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE(kafka::InitTransactions(p->get(), 30s).ok());
  for (int batch = 0; batch < 3; ++batch) {
    ASSERT_TRUE(kafka::BeginTransaction(p->get()).ok());
    dispatcher::TaskDefinition t;
    t.id = "uid-" + std::to_string(batch);
    t.ns = "ns";
    t.name = "t";
    t.payload_json = "{}";
    t.shards = 2;
    for (auto& m :
         dispatcher::BuildMessages(t, dispatcher::Instant{std::chrono::seconds{1800000000}}, 0s, id_ + ".tasks")) {
      ASSERT_TRUE(kafka::Produce(p->get(), m.topic, m.key, m.value, m.headers).ok());
    }
    ASSERT_TRUE(kafka::CommitTransaction(p->get(), 30s).ok());
  }
  // No committed offset yet: the whole log counts (what an earliest-reset consumer reads),
  // and the log holds 6 messages plus a marker per transaction and partition written.
  auto admin = kafka::NewConsumer(Base());
  auto fresh = kafka::GroupOffsets(admin->get(), id_, id_ + ".tasks");
  ASSERT_TRUE(fresh.ok()) << fresh.status().ToString();
  ASSERT_EQ(fresh->size(), 3U);
  for (const auto& pl : *fresh) EXPECT_EQ(pl.committed, -1);
  const int64_t total = op::Measure({}, {{id_ + ".tasks", *fresh}}, nullptr).lag;
  EXPECT_GT(total, 6) << "markers occupy offsets";
  auto w = StartWorker("true");
  EXPECT_TRUE(WaitUntil([&] { return Lag() == 0; }, 30s)) << "lag stuck at " << Lag() << "\n" << w->Log();
  auto missing = kafka::GroupOffsets(admin->get(), id_, id_ + ".no-such-topic");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound) << missing.status().ToString();
  w->Signal(SIGTERM);
  EXPECT_EQ(w->Wait(20s).value_or(-1), 0) << w->Log();
}

TEST_F(WorkerTest, AWorkerStepsOverTheMarkerThePreviousOwnerLeftUncommitted) {
  // A transaction with one task, then the group's offset left just before the commit
  // marker, as when the previous owner of the partition was scaled in after its last
  // message: the new owner receives no message, but must still bring the lag to 0.
  auto p = kafka::NewProducer({{"bootstrap.servers", EnvVar("KAFKA_BOOTSTRAP")}, {"transactional.id", id_}});
  ASSERT_TRUE(p.ok());
  ASSERT_TRUE(kafka::InitTransactions(p->get(), 30s).ok());
  ASSERT_TRUE(kafka::BeginTransaction(p->get()).ok());
  dispatcher::TaskDefinition t;
  t.id = "uid";
  t.ns = "ns";
  t.name = "t";
  for (auto& m :
       dispatcher::BuildMessages(t, dispatcher::Instant{std::chrono::seconds{1800000000}}, 0s, id_ + ".tasks")) {
    ASSERT_TRUE(kafka::Produce(p->get(), m.topic, m.key, m.value, m.headers).ok());
  }
  ASSERT_TRUE(kafka::CommitTransaction(p->get(), 30s).ok());
  {
    auto admin = kafka::NewConsumer(Base());
    auto lag = kafka::GroupOffsets(admin->get(), id_, id_ + ".tasks");
    ASSERT_TRUE(lag.ok());
    auto group = kafka::NewConsumer({{"bootstrap.servers", EnvVar("KAFKA_BOOTSTRAP")}, {"group.id", id_}});
    ASSERT_TRUE(group.ok());
    for (const auto& pl : *lag) {
      if (pl.high == 0) continue;
      ASSERT_EQ(pl.high, 2) << "one message and one marker";
      ASSERT_TRUE(kafka::CommitOffset(group->get(), id_ + ".tasks", pl.partition, 1).ok());
    }
    ASSERT_TRUE(kafka::CloseConsumer(group->get()).ok());
  }
  ASSERT_EQ(Lag(), 1) << "only the marker is left";
  auto w = StartWorker("true");
  EXPECT_TRUE(WaitUntil([&] { return Lag() == 0; }, 30s)) << "lag stuck at " << Lag() << "\n" << w->Log();
  w->Signal(SIGTERM);
  EXPECT_EQ(w->Wait(20s).value_or(-1), 0) << w->Log();
}

}  // namespace
}  // namespace cronlane::testing
