#include "worker/exec_handler.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string_view>
#include <thread>
#include <vector>

extern char** environ;

namespace cronlane::worker {
namespace {

// The command's environment: the worker's own, with the task's variables set
// (replacing any of the same name). Built before fork(): in a multithreaded
// process the child may only call async-signal-safe functions until it execs, so
// no putenv (it allocates) after the fork.
std::vector<std::string> ChildEnvironment(const std::vector<std::string>& task_vars) {
  std::vector<std::string> out = task_vars;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view kv(*e);
    std::string_view name = kv.substr(0, kv.find('=') + 1);  // "NAME="
    const bool replaced =
        std::any_of(task_vars.begin(), task_vars.end(), [&](const std::string& v) { return v.starts_with(name); });
    if (!replaced) out.emplace_back(kv);
  }
  return out;
}

}  // namespace

Handler ExecHandler(const std::string& command, std::chrono::seconds default_timeout, Clock& clock) {
  signal(SIGPIPE, SIG_IGN);  // a command that exits without reading stdin: EPIPE, not death
  return [command, default_timeout, &clock](const FiredTask& t, int attempt, CancelToken&, CancelToken& abort) {
    const auto timeout = t.timeout_seconds > 0 ? std::chrono::seconds(t.timeout_seconds) : default_timeout;
    std::vector<std::string> env = ChildEnvironment(
        {"CE_ID=" + t.id, "CE_SOURCE=" + t.source, "CE_TYPE=" + t.type, "CE_TIME=" + t.time, "CE_SUBJECT=" + t.subject,
         "CE_SHARDINDEX=" + std::to_string(t.shard_index), "CE_SHARDCOUNT=" + std::to_string(t.shard_count),
         "CRONLANE_ATTEMPT=" + std::to_string(attempt)});
    std::vector<char*> envp;
    envp.reserve(env.size() + 1);
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    std::string sh = "sh", dash_c = "-c", cmd = command;
    char* argv[] = {sh.data(), dash_c.data(), cmd.data(), nullptr};

    // Close-on-exec: with several attempts running at once, a command must not
    // inherit another attempt's pipe (it would hold that stdin open: no EOF).
    int in[2];
    if (pipe2(in, O_CLOEXEC) != 0) {
      spdlog::error("task {}: pipe: {}", t.id, std::strerror(errno));
      return Outcome::kFailed;
    }
    const pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
      spdlog::error("task {}: fork: {}", t.id, std::strerror(errno));
      close(in[0]);
      close(in[1]);
      return Outcome::kFailed;
    }
    if (pid == 0) {
      // Async-signal-safe calls only until execve.
      if (in[0] == STDIN_FILENO) {
        fcntl(STDIN_FILENO, F_SETFD, 0);  // keep it open across exec
      } else if (dup2(in[0], STDIN_FILENO) < 0) {
        _exit(127);
      }
      setpgid(0, 0);
      prctl(PR_SET_PDEATHSIG, SIGKILL);     // the task dies with its worker (kill -9 included)
      if (getppid() != parent) _exit(127);  // the worker died before the prctl
      execve("/bin/sh", argv, envp.data());
      _exit(127);
    }
    close(in[0]);
    // The payload is written without blocking, between checks of the deadline: a
    // command that never reads stdin cannot stall the timeout.
    int wfd = in[1];
    fcntl(wfd, F_SETFL, fcntl(wfd, F_GETFL) | O_NONBLOCK);
    auto close_input = [&] {
      if (wfd >= 0) close(wfd);
      wfd = -1;
    };
    size_t off = 0;
    if (t.payload.empty()) close_input();
    auto deadline = clock.SteadyNow() + timeout;
    bool termed = false, aborted = false;
    int status = 0;
    // The child is checked after 1, 2, 4 ... ms, then every 20 ms: a short command
    // (most tasks) is seen to end within about a millisecond, not after the 20 ms a
    // fixed interval cost each task (bench-worker: 34 tasks/s at concurrency 1).
    std::chrono::milliseconds idle{1};
    while (true) {
      bool progressed = false;
      if (wfd >= 0) {
        ssize_t n = write(wfd, t.payload.data() + off, t.payload.size() - off);
        if (n > 0) {
          off += static_cast<size_t>(n);
          progressed = true;
          if (off == t.payload.size()) close_input();
        } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
          close_input();  // EPIPE: the command closed stdin or exited
        }
      }
      pid_t r = waitpid(pid, &status, WNOHANG);
      if (r == pid) break;
      auto now = clock.SteadyNow();
      if (!termed && (now > deadline || abort.cancelled())) {
        aborted = now <= deadline;  // cancelled (concurrencyPolicy Replace), not timed out
        kill(-pid, SIGTERM);
        close_input();
        termed = true;
        deadline = now + kKillGrace;
      } else if (termed && now > deadline) {
        kill(-pid, SIGKILL);
      }
      if (progressed) {
        idle = std::chrono::milliseconds(1);
        continue;
      }
      if (wfd >= 0) {
        pollfd p{wfd, POLLOUT, 0};
        poll(&p, 1, static_cast<int>(idle.count()));  // until the command reads, or the next check
      } else {
        clock.SleepFor(idle);
      }
      idle = std::min(idle * 2, std::chrono::milliseconds(20));
    }
    close_input();
    if (aborted) return Outcome::kCancelled;
    if (termed) return Outcome::kTimedOut;
    return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? Outcome::kSucceeded : Outcome::kFailed;
  };
}

}  // namespace cronlane::worker
