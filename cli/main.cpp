// cronlane: the command-line tool (schedule preview, offline validation, shards).
#include <CLI/CLI.hpp>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <random>

#include "cli/backfill_command.h"
#include "cli/completion.h"
#include "cli/next_command.h"
#include "cli/shard_command.h"
#include "cli/status_command.h"
#include "cli/trigger_command.h"
#include "cli/validate_command.h"
#include "common/version.h"

int main(int argc, char** argv) {
  // Installed as kubectl-cronlane, kubectl runs it as `kubectl cronlane ...`; as
  // kubectl_complete-cronlane, for kubectl's completion of those commands.
  const std::string invoked = argc > 0 ? std::filesystem::path(argv[0]).filename().string() : "cronlane";
  const bool plugin = invoked == "kubectl-cronlane";
  const bool plugin_completion = invoked == "kubectl_complete-cronlane";
  CLI::App app{"cronlane: cron for Kubernetes, fired through Kafka", plugin ? "kubectl cronlane" : "cronlane"};
  app.require_subcommand(1);
  app.set_version_flag("--version", std::string("cronlane ") + cronlane::kVersion);

  cronlane::cli::NextOptions next;
  auto* next_cmd = app.add_subcommand("next", "Print the next fire times of a schedule");
  next_cmd->add_option("--schedule,-s", next.schedules,
                       "Cron expression (5 fields, or 6 with leading seconds); repeat it for the union of several "
                       "(spec.schedules)");
  next_cmd->add_option("--run-at", next.run_at, "A one-shot task's runAt, instead of --schedule");
  next_cmd->add_option("--start", next.start, "startTime: the schedule fires at or after it");
  next_cmd->add_option("--end", next.end, "endTime: the schedule fires before it");
  next_cmd->add_option("--time-zone,-z", next.time_zone, "IANA time zone (default UTC)");
  next_cmd->add_option("--from", next.from, "RFC 3339 instant to start after (default now)");
  next_cmd->add_option("--count,-n", next.count, "How many fire times to print")->capture_default_str();
  next_cmd->add_flag("--local", next.local, "Also print each time in the schedule's time zone");
  next_cmd->add_option("--filename,-f", next.file,
                       "A manifest with ScheduledTasks (\"-\": stdin), e.g. kubectl get st NAME -o yaml | cronlane "
                       "next -f -");

  cronlane::cli::ValidateOptions validate;
  auto* validate_cmd = app.add_subcommand("validate", "Check ScheduledTask/WorkerPool/Backfill manifests offline");
  validate_cmd->add_option("paths", validate.paths, "Files or directories (*.yaml, *.yml; - for stdin)")->required();
  validate_cmd->add_option("--output,-o", validate.output, "Output format: text or json")->capture_default_str();

  cronlane::cli::ShardOptions shard;
  auto* shard_cmd = app.add_subcommand("shard", "Print which shard (and shard Lease) fires each task UID");
  shard_cmd->add_option("--shards", shard.shards, "The operator's --shards")->required();
  shard_cmd->add_option("--lease-prefix", shard.lease_prefix, "The operator's --leader-election-id")
      ->capture_default_str();
  shard_cmd->add_option("--shard-layout", shard.layout, "The operator's shard layout (range, or modulo)")
      ->capture_default_str();
  shard_cmd->add_option("uids", shard.uids, "Task UIDs (metadata.uid); none or - reads them from stdin");

  cronlane::cli::TriggerOptions trigger;
  auto* trigger_cmd =
      app.add_subcommand("trigger", "Print the kubectl command that runs a ScheduledTask now, once (pipe it to sh)");
  trigger_cmd->add_option("task", trigger.task, "[NAMESPACE/]NAME of the ScheduledTask")->required();
  trigger_cmd->add_flag("--force", trigger.force, "Run even if concurrencyPolicy Forbid finds an occurrence running");
  trigger_cmd->add_option("--token", trigger.token, "The run's token (default: the UTC time and 6 random hex digits)");
  trigger_cmd->add_option("--output,-o", trigger.output, "command (kubectl annotate) or patch (a merge patch)")
      ->capture_default_str();

  cronlane::cli::BackfillOptions backfill;
  auto* backfill_cmd = app.add_subcommand(
      "backfill", "Print a Backfill manifest for kubectl create -f - (or, with --dry-run -f, its occurrences)");
  backfill_cmd->add_option("task", backfill.task, "[NAMESPACE/]NAME of the ScheduledTask")->required();
  backfill_cmd->add_option("--from", backfill.from, "Start of the range, inclusive (RFC 3339)")->required();
  backfill_cmd->add_option("--to", backfill.to, "End of the range, exclusive (RFC 3339)")->required();
  backfill_cmd->add_option("--max-per-second", backfill.max_per_second, "Most occurrences fired per second (1-1000)")
      ->capture_default_str();
  backfill_cmd->add_option("--order", backfill.order, "OldestFirst or NewestFirst")->capture_default_str();
  backfill_cmd->add_option("--name", backfill.name, "metadata.name (default: generateName TASK-backfill-)");
  backfill_cmd->add_flag("--dry-run", backfill.dry_run, "Print the occurrences it would fire instead (needs -f)");
  backfill_cmd->add_option("--filename,-f", backfill.file,
                           "The task's manifest for --dry-run (\"-\": stdin), e.g. kubectl get st NAME -o yaml");

  cronlane::cli::StatusOptions status;
  auto* status_cmd = app.add_subcommand(
      "status",
      "Show a ScheduledTask: schedule, readiness, next fires (task zone and local), recent runs, its WorkerPool");
  status_cmd->add_option("task", status.task, "[NAMESPACE/]NAME of the ScheduledTask")->required();
  status_cmd->add_option("--namespace,-n", status.ns, "The task's namespace (or give NAMESPACE/NAME)");
  status_cmd->add_option("--count,-c", status.count, "Next fires to show")->capture_default_str();
  status_cmd->add_option("--kubeconfig", status.kubeconfig, "Passed to kubectl");
  status_cmd->add_option("--context", status.context, "Passed to kubectl");
  status_cmd->add_option("--filename,-f", status.file,
                         "Read the task from this file (\"-\": stdin) instead of running kubectl get");
  status_cmd->add_option("--local-zone", status.local_zone,
                         "IANA zone of the local times (default: $TZ, /etc/localtime)");

  std::string shell;
  auto* completion_cmd = app.add_subcommand("completion", "Print the shell completion script (bash or zsh)");
  completion_cmd->add_option("shell", shell, "bash or zsh")->required();

  auto* version_cmd = app.add_subcommand("version", "Print the version");

  if (plugin_completion || (argc > 1 && std::string(argv[1]) == "__complete")) {
    std::vector<std::string> words(argv + (plugin_completion ? 1 : 2), argv + argc);
    cronlane::cli::PrintCompletions(app, words, std::cout);
    return 0;
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (*next_cmd) return cronlane::cli::RunNext(next, std::cout, std::cerr);
  if (*validate_cmd) return cronlane::cli::RunValidate(validate, std::cout, std::cerr);
  if (*shard_cmd) return cronlane::cli::RunShard(shard, std::cin, std::cout, std::cerr);
  if (*trigger_cmd) {
    trigger.now = std::chrono::system_clock::now();
    trigger.random = std::random_device{}();
    return cronlane::cli::RunTrigger(trigger, std::cout, std::cerr);
  }
  if (*backfill_cmd) return cronlane::cli::RunBackfill(backfill, std::cout, std::cerr);
  if (*status_cmd) {
    if (const char* k = std::getenv("KUBECTL"); k != nullptr && *k != '\0') status.kubectl = k;
    return cronlane::cli::RunStatus(status, std::cout, std::cerr);
  }
  if (*completion_cmd) {
    return cronlane::cli::RunCompletionScript(shell, plugin ? "kubectl-cronlane" : "cronlane", std::cout, std::cerr);
  }
  if (*version_cmd) {
    std::cout << "cronlane " << cronlane::kVersion << "\n";
    return 0;
  }
  return 0;
}
