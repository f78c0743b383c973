#include "operator/object_fields.h"

#include "operator/interner.h"

#include <algorithm>
#include <limits>

namespace cronlane::op {

bool ObjectMetaFromJson(const kube::Json& obj, ObjectMeta& out) {
  if (!obj.is_object()) return false;
  auto it = obj.find("metadata");
  if (it == obj.end() || !it->is_object()) return false;
  const kube::Json& meta = *it;
  out.ns = JsonString(meta, "namespace");
  out.name = JsonString(meta, "name");
  out.uid = JsonString(meta, "uid");
  out.resource_version = JsonString(meta, "resourceVersion");
  out.generation = JsonInt(meta, "generation", 0);
  out.deleting = meta.contains("deletionTimestamp") && !meta["deletionTimestamp"].is_null();
  return !out.name.empty() && !out.uid.empty();
}

bool GenerationChanged(const ObjectMeta* old, const ObjectMeta* now) {
  if (old == nullptr || now == nullptr) return true;
  return old->generation != now->generation || old->uid != now->uid || old->deleting != now->deleting;
}

using kube::Json;

std::string JsonString(const Json& j, const char* key, const std::string& def) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : def;
}

std::optional<int64_t> JsonOptInt(const Json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer()) return std::nullopt;
  return JsonInt(j, key, 0);
}

int64_t JsonInt(const Json& j, const char* key, int64_t def) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_integer()) return def;
  if (it->is_number_unsigned()) {
    return static_cast<int64_t>(std::min<uint64_t>(it->get<uint64_t>(), std::numeric_limits<int64_t>::max()));
  }
  return it->get<int64_t>();
}

int JsonInt32(const Json& j, const char* key, int def) {
  return static_cast<int>(
      std::clamp<int64_t>(JsonInt(j, key, def), std::numeric_limits<int>::min(), std::numeric_limits<int>::max()));
}

bool JsonBool(const Json& j, const char* key, bool def) {
  auto it = j.find(key);
  return it != j.end() && it->is_boolean() ? it->get<bool>() : def;
}

size_t HashConditions(const std::vector<Condition>& conditions) {
  size_t h = 0;
  auto mix = [&h](size_t v) { h ^= v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2); };
  std::hash<std::string> str;
  for (const auto& c : conditions) {
    mix(str(c.type));
    mix(str(c.status));
    mix(str(c.reason));
    mix(str(c.message));
    mix(str(c.last_transition_time));
    mix(std::hash<int64_t>{}(c.observed_generation));
  }
  return h;
}

namespace {

struct ConditionsHash {
  size_t operator()(const std::vector<Condition>& conditions) const { return HashConditions(conditions); }
};

}  // namespace

SharedConditions InternConditions(std::vector<Condition> conditions) {
  static Interner<std::vector<Condition>, ConditionsHash> interner;
  if (conditions.empty()) return nullptr;
  return interner.Intern(std::move(conditions));
}

std::vector<Condition> ConditionsFromJson(const Json& status) {
  std::vector<Condition> out;
  auto cs = status.find("conditions");
  if (cs == status.end() || !cs->is_array()) return out;
  for (const auto& c : *cs) {
    if (!c.is_object()) continue;
    out.push_back({JsonString(c, "type"), JsonString(c, "status"), JsonString(c, "reason"), JsonString(c, "message"),
                   JsonString(c, "lastTransitionTime"), JsonInt(c, "observedGeneration", 0)});
  }
  return out;
}

Json ConditionsToJson(const std::vector<Condition>& conditions) {
  Json out = Json::array();
  for (const auto& c : conditions) {
    out.push_back({{"type", c.type},
                   {"status", c.status},
                   {"reason", c.reason},
                   {"message", c.message},
                   {"lastTransitionTime", c.last_transition_time},
                   {"observedGeneration", c.observed_generation}});
  }
  return out;
}

const Condition* FindCondition(const std::vector<Condition>& conditions, const std::string& type) {
  for (const auto& c : conditions) {
    if (c.type == type) return &c;
  }
  return nullptr;
}

void SetCondition(std::vector<Condition>& conditions, Condition c, const std::vector<Condition>& before,
                  const std::string& now) {
  const Condition* old = FindCondition(before, c.type);
  c.last_transition_time = old != nullptr && old->status == c.status ? old->last_transition_time : now;
  conditions.erase(
      std::remove_if(conditions.begin(), conditions.end(), [&](const Condition& x) { return x.type == c.type; }),
      conditions.end());
  conditions.push_back(std::move(c));
}

void SetReadiness(std::vector<Condition>& conditions, const Condition& ready, bool stalled,
                  const std::vector<Condition>& before, const std::string& now) {
  conditions.erase(
      std::remove_if(conditions.begin(), conditions.end(),
                     [](const Condition& x) { return x.type == kConditionReconciling || x.type == kConditionStalled; }),
      conditions.end());
  if (stalled) {
    SetCondition(conditions, {kConditionStalled, "True", ready.reason, ready.message, "", ready.observed_generation},
                 before, now);
  }
  SetCondition(conditions, ready, before, now);
  // Ready first: `kubectl get -o jsonpath={.status.conditions[0]}` and people read it.
  std::stable_partition(conditions.begin(), conditions.end(),
                        [](const Condition& x) { return x.type == kConditionReady; });
}

}  // namespace cronlane::op
