#include "cli/status_command.h"

#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <ostream>
#include <sstream>

#include "cli/schema.h"
#include "cli/task_spec.h"

namespace cronlane::cli {
namespace {

using nlohmann::json;

std::string Str(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}
std::string Num(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_number() ? it->dump() : "-";
}
const json& Field(const json& j, const char* key) {
  static const json kNull;
  auto it = j.find(key);
  return it != j.end() ? *it : kNull;
}
const json* FindCondition(const json& status, const std::string& type) {
  const json& conditions = Field(status, "conditions");
  if (!conditions.is_array()) return nullptr;
  for (const auto& c : conditions) {
    if (c.is_object() && Str(c, "type") == type) return &c;
  }
  return nullptr;
}
std::string Condition(const json& status, const std::string& type) {
  const json* c = FindCondition(status, type);
  if (c == nullptr) return "-";
  std::string s = Str(*c, "status") + " " + Str(*c, "reason");
  if (!Str(*c, "message").empty()) s += ": " + Str(*c, "message");
  return s;
}

// The local zone: $TZ, else the target of /etc/localtime, else UTC.
const Zone* LocalZone(const std::string& name) {
  std::string zone = name;
  if (zone.empty()) {
    if (const char* tz = std::getenv("TZ"); tz != nullptr) zone = tz[0] == ':' ? tz + 1 : tz;
  }
  if (zone.empty()) {
    std::array<char, 512> buf{};
    const ssize_t n = readlink("/etc/localtime", buf.data(), buf.size() - 1);
    if (n > 0) {
      std::string target(buf.data(), static_cast<size_t>(n));
      if (auto at = target.find("zoneinfo/"); at != std::string::npos) zone = target.substr(at + 9);
    }
  }
  auto z = LocateZone(zone);
  return z.ok() ? *z : nullptr;
}

// Runs a command; its standard output, or (when it fails) its standard error as the
// error. Standard error is kept apart: kubectl's warnings on a success are not JSON.
Result<std::string> Capture(const std::string& command) {
  char errfile[] = "/tmp/cronlane-status-XXXXXX";
  const int fd = mkstemp(errfile);
  if (fd < 0) return Unavailable("cannot make a temporary file for " + command);
  close(fd);
  FILE* p = popen((command + " 2>" + errfile).c_str(), "r");
  if (p == nullptr) {
    unlink(errfile);
    return Unavailable("cannot run " + command);
  }
  std::string out;
  std::array<char, 4096> buf{};
  size_t n = 0;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  const int rc = pclose(p);
  std::stringstream err;
  err << std::ifstream(errfile).rdbuf();
  unlink(errfile);
  if (rc != 0) {
    std::string message = err.str();
    while (!message.empty() && message.back() == '\n') message.pop_back();
    return Unavailable(message.empty() ? command + " failed" : message);
  }
  return out;
}

std::string Quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

}  // namespace

void RenderStatus(const json& task, const json& pools, Instant now, const Zone* local, int count, std::ostream& out) {
  const json& meta = Field(task, "metadata");
  const json& spec = Field(task, "spec");
  const json& status = Field(task, "status");
  out << "ScheduledTask " << Str(meta, "namespace") << "/" << Str(meta, "name") << "\n";
  if (!Str(spec, "schedule").empty()) {
    out << "  schedule:    " << Str(spec, "schedule") << "\n";
  } else if (Field(spec, "schedules").is_array()) {
    std::string all;
    for (const auto& e : Field(spec, "schedules")) all += (all.empty() ? "" : ", ") + Str(e, "schedule");
    out << "  schedules:   " << all << "\n";
  } else if (!Str(spec, "runAt").empty()) {
    out << "  runAt:       " << Str(spec, "runAt") << "\n";
  }
  const std::string zone = Str(spec, "timeZone").empty() ? "UTC" : Str(spec, "timeZone");
  out << "  timeZone:    " << zone << "\n";
  if (!Str(spec, "startTime").empty() || !Str(spec, "endTime").empty()) {
    out << "  window:      " << (Str(spec, "startTime").empty() ? "-" : Str(spec, "startTime")) << " to "
        << (Str(spec, "endTime").empty() ? "-" : Str(spec, "endTime")) << "\n";
  }
  const json& target = Field(spec, "target");
  const std::string topic = Str(target, "topic");
  out << "  topic:       " << (topic.empty() ? "(the operator's --default-topic)" : topic) << "\n";
  const bool suspended = Field(spec, "suspend").is_boolean() && Field(spec, "suspend").get<bool>();
  out << "  suspended:   " << (suspended ? "yes" : "no") << "\n";
  if (FindCondition(status, "Ready") == nullptr && FindCondition(status, "Reconciling") != nullptr) {
    out << "  Reconciling: " << Condition(status, "Reconciling") << "\n";
  } else {
    out << "  Ready:       " << Condition(status, "Ready") << "\n";
  }
  if (FindCondition(status, "Complete") != nullptr) out << "  Complete:    " << Condition(status, "Complete") << "\n";
  out << "  last fired:  " << (Str(status, "lastScheduleTime").empty() ? "-" : Str(status, "lastScheduleTime"))
      << "   last success: " << (Str(status, "lastSuccessfulTime").empty() ? "-" : Str(status, "lastSuccessfulTime"))
      << "   fired: " << Num(status, "firedCount") << "   missed: " << Num(status, "missedCount") << "\n";

  // The next fires, as the dispatcher computes them.
  auto fires =
      dispatcher::TaskFireTimes(TaskFromObject(YAML::Load(task.dump())), now, std::nullopt, static_cast<size_t>(count));
  const Zone* task_zone = nullptr;
  if (auto z = LocateZone(Str(spec, "timeZone")); z.ok()) task_zone = *z;
  if (!fires.ok()) {
    out << "\nNext fires: none (" << fires.status().message() << ")\n";
  } else if (fires->empty()) {
    out << "\nNext fires: none left\n";
  } else {
    out << "\nNext fires" << (suspended ? " (suspended: none fire until resumed)" : "") << ":\n";
    for (const Instant t : *fires) {
      out << "  " << FormatLocal(t, task_zone) << "   local " << FormatLocal(t, local) << "\n";
    }
  }

  const json& runs = Field(status, "recentRuns");
  out << "\nRecent runs";
  if (!runs.is_array() || runs.empty()) {
    out << ": none reported (workers report with --results-topic)\n";
  } else {
    out << " (newest first):\n  SCHEDULED              TRIGGER    OUTCOME    ATTEMPTS  DURATION  FINISHED\n";
    for (const auto& r : runs) {
      char line[256];
      const std::string duration = Field(r, "durationMs").is_number() ? Num(r, "durationMs") + "ms" : "-";
      std::snprintf(
          line, sizeof line, "  %-22s %-10s %-10s %-9s %-9s %s%s\n", Str(r, "scheduledTime").c_str(),
          Str(r, "trigger").c_str(), Str(r, "outcome").c_str(), Num(r, "attempts").c_str(), duration.c_str(),
          Str(r, "finishedTime").c_str(),
          Field(r, "deadLettered").is_boolean() && Field(r, "deadLettered").get<bool>() ? "  dead-lettered" : "");
      out << line;
    }
  }

  if (!pools.is_object()) return;
  std::vector<const json*> serving;
  if (const json& items = Field(pools, "items"); items.is_array()) {
    for (const auto& p : items) {
      if (topic.empty()) continue;
      const json& pool_spec = Field(p, "spec");
      bool consumes = Str(pool_spec, "topic") == topic;
      if (const json& topics = Field(pool_spec, "topics"); topics.is_array()) {
        consumes = consumes || std::find(topics.begin(), topics.end(), json(topic)) != topics.end();
      }
      if (consumes) serving.push_back(&p);
    }
  }
  out << "\nWorkerPool";
  if (serving.empty()) {
    out << ": none in the namespace consumes " << (topic.empty() ? "the default topic" : topic) << "\n";
    return;
  }
  out << (serving.size() > 1 ? "s" : "") << " consuming " << topic << ":\n";
  for (const json* p : serving) {
    const json& ps = Field(*p, "status");
    out << "  " << Str(Field(*p, "metadata"), "name") << ": lag " << Num(ps, "lag") << ", replicas "
        << Num(ps, "currentReplicas") << " (desired " << Num(ps, "desiredReplicas") << "), Ready "
        << Condition(ps, "Ready") << "\n";
  }
}

int RunStatus(const StatusOptions& opts, std::ostream& out, std::ostream& err) {
  auto fail = [&err](const std::string& message) {
    err << "cronlane status: " << message << "\n";
    return 2;
  };
  auto object = ParseObjectName(opts.task);
  if (!object) {
    return fail("\"" + opts.task + "\" is not NAMESPACE/NAME or NAME (lowercase letters, digits, '-' and '.')");
  }
  if (!opts.ns.empty()) {
    if (!ParseObjectName(opts.ns) || opts.ns.find('/') != std::string::npos) {
      return fail("--namespace \"" + opts.ns + "\" is not a namespace name");
    }
    if (!object->ns.empty() && object->ns != opts.ns) {
      return fail("the task " + opts.task + " names another namespace than --namespace " + opts.ns);
    }
    object->ns = opts.ns;
  }
  if (opts.count < 1 || opts.count > 1000) return fail("--count must be between 1 and 1000");
  json task, pools;
  if (!opts.file.empty()) {
    auto tasks = LoadScheduledTasks(opts.file);
    if (!tasks.ok()) return fail(tasks.status().message());
    bool found = false;
    for (const auto& t : *tasks) {
      const YAML::Node name = At(At(t, "metadata"), "name");
      if (name.IsScalar() && name.Scalar() == object->name) {
        task = YamlToJson(t);
        found = true;
        break;
      }
    }
    if (!found) return fail("no ScheduledTask " + opts.task + " in " + opts.file);
  } else {
    std::string kubectl = Quote(opts.kubectl);
    if (!opts.kubeconfig.empty()) kubectl += " --kubeconfig " + Quote(opts.kubeconfig);
    if (!opts.context.empty()) kubectl += " --context " + Quote(opts.context);
    if (!object->ns.empty()) kubectl += " -n " + object->ns;  // validated: no shell characters
    auto got = Capture(kubectl + " get scheduledtask " + object->name + " -o json");
    if (!got.ok()) return fail(got.status().message());
    try {
      task = json::parse(*got);
    } catch (const json::exception& e) {
      return fail(std::string("kubectl printed no JSON: ") + e.what());
    }
    // The pools are optional (no WorkerPool CRD, or no permission): shown when readable.
    if (auto p = Capture(kubectl + " get workerpools -o json"); p.ok()) {
      try {
        pools = json::parse(*p);
      } catch (const json::exception&) {
      }
    }
  }
  RenderStatus(task, pools, std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()),
               LocalZone(opts.local_zone), opts.count, out);
  return 0;
}

}  // namespace cronlane::cli
