#include "cli/validate_command.h"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>
#include <ostream>
#include <regex>
#include <sstream>

#include "cli/embedded_crds.h"
#include "cli/schema.h"
#include "cli/task_spec.h"
#include "common/time.h"
#include "dispatcher/task.h"

namespace cronlane::cli {
namespace {

namespace fs = std::filesystem;

struct Problem {
  std::string file;
  int line = 0;
  std::string kind;
  std::string name;
  std::string field;
  std::string message;
};

// Kind -> served version -> openAPIV3Schema, for the cronlane.dev group.
struct KnownKinds {
  std::string group;
  std::map<std::string, std::map<std::string, YAML::Node>> schemas;
};

const KnownKinds& Kinds() {
  static const KnownKinds kinds = [] {
    KnownKinds k;
    for (std::string_view text : EmbeddedCrds()) {
      YAML::Node crd = YAML::Load(std::string(text));
      if (At(crd, "kind").IsScalar() && At(crd, "kind").Scalar() != "CustomResourceDefinition") continue;
      k.group = At(At(crd, "spec"), "group").as<std::string>();
      std::string kind = At(At(At(crd, "spec"), "names"), "kind").as<std::string>();
      for (const auto& v : At(At(crd, "spec"), "versions")) {
        if (At(v, "served").as<bool>(true)) {
          k.schemas[kind][At(v, "name").as<std::string>()] = At(At(v, "schema"), "openAPIV3Schema");
        }
      }
    }
    return k;
  }();
  return kinds;
}

int Line(const YAML::Node& n) {
  return n.Mark().line >= 0 ? n.Mark().line + 1 : 0;
}

// What the operator would refuse (dispatcher::TaskProblems, the same checks the
// reconciler runs), for a document the schema admitted, each at its line. A field
// the schema already found wrong is not reported twice.
void CheckScheduledTask(const YAML::Node& doc, const std::vector<SchemaProblem>& schema_problems,
                        std::vector<SchemaProblem>& out) {
  auto has_problem = [&](const std::string& prefix) {
    return std::any_of(schema_problems.begin(), schema_problems.end(),
                       [&](const SchemaProblem& p) { return p.field.rfind(prefix, 0) == 0; });
  };
  // The run-now annotations, as crds/policies/run-now.yaml refuses them at apply.
  if (const YAML::Node ann = At(At(doc, "metadata"), "annotations"); ann.IsMap()) {
    const YAML::Node token = At(ann, "cronlane.dev/run-now");
    if (token.IsDefined() && !(token.IsScalar() && dispatcher::ValidRunToken(token.Scalar()))) {
      out.push_back({"metadata.annotations[cronlane.dev/run-now]", Line(token),
                     "\"" + (token.IsScalar() ? token.Scalar() : std::string()) +
                         "\" is not a run-now token: " + dispatcher::kRunTokenRule});
    }
    const YAML::Node force = At(ann, "cronlane.dev/run-now-force");
    if (force.IsDefined() && !(force.IsScalar() && (force.Scalar() == "true" || force.Scalar() == "false"))) {
      out.push_back({"metadata.annotations[cronlane.dev/run-now-force]", Line(force), "must be \"true\" or \"false\""});
    }
  }
  const YAML::Node spec = At(doc, "spec");
  if (!spec.IsMap()) return;
  const YAML::Node schedule = At(spec, "schedule");
  const YAML::Node tz = At(spec, "timeZone");
  const YAML::Node target = At(spec, "target");
  const YAML::Node headers = target.IsMap() ? At(target, "headers") : YAML::Node();
  const YAML::Node payload = At(spec, "payload");
  const YAML::Node shards = At(spec, "shards");
  const YAML::Node run_at = At(spec, "runAt");
  const YAML::Node start = At(spec, "startTime");
  const YAML::Node end = At(spec, "endTime");
  const YAML::Node schedules = At(spec, "schedules");

  // The CRD's CEL rules on spec, checked offline as the apiserver checks them; the
  // operator's checks below would only repeat what they find.
  bool cel_refused = false;
  if (int(schedule.IsDefined()) + int(schedules.IsDefined()) + int(run_at.IsDefined()) != 1) {
    out.push_back({"spec.schedule", Line(schedule.IsDefined() ? schedule : spec),
                   "set exactly one of schedule, schedules (recurring) or runAt (once)"});
    cel_refused = true;
  }
  if (schedules.IsSequence()) {
    for (size_t i = 0; i < schedules.size(); ++i) {
      const YAML::Node si = At(schedules[i], "schedule");
      for (size_t j = 0; j < i; ++j) {
        const YAML::Node sj = At(schedules[j], "schedule");
        if (si.IsScalar() && sj.IsScalar() && si.Scalar() == sj.Scalar()) {
          out.push_back({"spec.schedules", Line(si), "duplicate schedule"});
          cel_refused = true;
        }
      }
    }
  }
  if (run_at.IsDefined() && (start.IsDefined() || end.IsDefined())) {
    out.push_back({"spec.runAt", Line(run_at), "startTime and endTime bound a recurring schedule; runAt fires once"});
    cel_refused = true;
  }
  if (const YAML::Node ttl = At(spec, "ttlSecondsAfterFinished");
      ttl.IsDefined() && !run_at.IsDefined() && !end.IsDefined()) {
    out.push_back({"spec.ttlSecondsAfterFinished", Line(ttl),
                   "ttlSecondsAfterFinished needs runAt or endTime (only those tasks finish)"});
    cel_refused = true;
  }
  if (cel_refused) return;

  const dispatcher::TaskDefinition t = TaskFromSpec(spec);

  for (const auto& p : dispatcher::TaskProblems(t)) {
    if (has_problem(p.field)) continue;
    if (p.field == "spec.schedule" && !schedule.IsScalar()) continue;  // missing: the schema says so
    if ((p.field == "spec.startTime" || p.field == "spec.endTime" || p.field == "spec.runAt") && has_problem(p.field)) {
      continue;  // the pattern said so already
    }
    YAML::Node at = p.field == "spec.timeZone"    ? tz
                    : p.field == "spec.schedule"  ? schedule
                    : p.field == "spec.payload"   ? payload
                    : p.field == "spec.runAt"     ? run_at
                    : p.field == "spec.startTime" ? start
                    : p.field == "spec.endTime"   ? end
                                                  : YAML::Node();
    if (p.field == "spec.target.headers") {
      for (const auto& kv : headers) {
        if (kv.first.as<std::string>() == p.item) at = kv.first;
      }
    }
    if (p.field.rfind("spec.schedules[", 0) == 0 && schedules.IsSequence()) {
      // spec.schedules[i].schedule / .jitterSeconds: the entry's own line.
      const size_t i = std::stoul(p.field.substr(15));
      if (i < schedules.size()) at = schedules[i];
    }
    out.push_back({p.field, at.IsDefined() ? Line(at) : Line(spec), p.detail});
  }
}

// What the WorkerPool CRD's CEL rules say, checked offline.
void CheckWorkerPool(const YAML::Node& doc, std::vector<SchemaProblem>& out) {
  const YAML::Node spec = At(doc, "spec");
  if (!spec.IsMap()) return;
  const YAML::Node topic = At(spec, "topic");
  if (topic.IsDefined() == At(spec, "topics").IsDefined()) {
    out.push_back({"spec.topic", Line(topic.IsDefined() ? topic : spec), "set exactly one of topic or topics"});
  }
  auto is_true = [](const YAML::Node& n) { return n.IsScalar() && n.Scalar() == "true"; };
  if (const YAML::Node limit = At(spec, "limitToPartitionsWithLag");
      is_true(limit) && is_true(At(spec, "allowIdleConsumers"))) {
    out.push_back({"spec.limitToPartitionsWithLag", Line(limit),
                   "limitToPartitionsWithLag caps replicas at the partitions with lag; allowIdleConsumers lifts the "
                   "cap (set one)"});
  }
  const YAML::Node min = At(spec, "minReplicas");
  const YAML::Node max = At(spec, "maxReplicas");
  if (min.IsScalar() && max.IsScalar() && ScalarJsonType(min) == "integer" && ScalarJsonType(max) == "integer") {
    try {
      if (std::stoll(min.Scalar()) > std::stoll(max.Scalar())) {
        out.push_back({"spec", Line(min), "minReplicas must not be greater than maxReplicas"});
      }
    } catch (...) {
    }
  }
}

// What the Backfill CRD's CEL rule on spec says (from before to), checked offline.
// Unparsable times are the schema's problem (format: date-time), not repeated here.
void CheckBackfill(const YAML::Node& doc, std::vector<SchemaProblem>& out) {
  const YAML::Node spec = At(doc, "spec");
  const YAML::Node from = At(spec, "from");
  const YAML::Node to = At(spec, "to");
  if (!from.IsScalar() || !to.IsScalar()) return;
  auto f = ParseRfc3339(from.Scalar());
  auto t = ParseRfc3339(to.Scalar());
  if (f.ok() && t.ok() && !(*f < *t)) out.push_back({"spec.from", Line(from), "from must be before to"});
}

void CheckDocument(const std::string& file, const YAML::Node& doc, std::vector<Problem>& problems, int& checked) {
  if (!doc.IsMap()) return;
  const std::string api_version = At(doc, "apiVersion").IsScalar() ? At(doc, "apiVersion").Scalar() : "";
  const std::string kind = At(doc, "kind").IsScalar() ? At(doc, "kind").Scalar() : "";
  if (kind == "List" && At(doc, "items").IsSequence()) {
    for (const auto& item : At(doc, "items")) CheckDocument(file, item, problems, checked);
    return;
  }
  const KnownKinds& known = Kinds();
  auto slash = api_version.find('/');
  if (slash == std::string::npos || api_version.substr(0, slash) != known.group) return;  // not ours
  ++checked;
  const std::string version = api_version.substr(slash + 1);
  const YAML::Node meta = At(doc, "metadata");
  std::string name = meta.IsMap() && At(meta, "name").IsScalar() ? At(meta, "name").Scalar() : "";
  auto add = [&](int line, std::string field, std::string message) {
    problems.push_back({file, line, kind.empty() ? "<no kind>" : kind, name.empty() ? "<no name>" : name,
                        std::move(field), std::move(message)});
  };
  auto kit = known.schemas.find(kind);
  if (kit == known.schemas.end()) {
    std::string names;
    for (const auto& [k, _] : known.schemas) names += (names.empty() ? "" : ", ") + k;
    add(Line(doc), "kind", "unknown kind \"" + kind + "\" in " + known.group + " (known: " + names + ")");
    return;
  }
  auto vit = kit->second.find(version);
  if (vit == kit->second.end()) {
    add(Line(At(doc, "apiVersion")), "apiVersion", "version \"" + version + "\" of " + kind + " is not served");
    return;
  }
  if (name.empty() && !(meta.IsMap() && At(meta, "generateName").IsDefined())) {
    add(Line(doc), "metadata.name", "Required value");
  } else if (!name.empty()) {
    static const std::regex kDns1123Subdomain(R"([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*)");
    if (name.size() > 253 || !std::regex_match(name, kDns1123Subdomain)) {
      add(Line(At(meta, "name")), "metadata.name",
          "\"" + name + "\" must be a lowercase RFC 1123 subdomain (a-z, 0-9, '-', '.'; at most 253 characters)");
    }
  }
  std::vector<SchemaProblem> sp;
  ValidateAgainstSchema(vit->second, doc, "", sp);
  std::vector<SchemaProblem> semantic;
  if (kind == "ScheduledTask") CheckScheduledTask(doc, sp, semantic);
  if (kind == "WorkerPool") CheckWorkerPool(doc, semantic);
  if (kind == "Backfill") CheckBackfill(doc, semantic);
  sp.insert(sp.end(), semantic.begin(), semantic.end());
  std::stable_sort(sp.begin(), sp.end(),
                   [](const SchemaProblem& a, const SchemaProblem& b) { return a.line < b.line; });
  for (auto& p : sp) add(p.line, std::move(p.field), std::move(p.message));
}

}  // namespace

int RunValidate(const ValidateOptions& opts, std::ostream& out, std::ostream& err) {
  if (opts.output != "text" && opts.output != "json") {
    err << "cronlane validate: --output must be text or json, got \"" << opts.output << "\"\n";
    return 2;
  }
  if (opts.paths.empty()) {
    err << "cronlane validate: give at least one file or directory\n";
    return 2;
  }
  std::vector<std::string> files;
  for (const auto& p : opts.paths) {
    std::error_code ec;
    if (fs::is_directory(p, ec)) {
      std::vector<std::string> found;
      for (auto it = fs::recursive_directory_iterator(p, ec); !ec && it != fs::recursive_directory_iterator();
           it.increment(ec)) {
        auto ext = it->path().extension();
        if (it->is_regular_file() && (ext == ".yaml" || ext == ".yml")) found.push_back(it->path().string());
      }
      std::sort(found.begin(), found.end());
      files.insert(files.end(), found.begin(), found.end());
    } else if (fs::is_regular_file(p, ec) || p == "-") {
      files.push_back(p);
    } else {
      err << "cronlane validate: " << p << ": no such file or directory\n";
      return 2;
    }
  }

  std::vector<Problem> problems;
  int checked = 0;
  for (const auto& file : files) {
    std::stringstream text;
    if (file == "-") {
      text << std::cin.rdbuf();
    } else {
      std::ifstream in(file);
      if (!in) {
        err << "cronlane validate: " << file << ": cannot read\n";
        return 2;
      }
      text << in.rdbuf();
    }
    try {
      for (const auto& doc : YAML::LoadAll(text.str())) CheckDocument(file, doc, problems, checked);
    } catch (const YAML::Exception& e) {
      problems.push_back(
          {file, e.mark.line >= 0 ? e.mark.line + 1 : 0, "<yaml>", "<unparsed>", "", "YAML syntax error: " + e.msg});
    }
  }

  if (opts.output == "json") {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& p : problems) {
      j.push_back({{"file", p.file},
                   {"line", p.line},
                   {"kind", p.kind},
                   {"name", p.name},
                   {"field", p.field},
                   {"message", p.message}});
    }
    out << j.dump(2) << "\n";
  } else {
    for (const auto& p : problems) {
      out << p.file << ":" << p.line << ": " << p.kind << "/" << p.name << ": "
          << (p.field.empty() ? "" : p.field + ": ") << p.message << "\n";
    }
  }
  err << "cronlane validate: " << checked << " cronlane document(s) in " << files.size() << " file(s), "
      << problems.size() << " problem(s)\n";
  return problems.empty() ? 0 : 1;
}

}  // namespace cronlane::cli
