#include "common/cloudevent.h"
#include "common/task_result.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace cronlane {
namespace {

kafka::Message Msg(std::vector<kafka::Header> headers) {
  kafka::Message m;
  m.key = "ns/t";
  m.value = R"({"a":1})";
  m.headers = std::move(headers);
  return m;
}

TEST(CloudEvent, DecodesWhatTheDispatcherWrites) {
  auto t = DecodeFiredTask(Msg({{"ce_specversion", "1.0"},
                                {"ce_id", "uid:1800000000:2"},
                                {"ce_source", "/apis/cronlane.dev/v1alpha1/namespaces/ns/scheduledtasks/t"},
                                {"ce_type", "dev.cronlane.task.fired"},
                                {"ce_time", "2027-01-15T08:00:00Z"},
                                {"ce_subject", "ns/t"},
                                {"ce_shardindex", "2"},
                                {"ce_shardcount", "4"},
                                {"ce_maxattempts", "3"},
                                {"ce_backoffseconds", "7"},
                                {"team", "x"}}));
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->id, "uid:1800000000:2");
  EXPECT_EQ(t->source, "/apis/cronlane.dev/v1alpha1/namespaces/ns/scheduledtasks/t");
  EXPECT_EQ(t->type, "dev.cronlane.task.fired");
  EXPECT_EQ(t->time, "2027-01-15T08:00:00Z");
  EXPECT_EQ(t->TaskId(), "uid");
  EXPECT_EQ(t->subject, "ns/t");
  EXPECT_EQ(t->shard_index, 2);
  EXPECT_EQ(t->shard_count, 4);
  EXPECT_EQ(t->max_attempts, 3);
  EXPECT_EQ(t->backoff_seconds, 7);
  EXPECT_EQ(t->timeout_seconds, 0);
  EXPECT_EQ(t->payload, R"({"a":1})");
  EXPECT_EQ(t->key, "ns/t");
  EXPECT_EQ(t->Header("team"), "x");
  EXPECT_EQ(t->headers.size(), 11u) << "every header, in order";
  EXPECT_EQ(t->headers.back().name, "team");
  EXPECT_EQ(t->Header("absent"), std::nullopt);
}

// A header repeated: the first of the name is the attribute, and every header is kept.
TEST(CloudEvent, TheFirstHeaderOfANameCounts) {
  auto t = DecodeFiredTask(
      Msg({{"ce_specversion", "1.0"}, {"ce_id", "first"}, {"ce_source", "s"}, {"ce_type", "t"}, {"ce_id", "second"}}));
  ASSERT_TRUE(t.ok()) << t.status().ToString();
  EXPECT_EQ(t->id, "first");
  EXPECT_EQ(t->headers.size(), 5u);
}

// The worker's path takes the message's value and headers; a message that is not
// a fired task keeps them (its dead letter is the message as it came).
TEST(CloudEvent, TakeFiredTaskTakesTheMessageOnlyWhenItIsAFiredTask) {
  kafka::Message good = Msg({{"ce_specversion", "1.0"}, {"ce_id", "a"}, {"ce_source", "s"}, {"ce_type", "t"}});
  good.value = std::string(1000, 'p');
  const kafka::Message copy = good;
  auto t = TakeFiredTask(good);
  ASSERT_TRUE(t.ok());
  auto same = DecodeFiredTask(copy);
  ASSERT_TRUE(same.ok());
  EXPECT_EQ(t->payload, same->payload);
  EXPECT_EQ(t->headers.size(), same->headers.size());
  EXPECT_EQ(t->id, "a");

  kafka::Message bad =
      Msg({{"ce_specversion", "1.0"}, {"ce_id", "a"}, {"ce_source", "s"}, {"ce_type", "t"}, {"ce_maxattempts", "x"}});
  bad.value = "payload";
  ASSERT_FALSE(TakeFiredTask(bad).ok());
  EXPECT_EQ(bad.value, "payload") << "left as it was";
  EXPECT_EQ(bad.headers.size(), 5u);
}

TEST(CloudEvent, RefusesIncompleteOrMalformedEvents) {
  EXPECT_FALSE(DecodeFiredTask(Msg({})).ok());
  EXPECT_FALSE(
      DecodeFiredTask(Msg({{"ce_specversion", "0.3"}, {"ce_id", "a"}, {"ce_source", "s"}, {"ce_type", "t"}})).ok());
  EXPECT_FALSE(DecodeFiredTask(Msg({{"ce_specversion", "1.0"}, {"ce_source", "s"}, {"ce_type", "t"}})).ok());
  auto bad = DecodeFiredTask(
      Msg({{"ce_specversion", "1.0"}, {"ce_id", "a"}, {"ce_source", "s"}, {"ce_type", "t"}, {"ce_maxattempts", "x"}}));
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(bad.status().message(), "ce_maxattempts is not a number: x");
}

TEST(CloudEvent, RefusesShardsOutsideTheCountAndNegativeTimes) {
  auto with = [](std::vector<kafka::Header> extra) {
    std::vector<kafka::Header> h = {{"ce_specversion", "1.0"}, {"ce_id", "a"}, {"ce_source", "s"}, {"ce_type", "t"}};
    h.insert(h.end(), extra.begin(), extra.end());
    return DecodeFiredTask(Msg(h));
  };
  EXPECT_EQ(with({{"ce_shardindex", "3"}, {"ce_shardcount", "2"}}).status().message(),
            "ce_shardindex 3 is not a shard of ce_shardcount 2");
  EXPECT_FALSE(with({{"ce_shardcount", "0"}}).ok());
  EXPECT_FALSE(with({{"ce_shardindex", "-1"}}).ok());
  EXPECT_EQ(with({{"ce_backoffseconds", "-5"}}).status().message(), "ce_backoffseconds is negative");
  EXPECT_EQ(with({{"ce_timeoutseconds", "-1"}}).status().message(), "ce_timeoutseconds is negative");
  EXPECT_TRUE(with({{"ce_shardindex", "1"}, {"ce_shardcount", "2"}}).ok());
}

TEST(TaskResult, RoundTrips) {
  TaskResult r{"uid:1:0", "ns/t", "2027-01-15T08:00:00Z", RunOutcome::kSucceeded, 2, 1500, 1, 4};
  auto back = DecodeTaskResult(EncodeTaskResult(r));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->id, r.id);
  EXPECT_TRUE(back->succeeded());
  EXPECT_EQ(back->attempts, 2);
  EXPECT_EQ(back->duration_ms, 1500);
  EXPECT_EQ(back->shard_index, 1);
  EXPECT_EQ(back->shard_count, 4);
  EXPECT_FALSE(back->dead_lettered);
}

// Slice 6 of the task lifecycle: Cancelled and deadLettered travel; records written
// before them (no deadLettered) still decode, and an outcome this reader does not
// know counts as Failed.
TEST(TaskResult, CancelledAndDeadLetteredRoundTripAndOldRecordsDecode) {
  TaskResult cancelled{"u:1", "ns/t", "t", RunOutcome::kCancelled, 1, 20, 0, 1};
  auto back = DecodeTaskResult(EncodeTaskResult(cancelled));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->outcome, RunOutcome::kCancelled);
  EXPECT_EQ(EncodeTaskResult(cancelled).find("deadLettered"), std::string::npos) << "written only when true";

  TaskResult dead{"u:2", "ns/t", "t", RunOutcome::kFailed, 3, 20, 0, 1};
  dead.dead_lettered = true;
  back = DecodeTaskResult(EncodeTaskResult(dead));
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->outcome, RunOutcome::kFailed);
  EXPECT_TRUE(back->dead_lettered);

  back = DecodeTaskResult(R"({"id":"u:3","subject":"s","time":"t","outcome":"Succeeded","attempts":1})");
  ASSERT_TRUE(back.ok());
  EXPECT_TRUE(back->succeeded());
  EXPECT_FALSE(back->dead_lettered);
  back = DecodeTaskResult(R"({"id":"u:4","subject":"s","time":"t","outcome":"Exploded"})");
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->outcome, RunOutcome::kFailed);
  EXPECT_EQ(DecodeTaskResult(R"({"id":"u:5","subject":"s","time":"t","outcome":"Failed","deadLettered":"yes"})")
                .status()
                .message(),
            "result record's \"deadLettered\" is not a boolean");
}

// Found by tests/fuzz/cloudevent_fuzz.cpp: an event's id and subject are Kafka
// header bytes; encoding its result threw (and ended the worker) on invalid UTF-8.
TEST(TaskResult, EncodesAttributesThatAreNotUtf8) {
  TaskResult r{"\xff\xfe", "ns/\xc3", "t", RunOutcome::kFailed, 1, 0, 0, 1};
  std::string json;
  ASSERT_NO_THROW(json = EncodeTaskResult(r));
  auto back = DecodeTaskResult(json);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->id, "\xEF\xBF\xBD\xEF\xBF\xBD") << "each invalid byte becomes U+FFFD";
}

// EncodeTaskResult writes the record field by field; its bytes are the ones a
// nlohmann object gives (sorted keys, escaping, U+FFFD for invalid UTF-8), so
// readers see no change.
TEST(TaskResult, EncodesTheSameBytesAsAJsonObject) {
  auto oracle = [](const TaskResult& r) {
    nlohmann::json j = {{"id", r.id},
                        {"subject", r.subject},
                        {"time", r.time},
                        {"outcome", RunOutcomeName(r.outcome)},
                        {"attempts", r.attempts},
                        {"durationMs", r.duration_ms},
                        {"shardIndex", r.shard_index},
                        {"shardCount", r.shard_count}};
    if (r.dead_lettered) j["deadLettered"] = true;
    return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  };
  std::vector<TaskResult> cases = {
      {"uid:1:0", "ns/t", "2027-01-15T08:00:00Z", RunOutcome::kSucceeded, 2, 1500, 1, 4},
      {"", "", "", RunOutcome::kCancelled, 0, 0, 0, 1},
      {"q\"uote", "back\\slash", "tab\there", RunOutcome::kFailed, 3, -7, 0, 1},
      {"ctl\x01\x1f\x7f", "ns/n\xc3\xa9", "\xff\xfe", RunOutcome::kFailed, 2147483647, INT64_MAX, 7, 8},
      {"line\nbreak", "\xe2\x82",
       "a\xf0\x9f\x98\x80"
       "b",
       RunOutcome::kSucceeded, 1, INT64_MIN, 0, 1},
  };
  cases[2].dead_lettered = true;
  for (const auto& r : cases) EXPECT_EQ(EncodeTaskResult(r), oracle(r)) << r.id;
}

// Found by tests/fuzz/task_result_fuzz.cpp: numbers outside what a worker writes
// were accepted (a shard past the count) or wrapped into an int.
TEST(TaskResult, RefusesNumbersOutOfRange) {
  auto decode = [](const std::string& extra) {
    return DecodeTaskResult(R"({"id":"a","subject":"s","time":"t","outcome":"Failed")" + extra + "}");
  };
  EXPECT_TRUE(decode("").ok());
  EXPECT_EQ(decode(R"(,"shardIndex":1,"shardCount":1)").status().message(),
            "result record's shardIndex 1 is not a shard of shardCount 1");
  EXPECT_FALSE(decode(R"(,"shardCount":4294967296)").ok()) << "was shard count 0 after the cast to int";
  EXPECT_FALSE(decode(R"(,"shardCount":0)").ok());
  EXPECT_FALSE(decode(R"(,"attempts":-1)").ok());
  EXPECT_FALSE(decode(R"(,"durationMs":18446744073709551615)").ok()) << "was -1";
  EXPECT_EQ(decode(R"(,"attempts":"2")").status().message(),
            "result record's \"attempts\" is not an integer in 0..2147483647");
}

}  // namespace
}  // namespace cronlane
