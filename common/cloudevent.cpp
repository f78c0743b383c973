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
  enum Attr {
    kSpecVersion,
    kId,
    kSource,
    kType,
    kTime,
    kSubject,
    kShardIndex,
    kShardCount,
    kMaxAttempts,
    kBackoffSeconds,
    kTimeoutSeconds,
    kAttrs
  };
  static constexpr std::array<std::string_view, kAttrs> kNames{
      "ce_specversion", "ce_id",         "ce_source",      "ce_type",           "ce_time",          "ce_subject",
      "ce_shardindex",  "ce_shardcount", "ce_maxattempts", "ce_backoffseconds", "ce_timeoutseconds"};
  std::array<std::optional<std::string_view>, kAttrs> attrs;
  for (const auto& h : m.headers) {
    if (!std::string_view(h.name).starts_with("ce_")) continue;
    for (int a = 0; a < kAttrs; ++a) {
      if (h.name == kNames[a]) {
        if (!attrs[a]) attrs[a] = std::string_view(h.value);
        break;
      }
    }
  }
  auto get = [&](Attr a) { return attrs[a].value_or(std::string_view()); };
  if (get(kSpecVersion) != "1.0") return InvalidArgument("not a CloudEvent 1.0 (ce_specversion missing or not 1.0)");
  const std::string_view id = get(kId), source = get(kSource), type = get(kType);
  if (id.empty() || source.empty() || type.empty()) {
    return InvalidArgument("CloudEvent without ce_id, ce_source or ce_type");
  }
  FiredTask t;
  struct IntAttr {
    Attr attr;
    int* out;
  };
  for (IntAttr a : {IntAttr{kShardIndex, &t.shard_index}, IntAttr{kShardCount, &t.shard_count},
                    IntAttr{kMaxAttempts, &t.max_attempts}, IntAttr{kBackoffSeconds, &t.backoff_seconds},
                    IntAttr{kTimeoutSeconds, &t.timeout_seconds}}) {
    const std::string_view v = get(a.attr);
    if (!v.empty() && !ToInt(v, *a.out)) {
      return InvalidArgument(std::string(kNames[a.attr]) + " is not a number: " + std::string(v));
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
  t.time = get(kTime);
  t.subject = get(kSubject);
  t.key = std::forward<Message>(m).key.value_or("");  // moved when taken
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
