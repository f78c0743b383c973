#include "common/kafka.h"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include "common/backoff.h"

namespace cronlane::kafka {
namespace {

struct ConfDeleter {
  void operator()(rd_kafka_conf_t* c) const { rd_kafka_conf_destroy(c); }
};
using ConfPtr = std::unique_ptr<rd_kafka_conf_t, ConfDeleter>;

struct QueueDeleter {
  void operator()(rd_kafka_queue_t* q) const { rd_kafka_queue_destroy(q); }
};
using QueuePtr = std::unique_ptr<rd_kafka_queue_t, QueueDeleter>;

struct EventDeleter {
  void operator()(rd_kafka_event_t* e) const { rd_kafka_event_destroy(e); }
};
using EventPtr = std::unique_ptr<rd_kafka_event_t, EventDeleter>;

struct PartitionListDeleter {
  void operator()(rd_kafka_topic_partition_list_t* l) const { rd_kafka_topic_partition_list_destroy(l); }
};
using PartitionListPtr = std::unique_ptr<rd_kafka_topic_partition_list_t, PartitionListDeleter>;

struct HeadersDeleter {
  void operator()(rd_kafka_headers_t* h) const { rd_kafka_headers_destroy(h); }
};
using HeadersPtr = std::unique_ptr<rd_kafka_headers_t, HeadersDeleter>;

struct ErrorDeleter {
  void operator()(rd_kafka_error_t* e) const { rd_kafka_error_destroy(e); }
};
using ErrorPtr = std::unique_ptr<rd_kafka_error_t, ErrorDeleter>;

struct AdminOptionsDeleter {
  void operator()(rd_kafka_AdminOptions_t* o) const { rd_kafka_AdminOptions_destroy(o); }
};
using AdminOptionsPtr = std::unique_ptr<rd_kafka_AdminOptions_t, AdminOptionsDeleter>;

struct NewTopicDeleter {
  void operator()(rd_kafka_NewTopic_t* t) const { rd_kafka_NewTopic_destroy(t); }
};
using NewTopicPtr = std::unique_ptr<rd_kafka_NewTopic_t, NewTopicDeleter>;

struct DeleteTopicDeleter {
  void operator()(rd_kafka_DeleteTopic_t* t) const { rd_kafka_DeleteTopic_destroy(t); }
};
using DeleteTopicPtr = std::unique_ptr<rd_kafka_DeleteTopic_t, DeleteTopicDeleter>;

struct ListGroupOffsetsDeleter {
  void operator()(rd_kafka_ListConsumerGroupOffsets_t* r) const { rd_kafka_ListConsumerGroupOffsets_destroy(r); }
};
using ListGroupOffsetsPtr = std::unique_ptr<rd_kafka_ListConsumerGroupOffsets_t, ListGroupOffsetsDeleter>;

struct TopicDeleter {
  void operator()(rd_kafka_topic_t* t) const { rd_kafka_topic_destroy(t); }
};
using TopicPtr = std::unique_ptr<rd_kafka_topic_t, TopicDeleter>;

struct MetadataDeleter {
  void operator()(const rd_kafka_metadata_t* m) const { rd_kafka_metadata_destroy(m); }
};
using MetadataPtr = std::unique_ptr<const rd_kafka_metadata_t, MetadataDeleter>;

// Admin options for `op` with `timeout`: the broker's operation timeout for the
// operations that have one (creating and deleting topics; the request itself then
// times out after socket.timeout.ms), else the request timeout.
Result<AdminOptionsPtr> AdminOptions(rd_kafka_t* client, rd_kafka_admin_op_t op, std::chrono::milliseconds timeout) {
  AdminOptionsPtr opts(rd_kafka_AdminOptions_new(client, op));
  if (!opts) return Internal("librdkafka refused admin options for operation " + std::to_string(op));
  std::array<char, 512> err{};
  const int ms = static_cast<int>(timeout.count());
  const bool has_operation_timeout = op == RD_KAFKA_ADMIN_OP_CREATETOPICS || op == RD_KAFKA_ADMIN_OP_DELETETOPICS;
  const rd_kafka_resp_err_t e =
      has_operation_timeout ? rd_kafka_AdminOptions_set_operation_timeout(opts.get(), ms, err.data(), err.size())
                            : rd_kafka_AdminOptions_set_request_timeout(opts.get(), ms, err.data(), err.size());
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) return InvalidArgument(std::string("admin timeout: ") + err.data());
  return opts;
}

// Waits for the answer to an admin request sent to `queue` (the broker's
// timeout plus a second); DeadlineExceeded without one, the request's own error
// when it failed as a whole.
Result<EventPtr> AwaitAdminResult(rd_kafka_queue_t* queue, std::chrono::milliseconds timeout, const std::string& what) {
  EventPtr ev(rd_kafka_queue_poll(queue, static_cast<int>(timeout.count()) + 1000));
  if (!ev) return DeadlineExceeded(what + ": no answer from the broker");
  if (rd_kafka_resp_err_t e = rd_kafka_event_error(ev.get()); e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return FromErrorCode(e, what);
  }
  return ev;
}

// The first error among the per-topic results of a topic admin request;
// TOPIC_ALREADY_EXISTS counts as success when `ok_if_exists`.
Status TopicResults(const rd_kafka_topic_result_t** results, size_t n, const std::string& what,
                    bool ok_if_exists = false) {
  for (size_t i = 0; i < n; ++i) {
    const rd_kafka_resp_err_t e = rd_kafka_topic_result_error(results[i]);
    if (e == RD_KAFKA_RESP_ERR_NO_ERROR || (e == RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS && ok_if_exists)) continue;
    const char* why = rd_kafka_topic_result_error_string(results[i]);
    return FromErrorCode(e, what + (why != nullptr ? std::string(" (") + why + ")" : ""));
  }
  return Status::Ok();
}

// Logs a failed (incremental) assignment in a rebalance callback, where nobody
// can be returned an error: the consumer then holds no partitions it was given.
void LogAssignError(rd_kafka_t* rk, std::string_view what, rd_kafka_resp_err_t err) {
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return;
  spdlog::error("kafka {}: {} failed in a rebalance: {}", rd_kafka_name(rk), what, rd_kafka_err2str(err));
}

// Delivery errors are recorded per producer handle through the opaque pointer.
struct ProducerState {
  std::mutex mu;
  rd_kafka_resp_err_t first_error = RD_KAFKA_RESP_ERR_NO_ERROR;
  std::string first_error_text;
};

// The delivery of one message that ProduceAndWait() waits for. Shared by the
// waiter and the delivery callback, so a waiter that timed out can leave.
struct Delivery {
  std::mutex mu;
  bool done = false;
  rd_kafka_resp_err_t err = RD_KAFKA_RESP_ERR_NO_ERROR;
};

// A message's own delivery report (ProduceAndWait, ProduceAsync): its opaque is
// one of these, deleted after the call; such a report does not count as the
// producer's first_error. One allocation per message: ProduceAsync's workers
// produce one per task.
struct DeliveryCallback {
  virtual ~DeliveryCallback() = default;
  virtual void Delivered(const rd_kafka_message_t& msg) = 0;
};

void OnDelivery(rd_kafka_t* /*rk*/, const rd_kafka_message_t* msg, void* opaque) {
  if (msg->_private != nullptr) {
    std::unique_ptr<DeliveryCallback> done(static_cast<DeliveryCallback*>(msg->_private));
    done->Delivered(*msg);
    return;
  }
  if (msg->err == RD_KAFKA_RESP_ERR_NO_ERROR || opaque == nullptr) return;
  auto* state = static_cast<ProducerState*>(opaque);
  std::lock_guard lock(state->mu);
  if (state->first_error == RD_KAFKA_RESP_ERR_NO_ERROR) {
    state->first_error = msg->err;
    state->first_error_text = rd_kafka_err2str(msg->err);
  }
}

// librdkafka's own log lines (connection failures, broker errors) go through the
// process's logger instead of librdkafka's default, which prints raw text to
// stderr and would break --log-format json's one object per line. Called on
// librdkafka's threads; spdlog's default logger is thread-safe.
void OnLog(const rd_kafka_t* rk, int level, const char* facility, const char* message) {
  // syslog levels: 0-3 emergency..error, 4 warning, 5-6 notice/info, 7 debug.
  const spdlog::level::level_enum l = level <= 3   ? spdlog::level::err
                                      : level == 4 ? spdlog::level::warn
                                      : level <= 6 ? spdlog::level::info
                                                   : spdlog::level::debug;
  spdlog::log(l, "kafka {} {}: {}", rd_kafka_name(rk), facility, message);
}

Result<ConfPtr> MakeConf(const Properties& props) {
  ConfPtr conf(rd_kafka_conf_new());
  rd_kafka_conf_set_log_cb(conf.get(), &OnLog);
  std::array<char, 512> err{};
  for (const auto& [k, v] : props) {
    if (rd_kafka_conf_set(conf.get(), k.c_str(), v.c_str(), err.data(), err.size()) != RD_KAFKA_CONF_OK) {
      return InvalidArgument("kafka property " + k + ": " + err.data());
    }
  }
  return conf;
}

}  // namespace

Status AddProperties(const std::vector<std::string>& key_values, Properties& props) {
  for (size_t i = 0; i < key_values.size(); ++i) {
    const std::string& kv = key_values[i];
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return InvalidArgument("--kafka-property #" + std::to_string(i + 1) + " is not KEY=VALUE");
    }
    props[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  return Status::Ok();
}

void HandleDeleter::operator()(rd_kafka_t* rk) const {
  // A producer's opaque is its ProducerState (owned here); a consumer's is its
  // RebalanceListener (owned by the caller).
  auto* state = rd_kafka_type(rk) == RD_KAFKA_PRODUCER ? static_cast<ProducerState*>(rd_kafka_opaque(rk)) : nullptr;
  rd_kafka_destroy(rk);
  delete state;
}

Status FromErrorCode(rd_kafka_resp_err_t err, std::string_view context) {
  if (err == RD_KAFKA_RESP_ERR_NO_ERROR) return Status::Ok();
  std::string msg = std::string(context) + ": " + rd_kafka_err2str(err);
  switch (err) {
    case RD_KAFKA_RESP_ERR__TIMED_OUT:
    case RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT:
      return DeadlineExceeded(std::move(msg));
    case RD_KAFKA_RESP_ERR__UNKNOWN_TOPIC:
    case RD_KAFKA_RESP_ERR_UNKNOWN_TOPIC_OR_PART:
      return NotFound(std::move(msg));
    case RD_KAFKA_RESP_ERR_TOPIC_ALREADY_EXISTS:
      return {StatusCode::kAlreadyExists, std::move(msg)};
    case RD_KAFKA_RESP_ERR__FENCED:
    case RD_KAFKA_RESP_ERR_PRODUCER_FENCED:
    case RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH:
      return Fenced(std::move(msg));
    case RD_KAFKA_RESP_ERR__INVALID_ARG:
    case RD_KAFKA_RESP_ERR_INVALID_CONFIG:
    case RD_KAFKA_RESP_ERR_TOPIC_EXCEPTION:
    case RD_KAFKA_RESP_ERR_INVALID_PARTITIONS:
    case RD_KAFKA_RESP_ERR_INVALID_REPLICATION_FACTOR:
      return InvalidArgument(std::move(msg));
    default:
      return Unavailable(std::move(msg));
  }
}

Status FromError(rd_kafka_error_t* error) {
  if (error == nullptr) return Status::Ok();
  Status s = FromErrorCode(rd_kafka_error_code(error), rd_kafka_error_string(error));
  if (rd_kafka_error_txn_requires_abort(error)) {
    s = Status(StatusCode::kFailedPrecondition, s.message() + " (transaction must be aborted)");
  }
  if (rd_kafka_error_is_fatal(error) && s.code() != StatusCode::kFenced) {
    s = Status(StatusCode::kFailedPrecondition, s.message() + " (fatal)");
  }
  rd_kafka_error_destroy(error);
  return s;
}

Result<HandlePtr> NewProducer(const Properties& props) {
  auto conf = MakeConf(props);
  if (!conf.ok()) return conf.status();
  auto* state = new ProducerState();
  rd_kafka_conf_set_opaque(conf->get(), state);
  rd_kafka_conf_set_dr_msg_cb(conf->get(), &OnDelivery);
  std::array<char, 512> err{};
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf->get(), err.data(), err.size());
  if (rk == nullptr) {
    delete state;
    return InvalidArgument(std::string("creating Kafka producer: ") + err.data());
  }
  (void)conf->release();  // owned by rk now
  return HandlePtr(rk);
}

static void OnRebalance(rd_kafka_t* rk, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* parts, void* opaque) {
  auto* listener = static_cast<RebalanceListener*>(opaque);
  std::vector<std::pair<std::string, int32_t>> list;
  list.reserve(static_cast<size_t>(parts->cnt));
  for (int i = 0; i < parts->cnt; ++i) list.emplace_back(parts->elems[i].topic, parts->elems[i].partition);
  const bool cooperative = std::string_view(rd_kafka_rebalance_protocol(rk)) == "COOPERATIVE";
  if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS) {
    listener->OnAssigned(rk, list);
    if (cooperative) {
      ErrorPtr e(rd_kafka_incremental_assign(rk, parts));
      if (e) LogAssignError(rk, "incremental assign", rd_kafka_error_code(e.get()));
    } else {
      LogAssignError(rk, "assign", rd_kafka_assign(rk, parts));
    }
  } else {
    listener->OnRevoked(rk, list);
    if (cooperative) {
      ErrorPtr e(rd_kafka_incremental_unassign(rk, parts));
      if (e) LogAssignError(rk, "incremental unassign", rd_kafka_error_code(e.get()));
    } else {
      LogAssignError(rk, "unassign", rd_kafka_assign(rk, nullptr));
    }
  }
}

Result<HandlePtr> NewConsumer(const Properties& in, RebalanceListener* listener) {
  Properties props = in;
  if (props.find("group.id") == props.end()) {
    static std::atomic<uint64_t> counter{0};
    props["group.id"] = "cronlane-reader-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    props["enable.auto.commit"] = "false";
    props.try_emplace("enable.auto.offset.store", "false");
  }
  auto conf = MakeConf(props);
  if (!conf.ok()) return conf.status();
  if (listener != nullptr) {
    rd_kafka_conf_set_opaque(conf->get(), listener);
    rd_kafka_conf_set_rebalance_cb(conf->get(), OnRebalance);
  }
  std::array<char, 512> err{};
  rd_kafka_t* rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf->get(), err.data(), err.size());
  if (rk == nullptr) return InvalidArgument(std::string("creating Kafka consumer: ") + err.data());
  (void)conf->release();
  HandlePtr handle(rk);
  if (rd_kafka_resp_err_t e = rd_kafka_poll_set_consumer(rk); e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return FromErrorCode(e, "redirecting the consumer's queue");
  }
  return handle;
}

namespace {

// The one call to rd_kafka_producev: copies key, value (nullopt: a null value) and
// headers; `opaque` becomes the message's delivery-report opaque. On failure the
// headers are freed here (librdkafka owns them only on success).
Status ProduceOne(rd_kafka_t* producer, std::string_view topic, std::optional<std::string_view> key,
                  std::optional<std::string_view> value, const std::vector<Header>& headers, int32_t partition,
                  void* opaque) {
  // No header set for a message without headers (a worker's result record);
  // librdkafka takes a null one as none.
  HeadersPtr hdrs(headers.empty() ? nullptr : rd_kafka_headers_new(headers.size()));
  for (const auto& h : headers) {
    rd_kafka_resp_err_t e = rd_kafka_header_add(hdrs.get(), h.name.data(), static_cast<ssize_t>(h.name.size()),
                                                h.value.data(), static_cast<ssize_t>(h.value.size()));
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) return FromErrorCode(e, "header " + h.name);
  }
  // NUL-terminated for librdkafka, on the stack: Kafka's topic names have at most
  // 249 characters.
  std::array<char, 256> topic_buf{};
  if (topic.size() >= topic_buf.size()) {
    return InvalidArgument(fmt::format("topic name of {} characters (Kafka allows 249)", topic.size()));
  }
  std::copy_n(topic.data(), topic.size(), topic_buf.data());
  const std::string_view topic_str(topic_buf.data(), topic.size());
  void* key_ptr = key ? const_cast<char*>(key->data()) : nullptr;
  const size_t key_len = key ? key->size() : 0;
  void* value_ptr = value ? const_cast<char*>(value->data()) : nullptr;
  const size_t value_len = value ? value->size() : 0;
// librdkafka's RD_KAFKA_V_* macros type-check their arguments with GNU statement
// expressions, which clang's -Wpedantic reports (GCC's does not).
#if defined(__clang__)
#pragma clang diagnostic push
#pragma clang diagnostic ignored "-Wgnu-statement-expression"
#endif
  rd_kafka_resp_err_t err =
      rd_kafka_producev(producer, RD_KAFKA_V_TOPIC(topic_buf.data()), RD_KAFKA_V_PARTITION(partition),
                        RD_KAFKA_V_MSGFLAGS(RD_KAFKA_MSG_F_COPY), RD_KAFKA_V_KEY(key_ptr, key_len),
                        RD_KAFKA_V_VALUE(value_ptr, value_len), RD_KAFKA_V_HEADERS(hdrs.get()),
                        RD_KAFKA_V_OPAQUE(opaque), RD_KAFKA_V_END);
#if defined(__clang__)
#pragma clang diagnostic pop
#endif
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return FromErrorCode(err, "producing to " + std::string(topic_str));
  (void)hdrs.release();  // librdkafka owns the headers of a message it accepted
  return Status::Ok();
}

}  // namespace

Status Produce(rd_kafka_t* producer, std::string_view topic, std::optional<std::string_view> key,
               std::string_view value, const std::vector<Header>& headers, int32_t partition) {
  Status s = ProduceOne(producer, topic, key, value, headers, partition, nullptr);
  if (s.ok()) rd_kafka_poll(producer, 0);  // serve delivery reports
  return s;
}

Status ProduceTombstone(rd_kafka_t* producer, std::string_view topic, std::string_view key, int32_t partition) {
  Status s = ProduceOne(producer, topic, key, std::nullopt, {}, partition, nullptr);
  if (s.ok()) rd_kafka_poll(producer, 0);
  return s;
}

Status ProduceAndWait(rd_kafka_t* producer, std::string_view topic, std::optional<std::string_view> key,
                      std::string_view value, const std::vector<Header>& headers, std::chrono::milliseconds timeout) {
  auto delivery = std::make_shared<Delivery>();
  struct Waited final : DeliveryCallback {
    explicit Waited(std::shared_ptr<Delivery> d) : delivery(std::move(d)) {}
    void Delivered(const rd_kafka_message_t& msg) override {
      std::lock_guard lock(delivery->mu);
      delivery->done = true;
      delivery->err = msg.err;
    }
    std::shared_ptr<Delivery> delivery;
  };
  auto* opaque = new Waited(delivery);
  if (Status s = ProduceOne(producer, topic, key, value, headers, RD_KAFKA_PARTITION_UA, opaque); !s.ok()) {
    delete opaque;
    return s;
  }
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (true) {
    rd_kafka_poll(producer, 20);  // serves delivery reports (any thread's)
    {
      std::lock_guard lock(delivery->mu);
      if (delivery->done) {
        if (delivery->err == RD_KAFKA_RESP_ERR_NO_ERROR) return Status::Ok();
        return FromErrorCode(delivery->err, "delivering to " + std::string(topic));
      }
    }
    if (std::chrono::steady_clock::now() > deadline) {
      return DeadlineExceeded("no delivery report from " + std::string(topic) + " within " +
                              std::to_string(timeout.count()) + " ms");
    }
  }
}

Status ProduceAsync(rd_kafka_t* producer, std::string_view topic, std::optional<std::string_view> key,
                    std::string_view value, const std::vector<Header>& headers, std::function<void(Status)> done) {
  struct Async final : DeliveryCallback {
    explicit Async(std::function<void(Status)> d) : done(std::move(d)) {}
    void Delivered(const rd_kafka_message_t& msg) override {
      if (msg.err == RD_KAFKA_RESP_ERR_NO_ERROR) return done(Status::Ok());
      done(FromErrorCode(msg.err, std::string("delivering to ") + (msg.rkt ? rd_kafka_topic_name(msg.rkt) : "?")));
    }
    std::function<void(Status)> done;
  };
  auto* opaque = new Async(std::move(done));
  Status s = ProduceOne(producer, topic, key, value, headers, RD_KAFKA_PARTITION_UA, opaque);
  if (!s.ok()) delete opaque;
  return s;
}

void ServeDeliveries(rd_kafka_t* producer, std::chrono::milliseconds timeout) {
  rd_kafka_poll(producer, static_cast<int>(timeout.count()));
}

Status Flush(rd_kafka_t* producer, std::chrono::milliseconds timeout) {
  rd_kafka_resp_err_t err = rd_kafka_flush(producer, static_cast<int>(timeout.count()));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return FromErrorCode(err, "flushing producer");
  auto* state = static_cast<ProducerState*>(rd_kafka_opaque(producer));
  if (state == nullptr) return Status::Ok();
  std::lock_guard lock(state->mu);
  if (state->first_error != RD_KAFKA_RESP_ERR_NO_ERROR) {
    Status s = FromErrorCode(state->first_error, "message delivery");
    state->first_error = RD_KAFKA_RESP_ERR_NO_ERROR;
    return s;
  }
  return Status::Ok();
}

Status InitTransactions(rd_kafka_t* producer, std::chrono::milliseconds timeout) {
  return FromError(rd_kafka_init_transactions(producer, static_cast<int>(timeout.count())));
}
Status BeginTransaction(rd_kafka_t* producer) {
  return FromError(rd_kafka_begin_transaction(producer));
}
Status CommitTransaction(rd_kafka_t* producer, std::chrono::milliseconds timeout) {
  return FromError(rd_kafka_commit_transaction(producer, static_cast<int>(timeout.count())));
}
Status AbortTransaction(rd_kafka_t* producer, std::chrono::milliseconds timeout) {
  return FromError(rd_kafka_abort_transaction(producer, static_cast<int>(timeout.count())));
}

Status Subscribe(rd_kafka_t* consumer, const std::vector<std::string>& topics) {
  PartitionListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(topics.size())));
  for (const auto& t : topics) rd_kafka_topic_partition_list_add(list.get(), t.c_str(), RD_KAFKA_PARTITION_UA);
  return FromErrorCode(rd_kafka_subscribe(consumer, list.get()), "subscribing");
}

Status AssignAll(rd_kafka_t* consumer, std::string_view topic, int32_t partitions, int64_t start_offset) {
  PartitionListPtr list(rd_kafka_topic_partition_list_new(partitions));
  std::string t(topic);
  for (int32_t p = 0; p < partitions; ++p) {
    rd_kafka_topic_partition_list_add(list.get(), t.c_str(), p)->offset = start_offset;
  }
  return FromErrorCode(rd_kafka_assign(consumer, list.get()), "assigning " + t);
}

Status AssignOne(rd_kafka_t* consumer, std::string_view topic, int32_t partition, int64_t start_offset) {
  PartitionListPtr list(rd_kafka_topic_partition_list_new(1));
  std::string t(topic);
  rd_kafka_topic_partition_list_add(list.get(), t.c_str(), partition)->offset = start_offset;
  return FromErrorCode(rd_kafka_assign(consumer, list.get()), "assigning " + t + "[" + std::to_string(partition) + "]");
}

Result<std::optional<Message>> Poll(rd_kafka_t* consumer, std::chrono::milliseconds timeout) {
  auto polled = PollWithEof(consumer, timeout);
  if (!polled.ok()) return polled.status();
  return std::move(polled->message);
}

namespace {

// A partition's watermarks. Right after a topic was created (or while its leader
// moves) the broker answers "not leader" for a moment: asked again until
// `timeout`, instead of failing the caller (a new leader's checkpoint restore).
rd_kafka_resp_err_t QueryWatermarks(rd_kafka_t* client, const std::string& topic, int32_t partition,
                                    std::chrono::milliseconds timeout, int64_t& low, int64_t& high) {
  const auto until = std::chrono::steady_clock::now() + timeout;
  Backoff backoff({std::chrono::milliseconds(50), std::chrono::milliseconds(500)});
  while (true) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
    rd_kafka_resp_err_t err = rd_kafka_query_watermark_offsets(client, topic.c_str(), partition, &low, &high,
                                                               static_cast<int>(std::max<int64_t>(left.count(), 1)));
    const bool moving =
        err == RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION || err == RD_KAFKA_RESP_ERR_LEADER_NOT_AVAILABLE;
    const auto wait = backoff.Next();
    if (!moving || std::chrono::steady_clock::now() + wait >= until) return err;
    std::this_thread::sleep_for(wait);
  }
}

}  // namespace

Result<int64_t> HighWatermark(rd_kafka_t* client, std::string_view topic, int32_t partition,
                              std::chrono::milliseconds timeout) {
  int64_t lo = 0, hi = 0;
  std::string t(topic);
  rd_kafka_resp_err_t err = QueryWatermarks(client, t, partition, timeout, lo, hi);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return FromErrorCode(err, "watermarks of " + t);
  return hi;
}

void MessageDeleter::operator()(rd_kafka_message_t* m) const {
  rd_kafka_message_destroy(m);
}

std::string_view TopicOf(const rd_kafka_message_t& m) {
  return m.rkt != nullptr ? std::string_view(rd_kafka_topic_name(m.rkt)) : std::string_view();
}

Message ToMessage(const rd_kafka_message_t& m) {
  Message out;
  out.topic = TopicOf(m);
  out.partition = m.partition;
  out.offset = m.offset;
  if (m.key != nullptr) out.key = std::string(static_cast<const char*>(m.key), m.key_len);
  if (m.payload != nullptr) out.value.assign(static_cast<const char*>(m.payload), m.len);
  rd_kafka_timestamp_type_t ts_type;
  out.timestamp_ms = rd_kafka_message_timestamp(&m, &ts_type);
  rd_kafka_headers_t* hdrs = nullptr;
  // librdkafka parses the headers on this first call (and keeps them in `m`).
  if (rd_kafka_message_headers(&m, &hdrs) == RD_KAFKA_RESP_ERR_NO_ERROR) {
    const char* name = nullptr;
    const void* val = nullptr;
    size_t size = 0;
    out.headers.reserve(rd_kafka_header_cnt(hdrs));
    for (size_t i = 0; rd_kafka_header_get_all(hdrs, i, &name, &val, &size) == RD_KAFKA_RESP_ERR_NO_ERROR; ++i) {
      out.headers.push_back({name, val != nullptr ? std::string(static_cast<const char*>(val), size) : ""});
    }
  }
  return out;
}

Result<Polled> PollRawWithEof(rd_kafka_t* consumer, std::chrono::milliseconds timeout) {
  MessagePtr m(rd_kafka_consumer_poll(consumer, static_cast<int>(timeout.count())));
  if (!m) return Polled{};
  if (m->err == RD_KAFKA_RESP_ERR__PARTITION_EOF) {
    return Polled{std::nullopt, nullptr, PartitionOffset{std::string(TopicOf(*m)), m->partition, m->offset}};
  }
  if (m->err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return FromErrorCode(m->err, std::string("consuming: ") + rd_kafka_message_errstr(m.get()));
  }
  return Polled{std::nullopt, std::move(m), std::nullopt};
}

Result<Polled> PollWithEof(rd_kafka_t* consumer, std::chrono::milliseconds timeout) {
  auto polled = PollRawWithEof(consumer, timeout);
  if (!polled.ok() || !polled->raw) return polled;
  return Polled{ToMessage(*polled->raw), nullptr, std::nullopt};
}

Status CommitOffset(rd_kafka_t* consumer, std::string_view topic, int32_t partition, int64_t next_offset) {
  return CommitOffsets(consumer, {{std::string(topic), partition, next_offset}});
}

namespace {

PartitionListPtr OffsetList(const std::vector<PartitionOffset>& offsets) {
  PartitionListPtr list(rd_kafka_topic_partition_list_new(static_cast<int>(offsets.size())));
  for (const auto& o : offsets) {
    rd_kafka_topic_partition_list_add(list.get(), o.topic.c_str(), o.partition)->offset = o.offset;
  }
  return list;
}

// The first partition error of a commit's result, or the call's own error.
Status CommitOutcome(rd_kafka_resp_err_t err, const rd_kafka_topic_partition_list_t* list) {
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return FromErrorCode(err, "committing offsets");
  for (int i = 0; list != nullptr && i < list->cnt; ++i) {
    const auto& p = list->elems[i];
    if (p.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return FromErrorCode(p.err, fmt::format("committing offset of {}[{}]", p.topic, p.partition));
    }
  }
  return Status::Ok();
}

void OnCommitted(rd_kafka_t* /*rk*/, rd_kafka_resp_err_t err, rd_kafka_topic_partition_list_t* offsets, void* opaque) {
  std::unique_ptr<std::function<void(Status)>> done(static_cast<std::function<void(Status)>*>(opaque));
  (*done)(CommitOutcome(err, offsets));
}

}  // namespace

Status CommitOffsets(rd_kafka_t* consumer, const std::vector<PartitionOffset>& offsets) {
  if (offsets.empty()) return Status::Ok();
  PartitionListPtr list = OffsetList(offsets);
  rd_kafka_resp_err_t err = rd_kafka_commit(consumer, list.get(), /*async=*/0);
  return CommitOutcome(err, list.get());
}

void CommitOffsetsAsync(rd_kafka_t* consumer, const std::vector<PartitionOffset>& offsets,
                        std::function<void(Status)> done) {
  if (offsets.empty()) {
    done(Status::Ok());
    return;
  }
  PartitionListPtr list = OffsetList(offsets);
  auto* opaque = new std::function<void(Status)>(std::move(done));
  rd_kafka_queue_t* queue = rd_kafka_queue_get_consumer(consumer);
  rd_kafka_resp_err_t err = rd_kafka_commit_queue(consumer, list.get(), queue, OnCommitted, opaque);
  rd_kafka_queue_destroy(queue);
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) {
    // Not sent: the callback will not run.
    std::unique_ptr<std::function<void(Status)>> owned(opaque);
    (*owned)(FromErrorCode(err, "committing offsets"));
  }
}

Status PauseAssigned(rd_kafka_t* consumer, bool paused) {
  rd_kafka_topic_partition_list_t* raw = nullptr;
  if (rd_kafka_resp_err_t e = rd_kafka_assignment(consumer, &raw); e != RD_KAFKA_RESP_ERR_NO_ERROR) {
    return FromErrorCode(e, "reading the assignment");
  }
  PartitionListPtr list(raw);
  if (list->cnt == 0) return Status::Ok();
  rd_kafka_resp_err_t e =
      paused ? rd_kafka_pause_partitions(consumer, list.get()) : rd_kafka_resume_partitions(consumer, list.get());
  return FromErrorCode(e, paused ? "pausing partitions" : "resuming partitions");
}

Status CloseConsumer(rd_kafka_t* consumer) {
  return FromErrorCode(rd_kafka_consumer_close(consumer), "closing consumer");
}

Status CreateTopic(rd_kafka_t* client, std::string_view topic, int partitions, int replication_factor,
                   const Properties& configs, bool ok_if_exists, std::chrono::milliseconds timeout) {
  std::array<char, 512> err{};
  std::string t(topic);
  NewTopicPtr nt(rd_kafka_NewTopic_new(t.c_str(), partitions, replication_factor, err.data(), err.size()));
  if (!nt) return InvalidArgument("topic " + t + ": " + err.data());
  for (const auto& [k, v] : configs) {
    if (rd_kafka_resp_err_t e = rd_kafka_NewTopic_set_config(nt.get(), k.c_str(), v.c_str());
        e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return FromErrorCode(e, fmt::format("topic {} config {}", t, k));
    }
  }
  auto opts = AdminOptions(client, RD_KAFKA_ADMIN_OP_CREATETOPICS, timeout);
  if (!opts.ok()) return opts.status();
  QueuePtr queue(rd_kafka_queue_new(client));
  rd_kafka_NewTopic_t* list[] = {nt.get()};
  rd_kafka_CreateTopics(client, list, 1, opts->get(), queue.get());
  const std::string what = "creating topic " + t;
  auto ev = AwaitAdminResult(queue.get(), timeout, what);
  if (!ev.ok()) return ev.status();
  size_t n = 0;
  const rd_kafka_topic_result_t** results =
      rd_kafka_CreateTopics_result_topics(rd_kafka_event_CreateTopics_result(ev->get()), &n);
  return TopicResults(results, n, what, ok_if_exists);
}

Status DeleteTopic(rd_kafka_t* client, std::string_view topic, std::chrono::milliseconds timeout) {
  std::string t(topic);
  DeleteTopicPtr del(rd_kafka_DeleteTopic_new(t.c_str()));
  if (!del) return InvalidArgument("topic " + t + ": librdkafka refused to delete it");
  auto opts = AdminOptions(client, RD_KAFKA_ADMIN_OP_DELETETOPICS, timeout);
  if (!opts.ok()) return opts.status();
  QueuePtr queue(rd_kafka_queue_new(client));
  rd_kafka_DeleteTopic_t* list[] = {del.get()};
  rd_kafka_DeleteTopics(client, list, 1, opts->get(), queue.get());
  const std::string what = "deleting topic " + t;
  auto ev = AwaitAdminResult(queue.get(), timeout, what);
  if (!ev.ok()) return ev.status();
  size_t n = 0;
  const rd_kafka_topic_result_t** results =
      rd_kafka_DeleteTopics_result_topics(rd_kafka_event_DeleteTopics_result(ev->get()), &n);
  return TopicResults(results, n, what);
}

Result<int32_t> PartitionCount(rd_kafka_t* client, std::string_view topic, std::chrono::milliseconds timeout) {
  std::string t(topic);
  TopicPtr rkt(rd_kafka_topic_new(client, t.c_str(), nullptr));
  if (!rkt) return FromErrorCode(rd_kafka_last_error(), "topic handle for " + t);
  const rd_kafka_metadata_t* raw = nullptr;
  rd_kafka_resp_err_t err = rd_kafka_metadata(client, 0, rkt.get(), &raw, static_cast<int>(timeout.count()));
  if (err != RD_KAFKA_RESP_ERR_NO_ERROR) return FromErrorCode(err, "metadata for " + t);
  MetadataPtr md(raw);
  if (md->topic_cnt != 1) return NotFound("topic " + t + " does not exist");
  if (md->topics[0].err != RD_KAFKA_RESP_ERR_NO_ERROR) return FromErrorCode(md->topics[0].err, "metadata for " + t);
  return md->topics[0].partition_cnt;
}

Result<std::vector<PartitionOffsets>> GroupOffsets(rd_kafka_t* client, std::string_view group, std::string_view topic,
                                                   std::chrono::milliseconds timeout) {
  auto partitions = PartitionCount(client, topic, timeout);
  if (!partitions.ok()) return partitions.status();
  std::string t(topic);
  std::string g(group);
  PartitionListPtr wanted(rd_kafka_topic_partition_list_new(*partitions));
  for (int32_t p = 0; p < *partitions; ++p) rd_kafka_topic_partition_list_add(wanted.get(), t.c_str(), p);

  std::vector<PartitionOffsets> out(static_cast<size_t>(*partitions));
  for (int32_t p = 0; p < *partitions; ++p) out[static_cast<size_t>(p)].partition = p;
  {
    auto opts = AdminOptions(client, RD_KAFKA_ADMIN_OP_LISTCONSUMERGROUPOFFSETS, timeout);
    if (!opts.ok()) return opts.status();
    ListGroupOffsetsPtr req(rd_kafka_ListConsumerGroupOffsets_new(g.c_str(), wanted.get()));
    if (!req) return InvalidArgument("committed offsets of group " + g + ": librdkafka refused the request");
    QueuePtr queue(rd_kafka_queue_new(client));
    rd_kafka_ListConsumerGroupOffsets_t* list[] = {req.get()};
    rd_kafka_ListConsumerGroupOffsets(client, list, 1, opts->get(), queue.get());
    auto ev = AwaitAdminResult(queue.get(), timeout, "committed offsets of group " + g);
    if (!ev.ok()) return ev.status();
    const rd_kafka_ListConsumerGroupOffsets_result_t* res = rd_kafka_event_ListConsumerGroupOffsets_result(ev->get());
    size_t n = 0;
    const rd_kafka_group_result_t** groups = rd_kafka_ListConsumerGroupOffsets_result_groups(res, &n);
    if (n != 1) return Internal("committed offsets of group " + g + ": " + std::to_string(n) + " results");
    if (const rd_kafka_error_t* e = rd_kafka_group_result_error(groups[0]); e != nullptr) {
      return FromErrorCode(rd_kafka_error_code(e), "committed offsets of group " + g);
    }
    const rd_kafka_topic_partition_list_t* got = rd_kafka_group_result_partitions(groups[0]);
    for (int i = 0; got != nullptr && i < got->cnt; ++i) {
      const rd_kafka_topic_partition_t& tp = got->elems[i];
      if (tp.partition < 0 || tp.partition >= *partitions || t != tp.topic) continue;
      if (tp.err != RD_KAFKA_RESP_ERR_NO_ERROR) {
        return FromErrorCode(tp.err, "committed offset of " + t + "[" + std::to_string(tp.partition) + "]");
      }
      out[static_cast<size_t>(tp.partition)].committed = tp.offset >= 0 ? tp.offset : -1;
    }
  }
  for (auto& pl : out) {
    int64_t low = 0;
    int64_t high = 0;
    rd_kafka_resp_err_t e = QueryWatermarks(client, t, pl.partition, timeout, low, high);
    if (e != RD_KAFKA_RESP_ERR_NO_ERROR) {
      return FromErrorCode(e, "watermarks of " + t + "[" + std::to_string(pl.partition) + "]");
    }
    pl.low = low;
    pl.high = high;
  }
  return out;
}

Status AssignFromTime(rd_kafka_t* consumer, std::string_view topic, int32_t partitions, int64_t since_ms,
                      std::chrono::milliseconds timeout) {
  std::string t(topic);
  PartitionListPtr list(rd_kafka_topic_partition_list_new(partitions));
  for (int32_t p = 0; p < partitions; ++p)
    rd_kafka_topic_partition_list_add(list.get(), t.c_str(), p)->offset = since_ms;
  rd_kafka_resp_err_t e = rd_kafka_offsets_for_times(consumer, list.get(), static_cast<int>(timeout.count()));
  if (e != RD_KAFKA_RESP_ERR_NO_ERROR) return FromErrorCode(e, "offsets of " + t + " by time");
  for (int i = 0; i < list->cnt; ++i) {
    rd_kafka_topic_partition_t& tp = list->elems[i];
    if (tp.err != RD_KAFKA_RESP_ERR_NO_ERROR) return FromErrorCode(tp.err, "offset of " + t + " by time");
    if (tp.offset < 0) tp.offset = RD_KAFKA_OFFSET_END;
  }
  return FromErrorCode(rd_kafka_assign(consumer, list.get()), "assigning " + t);
}

}  // namespace cronlane::kafka
