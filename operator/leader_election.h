#pragma once
// Leader election on a coordination.k8s.io/v1 Lease with client-go's semantics:
// candidates try to acquire or renew every retry period; a lease is free when its
// holder has not renewed it for lease-duration as *observed locally* (so clock skew
// between replicas does not matter); a leader that cannot renew within the renew
// deadline has lost the lease and must stop at once. On a clean shutdown the leader
// releases the lease so a standby takes over without waiting.

#include <chrono>
#include <condition_variable>
#include <functional>
#include <string>

#include "common/cancel.h"
#include "common/clock.h"
#include "common/thread_annotations.h"
#include "operator/events.h"
#include "operator/kube/client.h"

namespace cronlane::op {

struct LeaderElectionConfig {
  std::string lease_namespace;
  std::string lease_name = "cronlane-operator";
  std::string identity;
  std::chrono::milliseconds lease_duration{15000};
  std::chrono::milliseconds renew_deadline{10000};
  std::chrono::milliseconds retry_period{2000};
  // Called (on the elector's thread) when `lead` has not returned by the time the
  // lost Lease may be taken by someone else (lease_duration - renew_deadline after
  // the loss was seen): its work stopped firing on `leading`, but something in it
  // still waits (an API request to an apiserver this replica cannot reach). Null:
  // wait for it. The Manager sets it to end the process, as controller-runtime's
  // managers exit at once when they lose their Lease.
  std::function<void()> on_stop_overdue;
};

class LeaderElector {
 public:
  LeaderElector(kube::KubeClient& client, Clock& clock, EventRecorder& events, LeaderElectionConfig config);

  // Campaigns until this candidate leads, then calls `lead(leading)` on a new thread
  // and renews the lease. Returns when `cancel` fires (after releasing the lease) or
  // when leadership is lost; `leading` is cancelled in both cases before returning.
  // Returns true if this candidate ever led and lost the lease (the caller exits
  // non-zero), false otherwise. The loss is logged when it is seen, before `lead`
  // has stopped.
  bool Run(CancelToken& cancel, const std::function<void(CancelToken& leading)>& lead);

  bool IsLeader() const { return leader_.load(); }
  const std::string& identity() const { return config_.identity; }

 private:
  // Shared by Run()'s leading loop and the renewing thread while leading.
  struct RenewState {
    Mutex mu;
    std::condition_variable changed;  // any field changed
    std::chrono::steady_clock::time_point last_renew_sent GUARDED_BY(mu);
    bool refused GUARDED_BY(mu) = false;    // the Lease is someone else's
    bool cancelled GUARDED_BY(mu) = false;  // Run()'s `cancel` fired
    bool stop GUARDED_BY(mu) = false;       // set by Run(): renew no more
  };
  // The renewing thread while leading: an attempt every retry period until `stop`
  // or a refusal. The only caller of TryAcquireOrRenew() while it runs.
  void Renew(RenewState& state);
  // One acquire-or-renew attempt; OK when we hold the lease afterwards. Called by
  // one thread at a time (Run()'s while campaigning, Renew()'s while leading).
  Status TryAcquireOrRenew();
  void Release();

  kube::KubeClient& client_;
  Clock& clock_;
  EventRecorder& events_;
  LeaderElectionConfig config_;
  std::atomic<bool> leader_{false};
  // What we last saw of the lease, and when (our monotonic clock).
  std::string observed_holder_;
  std::string observed_renew_time_;
  std::chrono::steady_clock::time_point observed_at_{};
  kube::Json observed_;  // the whole object, for updates
};

}  // namespace cronlane::op
