#pragma once
// What the Manager runs (controller-runtime's Runnable, in C++).

#include <chrono>
#include <string>

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

// Hands memory that threads freed back to the operating system every `period`, on
// every replica. glibc keeps freed memory in its arenas: a 100k-task leader held
// about 80 MiB that way after its list, checkpoint restore and first fires (RSS
// 334 MiB, 252 MiB after one trim), which would count against its memory limit.
class MemoryTrimmer final : public Runnable {
 public:
  explicit MemoryTrimmer(std::chrono::milliseconds period = std::chrono::seconds(30)) : period_(period) {}
  Status Start(CancelToken& cancel) override;
  bool NeedsLeaderElection() const override { return false; }
  std::string Name() const override { return "memory-trimmer"; }

 private:
  std::chrono::milliseconds period_;
};

}  // namespace cronlane::op
