#include "dispatcher/reshard.h"

#include <spdlog/spdlog.h>

#include "common/hash.h"
#include "dispatcher/kafka_fire_sink.h"

namespace cronlane::dispatcher {
namespace {

// Shard `i` of a layout of `shards`: its transactional.id and sink settings, as the
// operator makes them (--transactional-id, --shards).
KafkaSinkOptions ShardSink(const ReshardOptions& o, const std::string& topic, int shards, int shard) {
  KafkaSinkOptions s;
  s.base = o.base;
  s.checkpoint_topic = topic;
  s.replication_factor = o.replication_factor;
  s.read_timeout = o.timeout;
  if (shards > 1) {
    s.transactional_id = o.transactional_id + "-" + std::to_string(shard);
    s.checkpoint_partitions = shards;
    s.shard = shard;
    s.layout = o.to_layout;  // only the target's sinks read back (and check) a partition
  } else {
    s.transactional_id = o.transactional_id;
  }
  return s;
}

// `all` split by the shard (of `shards`, by `layout`) of each checkpoint's task.
std::vector<Checkpoints> ByShard(const Checkpoints& all, int shards, ShardLayout layout) {
  std::vector<Checkpoints> parts(static_cast<size_t>(shards));
  auto part = [&](std::string_view uid) -> Checkpoints& {
    return parts[static_cast<size_t>(ShardOf(uid, shards, layout))];
  };
  for (const auto& [uid, t] : all.fired) part(uid).fired.emplace(uid, t);
  for (const auto& [key, text] : all.records) part(CheckpointOwner(key)).records.emplace(key, text);
  return parts;
}

std::vector<Checkpoint> AsCheckpoints(const Checkpoints& c) {
  std::vector<Checkpoint> out;
  out.reserve(c.size());
  for (const auto& [uid, t] : c.fired) out.push_back({uid, t, false, "", ""});
  for (const auto& [key, text] : c.records) {
    const std::string_view owner = CheckpointOwner(key);
    out.push_back({std::string(owner), 0, false, key.substr(owner.size()), text});
  }
  return out;
}

}  // namespace

Result<ReshardReport> ReshardCheckpoints(const ReshardOptions& o) {
  if (o.from_topic.empty() || o.to_topic.empty()) return InvalidArgument("both checkpoint topics are needed");
  if (o.from_topic == o.to_topic) {
    return InvalidArgument("the new checkpoint topic must differ from the old one (" + o.from_topic + ")");
  }
  if (o.from_shards < 1 || o.to_shards < 1) return InvalidArgument("shard counts start at 1");
  if (o.batch == 0) return InvalidArgument("batch must be at least 1");
  kafka::Properties probe = o.base;
  probe["allow.auto.create.topics"] = "false";
  auto client = kafka::NewProducer(probe);
  if (!client.ok()) return client.status();

  // 1. The source exists; the target is new or empty, with room for the layout.
  auto from_parts = kafka::PartitionCount(client->get(), o.from_topic);
  if (!from_parts.ok()) {
    return Status(from_parts.status().code(),
                  "old checkpoint topic " + o.from_topic + ": " + from_parts.status().message());
  }
  if (Status fit = CheckCheckpointPartitions(client->get(), o.to_topic, o.to_shards); !fit.ok()) return fit;
  if (auto to_parts = kafka::PartitionCount(client->get(), o.to_topic); to_parts.ok()) {
    for (int32_t p = 0; p < *to_parts; ++p) {
      auto high = kafka::HighWatermark(client->get(), o.to_topic, p);
      if (!high.ok())
        return Status(high.status().code(), "new checkpoint topic " + o.to_topic + ": " + high.status().message());
      if (*high > 0) {
        return FailedPrecondition("new checkpoint topic " + o.to_topic + " already holds records (partition " +
                                  std::to_string(p) + "): give a topic that does not exist yet");
      }
    }
  } else if (to_parts.status().code() != StatusCode::kNotFound) {
    return Status(to_parts.status().code(), "new checkpoint topic " + o.to_topic + ": " + to_parts.status().message());
  }

  // 2. No producer of the old layout commits after the read.
  for (int i = 0; i < o.from_shards; ++i) {
    KafkaFireSink fence(ShardSink(o, o.from_topic, o.from_shards, i));
    if (Status s = fence.Init(); !s.ok()) {
      return Status(s.code(), "fencing the old layout's producer " + std::to_string(i) + ": " + s.message());
    }
  }

  // 3. Everything the old layout holds.
  KafkaSinkOptions whole = ShardSink(o, o.from_topic, 1, 0);
  auto source = KafkaFireSink(whole).ReadCheckpoints();
  if (!source.ok()) {
    return Status(source.status().code(), "reading " + o.from_topic + ": " + source.status().message());
  }
  ReshardReport report{source->fired.size(), source->records.size(), {}};

  // 4. Each target shard's part, in batches of transactions of its own producer;
  // 5. read back and compared.
  const std::vector<Checkpoints> parts = ByShard(*source, o.to_shards, o.to_layout);
  for (int i = 0; i < o.to_shards; ++i) {
    const Checkpoints& part = parts[static_cast<size_t>(i)];
    const std::vector<Checkpoint> all = AsCheckpoints(part);
    KafkaFireSink sink(ShardSink(o, o.to_topic, o.to_shards, i));
    if (Status s = sink.Init(); !s.ok())
      return Status(s.code(), "new checkpoint topic " + o.to_topic + ": " + s.message());
    for (size_t at = 0; at < all.size(); at += o.batch) {
      const size_t end = std::min(all.size(), at + o.batch);
      std::vector<Checkpoint> batch(all.begin() + static_cast<std::ptrdiff_t>(at),
                                    all.begin() + static_cast<std::ptrdiff_t>(end));
      if (Status s = sink.Commit({}, batch); !s.ok()) {
        return Status(s.code(), "writing shard " + std::to_string(i) + " to " + o.to_topic + ": " + s.message());
      }
    }
    auto written = sink.ReadCheckpoints();
    if (!written.ok()) {
      return Status(written.status().code(), "reading back shard " + std::to_string(i) + " of " + o.to_topic + ": " +
                                                 written.status().message());
    }
    if (!(*written == part)) {
      return Internal("shard " + std::to_string(i) + " of " + o.to_topic + " reads back " +
                      std::to_string(written->size()) + " checkpoints where " + std::to_string(part.size()) +
                      " were written");
    }
    report.per_shard.push_back(part.size());
    spdlog::info("reshard: shard {} of {}: {} checkpoint(s) written to {} and read back", i, o.to_shards, part.size(),
                 o.to_topic);
  }
  return report;
}

}  // namespace cronlane::dispatcher
