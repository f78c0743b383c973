#include "operator/backfill.h"

#include <algorithm>

namespace cronlane::op {

namespace {

using kube::Json;

std::optional<Instant> OptTime(const Json& j, const char* key) {
  const std::string text = JsonString(j, key);
  if (text.empty()) return std::nullopt;
  auto t = ParseRfc3339(text);
  if (!t.ok()) return std::nullopt;
  return *t;
}

}  // namespace

std::optional<Backfill> BackfillFromJson(const Json& obj) {
  Backfill b;
  if (!ObjectMetaFromJson(obj, b)) return std::nullopt;
  auto spec_it = obj.find("spec");
  if (spec_it == obj.end() || !spec_it->is_object()) return std::nullopt;
  const Json& spec = *spec_it;
  b.spec.task_name = JsonString(spec, "taskName");
  b.spec.from = OptTime(spec, "from");
  b.spec.to = OptTime(spec, "to");
  b.spec.max_per_second = std::clamp(JsonInt32(spec, "maxPerSecond", b.spec.max_per_second), 1, 1000);
  b.spec.newest_first = JsonString(spec, "order") == "NewestFirst";
  if (auto st = obj.find("status"); st != obj.end() && st->is_object()) {
    BackfillStatus& s = b.status;
    s.observed_generation = JsonInt(*st, "observedGeneration", 0);
    s.task_uid = JsonString(*st, "taskUID");
    s.total = JsonOptInt(*st, "total");
    s.fired = JsonOptInt(*st, "fired");
    s.start_time = JsonString(*st, "startTime");
    s.completion_time = JsonString(*st, "completionTime");
    s.conditions = ConditionsFromJson(*st);
  }
  return b;
}

Json BackfillStatusPatch(const BackfillStatus& s) {
  return {{"status",
           {{"observedGeneration", s.observed_generation},
            {"taskUID", JsonOrNull(s.task_uid)},
            {"total", JsonOrNull(s.total)},
            {"fired", JsonOrNull(s.fired)},
            {"startTime", JsonOrNull(s.start_time)},
            {"completionTime", JsonOrNull(s.completion_time)},
            {"conditions", ConditionsToJson(s.conditions)}}}};
}

}  // namespace cronlane::op
