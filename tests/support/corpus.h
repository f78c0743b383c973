#pragma once
// The manifest corpus of tests/testdata/validate/: each file's first line says what
// is expected of it, "# expect: valid", "# expect: schema FIELD" (the apiserver
// refuses it) or "# expect: semantic FIELD" (the apiserver accepts it; the operator
// reports it Ready=False and `cronlane validate` refuses it).

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace cronlane::testing {

struct CorpusCase {
  std::string path;
  std::string expect;  // valid | schema | semantic
  std::string field;   // for schema and semantic
  std::string kind;    // ScheduledTask, WorkerPool
};

inline std::vector<CorpusCase> LoadCorpus(const std::string& dir) {
  std::vector<CorpusCase> out;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() != ".yaml") continue;
    std::ifstream in(e.path());
    std::string first;
    std::getline(in, first);
    const std::string prefix = "# expect: ";
    if (first.rfind(prefix, 0) != 0) continue;
    std::string rest = first.substr(prefix.size());
    auto sp = rest.find(' ');
    std::string kind;
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("kind: ", 0) == 0) kind = line.substr(6);
    }
    out.push_back({e.path().string(), rest.substr(0, sp), sp == std::string::npos ? "" : rest.substr(sp + 1), kind});
  }
  return out;
}

// A manifest whose payload is `bytes` long as JSON, written to `path`.
inline void WriteLargePayloadManifest(const std::string& path, size_t bytes) {
  std::ofstream out(path);
  out << "# expect: semantic spec.payload\n"
         "apiVersion: cronlane.dev/v1alpha1\nkind: ScheduledTask\nmetadata: {name: payload-too-large}\n"
         "spec:\n  schedule: \"0 * * * *\"\n  target: {topic: jobs}\n  payload:\n    blob: \""
      << std::string(bytes, 'x') << "\"\n";
}

}  // namespace cronlane::testing
