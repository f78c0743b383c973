#include "dispatcher/kafka_fire_sink.h"

#include <spdlog/spdlog.h>

#include <array>
#include <chrono>
#include <set>
#include <thread>

namespace cronlane::dispatcher {

using namespace std::chrono_literals;

KafkaFireSink::KafkaFireSink(KafkaSinkOptions options, Clock& clock) : options_(std::move(options)), clock_(clock) {}

KafkaFireSink::~KafkaFireSink() = default;

namespace {

// OK when the checkpoint topic's `partitions` fit `shards`, else what to do.
Status PartitionsFitShards(const std::string& topic, int32_t partitions, int shards) {
  if (partitions == shards) return Status::Ok();
  return FailedPrecondition(
      "the checkpoint topic " + topic + " has " + std::to_string(partitions) + " partitions, but --shards is " +
      std::to_string(shards) + ": each shard keeps its checkpoints in a partition of its own. Keep --shards at " +
      std::to_string(partitions) + ", or follow docs/operations.md, \"Changing the number of shards\"");
}

}  // namespace

Status KafkaFireSink::Init() {
  kafka::Properties p = options_.base;
  p["transactional.id"] = options_.transactional_id;
  p["enable.idempotence"] = "true";
  p["acks"] = "all";
  p["transaction.timeout.ms"] = std::to_string(options_.transaction_timeout_ms);
  p.try_emplace("linger.ms", "1");
  p.try_emplace("allow.auto.create.topics", "false");
  // A message for a topic missing from the metadata fails after this, not after
  // the 30 s default: the sink checks topics itself before producing, so a
  // missing one here was deleted meanwhile, and the batch must fail soon to be
  // retried without it.
  p.try_emplace("topic.metadata.propagation.max.ms", "5000");
  producer_.reset();
  auto producer = kafka::NewProducer(p);
  if (!producer.ok()) return producer.status();
  producer_ = std::move(*producer);
  // Looked up first and created only when missing: a principal allowed to write
  // the topic may not be allowed to create topics, and a broker answers a create
  // of an existing topic with that refusal rather than "exists".
  // A shard's checkpoints live in partition `shard`: an existing topic must have
  // one partition per shard (one this call creates has).
  auto existing = kafka::PartitionCount(producer_.get(), options_.checkpoint_topic);
  if (existing.ok()) {
    if (options_.shard >= 0) {
      Status fit = PartitionsFitShards(options_.checkpoint_topic, *existing, options_.checkpoint_partitions);
      if (!fit.ok()) return fit;
    }
  } else if (existing.status().code() != StatusCode::kNotFound) {
    return Status(existing.status().code(), "checkpoint topic: " + existing.status().message());
  } else {
    Status created = kafka::CreateTopic(producer_.get(), options_.checkpoint_topic, options_.checkpoint_partitions,
                                        options_.replication_factor, CheckpointTopicConfig());
    if (!created.ok()) return Status(created.code(), "checkpoint topic: " + created.message());
  }
  Status init = kafka::InitTransactions(producer_.get(), std::chrono::milliseconds(options_.commit_timeout_ms * 3));
  if (!init.ok()) return Status(init.code(), "init_transactions: " + init.message());
  fenced_ = reinit_ = abort_pending_ = false;
  return Status::Ok();
}

kafka::Properties CheckpointTopicConfig() {
  // Compaction only cleans closed segments. With the broker's default 1 GiB
  // segments, 100k every-minute tasks (about 6 MB of checkpoints a minute) would
  // keep every record for hours, and a new leader would read them all before its
  // first fire (ReadCheckpoints gives up after 60 s). Small segments, rolled at
  // least every 10 minutes, keep the topic near one record per task.
  return {{"cleanup.policy", "compact"},
          {"min.compaction.lag.ms", "0"},
          {"segment.bytes", std::to_string(16 * 1024 * 1024)},
          {"segment.ms", "600000"},
          {"min.cleanable.dirty.ratio", "0.5"}};
}

Status CheckCheckpointPartitions(rd_kafka_t* client, const std::string& topic, int shards) {
  auto parts = kafka::PartitionCount(client, topic, std::chrono::milliseconds(5000));
  if (!parts.ok() && parts.status().code() == StatusCode::kNotFound) return Status::Ok();
  if (!parts.ok()) return Status(parts.status().code(), "checkpoint topic " + topic + ": " + parts.status().message());
  return PartitionsFitShards(topic, *parts, shards);
}

namespace {

// A record misplaced for `layout` (`p` says where): what to do about it.
Status Misplaced(const std::string& topic, int shards, ShardLayout layout, const CheckpointPlacement& p) {
  const ShardLayout other = layout == ShardLayout::kRange ? ShardLayout::kModulo : ShardLayout::kRange;
  std::string fix = p.Misplaced(other) == 0
                        ? "it was written with --shard-layout " + std::string(ShardLayoutName(other)) +
                              ": run with that, or copy it to a new topic with `cronlane-operator reshard-checkpoints "
                              "--shard-layout " +
                              std::string(ShardLayoutName(layout)) + "` (docs/operations.md, \"Shard layouts\")"
                        : "it fits neither layout: was it written by another program or another --shards?";
  return FailedPrecondition("the checkpoint topic " + topic + " does not fit --shards " + std::to_string(shards) +
                            " --shard-layout " + std::string(ShardLayoutName(layout)) + ": " +
                            std::to_string(p.Misplaced(layout)) + " of " + std::to_string(p.checked) +
                            " record(s) sit in another shard's partition (first: " + p.Example(layout) + "); " + fix);
}

// Reads `options`' topic (or partition) once from its beginning.
Result<std::pair<Checkpoints, CheckpointPlacement>> ReadOnce(CheckpointFollowerOptions options,
                                                             std::chrono::milliseconds timeout) {
  options.once = true;
  CheckpointFollower cold(std::move(options));
  CancelToken stop;
  std::thread reader([&] { cold.Run(stop); });
  auto out = cold.TakeOver(timeout);
  stop.Cancel();
  reader.join();
  if (!out.ok()) return out.status();
  return std::make_pair(std::move(*out), cold.Placement());
}

}  // namespace

Result<ShardLayout> CheckCheckpointLayout(const kafka::Properties& base, const std::string& topic, int shards,
                                          std::optional<ShardLayout> wanted, std::chrono::milliseconds timeout) {
  auto read = ReadOnce({.base = base, .topic = topic, .shards = shards, .keep = false}, timeout);
  if (!read.ok() && read.status().code() == StatusCode::kNotFound) return wanted.value_or(ShardLayout::kRange);
  if (!read.ok()) return Status(read.status().code(), "checkpoint topic " + topic + ": " + read.status().message());
  const CheckpointPlacement& p = read->second;
  if (wanted) {
    if (p.Misplaced(*wanted) != 0) return Misplaced(topic, shards, *wanted, p);
    return *wanted;
  }
  if (p.Misplaced(ShardLayout::kRange) == 0) return ShardLayout::kRange;
  if (p.Misplaced(ShardLayout::kModulo) == 0) return ShardLayout::kModulo;
  return Misplaced(topic, shards, ShardLayout::kRange, p);
}

Status KafkaFireSink::Fail(const Status& why) {
  rd_kafka_t* rk = producer_.get();
  std::array<char, 256> buf{};
  rd_kafka_resp_err_t fatal = rd_kafka_fatal_error(rk, buf.data(), buf.size());
  if (fatal == RD_KAFKA_RESP_ERR__FENCED || fatal == RD_KAFKA_RESP_ERR_PRODUCER_FENCED ||
      fatal == RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH) {
    fenced_ = true;
    return Fenced("fenced by a newer producer with transactional.id " + options_.transactional_id + ": " + buf.data());
  }
  if (fatal != RD_KAFKA_RESP_ERR_NO_ERROR) {
    reinit_ = true;  // e.g. the transaction coordinator timed us out during a long outage
    return Unavailable(std::string("fatal producer error, re-creating the producer: ") + buf.data());
  }
  Status a = kafka::AbortTransaction(rk, std::chrono::milliseconds(options_.commit_timeout_ms));
  abort_pending_ = !a.ok();
  known_topics_.clear();  // a topic deleted under us fails a transaction: look each up again
  return why.code() == StatusCode::kFailedPrecondition || why.code() == StatusCode::kFenced ? Unavailable(why.message())
                                                                                            : why;
}

Status KafkaFireSink::EnsureTopic(const std::string& topic) {
  if (known_topics_.count(topic) != 0) return Status::Ok();
  auto parts = kafka::PartitionCount(producer_.get(), topic);
  if (!parts.ok() && parts.status().code() == StatusCode::kNotFound) {
    if (!options_.create_topics) return parts.status();
    Status c = kafka::CreateTopic(producer_.get(), topic, options_.topic_partitions, options_.replication_factor);
    if (!c.ok()) return NotFound("topic " + topic + " does not exist, and creating it failed: " + c.message());
  } else if (!parts.ok()) {
    return Unavailable("topic " + topic + ": " + parts.status().message());
  }
  known_topics_.insert(topic);
  return Status::Ok();
}

Status KafkaFireSink::EnsureTopics(const std::vector<OutMessage>& messages) {
  for (const auto& m : messages) {
    if (Status s = EnsureTopic(m.topic); !s.ok()) return Unavailable(s.message());
  }
  return Status::Ok();
}

std::vector<std::string> KafkaFireSink::MissingTopics(const std::vector<std::string>& topics) {
  std::vector<std::string> missing;
  if (!producer_ || fenced_) return missing;  // Commit reports what is wrong
  for (const auto& t : topics) {
    // Only a topic the broker says does not exist (and that could not be created)
    // is held back; a broker that does not answer fails the whole batch, as before.
    if (EnsureTopic(t).code() == StatusCode::kNotFound) missing.push_back(t);
  }
  return missing;
}

Status KafkaFireSink::Commit(const std::vector<OutMessage>& messages, const std::vector<Checkpoint>& checkpoints) {
  if (fenced_) return Fenced("fenced by a newer producer; this dispatcher must stop");
  if (!producer_ || reinit_) {
    if (Status s = Init(); !s.ok()) return Unavailable("re-initializing the producer: " + s.message());
  }
  if (Status t = EnsureTopics(messages); !t.ok()) return t;
  rd_kafka_t* rk = producer_.get();
  if (abort_pending_) {
    // An abort that timed out (broker down) is resumed before anything else.
    Status a = kafka::AbortTransaction(rk, std::chrono::milliseconds(options_.commit_timeout_ms));
    if (!a.ok()) return Fail(a);
    abort_pending_ = false;
  }
  Status s = kafka::BeginTransaction(rk);
  if (!s.ok()) return Fail(s);
  // `once` produces one record; a full local queue is drained and retried.
  auto produce = [&](const auto& once) {
    for (int attempt = 0;; ++attempt) {
      Status p = once();
      if (p.ok() || attempt > 1000 || p.code() != StatusCode::kUnavailable) return p;
      rd_kafka_poll(rk, 10);  // local queue full: let deliveries drain
    }
  };
  for (const auto& m : messages) {
    Status p = produce([&] { return kafka::Produce(rk, m.topic, m.key, m.value, m.headers); });
    if (!p.ok()) return Fail(p);
  }
  const std::string& cp_topic = options_.checkpoint_topic;
  const int32_t cp_partition = options_.shard >= 0 ? options_.shard : RD_KAFKA_PARTITION_UA;
  for (const auto& c : checkpoints) {
    Status p = produce([&] {
      const std::string key = c.suffix.empty() ? c.task_id : c.task_id + c.suffix;
      if (c.deleted) return kafka::ProduceTombstone(rk, cp_topic, key, cp_partition);
      return kafka::Produce(rk, cp_topic, key, c.suffix.empty() ? std::to_string(c.last_fired) : c.text, {},
                            cp_partition);
    });
    if (!p.ok()) return Fail(p);
  }
  // A retriable commit failure (broker unreachable, timeout) leaves the outcome
  // unknown, so the same commit is retried until it is known: committed, or aborted
  // by the coordinator (then abortable here). Re-firing after an unknown outcome
  // could duplicate; giving up stops this dispatcher, and the next one restores
  // from the checkpoints, which are exact.
  auto started = clock_.SteadyNow();
  while (true) {
    rd_kafka_error_t* err = rd_kafka_commit_transaction(rk, options_.commit_timeout_ms);
    if (err == nullptr) return Status::Ok();
    const bool retriable = rd_kafka_error_is_retriable(err);
    const bool requires_abort = rd_kafka_error_txn_requires_abort(err);
    Status why = kafka::FromError(err);  // destroys err
    if (retriable && !requires_abort) {
      if (clock_.SteadyNow() - started > options_.max_commit_retry) {
        fenced_ = true;  // unusable: stop rather than guess
        return Fenced("commit outcome still unknown after retrying for " +
                      std::to_string(options_.max_commit_retry.count()) + " s: " + why.message());
      }
      continue;
    }
    return Fail(why);
  }
}

Result<Checkpoints> KafkaFireSink::ReadCheckpoints() {
  if (options_.follower) {
    auto warm = options_.follower->TakeOver(options_.follower_timeout);
    if (warm.ok()) return warm;
    spdlog::warn("checkpoints from the follower: {}; reading {} from its beginning", warm.status().ToString(),
                 options_.checkpoint_topic);
  }
  const bool sharded = options_.shard >= 0 && options_.checkpoint_partitions > 1;
  auto read = ReadOnce({.base = options_.base,
                        .topic = options_.checkpoint_topic,
                        .partition = options_.shard,
                        .shards = sharded ? options_.checkpoint_partitions : 0},
                       options_.read_timeout);
  if (!read.ok()) return read.status();
  // A partition holding another layout's checkpoints means this shard's tasks have
  // theirs elsewhere, and it would fire them as if never fired before: refused.
  if (sharded && read->second.Misplaced(options_.layout) != 0) {
    return Misplaced(options_.checkpoint_topic, options_.checkpoint_partitions, options_.layout, read->second);
  }
  return std::move(read->first);
}

}  // namespace cronlane::dispatcher
