#include "dispatcher/results_follower.h"

#include <spdlog/spdlog.h>

#include <set>

#include "common/backoff.h"
#include "dispatcher/dispatcher.h"

namespace cronlane::dispatcher {

namespace {
constexpr size_t kMaxPartialOccurrences = 100000;
}

ResultsFollower::ResultsFollower(ResultsFollowerOptions options, Clock& clock, OnFinished on_finished,
                                 OnResult on_result)
    : options_(std::move(options)),
      clock_(clock),
      on_finished_(std::move(on_finished)),
      on_result_(std::move(on_result)) {}

void ResultsFollower::Handle(const kafka::Message& m) {
  auto invalid = [&](const std::string& why) {
    ++invalid_;
    if (auto n = invalid_log_.Allow()) {
      spdlog::warn("results topic {}[{}]@{}: {}; skipped ({} such record(s) since the last warning)", m.topic,
                   m.partition, m.offset, why, *n);
    }
  };
  auto r = DecodeTaskResult(m.value);
  if (!r.ok()) return invalid(r.status().message());
  auto scheduled = ParseRfc3339(r->time);
  if (!scheduled.ok()) return invalid("result record's \"time\" is not RFC 3339");
  ++results_;
  ParsedOccurrenceId occurrence = ParseOccurrenceId(r->id);
  const std::string& task_id = occurrence.task_id;
  if (on_result_) {
    RunResult run;
    run.subject = std::move(r->subject);
    run.trigger = !occurrence.backfill.empty() ? Trigger::kBackfill
                  : occurrence.token.empty()   ? Trigger::kSchedule
                                               : Trigger::kManual;
    run.scheduled = *scheduled;
    run.finished = m.timestamp_ms >= 0 ? Instant{std::chrono::seconds{m.timestamp_ms / 1000}}
                                       : std::chrono::floor<std::chrono::seconds>(clock_.Now());
    run.outcome = r->outcome;
    run.dead_lettered = r->dead_lettered;
    run.attempts = r->attempts;
    run.duration_ms = r->duration_ms;
    on_result_(task_id, run);
  }
  // A backfill's occurrence is of the past: it finishes no live one (Forbid).
  if (!occurrence.backfill.empty()) return;
  if (r->shard_count <= 1) {
    if (on_finished_) on_finished_(task_id, *scheduled, occurrence.token);
    return;
  }
  int& done = shards_done_[occurrence.base];
  if (++done >= r->shard_count) {
    shards_done_.erase(occurrence.base);
    if (on_finished_) on_finished_(task_id, *scheduled, occurrence.token);
  } else if (shards_done_.size() > kMaxPartialOccurrences) {
    // Shard results that never complete (lost workers) must not grow without bound.
    spdlog::warn("results: {} occurrences with missing shard results; forgetting them", shards_done_.size());
    shards_done_.clear();
  }
}

void ResultsFollower::Run(CancelToken& cancel) {
  kafka::Properties props = options_.base;
  props["enable.partition.eof"] = "true";
  props["isolation.level"] = "read_committed";
  auto consumer = kafka::NewConsumer(props);
  if (!consumer.ok()) {
    spdlog::error("results consumer: {}", consumer.status().ToString());
    return;
  }
  Backoff backoff({std::chrono::milliseconds(500), std::chrono::milliseconds(10000)});
  bool said_missing = false;
  while (!cancel.cancelled()) {
    auto partitions = kafka::PartitionCount(consumer->get(), options_.topic);
    if (!partitions.ok()) {
      if (partitions.status().code() == StatusCode::kNotFound) {
        replayed_ = true;  // nothing to replay
        if (!said_missing) {
          spdlog::info(
              "results topic {} does not exist (yet): concurrencyPolicy Forbid and lastSuccessfulTime wait "
              "for workers started with --results-topic={}",
              options_.topic, options_.topic);
          said_missing = true;
        }
      } else {
        spdlog::warn("results topic {}: {}", options_.topic, partitions.status().ToString());
      }
      if (cancel.WaitFor(backoff.Next())) return;
      continue;
    }
    auto since =
        std::chrono::duration_cast<std::chrono::milliseconds>((clock_.Now() - options_.lookback).time_since_epoch());
    if (Status s = kafka::AssignFromTime(consumer->get(), options_.topic, *partitions, since.count()); !s.ok()) {
      spdlog::warn("results topic {}: {}", options_.topic, s.ToString());
      if (cancel.WaitFor(backoff.Next())) return;
      continue;
    }
    backoff.Reset();
    std::set<int32_t> at_end;
    uint64_t before = results_.load();
    while (!cancel.cancelled()) {
      auto polled = kafka::PollWithEof(consumer->get(), std::chrono::milliseconds(200));
      if (!polled.ok()) {
        spdlog::warn("results: {}", polled.status().ToString());
        continue;
      }
      if (polled->eof && !replayed_.load()) {
        at_end.insert(polled->eof->partition);
        if (static_cast<int32_t>(at_end.size()) >= *partitions) {
          replayed_ = true;
          spdlog::info("results: replayed {} record(s) of the last {} s", results_.load() - before,
                       options_.lookback.count());
        }
      }
      if (polled->message) Handle(*polled->message);
    }
  }
}

}  // namespace cronlane::dispatcher
