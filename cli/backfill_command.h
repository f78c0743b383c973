#pragma once
// `cronlane backfill [NS/]NAME --from F --to T`: backfill a ScheduledTask. The CLI
// has no API client: it prints a Backfill manifest (metadata.generateName
// "NAME-backfill-") for `| kubectl create -f -`. With --dry-run and the task's
// manifest (-f, e.g. `kubectl get st NAME -o yaml`), it prints instead the
// occurrences the Backfill would fire, as the dispatcher counts them (the task's
// fire times in [from, to), clipped at its creationTimestamp when the manifest has
// one), and their count.

#include <iosfwd>
#include <string>

namespace cronlane::cli {

struct BackfillOptions {
  std::string task;  // "namespace/name", or "name" (kubectl's current namespace)
  std::string from;  // RFC 3339 with an offset
  std::string to;    // RFC 3339 with an offset
  int max_per_second = 10;
  std::string order = "OldestFirst";  // or NewestFirst
  std::string name;                   // metadata.name; "" = generateName "<task>-backfill-"
  bool dry_run = false;
  std::string file;  // the task's manifest for --dry-run ("-": stdin)
};

// Prints the manifest, or with dry_run the occurrences (one RFC 3339 instant per
// line, in `order`) and a "# N occurrences ..." line. Returns 2 with one line on
// `err` for bad input (a name, a time, from not before to, a rate or order the CRD
// refuses, a range over the operator's 100,000 limit, no such task in the file);
// 0 otherwise.
int RunBackfill(const BackfillOptions& opts, std::ostream& out, std::ostream& err);

}  // namespace cronlane::cli
