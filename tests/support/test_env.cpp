#include "tests/support/test_env.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

namespace cronlane::testing {

namespace {
std::string EnvFilePath() {
  if (const char* p = std::getenv("CRONLANE_ENV_FILE")) return p;
  return std::string(CRONLANE_TEST_STATE) + "/env";
}

// Reads lines of the form [export ]KEY=VALUE where VALUE is as written by bash's
// printf %q (backslash escapes) or plain.
std::map<std::string, std::string> LoadEnvFile(const std::string& path) {
  std::map<std::string, std::string> out;
  std::ifstream in(path);
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#') continue;
    if (line.rfind("export ", 0) == 0) line = line.substr(7);
    auto eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string value;
    for (size_t i = eq + 1; i < line.size(); ++i) {
      if (line[i] == '\\' && i + 1 < line.size())
        value += line[++i];
      else if (line[i] != '\'' && line[i] != '"')
        value += line[i];
    }
    out[line.substr(0, eq)] = value;
  }
  return out;
}
}  // namespace

const std::map<std::string, std::string>& TestEnv() {
  static const std::map<std::string, std::string> env = LoadEnvFile(EnvFilePath());
  if (env.empty()) {
    ADD_FAILURE() << "no test environment at " << EnvFilePath()
                  << "; integration tests need the env.up fixture (run them with ctest, or `make env-up` and "
                     "CRONLANE_ENV_FILE=.cronlane/env)";
  }
  return env;
}

HostPort ApiserverAddress() {
  const std::string url = EnvVar("KUBE_APISERVER_URL");
  const auto scheme = url.find("://");
  const auto colon = url.rfind(':');
  if (scheme == std::string::npos || colon == std::string::npos || colon <= scheme + 3) {
    ADD_FAILURE() << "KUBE_APISERVER_URL is not https://HOST:PORT: " << url;
    return {};
  }
  return {url.substr(scheme + 3, colon - scheme - 3), std::stoi(url.substr(colon + 1))};
}

std::string EnvVar(const std::string& name) {
  const auto& env = TestEnv();
  auto it = env.find(name);
  if (it == env.end()) {
    ADD_FAILURE() << "test environment has no " << name;
    return "";
  }
  return it->second;
}

std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

CommandResult RunShell(const std::string& command) {
  CommandResult r;
  std::string cmd = "bash -c " + ShellQuote(command) + " 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  std::array<char, 4096> buf{};
  size_t n = 0;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
  int status = pclose(p);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

CommandResult Kubectl(const std::string& args) {
  CommandResult r = RunShell("kubectl --kubeconfig " + ShellQuote(EnvVar("KUBECONFIG")) + " " + args);
  // kubectl's own log lines (klog: "E1202 04:17:52.216926   23953 websocket.go:297]
  // Unknown stream id 1, discarding message"), which it sometimes prints on stderr
  // beside the output, are dropped: they are not what the command said.
  static const std::regex klog(R"(^[IWEF]\d{4} \d\d:\d\d:\d\d\.\d{6} +\d+ [^ \]]+:\d+\] .*$)");
  std::istringstream in(r.output);
  std::string kept;
  for (std::string line; std::getline(in, line);) {
    if (!std::regex_match(line, klog)) kept += line + "\n";
  }
  if (!r.output.empty() && r.output.back() != '\n' && !kept.empty()) kept.pop_back();
  r.output = std::move(kept);
  return r;
}

std::string KubectlGet(const std::string& args) {
  auto r = Kubectl(args);
  return r.exit_code == 0 ? r.output : std::string();
}

CommandResult KubectlApply(const std::string& ns, const std::string& yaml) {
  const std::filesystem::path file = std::filesystem::temp_directory_path() / (UniqueName("apply") + ".yaml");
  std::ofstream(file) << yaml;
  auto r = Kubectl("apply -n " + ShellQuote(ns) + " -f " + ShellQuote(file.string()));
  std::filesystem::remove(file);
  return r;
}

std::vector<std::string> OperatorCommand(const std::string& ns, const std::vector<std::string>& flags) {
  std::vector<std::string> argv = {std::string(CRONLANE_BIN_DIR) + "/cronlane-operator",
                                   "--kubeconfig=" + EnvVar("KUBECONFIG"),
                                   "--namespaces=" + ns,
                                   "--kafka-bootstrap=" + EnvVar("KAFKA_BOOTSTRAP"),
                                   "--transactional-id=" + ns,
                                   "--checkpoint-topic=" + ns + ".checkpoints",
                                   "--default-topic=" + ns + ".tasks",
                                   "--metrics-bind-address=0",
                                   "--health-probe-bind-address=0",
                                   "--log-format=text",
                                   "--status-qps=50"};
  const size_t defaults = argv.size();
  for (const auto& flag : flags) {
    const auto eq = flag.find('=');
    auto is_default = [&](const std::string& a) {
      return eq != std::string::npos && a.compare(0, eq + 1, flag, 0, eq + 1) == 0;
    };
    auto same = std::find_if(argv.begin() + 1, argv.begin() + static_cast<std::ptrdiff_t>(defaults), is_default);
    if (same != argv.begin() + static_cast<std::ptrdiff_t>(defaults))
      *same = flag;
    else
      argv.push_back(flag);
  }
  return argv;
}

std::string UniqueName(const std::string& prefix) {
  static std::atomic<int> counter{0};
  return prefix + "-" + std::to_string(getpid()) + "-" + std::to_string(counter++);
}

CommandResult EnvScript(const std::string& script_and_args) {
  const std::string state = std::filesystem::path(EnvFilePath()).parent_path().string();
  return RunShell("CRONLANE_STATE_DIR=" + ShellQuote(state) + " " + std::string(CRONLANE_SOURCE_DIR) + "/tests/env/" +
                  script_and_args);
}

void LoadImageIntoNode(const std::string& also) {
  auto built = RunShell(std::string(CRONLANE_SOURCE_DIR) + "/hack/image.sh");
  ASSERT_EQ(built.exit_code, 0) << built.output;
  auto loaded = EnvScript("load-image.sh" + (also.empty() ? "" : " --also " + ShellQuote(also)));
  ASSERT_EQ(loaded.exit_code, 0) << loaded.output;
}

void UninstallCronlane() {
  auto ns = Kubectl("delete namespace cronlane-system --ignore-not-found --wait=true --timeout=180s");
  EXPECT_EQ(ns.exit_code, 0) << ns.output;
  auto rbac = Kubectl(
      "delete clusterrole,clusterrolebinding cronlane-operator cronlane-webhook-configuration --ignore-not-found");
  EXPECT_EQ(rbac.exit_code, 0) << rbac.output;
  auto hook = Kubectl("delete validatingwebhookconfiguration cronlane --ignore-not-found");
  EXPECT_EQ(hook.exit_code, 0) << hook.output;
}

void ServerCtl(const std::string& server, const std::string& what) {
  auto r = EnvScript("ctl.sh " + server + " " + what);
  ASSERT_EQ(r.exit_code, 0) << r.output;
}

void KafkaCtl(const std::string& what) {
  ServerCtl("kafka", what);
}

}  // namespace cronlane::testing
