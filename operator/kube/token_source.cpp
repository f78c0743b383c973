#include "operator/kube/token_source.h"

#include <fstream>
#include <sstream>

namespace cronlane::kube {

TokenSource::TokenSource(std::string token, std::string file, Clock& clock)
    : token_(std::move(token)), file_(std::move(file)), clock_(clock) {}

std::string TokenSource::Get() {
  if (file_.empty()) return token_;
  MutexLock lock(mu_);
  auto now = clock_.SteadyNow();
  if (cached_.empty() || now - read_at_ >= std::chrono::minutes(1)) {
    std::ifstream in(file_);
    std::stringstream ss;
    ss << in.rdbuf();
    std::string t = ss.str();
    while (!t.empty() && (t.back() == '\n' || t.back() == '\r' || t.back() == ' ')) t.pop_back();
    if (!t.empty()) cached_ = t;  // keep the old token if the file is mid-rotation
    read_at_ = now;
  }
  return cached_;
}

}  // namespace cronlane::kube
