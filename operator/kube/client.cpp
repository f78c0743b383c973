#include "operator/kube/client.h"

#include <cstdio>

#include "operator/kube/list_stream.h"

namespace cronlane::kube {

std::string ResourceRef::Path(std::string_view ns, std::string_view name, std::string_view subresource) const {
  std::string p = group.empty() ? "/api/" + version : "/apis/" + group + "/" + version;
  if (namespaced && !ns.empty()) p += "/namespaces/" + std::string(ns);
  p += "/" + plural;
  if (!name.empty()) p += "/" + std::string(name);
  if (!subresource.empty()) p += "/" + std::string(subresource);
  return p;
}

std::string UrlEscape(std::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

Status StatusFromHttp(int code, std::string_view body, std::string_view what) {
  std::string message;
  std::string reason;
  Json j = Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_object()) {
    message = j.value("message", "");
    reason = j.value("reason", "");
  }
  if (message.empty()) message = std::string(body.substr(0, 300));
  std::string m = std::string(what) + ": HTTP " + std::to_string(code) + (reason.empty() ? "" : " " + reason) +
                  (message.empty() ? "" : ": " + message);
  switch (code) {
    case 404:
      return NotFound(m);
    case 409:
      return reason == "AlreadyExists" ? AlreadyExists(m) : Aborted(m);
    case 410:
      return Expired(m);
    case 401:
    case 403:
      return PermissionDenied(m);
    case 400:
    case 422:
      return InvalidArgument(m);
    default:
      return Unavailable(m);
  }
}

KubeClient::KubeClient(TransportPtr transport, Clock& clock, double qps, int burst)
    : transport_(std::move(transport)), limiter_(clock, qps, burst) {}

Result<HttpResponse> KubeClient::Send(const std::string& method, const std::string& path, const std::string& body,
                                      const std::string& content_type) {
  limiter_.Acquire();
  ++requests_;
  auto resp = transport_->Send({method, path, body, content_type});
  if (!resp.ok()) return resp.status();
  if (resp->status < 200 || resp->status >= 300) return StatusFromHttp(resp->status, resp->body, method + " " + path);
  return resp;
}

Result<Json> KubeClient::Do(const std::string& method, const std::string& path, const std::string& body,
                            const std::string& content_type) {
  auto resp = Send(method, path, body, content_type);
  if (!resp.ok()) return resp.status();
  if (resp->body.empty()) return Json::object();
  Json j = Json::parse(resp->body, nullptr, false);
  if (j.is_discarded()) return Internal(method + " " + path + ": response is not JSON");
  return j;
}

Result<Json> KubeClient::Get(const std::string& path) {
  return Do("GET", path, "", "");
}

Result<KubeClient::ListMeta> KubeClient::List(const std::string& path, const std::function<void(Json& item)>& on_item) {
  // The body is split into items as it arrives and each is parsed alone, so a
  // large list is never held whole (ListStream).
  limiter_.Acquire();
  ++requests_;
  const auto bad = [&](const std::string& what) { return Internal("GET " + path + ": " + what); };
  ListMeta meta;
  ListStream stream(
      [&](std::string_view raw) {
        Json j = Json::parse(raw, nullptr, /*allow_exceptions=*/false);
        if (j.is_discarded()) return Internal("malformed item");
        on_item(j);
        return Status::Ok();
      },
      [&](std::string_view raw) {
        Json m = Json::parse(raw, nullptr, /*allow_exceptions=*/false);
        if (!m.is_object()) return Internal("malformed metadata");
        for (const char* key : {"resourceVersion", "continue"}) {
          auto it = m.find(key);
          if (it == m.end() || !it->is_string()) continue;
          (std::string_view(key) == "continue" ? meta.continue_token : meta.resource_version) = it->get<std::string>();
        }
        return Status::Ok();
      });
  Status failed;
  std::string error_body;
  auto status = transport_->StreamBody(
      {"GET", path, "", ""},
      [&](std::string_view piece) {
        failed = stream.Feed(piece);
        return failed.ok();
      },
      &error_body);
  if (!status.ok()) return status.status();
  if (*status < 200 || *status >= 300) return StatusFromHttp(*status, error_body, "GET " + path);
  if (!failed.ok()) return bad(failed.message());
  if (Status s = stream.Finish(); !s.ok()) return bad(s.message());
  return meta;
}

Result<Json> KubeClient::Create(const std::string& path, const Json& body) {
  return Do("POST", path, body.dump(), "application/json");
}

Result<Json> KubeClient::Replace(const std::string& path, const Json& body) {
  return Do("PUT", path, body.dump(), "application/json");
}

Result<Json> KubeClient::Patch(const std::string& path, const Json& body, PatchType type) {
  const char* ct = "application/merge-patch+json";
  if (type == PatchType::kJson) ct = "application/json-patch+json";
  if (type == PatchType::kStrategicMerge) ct = "application/strategic-merge-patch+json";
  if (type == PatchType::kApply) ct = "application/apply-patch+yaml";
  return Do("PATCH", path, body.dump(), ct);
}

Status KubeClient::Delete(const std::string& path, const Json& body) {
  auto r = body.is_null() ? Do("DELETE", path, "", "") : Do("DELETE", path, body.dump(), "application/json");
  return r.ok() ? Status::Ok() : r.status();
}

Status KubeClient::Watch(const std::string& path,
                         const std::function<bool(std::string_view type, Json& object)>& on_event,
                         CancelToken& cancel) {
  limiter_.Acquire();
  ++requests_;
  Status stream_error;
  std::string error_body;
  auto status = transport_->Stream(
      {"GET", path, "", ""},
      [&](std::string_view line) {
        if (line.empty() || line == "\n") return true;
        Json ev = Json::parse(line, nullptr, false);
        if (!ev.is_object() || !ev.contains("type")) {
          stream_error = Internal("watch " + path + ": undecodable event");
          return false;
        }
        std::string type = ev["type"].get<std::string>();
        if (type == "ERROR") {
          const Json& obj = ev["object"];
          int code = obj.is_object() ? obj.value("code", 500) : 500;
          stream_error = StatusFromHttp(code, obj.dump(), "watch " + path.substr(0, path.find('?')));
          return false;
        }
        return on_event(type, ev["object"]);
      },
      cancel, &error_body);
  if (!status.ok()) return status.status();
  if (*status < 200 || *status >= 300)
    return StatusFromHttp(*status, error_body, "watch " + path.substr(0, path.find('?')));
  return stream_error;
}

}  // namespace cronlane::kube
