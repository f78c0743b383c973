// libFuzzer target for the decoders of API objects the operator caches
// (ScheduledTaskFromJson, WorkerPoolFromJson, conditions and metadata). The apiserver
// validates against the CRD schema, but an object written under an older schema, a
// conversion gone wrong or a hand-written client must not stop the operator. The
// first byte picks the decoder; the rest is JSON. Any crash, sanitizer report,
// escaping exception or broken invariant is a bug.
//
// The same input is also a LIST response for ListStream (the client splits a list
// into items as it arrives): it must split it the same wherever the body is cut
// (the first byte picks where), and every item it hands over from a body that is
// valid JSON must be a JSON object.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "dispatcher/task.h"
#include "operator/kube/list_stream.h"
#include "operator/scheduled_task.h"
#include "operator/workerpool.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace cronlane::op;
  if (size < 1) return 0;
  const std::string_view body(reinterpret_cast<const char*>(data + 1), size - 1);
  auto split = [&](size_t cut) {
    std::vector<std::string> items;
    cronlane::kube::ListStream stream(
        [&](std::string_view item) {
          items.emplace_back(item);
          return cronlane::Status::Ok();
        },
        [](std::string_view) { return cronlane::Status::Ok(); });
    cronlane::Status s = stream.Feed(body.substr(0, cut));
    if (s.ok()) s = stream.Feed(body.substr(cut));
    if (s.ok()) s = stream.Finish();
    return std::make_pair(s.ok(), std::move(items));
  };
  const auto whole = split(body.size());
  if (split(data[0] % (body.size() + 1)) != whole) __builtin_trap();
  auto j = cronlane::kube::Json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return 0;
  for (const auto& item : whole.second) {
    if (!cronlane::kube::Json::parse(item, nullptr, /*allow_exceptions=*/false).is_object()) __builtin_trap();
  }
  if (data[0] % 2 == 0) {
    auto t = ScheduledTaskFromJson(j);
    if (!t) return 0;
    if (!t->def || t->name.empty() || t->uid.empty()) __builtin_trap();
    // Decoding again with the previous object keeps the shared definition.
    auto again = ScheduledTaskFromJson(j, &*t);
    if (!again || again->def != t->def) __builtin_trap();
    // A number the dispatcher accepts is the number the object holds: the decoder
    // never wraps an out-of-range value into one that passes the checks.
    const auto& d = *t->def;
    const auto problems = cronlane::dispatcher::TaskProblems(d);
    auto accepted = [&](const char* field) {
      for (const auto& p : problems) {
        if (p.field == field) return false;
      }
      return true;
    };
    const auto& spec = j["spec"];
    auto check = [&](const cronlane::kube::Json& obj, const char* key, const char* field, int64_t decoded) {
      auto it = obj.find(key);
      if (it == obj.end() || !it->is_number_integer() || !accepted(field)) return;
      const bool same = it->is_number_unsigned() ? it->get<uint64_t>() == static_cast<uint64_t>(decoded)
                                                 : it->get<int64_t>() == decoded;
      if (!same || decoded < 0) __builtin_trap();
    };
    check(spec, "shards", "spec.shards", d.shards);
    check(spec, "maxCatchUp", "spec.maxCatchUp", d.max_catch_up);
    check(spec, "jitterSeconds", "spec.jitterSeconds", d.jitter_seconds);
    if (d.starting_deadline_seconds) {
      check(spec, "startingDeadlineSeconds", "spec.startingDeadlineSeconds", *d.starting_deadline_seconds);
    }
    if (auto ex = spec.find("execution"); ex != spec.end() && ex->is_object()) {
      check(*ex, "timeoutSeconds", "spec.execution.timeoutSeconds", d.timeout_seconds);
      check(*ex, "maxAttempts", "spec.execution.maxAttempts", d.max_attempts);
      check(*ex, "backoffSeconds", "spec.execution.backoffSeconds", d.backoff_seconds);
    }
    (void)ConditionsToJson(t->status.Conditions()).dump();
  } else {
    auto p = WorkerPoolFromJson(j);
    if (!p) return 0;
    const auto& s = p->spec;
    if (s.lag_threshold < 1 || s.min_replicas < 0 || s.max_replicas < s.min_replicas || s.poll_interval_seconds < 1)
      __builtin_trap();
    (void)WorkerPoolStatusPatch(p->status).dump();
  }
  return 0;
}
