#include "cli/task_spec.h"

#include "cli/schema.h"
#include "common/time.h"
#include "dispatcher/fire_times.h"

#include <algorithm>
#include <fstream>
#include <iostream>
#include <sstream>

namespace cronlane::cli {

nlohmann::json YamlToJson(const YAML::Node& n) {
  if (n.IsMap()) {
    nlohmann::json j = nlohmann::json::object();
    for (const auto& kv : n) j[kv.first.as<std::string>()] = YamlToJson(kv.second);
    return j;
  }
  if (n.IsSequence()) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& e : n) j.push_back(YamlToJson(e));
    return j;
  }
  if (!n.IsDefined() || n.IsNull()) return nullptr;
  std::string type = ScalarJsonType(n);
  if (type == "boolean") return n.as<bool>(false);
  if (type == "integer") {
    try {
      return std::stoll(n.Scalar());
    } catch (...) {
    }
  }
  if (type == "number") {
    try {
      return std::stod(n.Scalar());
    } catch (...) {
    }
  }
  return n.Scalar();
}

dispatcher::TaskDefinition TaskFromSpec(const YAML::Node& spec) {
  const YAML::Node schedule = At(spec, "schedule");
  const YAML::Node schedules = At(spec, "schedules");
  const YAML::Node tz = At(spec, "timeZone");
  const YAML::Node target = At(spec, "target");
  const YAML::Node headers = target.IsMap() ? At(target, "headers") : YAML::Node();
  const YAML::Node payload = At(spec, "payload");
  const YAML::Node run_at = At(spec, "runAt");
  const YAML::Node start = At(spec, "startTime");
  const YAML::Node end = At(spec, "endTime");
  dispatcher::TaskDefinition t;
  t.schedule = schedule.IsScalar() ? schedule.Scalar() : "";
  if (schedules.IsSequence()) {
    std::vector<dispatcher::ScheduleEntry> entries;
    for (const auto& item : schedules) {
      const YAML::Node s = At(item, "schedule");
      const YAML::Node j = At(item, "jitterSeconds");
      int jitter = -1;
      if (j.IsScalar() && ScalarJsonType(j) == "integer") {
        try {
          jitter = std::stoi(j.Scalar());
        } catch (...) {
        }
      }
      entries.push_back({s.IsScalar() ? s.Scalar() : "", jitter});
    }
    t.schedules = std::move(entries);
  }
  if (run_at.IsDefined() || start.IsDefined() || end.IsDefined()) {
    auto text = [](const YAML::Node& n) { return n.IsScalar() ? n.Scalar() : std::string(); };
    t.bounds = dispatcher::TimeBounds{text(run_at), text(start), text(end)};
  }
  t.time_zone = tz.IsScalar() ? tz.Scalar() : "";
  if (headers.IsMap()) {
    dispatcher::MessageExtras extras;
    for (const auto& kv : headers) {
      extras.headers.emplace_back(kv.first.as<std::string>(), kv.second.IsScalar() ? kv.second.Scalar() : "");
    }
    t.message = std::move(extras);
  }
  t.payload_json = payload.IsDefined() && !payload.IsNull() ? YamlToJson(payload).dump() : "null";
  // Shards are the schema's to check (1-1024).
  t.shards = 1;

  return t;
}

dispatcher::TaskDefinition TaskFromObject(const YAML::Node& object) {
  dispatcher::TaskDefinition task = TaskFromSpec(At(object, "spec"));
  const YAML::Node created = At(At(object, "metadata"), "creationTimestamp");
  if (created.IsScalar()) {
    if (auto t = ParseRfc3339(created.Scalar()); t.ok()) task.created = *t;
  }
  return task;
}

Result<std::vector<YAML::Node>> LoadScheduledTasks(const std::string& file) {
  std::vector<YAML::Node> docs;
  try {
    if (file == "-") {
      std::stringstream in;
      in << std::cin.rdbuf();
      docs = YAML::LoadAll(in.str());
    } else {
      std::ifstream in(file);
      if (!in) return InvalidArgument("cannot read " + file);
      docs = YAML::LoadAll(in);
    }
  } catch (const YAML::Exception& e) {
    return InvalidArgument(file + ": " + e.what());
  }
  std::vector<YAML::Node> tasks;
  for (const auto& doc : docs) {
    const YAML::Node items = At(doc, "items");
    std::vector<YAML::Node> objects =
        items.IsSequence() ? std::vector<YAML::Node>(items.begin(), items.end()) : std::vector<YAML::Node>{doc};
    for (const auto& o : objects) {
      const YAML::Node kind = At(o, "kind");
      if (kind.IsScalar() && kind.Scalar() == "ScheduledTask" && At(o, "spec").IsMap()) tasks.push_back(o);
    }
  }
  if (tasks.empty()) return InvalidArgument("no ScheduledTask with a spec in " + file);
  return tasks;
}

std::optional<ObjectName> ParseObjectName(const std::string& text) {
  // DNS-1123: also never a word that starts with '-' (a flag to kubectl).
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  auto valid = [&alnum](const std::string& s) {
    return !s.empty() && s.size() <= 253 && alnum(s.front()) && alnum(s.back()) &&
           std::all_of(s.begin(), s.end(), [&alnum](char c) { return alnum(c) || c == '-' || c == '.'; });
  };
  const auto slash = text.find('/');
  ObjectName out;
  out.ns = slash == std::string::npos ? "" : text.substr(0, slash);
  out.name = slash == std::string::npos ? text : text.substr(slash + 1);
  if ((slash != std::string::npos && !valid(out.ns)) || !valid(out.name)) return std::nullopt;
  return out;
}

}  // namespace cronlane::cli
