#include "common/cloudevent.h"

#include <gtest/gtest.h>

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
  EXPECT_EQ(t->subject, "ns/t");
  EXPECT_EQ(t->shard_index, 2);
  EXPECT_EQ(t->shard_count, 4);
  EXPECT_EQ(t->max_attempts, 3);
  EXPECT_EQ(t->backoff_seconds, 7);
  EXPECT_EQ(t->timeout_seconds, 0);
  EXPECT_EQ(t->payload, R"({"a":1})");
  EXPECT_EQ(t->key, "ns/t");
  EXPECT_EQ(t->headers.at("team"), "x");
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

}  // namespace
}  // namespace cronlane
