#pragma once
// A ScheduledTask manifest's spec (YAML, as kubectl reads it) as the dispatcher's
// definition: what `cronlane validate` checks with dispatcher::TaskProblems and
// `cronlane next -f` previews with dispatcher::FireTimes.

#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>

#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "dispatcher/task.h"

namespace cronlane::cli {

// YAML to JSON as kubectl sends it (YAML 1.1 scalars typed as the apiserver
// decodes them).
nlohmann::json YamlToJson(const YAML::Node& n);

// The fields of `spec` that decide what and when a task fires: schedule or
// schedules, runAt/startTime/endTime, timeZone, target headers, payload. Fields of
// the wrong type read as absent (the schema reports them). Shards are left at 1.
dispatcher::TaskDefinition TaskFromSpec(const YAML::Node& spec);

// TaskFromSpec of an object's spec, with metadata.creationTimestamp as `created`
// (the anchor of "@every" schedules and the end of a backfill's range) when present.
dispatcher::TaskDefinition TaskFromObject(const YAML::Node& object);

// The ScheduledTasks with a spec in a manifest file ("-": stdin): its documents,
// and the items of Lists (`kubectl get st -o yaml`). InvalidArgument says why
// (unreadable, not YAML, no ScheduledTask), without a command prefix.
Result<std::vector<YAML::Node>> LoadScheduledTasks(const std::string& file);

// "[NAMESPACE/]NAME" of an object: DNS-1123 names (lowercase letters, digits, '-'
// and '.', starting and ending with a letter or digit), which also keeps printed
// commands free of shell metacharacters and flags. None when not.
struct ObjectName {
  std::string ns;  // "" when not given (kubectl's current namespace)
  std::string name;
};
std::optional<ObjectName> ParseObjectName(const std::string& text);

}  // namespace cronlane::cli
