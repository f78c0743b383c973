#pragma once
// What the Manager runs (controller-runtime's Runnable, in C++).

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

}  // namespace cronlane::op
