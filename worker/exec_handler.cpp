#include "worker/exec_handler.h"

#include <fcntl.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <thread>
#include <vector>

namespace cronlane::worker {

Handler ExecHandler(const std::string& command, std::chrono::seconds default_timeout) {
  return [command, default_timeout](const FiredTask& t, int attempt, CancelToken&) {
    const auto timeout = t.timeout_seconds > 0 ? std::chrono::seconds(t.timeout_seconds) : default_timeout;
    std::vector<std::string> env_strings = {"CE_ID=" + t.id,
                                            "CE_SOURCE=" + t.source,
                                            "CE_TYPE=" + t.type,
                                            "CE_TIME=" + t.time,
                                            "CE_SUBJECT=" + t.subject,
                                            "CE_SHARDINDEX=" + std::to_string(t.shard_index),
                                            "CE_SHARDCOUNT=" + std::to_string(t.shard_count),
                                            "CRONLANE_ATTEMPT=" + std::to_string(attempt)};
    int in[2];
    if (pipe(in) != 0) return Outcome::kFailed;
    pid_t pid = fork();
    if (pid < 0) {
      close(in[0]);
      close(in[1]);
      return Outcome::kFailed;
    }
    if (pid == 0) {
      dup2(in[0], 0);
      close(in[0]);
      close(in[1]);
      setpgid(0, 0);
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // the task dies with its worker (kill -9 included)
      for (auto& e : env_strings) putenv(e.data());
      execl("/bin/sh", "sh", "-c", command.c_str(), static_cast<char*>(nullptr));
      _exit(127);
    }
    close(in[0]);
    signal(SIGPIPE, SIG_IGN);
    size_t off = 0;
    while (off < t.payload.size()) {
      ssize_t n = write(in[1], t.payload.data() + off, t.payload.size() - off);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    close(in[1]);
    auto deadline = std::chrono::steady_clock::now() + timeout;
    bool termed = false;
    int status = 0;
    while (true) {
      pid_t r = waitpid(pid, &status, WNOHANG);
      if (r == pid) break;
      auto now = std::chrono::steady_clock::now();
      if (!termed && now > deadline) {
        kill(-pid, SIGTERM);
        termed = true;
        deadline = now + std::chrono::seconds(5);
      } else if (termed && now > deadline) {
        kill(-pid, SIGKILL);
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (termed) return Outcome::kTimedOut;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? Outcome::kSucceeded : Outcome::kFailed;
  };
}

}  // namespace cronlane::worker
