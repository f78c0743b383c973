#include "operator/admission.h"

#include "dispatcher/task.h"
#include "operator/scheduled_task.h"

namespace cronlane::op {

std::optional<std::string> ScheduledTaskRefusal(const kube::Json& object) {
  auto task = ScheduledTaskFromJson(object);
  if (!task || !task->def) return std::nullopt;
  auto problems = dispatcher::TaskProblems(*task->def);
  if (problems.empty()) return std::nullopt;
  std::string message;
  for (const auto& p : problems) message += (message.empty() ? "" : "; ") + p.field + ": " + p.detail;
  return message;
}

Result<kube::Json> ReviewAdmission(const kube::Json& review) {
  auto req = review.find("request");
  if (!review.is_object() || req == review.end() || !req->is_object()) {
    return InvalidArgument("not an AdmissionReview request: no request");
  }
  const std::string uid = JsonString(*req, "uid");
  if (uid.empty()) return InvalidArgument("not an AdmissionReview request: no request.uid");
  kube::Json response = {{"uid", uid}, {"allowed", true}};
  const std::string operation = JsonString(*req, "operation");
  std::string kind;
  if (auto k = req->find("kind"); k != req->end() && k->is_object()) kind = JsonString(*k, "kind");
  auto object = req->find("object");
  if (kind == "ScheduledTask" && (operation == "CREATE" || operation == "UPDATE") && object != req->end() &&
      object->is_object()) {
    if (auto refusal = ScheduledTaskRefusal(*object)) {
      std::string name = JsonString(*req, "name");
      if (name.empty()) {
        if (auto meta = object->find("metadata"); meta != object->end() && meta->is_object()) {
          name = JsonString(*meta, "name");
        }
      }
      response["allowed"] = false;
      response["status"] = {{"code", 403},
                            {"message", "ScheduledTask " + name + " would never be scheduled: " + *refusal}};
    }
  }
  return kube::Json{{"apiVersion", "admission.k8s.io/v1"}, {"kind", "AdmissionReview"}, {"response", response}};
}

}  // namespace cronlane::op
