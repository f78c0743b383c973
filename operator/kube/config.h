#pragma once
// Where the Kubernetes API is and how to authenticate: from a kubeconfig file
// (current context, client certificates, bearer tokens, CA data or files) or from
// the in-cluster service account.

#include <functional>
#include <string>

#include "common/status.h"

namespace cronlane::kube {

struct KubeConfig {
  std::string server;  // https://host:port, no trailing slash
  std::string ca_pem;  // trusted CA certificates (PEM); empty = system roots
  bool insecure_skip_tls_verify = false;
  std::string client_cert_pem;  // client certificate authentication
  std::string client_key_pem;
  std::string token;       // a static bearer token
  std::string token_file;  // a bearer token re-read as it rotates (service accounts)
  std::string default_namespace = "default";
  std::string source;  // where it came from, for logs ("kubeconfig ~/.kube/config context x")
};

// Reads the environment; injectable for tests.
using Getenv = std::function<std::string(const std::string&)>;
std::string RealGetenv(const std::string& name);

// Loads a kubeconfig. `path` may be a colon-separated list (as $KUBECONFIG); the
// first file that sets a value wins, as in kubectl. `context` "" = current-context.
// Relative certificate paths resolve against the file that names them.
Result<KubeConfig> LoadKubeconfig(const std::string& path, const std::string& context = "");

// In-cluster: KUBERNETES_SERVICE_HOST/PORT, the service account token file (re-read
// as it rotates), CA and namespace under `sa_dir`.
Result<KubeConfig> LoadInCluster(const Getenv& getenv = RealGetenv,
                                 const std::string& sa_dir = "/var/run/secrets/kubernetes.io/serviceaccount");

// The usual order: an explicit --kubeconfig, then $KUBECONFIG, then in-cluster when
// KUBERNETES_SERVICE_HOST is set, then ~/.kube/config.
Result<KubeConfig> LoadDefault(const std::string& kubeconfig_flag, const std::string& context = "",
                               const Getenv& getenv = RealGetenv);

}  // namespace cronlane::kube
