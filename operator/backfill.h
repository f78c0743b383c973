#pragma once
// The Backfill as the operator caches it (typed), and its status patch. A Backfill
// fires, now, every occurrence a ScheduledTask's schedule had in [from, to):
// dispatcher/task.h BackfillDefinition says what the dispatcher does with it;
// operator/backfill_controller.h how the operator gets it there.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/time.h"
#include "operator/kube/client.h"
#include "operator/object_fields.h"

namespace cronlane::op {

inline const kube::ResourceRef kBackfills{"cronlane.dev", "v1alpha1", "backfills"};
inline constexpr const char* kBackfillApiVersion = "cronlane.dev/v1alpha1";

struct BackfillSpec {
  std::string task_name;  // a ScheduledTask in the Backfill's namespace
  // spec.from / spec.to as RFC 3339; none when absent or unparsable (the CRD's
  // schema admits neither, so only a hand-edited object without it gets here).
  std::optional<Instant> from;
  std::optional<Instant> to;
  int32_t max_per_second = 10;  // 1..1000
  bool newest_first = false;    // spec.order NewestFirst
  bool operator==(const BackfillSpec&) const = default;
};

struct BackfillStatus {
  int64_t observed_generation = 0;
  // The UID of the task when the Backfill was first seen: it pins the incarnation
  // (a task re-created under the name is not backfilled). Empty until then.
  std::string task_uid;
  std::optional<int64_t> total;  // occurrences in the range
  std::optional<int64_t> fired;  // committed to Kafka so far
  std::string start_time;        // RFC 3339: when the task was pinned; "" before
  std::string completion_time;   // RFC 3339: when the last occurrence was committed
  std::vector<Condition> conditions;
  bool operator==(const BackfillStatus&) const = default;

  const Condition* Find(const std::string& type) const { return FindCondition(conditions, type); }
};

struct Backfill : ObjectMeta {
  BackfillSpec spec;
  BackfillStatus status;
  // The cache key of the task ("namespace/taskName").
  std::string TaskKey() const { return ns + "/" + spec.task_name; }
};

// Decodes an API object; nullopt without metadata or spec.
std::optional<Backfill> BackfillFromJson(const kube::Json& object);

// The merge patch that replaces `status` (unset fields become null).
kube::Json BackfillStatusPatch(const BackfillStatus& status);

}  // namespace cronlane::op
