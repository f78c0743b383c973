// cpprestsdk's U() macro breaks fmt/spdlog: keep it off before any cpprest include.
#define _TURN_OFF_PLATFORM_STRING  // NOLINT(bugprone-reserved-identifier): cpprestsdk's switch
#include <cpprest/containerstream.h>
#include <cpprest/http_client.h>
#include <cpprest/producerconsumerstream.h>
#include <cpprest/rawptrstream.h>

#include <boost/asio/ssl.hpp>
#include <chrono>

#include "operator/kube/token_source.h"
#include "operator/kube/transport.h"

namespace cronlane::kube {
namespace {

namespace http = web::http;
namespace client = web::http::client;

class HttpTransport final : public Transport {
 public:
  HttpTransport(const KubeConfig& cfg, const HttpTransportOptions& opts)
      : tokens_(cfg.token, cfg.token_file),
        client_(cfg.server, MakeConfig(cfg, opts.request_timeout_seconds)),
        stream_client_(cfg.server, MakeConfig(cfg, opts.stream_timeout_seconds)),
        user_agent_(opts.user_agent) {}

  Result<HttpResponse> Send(const HttpRequest& req) override {
    try {
      // The body goes straight into the string returned (a 100k-object LIST is
      // about 90 MB): no second copy in cpprest's own buffer.
      concurrency::streams::stringstreambuf body;
      http::http_request msg = MakeMessage(req);
      msg.set_response_stream(concurrency::streams::ostream(body));
      http::http_response resp = client_.request(msg).get();
      resp.content_ready().get();
      HttpResponse out;
      out.status = resp.status_code();
      out.body = std::move(body.collection());
      return out;
    } catch (const http::http_exception& e) {
      return Unavailable(req.method + " " + PathOnly(req.path) + ": " + e.what());
    } catch (const std::exception& e) {
      return Unavailable(req.method + " " + PathOnly(req.path) + ": " + e.what());
    }
  }

  Result<int> StreamBody(const HttpRequest& req, const std::function<bool(std::string_view)>& on_data,
                         std::string* error_body) override {
    try {
      http::http_response resp = client_.request(MakeMessage(req)).get();
      if (!Succeeded(resp, error_body)) return resp.status_code();
      // One buffer for every piece: each read writes into it from its start.
      std::string storage(size_t{256} * 1024, '\0');
      auto body = resp.body();
      while (true) {
        concurrency::streams::rawptr_buffer<char> piece(storage.data(), storage.size(), std::ios::out);
        size_t n = body.read(piece, storage.size()).get();
        if (n == 0) break;  // the end of the body
        if (!on_data(std::string_view(storage.data(), n))) break;
      }
      return resp.status_code();
    } catch (const std::exception& e) {
      return Unavailable(req.method + " " + PathOnly(req.path) + ": " + e.what());
    }
  }

  Result<int> Stream(const HttpRequest& req, const std::function<bool(std::string_view)>& on_line, CancelToken& cancel,
                     std::string* error_body) override {
    pplx::cancellation_token_source cts;
    int reg = cancel.Register([&cts] { cts.cancel(); });
    struct Unreg {
      CancelToken& c;
      int id;
      ~Unreg() { c.Unregister(id); }
    } unreg{cancel, reg};
    try {
      http::http_response resp = stream_client_.request(MakeMessage(req), cts.get_token()).get();
      const int status = resp.status_code();
      if (!Succeeded(resp, error_body)) return status;
      auto body = resp.body();
      while (!cancel.cancelled()) {
        concurrency::streams::container_buffer<std::string> line;
        size_t n = body.read_line(line).get();
        if (n == 0 && body.is_eof()) break;
        if (!on_line(line.collection())) break;
        if (body.is_eof()) break;
      }
      return status;
    } catch (const pplx::task_canceled&) {
      return 200;  // cancelled by the caller
    } catch (const std::exception& e) {
      if (cancel.cancelled()) return 200;
      return Unavailable("watch " + PathOnly(req.path) + ": " + e.what());
    }
  }

 private:
  static std::string PathOnly(const std::string& p) { return p.substr(0, p.find('?')); }

  // Whether a streamed response is 2xx; otherwise its body is read whole into
  // `error_body` (for the caller's error) and nothing of it is streamed.
  static bool Succeeded(http::http_response& resp, std::string* error_body) {
    const int status = resp.status_code();
    if (status >= 200 && status < 300) return true;
    std::string body = resp.extract_utf8string(true).get();
    if (error_body != nullptr) *error_body = std::move(body);
    return false;
  }

  static client::http_client_config MakeConfig(const KubeConfig& cfg, int timeout_seconds) {
    client::http_client_config c;
    c.set_timeout(std::chrono::seconds(timeout_seconds));
    c.set_validate_certificates(!cfg.insecure_skip_tls_verify);
    std::string ca = cfg.ca_pem, cert = cfg.client_cert_pem, key = cfg.client_key_pem;
    c.set_ssl_context_callback([ca, cert, key](boost::asio::ssl::context& ctx) {
      if (!ca.empty()) ctx.add_certificate_authority(boost::asio::buffer(ca.data(), ca.size()));
      if (!cert.empty()) {
        ctx.use_certificate_chain(boost::asio::buffer(cert.data(), cert.size()));
        ctx.use_private_key(boost::asio::buffer(key.data(), key.size()), boost::asio::ssl::context::pem);
      }
    });
    return c;
  }

  http::http_request MakeMessage(const HttpRequest& req) {
    http::http_request msg(http::method(req.method));
    msg.set_request_uri(req.path);
    msg.headers().add("Accept", "application/json");
    msg.headers().add("User-Agent", user_agent_);
    std::string token = tokens_.Get();
    if (!token.empty()) msg.headers().add("Authorization", "Bearer " + token);
    if (!req.body.empty() || req.method == "POST" || req.method == "PUT" || req.method == "PATCH") {
      msg.set_body(req.body, req.content_type.empty() ? "application/json" : req.content_type);
    }
    return msg;
  }

  TokenSource tokens_;
  client::http_client client_;
  client::http_client stream_client_;
  std::string user_agent_;
};

}  // namespace

Result<TransportPtr> NewHttpTransport(const KubeConfig& config, const HttpTransportOptions& options) {
  if (config.server.rfind("https://", 0) != 0 && config.server.rfind("http://", 0) != 0) {
    return InvalidArgument("Kubernetes server \"" + config.server + "\" is not an http(s) URL");
  }
  try {
    return TransportPtr(std::make_unique<HttpTransport>(config, options));
  } catch (const std::exception& e) {
    return InvalidArgument(std::string("Kubernetes client: ") + e.what());
  }
}

}  // namespace cronlane::kube
