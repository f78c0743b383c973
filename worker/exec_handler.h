#pragma once
// Runs a command per fired task: the payload on stdin, CloudEvent attributes in the
// environment (CE_ID, CE_SOURCE, CE_TYPE, CE_TIME, CE_SUBJECT, CE_SHARDINDEX,
// CE_SHARDCOUNT, CRONLANE_ATTEMPT), exit status 0 = success. An attempt that runs
// past its timeout, or whose occurrence is cancelled (`abort`, concurrencyPolicy
// Replace), gets SIGTERM (its process group), then SIGKILL kKillGrace later; it is
// kTimedOut or kCancelled. An attempt in progress at shutdown is allowed to finish
// (within its timeout).
//
// A command without shell syntax (`/bin/job --fast`, `true`) runs directly from its
// words, without a shell (ExecMode kAuto); anything else runs as `sh -c COMMAND`.
// The child is started with clone(CLONE_VM | CLONE_VFORK), as posix_spawn does (no
// copy of the worker's page tables), in its own process group, with the signal
// mask and dispositions of a fresh process (the worker blocks SIGTERM and ignores
// SIGPIPE; the command does neither), and dies with its worker (PR_SET_PDEATHSIG).
//
// Waiting: the handler's thread sleeps in Clock::PollFor on a pidfd of the child (its
// exit wakes it at once), an eventfd that `abort` signals, and the stdin pipe while
// the payload is written; timeouts are measured on `clock`, so a FakeClock runs
// them in simulated time. Thread-safe: the pool threads call one Handler at once.

#include <chrono>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/status.h"
#include "worker/worker.h"

namespace cronlane::worker {

inline constexpr std::chrono::seconds kKillGrace{5};

enum class ExecMode {
  kAuto,   // directly when the command has no shell syntax, else sh -c
  kShell,  // always sh -c
  kArgv,   // always directly; a command with shell syntax is refused
};

// How a command is run: `path` with `argv` (argv[0] is the word as written).
struct ExecPlan {
  std::string path;
  std::vector<std::string> argv;
  bool shell = false;  // runs as sh -c
};

// Parses "auto", "shell" or "argv".
Result<ExecMode> ParseExecMode(const std::string& s);

// The plan for `command`: its words and the executable found on PATH when it has no
// shell syntax (quotes, $, `, \, |, &, ;, <, >, (, ), globs, ~, #, {, }, !, a
// newline, or a first word with =) and the mode allows, else sh -c. InvalidArgument
// for an empty command, or in kArgv mode for shell syntax or an executable not on
// PATH (kAuto then runs it through sh, which reports exit 127 per task).
Result<ExecPlan> PlanExec(const std::string& command, ExecMode mode);

Result<Handler> ExecHandler(const std::string& command, std::chrono::seconds default_timeout,
                            Clock& clock = RealClock::Get(), ExecMode mode = ExecMode::kAuto);

}  // namespace cronlane::worker
