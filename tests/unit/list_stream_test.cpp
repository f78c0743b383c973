// ListStream (operator/kube/list_stream.h): a LIST response split into its items
// however the body is cut into pieces, strings holding braces, brackets, quotes and
// escapes, the metadata before or after the items, and every malformed shape
// refused with an error rather than a wrong item.
#include "operator/kube/list_stream.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <string>
#include <vector>

namespace cronlane::kube {
namespace {

struct Split {
  std::vector<std::string> items;
  std::vector<std::string> metadata;
  Status status;
};

// Feeds `body` cut at `cuts` (positions, ascending), then Finish.
Split FeedAll(const std::string& body, const std::vector<size_t>& cuts) {
  Split out;
  ListStream stream(
      [&](std::string_view item) {
        out.items.emplace_back(item);
        return Status::Ok();
      },
      [&](std::string_view m) {
        out.metadata.emplace_back(m);
        return Status::Ok();
      });
  size_t at = 0;
  std::vector<size_t> ends = cuts;
  ends.push_back(body.size());
  for (size_t end : ends) {
    out.status = stream.Feed(std::string_view(body).substr(at, end - at));
    if (!out.status.ok()) return out;
    at = end;
  }
  out.status = stream.Finish();
  return out;
}

const std::string kTricky = R"({"a":"}{][\"\\","b":[{"c":"]"},[[]]],"d":{"e":"\u00e9 \\\" {"}})";
const std::string kList = std::string(R"({"apiVersion":"cronlane.dev/v1alpha1","items":[)") + kTricky +
                          R"(, {"x": 1} ,{"y":{"z":[1,2,{"w":"\\"}]}}],"kind":"ScheduledTaskList",)" +
                          R"("metadata":{"continue":"","resourceVersion":"42"}})" + "\n";

TEST(ListStream, SplitsItemsAndMetadataWhereverTheBodyIsCut) {
  const Split whole = FeedAll(kList, {});
  ASSERT_TRUE(whole.status.ok()) << whole.status.ToString();
  ASSERT_EQ(whole.items.size(), 3U);
  EXPECT_EQ(whole.items[0], kTricky);
  EXPECT_EQ(nlohmann::json::parse(whole.items[0])["a"], "}{][\"\\");
  EXPECT_EQ(whole.items[1], R"({"x": 1})");
  EXPECT_EQ(whole.items[2], R"({"y":{"z":[1,2,{"w":"\\"}]}})");
  ASSERT_EQ(whole.metadata.size(), 1U);
  EXPECT_EQ(nlohmann::json::parse(whole.metadata[0])["resourceVersion"], "42");
  for (size_t cut = 1; cut < kList.size(); ++cut) {
    const Split two = FeedAll(kList, {cut});
    ASSERT_TRUE(two.status.ok()) << "cut at " << cut << ": " << two.status.ToString();
    EXPECT_EQ(two.items, whole.items) << "cut at " << cut;
    EXPECT_EQ(two.metadata, whole.metadata) << "cut at " << cut;
  }
  std::vector<size_t> every;
  for (size_t i = 1; i < kList.size(); ++i) every.push_back(i);
  const Split bytes = FeedAll(kList, every);
  ASSERT_TRUE(bytes.status.ok()) << bytes.status.ToString();
  EXPECT_EQ(bytes.items, whole.items);
  EXPECT_EQ(bytes.metadata, whole.metadata);
}

TEST(ListStream, MetadataFirstNullOrEmptyItemsAndOtherKeys) {
  Split s = FeedAll(R"({"metadata":{"resourceVersion":"7"},"items":null,"other":{"items":[{"not":"an item"}]}})", {});
  ASSERT_TRUE(s.status.ok()) << s.status.ToString();
  EXPECT_TRUE(s.items.empty());
  ASSERT_EQ(s.metadata.size(), 1U);
  s = FeedAll(R"( { "items" : [ ] , "metadata" : { } } )", {});
  ASSERT_TRUE(s.status.ok()) << s.status.ToString();
  EXPECT_TRUE(s.items.empty());
  EXPECT_EQ(s.metadata, std::vector<std::string>{"{ }"});
}

TEST(ListStream, RefusesWhatIsNotAList) {
  for (const char* body : {R"([{"a":1}])", R"({"items":[1]})", R"({"items":["x"]})", R"({"items":"x"})",
                           R"({"items":[{"a":1}]} {})", R"({"items":[{"a":1})", R"({"items":[{"a":"})", "", "{"}) {
    const Split s = FeedAll(body, {});
    EXPECT_FALSE(s.status.ok()) << "accepted: " << body;
    EXPECT_EQ(s.status.code(), StatusCode::kInvalidArgument) << body;
  }
}

TEST(ListStream, AHandlersErrorEndsTheStream) {
  int seen = 0;
  ListStream stream(
      [&](std::string_view) {
        ++seen;
        return Internal("malformed item");
      },
      [](std::string_view) { return Status::Ok(); });
  Status s = stream.Feed(R"({"items":[{"a":1},{"b":2}]})");
  EXPECT_EQ(s.code(), StatusCode::kInternal);
  EXPECT_EQ(seen, 1);
}

}  // namespace
}  // namespace cronlane::kube
