#pragma once
// status.recentRuns and status.lastFailureTime of a ScheduledTask: the last
// kMaxRecentRuns runs the workers reported on the results topic, newest first.
//
// One entry per occurrence: an occurrence is its trigger and its scheduled time
// (ce_time; for a run-now, when it was handled). Results of the same occurrence
// (its shards, or a duplicate delivery) merge into its entry: the worst outcome
// (Failed, then Cancelled, then Succeeded), the most attempts, the longest
// duration, the latest finish, dead-lettered if any was. So merging is idempotent:
// a new leader replaying the results topic changes nothing that status shows.
//
// The history lives in status (so a failover keeps it) and, decoded, in the
// informer cache, shared with the status writer: 16 bytes a run, nothing for a
// task without results.

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "common/task_result.h"
#include "common/time.h"
#include "dispatcher/results_follower.h"
#include "operator/kube/client.h"

namespace cronlane::op {

inline constexpr size_t kMaxRecentRuns = 10;

// 16 bytes: 100k tasks with full histories hold 16 MB of runs, not 24.
struct RecentRun {
  // Seconds since 2000-01-01T00:00:00Z (runs are reported near "now": clamped to
  // 2000..2136 instead of 8 bytes of unix time).
  uint32_t scheduled = 0;
  int32_t finished_after = 0;  // finishedTime - scheduledTime, seconds
  uint32_t duration = 0;       // the worker's, all attempts: ms, or s past 49 days (duration_in_s)
  uint16_t attempts = 0;       // clamped
  RunOutcome outcome = RunOutcome::kFailed;
  uint8_t trigger : 2 = 0;  // dispatcher::Trigger (kSchedule, kManual or kBackfill)
  uint8_t dead_lettered : 1 = 0;
  uint8_t duration_in_s : 1 = 0;

  static constexpr int64_t kEpoch = 946684800;  // 2000-01-01T00:00:00Z
  void SetScheduled(Instant t);
  Instant Scheduled() const { return Instant{std::chrono::seconds{kEpoch + scheduled}}; }
  Instant Finished() const { return Scheduled() + std::chrono::seconds{finished_after}; }
  void SetDurationMs(int64_t ms);
  int64_t DurationMs() const { return duration_in_s ? int64_t{duration} * 1000 : int64_t{duration}; }
  bool operator==(const RecentRun& o) const = default;
};
static_assert(sizeof(RecentRun) == 16);

struct RunHistory {
  std::vector<RecentRun> runs;          // newest scheduled first, at most kMaxRecentRuns
  std::optional<Instant> last_failure;  // when the latest Failed run finished
  bool operator==(const RunHistory& o) const = default;
};
using SharedRunHistory = std::shared_ptr<const RunHistory>;

// Compares by value (null: no history).
bool SameHistory(const SharedRunHistory& a, const SharedRunHistory& b);

struct RunMerge {
  SharedRunHistory history;  // `base` itself when nothing changed
  bool changed = false;
  // The result made its occurrence Failed, or dead-lettered, for the first time
  // (a Warning Event is due; a replayed result never makes one).
  bool newly_failed = false;
  bool newly_dead_lettered = false;
};
// `base` with result `r` merged in. A result older than every entry of a full
// history changes nothing but lastFailureTime.
RunMerge MergeRun(const SharedRunHistory& base, const dispatcher::RunResult& r);

// status.recentRuns as written.
kube::Json RecentRunsJson(const RunHistory& h);
// status.recentRuns and lastFailureTime as read (entries that do not parse are
// left out); null when there are neither. `previous` is returned when equal, so an
// unchanged history is shared, not copied, by every status update.
SharedRunHistory RunHistoryFromJson(const kube::Json& status, const SharedRunHistory& previous);

}  // namespace cronlane::op
