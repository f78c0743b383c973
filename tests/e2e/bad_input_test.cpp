// Bad input through every door, end to end against the real apiserver and Kafka:
// ScheduledTasks at the CRD's size limits (a 253-character name, a payload of
// exactly 128 KiB, 32 headers of 4096 characters, non-ASCII text) fire intact and
// one byte over is refused with a condition; records on the results and checkpoint
// topics that cronlane did not write are skipped with a warning while the operator
// keeps firing; a task topic deleted under a running operator loses nothing.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <iostream>
#include <map>
#include <string>

#include "common/kafka.h"
#include "common/task_result.h"
#include "tests/support/operator_fixture.h"
#include "tests/support/process.h"
#include "tests/support/test_env.h"
#include "tests/support/topic_reader.h"

namespace cronlane::testing {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

class BadInputTest : public OperatorFixture {
 protected:
  BadInputTest() : OperatorFixture("bad") {}
  // The first message read from `reader` whose ce_subject is ns/name, if any.
  const kafka::Message* Find(TopicReader& reader, const std::string& name) {
    for (const auto& m : reader.messages()) {
      if (m.HeaderValue("ce_subject") == ns_ + "/" + name) return &m;
    }
    return nullptr;
  }
  std::string Jsonpath(const std::string& name, const std::string& path) {
    return KubectlGet("get st " + name + " -n " + ns_ + " -o jsonpath='" + path + "'");
  }
  kafka::HandlePtr Producer() {
    auto p = kafka::NewProducer({{"bootstrap.servers", EnvVar("KAFKA_BOOTSTRAP")}});
    EXPECT_TRUE(p.ok());
    return std::move(*p);
  }
};

TEST_F(BadInputTest, TasksAtTheSizeLimitsFireIntactAndOneByteOverIsRefused) {
  const std::string topic = ns_ + ".limits";
  TopicReader reader(topic);
  // A payload whose compact JSON is exactly 128 KiB (a JSON string: the quotes
  // count), with text outside ASCII in it.
  const std::string prefix = "héllo ✓ 日本 ";
  const std::string at_limit = prefix + std::string(128 * 1024 - 2 - prefix.size(), 'x');
  const std::string long_name(253, 'n');
  std::string yaml = "apiVersion: cronlane.dev/v1alpha1\nkind: ScheduledTask\nmetadata: {name: " + long_name +
                     "}\nspec:\n  schedule: \"* * * * * *\"\n  target: {topic: " + topic + "}\n  payload: \"" +
                     at_limit + "\"\n";
  // 32 headers (maxProperties) of 4096 characters (maxLength counts characters).
  std::map<std::string, std::string> headers;
  for (int i = 0; i < 32; ++i) {
    headers["x-h" + std::to_string(100 + i)] = std::string(10, 'a' + i % 26) + "é" + std::string(4085, 'v');
  }
  yaml +=
      "---\napiVersion: cronlane.dev/v1alpha1\nkind: ScheduledTask\nmetadata: {name: headers}\nspec:\n"
      "  schedule: \"* * * * * *\"\n  target:\n    topic: " +
      topic + "\n    key: \"clé/✓\"\n    headers:\n";
  for (const auto& [k, v] : headers) yaml += "      " + k + ": \"" + v + "\"\n";
  // One byte over: refused by the operator (the CRD cannot measure compact JSON),
  // with a condition and a Warning Event about a task whose name is as long as
  // names get.
  const std::string over(253, 'o');
  yaml += "---\napiVersion: cronlane.dev/v1alpha1\nkind: ScheduledTask\nmetadata: {name: " + over +
          "}\nspec:\n  schedule: \"* * * * * *\"\n  target: {topic: " + topic + "}\n  payload: \"" + at_limit + "x\"\n";
  std::string applied = Apply(yaml);
  ASSERT_THAT(applied, HasSubstr("headers created")) << applied;
  Process& op = StartOperator();

  ASSERT_TRUE(WaitUntil(
      [&] {
        reader.ReadFor(500ms);
        return Find(reader, long_name) != nullptr && Find(reader, "headers") != nullptr;
      },
      60s))
      << "both tasks at the limits fire";
  const kafka::Message& big = *Find(reader, long_name);
  EXPECT_EQ(big.value, "\"" + at_limit + "\"") << "the payload arrives byte for byte";
  EXPECT_EQ(big.key.value_or(""), ns_ + "/" + long_name);
  const kafka::Message& with_headers = *Find(reader, "headers");
  EXPECT_EQ(with_headers.key.value_or(""), "clé/✓");
  for (const auto& [k, v] : headers) EXPECT_EQ(with_headers.HeaderValue(k).value_or(""), v) << k;

  EXPECT_TRUE(WaitUntil(
      [&] { return Jsonpath(over, "{.status.conditions[?(@.type==\"Ready\")].reason}") == "PayloadTooLarge"; }, 30s))
      << Kubectl("get st " + over + " -n " + ns_ + " -o yaml").output;
  EXPECT_THAT(Jsonpath(over, "{.status.conditions[?(@.type==\"Ready\")].message}"),
              HasSubstr("is 131073 bytes as JSON, over the limit of 131072"));
  EXPECT_EQ(Find(reader, over), nullptr) << "the task over the limit never fires";
  // The Event's own name is made from the task's and must stay within 253 too.
  EXPECT_TRUE(WaitUntil(
      [&] {
        return Kubectl("get events -n " + ns_ + " --field-selector involvedObject.name=" + over + " -o name")
                   .output.find("event") != std::string::npos;
      },
      30s))
      << "a Warning Event about the refused task";
  EXPECT_THAT(op.Log(), ::testing::Not(HasSubstr("recording event")));
  EXPECT_TRUE(op.Running());
}

TEST_F(BadInputTest, GarbageOnTheResultsAndCheckpointTopicsIsSkippedWithAWarning) {
  const std::string topic = ns_ + ".garbage";
  const std::string results = ns_ + ".results";
  TopicReader reader(topic);
  Apply(
      "apiVersion: cronlane.dev/v1alpha1\nkind: ScheduledTask\nmetadata: {name: g}\nspec:\n"
      "  schedule: \"* * * * * *\"\n  catchUpPolicy: All\n  target: {topic: " +
      topic + "}\n");
  Process* op = &StartOperator({"--results-topic=" + results});
  ASSERT_TRUE(reader.ReadUntil(3, 30s)) << "fires";
  const kafka::Message& fired = reader.messages().front();

  // Results: records no worker writes, then a real one.
  auto producer = Producer();
  for (const char* garbage :
       {"not json", R"({"id":"x"})", R"({"id":"a","subject":"s","time":"t","outcome":"Succeeded","shardIndex":5})",
        R"({"id":"a","subject":"s","time":"yesterday","outcome":"Succeeded"})"}) {
    ASSERT_TRUE(kafka::ProduceAndWait(producer.get(), results, "k", garbage, {}, 10s).ok());
  }
  TaskResult r{std::string(fired.HeaderValue("ce_id").value_or("")),
               std::string(fired.HeaderValue("ce_subject").value_or("")),
               std::string(fired.HeaderValue("ce_time").value_or("")),
               RunOutcome::kSucceeded,
               1,
               5,
               0,
               1};
  ASSERT_TRUE(kafka::ProduceAndWait(producer.get(), results, r.subject, EncodeTaskResult(r), {}, 10s).ok());
  EXPECT_TRUE(WaitUntil([&] { return !Jsonpath("g", "{.status.lastSuccessfulTime}").empty(); }, 30s))
      << "the real result after the garbage is used";
  EXPECT_THAT(op->Log(), HasSubstr("skipped (1 such record(s) since the last warning)"));
  EXPECT_THAT(op->Log(), HasSubstr("result record is not a JSON object; skipped"));

  // Checkpoints: a value that is not a number (skipped: the task's real checkpoint
  // stays; a record without a key the compacted topic refuses itself), then, after a restart, one ten years ahead
  // (ignored: the task fires from now instead of stopping for ten years).
  const std::string uid = Kubectl("get st g -n " + ns_ + " -o jsonpath='{.metadata.uid}'").output;
  const std::string checkpoints = ns_ + ".checkpoints";
  ASSERT_TRUE(kafka::ProduceAndWait(producer.get(), checkpoints, uid, "garbage", {}, 10s).ok());
  op->Signal(SIGTERM);
  ASSERT_EQ(op->Wait(20s).value_or(-1), 0);
  const size_t before_restart = reader.ReadFor(1s).size();
  op = &StartOperator({"--results-topic=" + results});
  ASSERT_TRUE(reader.ReadUntil(before_restart + 3, 30s)) << "fires after the restart";
  EXPECT_THAT(op->Log(), HasSubstr("not a checkpoint"));
  op->Signal(SIGTERM);
  ASSERT_EQ(op->Wait(20s).value_or(-1), 0);
  reader.ReadFor(1s);
  auto [total, missing, dups] = Audit(reader.messages());
  EXPECT_EQ(missing, 0U) << "garbage next to a checkpoint does not replace it";
  EXPECT_EQ(dups, 0U);

  const int64_t ten_years = std::chrono::duration_cast<std::chrono::seconds>(
                                std::chrono::system_clock::now().time_since_epoch() + std::chrono::hours(24 * 3650))
                                .count();
  ASSERT_TRUE(kafka::ProduceAndWait(producer.get(), checkpoints, uid, std::to_string(ten_years), {}, 10s).ok());
  const size_t before_second = reader.ReadFor(1s).size();
  op = &StartOperator({"--results-topic=" + results});
  EXPECT_TRUE(reader.ReadUntil(before_second + 3, 30s)) << "a checkpoint ten years ahead does not stop the task";
  EXPECT_THAT(op->Log(), HasSubstr("is later than now: ignored"));
  EXPECT_TRUE(op->Running());
}

TEST_F(BadInputTest, ATaskTopicDeletedUnderARunningOperatorHoldsBackOnlyItsTask) {
  // Two tasks on two topics; one topic is deleted while they fire, and the
  // operator may not create it again (--create-topics=false, as where topics are
  // provisioned by hand). One transaction carries both tasks: the first one after
  // the deletion fails when its message for the deleted topic times out (the
  // transaction timeout, 10 s); after that the deleted topic's occurrences wait
  // aside and the other task fires on time again, nothing lost or repeated.
  const std::string kept = ns_ + ".kept", deleted = ns_ + ".deleted";
  TopicReader kept_reader(kept);
  Apply(
      "apiVersion: cronlane.dev/v1alpha1\nkind: ScheduledTask\nmetadata: {name: kept}\nspec:\n"
      "  schedule: \"* * * * * *\"\n  catchUpPolicy: All\n  target: {topic: " +
      kept +
      "}\n---\napiVersion: cronlane.dev/v1alpha1\nkind: ScheduledTask\nmetadata: {name: gone}\nspec:\n"
      "  schedule: \"* * * * * *\"\n  catchUpPolicy: All\n  target: {topic: " +
      deleted + "}\n");
  Process& op = StartOperator({"--create-topics=false"});
  ASSERT_TRUE(kept_reader.ReadUntil(3, 30s));
  {
    // Closed before its topic goes: librdkafka's destroy of a consumer assigned
    // to partitions of a deleted topic can wait for ever.
    TopicReader deleted_reader(deleted);
    ASSERT_TRUE(deleted_reader.ReadUntil(3, 30s));
  }
  DeleteTopic(deleted);
  const int64_t deleted_at =
      std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
  kept_reader.ReadFor(30s);
  size_t on_time = 0;
  for (const auto& m : kept_reader.messages()) {
    const int64_t t = ScheduledUnix(m);
    if (t > deleted_at + 20 && t <= deleted_at + 28 && m.timestamp_ms - t * 1000 < 2000) ++on_time;
  }
  EXPECT_GE(on_time, 7U) << "from 20 s after the deletion, the other task fires on time again";
  EXPECT_THAT(op.Log(), HasSubstr("do not exist (and could not be created)"));
  EXPECT_TRUE(op.Running());
  op.Signal(SIGTERM);
  EXPECT_EQ(op.Wait(30s).value_or(-1), 0) << "stops cleanly with a topic missing";
  auto [total, missing, dups] = Audit(kept_reader.ReadFor(1s));
  EXPECT_EQ(missing, 0U);
  EXPECT_EQ(dups, 0U);
  std::cout << "task topic deleted: the other task fired " << on_time << " of 8 occurrences on time 20-28 s after; "
            << total << " occurrences, " << missing << " missing, " << dups << " duplicated\n";
}

}  // namespace
}  // namespace cronlane::testing
