// Unit tests of the admission webhook's review (operator/admission.h): the
// AdmissionReview round trip, and that it refuses what the operator would refuse.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "operator/admission.h"

namespace cronlane::op {
namespace {

using kube::Json;
using ::testing::HasSubstr;

Json Review(const std::string& operation, const Json& object, const std::string& kind = "ScheduledTask") {
  return {{"apiVersion", "admission.k8s.io/v1"},
          {"kind", "AdmissionReview"},
          {"request",
           {{"uid", "u-1"},
            {"kind", {{"group", "cronlane.dev"}, {"version", "v1alpha1"}, {"kind", kind}}},
            {"operation", operation},
            {"name", "report"},
            {"namespace", "team"},
            {"object", object}}}};
}

Json Task(const std::string& schedule, const std::string& zone = "") {
  Json spec = {{"schedule", schedule}, {"target", {{"topic", "t"}}}};
  if (!zone.empty()) spec["timeZone"] = zone;
  return {{"apiVersion", "cronlane.dev/v1alpha1"},
          {"kind", "ScheduledTask"},
          {"metadata", {{"name", "report"}, {"namespace", "team"}, {"uid", "x"}}},
          {"spec", spec}};
}

TEST(Admission, AllowsAValidTaskAndEchoesTheUid) {
  auto r = ReviewAdmission(Review("CREATE", Task("0 9 * * *", "Europe/Berlin")));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)["apiVersion"], "admission.k8s.io/v1");
  EXPECT_EQ((*r)["kind"], "AdmissionReview");
  EXPECT_EQ((*r)["response"]["uid"], "u-1");
  EXPECT_EQ((*r)["response"]["allowed"], true);
}

TEST(Admission, RefusesWhatTheOperatorWouldNeverSchedule) {
  for (const auto& [task, field] :
       std::vector<std::pair<Json, std::string>>{{Task("0 0 30 2 *"), "spec.schedule: "},
                                                 {Task("61 * * * *"), "spec.schedule: "},
                                                 {Task("0 9 * * *", "Mars/Olympus_Mons"), "spec.timeZone: "}}) {
    for (const char* op : {"CREATE", "UPDATE"}) {
      auto r = ReviewAdmission(Review(op, task));
      ASSERT_TRUE(r.ok());
      EXPECT_EQ((*r)["response"]["allowed"], false) << task.dump();
      EXPECT_EQ((*r)["response"]["status"]["code"], 403);
      EXPECT_THAT((*r)["response"]["status"]["message"].get<std::string>(),
                  HasSubstr("ScheduledTask report would never be scheduled: " + field));
    }
  }
  // Deletes, other kinds and objects the schema would refuse anyway are allowed.
  EXPECT_EQ((*ReviewAdmission(Review("DELETE", Task("0 0 30 2 *"))))["response"]["allowed"], true);
  EXPECT_EQ((*ReviewAdmission(Review("CREATE", Task("0 0 30 2 *"), "WorkerPool")))["response"]["allowed"], true);
  EXPECT_EQ((*ReviewAdmission(Review("CREATE", Json{{"metadata", {{"name", "x"}}}})))["response"]["allowed"], true);
}

TEST(Admission, SomethingElseIsABadRequest) {
  EXPECT_EQ(ReviewAdmission(Json::object()).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(ReviewAdmission(Json{{"request", {{"operation", "CREATE"}}}}).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(ReviewAdmission(Json::parse("[1,2]")).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace cronlane::op
