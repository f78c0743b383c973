#include "common/cloudevent.h"

#include <array>
#include <charconv>
#include <optional>
#include <string_view>
#include <utility>

namespace cronlane {
namespace {

bool ToInt(std::string_view s, int& out) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
  return ec == std::errc() && p == s.data() + s.size();
}

}  // namespace

namespace {

// Reads the attributes from `m`'s headers (by view: nothing is copied before the
// message is known to be a fired task), then takes or copies the parts of `m`.
template <typename Message>
Result<FiredTask> Decode(Message&& m) {
  // One pass over the headers (the first of a name counts, as with HeaderValue):
  // every fired task is decoded on a worker's hot path.
  struct Attr {
    std::string_view name;  // without "ce_"
    std::optional<std::string_view> value;
  };
  std::array<Attr, 11> attrs{{{"specversion"},
                              {"id"},
                              {"source"},
                              {"type"},
                              {"time"},
                              {"subject"},
                              {"shardindex"},
                              {"shardcount"},
                              {"maxattempts"},
                              {"backoffseconds"},
                              {"timeoutseconds"}}};
  for (const auto& h : m.headers) {
    std::string_view name = h.name;
    if (!name.starts_with("ce_")) continue;
    name.remove_prefix(3);
    for (Attr& a : attrs) {
      if (a.name == name) {
        if (!a.value) a.value = std::string_view(h.value);
        break;
      }
    }
  }
  // By name, among the 11 views (not the headers).
  auto get = [&](std::string_view name) {
    name.remove_prefix(3);
    for (const Attr& a : attrs) {
      if (name == a.name) return a.value.value_or(std::string_view());
    }
    return std::string_view();
  };
  if (get("ce_specversion") != "1.0")
    return InvalidArgument("not a CloudEvent 1.0 (ce_specversion missing or not 1.0)");
  const std::string_view id = get("ce_id"), source = get("ce_source"), type = get("ce_type");
  if (id.empty() || source.empty() || type.empty()) {
    return InvalidArgument("CloudEvent without ce_id, ce_source or ce_type");
  }
  FiredTask t;
  struct IntAttr {
    const char* name;
    int* out;
  };
  for (IntAttr a : {IntAttr{"ce_shardindex", &t.shard_index}, IntAttr{"ce_shardcount", &t.shard_count},
                    IntAttr{"ce_maxattempts", &t.max_attempts}, IntAttr{"ce_backoffseconds", &t.backoff_seconds},
                    IntAttr{"ce_timeoutseconds", &t.timeout_seconds}}) {
    const std::string_view v = get(a.name);
    if (!v.empty() && !ToInt(v, *a.out)) {
      return InvalidArgument(std::string(a.name) + " is not a number: " + std::string(v));
    }
  }
  if (t.max_attempts < 1) t.max_attempts = 1;
  if (t.shard_count < 1 || t.shard_index < 0 || t.shard_index >= t.shard_count) {
    return InvalidArgument("ce_shardindex " + std::to_string(t.shard_index) + " is not a shard of ce_shardcount " +
                           std::to_string(t.shard_count));
  }
  if (t.backoff_seconds < 0) return InvalidArgument("ce_backoffseconds is negative");
  if (t.timeout_seconds < 0) return InvalidArgument("ce_timeoutseconds is negative");
  t.id = id;
  t.source = source;
  t.type = type;
  t.time = get("ce_time");
  t.subject = get("ce_subject");
  t.key = m.key.value_or("");
  // Last: the views above point into these.
  t.payload = std::forward<Message>(m).value;
  t.headers = std::forward<Message>(m).headers;
  return t;
}

}  // namespace

Result<FiredTask> DecodeFiredTask(const kafka::Message& m) {
  return Decode(m);
}
Result<FiredTask> TakeFiredTask(kafka::Message& m) {
  return Decode(std::move(m));
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
