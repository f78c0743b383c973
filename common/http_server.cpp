#define _TURN_OFF_PLATFORM_STRING  // NOLINT(bugprone-reserved-identifier): cpprestsdk's switch
#include "common/http_server.h"

#include <cpprest/http_listener.h>
#include <boost/asio/ssl.hpp>

#include <algorithm>
#include <fstream>
#include <mutex>

namespace cronlane {

struct HttpServer::Impl {
  std::unique_ptr<web::http::experimental::listener::http_listener> listener;
};

namespace {

// The Host header's name (without the port) is in `allowed`, or anything goes.
bool HostAllowed(const std::vector<std::string>& allowed, const web::http::http_request& req) {
  if (allowed.empty() || std::find(allowed.begin(), allowed.end(), "*") != allowed.end()) return true;
  auto it = req.headers().find("Host");
  if (it == req.headers().end()) return false;
  std::string host = it->second;
  if (!host.empty() && host.front() == '[') {
    host = host.substr(0, host.find(']') + 1);  // "[::1]:8082" -> "[::1]"
  } else if (auto colon = host.rfind(':'); colon != std::string::npos) {
    host.resize(colon);
  }
  return std::find(allowed.begin(), allowed.end(), host) != allowed.end();
}

}  // namespace

TlsSource TlsFromFiles(const TlsFiles& files) {
  auto read = [](const std::string& path) -> Result<std::string> {
    std::ifstream in(path, std::ios::binary);
    if (!in) return InvalidArgument("cannot read " + path);
    return std::string(std::istreambuf_iterator<char>(in), {});
  };
  return TlsSource{[files, read]() -> Result<TlsPem> {
                     auto cert = read(files.cert_file);
                     if (!cert.ok()) return cert.status();
                     auto key = read(files.key_file);
                     if (!key.ok()) return key.status();
                     return TlsPem{std::move(*cert), std::move(*key)};
                   },
                   "TLS certificate " + files.cert_file + " / key " + files.key_file};
}

HttpServer::HttpServer(std::string bind, std::optional<TlsSource> tls)
    : bind_(std::move(bind)), tls_(std::move(tls)), impl_(std::make_unique<Impl>()) {}

HttpServer::~HttpServer() {
  Stop();
}

void HttpServer::Handle(const std::string& path, std::function<HttpReply()> handler) {
  handlers_[path] = [h = std::move(handler)](const HttpQuery&) { return h(); };
}

void HttpServer::HandleQuery(const std::string& path, std::function<HttpReply(const HttpQuery&)> handler) {
  handlers_[path] = std::move(handler);
}

void HttpServer::HandlePost(const std::string& path, std::function<HttpReply(const std::string& body)> handler) {
  post_handlers_[path] = std::move(handler);
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
  web::http::experimental::listener::http_listener_config config;
  if (tls_) {
    // The pair is read for each new connection (cpprestsdk builds a context per
    // connection), so a renewed certificate (a Secret volume the kubelet updated) is
    // served without a restart. A pair that does not load (a half-written file) falls
    // back to the last pair that did: an exception here would end the process.
    struct Last {
      std::mutex mu;
      TlsPem pem;  // the last pair that loaded
    };
    auto last = std::make_shared<Last>();
    auto load = [](boost::asio::ssl::context& ctx, const TlsPem& pem) {
      ctx.set_options(boost::asio::ssl::context::default_workarounds | boost::asio::ssl::context::no_sslv2 |
                      boost::asio::ssl::context::no_sslv3 | boost::asio::ssl::context::no_tlsv1 |
                      boost::asio::ssl::context::no_tlsv1_1);
      ctx.use_certificate_chain(boost::asio::buffer(pem.cert));
      ctx.use_private_key(boost::asio::buffer(pem.key), boost::asio::ssl::context::pem);
    };
    auto setup = [read = tls_->read, last, load](boost::asio::ssl::context& ctx) {
      Result<TlsPem> got = Unavailable("not read");
      bool fresh_ok = false;
      try {
        got = read();
        if (got.ok()) {
          boost::asio::ssl::context fresh(boost::asio::ssl::context::tls_server);
          load(fresh, *got);  // both parse and match: use them
          fresh_ok = true;
        }
      } catch (const std::exception&) {
        fresh_ok = false;
      }
      TlsPem pem;
      {
        std::lock_guard lock(last->mu);
        if (fresh_ok) last->pem = *got;
        pem = last->pem;
      }
      load(ctx, pem);
    };
    // Loaded once here, so a certificate or key that cannot be read, does not parse
    // or does not match is an error at start, not a silent handshake failure on
    // every connection.
    auto first = tls_->read();
    if (!first.ok()) return InvalidArgument(first.status().message() + " (TLS for " + bind_ + ")");
    try {
      boost::asio::ssl::context probe(boost::asio::ssl::context::tls_server);
      load(probe, *first);
    } catch (const std::exception& e) {
      return InvalidArgument(tls_->description + ": " + e.what());
    }
    {
      std::lock_guard lock(last->mu);
      last->pem = *first;  // the fallback from the first connection on
    }
    config.set_ssl_context_callback(setup);
  }
  try {
    impl_->listener = std::make_unique<web::http::experimental::listener::http_listener>(
        std::string(tls_ ? "https://" : "http://") + host + ":" + port, config);
    auto post_handlers = post_handlers_;
    if (!post_handlers.empty()) {
      impl_->listener->support(web::http::methods::POST, [post_handlers](web::http::http_request req) {
        auto it = post_handlers.find(req.relative_uri().path());
        if (it == post_handlers.end()) {
          req.reply(web::http::status_codes::NotFound, "not found\n");
          return;
        }
        if (req.headers().content_length() > kMaxRequestBody) {
          req.reply(web::http::status_codes::RequestEntityTooLarge, "request body too large\n");
          return;
        }
        std::string body;
        try {
          body = req.extract_string(true).get();
        } catch (const std::exception& e) {
          req.reply(web::http::status_codes::BadRequest, std::string("cannot read the body: ") + e.what() + "\n");
          return;
        }
        HttpReply r = it->second(body);
        req.reply(static_cast<web::http::status_code>(r.status), r.body, r.content_type);
      });
    }
    auto handlers = handlers_;
    impl_->listener->support(
        web::http::methods::GET, [handlers, allowed = allowed_hosts_](const web::http::http_request& req) {
          if (!HostAllowed(allowed, req)) {
            req.reply(web::http::status_codes::Forbidden, "host not allowed\n");
            return;
          }
          auto it = handlers.find(req.relative_uri().path());
          if (it == handlers.end()) {
            req.reply(web::http::status_codes::NotFound, "not found\n");
            return;
          }
          HttpQuery query;
          try {
            for (const auto& [k, v] : web::uri::split_query(req.relative_uri().query())) {
              query[web::uri::decode(k)] = web::uri::decode(v);
            }
          } catch (const std::exception& e) {
            req.reply(web::http::status_codes::BadRequest, std::string("bad query: ") + e.what() + "\n");
            return;
          }
          HttpReply r = it->second(query);
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
