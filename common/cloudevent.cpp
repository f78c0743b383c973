#include "common/cloudevent.h"

#include <charconv>

namespace cronlane {
namespace {

bool ToInt(const std::string& s, int& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

Result<FiredTask> DecodeFiredTask(const kafka::Message& m) {
  FiredTask t;
  for (const auto& h : m.headers) t.headers[h.name] = h.value;
  auto get = [&](const char* name) {
    auto it = t.headers.find(name);
    return it == t.headers.end() ? std::string() : it->second;
  };
  if (get("ce_specversion") != "1.0")
    return InvalidArgument("not a CloudEvent 1.0 (ce_specversion missing or not 1.0)");
  t.id = get("ce_id");
  t.source = get("ce_source");
  t.type = get("ce_type");
  if (t.id.empty() || t.source.empty() || t.type.empty()) {
    return InvalidArgument("CloudEvent without ce_id, ce_source or ce_type");
  }
  t.time = get("ce_time");
  t.subject = get("ce_subject");
  t.key = m.key.value_or("");
  t.payload = m.value;
  struct IntAttr {
    const char* name;
    int* out;
  };
  for (IntAttr a : {IntAttr{"ce_shardindex", &t.shard_index}, IntAttr{"ce_shardcount", &t.shard_count},
                    IntAttr{"ce_maxattempts", &t.max_attempts}, IntAttr{"ce_backoffseconds", &t.backoff_seconds},
                    IntAttr{"ce_timeoutseconds", &t.timeout_seconds}}) {
    std::string v = get(a.name);
    if (!v.empty() && !ToInt(v, *a.out)) return InvalidArgument(std::string(a.name) + " is not a number: " + v);
  }
  if (t.max_attempts < 1) t.max_attempts = 1;
  if (t.shard_count < 1 || t.shard_index < 0 || t.shard_index >= t.shard_count) {
    return InvalidArgument("ce_shardindex " + std::to_string(t.shard_index) + " is not a shard of ce_shardcount " +
                           std::to_string(t.shard_count));
  }
  if (t.backoff_seconds < 0) return InvalidArgument("ce_backoffseconds is negative");
  if (t.timeout_seconds < 0) return InvalidArgument("ce_timeoutseconds is negative");
  return t;
}

std::vector<kafka::Header> CancelEventHeaders(const CancelEvent& e, const std::string& time) {
  return {{"ce_specversion", "1.0"},
          {"ce_id", e.id},
          {"ce_source", e.source},
          {"ce_type", kCancelEventType},
          {"ce_time", time},
          {"ce_subject", e.subject},
          {"ce_canceltask", e.task_id},
          {"ce_cancelbefore", e.before}};
}

Result<CancelEvent> DecodeCancelEvent(const kafka::Message& m) {
  auto get = [&](std::string_view name) { return std::string(m.HeaderValue(name).value_or("")); };
  if (get("ce_specversion") != "1.0" || get("ce_type") != kCancelEventType) {
    return InvalidArgument(std::string("not a CloudEvent 1.0 of type ") + kCancelEventType);
  }
  CancelEvent e{get("ce_id"), get("ce_source"), get("ce_subject"), get("ce_canceltask"), get("ce_cancelbefore")};
  if (e.id.empty() || e.task_id.empty() || e.before.empty()) {
    return InvalidArgument("cancel event without ce_id, ce_canceltask or ce_cancelbefore");
  }
  return e;
}

}  // namespace cronlane
