#include "operator/leader_term.h"

#include "operator/forecast.h"
#include "operator/ttl_cleaner.h"

#include <spdlog/spdlog.h>

#include "common/backoff.h"
#include "common/hash.h"

#include <thread>
#include <unordered_set>
#include <vector>

#include "dispatcher/kafka_fire_sink.h"
#include "operator/backfill_controller.h"
#include "operator/event_aggregator.h"
#include "operator/scheduled_task_controller.h"

namespace cronlane::op {

TermWorld KafkaTermWorld(const dispatcher::KafkaSinkOptions& sink, const dispatcher::ResultsFollowerOptions& results,
                         Clock& clock) {
  TermWorld w;
  w.sink = [sink] { return std::make_unique<dispatcher::KafkaFireSink>(sink); };
  w.lag_reader = [base = sink.base] { return std::make_unique<KafkaLagReader>(base); };
  w.results = [results, &clock](const TaskFilter& owns, dispatcher::ResultsFollower::OnFinished finished,
                                dispatcher::ResultsFollower::OnResult result) {
    if (owns && finished) {
      finished = [owns, f = std::move(finished)](const std::string& id, dispatcher::Instant at,
                                                 const std::string& token) {
        if (owns(id)) f(id, at, token);
      };
    }
    if (owns && result) {
      result = [owns, f = std::move(result)](const std::string& id, const dispatcher::RunResult& r) {
        if (owns(id)) f(id, r);
      };
    }
    return std::make_unique<dispatcher::ResultsFollower>(results, clock, std::move(finished), std::move(result));
  };
  return w;
}

dispatcher::KafkaSinkOptions ShardSinkOptions(dispatcher::KafkaSinkOptions base, int shard, int shards) {
  base.shard = shard;
  base.checkpoint_partitions = shards;
  base.transactional_id += "-" + std::to_string(shard);
  base.follower.reset();  // a take-over reads its partition (no per-shard follower yet)
  return base;
}

LeaderTermOptions ShardTermOptions(LeaderTermOptions base, int shard, int shards, ShardLayout layout) {
  auto split = [shards](StatusBudget b) { return StatusBudget{b.qps / shards, std::max(1, b.burst / shards)}; };
  base.shard = shard;
  base.shards = shards;
  base.layout = layout;
  base.workerpools = false;
  base.fire_times = split(base.fire_times);
  base.conditions = split(base.conditions);
  return base;
}

TermWorld ShardTermWorld(const dispatcher::KafkaSinkOptions& shard_sink,
                         const std::shared_ptr<dispatcher::ResultsHub>& hub) {
  TermWorld w;
  w.sink = [shard_sink] { return std::make_unique<dispatcher::KafkaFireSink>(shard_sink); };
  w.lag_reader = [base = shard_sink.base] { return std::make_unique<KafkaLagReader>(base); };
  w.results = [hub](TaskFilter owns, dispatcher::ResultsFollower::OnFinished finished,
                    dispatcher::ResultsFollower::OnResult result) {
    if (!owns) owns = [](const std::string&) { return true; };
    return hub->Subscribe(std::move(owns), std::move(finished), std::move(result));
  };
  return w;
}

LeaderTerm::LeaderTerm(kube::KubeClient& client, Cache& cache, EventRecorder& events, Clock& clock,
                       CallbackMetrics& metrics, TermWorld world, LeaderTermOptions options)
    : client_(client),
      cache_(cache),
      events_(events),
      clock_(clock),
      metrics_(metrics),
      world_(std::move(world)),
      options_(std::move(options)) {}

namespace {

// Joins a thread when the scope ends (after its token was cancelled).
struct Joined {
  std::thread t;
  ~Joined() {
    if (t.joinable()) t.join();
  }
};

}  // namespace

void LeaderTerm::ForgetDeletedTasks(dispatcher::Dispatcher& dispatcher) {
  std::vector<std::string> unclaimed = dispatcher.UnclaimedCheckpoints();
  if (unclaimed.empty()) return;
  // The cache is synced before a term starts: a task it does not hold is gone.
  std::unordered_set<std::string> uids;
  for (const std::string& key : cache_.tasks.Keys()) {
    if (auto t = cache_.tasks.Get(key)) uids.insert(t->uid);
  }
  size_t forgotten = 0;
  for (const std::string& id : unclaimed) {
    if (uids.count(id) != 0) continue;  // not upserted yet, or not valid: keeps its checkpoint
    dispatcher.Forget(id);
    ++forgotten;
  }
  if (forgotten > 0) spdlog::info("checkpoints of {} task(s) deleted while no leader ran: tombstoned", forgotten);
}

void LeaderTerm::ForgetDeletedBackfills(dispatcher::Dispatcher& dispatcher) {
  if (!cache_.backfills) return;
  std::vector<std::string> unclaimed = dispatcher.UnclaimedBackfills();
  if (unclaimed.empty()) return;
  std::unordered_set<std::string> uids;
  for (const std::string& key : cache_.backfills->Keys()) {
    if (auto b = cache_.backfills->Get(key)) uids.insert(b->uid);
  }
  size_t forgotten = 0;
  for (const std::string& id : unclaimed) {
    if (uids.count(id) != 0) continue;  // a complete Backfill: its record keeps it from refiring
    dispatcher.ForgetBackfill(id);
    ++forgotten;
  }
  if (forgotten > 0) spdlog::info("records of {} backfill(s) deleted while no leader ran: tombstoned", forgotten);
}

Status LeaderTerm::Start(CancelToken& leading) {
  int restarts = 0;
  auto window_start = clock_.SteadyNow();
  while (true) {
    CancelToken term;
    const int reg = leading.Register([&term] { term.Cancel(); });
    Status s = RunOnce(term);
    leading.Unregister(reg);
    if (s.code() != StatusCode::kFenced || leading.cancelled()) return s;
    if (clock_.SteadyNow() - window_start > std::chrono::minutes(10)) {
      restarts = 0;
      window_start = clock_.SteadyNow();
    }
    if (++restarts > options_.fenced_restarts) {
      spdlog::error("fenced {} times in 10 minutes while leading: another process uses this transactional.id?",
                    restarts);
      return s;
    }
    spdlog::warn(
        "{}; this replica still leads, so the broker aborted our own transaction (Kafka unreachable for longer "
        "than transaction.timeout.ms): starting a new term in {} ms",
        s.message(), options_.fenced_restart_delay.count());
    if (leading.WaitFor(options_.fenced_restart_delay)) return Status::Ok();
  }
}

Status LeaderTerm::RunOnce(CancelToken& leading) {
  // Objects of the term, in the order they are built; destroyed in reverse.
  EventAggregator aggregated(events_, clock_);
  std::unique_ptr<dispatcher::FireSink> sink = world_.sink();
  Status fenced;  // set by the writer's OnFenced, read after the threads stopped
  std::mutex fenced_mu;
  CancelToken firing;  // the dispatcher and status writer (step 5)
  StatusWriter writer(
      client_, [this](const std::string& key) { return cache_.tasks.Get(key); }, aggregated, clock_,
      options_.fire_times, options_.conditions,
      [&](const std::string& message) {
        {
          std::lock_guard lock(fenced_mu);
          fenced = Fenced(message);
        }
        leading.Cancel();
      });
  dispatcher::DispatcherOptions fire_options = options_.dispatcher;
  // A fired occurrence's CloudEvents source is its ScheduledTask's API path.
  fire_options.event_source = [](const dispatcher::TaskDefinition& t) { return kScheduledTasks.Path(t.ns, t.name); };
  dispatcher::Dispatcher dispatcher(clock_, *sink, &writer, fire_options);
  const int shard = options_.shard, shards = options_.shards;
  TaskReconciler::ShardOfTask shard_of;  // null: not sharded
  TaskFilter owns;                       // null: every task
  if (shards > 1) {
    shard_of = [shards, layout = options_.layout](const std::string& uid) { return ShardOf(uid, shards, layout); };
    owns = [shard, shard_of](const std::string& uid) { return shard_of(uid) == shard; };
  }
  std::unique_ptr<dispatcher::ResultsSource> results = world_.results(
      owns,
      [&dispatcher](const std::string& id, dispatcher::Instant at, const std::string& token) {
        if (token.empty()) {
          dispatcher.OnFinished(id, at);
        } else {
          dispatcher.OnManualFinished(id, token);
        }
      },
      [&writer](const std::string& uid, const dispatcher::RunResult& r) { writer.OnResult(uid, r); });
  std::unique_ptr<LagReader> lag;
  std::unique_ptr<ScheduleForecaster> forecaster;
  std::unique_ptr<WorkerPoolController> pools;
  if (cache_.pools && options_.workerpools) {
    lag = world_.lag_reader();
    // Predictive pools forecast from every cached task.
    forecaster = std::make_unique<ScheduleForecaster>(CachedDefinitions(cache_.tasks),
                                                      options_.dispatcher.default_topic, clock_);
    pools = std::make_unique<WorkerPoolController>(client_, *cache_.pools, *lag, events_, clock_, forecaster.get());
  }
  ScheduledTaskController::Owns owns_task;
  if (owns) owns_task = [owns](const ScheduledTask& t) { return owns(t.uid); };
  ScheduledTaskController tasks(cache_.tasks, dispatcher, writer, aggregated, clock_, options_.workers, owns_task,
                                shard_of);
  writer.SetOnCompleted([&tasks](const std::string& key) { tasks.Requeue(key); });
  TtlCleaner ttl(cache_.tasks, client_, clock_, owns_task);
  std::unique_ptr<BackfillController> backfills;
  if (cache_.backfills) {
    backfills = std::make_unique<BackfillController>(client_, *cache_.backfills, cache_.tasks, dispatcher, aggregated,
                                                     clock_, owns);
    writer.SetOnBackfillProgress([&backfills](const dispatcher::BackfillDefinition& b) { backfills->OnProgress(b); });
  }

  std::vector<std::pair<std::string, std::string>> labels;
  if (shards > 1) labels.emplace_back("shard", std::to_string(shard));
  CallbackMetrics::Scope m(metrics_, labels);
  const std::string what = shards > 1 ? "shard " + std::to_string(shard) + ": " : "";
  using T = CallbackMetrics::Type;
  m.Add("cronlane_tasks_scheduled", "Tasks in the dispatcher's schedule table", T::kGauge,
        [&] { return static_cast<double>(dispatcher.Stats().tasks); });
  m.Add("cronlane_occurrences_fired_total", "Occurrences committed to Kafka", T::kCounter,
        [&] { return static_cast<double>(dispatcher.Stats().fired); });
  m.Add("cronlane_messages_fired_total", "Messages committed to Kafka (occurrences x shards)", T::kCounter,
        [&] { return static_cast<double>(dispatcher.Stats().messages); });
  m.Add("cronlane_occurrences_skipped_total", "Occurrences not fired (catch-up policy, deadline)", T::kCounter,
        [&] { return static_cast<double>(dispatcher.Stats().skipped); });
  m.Add("cronlane_kafka_commits_total", "Kafka transactions committed", T::kCounter,
        [&] { return static_cast<double>(dispatcher.Stats().commits); });
  m.Add("cronlane_backfill_occurrences_total", "Backfill occurrences committed to Kafka (not in the fired counters)",
        T::kCounter, [&] { return static_cast<double>(dispatcher.Stats().backfilled); });
  m.Add("cronlane_replace_cancels_total",
        "Cancel events committed for concurrencyPolicy Replace (an occurrence replaced a running one)", T::kCounter,
        [&] { return static_cast<double>(dispatcher.Stats().cancels); });
  m.Add("cronlane_kafka_commit_failures_total", "Kafka transactions that failed and were retried", T::kCounter,
        [&] { return static_cast<double>(dispatcher.Stats().commit_failures); });
  m.Add("cronlane_checkpoint_tombstones_total", "Checkpoints of deleted tasks removed from the checkpoint topic",
        T::kCounter, [&] { return static_cast<double>(dispatcher.Stats().tombstones); });
  m.Add("cronlane_occurrences_pending", "Occurrences due and waiting for a commit", T::kGauge,
        [&] { return static_cast<double>(dispatcher.Stats().pending); });
  m.AddHistogram("cronlane_fire_lag_seconds",
                 "Due time (scheduled + jitter) to the commit of the transaction that fired the occurrence",
                 [&] { return dispatcher.FireLag(); });
  m.AddHistogram("cronlane_kafka_commit_duration_seconds", "Duration of each transaction commit attempt",
                 [&] { return dispatcher.CommitDuration(); });
  for (const bool fired : {true, false}) {
    m.AddFamily(fired ? "cronlane_namespace_occurrences_fired_total" : "cronlane_namespace_occurrences_skipped_total",
                fired ? "Occurrences committed to Kafka, by the tasks' namespace"
                      : "Occurrences not fired (catch-up policy, deadline), by the tasks' namespace",
                T::kCounter, [&dispatcher, fired] {
                  std::vector<CallbackMetrics::Sample> out;
                  for (const auto& [ns, c] : dispatcher.CountsByNamespace()) {
                    out.push_back({{{"namespace", ns}}, static_cast<double>(fired ? c.fired : c.skipped)});
                  }
                  return out;
                });
  }
  m.AddHistogram("cronlane_reconcile_duration_seconds", "Duration of each ScheduledTask reconcile",
                 [&] { return tasks.ReconcileDuration(); });
  m.Add("cronlane_reconcile_total", "Reconciles run", T::kCounter,
        [&] { return static_cast<double>(tasks.reconciles()); });
  m.Add("cronlane_reconcile_errors_total", "Reconciles that failed and were retried", T::kCounter,
        [&] { return static_cast<double>(tasks.reconcile_errors()); });
  m.Add("cronlane_tasks_deleted_after_ttl_total", "Finished ScheduledTasks deleted after ttlSecondsAfterFinished",
        T::kCounter, [&] { return static_cast<double>(ttl.deleted()); });
  m.Add("cronlane_workqueue_depth", "Keys waiting in the work queue", T::kGauge,
        [&] { return static_cast<double>(tasks.QueueLength()); });
  m.Add("cronlane_status_writes_total", "Status patches written (conditions and fire times)", T::kCounter,
        [&] { return static_cast<double>(writer.writes()); });
  m.Add("cronlane_status_backlog", "Tasks whose status changes wait for the write budget", T::kGauge,
        [&] { return static_cast<double>(writer.backlog()); });
  m.Add("cronlane_events_combined_total", "Warning Events folded into a combined Event (aggregation)", T::kCounter,
        [&] { return static_cast<double>(aggregated.combined()); });
  m.Add("cronlane_results_total", "Worker results read from the results topic", T::kCounter,
        [&] { return static_cast<double>(results->results()); });
  m.Add("cronlane_results_invalid_total", "Records on the results topic that could not be decoded", T::kCounter,
        [&] { return static_cast<double>(results->invalid()); });
  if (pools) pools->RegisterMetrics(m);

  // 1. WorkerPools and the results replay.
  CancelToken pools_stop, results_stop, tasks_stop;
  Joined pools_thread{std::thread([&] {
    if (pools) pools->Run(pools_stop, options_.workerpool_workers);
  })};
  Joined results_thread{std::thread([&] { results->Run(results_stop); })};
  // 2. Every cached task into the dispatcher (held until it starts).
  Joined tasks_thread{std::thread([&] { tasks.Run(tasks_stop); })};
  // Finished tasks past their ttlSecondsAfterFinished (API deletes, off the reconcile path).
  Joined ttl_thread{std::thread([&] { ttl.Run(tasks_stop); })};
  // Backfills into the dispatcher's backfill lane (held, like tasks, until it starts).
  Joined backfill_thread{std::thread([&] {
    if (backfills) backfills->Run(tasks_stop);
  })};
  // Whatever ends the term stops everything; the Joined guards then join in reverse.
  int reg = leading.Register([&] {
    firing.Cancel();
    tasks_stop.Cancel();
    results_stop.Cancel();
    pools_stop.Cancel();
  });
  // On every way out: unregister, then stop what runs (the threads join after).
  struct StopAll {
    CancelToken& leading;
    int reg;
    std::vector<CancelToken*> tokens;
    ~StopAll() {
      leading.Unregister(reg);
      for (CancelToken* t : tokens) t->Cancel();
    }
  } stop_all{leading, reg, {&firing, &tasks_stop, &results_stop, &pools_stop}};

  // 3. Fence older leaders and restore checkpoints; Kafka may be down.
  Backoff backoff({options_.start_backoff, options_.max_start_backoff});
  while (!leading.cancelled()) {
    Status s = dispatcher.Start();
    if (s.ok()) break;
    spdlog::warn("{}dispatcher start (Kafka {}): {}; retrying", what, options_.kafka_description, s.ToString());
    if (leading.WaitFor(backoff.Next())) break;
  }
  // 4. Learn which occurrences finished under the previous leader (Forbid).
  auto barrier_end = clock_.SteadyNow() + options_.results_barrier;
  while (!leading.cancelled() && !results->Replayed() && clock_.SteadyNow() < barrier_end) {
    leading.WaitFor(std::chrono::milliseconds(20));
  }
  if (!leading.cancelled()) {
    // 5. Fire, and write status.
    spdlog::info("{}dispatcher started: checkpoints restored, firing to Kafka {}", what, options_.kafka_description);
    Joined writer_thread{std::thread([&] { writer.Run(firing, options_.status_period); })};
    // Off the path to the first fire: at 100k tasks this walks the whole cache
    // (263 ms before the first fire when it ran in step 3).
    Joined forget_thread{std::thread([&] {
      ForgetDeletedTasks(dispatcher);
      ForgetDeletedBackfills(dispatcher);
    })};
    dispatcher.Run(firing);  // returns when cancelled or fenced
    leading.Cancel();
  }
  std::lock_guard lock(fenced_mu);
  return fenced;
}

}  // namespace cronlane::op
