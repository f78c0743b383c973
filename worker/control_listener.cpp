#include "worker/control_listener.h"

#include <spdlog/spdlog.h>

#include "common/backoff.h"
#include "common/cloudevent.h"

namespace cronlane::worker {

ControlListener::ControlListener(ControlListenerOptions options, Clock& clock, OnCancel on_cancel)
    : options_(std::move(options)), clock_(clock), on_cancel_(std::move(on_cancel)) {}

void ControlListener::Handle(const kafka::Message& m) {
  if (m.HeaderValue("ce_type") != std::optional<std::string_view>(kCancelEventType)) return;
  auto invalid = [&](const std::string& why) {
    ++invalid_;
    if (auto n = invalid_log_.Allow()) {
      spdlog::warn("control topic {}[{}]@{}: {}; skipped ({} such record(s) since the last warning)", m.topic,
                   m.partition, m.offset, why, *n);
    }
  };
  auto e = DecodeCancelEvent(m);
  if (!e.ok()) return invalid(e.status().message());
  auto before = ParseRfc3339(e->before);
  if (!before.ok()) return invalid("ce_cancelbefore is not RFC 3339: " + e->before);
  ++cancels_;
  spdlog::info("cancel {}: occurrences of {} ({}) scheduled before {} stop", e->id, e->subject, e->task_id, e->before);
  if (on_cancel_) on_cancel_(e->task_id, *before);
}

void ControlListener::Run(CancelToken& cancel) {
  kafka::Properties props = options_.base;
  props["isolation.level"] = "read_committed";
  props["enable.partition.eof"] = "true";
  auto consumer = kafka::NewConsumer(props);
  if (!consumer.ok()) {
    spdlog::error("control consumer: {}", consumer.status().ToString());
    return;
  }
  Backoff backoff({std::chrono::milliseconds(500), std::chrono::milliseconds(10000)});
  bool said_missing = false;
  while (!cancel.cancelled()) {
    auto partitions = kafka::PartitionCount(consumer->get(), options_.topic);
    if (!partitions.ok()) {
      if (partitions.status().code() == StatusCode::kNotFound) replayed_ = true;  // nothing to replay
      if (partitions.status().code() != StatusCode::kNotFound) {
        spdlog::warn("control topic {}: {}", options_.topic, partitions.status().ToString());
      } else if (!said_missing) {
        spdlog::info("control topic {} does not exist (yet): no cancels so far (concurrencyPolicy Replace)",
                     options_.topic);
        said_missing = true;
      }
      if (cancel.WaitFor(backoff.Next())) return;
      continue;
    }
    auto since =
        std::chrono::duration_cast<std::chrono::milliseconds>((clock_.Now() - options_.lookback).time_since_epoch());
    if (Status s = kafka::AssignFromTime(consumer->get(), options_.topic, *partitions, since.count()); !s.ok()) {
      spdlog::warn("control topic {}: {}", options_.topic, s.ToString());
      if (cancel.WaitFor(backoff.Next())) return;
      continue;
    }
    spdlog::info("following control topic {} ({} partition(s)) from {} s ago", options_.topic, *partitions,
                 options_.lookback.count());
    std::set<int32_t> at_end;
    while (!cancel.cancelled()) {
      auto polled = kafka::PollWithEof(consumer->get(), std::chrono::milliseconds(200));
      if (!polled.ok()) {
        spdlog::warn("control topic: {}", polled.status().ToString());
        continue;
      }
      if (polled->message) Handle(*polled->message);
      if (polled->eof && !replayed_.load()) {
        at_end.insert(polled->eof->partition);
        if (static_cast<int32_t>(at_end.size()) >= *partitions) replayed_ = true;
      }
    }
  }
}

}  // namespace cronlane::worker
