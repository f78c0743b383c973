#include "operator/leader_election.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <thread>

#include "common/time.h"

namespace cronlane::op {
namespace {

const kube::ResourceRef kLeases{"coordination.k8s.io", "v1", "leases"};

}  // namespace

LeaderElector::LeaderElector(kube::KubeClient& client, Clock& clock, EventRecorder& events, LeaderElectionConfig config)
    : client_(client), clock_(clock), events_(events), config_(std::move(config)) {}

Status LeaderElector::TryAcquireOrRenew() {
  const std::string path = kLeases.Path(config_.lease_namespace, config_.lease_name);
  const std::string now = FormatMicroTime(clock_.Now());
  const int duration_s = static_cast<int>(std::chrono::ceil<std::chrono::seconds>(config_.lease_duration).count());
  auto got = client_.Get(path);
  if (!got.ok() && got.status().code() == StatusCode::kNotFound) {
    kube::Json lease = {{"apiVersion", "coordination.k8s.io/v1"},
                        {"kind", "Lease"},
                        {"metadata", {{"name", config_.lease_name}, {"namespace", config_.lease_namespace}}},
                        {"spec",
                         {{"holderIdentity", config_.identity},
                          {"leaseDurationSeconds", duration_s},
                          {"acquireTime", now},
                          {"renewTime", now},
                          {"leaseTransitions", 0}}}};
    auto created = client_.Create(kLeases.Path(config_.lease_namespace), lease);
    if (!created.ok()) return created.status();
    observed_ = *created;
    observed_holder_ = config_.identity;
    observed_renew_time_ = now;
    observed_at_ = clock_.SteadyNow();
    return Status::Ok();
  }
  if (!got.ok()) return got.status();

  const kube::Json& spec = (*got)["spec"];
  std::string holder = spec.value("holderIdentity", "");
  std::string renew = spec.value("renewTime", "");
  if (holder != observed_holder_ || renew != observed_renew_time_) {
    observed_holder_ = holder;
    observed_renew_time_ = renew;
    observed_at_ = clock_.SteadyNow();
  }
  observed_ = *got;
  int held_for = spec.value("leaseDurationSeconds", duration_s);
  bool expired = clock_.SteadyNow() > observed_at_ + std::chrono::seconds(held_for);
  if (!holder.empty() && holder != config_.identity && !expired) {
    return FailedPrecondition("lease held by " + holder);
  }

  kube::Json update = *got;
  kube::Json& s = update["spec"];
  if (holder != config_.identity) {
    s["acquireTime"] = now;
    s["leaseTransitions"] = s.value("leaseTransitions", 0) + 1;
  }
  s["holderIdentity"] = config_.identity;
  s["leaseDurationSeconds"] = duration_s;
  s["renewTime"] = now;
  auto replaced = client_.Replace(path, update);  // optimistic: fails on a concurrent change
  if (!replaced.ok()) return replaced.status();
  observed_ = *replaced;
  observed_holder_ = config_.identity;
  observed_renew_time_ = now;
  observed_at_ = clock_.SteadyNow();
  return Status::Ok();
}

void LeaderElector::Renew(RenewState& state) {
  while (true) {
    {
      MutexLock lock(state.mu);
      // Not a CancelToken: the leading loop waits on the same condition variable.
      state.changed.wait_for(lock.native(), config_.retry_period, [&]() REQUIRES(state.mu) { return state.stop; });
      if (state.stop) return;
    }
    const auto sent = clock_.SteadyNow();
    Status s = TryAcquireOrRenew();
    MutexLock lock(state.mu);
    if (s.ok()) {
      state.last_renew_sent = sent;
    } else {
      spdlog::warn("leader election: renew failed: {}", s.ToString());
      // Someone else holds the Lease now: lost at once, deadline or not.
      if (s.code() == StatusCode::kFailedPrecondition) state.refused = true;
    }
    state.changed.notify_all();
    if (state.refused) return;
  }
}

void LeaderElector::Release() {
  if (observed_holder_ != config_.identity || !observed_.is_object()) return;
  kube::Json update = observed_;
  update["spec"]["holderIdentity"] = "";
  update["spec"]["leaseDurationSeconds"] = 1;
  update["spec"]["renewTime"] = FormatMicroTime(clock_.Now());
  auto r = client_.Replace(kLeases.Path(config_.lease_namespace, config_.lease_name), update);
  if (r.ok()) spdlog::info("released lease {}/{}", config_.lease_namespace, config_.lease_name);
}

bool LeaderElector::Run(CancelToken& cancel, const std::function<void(CancelToken& leading)>& lead) {
  ObjectRef lease_ref{"coordination.k8s.io/v1", "Lease", config_.lease_namespace, config_.lease_name, "", ""};
  // Campaign.
  auto acquire_sent = clock_.SteadyNow();
  while (!cancel.cancelled()) {
    acquire_sent = clock_.SteadyNow();
    Status s = TryAcquireOrRenew();
    if (s.ok()) break;
    if (s.code() != StatusCode::kFailedPrecondition) spdlog::warn("leader election: {}", s.ToString());
    if (cancel.WaitFor(config_.retry_period)) return false;
  }
  if (cancel.cancelled()) return false;

  leader_ = true;
  spdlog::info("became leader ({}) of lease {}/{}", config_.identity, config_.lease_namespace, config_.lease_name);
  lease_ref.uid = observed_["metadata"].value("uid", "");
  events_.Record(lease_ref, "Normal", "LeaderElection", "Lead", config_.identity + " became leader");
  CancelToken leading;
  CancelToken lead_returned;  // cancelled when `lead` returns
  std::thread worker([&] {
    lead(leading);
    lead_returned.Cancel();
  });

  // Renewals run on a thread of their own, so the renew deadline holds even while
  // a renewal hangs (a GET then a PUT, each up to the client's request timeout, on
  // a network that drops packets): this thread gives up at the deadline, not when
  // the hung request returns. client-go bounds the renewal with a context instead.
  // The deadline counts from when the last successful renewal was *sent*: the
  // renewTime it wrote is no later than that, and a standby counts the lease
  // duration from when it saw that renewTime.
  RenewState state;
  {
    MutexLock lock(state.mu);
    state.last_renew_sent = acquire_sent;
  }
  const int on_cancel = cancel.Register([&] {
    MutexLock lock(state.mu);
    state.cancelled = true;
    state.changed.notify_all();
  });
  std::thread renewer([&] { Renew(state); });
  bool lost = false;
  {
    MutexLock lock(state.mu);
    while (true) {
      if (state.cancelled) break;
      if (state.refused) {
        lost = true;
        break;
      }
      const auto left = config_.renew_deadline - (clock_.SteadyNow() - state.last_renew_sent);
      if (left < std::chrono::nanoseconds::zero()) {
        spdlog::warn("leader election: no renewal within the renew deadline ({} ms)", config_.renew_deadline.count());
        lost = true;
        break;
      }
      // Woken by a renewal's outcome or by `cancel`, else at the deadline.
      state.changed.wait_for(
          lock.native(), std::min<std::chrono::nanoseconds>(left, config_.retry_period) + std::chrono::milliseconds(1));
    }
    state.stop = true;
  }
  state.changed.notify_all();
  cancel.Unregister(on_cancel);  // not under state.mu: it waits for a running callback
  leader_ = false;
  if (lost) spdlog::error("lost the lease {}/{}: stopping", config_.lease_namespace, config_.lease_name);
  leading.Cancel();
  if (lost && config_.on_stop_overdue && !lead_returned.WaitFor(config_.lease_duration - config_.renew_deadline)) {
    spdlog::error("leading has not stopped {} ms after losing the lease",
                  (config_.lease_duration - config_.renew_deadline).count());
    config_.on_stop_overdue();
  }
  worker.join();
  renewer.join();  // at most one renewal still in flight, bounded by the request timeout
  if (lost) {
    events_.Record(lease_ref, "Warning", "LeaderElection", "Lose", config_.identity + " stopped leading");
  } else {
    Release();
  }
  return lost;
}

}  // namespace cronlane::op
