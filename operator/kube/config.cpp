#include "operator/kube/config.h"

#include "common/text.h"

#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <vector>

namespace cronlane::kube {
namespace {

namespace fs = std::filesystem;

Result<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Result<std::string> Base64Decode(const std::string& in, const std::string& what) {
  auto out = cronlane::Base64Decode(in);
  if (!out) return InvalidArgument(what + " is not valid base64");
  return *out;
}

struct Named {
  YAML::Node node;
  std::string dir;  // directory of the file it came from
};

// Finds `name` in the `section` list (clusters/users/contexts) of the files, first wins.
const Named* FindNamed(const std::vector<Named>& entries, const std::string& name) {
  for (const auto& e : entries) {
    if (e.node["name"] && e.node["name"].as<std::string>() == name) return &e;
  }
  return nullptr;
}

std::string Str(const YAML::Node& n, const char* key) {
  if (!n.IsMap() || !n[key] || !n[key].IsScalar()) return "";
  return n[key].as<std::string>();
}

// data (base64 inline) wins over file, as in client-go.
Result<std::string> DataOrFile(const YAML::Node& n, const char* data_key, const char* file_key, const std::string& dir,
                               const std::string& what) {
  std::string data = Str(n, data_key);
  if (!data.empty()) return Base64Decode(data, what);
  std::string file = Str(n, file_key);
  if (file.empty()) return std::string();
  fs::path p(file);
  if (p.is_relative() && !dir.empty()) p = fs::path(dir) / p;
  auto content = ReadFile(p.string());
  if (!content.ok()) return InvalidArgument(what + ": " + content.status().message());
  return content;
}

Result<KubeConfig> LoadKubeconfigOrThrow(const std::string& path_list, const std::string& context_override);

}  // namespace

std::string RealGetenv(const std::string& name) {
  const char* v = std::getenv(name.c_str());
  return v != nullptr ? v : "";
}

Result<KubeConfig> LoadKubeconfig(const std::string& path_list, const std::string& context_override) {
  // yaml-cpp throws when a document has another shape than a kubeconfig (a scalar
  // where a map belongs, a list as a name): that is a malformed file, not a crash.
  try {
    return LoadKubeconfigOrThrow(path_list, context_override);
  } catch (const YAML::Exception& e) {
    return InvalidArgument("kubeconfig " + path_list + " is malformed: " + e.msg);
  }
}

namespace {

Result<KubeConfig> LoadKubeconfigOrThrow(const std::string& path_list, const std::string& context_override) {
  std::vector<Named> clusters, users, contexts;
  std::string current;
  std::vector<std::string> files;
  std::stringstream ss(path_list);
  for (std::string p; std::getline(ss, p, ':');) {
    if (!p.empty()) files.push_back(p);
  }
  if (files.empty()) return InvalidArgument("no kubeconfig path given");
  int loaded = 0;
  for (const auto& f : files) {
    auto text = ReadFile(f);
    if (!text.ok()) {
      if (files.size() == 1) return NotFound("kubeconfig " + f + " does not exist or cannot be read");
      continue;  // kubectl skips missing files in a list
    }
    YAML::Node root;
    try {
      root = YAML::Load(*text);
    } catch (const YAML::Exception& e) {
      return InvalidArgument("kubeconfig " + f + " is not valid YAML: " + e.msg);
    }
    ++loaded;
    std::string dir = fs::path(f).parent_path().string();
    if (current.empty()) current = Str(root, "current-context");
    for (auto [section, out] :
         {std::pair{"clusters", &clusters}, std::pair{"users", &users}, std::pair{"contexts", &contexts}}) {
      if (root[section] && root[section].IsSequence()) {
        for (const auto& e : root[section]) out->push_back({e, dir});
      }
    }
  }
  if (loaded == 0) return NotFound("none of the kubeconfig files exist: " + path_list);
  std::string ctx_name = context_override.empty() ? current : context_override;
  if (ctx_name.empty()) return InvalidArgument("kubeconfig " + path_list + " has no current-context");
  const Named* ctx = FindNamed(contexts, ctx_name);
  if (ctx == nullptr) return InvalidArgument("kubeconfig context \"" + ctx_name + "\" not found");
  YAML::Node c = ctx->node["context"];
  const Named* cluster = FindNamed(clusters, Str(c, "cluster"));
  if (cluster == nullptr) return InvalidArgument("kubeconfig cluster \"" + Str(c, "cluster") + "\" not found");
  YAML::Node cl = cluster->node["cluster"];

  KubeConfig cfg;
  cfg.source = "kubeconfig " + path_list + " context " + ctx_name;
  cfg.server = Str(cl, "server");
  while (!cfg.server.empty() && cfg.server.back() == '/') cfg.server.pop_back();
  if (cfg.server.empty()) return InvalidArgument("kubeconfig cluster has no server");
  cfg.insecure_skip_tls_verify = Str(cl, "insecure-skip-tls-verify") == "true";
  auto ca =
      DataOrFile(cl, "certificate-authority-data", "certificate-authority", cluster->dir, "certificate-authority");
  if (!ca.ok()) return ca.status();
  cfg.ca_pem = *ca;
  std::string ns = Str(c, "namespace");
  if (!ns.empty()) cfg.default_namespace = ns;

  std::string user_name = Str(c, "user");
  if (!user_name.empty()) {
    const Named* user = FindNamed(users, user_name);
    if (user == nullptr) return InvalidArgument("kubeconfig user \"" + user_name + "\" not found");
    YAML::Node u = user->node["user"];
    auto cert = DataOrFile(u, "client-certificate-data", "client-certificate", user->dir, "client-certificate");
    if (!cert.ok()) return cert.status();
    auto key = DataOrFile(u, "client-key-data", "client-key", user->dir, "client-key");
    if (!key.ok()) return key.status();
    cfg.client_cert_pem = *cert;
    cfg.client_key_pem = *key;
    if (cfg.client_cert_pem.empty() != cfg.client_key_pem.empty()) {
      return InvalidArgument("kubeconfig user \"" + user_name +
                             "\" has a client certificate without a key or vice versa");
    }
    cfg.token = Str(u, "token");
    std::string token_file = Str(u, "tokenFile");
    if (!token_file.empty()) {
      fs::path p(token_file);
      if (p.is_relative()) p = fs::path(user->dir) / p;
      cfg.token_file = p.string();
    }
    if (u["exec"] || u["auth-provider"]) {
      return InvalidArgument("kubeconfig user \"" + user_name +
                             "\" uses an exec or auth-provider plugin, which cronlane does not run; use a token or "
                             "client certificate");
    }
  }
  return cfg;
}

}  // namespace

Result<KubeConfig> LoadInCluster(const Getenv& getenv, const std::string& sa_dir) {
  std::string host = getenv("KUBERNETES_SERVICE_HOST");
  std::string port = getenv("KUBERNETES_SERVICE_PORT");
  if (host.empty() || port.empty()) {
    return NotFound("not running in a cluster (KUBERNETES_SERVICE_HOST/PORT unset)");
  }
  KubeConfig cfg;
  cfg.source = "in-cluster service account";
  bool ipv6 = host.find(':') != std::string::npos;
  cfg.server = "https://" + (ipv6 ? "[" + host + "]" : host) + ":" + port;
  cfg.token_file = sa_dir + "/token";
  if (!fs::exists(cfg.token_file)) return NotFound("service account token " + cfg.token_file + " does not exist");
  auto ca = ReadFile(sa_dir + "/ca.crt");
  if (!ca.ok()) return NotFound("service account CA " + sa_dir + "/ca.crt does not exist");
  cfg.ca_pem = *ca;
  auto ns = ReadFile(sa_dir + "/namespace");
  if (ns.ok() && !ns->empty()) {
    std::string n = *ns;
    while (!n.empty() && (n.back() == '\n' || n.back() == ' ')) n.pop_back();
    cfg.default_namespace = n;
  }
  return cfg;
}

Result<KubeConfig> LoadDefault(const std::string& kubeconfig_flag, const std::string& context, const Getenv& getenv) {
  if (!kubeconfig_flag.empty()) return LoadKubeconfig(kubeconfig_flag, context);
  std::string env = getenv("KUBECONFIG");
  if (!env.empty()) return LoadKubeconfig(env, context);
  if (!getenv("KUBERNETES_SERVICE_HOST").empty()) return LoadInCluster(getenv);
  std::string home = getenv("HOME");
  if (!home.empty() && fs::exists(home + "/.kube/config")) return LoadKubeconfig(home + "/.kube/config", context);
  return NotFound("no Kubernetes configuration: pass --kubeconfig, set KUBECONFIG, or run in a cluster");
}

}  // namespace cronlane::kube
