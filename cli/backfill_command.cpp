#include "cli/backfill_command.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <optional>
#include <ostream>
#include <vector>

#include "cli/schema.h"
#include "cli/task_spec.h"
#include "common/time.h"
#include "dispatcher/task.h"

namespace cronlane::cli {
namespace {

// The occurrences of the task `object` in [from, end), oldest first, as the
// dispatcher's backfill lane counts them; InvalidArgument for a task it refuses
// or more than kMaxBackfillOccurrences.
Result<std::vector<Instant>> Occurrences(const YAML::Node& object, Instant from, Instant end) {
  const auto limit = static_cast<size_t>(dispatcher::kMaxBackfillOccurrences);
  auto out = dispatcher::TaskFireTimes(TaskFromObject(object), from - std::chrono::seconds{1}, end, limit + 1);
  if (out.ok() && out->size() > limit) {
    return InvalidArgument("TooManyOccurrences: the range holds more than " + std::to_string(limit) +
                           " occurrences, the most one Backfill fires; split it");
  }
  return out;
}

}  // namespace

int RunBackfill(const BackfillOptions& opts, std::ostream& out, std::ostream& err) {
  auto fail = [&err](const std::string& message) {
    err << "cronlane backfill: " << message << "\n";
    return 2;
  };
  const auto object = ParseObjectName(opts.task);
  if (!object) {
    return fail("\"" + opts.task + "\" is not NAMESPACE/NAME or NAME (lowercase letters, digits, '-' and '.')");
  }
  if (opts.from.empty() || opts.to.empty()) return fail("give --from and --to (RFC 3339, e.g. 2026-11-01T00:00:00Z)");
  auto from = ParseRfc3339(opts.from);
  if (!from.ok()) return fail("--from: " + from.status().message());
  auto to = ParseRfc3339(opts.to);
  if (!to.ok()) return fail("--to: " + to.status().message());
  if (!(*from < *to)) return fail("--from must be before --to");
  if (opts.max_per_second < 1 || opts.max_per_second > 1000) {
    return fail("--max-per-second must be between 1 and 1000, got " + std::to_string(opts.max_per_second));
  }
  if (opts.order != "OldestFirst" && opts.order != "NewestFirst") {
    return fail("--order must be OldestFirst or NewestFirst, got \"" + opts.order + "\"");
  }
  if (!opts.name.empty() && (!ParseObjectName(opts.name) || opts.name.find('/') != std::string::npos)) {
    return fail("--name \"" + opts.name + "\" is not an object name (lowercase letters, digits, '-' and '.')");
  }

  if (opts.dry_run) {
    if (opts.file.empty())
      return fail("--dry-run needs the task's manifest: -f FILE (e.g. kubectl get st NAME -o yaml)");
    auto tasks = LoadScheduledTasks(opts.file);
    if (!tasks.ok()) return fail(tasks.status().message());
    const YAML::Node* found = nullptr;
    for (const auto& t : *tasks) {
      const YAML::Node meta = At(t, "metadata");
      const YAML::Node name = At(meta, "name"), ns = At(meta, "namespace");
      if (!name.IsScalar() || name.Scalar() != object->name) continue;
      if (!object->ns.empty() && ns.IsScalar() && ns.Scalar() != object->ns) continue;
      found = &t;
      break;
    }
    if (found == nullptr) return fail("no ScheduledTask " + opts.task + " in " + opts.file);
    // Instants from the task's creation on are its live schedule's.
    Instant end = *to;
    bool clipped = false;
    const YAML::Node created = At(At(*found, "metadata"), "creationTimestamp");
    if (created.IsScalar()) {
      if (auto c = ParseRfc3339(created.Scalar()); c.ok() && *c < end) {
        end = std::max(*c, *from);
        clipped = true;
      }
    }
    auto occurrences = Occurrences(*found, *from, end);
    if (!occurrences.ok()) return fail(occurrences.status().message());
    if (opts.order == "NewestFirst") std::reverse(occurrences->begin(), occurrences->end());
    for (const Instant t : *occurrences) out << FormatRfc3339(t) << "\n";
    out << "# " << occurrences->size() << " occurrence(s) of " << opts.task << " from " << FormatRfc3339(*from)
        << " to " << FormatRfc3339(end) << (clipped ? " (clipped at the task's creationTimestamp)" : "") << ", "
        << opts.order << ", at most " << opts.max_per_second << " per second: about "
        << (static_cast<int64_t>(occurrences->size()) + opts.max_per_second - 1) / opts.max_per_second << " s\n";
    return 0;
  }

  YAML::Emitter y;
  y << YAML::BeginMap << YAML::Key << "apiVersion" << YAML::Value << "cronlane.dev/v1alpha1" << YAML::Key << "kind"
    << YAML::Value << "Backfill" << YAML::Key << "metadata" << YAML::Value << YAML::BeginMap;
  if (opts.name.empty()) {
    y << YAML::Key << "generateName" << YAML::Value << object->name + "-backfill-";
  } else {
    y << YAML::Key << "name" << YAML::Value << opts.name;
  }
  if (!object->ns.empty()) y << YAML::Key << "namespace" << YAML::Value << object->ns;
  y << YAML::EndMap << YAML::Key << "spec" << YAML::Value << YAML::BeginMap << YAML::Key << "taskName" << YAML::Value
    << object->name << YAML::Key << "from" << YAML::Value << YAML::DoubleQuoted << FormatRfc3339(*from) << YAML::Key
    << "to" << YAML::Value << YAML::DoubleQuoted << FormatRfc3339(*to) << YAML::Key << "maxPerSecond" << YAML::Value
    << opts.max_per_second << YAML::Key << "order" << YAML::Value << opts.order << YAML::EndMap << YAML::EndMap;
  out << y.c_str() << "\n";
  return 0;
}

}  // namespace cronlane::cli
