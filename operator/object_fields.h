#pragma once
// What the operator's typed objects (ScheduledTask, WorkerPool) share: reading
// fields of an API object leniently, and status conditions (decode, encode, find,
// set with Kubernetes' lastTransitionTime rule).

#include <cstdint>
#include <string>
#include <vector>

#include "operator/kube/client.h"

namespace cronlane::op {

struct Condition {
  std::string type;
  std::string status;  // "True", "False", "Unknown"
  std::string reason;
  std::string message;
  std::string last_transition_time;
  int64_t observed_generation = 0;
  bool operator==(const Condition&) const = default;
};

// j[key] if it is a string / an integer, else `def`.
std::string JsonString(const kube::Json& j, const char* key, const std::string& def = "");
int64_t JsonInt(const kube::Json& j, const char* key, int64_t def);

// status.conditions of an API object's status (empty when absent or malformed).
std::vector<Condition> ConditionsFromJson(const kube::Json& status);
kube::Json ConditionsToJson(const std::vector<Condition>& conditions);

// The condition of a type, or null.
const Condition* FindCondition(const std::vector<Condition>& conditions, const std::string& type);

// Replaces (or adds) `c` in `conditions`. lastTransitionTime is `now` unless the
// condition of that type in `before` (the object as read) had the same status, whose
// time is kept.
void SetCondition(std::vector<Condition>& conditions, Condition c, const std::vector<Condition>& before,
                  const std::string& now);

}  // namespace cronlane::op
