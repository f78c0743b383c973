#include "operator/scheduled_task.h"

namespace cronlane::op {
namespace {

using kube::Json;

std::string Str(const Json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : "";
}

int64_t Int(const Json& j, const char* key, int64_t def) {
  auto it = j.find(key);
  return it != j.end() && it->is_number_integer() ? it->get<int64_t>() : def;
}

}  // namespace

const Condition* TaskStatus::Find(const std::string& type) const {
  for (const auto& c : conditions) {
    if (c.type == type) return &c;
  }
  return nullptr;
}

std::optional<ScheduledTask> ScheduledTaskFromJson(const Json& obj) {
  if (!obj.is_object() || !obj.contains("metadata") || !obj["metadata"].is_object()) return std::nullopt;
  const Json& meta = obj["metadata"];
  ScheduledTask t;
  t.ns = Str(meta, "namespace");
  t.name = Str(meta, "name");
  t.uid = Str(meta, "uid");
  t.resource_version = Str(meta, "resourceVersion");
  t.generation = Int(meta, "generation", 0);
  t.deleting = meta.contains("deletionTimestamp") && !meta["deletionTimestamp"].is_null();
  if (t.name.empty() || t.uid.empty()) return std::nullopt;

  auto spec_it = obj.find("spec");
  if (spec_it == obj.end() || !spec_it->is_object()) return std::nullopt;
  const Json& spec = *spec_it;
  dispatcher::TaskDefinition& d = t.def;
  d.id = t.uid;
  d.ns = t.ns;
  d.name = t.name;
  d.source = kScheduledTasks.Path(t.ns, t.name);
  d.generation = t.generation;
  if (auto created = dispatcher::ParseRfc3339(Str(meta, "creationTimestamp")); created.ok()) d.created = *created;
  d.schedule = Str(spec, "schedule");
  d.time_zone = Str(spec, "timeZone");
  d.suspend = spec.value("suspend", false);
  if (spec.contains("startingDeadlineSeconds") && spec["startingDeadlineSeconds"].is_number_integer()) {
    d.starting_deadline_seconds = spec["startingDeadlineSeconds"].get<int64_t>();
  }
  std::string catch_up = Str(spec, "catchUpPolicy");
  d.catch_up = catch_up == "All"    ? dispatcher::CatchUpPolicy::kAll
               : catch_up == "None" ? dispatcher::CatchUpPolicy::kNone
                                    : dispatcher::CatchUpPolicy::kLatest;
  d.max_catch_up = static_cast<int>(Int(spec, "maxCatchUp", 100));
  d.concurrency = Str(spec, "concurrencyPolicy") == "Forbid" ? dispatcher::ConcurrencyPolicy::kForbid
                                                             : dispatcher::ConcurrencyPolicy::kAllow;
  d.jitter_seconds = static_cast<int>(Int(spec, "jitterSeconds", 0));
  if (auto target = spec.find("target"); target != spec.end() && target->is_object()) {
    d.topic = Str(*target, "topic");
    d.key = Str(*target, "key");
    if (auto h = target->find("headers"); h != target->end() && h->is_object()) {
      for (const auto& [k, v] : h->items()) {
        if (v.is_string()) d.headers.emplace_back(k, v.get<std::string>());
      }
    }
  }
  d.payload_json = spec.contains("payload") ? spec["payload"].dump() : "null";
  d.shards = static_cast<int>(Int(spec, "shards", 1));
  if (auto ex = spec.find("execution"); ex != spec.end() && ex->is_object()) {
    d.timeout_seconds = static_cast<int>(Int(*ex, "timeoutSeconds", 0));
    d.max_attempts = static_cast<int>(Int(*ex, "maxAttempts", 1));
    d.backoff_seconds = static_cast<int>(Int(*ex, "backoffSeconds", 10));
  }

  if (auto st = obj.find("status"); st != obj.end() && st->is_object()) {
    TaskStatus& s = t.status;
    s.observed_generation = Int(*st, "observedGeneration", 0);
    s.last_schedule_time = Str(*st, "lastScheduleTime");
    s.next_schedule_time = Str(*st, "nextScheduleTime");
    s.last_successful_time = Str(*st, "lastSuccessfulTime");
    s.fired_count = Int(*st, "firedCount", 0);
    s.missed_count = Int(*st, "missedCount", 0);
    if (auto cs = st->find("conditions"); cs != st->end() && cs->is_array()) {
      for (const auto& c : *cs) {
        s.conditions.push_back({Str(c, "type"), Str(c, "status"), Str(c, "reason"), Str(c, "message"),
                                Str(c, "lastTransitionTime"), Int(c, "observedGeneration", 0)});
      }
    }
  }
  return t;
}

Json StatusPatch(const TaskStatus& s) {
  auto str_or_null = [](const std::string& v) { return v.empty() ? Json(nullptr) : Json(v); };
  Json conditions = Json::array();
  for (const auto& c : s.conditions) {
    conditions.push_back({{"type", c.type},
                          {"status", c.status},
                          {"reason", c.reason},
                          {"message", c.message},
                          {"lastTransitionTime", c.last_transition_time},
                          {"observedGeneration", c.observed_generation}});
  }
  return {{"status",
           {{"observedGeneration", s.observed_generation},
            {"conditions", conditions},
            {"lastScheduleTime", str_or_null(s.last_schedule_time)},
            {"nextScheduleTime", str_or_null(s.next_schedule_time)},
            {"lastSuccessfulTime", str_or_null(s.last_successful_time)},
            {"firedCount", s.fired_count},
            {"missedCount", s.missed_count}}}};
}

}  // namespace cronlane::op
