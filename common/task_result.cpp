#include "common/task_result.h"

#include <nlohmann/json.hpp>

namespace cronlane {

std::string EncodeTaskResult(const TaskResult& r) {
  nlohmann::json j = {{"id", r.id},
                      {"subject", r.subject},
                      {"time", r.time},
                      {"outcome", r.succeeded ? "Succeeded" : "Failed"},
                      {"attempts", r.attempts},
                      {"durationMs", r.duration_ms},
                      {"shardIndex", r.shard_index},
                      {"shardCount", r.shard_count}};
  return j.dump();
}

Result<TaskResult> DecodeTaskResult(std::string_view json) {
  auto j = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return InvalidArgument("result record is not a JSON object");
  for (const char* f : {"id", "subject", "time", "outcome"}) {
    if (!j.contains(f) || !j[f].is_string()) return InvalidArgument(std::string("result record lacks \"") + f + "\"");
  }
  TaskResult r;
  r.id = j["id"].get<std::string>();
  r.subject = j["subject"].get<std::string>();
  r.time = j["time"].get<std::string>();
  r.succeeded = j["outcome"].get<std::string>() == "Succeeded";
  auto num = [&](const char* f, int64_t def) {
    return j.contains(f) && j[f].is_number_integer() ? j[f].get<int64_t>() : def;
  };
  r.attempts = static_cast<int>(num("attempts", 0));
  r.duration_ms = num("durationMs", 0);
  r.shard_index = static_cast<int>(num("shardIndex", 0));
  r.shard_count = static_cast<int>(std::max<int64_t>(1, num("shardCount", 1)));
  return r;
}

}  // namespace cronlane
