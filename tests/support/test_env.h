#pragma once
// Access to the real local environment (tests/env/up.sh) from integration tests.

#include <map>
#include <string>
#include <vector>

namespace cronlane::testing {

// The variables of the env file written by tests/env/up.sh (KUBECONFIG,
// KAFKA_BOOTSTRAP, ...). Fails the calling test (ADD_FAILURE) when it is missing.
const std::map<std::string, std::string>& TestEnv();

// TestEnv().at(name), or "" with a test failure.
std::string EnvVar(const std::string& name);

// The apiserver's address from KUBE_APISERVER_URL (https://HOST:PORT): 127.0.0.1, or
// the node's bridge address when the environment has a node.
struct HostPort {
  std::string host;
  int port = 0;
};
HostPort ApiserverAddress();

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr, interleaved
};

// Runs a shell command (bash -c) and captures its output.
CommandResult RunShell(const std::string& command);

// Runs kubectl against the test apiserver: "kubectl --kubeconfig <env> " + args.
// kubectl's own klog lines (a websocket warning during exec) are left out of the output.
CommandResult Kubectl(const std::string& args);
// What a successful Kubectl(args) printed, or "" when it failed: its output then
// is an error message (NotFound, a refused connection), which must not pass for
// a value in a wait such as `!KubectlGet(...).empty()`.
std::string KubectlGet(const std::string& args);

// `kubectl apply -n <ns> -f FILE` of `yaml`, the way users apply manifests,
// through a file (one command-line argument holds at most 128 KiB).
CommandResult KubectlApply(const std::string& ns, const std::string& yaml);

// The command line of a cronlane-operator for a test: the environment's
// kubeconfig and broker, watching `ns`, named after it (transactional.id,
// `<ns>.checkpoints`, default topic `<ns>.tasks`), text logs, metrics and probes
// on ephemeral ports, status writes at 50/s. Each of `flags` of the form
// `--name=value` replaces the default of that name; the others are appended in
// order (so a flag given twice, such as --kafka-property, stays twice).
std::vector<std::string> OperatorCommand(const std::string& ns, const std::vector<std::string>& flags = {});

// A name unique to this process and call, for topics and objects.
std::string UniqueName(const std::string& prefix);

// The project's image (hack/image.sh: cached, rebuilt only when a source changed)
// loaded into the environment's node (tests/env/load-image.sh) under
// cronlane/cronlane:<version>, and also as `also` when given. Fails the calling test
// otherwise.
void LoadImageIntoNode(const std::string& also = "");

// Removes what an install from manifests/overlays/* made, except the CRDs (the
// environment's other tests use them): the cronlane-system namespace, waiting until
// it is gone (its Pods stopped), and the cluster-wide RBAC. Tests that install
// cronlane call it before and after, so no install outlives its test: on the
// environment's node an install runs real Pods.
void UninstallCronlane();

// Runs tests/env/SCRIPT ARGS... (e.g. "load-image.sh") for the test environment
// (CRONLANE_STATE_DIR set to its state directory).
CommandResult EnvScript(const std::string& script_and_args);

// Stops or starts a server of the test environment, keeping its data
// (tests/env/ctl.sh kafka|kube-apiserver stop|start); `start` returns once it
// answers. Fails the calling test when the script fails.
void ServerCtl(const std::string& server, const std::string& what);
// ServerCtl("kafka", what).
void KafkaCtl(const std::string& what);

// Quotes a string for bash.
std::string ShellQuote(const std::string& s);

}  // namespace cronlane::testing
