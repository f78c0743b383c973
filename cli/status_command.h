#pragma once
// `cronlane status [NS/]NAME` (also `kubectl cronlane status` when installed as
// kubectl-cronlane): one ScheduledTask at a glance: its schedule, readiness, counts,
// the next fires in the task's zone and in local time, its recent runs, and the
// WorkerPool that serves its topic with that pool's lag. The CLI has no API client:
// it reads the objects with `kubectl get ... -o json` (or from -f FILE).

#include <iosfwd>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/time.h"
#include "common/zone.h"

namespace cronlane::cli {

struct StatusOptions {
  std::string task;  // "namespace/name", or "name" (kubectl's current namespace)
  std::string ns;    // -n, as kubectl takes it (the task's namespace when it names none)
  int count = 5;     // next fires to show
  // Passed to kubectl: --kubeconfig and --context (empty: kubectl's defaults).
  std::string kubeconfig, context;
  std::string kubectl = "kubectl";  // the kubectl binary ($KUBECTL)
  // Instead of kubectl: the task (kubectl get st NAME -o json/yaml) from a file
  // ("-": stdin); WorkerPools are then not shown.
  std::string file;
  std::string local_zone;  // "" = $TZ, else /etc/localtime, else UTC
};

// Renders the status of `task` (an API object as JSON) and of the WorkerPools in
// `pools` (a List, or null) serving its topic, at `now`, with local times in
// `local` (nullptr = UTC).
void RenderStatus(const nlohmann::json& task, const nlohmann::json& pools, Instant now, const Zone* local, int count,
                  std::ostream& out);

// Reads the objects and prints RenderStatus. Returns 2 with one line on `err` for
// a bad name, a task kubectl cannot get (its message), or unreadable input.
int RunStatus(const StatusOptions& opts, std::ostream& out, std::ostream& err);

}  // namespace cronlane::cli
