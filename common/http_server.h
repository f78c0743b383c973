#pragma once
// A small HTTP(S) server for /healthz, /readyz and /metrics, and the operator's
// admission webhook (cpprestsdk listener). Handlers run on the listener's threads
// and must be thread-safe.

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace cronlane {

struct HttpReply {
  int status = 200;
  std::string body;
  std::string content_type = "text/plain; charset=utf-8";
};

// A PEM certificate chain and its private key: HTTPS (TLS 1.2 or later) instead of HTTP.
struct TlsFiles {
  std::string cert_file;
  std::string key_file;
};

// A certificate chain and its private key, PEM, in memory.
struct TlsPem {
  std::string cert;
  std::string key;
};

// Where an HTTPS server gets its pair: read at Start() and again for each new
// connection (on the listener's threads), so a renewed pair is served without a
// restart.
struct TlsSource {
  std::function<Result<TlsPem>()> read;
  std::string description;  // names the source in errors ("FILE / FILE", "Secret ns/name")
};
// The pair in two files; InvalidArgument naming a file that cannot be read.
TlsSource TlsFromFiles(const TlsFiles& files);

// A request's query parameters, decoded ("?namespace=a%2Fb" -> {"namespace": "a/b"}).
using HttpQuery = std::map<std::string, std::string>;

// The largest request body a POST handler gets; a larger one is answered 413.
inline constexpr size_t kMaxRequestBody = size_t{3} * 1024 * 1024;

class HttpServer {
 public:
  // `bind` as operators take it: ":8080", "127.0.0.1:8080" or "0" (disabled).
  explicit HttpServer(std::string bind, std::optional<TlsSource> tls = std::nullopt);
  HttpServer(std::string bind, const TlsFiles& tls) : HttpServer(std::move(bind), TlsFromFiles(tls)) {}
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Registers a GET handler for an exact path. Call before Start().
  void Handle(const std::string& path, std::function<HttpReply()> handler);
  // Registers a GET handler for an exact path that reads the query. Call before Start().
  void HandleQuery(const std::string& path, std::function<HttpReply(const HttpQuery&)> handler);
  // Registers a POST handler for an exact path; it gets the request body. Call before Start().
  void HandlePost(const std::string& path, std::function<HttpReply(const std::string& body)> handler);
  // Answers only requests whose Host header names one of `hosts` (the name without
  // its port; "[::1]" for IPv6), 403 otherwise; "*" or an empty list allows any.
  // A page bound to loopback and opened through `kubectl port-forward` is then not
  // readable by other sites through DNS rebinding. Call before Start().
  void AllowHosts(std::vector<std::string> hosts) { allowed_hosts_ = std::move(hosts); }
  // Starts listening; InvalidArgument for a bad address or TLS files that cannot be
  // read, Unavailable if it cannot bind.
  Status Start();
  void Stop();
  bool disabled() const { return bind_ == "0"; }

 private:
  struct Impl;
  std::string bind_;
  std::optional<TlsSource> tls_;
  std::vector<std::string> allowed_hosts_;
  std::map<std::string, std::function<HttpReply(const HttpQuery&)>> handlers_;
  std::map<std::string, std::function<HttpReply(const std::string&)>> post_handlers_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cronlane
