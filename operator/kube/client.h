#pragma once
// A small Kubernetes REST client: JSON in and out, API errors mapped to Status,
// requests paced by a client-side rate limit (--kube-api-qps/--kube-api-burst).
// Thread-safe.

#include <nlohmann/json.hpp>

#include <functional>
#include <string>
#include <string_view>

#include "common/cancel.h"
#include "common/clock.h"
#include "common/rate_limiter.h"
#include "common/status.h"
#include "operator/kube/transport.h"

namespace cronlane::kube {

using Json = nlohmann::json;

enum class PatchType { kMerge, kJson, kStrategicMerge, kApply };

// A resource collection, e.g. {"cronlane.dev", "v1alpha1", "scheduledtasks"}.
struct ResourceRef {
  std::string group;  // "" for the core API
  std::string version;
  std::string plural;
  bool namespaced = true;

  // The collection path, "/apis/group/version/namespaces/ns/plural" (ns "" = all
  // namespaces), with "/name" and "/subresource" appended when given.
  std::string Path(std::string_view ns, std::string_view name = "", std::string_view subresource = "") const;
};

// Maps an HTTP status and a Kubernetes Status body to our Status: 404 NotFound,
// 409 AlreadyExists (create) or Aborted (conflict), 410 Expired, 401/403
// PermissionDenied, 400/422 InvalidArgument, 429/5xx Unavailable.
Status StatusFromHttp(int http_status, std::string_view body, std::string_view what);

class KubeClient {
 public:
  KubeClient(TransportPtr transport, Clock& clock, double qps, int burst);

  Result<Json> Get(const std::string& path);

  // What a LIST response says besides its items.
  struct ListMeta {
    std::string resource_version;
    std::string continue_token;  // "" on the last page
  };
  // GETs a collection and hands each item to `on_item` as it is decoded, one at a
  // time, while the response arrives (ListStream splits it into items): a
  // 100k-object response (about 90 MB) is never held whole, and only one item's
  // DOM exists at a time.
  Result<ListMeta> List(const std::string& path, const std::function<void(Json& item)>& on_item);
  Result<Json> Create(const std::string& path, const Json& body);
  Result<Json> Replace(const std::string& path, const Json& body);
  Result<Json> Patch(const std::string& path, const Json& body, PatchType type = PatchType::kMerge);
  // With `body` (DeleteOptions), e.g. {"preconditions": {"uid": ...}}: a
  // precondition that does not hold fails with the apiserver's 409 (Aborted).
  Status Delete(const std::string& path, const Json& body = nullptr);

  // Opens a watch (`path` must include watch=1 and the resourceVersion query) and
  // calls `on_event(type, object)` for each event until the server ends it,
  // on_event returns false, or `cancel` fires. A non-2xx answer (410 Gone above
  // all) comes back as its Status; so does an ERROR event in the stream.
  Status Watch(const std::string& path, const std::function<bool(std::string_view type, Json& object)>& on_event,
               CancelToken& cancel);

  // Requests sent, for metrics and tests.
  uint64_t requests() const { return requests_.load(); }

 private:
  // Paced by the rate limit and counted; a non-2xx answer becomes its Status.
  Result<HttpResponse> Send(const std::string& method, const std::string& path, const std::string& body,
                            const std::string& content_type);
  Result<Json> Do(const std::string& method, const std::string& path, const std::string& body,
                  const std::string& content_type);

  TransportPtr transport_;
  RateLimiter limiter_;
  std::atomic<uint64_t> requests_{0};
};

// Escapes a query parameter value.
std::string UrlEscape(std::string_view s);

}  // namespace cronlane::kube
