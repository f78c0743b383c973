#include "worker/exec_handler.h"

#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/eventfd.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <sstream>
#include <string_view>
#include <vector>

extern char** environ;

namespace cronlane::worker {
namespace {

constexpr std::string_view kShellSyntax = "'\"`$\\|&;<>()*?[]~#{}!\n";

bool Executable(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0 && S_ISREG(st.st_mode) && access(path.c_str(), X_OK) == 0;
}

// The file execvp would run for `word`, or "" when there is none.
std::string FindOnPath(const std::string& word) {
  if (word.find('/') != std::string::npos) return Executable(word) ? word : "";
  const char* env = std::getenv("PATH");
  std::string_view path = env != nullptr && *env != '\0' ? env : "/usr/local/bin:/usr/bin:/bin";
  while (true) {
    const size_t colon = path.find(':');
    std::string dir(path.substr(0, colon));
    std::string candidate = (dir.empty() ? "." : dir) + "/" + word;
    if (Executable(candidate)) return candidate;
    if (colon == std::string_view::npos) return "";
    path.remove_prefix(colon + 1);
  }
}

// The worker's environment without the variables a task sets: taken once, when the
// handler is made (the worker does not change its environment afterwards).
std::vector<std::string> BaseEnvironment() {
  static constexpr std::string_view kTaskVars[] = {
      "CE_ID=",      "CE_SOURCE=",     "CE_TYPE=",       "CE_TIME=",
      "CE_SUBJECT=", "CE_SHARDINDEX=", "CE_SHARDCOUNT=", "CRONLANE_ATTEMPT="};
  std::vector<std::string> out;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    std::string_view kv(*e);
    if (std::none_of(std::begin(kTaskVars), std::end(kTaskVars),
                     [&](std::string_view v) { return kv.starts_with(v); })) {
      out.emplace_back(kv);
    }
  }
  return out;
}

// What the child needs between clone and execve, prepared by the parent: the
// child may only make async-signal-safe calls (it shares the parent's memory).
struct ChildArgs {
  int stdin_fd;
  pid_t parent;
  const char* path;
  char* const* argv;
  char* const* envp;
};

// SIG_DFL as the kernel's rt_sigaction takes it (a null handler, no flags).
struct KernelSigaction {
  void* handler;
  unsigned long flags;
  void* restorer;
  uint64_t mask;
};
constexpr KernelSigaction kDefaultAction{};
constexpr uint64_t kEmptyMask = 0;

// Not instrumented by ThreadSanitizer: the child runs in the parent's memory, on
// the parent thread's sanitizer state, and any access it recorded there would be
// the parent's.
__attribute__((no_sanitize_thread)) int ChildMain(void* p) {
  const auto* a = static_cast<const ChildArgs*>(p);
  // Raw system calls only: the child shares the parent's memory, and a libc or
  // sanitizer wrapper (ThreadSanitizer intercepts sigaction, dup2, execve ...)
  // would touch the parent thread's state. Every disposition goes back to the
  // default: handled signals would otherwise run the worker's handler in this
  // shared address space until exec, and an ignored SIGPIPE would survive exec.
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig != SIGKILL && sig != SIGSTOP) syscall(SYS_rt_sigaction, sig, &kDefaultAction, nullptr, sizeof(uint64_t));
  }
  if (a->stdin_fd == STDIN_FILENO) {
    syscall(SYS_fcntl, STDIN_FILENO, F_SETFD, 0);  // keep it open across exec
  } else if (syscall(SYS_dup2, a->stdin_fd, STDIN_FILENO) < 0) {
    syscall(SYS_exit, 127);
  }
  syscall(SYS_setpgid, 0, 0);
  syscall(SYS_prctl, PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0);         // the task dies with its worker (kill -9 included)
  if (syscall(SYS_getppid) != a->parent) syscall(SYS_exit, 127);  // the worker died before the prctl
  syscall(SYS_rt_sigprocmask, SIG_SETMASK, &kEmptyMask, nullptr, sizeof(uint64_t));
  syscall(SYS_execve, a->path, a->argv, a->envp);
  syscall(SYS_exit, 127);
  return 127;
}

// Starts the child; -1 with errno on failure. All signals are blocked in the
// calling thread around the clone, so none is handled on the child's stack before
// it reset the dispositions.
pid_t Spawn(ChildArgs& args) {
#if defined(__SANITIZE_THREAD__)
  // ThreadSanitizer cannot follow a CLONE_VM child (it reports races in the
  // parent that are not there, and hangs); it supports fork, which the child's
  // raw system calls make safe in a multithreaded process.
  const pid_t forked = fork();
  if (forked == 0) ChildMain(&args);  // execs or exits
  // The parent resumes at once, maybe before the child's setpgid: make the group
  // here too (the usual idiom), so a kill of the group cannot miss it.
  if (forked > 0) setpgid(forked, forked);
  return forked;
#else
  constexpr size_t kStack = size_t{64} * 1024;
  auto stack = std::make_unique<char[]>(kStack);
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  // CLONE_VFORK: this thread resumes once the child called execve or exited, so
  // `args` and the stack stay valid for as long as the child uses them.
  void* top = stack.get() + kStack;
  const pid_t pid = clone(ChildMain, top, CLONE_VM | CLONE_VFORK | SIGCHLD, &args);
  const int saved = errno;
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  errno = saved;
  return pid;
#endif
}

}  // namespace

Result<ExecMode> ParseExecMode(const std::string& s) {
  if (s == "auto") return ExecMode::kAuto;
  if (s == "shell") return ExecMode::kShell;
  if (s == "argv") return ExecMode::kArgv;
  return InvalidArgument("exec mode must be auto, shell or argv, not \"" + s + "\"");
}

Result<ExecPlan> PlanExec(const std::string& command, ExecMode mode) {
  std::vector<std::string> words;
  std::istringstream in(command);
  for (std::string w; in >> w;) words.push_back(w);
  if (words.empty()) return InvalidArgument("the command is empty");
  const ExecPlan shell{"/bin/sh", {"sh", "-c", command}, true};
  if (mode == ExecMode::kShell) return shell;
  const size_t special = command.find_first_of(kShellSyntax);
  std::string why;
  if (special != std::string::npos) {
    why = std::string("it has shell syntax (") + (command[special] == '\n' ? "a newline" : command.substr(special, 1)) +
          ")";
  } else if (words[0].find('=') != std::string::npos) {
    why = "it starts with a variable assignment (" + words[0] + ")";
  }
  if (!why.empty()) {
    if (mode == ExecMode::kAuto) return shell;
    return InvalidArgument("the command cannot run without a shell: " + why);
  }
  std::string path = FindOnPath(words[0]);
  if (path.empty()) {
    if (mode == ExecMode::kAuto) return shell;
    return InvalidArgument("the command's executable \"" + words[0] + "\" is not on PATH");
  }
  return ExecPlan{std::move(path), std::move(words), false};
}

Result<Handler> ExecHandler(const std::string& command, std::chrono::seconds default_timeout, Clock& clock,
                            ExecMode mode) {
  auto planned = PlanExec(command, mode);
  if (!planned.ok()) return planned.status();
  spdlog::info("running each task as {}", planned->shell ? "sh -c '" + command + "'" : planned->path + " (no shell)");
  signal(SIGPIPE, SIG_IGN);  // a command that exits without reading stdin: EPIPE, not death
  auto shared = std::make_shared<const ExecPlan>(std::move(*planned));
  auto base_env = std::make_shared<const std::vector<std::string>>(BaseEnvironment());
  return Handler(
      [shared, base_env, default_timeout, &clock](const FiredTask& t, int attempt, CancelToken&, CancelToken& abort) {
        const ExecPlan& plan = *shared;
        const auto timeout = t.timeout_seconds > 0 ? std::chrono::seconds(t.timeout_seconds) : default_timeout;
        std::vector<std::string> env = {"CE_ID=" + t.id,
                                        "CE_SOURCE=" + t.source,
                                        "CE_TYPE=" + t.type,
                                        "CE_TIME=" + t.time,
                                        "CE_SUBJECT=" + t.subject,
                                        "CE_SHARDINDEX=" + std::to_string(t.shard_index),
                                        "CE_SHARDCOUNT=" + std::to_string(t.shard_count),
                                        "CRONLANE_ATTEMPT=" + std::to_string(attempt)};
        std::vector<char*> envp;
        envp.reserve(env.size() + base_env->size() + 1);
        for (auto& e : env) envp.push_back(e.data());
        for (const auto& e : *base_env) envp.push_back(const_cast<char*>(e.c_str()));  // execve does not write
        envp.push_back(nullptr);
        std::vector<char*> argv;
        argv.reserve(plan.argv.size() + 1);
        for (const auto& a : plan.argv) argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);

        // Close-on-exec: with several attempts running at once, a command must not
        // inherit another attempt's pipe (it would hold that stdin open: no EOF).
        int in[2];
        if (pipe2(in, O_CLOEXEC) != 0) {
          spdlog::error("task {}: pipe: {}", t.id, std::strerror(errno));
          return Outcome::kFailed;
        }
        ChildArgs args{in[0], getpid(), plan.path.c_str(), argv.data(), envp.data()};
        const pid_t pid = Spawn(args);
        close(in[0]);
        if (pid < 0) {
          spdlog::error("task {}: starting the command: {}", t.id, std::strerror(errno));
          close(in[1]);
          return Outcome::kFailed;
        }
        // The child is not reaped before waitpid below, so its pid is not reused.
        // (glibc 2.36's <sys/pidfd.h> lacks extern "C", so the system call is made directly.)
        const int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
        const int wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        const int on_abort = abort.Register([wake] {
          if (wake >= 0) (void)eventfd_write(wake, 1);
        });
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
        bool termed = false, aborted = false, killed = false, lost = false;
        // The command's process group; the command alone if it has none (yet).
        auto signal_group = [pid](int sig) {
          if (kill(-pid, sig) != 0 && errno == ESRCH) kill(pid, sig);
        };
        int status = 0;
        // Without a pidfd (a kernel before 5.3) the child is checked after 1, 2, 4 ...
        // ms, then every 20 ms.
        std::chrono::milliseconds idle{1};
        while (true) {
          if (wfd >= 0) {
            ssize_t n = write(wfd, t.payload.data() + off, t.payload.size() - off);
            if (n > 0) {
              off += static_cast<size_t>(n);
              if (off == t.payload.size()) close_input();
            } else if (n < 0 && errno != EAGAIN && errno != EINTR) {
              close_input();  // EPIPE: the command closed stdin or exited
            }
          }
          const pid_t reaped = waitpid(pid, &status, WNOHANG);
          if (reaped == pid) break;
          if (reaped < 0 && errno == ECHILD) {
            // Reaped elsewhere (SIGCHLD ignored by the program embedding the
            // worker): the outcome is unknown.
            spdlog::error("task {}: the command's exit status was lost (SIGCHLD ignored?)", t.id);
            lost = true;
            break;
          }
          auto now = clock.SteadyNow();
          if (!termed && (now > deadline || abort.cancelled())) {
            aborted = now <= deadline;  // cancelled (concurrencyPolicy Replace), not timed out
            signal_group(SIGTERM);
            close_input();
            termed = true;
            deadline = now + kKillGrace;
          } else if (termed && !killed && now > deadline) {
            signal_group(SIGKILL);
            killed = true;
          }
          pollfd fds[3];
          nfds_t n = 0;
          if (pidfd >= 0) fds[n++] = {pidfd, POLLIN, 0};
          if (wake >= 0 && !termed) fds[n++] = {wake, POLLIN, 0};
          if (wfd >= 0) fds[n++] = {wfd, POLLOUT, 0};
          // Until the deadline (at least a millisecond past it, so a SIGKILL is not a
          // busy loop), at most a second at a time.
          std::chrono::nanoseconds wait = std::clamp<std::chrono::nanoseconds>(
              deadline - now + std::chrono::milliseconds(1), std::chrono::milliseconds(1), std::chrono::seconds(1));
          if (pidfd < 0) {
            wait = std::min<std::chrono::nanoseconds>(wait, idle);
            idle = std::min(idle * 2, std::chrono::milliseconds(20));
          }
          clock.PollFor(fds, n, wait);
        }
        abort.Unregister(on_abort);
        close_input();
        if (pidfd >= 0) close(pidfd);
        if (wake >= 0) close(wake);
        if (aborted) return Outcome::kCancelled;
        if (termed) return Outcome::kTimedOut;
        if (lost) return Outcome::kFailed;
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? Outcome::kSucceeded : Outcome::kFailed;
      });
}

}  // namespace cronlane::worker
