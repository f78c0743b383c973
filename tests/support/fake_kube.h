#pragma once
// Fakes at the operator's seams for unit tests: a Kubernetes transport answering
// from a route table, and an EventRecorder that keeps what it was given.
// Thread-safe, so a component's own threads may use them.

#include <condition_variable>
#include <map>
#include <mutex>
#include <string>
#include <vector>

#include "operator/events.h"
#include "operator/kube/transport.h"

namespace cronlane::testing {

// Answers requests from a table keyed by "METHOD path"; records what was sent.
// Unknown routes answer 404 NotFound. Watches are refused (Unavailable).
class RoutedTransport : public kube::Transport {
 public:
  void Route(const std::string& method_and_path, kube::HttpResponse response) {
    std::lock_guard lock(mu_);
    routes_[method_and_path] = std::move(response);
  }
  Result<kube::HttpResponse> Send(const kube::HttpRequest& req) override {
    {
      std::unique_lock lock(hang_mu_);
      if (hanging_) {
        ++hung_;
        hang_cv_.wait(lock, [&] { return !hanging_; });
        return Unavailable("the network dropped the request");
      }
    }
    std::lock_guard lock(mu_);
    sent_.push_back(req);
    auto it = routes_.find(req.method + " " + req.path);
    if (it == routes_.end()) {
      return kube::HttpResponse{404, R"({"kind":"Status","reason":"NotFound","message":"no route"})"};
    }
    return it->second;
  }
  Result<int> Stream(const kube::HttpRequest&, const std::function<bool(std::string_view)>&, CancelToken&,
                     std::string*) override {
    return Unavailable("no watches here");
  }
  // From now on every request hangs (a network that drops packets) until
  // Unhang(), and then fails with Unavailable.
  void Hang() {
    std::lock_guard lock(hang_mu_);
    hanging_ = true;
  }
  void Unhang() {
    std::lock_guard lock(hang_mu_);
    hanging_ = false;
    hang_cv_.notify_all();
  }
  // How many requests hung so far.
  int hung() const {
    std::lock_guard lock(hang_mu_);
    return hung_;
  }
  // The requests sent with `method` whose path contains `path_part`, oldest first.
  std::vector<kube::HttpRequest> Sent(const std::string& method, const std::string& path_part) const {
    std::lock_guard lock(mu_);
    std::vector<kube::HttpRequest> out;
    for (const auto& r : sent_) {
      if (r.method == method && r.path.find(path_part) != std::string::npos) out.push_back(r);
    }
    return out;
  }

 private:
  mutable std::mutex hang_mu_;
  std::condition_variable hang_cv_;
  bool hanging_ = false;
  int hung_ = 0;
  mutable std::mutex mu_;
  std::map<std::string, kube::HttpResponse> routes_;
  std::vector<kube::HttpRequest> sent_;
};

class RecordingEvents : public op::EventRecorder {
 public:
  struct Recorded {
    op::ObjectRef ref;
    std::string type, reason, action, note;
  };
  void Record(const op::ObjectRef& ref, const std::string& type, const std::string& reason, const std::string& action,
              const std::string& note) override {
    std::lock_guard lock(mu_);
    recorded_.push_back({ref, type, reason, action, note});
  }
  std::vector<Recorded> recorded() const {
    std::lock_guard lock(mu_);
    return recorded_;
  }
  // "type reason: note" of each Event, oldest first.
  std::vector<std::string> Lines() const {
    std::vector<std::string> out;
    for (const auto& r : recorded()) out.push_back(r.type + " " + r.reason + ": " + r.note);
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::vector<Recorded> recorded_;
};

}  // namespace cronlane::testing
