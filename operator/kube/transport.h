#pragma once
// The HTTP seam between the Kubernetes client and the network. Production uses
// cpprestsdk (NewHttpTransport); unit tests inject a fake.

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/cancel.h"
#include "common/status.h"
#include "operator/kube/config.h"

namespace cronlane::kube {

struct HttpRequest {
  std::string method = "GET";
  std::string path;  // "/apis/cronlane.dev/v1alpha1/...?..." (already escaped)
  std::string body;
  std::string content_type;  // for bodies: application/json, application/merge-patch+json, ...
};

struct HttpResponse {
  int status = 0;
  std::string body;
};

class Transport {
 public:
  virtual ~Transport() = default;

  // Sends a request and reads the whole response. Any HTTP status is a successful
  // Send (the caller interprets it); connection, TLS and timeout failures return
  // Unavailable or DeadlineExceeded. Safe to call from several threads at once.
  virtual Result<HttpResponse> Send(const HttpRequest& req) = 0;

  // Sends a request whose response body is a stream of lines (a watch) and calls
  // `on_line` for each complete line as it arrives, until the server ends the
  // stream, `on_line` returns false, or `cancel` fires. Returns the HTTP status; for
  // a non-2xx status the body is read whole into `error_body` and no line is passed.
  virtual Result<int> Stream(const HttpRequest& req, const std::function<bool(std::string_view)>& on_line,
                             CancelToken& cancel, std::string* error_body) = 0;

  // Sends a request like Send, but passes the response body to `on_data` in pieces
  // as they arrive (a LIST of 100k objects is about 90 MB) until it ends or
  // `on_data` returns false. Returns the HTTP status; for a non-2xx status the body
  // is read whole into `error_body` and nothing is passed. Failures as Send's. This
  // default sends the request with Send and passes the body in one piece.
  virtual Result<int> StreamBody(const HttpRequest& req, const std::function<bool(std::string_view)>& on_data,
                                 std::string* error_body) {
    auto resp = Send(req);
    if (!resp.ok()) return resp.status();
    if (resp->status < 200 || resp->status >= 300) {
      if (error_body != nullptr) *error_body = std::move(resp->body);
      return resp->status;
    }
    on_data(resp->body);
    return resp->status;
  }
};

using TransportPtr = std::unique_ptr<Transport>;

struct HttpTransportOptions {
  int request_timeout_seconds = 30;
  int stream_timeout_seconds = 660;  // longer than any watch's server-side timeout
  std::string user_agent = "cronlane-operator";
};

// cpprestsdk over TLS with the config's CA, client certificate and bearer token (a
// token file is re-read at most once a minute, following rotation).
Result<TransportPtr> NewHttpTransport(const KubeConfig& config, const HttpTransportOptions& options = {});

}  // namespace cronlane::kube
