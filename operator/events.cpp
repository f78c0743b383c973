#include "operator/events.h"

#include <spdlog/spdlog.h>

#include <atomic>
#include <cstdio>

#include "common/time.h"

namespace cronlane::op {
namespace {

std::string UniqueName(const std::string& object, std::chrono::system_clock::time_point now) {
  static std::atomic<uint32_t> seq{0};
  char buf[40];
  const int n = std::snprintf(buf, sizeof buf, ".%llx%04x",
                              static_cast<unsigned long long>(now.time_since_epoch().count()), seq++ & 0xFFFFU);
  // An object name may take all of the 253 characters a name has: shorten it so
  // the Event's own name stays valid (the Event names its object in full), and a
  // cut must not leave a '-' or '.' before the suffix's dot.
  std::string name = object.substr(0, 253 - static_cast<size_t>(n));
  while (!name.empty() && (name.back() == '-' || name.back() == '.')) name.pop_back();
  return name + buf;
}

}  // namespace

KubeEventRecorder::KubeEventRecorder(kube::KubeClient& client, Clock& clock, std::string controller,
                                     std::string instance)
    : client_(client), clock_(clock), controller_(std::move(controller)), instance_(std::move(instance)) {}

void KubeEventRecorder::Record(const ObjectRef& r, const std::string& type, const std::string& reason,
                               const std::string& action, const std::string& note) {
  auto now = std::chrono::floor<std::chrono::microseconds>(clock_.Now());
  kube::Json ev = {{"apiVersion", "events.k8s.io/v1"},
                   {"kind", "Event"},
                   // client-go's naming: <object>.<unique hex>, unique per event.
                   {"metadata", {{"name", UniqueName(r.name, now)}, {"namespace", r.ns.empty() ? "default" : r.ns}}},
                   {"eventTime", FormatMicroTime(now)},
                   {"reportingController", controller_},
                   {"reportingInstance", instance_},
                   {"action", action},
                   {"reason", reason},
                   {"type", type},
                   {"note", note.substr(0, 1024)},
                   {"regarding",
                    {{"apiVersion", r.api_version},
                     {"kind", r.kind},
                     {"namespace", r.ns},
                     {"name", r.name},
                     {"uid", r.uid},
                     {"resourceVersion", r.resource_version}}}};
  static const kube::ResourceRef kEvents{"events.k8s.io", "v1", "events"};
  auto res = client_.Create(kEvents.Path(r.ns.empty() ? "default" : r.ns), ev);
  if (!res.ok()) {
    ++failures_;
    spdlog::warn("recording event {} for {}/{} failed: {}", reason, r.ns, r.name, res.status().ToString());
  }
}

}  // namespace cronlane::op
