#pragma once
// What the operator's typed objects (ScheduledTask, WorkerPool) share: their
// metadata (decoded once, here), reading fields of an API object leniently, and
// status conditions (decode, encode, find, set with Kubernetes' lastTransitionTime
// rule).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "operator/events.h"
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

// The metadata the operator keeps of an object. Typed objects derive from it.
struct ObjectMeta {
  std::string ns;
  std::string name;
  std::string uid;
  std::string resource_version;
  int64_t generation = 0;
  bool deleting = false;  // deletionTimestamp is set

  // "namespace/name" ("name" for cluster-scoped objects): the cache and queue key.
  std::string Key() const { return ns.empty() ? name : ns + "/" + name; }
  // What an Event about this object names.
  ObjectRef Ref(const std::string& api_version, const std::string& kind) const {
    return {api_version, kind, ns, name, uid, resource_version};
  }
};

// Decodes metadata; false when the object has no metadata, name or uid.
bool ObjectMetaFromJson(const kube::Json& object, ObjectMeta& out);

// Whether a cache change needs a reconcile: the object is new or deleted, was
// re-created under the same name, its spec changed (generation) or its deletion
// began. Status-only updates (our own writes) do not qualify.
bool GenerationChanged(const ObjectMeta* old, const ObjectMeta* now);

// j[key] if it is a string / an integer / a boolean, else `def`: a field of another
// type than the schema's reads as absent, never throws. Integers saturate (an
// unsigned above INT64_MAX is INT64_MAX; JsonInt32 clamps to int's range), so a
// value out of range stays out of range for the checks after it instead of wrapping
// into one that passes them.
std::string JsonString(const kube::Json& j, const char* key, const std::string& def = "");
int64_t JsonInt(const kube::Json& j, const char* key, int64_t def);
int JsonInt32(const kube::Json& j, const char* key, int def);
bool JsonBool(const kube::Json& j, const char* key, bool def);
// j[key] if it is an integer (saturated as JsonInt does), else none.
std::optional<int64_t> JsonOptInt(const kube::Json& j, const char* key);
// For status patches: the value, or null (a merge patch then removes the field).
template <typename T>
kube::Json JsonOrNull(const std::optional<T>& v) {
  return v ? kube::Json(*v) : kube::Json(nullptr);
}
inline kube::Json JsonOrNull(const std::string& s) {
  return s.empty() ? kube::Json(nullptr) : kube::Json(s);
}

// A hash of conditions' values (every field), for interning and for remembering
// what was handed over without keeping a copy.
size_t HashConditions(const std::vector<Condition>& conditions);

// Conditions shared by every object whose conditions are equal (interner.h): most
// tasks carry the same Ready condition. Null: no conditions.
using SharedConditions = std::shared_ptr<const std::vector<Condition>>;
// The process-wide shared copy of `conditions`; null when empty. Thread-safe.
SharedConditions InternConditions(std::vector<Condition> conditions);

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

// The condition types GitOps tools read (kstatus, the health library of Flux and
// kpt; Argo CD's health check in manifests/gitops/argocd), by the Kubernetes API
// conventions:
inline constexpr const char* kConditionReady = "Ready";
// True until the operator first writes status: the CRDs default it (crds/), so an
// object the operator has not seen is InProgress, not Current.
inline constexpr const char* kConditionReconciling = "Reconciling";
// True when the spec cannot work until a person changes it: kstatus says Failed.
inline constexpr const char* kConditionStalled = "Stalled";
// True when a one-shot (runAt) or bounded (endTime) ScheduledTask has nothing left
// to fire, as a Job's Complete (`kubectl wait --for=condition=Complete`).
inline constexpr const char* kConditionComplete = "Complete";

// Sets `ready` (its observedGeneration as given) and, when `stalled`, Stalled=True
// with ready's reason and message; removes Stalled otherwise and always removes
// Reconciling (writing status means the operator observed the generation). Other
// condition types are kept. Ready stays the first condition.
void SetReadiness(std::vector<Condition>& conditions, const Condition& ready, bool stalled,
                  const std::vector<Condition>& before, const std::string& now);

}  // namespace cronlane::op
