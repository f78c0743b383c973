#include "common/task_result.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <limits>

namespace cronlane {

const char* RunOutcomeName(RunOutcome o) {
  switch (o) {
    case RunOutcome::kSucceeded:
      return "Succeeded";
    case RunOutcome::kCancelled:
      return "Cancelled";
    case RunOutcome::kFailed:
      break;
  }
  return "Failed";
}

RunOutcome ParseRunOutcome(std::string_view name) {
  if (name == "Succeeded") return RunOutcome::kSucceeded;
  if (name == "Cancelled") return RunOutcome::kCancelled;
  return RunOutcome::kFailed;
}

namespace {

// Appends `s` as a JSON string. Printable ASCII without quotes or backslashes (the
// ids, subjects and times a worker writes) is copied as it is; anything else goes
// through nlohmann, which escapes it and replaces invalid UTF-8 (U+FFFD): Kafka
// headers are bytes.
void AppendJsonString(std::string& out, std::string_view s) {
  const bool plain = std::all_of(s.begin(), s.end(), [](char c) {
    const auto u = static_cast<unsigned char>(c);
    return u >= 0x20 && u < 0x7f && c != '"' && c != '\\';
  });
  if (!plain) {
    out += nlohmann::json(std::string(s)).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    return;
  }
  out += '"';
  out += s;
  out += '"';
}

}  // namespace

// One record per finished task: written field by field (the fields are fixed)
// rather than through a JSON object, in the order nlohmann would write them
// (sorted keys), so the bytes are the same as before.
std::string EncodeTaskResult(const TaskResult& r) {
  std::string out;
  out.reserve(160 + r.id.size() + r.subject.size() + r.time.size());
  out += "{\"attempts\":";
  out += std::to_string(r.attempts);
  if (r.dead_lettered) out += ",\"deadLettered\":true";
  out += ",\"durationMs\":";
  out += std::to_string(r.duration_ms);
  out += ",\"id\":";
  AppendJsonString(out, r.id);
  out += ",\"outcome\":\"";
  out += RunOutcomeName(r.outcome);
  out += "\",\"shardCount\":";
  out += std::to_string(r.shard_count);
  out += ",\"shardIndex\":";
  out += std::to_string(r.shard_index);
  out += ",\"subject\":";
  AppendJsonString(out, r.subject);
  out += ",\"time\":";
  AppendJsonString(out, r.time);
  out += '}';
  return out;
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
  r.outcome = ParseRunOutcome(j["outcome"].get_ref<const std::string&>());
  if (auto dl = j.find("deadLettered"); dl != j.end()) {
    if (!dl->is_boolean()) return InvalidArgument("result record's \"deadLettered\" is not a boolean");
    r.dead_lettered = dl->get<bool>();
  }
  // Numbers outside what a worker writes are refused, not wrapped into an int.
  auto num = [&](const char* f, int64_t def, int64_t lo, int64_t hi, int64_t& out) -> Status {
    out = def;
    if (!j.contains(f)) return Status();
    const auto& v = j[f];
    if (!v.is_number_integer() || (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(hi)) ||
        v.get<int64_t>() < lo || v.get<int64_t>() > hi) {
      return InvalidArgument(std::string("result record's \"") + f + "\" is not an integer in " + std::to_string(lo) +
                             ".." + std::to_string(hi));
    }
    out = v.get<int64_t>();
    return Status();
  };
  constexpr int64_t kIntMax = std::numeric_limits<int>::max();
  int64_t attempts = 0, duration = 0, index = 0, count = 1;
  for (auto s : {num("attempts", 0, 0, kIntMax, attempts),
                 num("durationMs", 0, 0, std::numeric_limits<int64_t>::max(), duration),
                 num("shardIndex", 0, 0, kIntMax, index), num("shardCount", 1, 1, kIntMax, count)}) {
    if (!s.ok()) return s;
  }
  if (index >= count) {
    return InvalidArgument("result record's shardIndex " + std::to_string(index) + " is not a shard of shardCount " +
                           std::to_string(count));
  }
  r.attempts = static_cast<int>(attempts);
  r.duration_ms = duration;
  r.shard_index = static_cast<int>(index);
  r.shard_count = static_cast<int>(count);
  return r;
}

}  // namespace cronlane
