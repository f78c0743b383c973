#pragma once
// `cronlane validate`: offline checks of ScheduledTask and WorkerPool manifests, the
// way the API server (schema) and the operator (schedule, time zone, payload size)
// would check them.

#include <iosfwd>
#include <string>
#include <vector>

namespace cronlane::cli {

struct ValidateOptions {
  std::vector<std::string> paths;  // files or directories (searched for *.yaml, *.yml)
  std::string output = "text";     // "text" or "json"
};

// Prints one line per problem, `file:line: Kind/name: field: message` (or a JSON
// array with --output json) to `out`, and a summary to `err`. Returns 0 when every
// cronlane document is valid, 1 when there are problems, 2 for usage errors (a
// path that does not exist, an unknown output format).
int RunValidate(const ValidateOptions& opts, std::ostream& out, std::ostream& err);

}  // namespace cronlane::cli
