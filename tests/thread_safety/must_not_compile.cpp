// hack/thread-safety.sh compiles this with the flags of the clang build and expects
// it to FAIL: a guarded member read without its lock, a *Locked function called
// without the lock. If it compiles, the analysis is not running (a macro that
// expands to nothing, a flag that went missing) and the clean build proves nothing.
#include "common/thread_annotations.h"

namespace cronlane {

class Counter {
 public:
  int Read() const { return n_; }  // expected: reading n_ requires holding mu_
  void Bump() { BumpLocked(); }    // expected: calling BumpLocked requires holding mu_

 private:
  void BumpLocked() REQUIRES(mu_) { ++n_; }
  mutable Mutex mu_;
  int n_ GUARDED_BY(mu_) = 0;
};

int Use() {
  Counter c;
  c.Bump();
  return c.Read();
}

}  // namespace cronlane
