#pragma once
// What the Manager runs (controller-runtime's Runnable, in C++).

#include <chrono>
#include <functional>
#include <string>
#include <utility>

#include "common/cancel.h"
#include "common/status.h"

namespace cronlane::op {

class Runnable {
 public:
  virtual ~Runnable() = default;
  // Runs on a thread of the Manager's until `cancel` fires, then returns after
  // everything it started has stopped. Returns OK when cancelled; an error (kFenced
  // when another replica took its work over) ends the Manager's run with that error.
  // A leader-election runnable is started again, from scratch, in every term.
  virtual Status Start(CancelToken& cancel) = 0;
  // True: runs only while this replica leads. False: runs on every replica.
  virtual bool NeedsLeaderElection() const = 0;
  // For logs: "scheduledtask-controller", "leader-term".
  virtual std::string Name() const = 0;
};

// A Runnable made of a function, for components that know nothing of the Manager
// (the dispatcher's CheckpointFollower runs on every replica this way).
class FuncRunnable final : public Runnable {
 public:
  FuncRunnable(std::string name, bool needs_leader_election, std::function<Status(CancelToken&)> run)
      : name_(std::move(name)), needs_leader_election_(needs_leader_election), run_(std::move(run)) {}
  Status Start(CancelToken& cancel) override { return run_(cancel); }
  bool NeedsLeaderElection() const override { return needs_leader_election_; }
  std::string Name() const override { return name_; }

 private:
  std::string name_;
  bool needs_leader_election_;
  std::function<Status(CancelToken&)> run_;
};

// Hands memory that threads freed back to the operating system every `period`, on
// every replica. glibc keeps freed memory in its arenas: a 100k-task leader held
// about 80 MiB that way after its list, checkpoint restore and first fires (RSS
// 334 MiB, 252 MiB after one trim), which would count against its memory limit.
class MemoryTrimmer final : public Runnable {
 public:
  explicit MemoryTrimmer(std::chrono::milliseconds period = std::chrono::seconds(30)) : period_(period) {}
  // Call once at start-up, before the first list: allocations of 256 KiB and more
  // (the fire heap, hash buckets) are
  // mapped and unmapped on their own. By default glibc raises that threshold to the
  // size of each mapped block freed (up to 32 MiB), so after a 100k list the next
  // big buffers come from the arenas and leave holes there between long-lived task
  // data. One pair of samples with 100k tasks, same live heap: leader RSS 210 →
  // 199 MiB (docs/benchmarks.md, "Memory per task at 100k").
  static void FixMmapThreshold();
  Status Start(CancelToken& cancel) override;
  bool NeedsLeaderElection() const override { return false; }
  std::string Name() const override { return "memory-trimmer"; }

 private:
  std::chrono::milliseconds period_;
};

}  // namespace cronlane::op
