#pragma once
// The validating admission webhook: `kubectl apply` (and a GitOps sync) of a
// ScheduledTask the operator would refuse fails at once, with the message the
// operator would put in its Ready condition. Served by every replica (no leader
// needed) over HTTPS; the apiserver posts an AdmissionReview (admission.k8s.io/v1)
// and gets one back. The checks are the dispatcher's (dispatcher::TaskProblems, the
// ones `cronlane validate` runs): schedule syntax and "never fires", time zone,
// payload size, header names, bounds. What the CRD's schema and CEL rules check
// is not repeated. Pure functions: the HTTP side is common/http_server.h.

#include <optional>
#include <string>

#include "operator/kube/client.h"

namespace cronlane::op {

// The path the ValidatingWebhookConfiguration names (service path or URL).
inline constexpr const char* kValidateScheduledTaskPath = "/validate-cronlane-dev-v1alpha1-scheduledtask";

// Why a ScheduledTask (an API object) would be refused: "spec.schedule: ..." (every
// problem, "; "-separated), or nullopt when the operator would schedule it. An
// object that does not decode is left to the schema (nullopt).
std::optional<std::string> ScheduledTaskRefusal(const kube::Json& object);

// The AdmissionReview response to an AdmissionReview request: allowed unless the
// request creates or updates a ScheduledTask ScheduledTaskRefusal() refuses, with
// the request's uid. InvalidArgument when `review` is not an AdmissionReview
// request (no request.uid): the server answers 400.
Result<kube::Json> ReviewAdmission(const kube::Json& review);

}  // namespace cronlane::op
