#include "operator/leader_election.h"

#include <spdlog/spdlog.h>

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
  while (!cancel.cancelled()) {
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

  bool lost = false;
  auto last_renew = clock_.SteadyNow();
  while (!cancel.cancelled()) {
    if (cancel.WaitFor(config_.retry_period)) break;
    Status s = TryAcquireOrRenew();
    if (s.ok()) {
      last_renew = clock_.SteadyNow();
      continue;
    }
    spdlog::warn("leader election: renew failed: {}", s.ToString());
    if (s.code() == StatusCode::kFailedPrecondition || clock_.SteadyNow() - last_renew > config_.renew_deadline) {
      lost = true;
      break;
    }
  }
  leader_ = false;
  if (lost) spdlog::error("lost the lease {}/{}: stopping", config_.lease_namespace, config_.lease_name);
  leading.Cancel();
  if (lost && config_.on_stop_overdue && !lead_returned.WaitFor(config_.lease_duration - config_.renew_deadline)) {
    spdlog::error("leading has not stopped {} ms after losing the lease",
                  (config_.lease_duration - config_.renew_deadline).count());
    config_.on_stop_overdue();
  }
  worker.join();
  if (lost) {
    events_.Record(lease_ref, "Warning", "LeaderElection", "Lose", config_.identity + " stopped leading");
  } else {
    Release();
  }
  return lost;
}

}  // namespace cronlane::op
