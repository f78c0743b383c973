// libFuzzer target for the kubeconfig loader (operator/kube/config.h): the input is
// written to a file and loaded as a kubeconfig, as `--kubeconfig` would. Certificate
// paths in it resolve against that file's directory. Any crash, sanitizer report,
// escaping exception or broken invariant is a bug.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>

#include "operator/kube/config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const std::string path = [] {
    const char* dir = std::getenv("TMPDIR");
    return std::string(dir != nullptr ? dir : "/tmp") + "/cronlane-kubeconfig-fuzz-" + std::to_string(getpid());
  }();
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) __builtin_trap();
  if (size > 0 && std::fwrite(data, 1, size, f) != size) __builtin_trap();
  std::fclose(f);
  auto cfg = cronlane::kube::LoadKubeconfig(path);
  if (!cfg.ok()) {
    if (cfg.status().message().empty()) __builtin_trap();
    return 0;
  }
  if (cfg->server.empty() || cfg->server.back() == '/') __builtin_trap();
  if (cfg->client_cert_pem.empty() != cfg->client_key_pem.empty()) __builtin_trap();
  return 0;
}
