#include "cli/trigger_command.h"

#include <algorithm>
#include <cstdio>
#include <ostream>

#include <nlohmann/json.hpp>

#include "cli/task_spec.h"
#include "common/time.h"
#include "dispatcher/task.h"

namespace cronlane::cli {
namespace {

constexpr const char* kRunNow = "cronlane.dev/run-now";
constexpr const char* kForce = "cronlane.dev/run-now-force";

}  // namespace

std::string FreshRunToken(std::chrono::system_clock::time_point now, uint32_t random) {
  char hex[8];
  std::snprintf(hex, sizeof hex, "%06x", random & 0xffffffU);
  std::string stamp = FormatRfc3339(std::chrono::floor<std::chrono::seconds>(now));  // 2026-12-01T17:00:00Z
  std::erase_if(stamp, [](char c) { return c == '-' || c == ':'; });
  return stamp + "-" + hex;
}

int RunTrigger(const TriggerOptions& opts, std::ostream& out, std::ostream& err) {
  const auto object = ParseObjectName(opts.task);
  if (!object) {
    err << "cronlane trigger: \"" << opts.task
        << "\" is not NAMESPACE/NAME or NAME (lowercase letters, digits, '-' and '.')\n";
    return 2;
  }
  const std::string& ns = object->ns;
  const std::string& name = object->name;
  const std::string token = opts.token.empty() ? FreshRunToken(opts.now, opts.random) : opts.token;
  if (!dispatcher::ValidRunToken(token)) {
    err << "cronlane trigger: \"" << token << "\" is not a run-now token: " << dispatcher::kRunTokenRule << "\n";
    return 2;
  }
  const std::string force = opts.force ? "true" : "false";  // always set: a force left from before must not stick
  if (opts.output == "command") {
    out << "kubectl annotate --overwrite" << (ns.empty() ? "" : " -n " + ns) << " scheduledtask/" << name << " "
        << kRunNow << "=" << token << " " << kForce << "=" << force << "\n";
    return 0;
  }
  if (opts.output == "patch") {
    nlohmann::json patch = {{"metadata", {{"annotations", {{kRunNow, token}, {kForce, force}}}}}};
    out << patch.dump() << "\n";
    return 0;
  }
  err << "cronlane trigger: --output must be command or patch, got \"" << opts.output << "\"\n";
  return 2;
}

}  // namespace cronlane::cli
