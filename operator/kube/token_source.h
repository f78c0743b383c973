#pragma once
// The bearer token of a kubeconfig or of an in-cluster ServiceAccount. A projected
// ServiceAccount token is rotated by the kubelet (the file is replaced about every
// hour), so a token file is re-read at most once a minute of `clock`'s steady time;
// a read that finds the file empty (mid-rotation) or unreadable keeps the last token
// (and, while there is none yet, every call reads the file again).
// Thread-safe: Get() may be called by any request thread.

#include <chrono>
#include <string>

#include "common/clock.h"
#include "common/thread_annotations.h"

namespace cronlane::kube {

class TokenSource {
 public:
  // `token` is used as is when `file` is empty.
  TokenSource(std::string token, std::string file, Clock& clock = RealClock::Get());
  std::string Get();

 private:
  const std::string token_;
  const std::string file_;
  Clock& clock_;
  Mutex mu_;
  std::string cached_ GUARDED_BY(mu_);
  std::chrono::steady_clock::time_point read_at_ GUARDED_BY(mu_);
};

}  // namespace cronlane::kube
