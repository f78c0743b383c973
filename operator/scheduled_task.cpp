#include "operator/scheduled_task.h"

#include "common/time.h"

namespace cronlane::op {
namespace {
using kube::Json;
}  // namespace

const std::vector<Condition>& TaskStatus::Conditions() const {
  static const std::vector<Condition> kNone;
  return conditions ? *conditions : kNone;
}

const Condition* TaskStatus::Find(const std::string& type) const {
  return FindCondition(Conditions(), type);
}

bool TaskStatus::operator==(const TaskStatus& o) const {
  return observed_generation == o.observed_generation && Conditions() == o.Conditions() &&
         last_schedule_time == o.last_schedule_time && next_schedule_time == o.next_schedule_time &&
         last_successful_time == o.last_successful_time && fired_count == o.fired_count &&
         missed_count == o.missed_count && shard == o.shard && SameHistory(runs, o.runs);
}

std::optional<ScheduledTask> ScheduledTaskFromJson(const Json& obj, const ScheduledTask* previous) {
  ScheduledTask t;
  if (!ObjectMetaFromJson(obj, t)) return std::nullopt;
  const Json& meta = obj["metadata"];

  auto spec_it = obj.find("spec");
  if (spec_it == obj.end() || !spec_it->is_object()) return std::nullopt;
  const Json& spec = *spec_it;
  auto def = std::make_shared<dispatcher::TaskDefinition>();
  dispatcher::TaskDefinition& d = *def;
  d.id = t.uid;
  d.ns = t.ns;
  d.name = t.name;
  d.generation = t.generation;
  if (auto created = ParseRfc3339(JsonString(meta, "creationTimestamp")); created.ok()) d.created = *created;
  d.schedule = JsonString(spec, "schedule");
  if (auto list = spec.find("schedules"); list != spec.end() && list->is_array()) {
    std::vector<dispatcher::ScheduleEntry> entries;
    for (const auto& item : *list) {
      if (!item.is_object()) continue;
      entries.push_back({JsonString(item, "schedule"), JsonInt32(item, "jitterSeconds", -1)});
    }
    d.schedules = std::move(entries);
  }
  if (auto ttl = spec.find("ttlSecondsAfterFinished"); ttl != spec.end() && ttl->is_number_integer()) {
    t.ttl_seconds_after_finished = JsonInt32(spec, "ttlSecondsAfterFinished", -1);
  }
  if (spec.contains("runAt") || spec.contains("startTime") || spec.contains("endTime")) {
    d.bounds =
        dispatcher::TimeBounds{JsonString(spec, "runAt"), JsonString(spec, "startTime"), JsonString(spec, "endTime")};
  }
  d.time_zone = JsonString(spec, "timeZone");
  d.suspend = JsonBool(spec, "suspend", false);
  if (auto it = spec.find("startingDeadlineSeconds"); it != spec.end() && it->is_number_integer()) {
    d.starting_deadline_seconds = JsonInt(spec, "startingDeadlineSeconds", 0);
  }
  std::string catch_up = JsonString(spec, "catchUpPolicy");
  d.catch_up = catch_up == "All"    ? dispatcher::CatchUpPolicy::kAll
               : catch_up == "None" ? dispatcher::CatchUpPolicy::kNone
                                    : dispatcher::CatchUpPolicy::kLatest;
  d.max_catch_up = JsonInt32(spec, "maxCatchUp", 100);
  const std::string concurrency = JsonString(spec, "concurrencyPolicy");
  d.concurrency = concurrency == "Forbid"    ? dispatcher::ConcurrencyPolicy::kForbid
                  : concurrency == "Replace" ? dispatcher::ConcurrencyPolicy::kReplace
                                             : dispatcher::ConcurrencyPolicy::kAllow;
  d.jitter_seconds = JsonInt32(spec, "jitterSeconds", 0);
  if (auto target = spec.find("target"); target != spec.end() && target->is_object()) {
    d.topic = JsonString(*target, "topic");
    dispatcher::MessageExtras extras;
    extras.key = JsonString(*target, "key");
    if (auto h = target->find("headers"); h != target->end() && h->is_object()) {
      for (const auto& [k, v] : h->items()) {
        if (v.is_string()) extras.headers.emplace_back(k, v.get<std::string>());
      }
    }
    if (!extras.key.empty() || !extras.headers.empty()) d.message = std::move(extras);
  }
  d.payload_json = spec.contains("payload") ? spec["payload"].dump() : "null";
  d.shards = JsonInt32(spec, "shards", 1);
  if (auto ex = spec.find("execution"); ex != spec.end() && ex->is_object()) {
    d.timeout_seconds = JsonInt32(*ex, "timeoutSeconds", 0);
    d.max_attempts = JsonInt32(*ex, "maxAttempts", 1);
    d.backoff_seconds = JsonInt32(*ex, "backoffSeconds", 10);
  }
  // An update that did not change the spec (a status write) keeps the definition
  // the dispatcher already shares.
  if (previous != nullptr && previous->def && *previous->def == d) {
    t.def = previous->def;
  } else {
    t.def = std::move(def);
  }

  if (auto ann = meta.find("annotations"); ann != meta.end() && ann->is_object()) {
    if (auto token = ann->find(kRunNowAnnotation); token != ann->end() && token->is_string()) {
      dispatcher::RunRequest r{token->get<std::string>(), JsonString(*ann, kRunNowForceAnnotation) == "true"};
      if (previous != nullptr && previous->run_now && *previous->run_now == r) {
        t.run_now = previous->run_now;
      } else {
        t.run_now = std::make_shared<const dispatcher::RunRequest>(std::move(r));
      }
    }
  }

  if (auto st = obj.find("status"); st != obj.end() && st->is_object()) {
    TaskStatus& s = t.status;
    s.observed_generation = JsonInt(*st, "observedGeneration", 0);
    auto time = [&](const char* field) -> std::optional<Instant> {
      auto parsed = ParseRfc3339(JsonString(*st, field));
      return parsed.ok() ? std::optional<Instant>(*parsed) : std::nullopt;
    };
    s.last_schedule_time = time("lastScheduleTime");
    s.next_schedule_time = time("nextScheduleTime");
    s.last_successful_time = time("lastSuccessfulTime");
    s.fired_count = JsonInt(*st, "firedCount", 0);
    s.shard = JsonInt32(*st, "shard", -1);
    s.missed_count = JsonInt(*st, "missedCount", 0);
    s.runs = RunHistoryFromJson(*st, previous != nullptr ? previous->status.runs : nullptr);
    std::vector<Condition> conditions = ConditionsFromJson(*st);
    // A status write that left the conditions alone shares them without the
    // interner's lock.
    if (previous != nullptr && previous->status.conditions && *previous->status.conditions == conditions) {
      s.conditions = previous->status.conditions;
    } else {
      s.conditions = InternConditions(std::move(conditions));
    }
  }
  return t;
}

}  // namespace cronlane::op
