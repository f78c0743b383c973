#pragma once
// A small HTTP server for /healthz, /readyz and /metrics (cpprestsdk listener).
// Handlers run on the listener's threads and must be thread-safe.

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "common/status.h"

namespace cronlane {

struct HttpReply {
  int status = 200;
  std::string body;
  std::string content_type = "text/plain; charset=utf-8";
};

class HttpServer {
 public:
  // `bind` as operators take it: ":8080", "127.0.0.1:8080" or "0" (disabled).
  explicit HttpServer(std::string bind);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Registers a GET handler for an exact path. Call before Start().
  void Handle(const std::string& path, std::function<HttpReply()> handler);
  // Starts listening; InvalidArgument for a bad address, Unavailable if it cannot bind.
  Status Start();
  void Stop();
  bool disabled() const { return bind_ == "0"; }

 private:
  struct Impl;
  std::string bind_;
  std::map<std::string, std::function<HttpReply()>> handlers_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace cronlane
