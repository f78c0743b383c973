#pragma once
// Kubernetes Events (events.k8s.io/v1) about our objects, so `kubectl describe` and
// `kubectl events` show them. Best effort: a failure to record is logged, never
// fatal.

#include <string>

#include "common/clock.h"
#include "operator/kube/client.h"

namespace cronlane::op {

struct ObjectRef {
  std::string api_version;
  std::string kind;
  std::string ns;
  std::string name;
  std::string uid;
  std::string resource_version;
};

class EventRecorder {
 public:
  virtual ~EventRecorder() = default;
  // type is "Normal" or "Warning"; reason is CamelCase; action says what we did.
  virtual void Record(const ObjectRef& regarding, const std::string& type, const std::string& reason,
                      const std::string& action, const std::string& note) = 0;
};

class KubeEventRecorder final : public EventRecorder {
 public:
  // `controller` e.g. "cronlane.dev/operator"; `instance` the pod or host name.
  KubeEventRecorder(kube::KubeClient& client, Clock& clock, std::string controller, std::string instance);
  void Record(const ObjectRef& regarding, const std::string& type, const std::string& reason, const std::string& action,
              const std::string& note) override;
  uint64_t failures() const { return failures_.load(); }

 private:
  kube::KubeClient& client_;
  Clock& clock_;
  std::string controller_;
  std::string instance_;
  std::atomic<uint64_t> failures_{0};
};

}  // namespace cronlane::op
