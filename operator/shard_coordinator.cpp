#include "operator/shard_coordinator.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "common/time.h"
#include "operator/shard_assignment.h"

namespace cronlane::op {
namespace {

const kube::ResourceRef kLeases{"coordination.k8s.io", "v1", "leases"};

std::string Sanitize(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    out += ok ? c : '-';
  }
  while (!out.empty() && out.back() == '-') out.pop_back();
  return out;
}

constexpr const char* kShardRole = "shard";
constexpr const char* kMemberRole = "member";

}  // namespace

std::string ShardLeaseName(const std::string& prefix, int shard) {
  return prefix + "-shard-" + std::to_string(shard);
}

std::string MemberLeaseName(const std::string& prefix, const std::string& identity) {
  // An object name has at most 253 characters and ends alphanumeric.
  std::string name = prefix + "-member-" + Sanitize(identity);
  if (name.size() > 253) name.resize(253);
  while (!name.empty() && name.back() == '-') name.pop_back();
  return name;
}

ShardCoordinator::ShardCoordinator(kube::KubeClient& client, Clock& clock, EventRecorder& events, ShardingConfig config,
                                   std::function<bool()> ready, ShardWork work, ShardCacheScope cache_scope)
    : client_(client),
      clock_(clock),
      events_(events),
      config_(std::move(config)),
      ready_(std::move(ready)),
      work_(std::move(work)),
      cache_scope_(std::move(cache_scope)),
      member_name_(MemberLeaseName(config_.lease_prefix, config_.identity)) {
  // Before the cache's first list: a replica caches nothing until it holds a shard.
  if (cache_scope_.scope) cache_scope_.scope({});
}

ShardCoordinator::~ShardCoordinator() {
  for (auto& [shard, t] : terms_) {
    t->cancel.Cancel();
    if (t->thread.joinable()) t->thread.join();
  }
}

std::vector<int> ShardCoordinator::Owned() const {
  MutexLock lock(mu_);
  return owned_;
}

void ShardCoordinator::RegisterMetrics(CallbackMetrics& metrics) {
  using T = CallbackMetrics::Type;
  metrics.Add("cronlane_shards_owned", "Shards whose Lease this replica holds", T::kGauge,
              [this] { return static_cast<double>(Owned().size()); });
  metrics.Add("cronlane_shard_members", "Live replicas this replica sees (member Leases, itself included)", T::kGauge,
              [this] { return static_cast<double>(Members()); });
  metrics.AddFamily("cronlane_shard_handoffs_total",
                    "Shards this replica took (acquired), gave up (released) or lost (renewals failed, or its work "
                    "stopped by itself)",
                    T::kCounter, [this] {
                      return std::vector<CallbackMetrics::Sample>{
                          {{{"direction", "acquired"}}, static_cast<double>(Acquired())},
                          {{{"direction", "released"}}, static_cast<double>(Released())},
                          {{{"direction", "lost"}}, static_cast<double>(Lost())}};
                    });
  if (!cache_scope_.scope) return;
  metrics.Add("cronlane_shard_cache_syncs_total",
              "Shards taken whose work waited for the task cache to list their tasks", T::kCounter,
              [this] { return static_cast<double>(CacheSyncs()); });
  metrics.Add("cronlane_shard_cache_sync_seconds_total",
              "Time taken shards waited for the task cache to list their tasks, summed", T::kCounter,
              [this] { return CacheSyncSeconds(); });
}

ObjectRef ShardCoordinator::LeaseRef(const std::string& name) const {
  ObjectRef ref{"coordination.k8s.io/v1", "Lease", config_.lease_namespace, name, "", ""};
  if (auto it = seen_.find(name); it != seen_.end() && it->second.object.is_object()) {
    ref.uid = it->second.object["metadata"].value("uid", "");
  }
  return ref;
}

bool ShardCoordinator::Expired(const Seen& s) const {
  return !s.holder.empty() && clock_.SteadyNow() > s.changed_at + std::chrono::seconds(s.duration_s);
}

void ShardCoordinator::Observe(const std::string& name, const kube::Json& lease) {
  const kube::Json& spec = lease.contains("spec") ? lease["spec"] : kube::Json::object();
  std::string holder = spec.value("holderIdentity", "");
  std::string renew = spec.value("renewTime", "");
  Seen& s = seen_[name];
  if (s.changed_at == std::chrono::steady_clock::time_point{} || holder != s.holder || renew != s.renew_time) {
    s.holder = std::move(holder);
    s.renew_time = std::move(renew);
    s.changed_at = clock_.SteadyNow();
  }
  s.duration_s = spec.value("leaseDurationSeconds", 15);
  const kube::Json& meta = lease.contains("metadata") ? lease["metadata"] : kube::Json::object();
  const bool joining = meta.value("annotations", kube::Json::object()).value(kJoiningAnnotation, "") == "true";
  if (joining && !s.joining) s.joining_since = clock_.SteadyNow();
  s.joining = joining;
  s.object = lease;
}

kube::Json ShardCoordinator::NewLease(const std::string& name, const std::string& role) const {
  return {{"apiVersion", "coordination.k8s.io/v1"},
          {"kind", "Lease"},
          {"metadata",
           {{"name", name},
            {"namespace", config_.lease_namespace},
            {"labels", {{kLeaseGroupLabel, config_.lease_prefix}, {kLeaseRoleLabel, role}}}}},
          {"spec", {{"leaseTransitions", 0}}}};
}

Status ShardCoordinator::Hold(const std::string& name, const std::string& role, bool joining) {
  const std::string now = FormatMicroTime(clock_.Now());
  const int duration_s = static_cast<int>(std::chrono::ceil<std::chrono::seconds>(config_.lease_duration).count());
  auto it = seen_.find(name);
  const bool exists = it != seen_.end() && it->second.object.is_object();
  kube::Json lease = exists ? it->second.object : NewLease(name, role);
  kube::Json& spec = lease["spec"];
  if (spec.value("holderIdentity", "") != config_.identity) {
    spec["acquireTime"] = now;
    if (exists) spec["leaseTransitions"] = spec.value("leaseTransitions", 0) + 1;
  }
  spec["holderIdentity"] = config_.identity;
  spec["leaseDurationSeconds"] = duration_s;
  spec["renewTime"] = now;
  kube::Json& meta = lease["metadata"];
  if (joining) {
    meta["annotations"][kJoiningAnnotation] = "true";
  } else if (meta.contains("annotations") && meta["annotations"].is_object()) {
    meta["annotations"].erase(kJoiningAnnotation);
  }
  // Optimistic: the resourceVersion we saw makes a concurrent change fail (409).
  auto written = exists ? client_.Replace(kLeases.Path(config_.lease_namespace, name), lease)
                        : client_.Create(kLeases.Path(config_.lease_namespace), lease);
  if (!written.ok()) {
    // Someone else made it (create it again from what the next look shows), or
    // deleted it (our own shutdown, a replica cleaning up member Leases it saw
    // expire): the next Hold creates it again.
    const StatusCode code = written.status().code();
    if ((!exists && code == StatusCode::kAlreadyExists) || (exists && code == StatusCode::kNotFound)) seen_.erase(name);
    return written.status();
  }
  Observe(name, *written);
  return Status::Ok();
}

void ShardCoordinator::StartTerm(int shard) {
  auto term = std::make_shared<Term>();
  term->shard = shard;
  Term* t = term.get();
  term->thread = std::thread([this, t] {
    // Cancelled while the cache lists: nothing ran, nothing to report.
    Status s = WaitForCache(t->shard, t->cancel) ? work_(t->shard, t->cancel) : Status::Ok();
    t->result = s;
    t->done.store(true);
  });
  terms_[shard] = std::move(term);
}

bool ShardCoordinator::WaitForCache(int shard, CancelToken& cancel) const {
  if (!cache_scope_.synced) return true;
  const auto start = clock_.SteadyNow();
  while (!cache_scope_.synced(shard)) {
    if (cancel.WaitFor(std::chrono::milliseconds(20))) return false;
  }
  const auto took = std::chrono::duration_cast<std::chrono::milliseconds>(clock_.SteadyNow() - start);
  ++cache_waits_;
  cache_wait_ms_ += static_cast<uint64_t>(took.count());
  spdlog::info("shard {}: the cache holds its tasks ({} ms)", shard, took.count());
  return true;
}

void ShardCoordinator::Rescope(const std::set<int>& adding) {
  if (!cache_scope_.scope) return;
  std::set<int> wanted = adding;
  for (const auto& [shard, at] : last_renew_) wanted.insert(shard);
  for (const auto& [shard, t] : terms_) wanted.insert(shard);
  if (wanted == scoped_) return;
  cache_scope_.scope(wanted);
  spdlog::info("shards: caching the tasks of {} shard(s)", wanted.size());
  scoped_ = std::move(wanted);
}

void ShardCoordinator::StopTerm(int shard, bool wait) {
  auto it = terms_.find(shard);
  if (it == terms_.end()) return;
  it->second->cancel.Cancel();
  if (!wait) return;
  if (it->second->thread.joinable()) it->second->thread.join();
  terms_.erase(it);
}

void ShardCoordinator::ReleaseLease(int shard) {
  const std::string name = ShardLeaseName(config_.lease_prefix, shard);
  auto it = seen_.find(name);
  if (it == seen_.end() || !it->second.object.is_object() || it->second.holder != config_.identity) return;
  kube::Json lease = it->second.object;
  lease["spec"]["holderIdentity"] = "";
  lease["spec"]["leaseDurationSeconds"] = 1;
  lease["spec"]["renewTime"] = FormatMicroTime(clock_.Now());
  auto r = client_.Replace(kLeases.Path(config_.lease_namespace, name), lease);
  if (r.ok()) {
    Observe(name, *r);
  } else {
    spdlog::warn("shard {}: releasing Lease {}: {} (it expires by itself)", shard, name, r.status().ToString());
  }
}

void ShardCoordinator::Drop(int shard, const std::string& why) {
  spdlog::error("shard {}: lost ({}); stopping its work", shard, why);
  events_.Record(LeaseRef(ShardLeaseName(config_.lease_prefix, shard)), "Warning", "ShardLost", "Stop",
                 config_.identity + " lost shard " + std::to_string(shard) + ": " + why);
  StopTerm(shard, false);
  Forget(shard);
  releasing_.erase(shard);
  ++lost_;
}

void ShardCoordinator::Forget(int shard) {
  last_renew_.erase(shard);
  MutexLock lock(mu_);
  watched_.erase(shard);
}

void ShardCoordinator::Renewed(int shard, std::chrono::steady_clock::time_point sent) {
  last_renew_[shard] = sent;
  auto term = terms_.find(shard);
  MutexLock lock(mu_);
  Watch& w = watched_[shard];
  w.deadline = sent + config_.renew_deadline;
  w.term = term != terms_.end() ? term->second : nullptr;
  watch_cv_.notify_all();
}

bool ShardCoordinator::WatchExpired(int shard) const {
  MutexLock lock(mu_);
  auto it = watched_.find(shard);
  return it != watched_.end() && it->second.expired;
}

void ShardCoordinator::Watchdog() {
  MutexLock lock(mu_);
  while (!watchdog_stop_) {
    const auto now = clock_.SteadyNow();
    std::vector<std::pair<int, std::shared_ptr<Term>>> expired;
    auto next = std::chrono::steady_clock::time_point::max();
    for (auto& [shard, w] : watched_) {
      if (w.expired) continue;
      if (now > w.deadline) {
        w.expired = true;
        expired.emplace_back(shard, w.term);
      } else {
        next = std::min(next, w.deadline);
      }
    }
    if (!expired.empty()) {
      lock.Unlock();  // Cancel() runs the work's callbacks
      for (auto& [shard, term] : expired) {
        spdlog::error("shard {}: no renewal within the renew deadline ({} ms); stopping its work", shard,
                      config_.renew_deadline.count());
        if (term) term->cancel.Cancel();
      }
      lock.Lock();
      continue;
    }
    std::chrono::nanoseconds wait = config_.retry_period;
    if (next != std::chrono::steady_clock::time_point::max()) {
      wait = std::min<std::chrono::nanoseconds>(wait, next - now + std::chrono::milliseconds(1));
    }
    watch_cv_.wait_for(lock.native(), wait);
  }
}

void ShardCoordinator::Reap() {
  for (auto it = terms_.begin(); it != terms_.end();) {
    Term& t = *it->second;
    if (!t.done.load()) {
      ++it;
      continue;
    }
    if (t.thread.joinable()) t.thread.join();
    const int shard = it->first;
    if (releasing_.erase(shard) != 0) {
      // Its work has stopped: now the Lease goes (renewed until here, so no one
      // took the shard while we might still fire it).
      ReleaseLease(shard);
      Forget(shard);
      ++released_;
      spdlog::info("shard {}: released", shard);
      events_.Record(LeaseRef(ShardLeaseName(config_.lease_prefix, shard)), "Normal", "ShardReleased", "Release",
                     config_.identity + " released shard " + std::to_string(shard));
    } else if (!t.cancel.cancelled() && last_renew_.count(shard) != 0) {
      // Ended by itself while we hold the shard (fenced, or failed): give it up so
      // the assignment places it again.
      Drop(shard, "its work stopped: " + t.result.ToString());
      ReleaseLease(shard);
      // Not taken back for a lease duration: another replica may fare better, and
      // a shard whose work keeps failing does not cycle every period here.
      cooldown_[shard] = clock_.SteadyNow() + config_.lease_duration;
    }
    it = terms_.erase(it);
  }
}

void ShardCoordinator::Tick() {
  Reap();
  // 1. Our member Lease.
  if (Status s = Hold(member_name_, kMemberRole); !s.ok()) {
    spdlog::warn("shards: renewing member Lease {}: {}", member_name_, s.ToString());
  }
  // 2. Everything the group holds, as it is now.
  std::map<std::string, kube::Json> listed;
  const std::string selector = kube::UrlEscape(std::string(kLeaseGroupLabel) + "=" + config_.lease_prefix);
  auto list = client_.List(kLeases.Path(config_.lease_namespace) + "?labelSelector=" + selector, [&](kube::Json& item) {
    std::string name = item["metadata"].value("name", "");
    if (!name.empty()) listed[name] = std::move(item);
  });
  const auto now = clock_.SteadyNow();
  if (list.ok()) {
    for (auto& [name, lease] : listed) Observe(name, lease);
    for (auto it = seen_.begin(); it != seen_.end();) {
      it = listed.count(it->first) != 0 ? std::next(it) : seen_.erase(it);
    }
  } else {
    spdlog::warn("shards: listing Leases: {}", list.status().ToString());
  }
  // 3. Renew what we hold; stop what we can no longer prove we hold.
  std::vector<int> held;
  for (const auto& [shard, at] : last_renew_) held.push_back(shard);
  for (int shard : held) {
    const std::string name = ShardLeaseName(config_.lease_prefix, shard);
    auto it = seen_.find(name);
    if (list.ok() && (it == seen_.end() || it->second.holder != config_.identity)) {
      Drop(shard, it == seen_.end() ? "its Lease was deleted" : "Lease taken by " + it->second.holder);
      continue;
    }
    // The watchdog stopped its work at the deadline while this thread waited.
    if (WatchExpired(shard)) {
      Drop(shard, "no renewal within the renew deadline");
      continue;
    }
    const auto sent = clock_.SteadyNow();
    Status s = Hold(name, kShardRole);
    if (s.ok() && WatchExpired(shard)) {
      Drop(shard, "renewed only after the renew deadline");
    } else if (s.ok()) {
      Renewed(shard, sent);
    } else if (clock_.SteadyNow() - last_renew_[shard] > config_.renew_deadline) {
      Drop(shard, "no renewal within the renew deadline: " + s.ToString());
    } else {
      spdlog::warn("shard {}: renewing Lease {}: {}", shard, name, s.ToString());
    }
  }
  if (!list.ok()) {
    Rescope();  // shards whose work stopped leave the cache
    MutexLock lock(mu_);
    owned_.clear();
    for (const auto& [shard, at] : last_renew_) owned_.push_back(shard);
    return;  // no plan without a fresh view
  }
  // 4. Plan.
  ShardPlanInput in;
  in.self = config_.identity;
  in.shards.resize(static_cast<size_t>(config_.shards));
  const std::string shard_prefix = config_.lease_prefix + "-shard-";
  for (const auto& [name, seen] : seen_) {
    const std::string role = seen.object["metadata"].value("labels", kube::Json::object()).value(kLeaseRoleLabel, "");
    if (role == kMemberRole) {
      if (!seen.holder.empty() && !Expired(seen)) {
        if (!seen.joining) {
          in.members.push_back(seen.holder);
        } else if (now < seen.joining_since + config_.join_grace) {
          in.joining.push_back(seen.holder);  // left its share while its cache syncs
        }
      }
      // A crashed replica's member Lease: removed once it expired long ago.
      if (seen.holder != config_.identity && now > seen.changed_at + 10 * config_.lease_duration) {
        (void)client_.Delete(kLeases.Path(config_.lease_namespace, name));
      }
      continue;
    }
    if (role != kShardRole || name.rfind(shard_prefix, 0) != 0) continue;
    int shard = -1;
    try {
      shard = std::stoi(name.substr(shard_prefix.size()));
    } catch (...) {
      continue;
    }
    if (shard < 0 || shard >= config_.shards) continue;  // from a larger --shards: not ours to touch
    ShardLeaseView& v = in.shards[static_cast<size_t>(shard)];
    v.holder = seen.holder;
    v.expired = Expired(seen);
    // Our name on a Lease we do not hold (our work for it stopped): free to us.
    if (v.holder == config_.identity && last_renew_.count(shard) == 0) v.holder.clear();
  }
  for (const auto& [shard, t] : terms_) {
    if (last_renew_.count(shard) == 0) in.blocked.push_back(shard);
  }
  in.releasing.assign(releasing_.begin(), releasing_.end());
  std::erase_if(cooldown_, [&](const auto& c) { return c.second <= now; });
  for (const auto& [shard, until] : cooldown_) in.blocked.push_back(shard);
  members_ = std::max<size_t>(1, in.members.size());
  ShardPlan plan = PlanShards(in);
  // 5. Give up: stop the work first, and release the Lease once it has stopped
  // (Reap, a later period), so the next holder never fires beside us (its
  // init_transactions would fence us anyway). Stopping is not waited for here: a
  // shard still starting (fencing, restoring) can take seconds to stop, and the
  // other shards' renewals must not wait for it.
  for (int shard : plan.release) {
    if (terms_.count(shard) == 0) {  // no work running: release at once
      ReleaseLease(shard);
      Forget(shard);
      ++released_;
      continue;
    }
    StopTerm(shard, false);
    releasing_.insert(shard);
    spdlog::info("shard {}: releasing (stopping its work)", shard);
  }
  // 6. Take: the Lease first, then the cache's scope, then the work (which fences
  // earlier holders, once the cache holds the shard's tasks).
  std::map<int, std::chrono::steady_clock::time_point> taken;
  for (int shard : plan.acquire) {
    const std::string name = ShardLeaseName(config_.lease_prefix, shard);
    const auto sent = clock_.SteadyNow();
    Status s = Hold(name, kShardRole);
    if (!s.ok()) {
      spdlog::debug("shard {}: not acquired: {}", shard, s.ToString());
      continue;
    }
    ++acquired_;
    spdlog::info("shard {}: acquired", shard);
    events_.Record(LeaseRef(name), "Normal", "ShardAcquired", "Acquire",
                   config_.identity + " acquired shard " + std::to_string(shard));
    taken[shard] = sent;
  }
  std::set<int> adding;
  for (const auto& [shard, sent] : taken) adding.insert(shard);
  Rescope(adding);  // and narrowed for shards whose work stopped
  for (const auto& [shard, sent] : taken) {
    StartTerm(shard);
    Renewed(shard, sent);
  }
  MutexLock lock(mu_);
  owned_.clear();
  for (const auto& [shard, at] : last_renew_) owned_.push_back(shard);
}

void ShardCoordinator::Shutdown() {
  // Every shard's work stops at once, then every Lease is released.
  for (auto& [shard, t] : terms_) t->cancel.Cancel();
  for (auto& [shard, t] : terms_) {
    if (t->thread.joinable()) t->thread.join();
  }
  terms_.clear();
  std::vector<int> held;
  for (const auto& [shard, at] : last_renew_) held.push_back(shard);
  for (int shard : held) {
    ReleaseLease(shard);
    ++released_;
  }
  if (!held.empty()) spdlog::info("shards: released {} shard(s) on shutdown", held.size());
  last_renew_.clear();
  {
    MutexLock lock(mu_);
    owned_.clear();
    watched_.clear();
  }
  Status d = client_.Delete(kLeases.Path(config_.lease_namespace, member_name_));
  if (!d.ok() && d.code() != StatusCode::kNotFound) {
    spdlog::warn("shards: deleting member Lease {}: {}", member_name_, d.ToString());
  }
}

void ShardCoordinator::Announce() {
  if (Status s = Hold(member_name_, kMemberRole, /*joining=*/true); !s.ok()) {
    spdlog::warn("shards: announcing member Lease {}: {}", member_name_, s.ToString());
  }
}

Status ShardCoordinator::Start(CancelToken& cancel) {
  // Announced while the cache syncs, so the others leave this replica its share;
  // and for one retry period at least, so replicas started together see each
  // other before any takes shards (a cache scoped to the held shards syncs at
  // once: without it, the first to look would take every shard, list every task,
  // and give most of them back).
  const auto earliest = clock_.SteadyNow() + config_.retry_period;
  auto announce_at = clock_.SteadyNow();
  while (!ready_() || clock_.SteadyNow() < earliest) {
    if (clock_.SteadyNow() >= announce_at) {
      Announce();
      announce_at = clock_.SteadyNow() + config_.retry_period;
    }
    if (cancel.WaitFor(std::chrono::milliseconds(50))) {
      Shutdown();  // deletes the member Lease
      return Status::Ok();
    }
  }
  spdlog::info("shards: {} as {} (Leases {}-shard-0..{})", config_.shards, config_.identity, config_.lease_prefix,
               config_.shards - 1);
  std::thread watchdog([this] { Watchdog(); });
  while (!cancel.cancelled()) {
    Tick();
    cancel.WaitFor(config_.retry_period);
  }
  {
    MutexLock lock(mu_);
    watchdog_stop_ = true;
  }
  watch_cv_.notify_all();
  watchdog.join();
  Shutdown();
  return Status::Ok();
}

}  // namespace cronlane::op
