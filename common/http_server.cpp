#define _TURN_OFF_PLATFORM_STRING  // NOLINT(bugprone-reserved-identifier): cpprestsdk's switch
#include "common/http_server.h"

#include <cpprest/http_listener.h>

namespace cronlane {

struct HttpServer::Impl {
  std::unique_ptr<web::http::experimental::listener::http_listener> listener;
};

HttpServer::HttpServer(std::string bind) : bind_(std::move(bind)), impl_(std::make_unique<Impl>()) {}

HttpServer::~HttpServer() {
  Stop();
}

void HttpServer::Handle(const std::string& path, std::function<HttpReply()> handler) {
  handlers_[path] = std::move(handler);
}

Status HttpServer::Start() {
  if (disabled()) return Status::Ok();
  auto colon = bind_.rfind(':');
  if (colon == std::string::npos) return InvalidArgument("bind address \"" + bind_ + "\" must be HOST:PORT or :PORT");
  std::string host = bind_.substr(0, colon);
  std::string port = bind_.substr(colon + 1);
  if (port.empty() || port.find_first_not_of("0123456789") != std::string::npos) {
    return InvalidArgument("bind address \"" + bind_ + "\" has no valid port");
  }
  if (host.empty()) host = "0.0.0.0";
  try {
    impl_->listener = std::make_unique<web::http::experimental::listener::http_listener>("http://" + host + ":" + port);
    auto handlers = handlers_;
    impl_->listener->support(web::http::methods::GET, [handlers](const web::http::http_request& req) {
      auto it = handlers.find(req.relative_uri().path());
      if (it == handlers.end()) {
        req.reply(web::http::status_codes::NotFound, "not found\n");
        return;
      }
      HttpReply r = it->second();
      req.reply(static_cast<web::http::status_code>(r.status), r.body, r.content_type);
    });
    impl_->listener->open().wait();
  } catch (const std::exception& e) {
    impl_->listener.reset();
    return Unavailable("cannot listen on " + bind_ + ": " + e.what());
  }
  return Status::Ok();
}

void HttpServer::Stop() {
  if (impl_ && impl_->listener) {
    try {
      impl_->listener->close().wait();
    } catch (...) {
    }
    impl_->listener.reset();
  }
}

}  // namespace cronlane
