#pragma once
// A ScheduledTask manifest's spec (YAML, as kubectl reads it) as the dispatcher's
// definition: what `cronlane validate` checks with dispatcher::TaskProblems and
// `cronlane next -f` previews with dispatcher::FireTimes.

#include <yaml-cpp/yaml.h>

#include <nlohmann/json.hpp>

#include "dispatcher/task.h"

namespace cronlane::cli {

// YAML to JSON as kubectl sends it (YAML 1.1 scalars typed as the apiserver
// decodes them).
nlohmann::json YamlToJson(const YAML::Node& n);

// The fields of `spec` that decide what and when a task fires: schedule or
// schedules, runAt/startTime/endTime, timeZone, target headers, payload. Fields of
// the wrong type read as absent (the schema reports them). Shards are left at 1.
dispatcher::TaskDefinition TaskFromSpec(const YAML::Node& spec);

}  // namespace cronlane::cli
