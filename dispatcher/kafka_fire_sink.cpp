#include "dispatcher/kafka_fire_sink.h"

#include <chrono>
#include <set>
#include <thread>

namespace cronlane::dispatcher {

using namespace std::chrono_literals;

KafkaFireSink::KafkaFireSink(KafkaSinkOptions options) : options_(std::move(options)) {}

KafkaFireSink::~KafkaFireSink() = default;

Status KafkaFireSink::Init() {
  kafka::Properties p = options_.base;
  p["transactional.id"] = options_.transactional_id;
  p["enable.idempotence"] = "true";
  p["acks"] = "all";
  p["transaction.timeout.ms"] = std::to_string(options_.transaction_timeout_ms);
  p.try_emplace("linger.ms", "1");
  p.try_emplace("allow.auto.create.topics", "false");
  auto producer = kafka::NewProducer(p);
  if (!producer.ok()) return producer.status();
  producer_ = std::move(*producer);
  Status created = kafka::CreateTopic(producer_.get(), options_.checkpoint_topic, options_.checkpoint_partitions,
                                      options_.replication_factor,
                                      {{"cleanup.policy", "compact"}, {"min.compaction.lag.ms", "0"}});
  if (!created.ok()) return Status(created.code(), "checkpoint topic: " + created.message());
  Status init = kafka::InitTransactions(producer_.get(), std::chrono::milliseconds(options_.commit_timeout_ms * 3));
  if (!init.ok()) return Status(init.code(), "init_transactions: " + init.message());
  fatal_ = false;
  return Status::Ok();
}

Status KafkaFireSink::Commit(const std::vector<OutMessage>& messages, const std::vector<Checkpoint>& checkpoints) {
  if (!producer_ || fatal_) return FailedPrecondition("the transactional producer is not usable; re-initialize");
  rd_kafka_t* rk = producer_.get();
  auto abort = [&](Status why) {
    // A fenced or fatal producer cannot abort; report it so the leader stops.
    if (why.code() == StatusCode::kFailedPrecondition && why.message().find("fatal") != std::string::npos) {
      fatal_ = true;
      return why;
    }
    Status a = kafka::AbortTransaction(rk, std::chrono::milliseconds(options_.commit_timeout_ms));
    if (!a.ok() && a.code() == StatusCode::kFailedPrecondition) fatal_ = true;
    return why;
  };
  Status s = kafka::BeginTransaction(rk);
  if (!s.ok()) {
    if (s.code() == StatusCode::kFailedPrecondition) fatal_ = true;
    return s;
  }
  auto produce = [&](const std::string& topic, const std::string& key, const std::string& value,
                     const std::vector<kafka::Header>& headers) {
    for (int attempt = 0;; ++attempt) {
      Status p = kafka::Produce(rk, topic, key, value, headers);
      if (p.ok() || attempt > 1000 || p.code() != StatusCode::kUnavailable) return p;
      rd_kafka_poll(rk, 10);  // local queue full: let deliveries drain
    }
  };
  for (const auto& m : messages) {
    if (Status p = produce(m.topic, m.key, m.value, m.headers); !p.ok()) return abort(p);
  }
  for (const auto& c : checkpoints) {
    if (Status p = produce(options_.checkpoint_topic, c.task_id, std::to_string(c.last_fired), {}); !p.ok()) {
      return abort(p);
    }
  }
  s = kafka::CommitTransaction(rk, std::chrono::milliseconds(options_.commit_timeout_ms));
  if (!s.ok()) return abort(s);
  return Status::Ok();
}

Result<std::map<std::string, int64_t>> KafkaFireSink::ReadCheckpoints() {
  kafka::Properties p = options_.base;
  p["isolation.level"] = "read_committed";
  p["enable.partition.eof"] = "true";
  auto consumer = kafka::NewConsumer(p);
  if (!consumer.ok()) return consumer.status();
  auto parts = kafka::PartitionCount(consumer->get(), options_.checkpoint_topic);
  if (!parts.ok()) return parts.status();
  std::map<std::string, int64_t> out;
  // Empty partitions report no EOF until something is fetched; skip them.
  std::set<int32_t> open;
  for (int32_t i = 0; i < *parts; ++i) {
    auto hw = kafka::HighWatermark(consumer->get(), options_.checkpoint_topic, i);
    if (!hw.ok()) return hw.status();
    if (*hw > 0) open.insert(i);
  }
  if (open.empty()) return out;
  Status a = kafka::AssignAll(consumer->get(), options_.checkpoint_topic, *parts);
  if (!a.ok()) return a;
  auto deadline = std::chrono::steady_clock::now() + 60s;
  while (!open.empty()) {
    if (std::chrono::steady_clock::now() > deadline) {
      return DeadlineExceeded("reading checkpoints from " + options_.checkpoint_topic + " did not finish in 60 s");
    }
    int32_t eof = -1;
    auto m = kafka::PollWithEof(consumer->get(), 500ms, eof);
    if (!m.ok()) return m.status();
    if (eof >= 0) open.erase(eof);
    if (!m->has_value() || !(*m)->key) continue;
    if ((*m)->value.empty()) {
      out.erase(*(*m)->key);  // tombstone
      continue;
    }
    try {
      out[*(*m)->key] = std::stoll((*m)->value);
    } catch (...) {
      // Not a checkpoint record (someone else wrote to the topic): ignore it.
    }
  }
  return out;
}

}  // namespace cronlane::dispatcher
