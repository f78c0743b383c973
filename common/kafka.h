#pragma once
// Thin RAII layer over librdkafka's C API, shared by the dispatcher, the operator
// and the workers. It owns handles and turns librdkafka errors into Status; it
// adds no threads and no policy. All functions are safe to call from the thread
// that owns the handle; librdkafka handles are themselves thread-safe except where
// librdkafka documents otherwise (consumer poll from one thread at a time).

#include <librdkafka/rdkafka.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace cronlane::kafka {

// librdkafka configuration properties ("bootstrap.servers", "acks", ...).
using Properties = std::map<std::string, std::string>;

struct HandleDeleter {
  void operator()(rd_kafka_t* rk) const;
};
using HandlePtr = std::unique_ptr<rd_kafka_t, HandleDeleter>;

// A consumed message as librdkafka holds it (any thread may destroy it).
struct MessageDeleter {
  void operator()(rd_kafka_message_t* m) const;
};
using MessagePtr = std::unique_ptr<rd_kafka_message_t, MessageDeleter>;

struct Header {
  std::string name;
  std::string value;
  bool operator==(const Header&) const = default;
};

// The value of the first header with this name, if any. Inline: decoders that
// read messages (and their fuzz targets) need no librdkafka to link.
inline std::optional<std::string_view> FindHeader(const std::vector<Header>& headers, std::string_view name) {
  for (const auto& h : headers) {
    if (h.name == name) return std::string_view(h.value);
  }
  return std::nullopt;
}

struct Message {
  std::string topic;
  int32_t partition = 0;
  int64_t offset = 0;
  std::optional<std::string> key;
  std::string value;
  std::vector<Header> headers;
  int64_t timestamp_ms = -1;  // broker or producer timestamp, -1 when absent

  // The value of the first header with this name, if any.
  std::optional<std::string_view> HeaderValue(std::string_view name) const { return FindHeader(headers, name); }
};

// Adds "KEY=VALUE" strings (from --kafka-property) to `props`. InvalidArgument
// names the position of a malformed one but never echoes its text, which may hold a
// password.
Status AddProperties(const std::vector<std::string>& key_values, Properties& props);

// Creates a producer. Delivery reports are consumed internally; use Flush() to
// wait for outstanding messages. Fails with InvalidArgument on a bad property.
Result<HandlePtr> NewProducer(const Properties& props);

// Creates a consumer with its poll queue redirected to the consumer queue, so
// Poll() below sees messages. Set "group.id" for Subscribe(). Without one, the
// consumer is a plain reader for AssignAll(): it gets a private group id and never
// commits offsets (librdkafka's consumer API needs some group id even to assign).
//
// `listener` (optional, must outlive the handle) is told about partitions being
// assigned and revoked in a consumer group, from inside Poll() on the polling
// thread, before the assignment changes: a consumer with work in flight can
// finish it and commit before its partitions move to another member.
class RebalanceListener {
 public:
  virtual ~RebalanceListener() = default;
  virtual void OnAssigned(rd_kafka_t* consumer, const std::vector<std::pair<std::string, int32_t>>& partitions) = 0;
  virtual void OnRevoked(rd_kafka_t* consumer, const std::vector<std::pair<std::string, int32_t>>& partitions) = 0;
};
Result<HandlePtr> NewConsumer(const Properties& props, RebalanceListener* listener = nullptr);

// Produces one message (copies key, value and headers). Unavailable when the local
// queue is full; the message is then not queued.
Status Produce(rd_kafka_t* producer, std::string_view topic, std::optional<std::string_view> key,
               std::string_view value, const std::vector<Header>& headers = {},
               int32_t partition = RD_KAFKA_PARTITION_UA);

// Produces one message and waits for its own delivery report: OK once the broker
// has it (per the producer's acks), the delivery error otherwise, and
// DeadlineExceeded when no report came within `timeout` (the message may still be
// delivered later). For records that must be durable before a consumer offset
// moves past what they record. Safe from several threads at once.
Status ProduceAndWait(rd_kafka_t* producer, std::string_view topic, std::optional<std::string_view> key,
                      std::string_view value, const std::vector<Header>& headers, std::chrono::milliseconds timeout);

// Produces one message without waiting: `done` gets its delivery report (OK once
// the broker has it, else the delivery error; a message not delivered within the
// producer's message.timeout.ms fails) on the thread that next calls
// ServeDeliveries() on this producer. When it returns an error (a full local
// queue: Unavailable), the message was not queued and `done` never runs.
Status ProduceAsync(rd_kafka_t* producer, std::string_view topic, std::optional<std::string_view> key,
                    std::string_view value, const std::vector<Header>& headers, std::function<void(Status)> done);
// Runs the delivery callbacks that are due, waiting up to `timeout` for one.
void ServeDeliveries(rd_kafka_t* producer, std::chrono::milliseconds timeout);

// Produces a record with a null value: on a compacted topic, a tombstone that
// deletes `key` (an empty value is not one).
Status ProduceTombstone(rd_kafka_t* producer, std::string_view topic, std::string_view key,
                        int32_t partition = RD_KAFKA_PARTITION_UA);

// Waits until every queued message is delivered or failed, or the timeout passes.
// Reports the first delivery error seen since the last Flush.
Status Flush(rd_kafka_t* producer, std::chrono::milliseconds timeout);

// Transactions (the producer needs "transactional.id").
Status InitTransactions(rd_kafka_t* producer, std::chrono::milliseconds timeout);
Status BeginTransaction(rd_kafka_t* producer);
Status CommitTransaction(rd_kafka_t* producer, std::chrono::milliseconds timeout);
Status AbortTransaction(rd_kafka_t* producer, std::chrono::milliseconds timeout);

// Subscribes a consumer to topics (consumer group required).
Status Subscribe(rd_kafka_t* consumer, const std::vector<std::string>& topics);
// Assigns all partitions [0, partitions) of a topic from the given start offset
// (RD_KAFKA_OFFSET_BEGINNING, RD_KAFKA_OFFSET_END or an absolute offset).
Status AssignAll(rd_kafka_t* consumer, std::string_view topic, int32_t partitions,
                 int64_t start_offset = RD_KAFKA_OFFSET_BEGINNING);

// Assigns one partition of a topic from `start_offset`.
Status AssignOne(rd_kafka_t* consumer, std::string_view topic, int32_t partition, int64_t start_offset);

// Assigns all partitions [0, partitions) of a topic from the first message with a
// timestamp at or after `since_ms` (Unix milliseconds); partitions without one start
// at their end.
Status AssignFromTime(rd_kafka_t* consumer, std::string_view topic, int32_t partitions, int64_t since_ms,
                      std::chrono::milliseconds timeout = std::chrono::seconds(10));

// Polls one message. Returns nullopt when nothing arrived within the timeout or the
// event was a partition EOF; errors other than EOF are returned as Status.
Result<std::optional<Message>> Poll(rd_kafka_t* consumer, std::chrono::milliseconds timeout);

// A partition and an offset in it.
struct PartitionOffset {
  std::string topic;
  int32_t partition = -1;
  int64_t offset = -1;
};

// What one poll saw: a message, the end of a partition, or neither (nothing
// arrived within the timeout).
struct Polled {
  std::optional<Message> message;
  // PollRawWithEof only, instead of `message`: the message as librdkafka holds it,
  // copied (ToMessage) by whoever needs its parts.
  MessagePtr raw;
  // The partition that reached its end and the offset of that end (for a
  // read_committed consumer the last stable offset, past any transaction marker).
  // Reported only with "enable.partition.eof"=true.
  std::optional<PartitionOffset> eof;
};
// Like Poll(), but reports end-of-partition.
Result<Polled> PollWithEof(rd_kafka_t* consumer, std::chrono::milliseconds timeout);
// Like PollWithEof, but a message comes as librdkafka holds it (Polled::raw):
// nothing is copied and its headers are not parsed, so a polling thread can hand
// it to the thread that runs it, which copies it there (ToMessage).
Result<Polled> PollRawWithEof(rd_kafka_t* consumer, std::chrono::milliseconds timeout);
// The parts of a consumed message, copied (its headers parsed).
Message ToMessage(const rd_kafka_message_t& m);
// The topic a consumed message came from (valid while the message lives).
std::string_view TopicOf(const rd_kafka_message_t& m);

// The high watermark (next offset to be written) of one partition, from the broker.
Result<int64_t> HighWatermark(rd_kafka_t* client, std::string_view topic, int32_t partition,
                              std::chrono::milliseconds timeout = std::chrono::seconds(10));

// Commits `next_offset` (the offset of the next message to read) for one partition
// of the consumer's group, synchronously.
Status CommitOffset(rd_kafka_t* consumer, std::string_view topic, int32_t partition, int64_t next_offset);

// Commits next offsets of several partitions synchronously; the first error of
// the call or of a partition.
Status CommitOffsets(rd_kafka_t* consumer, const std::vector<PartitionOffset>& offsets);
// The same without waiting: `done` gets the outcome on the thread polling the
// consumer, inside Poll()/PollWithEof() (or at once, when the commit could not be
// sent or there is nothing to commit).
void CommitOffsetsAsync(rd_kafka_t* consumer, const std::vector<PartitionOffset>& offsets,
                        std::function<void(Status)> done);

// Pauses (or resumes) fetching from every partition assigned to the consumer now;
// polling still serves rebalances and callbacks.
Status PauseAssigned(rd_kafka_t* consumer, bool paused);

// Leaves the consumer group cleanly (revokes partitions, no rebalance timeout).
Status CloseConsumer(rd_kafka_t* consumer);

// Creates a topic through the admin API. AlreadyExists is reported as OK when
// `ok_if_exists`. `configs` are topic configs such as {"cleanup.policy","compact"}.
Status CreateTopic(rd_kafka_t* client, std::string_view topic, int partitions, int replication_factor,
                   const Properties& configs = {}, bool ok_if_exists = true,
                   std::chrono::milliseconds timeout = std::chrono::seconds(30));

// Deletes a topic through the admin API (as `kafka-topics.sh --delete` does).
Status DeleteTopic(rd_kafka_t* client, std::string_view topic,
                   std::chrono::milliseconds timeout = std::chrono::seconds(30));

// Number of partitions of a topic from cluster metadata; NotFound if it does not exist.
Result<int32_t> PartitionCount(rd_kafka_t* client, std::string_view topic,
                               std::chrono::milliseconds timeout = std::chrono::seconds(10));

// A partition's offsets as a consumer group sees them. `committed` is the group's
// committed offset, or -1 when the group never committed one for this partition.
struct PartitionOffsets {
  int32_t partition = 0;
  int64_t committed = -1;
  int64_t low = 0;   // low watermark: the oldest offset still in the log
  int64_t high = 0;  // high watermark: the next offset to be written

  bool operator==(const PartitionOffsets&) const = default;
};

// The committed offsets of `group` on every partition of `topic` (admin API,
// OffsetFetch) and each partition's watermarks (from its leader). Raw offsets: what
// counts as lag is the WorkerPool's rule (operator/workerpool.h, LagOf). NotFound
// if the topic does not exist.
Result<std::vector<PartitionOffsets>> GroupOffsets(rd_kafka_t* client, std::string_view group, std::string_view topic,
                                                   std::chrono::milliseconds timeout = std::chrono::seconds(10));

// Converts an rd_kafka_error_t (and destroys it) into a Status; OK for nullptr.
Status FromError(rd_kafka_error_t* error);
Status FromErrorCode(rd_kafka_resp_err_t err, std::string_view context);

}  // namespace cronlane::kafka
