#pragma once
// A child process for tests: started with argv and extra environment, output to a
// log file, killed with any signal. The destructor kills it (SIGKILL) if still running.

#include <signal.h>
#include <sys/types.h>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace cronlane::testing {

class Process {
 public:
  Process(std::vector<std::string> argv, std::string log_path, std::map<std::string, std::string> env = {});
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  bool Running();
  void Signal(int sig);
  // Waits for exit up to `timeout`; returns the exit code (128+signal when killed).
  std::optional<int> Wait(std::chrono::milliseconds timeout);
  std::string Log() const;
  const std::string& log_path() const { return log_path_; }

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  std::string log_path_;
};

// Polls `pred` every 100 ms until it is true or `timeout` passes.
bool WaitUntil(const std::function<bool()>& pred, std::chrono::milliseconds timeout);

// GET http://127.0.0.1:port/path with curl; "" on failure. `path` may carry a query
// with any characters curl accepts unencoded (`?query=up>0`).
std::string HttpGet(int port, const std::string& path);
// The value of an unlabelled Prometheus sample, or nullopt.
std::optional<double> MetricValue(const std::string& exposition, const std::string& name);
// A free TCP port on 127.0.0.1.
int FreePort();

}  // namespace cronlane::testing
