#include "dispatcher/checkpoint_follower.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>

#include "common/backoff.h"

namespace cronlane::dispatcher {

using namespace std::chrono_literals;

bool ApplyCheckpointRecord(Checkpoints& into, const kafka::Message& record) {
  if (!record.key) return false;
  const bool typed = record.key->find('/') != std::string::npos;
  if (record.value.empty()) {
    if (typed) {
      into.records.erase(*record.key);  // tombstone
    } else {
      into.fired.erase(*record.key);
    }
    return true;
  }
  if (typed) {
    into.records[*record.key] = record.value;
    return true;
  }
  int64_t v = 0;
  const char* end = record.value.data() + record.value.size();
  auto [ptr, ec] = std::from_chars(record.value.data(), end, v);
  if (ec != std::errc() || ptr != end) return false;  // not a checkpoint (someone else wrote to the topic)
  into.fired[*record.key] = v;
  return true;
}

CheckpointFollower::CheckpointFollower(CheckpointFollowerOptions options) : options_(std::move(options)) {}

size_t CheckpointFollower::Size() const {
  MutexLock lock(mu_);
  return checkpoints_.size();
}

uint64_t CheckpointFollower::Records() const {
  MutexLock lock(mu_);
  return records_;
}

uint64_t CheckpointFollower::Invalid() const {
  MutexLock lock(mu_);
  return invalid_;
}

CheckpointPlacement CheckpointFollower::Placement() const {
  MutexLock lock(mu_);
  return placement_;
}

void CheckpointFollower::Run(CancelToken& cancel) {
  Backoff backoff({options_.retry, options_.max_retry, 0.2});
  while (!cancel.cancelled()) {
    Status s = Follow(cancel);
    {
      MutexLock lock(mu_);
      if (handed_over_) return;
    }
    if (s.ok()) continue;  // cancelled (the loop ends) or the partition count changed
    if (options_.once) {
      MutexLock lock(mu_);
      failed_ = s;
      cv_.notify_all();
      return;
    }
    // The topic does not exist until a leader has fired once: quiet until then.
    if (s.code() == StatusCode::kNotFound) {
      spdlog::debug("checkpoint follower: {}", s.ToString());
    } else {
      spdlog::warn("checkpoint follower: {}; reading {} again from its beginning", s.ToString(), options_.topic);
    }
    if (cancel.WaitFor(backoff.Next())) return;
  }
}

Status CheckpointFollower::Follow(CancelToken& cancel) {
  kafka::Properties p = options_.base;
  p["isolation.level"] = "read_committed";
  p["enable.partition.eof"] = "true";
  p.try_emplace("fetch.wait.max.ms", "50");
  auto consumer = kafka::NewConsumer(p);
  if (!consumer.ok()) return consumer.status();
  rd_kafka_t* rk = consumer->get();
  auto parts = kafka::PartitionCount(rk, options_.topic);
  if (!parts.ok()) return parts.status();
  const int32_t only = options_.partition;
  if (only >= *parts) {
    return FailedPrecondition(options_.topic + " has " + std::to_string(*parts) + " partitions; partition " +
                              std::to_string(only) + " does not exist");
  }
  auto assigned = [only](int32_t partition) { return only < 0 || partition == only; };
  if (Status a = only < 0 ? kafka::AssignAll(rk, options_.topic, *parts)
                          : kafka::AssignOne(rk, options_.topic, only, RD_KAFKA_OFFSET_BEGINNING);
      !a.ok()) {
    return a;
  }
  {
    MutexLock lock(mu_);
    checkpoints_ = Checkpoints{};  // every attempt reads from the beginning
    placement_ = CheckpointPlacement{};
  }
  // How far each partition has been read: past the last record seen, or to the
  // end a partition-EOF reported (for read_committed, past transaction markers).
  std::vector<int64_t> read(static_cast<size_t>(*parts), 0);
  std::optional<std::vector<int64_t>> target;  // the ends to reach for a hand-over
  bool polled_error = false;
  while (!cancel.cancelled()) {
    bool requested = false;
    {
      MutexLock lock(mu_);
      requested = requested_;
    }
    if (!requested) {
      target.reset();
    } else if (!target) {
      auto now_parts = kafka::PartitionCount(rk, options_.topic);
      if (!now_parts.ok()) return now_parts.status();
      if (*now_parts != *parts) {
        spdlog::warn("checkpoint follower: {} has {} partitions now (was {}); reading it again", options_.topic,
                     *now_parts, *parts);
        return Status::Ok();
      }
      std::vector<int64_t> hw(read.size());
      for (int32_t i = 0; i < *parts; ++i) {
        if (!assigned(i)) continue;  // target 0: read already
        auto h = kafka::HighWatermark(rk, options_.topic, i);
        if (!h.ok()) return h.status();
        hw[static_cast<size_t>(i)] = *h;
      }
      target = std::move(hw);
    }
    if (target && std::equal(read.begin(), read.end(), target->begin(), std::greater_equal<>())) {
      MutexLock lock(mu_);
      if (requested_) {
        result_ = std::move(checkpoints_);
        checkpoints_ = Checkpoints{};
        handed_over_ = true;
        cv_.notify_all();
        return Status::Ok();
      }
      target.reset();  // the waiter gave up
      continue;
    }
    auto polled = kafka::PollWithEof(rk, 100ms);
    if (!polled.ok()) {
      // librdkafka recovers from broker errors by itself; keep polling.
      if (!polled_error) spdlog::warn("checkpoint follower: {}", polled.status().ToString());
      polled_error = true;
      continue;
    }
    polled_error = false;
    MutexLock lock(mu_);
    if (const auto& m = polled->message; m && m->partition >= 0 && m->partition < *parts) {
      auto& r = read[static_cast<size_t>(m->partition)];
      r = std::max(r, m->offset + 1);
      if (options_.keep && !ApplyCheckpointRecord(checkpoints_, *m)) {
        ++invalid_;
        if (auto n = invalid_log_.Allow()) {
          spdlog::warn(
              "checkpoint topic {}[{}]@{}: not a checkpoint (a key and a decimal Unix time, or a "
              "tombstone): skipped ({} such record(s) since the last warning)",
              m->topic, m->partition, m->offset, *n);
        }
      }
      ++records_;
      if (options_.shards > 1 && m->key) {
        ++placement_.checked;
        const std::string_view owner = CheckpointOwner(*m->key);
        for (ShardLayout l : {ShardLayout::kModulo, ShardLayout::kRange}) {
          if (ShardOf(owner, options_.shards, l) == m->partition) continue;
          const auto at = static_cast<size_t>(l);
          if (placement_.misplaced[at]++ == 0) {
            placement_.example[at] = "key " + *m->key + " in partition " + std::to_string(m->partition);
          }
        }
      }
    }
    if (const auto& eof = polled->eof; eof && eof->partition >= 0 && eof->partition < *parts) {
      auto& r = read[static_cast<size_t>(eof->partition)];
      r = std::max(r, eof->offset);
    }
  }
  return Status::Ok();
}

Result<Checkpoints> CheckpointFollower::TakeOver(std::chrono::milliseconds timeout) {
  MutexLock lock(mu_);
  if (handed_over_) return Unavailable("the checkpoints were handed over already");
  if (failed_) return *failed_;
  requested_ = true;
  const bool done =
      cv_.wait_for(lock.native(), timeout, [&]() REQUIRES(mu_) { return result_.has_value() || failed_.has_value(); });
  requested_ = false;
  if (failed_ && !result_) return *failed_;
  if (!done) {
    return DeadlineExceeded("reading " + options_.topic + " to its end did not finish in " +
                            std::to_string(timeout.count()) + " ms");
  }
  Result<Checkpoints> out = std::move(*result_);
  result_.reset();
  return out;
}

}  // namespace cronlane::dispatcher
