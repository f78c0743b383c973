// The dispatcher's core on simulated time with a fake transactional sink: on-time
// firing, message format, exactly-once across restarts, catch-up policies,
// deadlines, commit failures, fencing, suspend/update/remove, shards and jitter.
#include "dispatcher/dispatcher.h"
#include "dispatcher/checkpoint_follower.h"
#include "dispatcher/results_follower.h"
#include "dispatcher/results_hub.h"

#include "common/zone.h"
#include "dispatcher/fire_times.h"

#include <gmock/gmock.h>

#include <gtest/gtest.h>

#include <algorithm>
#include "common/cloudevent.h"
#include "common/logging.h"

#include <condition_variable>
#include <future>
#include <mutex>
#include <set>
#include <thread>

namespace cronlane::dispatcher {
namespace {

using namespace std::chrono_literals;
using ::testing::ElementsAre;

Instant T(const char* s) {
  return *ParseRfc3339(s);
}

// Keeps what was committed, like a topic read with read_committed.
class FakeSink : public FireSink {
 public:
  int fail_next = 0;
  bool fenced = false;
  int inits = 0;
  std::vector<OutMessage> committed;
  std::unordered_map<std::string, int64_t> checkpoints;
  CheckpointRecords records;            // typed records ("<uid>/run-now")
  std::vector<std::string> tombstones;  // in commit order
  int commits = 0;
  std::set<std::string> missing;  // topics that do not exist: a Commit with one fails

  Status Init() override {
    ++inits;
    return Status::Ok();
  }
  Status Commit(const std::vector<OutMessage>& m, const std::vector<Checkpoint>& cps) override {
    if (fenced) return Fenced("producer fenced");
    if (fail_next > 0) {
      --fail_next;
      return Unavailable("broker down");
    }
    for (const auto& msg : m) {
      if (missing.count(msg.topic) != 0) return Unavailable("topic " + msg.topic + " does not exist");
    }
    committed.insert(committed.end(), m.begin(), m.end());
    for (const auto& c : cps) {
      if (c.deleted) {
        checkpoints.erase(c.task_id);
        records.erase(c.task_id);
        tombstones.push_back(c.task_id);
      } else if (!c.suffix.empty()) {
        records[c.task_id + c.suffix] = c.text;
      } else {
        checkpoints[c.task_id] = c.last_fired;
      }
    }
    ++commits;
    return Status::Ok();
  }
  Result<dispatcher::Checkpoints> ReadCheckpoints() override { return dispatcher::Checkpoints{checkpoints, records}; }
  std::vector<std::string> MissingTopics(const std::vector<std::string>& topics) override {
    std::vector<std::string> out;
    for (const auto& t : topics) {
      if (missing.count(t) != 0) out.push_back(t);
    }
    return out;
  }

  std::vector<std::string> Ids() const {
    std::vector<std::string> out;
    for (const auto& m : committed) {
      for (const auto& h : m.headers) {
        if (h.name == "ce_id") out.push_back(h.value);
      }
    }
    return out;
  }
};

class Recorder : public DispatcherObserver {
 public:
  std::vector<std::string> fired, skipped;
  bool fenced = false;
  void OnFired(const TaskDefinition& t, Instant s, std::optional<Instant>) override {
    fired.push_back(t.name + "@" + FormatRfc3339(s));
  }
  void OnSkipped(const TaskDefinition& t, int count, Instant, Instant, const std::string& reason,
                 const std::string&) override {
    skipped.push_back(t.name + ":" + reason + ":" + std::to_string(count));
  }
  void OnFenced(const std::string&) override { fenced = true; }
  std::vector<std::string> completed;
  void OnCompleted(const TaskDefinition& t, std::optional<Instant> last) override {
    completed.push_back(t.name + (last ? "@" + FormatRfc3339(*last) : std::string(" never fired")));
  }
  std::vector<std::string> run_now;
  void OnRunNow(const TaskDefinition& t, const std::string& token, Instant at, RunNowResult result,
                const std::string&) override {
    run_now.push_back(t.name + ":" + token + "@" + FormatRfc3339(at) + ":" +
                      (result == RunNowResult::kFired ? "Fired" : "Skipped"));
  }
  std::vector<std::string> backfills;  // "name fired/total"
  void OnBackfillProgress(const BackfillDefinition& b, const BackfillState& state) override {
    backfills.push_back(b.name + " " + std::to_string(state.fired) + "/" + std::to_string(state.total));
  }
};

TaskDefinition Task(const std::string& name, const std::string& schedule) {
  TaskDefinition t;
  t.id = "uid-" + name;
  t.ns = "team";
  t.name = name;
  t.schedule = schedule;
  t.topic = "jobs";
  t.payload_json = R"({"n":1})";
  return t;
}

// Steps simulated time one second at a time, collecting and firing.
void RunFor(FakeClock& clock, Dispatcher& d, std::chrono::seconds total) {
  for (auto s = 0s; s < total; s += 1s) {
    clock.Advance(1s);
    d.CollectDue(std::chrono::floor<std::chrono::seconds>(clock.Now()));
    (void)d.FireOnce();
  }
}

std::string HeaderOf(const OutMessage& m, const std::string& name) {
  for (const auto& h : m.headers) {
    if (h.name == name) return h.value;
  }
  return "";
}

class DispatcherTest : public ::testing::Test {
 protected:
  FakeClock clock{std::chrono::system_clock::time_point(T("2026-01-01T00:00:00Z"))};
  FakeSink sink;
  Recorder rec;
};

// A record of the checkpoint topic as the follower reads it.
kafka::Message CheckpointRecord(std::optional<std::string> key, std::string value) {
  kafka::Message m;
  m.key = std::move(key);
  m.value = std::move(value);
  return m;
}

TEST(CheckpointRecords, GarbageOnTheTopicIsIgnoredAndTombstonesDelete) {
  Checkpoints cps;
  EXPECT_TRUE(ApplyCheckpointRecord(cps, CheckpointRecord("a", "1767225600")));
  EXPECT_TRUE(ApplyCheckpointRecord(cps, CheckpointRecord("b", "1767225600")));
  EXPECT_TRUE(ApplyCheckpointRecord(cps, CheckpointRecord("a", "1767225660")));
  EXPECT_EQ(cps.fired, (std::unordered_map<std::string, int64_t>{{"a", 1767225660}, {"b", 1767225600}}))
      << "the latest per task";
  for (const char* garbage : {"yesterday", "12abc", "", "1e9", "99999999999999999999", " 5"}) {
    Checkpoints before = cps;
    if (std::string(garbage).empty()) continue;  // empty is a tombstone, below
    EXPECT_FALSE(ApplyCheckpointRecord(cps, CheckpointRecord("a", garbage))) << garbage;
    EXPECT_EQ(cps, before) << "\"" << garbage << "\" is not a checkpoint";
  }
  EXPECT_FALSE(ApplyCheckpointRecord(cps, CheckpointRecord(std::nullopt, "1767225999")));
  EXPECT_EQ(cps.size(), 2U) << "a record without a key is not a checkpoint";
  ApplyCheckpointRecord(cps, CheckpointRecord("b", ""));
  EXPECT_EQ(cps.fired, (std::unordered_map<std::string, int64_t>{{"a", 1767225660}})) << "a tombstone deletes";
  ApplyCheckpointRecord(cps, CheckpointRecord("never-seen", ""));
  EXPECT_EQ(cps.size(), 1U);
}

// A checkpoint is an occurrence already fired: one far later than now (garbage
// that parses as a number, or a clock far ahead) would stop the task until then;
// one from before the task existed would replay its occurrences since then. Both
// are ignored: the task starts as never fired.
TEST_F(DispatcherTest, ACheckpointThatCannotBeOneIsIgnored) {
  const int64_t now = 1767225600;  // the clock: 2026-01-01T00:00:00Z
  sink.checkpoints = {{"uid-future", now + 10 * 365 * 86400},
                      {"uid-ancient", 5},
                      {"uid-skewed", now + 60},  // a clock a minute ahead: kept
                      {"uid-fine", now - 3}};
  Dispatcher d(clock, sink, &rec);
  ASSERT_TRUE(d.Start().ok());
  for (const char* name : {"future", "ancient", "skewed", "fine"}) {
    auto t = Task(name, "* * * * * *");
    t.catch_up = CatchUpPolicy::kAll;
    t.created = Instant{std::chrono::seconds{now - 86400}};
    ASSERT_TRUE(d.Upsert(t).ok());
  }
  RunFor(clock, d, 3s);
  std::map<std::string, int> fired;
  for (const auto& id : sink.Ids()) ++fired[id.substr(0, id.find(':'))];
  EXPECT_EQ(fired["uid-future"], 3) << "from now on, not ten years from now";
  EXPECT_EQ(fired["uid-ancient"], 3) << "from now on, not every second since 1970 (up to maxCatchUp)";
  EXPECT_EQ(fired["uid-skewed"], 0) << "nothing after :00 +60 s is due yet";
  EXPECT_EQ(fired["uid-fine"], 6) << "caught up from 23:59:58, then each second to 00:00:03";
}

// A topic that does not exist (deleted under the operator, and not re-creatable)
// must not stop other tasks: its occurrences wait aside and are tried again, with
// their catch-up policy applied, once it exists.
TEST_F(DispatcherTest, AMissingTopicHoldsBackOnlyItsOwnTasks) {
  sink.missing = {"gone"};
  Dispatcher d(clock, sink, &rec, {.missing_topic_retry = 5s});
  ASSERT_TRUE(d.Start().ok());
  auto kept = Task("kept", "* * * * * *");
  auto all = Task("all", "* * * * * *");
  all.topic = "gone";
  all.catch_up = CatchUpPolicy::kAll;
  auto latest = Task("latest", "* * * * * *");
  latest.topic = "gone";  // catchUpPolicy Latest (the default)
  for (const auto& t : {kept, all, latest}) ASSERT_TRUE(d.Upsert(t).ok());
  RunFor(clock, d, 8s);
  std::map<std::string, int> fired;
  for (const auto& id : sink.Ids()) ++fired[id.substr(0, id.find(':'))];
  EXPECT_EQ(fired["uid-kept"], 8) << "every second, as if nothing were wrong";
  EXPECT_EQ(fired["uid-all"], 0);
  EXPECT_EQ(d.Stats().pending, 16U) << "8 occurrences of each task on the missing topic wait";
  sink.missing.clear();  // the topic is back
  RunFor(clock, d, 5s);
  fired.clear();
  for (const auto& id : sink.Ids()) ++fired[id.substr(0, id.find(':'))];
  EXPECT_EQ(fired["uid-kept"], 13);
  EXPECT_EQ(fired["uid-all"], 13) << "every occurrence once, late";
  EXPECT_LT(fired["uid-latest"], 13) << "only the latest of those that were late";
  EXPECT_GT(fired["uid-latest"], 0);
  auto ids = sink.Ids();
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), ids.size()) << "no duplicates";
}

TEST(LogThrottle, FirstThenAtMostOncePerIntervalWithTheCount) {
  LogThrottle t(std::chrono::seconds(60));
  const auto t0 = std::chrono::steady_clock::time_point{} + std::chrono::hours(1);
  EXPECT_EQ(t.Allow(t0), 1U);
  EXPECT_EQ(t.Allow(t0 + std::chrono::seconds(1)), std::nullopt);
  EXPECT_EQ(t.Allow(t0 + std::chrono::seconds(59)), std::nullopt);
  EXPECT_EQ(t.Allow(t0 + std::chrono::seconds(60)), 3U) << "two held back, and this one";
  EXPECT_EQ(t.Allow(t0 + std::chrono::seconds(61)), std::nullopt);
}

TEST_F(DispatcherTest, ForgetWritesATombstoneEvenWhenNothingIsDue) {
  Dispatcher d(clock, sink, &rec);
  ASSERT_TRUE(d.Start().ok());
  ASSERT_TRUE(d.Upsert(Task("a", "*/10 * * * * *")).ok());
  ASSERT_TRUE(d.Upsert(Task("b", "*/10 * * * * *")).ok());
  RunFor(clock, d, 10s);
  ASSERT_EQ(sink.checkpoints.count("uid-a"), 1U);
  d.Forget("uid-a");
  EXPECT_EQ(d.CollectDue(std::chrono::floor<std::chrono::seconds>(clock.Now())), 0U);
  ASSERT_TRUE(d.FireOnce().ok());
  EXPECT_THAT(sink.tombstones, ElementsAre("uid-a"));
  EXPECT_EQ(sink.checkpoints.count("uid-a"), 0U);
  EXPECT_EQ(sink.checkpoints.count("uid-b"), 1U) << "only the forgotten task's checkpoint goes";
  EXPECT_EQ(d.Stats().tombstones, 1U);
  RunFor(clock, d, 10s);
  EXPECT_THAT(sink.tombstones, ElementsAre("uid-a")) << "written once";
  EXPECT_EQ(sink.checkpoints.count("uid-a"), 0U) << "and the task fires no more";
}

TEST_F(DispatcherTest, ATombstoneSurvivesAFailedCommit) {
  Dispatcher d(clock, sink, &rec);
  ASSERT_TRUE(d.Start().ok());
  d.Forget("uid-gone");
  sink.fail_next = 1;
  EXPECT_FALSE(d.FireOnce().ok());
  EXPECT_TRUE(sink.tombstones.empty());
  ASSERT_TRUE(d.FireOnce().ok());
  EXPECT_THAT(sink.tombstones, ElementsAre("uid-gone"));
}

TEST_F(DispatcherTest, AnUpsertBeforeTheCommitCancelsTheTombstone) {
  sink.checkpoints["uid-a"] = T("2026-01-01T00:00:00Z").time_since_epoch().count();
  Dispatcher d(clock, sink, &rec);
  ASSERT_TRUE(d.Start().ok());
  d.Forget("uid-a");
  ASSERT_TRUE(d.Upsert(Task("a", "*/10 * * * * *")).ok());
  ASSERT_TRUE(d.FireOnce().ok());
  EXPECT_TRUE(sink.tombstones.empty());
  EXPECT_EQ(sink.commits, 0) << "nothing to commit";
  EXPECT_EQ(sink.checkpoints.count("uid-a"), 1U);
}

TEST_F(DispatcherTest, UnclaimedCheckpointsAreTheRestoredOnesNoTaskTook) {
  const int64_t t0 = T("2026-01-01T00:00:00Z").time_since_epoch().count();
  sink.checkpoints = {{"uid-a", t0}, {"uid-b", t0}, {"uid-gone", t0}};
  Dispatcher d(clock, sink, &rec);
  ASSERT_TRUE(d.Upsert(Task("a", "*/10 * * * * *")).ok());  // held until Start
  ASSERT_TRUE(d.Start().ok());
  auto unclaimed = d.UnclaimedCheckpoints();
  std::sort(unclaimed.begin(), unclaimed.end());
  EXPECT_THAT(unclaimed, ElementsAre("uid-b", "uid-gone"));
  ASSERT_TRUE(d.Upsert(Task("b", "*/10 * * * * *")).ok());
  EXPECT_EQ(FormatRfc3339(*d.State("uid-b")->last_fire), "2026-01-01T00:00:00Z") << "b took its checkpoint";
  d.Forget("uid-gone");
  EXPECT_TRUE(d.UnclaimedCheckpoints().empty());
  ASSERT_TRUE(d.FireOnce().ok());
  EXPECT_THAT(sink.tombstones, ElementsAre("uid-gone"));
}

TEST_F(DispatcherTest, FiresOnTimeWithCloudEventHeaders) {
  // The embedder names the source (the operator: the object's API path).
  Dispatcher d(clock, sink, &rec, {.event_source = [](const TaskDefinition& t) {
                 return "/apis/x/namespaces/" + t.ns + "/st/" + t.name;
               }});
  ASSERT_TRUE(d.Start().ok());
  auto state = d.Upsert(Task("a", "*/10 * * * * *"));
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(FormatRfc3339(*state->next_fire), "2026-01-01T00:00:10Z");
  RunFor(clock, d, 30s);
  EXPECT_THAT(sink.Ids(), ElementsAre("uid-a:1767225610", "uid-a:1767225620", "uid-a:1767225630"));
  const OutMessage& m = sink.committed.at(0);
  EXPECT_EQ(m.topic, "jobs");
  EXPECT_EQ(m.key, "team/a");
  EXPECT_EQ(m.value, R"({"n":1})");
  std::map<std::string, std::string> h;
  for (const auto& x : m.headers) h[x.name] = x.value;
  EXPECT_EQ(h["ce_specversion"], "1.0");
  EXPECT_EQ(h["ce_type"], "dev.cronlane.task.fired");
  EXPECT_EQ(h["ce_source"], "/apis/x/namespaces/team/st/a");
  // Without one: "/<namespace>/<name>".
  auto plain = BuildMessages(Task("b", "* * * * *"), Instant{}, 0s, "jobs");
  ASSERT_EQ(plain.size(), 1U);
  for (const auto& x : plain[0].headers) {
    if (x.name == "ce_source") {
      EXPECT_EQ(x.value, "/team/b");
    }
  }
  EXPECT_EQ(h["ce_time"], "2026-01-01T00:00:10Z");
  EXPECT_EQ(h["content-type"], "application/json");
  EXPECT_EQ(h["ce_shardcount"], "1");
  EXPECT_EQ(sink.checkpoints["uid-a"], 1767225630);
  EXPECT_EQ(rec.fired.size(), 3U);
  EXPECT_EQ(FormatRfc3339(*d.State("uid-a")->last_fire), "2026-01-01T00:00:30Z");
}

TEST_F(DispatcherTest, ExactlyOnceAcrossARestart) {
  {
    Dispatcher d(clock, sink, &rec);
    ASSERT_TRUE(d.Start().ok());
    auto t = Task("a", "* * * * * *");
    t.catch_up = CatchUpPolicy::kAll;
    ASSERT_TRUE(d.Upsert(t).ok());
    RunFor(clock, d, 5s);
    // Crash with one occurrence collected but not committed.
    clock.Advance(1s);
    d.CollectDue(std::chrono::floor<std::chrono::seconds>(clock.Now()));
  }
  clock.Advance(4s);  // down for a while
  Dispatcher d2(clock, sink, &rec);
  auto t = Task("a", "* * * * * *");
  t.catch_up = CatchUpPolicy::kAll;
  ASSERT_TRUE(d2.Upsert(t).ok());  // before Start: held until checkpoints are restored
  ASSERT_TRUE(d2.Start().ok());
  RunFor(clock, d2, 3s);
  auto ids = sink.Ids();
  std::set<std::string> unique(ids.begin(), ids.end());
  EXPECT_EQ(unique.size(), ids.size()) << "no duplicates";
  ASSERT_EQ(ids.size(), 13U) << "every second from :01 to :13 exactly once";
  for (int i = 0; i < 13; ++i) EXPECT_EQ(ids[i], "uid-a:" + std::to_string(1767225601 + i));
}

struct PolicyCase {
  CatchUpPolicy policy;
  int max_catch_up;
  std::optional<int64_t> deadline;
  std::vector<std::string> want;  // minutes fired after a 5-minute outage
};

class CatchUpTest : public DispatcherTest, public ::testing::WithParamInterface<PolicyCase> {};

TEST_P(CatchUpTest, AfterAnOutage) {
  auto task = Task("m", "* * * * *");
  task.catch_up = GetParam().policy;
  task.max_catch_up = GetParam().max_catch_up;
  task.starting_deadline_seconds = GetParam().deadline;
  sink.checkpoints["uid-m"] = T("2026-01-01T00:00:00Z").time_since_epoch().count();
  clock.Advance(5min + 30s);  // down from 00:00 to 00:05:30; 00:01..00:05 were missed
  Dispatcher d(clock, sink, &rec);
  ASSERT_TRUE(d.Start().ok());
  ASSERT_TRUE(d.Upsert(task).ok());
  d.CollectDue(std::chrono::floor<std::chrono::seconds>(clock.Now()));
  ASSERT_TRUE(d.FireOnce().ok());
  std::vector<std::string> got;
  for (const auto& id : sink.Ids())
    got.push_back(FormatRfc3339(Instant{std::chrono::seconds{std::stoll(id.substr(6))}}).substr(11, 5));
  EXPECT_EQ(got, GetParam().want);
  // Then on time again.
  RunFor(clock, d, 31s);
  EXPECT_EQ(sink.Ids().back(), "uid-m:" + std::to_string(T("2026-01-01T00:06:00Z").time_since_epoch().count()));
}

INSTANTIATE_TEST_SUITE_P(
    Policies, CatchUpTest,
    ::testing::Values(PolicyCase{CatchUpPolicy::kLatest, 100, std::nullopt, {"00:05"}},
                      PolicyCase{CatchUpPolicy::kAll, 100, std::nullopt, {"00:01", "00:02", "00:03", "00:04", "00:05"}},
                      PolicyCase{CatchUpPolicy::kAll, 2, std::nullopt, {"00:04", "00:05"}},
                      // 00:03 is exactly 150 s old at 00:05:30: still within the deadline, as in CronJob.
                      PolicyCase{CatchUpPolicy::kAll, 100, 150, {"00:03", "00:04", "00:05"}},
                      PolicyCase{CatchUpPolicy::kLatest, 100, 20, {}},
                      PolicyCase{CatchUpPolicy::kNone, 100, std::nullopt, {}}));

TEST_F(DispatcherTest, SkippedOccurrencesAreReported) {
  auto task = Task("m", "* * * * *");
  task.catch_up = CatchUpPolicy::kAll;
  task.max_catch_up = 2;
  sink.checkpoints["uid-m"] = T("2026-01-01T00:00:00Z").time_since_epoch().count();
  clock.Advance(5min + 30s);
  Dispatcher d(clock, sink, &rec);
  ASSERT_TRUE(d.Start().ok());
  ASSERT_TRUE(d.Upsert(task).ok());
  d.CollectDue(std::chrono::floor<std::chrono::seconds>(clock.Now()));
  EXPECT_THAT(rec.skipped, ElementsAre("m:TooManyMissed:3"));
  EXPECT_EQ(d.Stats().skipped, 3U);
  // By namespace, for metrics: the 2 caught-up occurrences fire, 3 were skipped.
  ASSERT_TRUE(d.FireOnce().ok());
  auto other = Task("o", "* * * * *");
  other.id = "uid-o";
  other.ns = "other";
  ASSERT_TRUE(d.Upsert(other).ok());
  auto by_ns = d.CountsByNamespace();
  ASSERT_EQ(by_ns.count("team"), 1U);
  EXPECT_EQ(by_ns["team"].skipped, 3U);
  EXPECT_EQ(by_ns["team"].fired, 2U);
  EXPECT_EQ(by_ns.count("other"), 0U) << "nothing counted yet";
}

TEST_F(DispatcherTest, ForbidSkipsWhileThePreviousOccurrenceRuns) {
  Dispatcher d(clock, sink, &rec);
  ASSERT_TRUE(d.Start().ok());
  auto t = Task("f", "*/10 * * * * *");
  t.concurrency = ConcurrencyPolicy::kForbid;
  ASSERT_TRUE(d.Upsert(t).ok());
  RunFor(clock, d, 30s);  // :10 fires; :20 and :30 find it running
  EXPECT_THAT(sink.Ids(), ElementsAre("uid-f:1767225610"));
  EXPECT_THAT(rec.skipped, ElementsAre("f:ConcurrencyForbidden:1", "f:ConcurrencyForbidden:1"));
  d.OnFinished("uid-f", T("2026-01-01T00:00:10Z"));
  RunFor(clock, d, 10s);  // :40 fires
  EXPECT_THAT(sink.Ids(), ElementsAre("uid-f:1767225610", "uid-f:1767225640"));
  d.OnFinished("uid-f", T("2026-01-01T00:00:10Z"));  // an old result does not release :40
  RunFor(clock, d, 10s);
  EXPECT_EQ(sink.Ids().size(), 2U);
  // Allow ignores results entirely.
  auto a = Task("a", "*/10 * * * * *");
  ASSERT_TRUE(d.Upsert(a).ok());
  RunFor(clock, d, 20s);
  EXPECT_EQ(sink.Ids().size(), 4U);
}

// concurrencyPolicy Replace: an occurrence due while the previous one runs
// commits a cancel event on the control topic in the same transaction; one due after
// the previous finished commits none; without a control topic Replace is Allow.
TEST_F(DispatcherTest, ReplaceCommitsTheCancelWithTheNewOccurrence) {
  DispatcherOptions o;
  o.control_topic = "ctl";
  Dispatcher d(clock, sink, &rec, o);
  ASSERT_TRUE(d.Start().ok());
  auto t = Task("r", "*/10 * * * * *");
  t.concurrency = ConcurrencyPolicy::kReplace;
  ASSERT_TRUE(d.Upsert(t).ok());
  RunFor(clock, d, 10s);  // :10 fires, nothing ran before it
  EXPECT_THAT(sink.Ids(), ElementsAre("uid-r:1767225610"));
  sink.fail_next = 1;  // the transaction carrying :20 and its cancel fails once
  RunFor(clock, d, 10s);
  EXPECT_EQ(sink.Ids().size(), 1U);
  RunFor(clock, d, 1s);  // retried
  EXPECT_THAT(sink.Ids(), ElementsAre("uid-r:1767225610", "uid-r:1767225620:cancel", "uid-r:1767225620"))
      << "the cancel and its replacement are one transaction: both or neither, once";
  const OutMessage& cancel = sink.committed[1];
  EXPECT_EQ(cancel.topic, "ctl");
  EXPECT_EQ(cancel.key, "team/r");
  EXPECT_EQ(HeaderOf(cancel, "ce_type"), "dev.cronlane.task.cancel");
  EXPECT_EQ(HeaderOf(cancel, "ce_canceltask"), "uid-r");
  EXPECT_EQ(HeaderOf(cancel, "ce_cancelbefore"), "2026-01-01T00:00:20Z");
  EXPECT_EQ(HeaderOf(cancel, "ce_subject"), "team/r");
  auto decoded = DecodeCancelEvent(kafka::Message{"ctl", 0, 0, cancel.key, cancel.value, cancel.headers});
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  EXPECT_EQ(decoded->before, "2026-01-01T00:00:20Z");
  // :20 finished before :30 is due: no cancel.
  d.OnFinished("uid-r", T("2026-01-01T00:00:20Z"));
  RunFor(clock, d, 9s);
  EXPECT_EQ(sink.Ids().back(), "uid-r:1767225630");
  EXPECT_EQ(sink.Ids().size(), 4U);
  EXPECT_EQ(d.Stats().cancels, 1U);
  // A run by hand while :30 runs replaces it too.
  ASSERT_TRUE(d.RequestRun("uid-r", {"tok"}).ok());
  ASSERT_TRUE(d.FireOnce().ok());
  const std::vector<std::string> ids = sink.Ids();
  EXPECT_THAT(std::vector<std::string>(ids.end() - 2, ids.end()),
              ElementsAre("uid-r:run-now:tok:cancel", "uid-r:run-now:tok"));
  EXPECT_TRUE(rec.skipped.empty()) << "Replace never skips a single due occurrence";
}

TEST_F(DispatcherTest, ReplaceRunsOnlyTheLatestOfSeveralDueAndIsAllowWithoutAControlTopic) {
  DispatcherOptions o;
  o.control_topic = "ctl";
  Dispatcher d(clock, sink, &rec, o);
  auto t = Task("r", "*/10 * * * * *");
  t.concurrency = ConcurrencyPolicy::kReplace;
  t.catch_up = CatchUpPolicy::kAll;
  ASSERT_TRUE(d.Start().ok());
  ASSERT_TRUE(d.Upsert(t).ok());
  clock.Advance(35s);  // :10, :20, :30 due at once (the operator was busy)
  RunFor(clock, d, 1s);
  EXPECT_THAT(sink.Ids(), ElementsAre("uid-r:1767225630"));
  EXPECT_THAT(rec.skipped, ElementsAre("r:ConcurrencyReplaced:2"));

  FakeSink plain;
  Dispatcher allow(clock, plain, &rec);  // no control topic
  ASSERT_TRUE(allow.Start().ok());
  auto u = Task("u", "*/10 * * * * *");
  u.concurrency = ConcurrencyPolicy::kReplace;
  ASSERT_TRUE(allow.Upsert(u).ok());
  RunFor(clock, allow, 20s);
  EXPECT_EQ(plain.Ids().size(), 2U);
  for (const auto& id : plain.Ids()) EXPECT_EQ(id.find(":cancel"), std::string::npos) << id;
}

// A missing control topic holds the replacing occurrence back, as a missing task
// topic does: committing it without its cancel would run two at once.
TEST_F(DispatcherTest, ReplaceWaitsForAMissingControlTopic) {
  DispatcherOptions o;
  o.control_topic = "ctl";
  o.missing_topic_retry = 5000ms;
  Dispatcher d(clock, sink, &rec, o);
  ASSERT_TRUE(d.Start().ok());
  auto t = Task("r", "*/10 * * * * *");
  t.concurrency = ConcurrencyPolicy::kReplace;
  t.catch_up = CatchUpPolicy::kAll;
  ASSERT_TRUE(d.Upsert(t).ok());
  sink.missing = {"ctl"};
  RunFor(clock, d, 20s);  // :10 fires (nothing to cancel); :20 waits for ctl
  EXPECT_THAT(sink.Ids(), ElementsAre("uid-r:1767225610"));
  sink.missing.clear();
  RunFor(clock, d, 6s);
  EXPECT_THAT(sink.Ids(), ElementsAre("uid-r:1767225610", "uid-r:1767225620:cancel", "uid-r:1767225620"));
}

TEST_F(DispatcherTest, ForbidReleasesAfterTheLongestPossibleRun) {
  DispatcherOptions o;
  o.forbid_running_limit = 25s;
  Dispatcher d(clock, sink, &rec, o);
  ASSERT_TRUE(d.Start().ok());
  auto t = Task("f", "*/10 * * * * *");
  t.concurrency = ConcurrencyPolicy::kForbid;
  ASSERT_TRUE(d.Upsert(t).ok());
  RunFor(clock, d, 40s);  // :10 fires, no result ever; at :40 it is 30 s old > 25 s
  EXPECT_THAT(sink.Ids(), ElementsAre("uid-f:1767225610", "uid-f:1767225640"));
  // With a timeout the limit is attempts x timeout + backoff + 60 s: 2 x 5 + 1 + 60 = 71 s.
  auto u = Task("u", "0 * * * * *");
  u.concurrency = ConcurrencyPolicy::kForbid;
  u.timeout_seconds = 5;
  u.max_attempts = 2;
  u.backoff_seconds = 1;
  ASSERT_TRUE(d.Upsert(u).ok());
  RunFor(clock, d, 20s + 120s);  // 00:01 fires; 00:02 is 60 s later (< 71 s): skipped; 00:03 fires
  std::vector<std::string> u_ids;
  for (const auto& id : sink.Ids()) {
    if (id.rfind("uid-u", 0) == 0) u_ids.push_back(id);
  }
  EXPECT_THAT(u_ids, ElementsAre("uid-u:1767225660", "uid-u:1767225780"));
}

TEST_F(DispatcherTest, ForbidAfterARestartWaitsForTheRestoredOccurrence) {
  sink.checkpoints["uid-f"] = T("2026-01-01T00:00:00Z").time_since_epoch().count();
  Dispatcher d(clock, sink, &rec);
  auto t = Task("f", "*/10 * * * * *");
  t.concurrency = ConcurrencyPolicy::kForbid;
  // A result replayed before the task is known still counts.
  d.OnFinished("uid-f", T("2026-01-01T00:00:00Z"));
  ASSERT_TRUE(d.Start().ok());
  ASSERT_TRUE(d.Upsert(t).ok());
  RunFor(clock, d, 10s);
  EXPECT_THAT(sink.Ids(), ElementsAre("uid-f:1767225610"));
}

// A record of the results topic, written at 2026-01-01T00:00:05.123Z.
kafka::Message ResultRecord(const TaskResult& r) {
  kafka::Message m;
  m.value = EncodeTaskResult(r);
  m.timestamp_ms = 1767225605123;
  return m;
}

// A RunResult as one line: "team/a/uid-a Succeeded Scheduled 2026-...Z->2026-...Z x1 10ms".
std::string Describe(const std::string& id, const RunResult& r) {
  return r.subject + "/" + id + " " + RunOutcomeName(r.outcome) + (r.dead_lettered ? "+DeadLettered" : "") + " " +
         (r.trigger == Trigger::kSchedule   ? "Scheduled "
          : r.trigger == Trigger::kBackfill ? "Backfill "
                                            : "Manual ") +
         FormatRfc3339(r.scheduled) + "->" + FormatRfc3339(r.finished) + " x" + std::to_string(r.attempts) + " " +
         std::to_string(r.duration_ms) + "ms";
}

TEST(ResultsFollower, ReportsEveryResultAndFinishesOccurrencesWhenAllShardsDid) {
  FakeClock clock{std::chrono::system_clock::time_point(T("2026-01-01T00:00:00Z"))};
  std::vector<std::string> finished, results;
  ResultsFollower f(
      {}, clock,
      [&](const std::string& id, Instant at, const std::string& token) {
        finished.push_back(id + "@" + FormatRfc3339(at) + (token.empty() ? "" : " run-now " + token));
      },
      [&](const std::string& id, const RunResult& r) { results.push_back(Describe(id, r)); });
  f.Handle(ResultRecord({"uid-a:1767225600", "team/a", "2026-01-01T00:00:00Z", RunOutcome::kSucceeded, 1, 10, 0, 1}));
  EXPECT_THAT(finished, ElementsAre("uid-a@2026-01-01T00:00:00Z"));
  EXPECT_THAT(results,
              ElementsAre("team/a/uid-a Succeeded Scheduled 2026-01-01T00:00:00Z->2026-01-01T00:00:05Z x1 10ms"));
  TaskResult dead{"uid-m:run-now:tok", "team/m", "2026-01-01T00:00:01Z", RunOutcome::kFailed, 3, 40, 0, 1};
  dead.dead_lettered = true;
  f.Handle(ResultRecord(dead));
  EXPECT_EQ(results.back(),
            "team/m/uid-m Failed+DeadLettered Manual 2026-01-01T00:00:01Z->2026-01-01T00:00:05Z x3 40ms");
  results.clear();
  // Three shards: finished after the third result, failed ones included.
  f.Handle(ResultRecord({"uid-s:1767225600:0", "team/s", "2026-01-01T00:00:00Z", RunOutcome::kSucceeded, 1, 10, 0, 3}));
  f.Handle(ResultRecord({"uid-s:1767225600:2", "team/s", "2026-01-01T00:00:00Z", RunOutcome::kFailed, 3, 10, 2, 3}));
  EXPECT_EQ(finished.size(), 2U);
  f.Handle(ResultRecord({"uid-s:1767225600:1", "team/s", "2026-01-01T00:00:00Z", RunOutcome::kSucceeded, 1, 10, 1, 3}));
  EXPECT_THAT(finished, ElementsAre("uid-a@2026-01-01T00:00:00Z", "uid-m@2026-01-01T00:00:01Z run-now tok",
                                    "uid-s@2026-01-01T00:00:00Z"));
  EXPECT_EQ(results.size(), 3U) << "every shard's result, whatever its outcome";
  kafka::Message junk;
  junk.value = "{not json";
  f.Handle(junk);
  junk.value = R"({"id": "x", "subject": "a/b", "time": "yesterday", "outcome": "Succeeded"})";
  f.Handle(junk);
  EXPECT_EQ(f.invalid(), 2U);
  EXPECT_EQ(f.results(), 5U);
}

TEST(ResultsHub, ASubscriberGetsWhatTheHubRememberedOfItsTasksThenNewResultsUntilItLeaves) {
  FakeClock clock{std::chrono::system_clock::time_point(T("2026-01-01T00:00:00Z"))};
  ResultsHub hub({}, clock);
  hub.Handle(ResultRecord({"uid-a:1767225600", "team/a", "2026-01-01T00:00:00Z", RunOutcome::kSucceeded, 1, 10, 0, 1}));
  hub.Handle(ResultRecord({"uid-a:1767225660", "team/a", "2026-01-01T00:01:00Z", RunOutcome::kFailed, 3, 10, 0, 1}));
  hub.Handle(ResultRecord({"uid-b:1767225600", "team/b", "2026-01-01T00:00:00Z", RunOutcome::kSucceeded, 1, 10, 0, 1}));
  EXPECT_EQ(hub.Remembered(), 2U);

  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> finished, results;
  auto source = hub.Subscribe([](const std::string& id) { return id == "uid-a"; },
                              [&](const std::string& id, Instant at, const std::string&) {
                                std::lock_guard lock(mu);
                                finished.push_back(id + "@" + FormatRfc3339(at));
                                cv.notify_all();
                              },
                              [&](const std::string& id, const RunResult& r) {
                                std::lock_guard lock(mu);
                                results.push_back(Describe(id, r));
                              });
  CancelToken stop;
  std::thread t([&] { source->Run(stop); });
  {
    // Registered (and handed what the hub remembered) on the subscription's thread.
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(10), [&] { return !finished.empty(); }));
  }
  // The latest finished occurrence and the latest success of its own task only.
  hub.Handle(ResultRecord({"uid-b:1767225660", "team/b", "2026-01-01T00:01:00Z", RunOutcome::kSucceeded, 1, 10, 0, 1}));
  hub.Handle(ResultRecord({"uid-a:1767225720", "team/a", "2026-01-01T00:02:00Z", RunOutcome::kSucceeded, 1, 10, 0, 1}));
  stop.Cancel();
  t.join();
  hub.Handle(ResultRecord({"uid-a:1767225780", "team/a", "2026-01-01T00:03:00Z", RunOutcome::kSucceeded, 1, 10, 0, 1}));
  EXPECT_THAT(finished, ElementsAre("uid-a@2026-01-01T00:01:00Z", "uid-a@2026-01-01T00:02:00Z"));
  // The latest success and the failure after it (the task fails now), then the new
  // success; nothing of uid-b.
  EXPECT_THAT(results,
              ElementsAre("team/a/uid-a Succeeded Scheduled 2026-01-01T00:00:00Z->2026-01-01T00:00:05Z x1 10ms",
                          "team/a/uid-a Failed Scheduled 2026-01-01T00:01:00Z->2026-01-01T00:00:05Z x3 10ms",
                          "team/a/uid-a Succeeded Scheduled 2026-01-01T00:02:00Z->2026-01-01T00:00:05Z x1 10ms"));
  EXPECT_EQ(source->results(), 2U);

  // What is older than the lookback is forgotten, as a replay would not find it.
  hub.Prune();
  EXPECT_EQ(hub.Remembered(), 2U) << "within the lookback (3600 s) still";
  clock.Advance(std::chrono::hours(2));
  hub.Prune();
  EXPECT_EQ(hub.Remembered(), 0U);
}

TEST_F(DispatcherTest, AMonthLongOutageFiresOnlyTheWindowAndCountsTheRest) {
  auto task = Task("s", "* * * * * *");
  task.catch_up = CatchUpPolicy::kAll;
  task.max_catch_up = 5;
  sink.checkpoints["uid-s"] = T("2026-01-01T00:00:00Z").time_since_epoch().count();
  clock.Advance(std::chrono::hours(24 * 30));  // 2.6 million missed occurrences
  Dispatcher d(clock, sink, &rec);
  ASSERT_TRUE(d.Start().ok());
  ASSERT_TRUE(d.Upsert(task).ok());
  d.CollectDue(std::chrono::floor<std::chrono::seconds>(clock.Now()));
  ASSERT_TRUE(d.FireOnce().ok());
  // The 5 most recent late ones plus the one due now, oldest first.
  const int64_t now = T("2026-01-31T00:00:00Z").time_since_epoch().count();
  std::vector<std::string> want;
  for (int64_t s = now - 5; s <= now; ++s) want.push_back("uid-s:" + std::to_string(s));
  EXPECT_EQ(sink.Ids(), want);
  ASSERT_EQ(rec.skipped.size(), 1U);
  EXPECT_THAT(rec.skipped[0], ::testing::StartsWith("s:TooManyMissed:"));
  EXPECT_GE(d.Stats().skipped, 10000U) << "counted up to the bound";
  // And the next second is on time again.
  clock.Advance(1s);
  d.CollectDue(std::chrono::floor<std::chrono::seconds>(clock.Now()));
  ASSERT_TRUE(d.FireOnce().ok());
  EXPECT_EQ(sink.Ids().back(), "uid-s:" + std::to_string(now + 1));
}

TEST_F(DispatcherTest, FailedCommitsAreRetriedWithoutLossOrDuplicates) {
  Dispatcher d(clock, sink, &rec);
  ASSERT_TRUE(d.Start().ok());
  auto t = Task("a", "* * * * * *");
  t.catch_up = CatchUpPolicy::kAll;
  ASSERT_TRUE(d.Upsert(t).ok());
  sink.fail_next = 3;
  RunFor(clock, d, 6s);
  EXPECT_EQ(d.Stats().commit_failures, 3U);
  auto ids = sink.Ids();
  ASSERT_EQ(ids.size(), 6U);
  for (int i = 0; i < 6; ++i) EXPECT_EQ(ids[i], "uid-a:" + std::to_string(1767225601 + i));
}

// Fire lag is the due time to the commit by the injected clock; every commit attempt
// is timed, a failed one too, and only committed occurrences count as fired.
TEST_F(DispatcherTest, FireLagAndCommitDurationAreHistograms) {
  Dispatcher d(clock, sink, &rec);
  ASSERT_TRUE(d.Start().ok());
  ASSERT_TRUE(d.Upsert(Task("a", "*/10 * * * * *")).ok());
  auto cumulative = [](const prometheus::ClientMetric& m, double le) {
    for (const auto& b : m.histogram.bucket) {
      if (b.upper_bound == le) return b.cumulative_count;
    }
    ADD_FAILURE() << "no bucket le=" << le;
    return std::uint64_t{0};
  };
  clock.Advance(10s);
  d.CollectDue(std::chrono::floor<std::chrono::seconds>(clock.Now()));
  clock.Advance(300ms);  // due at :10, committed at :10.3
  sink.fail_next = 1;
  EXPECT_FALSE(d.FireOnce().ok());
  EXPECT_EQ(d.FireLag().histogram.sample_count, 0U) << "a failed commit fired nothing";
  EXPECT_EQ(d.CommitDuration().histogram.sample_count, 1U);
  ASSERT_TRUE(d.FireOnce().ok());
  auto lag = d.FireLag();
  EXPECT_EQ(lag.histogram.sample_count, 1U);
  EXPECT_NEAR(lag.histogram.sample_sum, 0.3, 1e-9);
  EXPECT_EQ(cumulative(lag, 0.25), 0U);
  EXPECT_EQ(cumulative(lag, 0.5), 1U);
  EXPECT_EQ(d.CommitDuration().histogram.sample_count, 2U);
}

TEST_F(DispatcherTest, FencedProducerStops) {
  Dispatcher d(clock, sink, &rec);
  ASSERT_TRUE(d.Start().ok());
  ASSERT_TRUE(d.Upsert(Task("a", "* * * * * *")).ok());
  sink.fenced = true;
  clock.Advance(1s);
  d.CollectDue(std::chrono::floor<std::chrono::seconds>(clock.Now()));
  EXPECT_EQ(d.FireOnce().code(), StatusCode::kFenced);
  EXPECT_TRUE(rec.fenced);
}

TEST_F(DispatcherTest, SuspendUpdateRemove) {
  Dispatcher d(clock, sink, &rec);
  ASSERT_TRUE(d.Start().ok());
  auto t = Task("a", "*/10 * * * * *");
  ASSERT_TRUE(d.Upsert(t).ok());
  RunFor(clock, d, 10s);  // fires :10
  t.suspend = true;
  auto s = d.Upsert(t);
  EXPECT_FALSE(s->next_fire.has_value());
  RunFor(clock, d, 25s);  // :20 and :30 do not fire
  t.suspend = false;
  t.catch_up = CatchUpPolicy::kNone;
  ASSERT_TRUE(d.Upsert(t).ok());
  RunFor(clock, d, 5s);  // :40 fires; :20/:30 were missed and policy None skips them
  t.schedule = "*/15 * * * * *";
  auto upd = d.Upsert(t);
  EXPECT_EQ(FormatRfc3339(*upd->next_fire), "2026-01-01T00:00:45Z") << "new schedule from now on";
  RunFor(clock, d, 5s);
  d.Remove(t.id);
  RunFor(clock, d, 30s);
  EXPECT_THAT(sink.Ids(), ElementsAre("uid-a:1767225610", "uid-a:1767225640", "uid-a:1767225645"));
  EXPECT_EQ(d.State(t.id).status().code(), StatusCode::kNotFound);
}

TEST_F(DispatcherTest, ShardsAndDeterministicJitter) {
  Dispatcher d(clock, sink, &rec);
  ASSERT_TRUE(d.Start().ok());
  auto t = Task("s", "0 * * * * *");
  t.shards = 3;
  t.jitter_seconds = 20;
  ASSERT_TRUE(d.Upsert(t).ok());
  auto jitter = JitterFor(t.id, T("2026-01-01T00:01:00Z"), 20);
  EXPECT_EQ(jitter, JitterFor(t.id, T("2026-01-01T00:01:00Z"), 20)) << "same occurrence, same jitter";
  RunFor(clock, d, 60s + jitter - 1s);
  EXPECT_TRUE(sink.committed.empty()) << "not before its jittered time";
  RunFor(clock, d, 1s);
  EXPECT_THAT(sink.Ids(), ElementsAre("uid-s:1767225660:0", "uid-s:1767225660:1", "uid-s:1767225660:2"));
  EXPECT_EQ(sink.committed[0].key, "team/s#0") << "shards spread over partitions";
  EXPECT_EQ(sink.committed[2].key, "team/s#2");
  for (const auto& h : sink.committed[2].headers) {
    if (h.name == "ce_shardindex") {
      EXPECT_EQ(h.value, "2");
    } else if (h.name == "ce_jitterseconds") {
      EXPECT_EQ(h.value, std::to_string(jitter.count()));
    } else if (h.name == "ce_time") {
      EXPECT_EQ(h.value, "2026-01-01T00:01:00Z") << "ce_time is the scheduled time";
    }
  }
  // Jitter spreads occurrences over the window.
  std::set<int64_t> seen;
  for (int m = 0; m < 200; ++m)
    seen.insert(JitterFor("x", T("2026-01-01T00:00:00Z") + std::chrono::minutes(m), 20).count());
  EXPECT_GT(seen.size(), 15U);
  EXPECT_LE(*seen.rbegin(), 20);
}

// The table is keyed by the id inside the definition it holds: after an Upsert
// replaces a definition, the table does not depend on the old one (which its owner
// may free, and malloc may reuse; queued heap items keep theirs alive).
TEST_F(DispatcherTest, AReplacedDefinitionIsNotReferencedAnyMore) {
  Dispatcher d(clock, sink, &rec);
  ASSERT_TRUE(d.Start().ok());
  auto first = std::make_shared<TaskDefinition>(Task("a", "*/10 * * * * *"));
  ASSERT_TRUE(d.Upsert(first).ok());
  auto second = std::make_shared<TaskDefinition>(*first);
  ASSERT_TRUE(d.Upsert(second).ok());
  first->id = "what-reused-memory-holds";
  ASSERT_TRUE(d.State("uid-a").ok());
  EXPECT_FALSE(d.State("what-reused-memory-holds").ok());
  d.Remove("uid-a");
  EXPECT_FALSE(d.State("uid-a").ok());
}

TEST_F(DispatcherTest, InvalidTasksAreRefused) {
  Dispatcher d(clock, sink, &rec);
  ASSERT_TRUE(d.Start().ok());
  ASSERT_TRUE(d.Upsert(Task("bad", "* * * * *")).ok());
  ASSERT_TRUE(d.State("uid-bad").ok());
  // The same id with a schedule that never fires: refused, with the problem, and the
  // earlier version is no longer scheduled.
  auto r = d.Upsert(Task("bad", "0 0 31 2 *"));
  ASSERT_TRUE(r.ok()) << r.status().message();
  ASSERT_TRUE(r->problem.has_value());
  EXPECT_EQ(r->problem->reason, "InvalidSchedule");
  EXPECT_EQ(r->problem->field, "spec.schedule");
  EXPECT_FALSE(r->next_fire.has_value());
  EXPECT_EQ(d.State("uid-bad").status().code(), StatusCode::kNotFound);
}

// An observer that calls back into the dispatcher from OnSkipped, as an observer
// that blocks on anything the dispatcher's lock guards would.
class ReentrantObserver : public Recorder {
 public:
  Dispatcher* d = nullptr;
  bool lock_was_free = false;
  std::vector<std::future<DispatcherStats>> pending;  // a blocked probe finishes once the lock is released
  void OnSkipped(const TaskDefinition& t, int count, Instant first, Instant last, const std::string& reason,
                 const std::string& message) override {
    Recorder::OnSkipped(t, count, first, last, reason, message);
    auto probe = std::async(std::launch::async, [this] { return d->Stats(); });
    lock_was_free = probe.wait_for(std::chrono::seconds(5)) == std::future_status::ready;
    pending.push_back(std::move(probe));
  }
};

TEST_F(DispatcherTest, SkipsAreReportedWithTheLockReleased) {
  ReentrantObserver obs;
  Dispatcher d(clock, sink, &obs);
  obs.d = &d;
  ASSERT_TRUE(d.Start().ok());
  auto t = Task("late", "* * * * * *");
  t.catch_up = CatchUpPolicy::kNone;
  ASSERT_TRUE(d.Upsert(t).ok());
  clock.Advance(10s);  // ten occurrences are late: skipped by policy
  d.CollectDue(std::chrono::floor<std::chrono::seconds>(clock.Now()));
  ASSERT_FALSE(obs.skipped.empty());
  EXPECT_TRUE(obs.lock_was_free) << "OnSkipped ran while the dispatcher's lock was held";
}

TEST_F(DispatcherTest, KeepsTheCallersDefinitionInsteadOfACopy) {
  Dispatcher d(clock, sink, &rec);
  ASSERT_TRUE(d.Start().ok());
  auto def = std::make_shared<const TaskDefinition>(Task("shared", "0 * * * * *"));
  ASSERT_TRUE(d.Upsert(def).ok());
  EXPECT_EQ(def.use_count(), 3) << "the table and the timer's heap hold the same definition";
  auto equal = std::make_shared<const TaskDefinition>(*def);
  ASSERT_TRUE(d.Upsert(equal).ok());
  EXPECT_EQ(equal.use_count(), 2) << "an equal definition replaces the old one in the table";
  RunFor(clock, d, 61s);
  EXPECT_EQ(def.use_count(), 1) << "and in the heap at the next fire: never two copies for longer";
  EXPECT_EQ(equal.use_count(), 3);
}

TEST_F(DispatcherTest, StartingDeadlineCountsFromTheJitteredFireTime) {
  Dispatcher d(clock, sink, &rec);
  ASSERT_TRUE(d.Start().ok());
  auto t = Task("jittery", "0 * * * * *");
  t.jitter_seconds = 50;
  t.starting_deadline_seconds = 10;
  ASSERT_TRUE(d.Upsert(t).ok());
  RunFor(clock, d, std::chrono::minutes(10) + 55s);
  EXPECT_EQ(sink.committed.size(), 10U) << "every occurrence fires at its jittered time";
  EXPECT_TRUE(rec.skipped.empty()) << ::testing::PrintToString(rec.skipped);
}

TEST(CheckTask, ReservedHeadersAreRefused) {
  auto t = Task("h", "0 * * * *");
  t.message = MessageExtras{"", {{"team", "billing"}}};
  EXPECT_FALSE(CheckTask(t));
  for (const char* name : {"ce_id", "ce_type", "CE_Source", "content-type", "Content-Type"}) {
    t.message = MessageExtras{"", {{"team", "billing"}, {name, "forged"}}};
    auto p = CheckTask(t);
    ASSERT_TRUE(p) << name;
    EXPECT_EQ(p->reason, "InvalidTarget");
    EXPECT_EQ(p->field, "spec.target.headers");
    EXPECT_EQ(p->item, name);
    EXPECT_THAT(p->Message(), ::testing::HasSubstr(std::string("spec.target.headers: \"") + name + "\" is reserved"));
  }
}

class SchedulingRecorder : public Recorder {
 public:
  std::vector<std::string> scheduled;
  void OnScheduled(const TaskDefinition& t, std::optional<Instant> next) override {
    scheduled.push_back(t.name + "@" + (next ? FormatRfc3339(*next) : "none"));
  }
};

TEST_F(DispatcherTest, TasksHeldBeforeStartAreReportedWhenScheduled) {
  SchedulingRecorder obs;
  Dispatcher d(clock, sink, &obs);
  auto held = d.Upsert(Task("held", "0 * * * *"));
  ASSERT_TRUE(held.ok());
  EXPECT_FALSE(held->next_fire) << "not scheduled before Start()";
  EXPECT_TRUE(obs.scheduled.empty());
  ASSERT_TRUE(d.Start().ok());
  EXPECT_THAT(obs.scheduled, ElementsAre("held@2026-01-01T01:00:00Z"));
}

TEST(TaskProblems, HandsOverTheScheduleItParsed) {
  TaskDefinition t = Task("z", "30 9 * * 1-5");
  t.time_zone = "Europe/Berlin";
  std::optional<Schedule> parsed;
  EXPECT_TRUE(TaskProblems(t, &parsed).empty());
  ASSERT_TRUE(parsed.has_value());
  auto direct = Schedule::Parse(t.schedule, t.time_zone);
  ASSERT_TRUE(direct.ok());
  const Instant from = T("2026-03-27T12:00:00Z");  // across the spring-forward weekend
  EXPECT_EQ(parsed->Next(from), direct->Next(from));
  EXPECT_EQ(parsed->Next(from), T("2026-03-30T07:30:00Z"));
  // A task with a problem hands over nothing, even when the schedule itself parses.
  t.shards = 0;
  std::optional<Schedule> refused;
  EXPECT_FALSE(TaskProblems(t, &refused).empty());
  EXPECT_FALSE(refused.has_value());
}

}  // namespace
}  // namespace cronlane::dispatcher

namespace cronlane::dispatcher {
namespace {

TEST(CheckpointRecords, TypedRecordsAreKeptApartAndPlainValuesStillParse) {
  Checkpoints cps;
  EXPECT_TRUE(ApplyCheckpointRecord(cps, CheckpointRecord("a", "1767225600")));
  EXPECT_TRUE(ApplyCheckpointRecord(cps, CheckpointRecord("a/run-now", "1767225601 Fired tok-1")));
  EXPECT_EQ(cps.fired.at("a"), 1767225600) << "the record does not touch the task's checkpoint";
  EXPECT_EQ(cps.records.at("a/run-now"), "1767225601 Fired tok-1");
  EXPECT_FALSE(ApplyCheckpointRecord(cps, CheckpointRecord("b", "1767225601 Fired tok-1")))
      << "a plain key needs a number";
  EXPECT_TRUE(ApplyCheckpointRecord(cps, CheckpointRecord("a/run-now", "")));
  EXPECT_TRUE(cps.records.empty()) << "a tombstone deletes the record";
  EXPECT_EQ(cps.fired.size(), 1U) << "and not the checkpoint";
  EXPECT_EQ(CheckpointOwner("a/run-now"), "a");
  EXPECT_EQ(CheckpointOwner("a"), "a");
}

TEST(OccurrenceIds, ManualIdsNeverLookLikeScheduledOnesAndParseBack) {
  EXPECT_EQ(ManualOccurrenceId("uid", "tok", 0, 1), "uid:run-now:tok");
  EXPECT_EQ(ManualOccurrenceId("uid", "tok", 2, 3), "uid:run-now:tok:2");
  auto m = ParseOccurrenceId("uid:run-now:tok:2");
  EXPECT_EQ(m.task_id, "uid");
  EXPECT_EQ(m.token, "tok");
  EXPECT_EQ(m.base, "uid:run-now:tok");
  auto s = ParseOccurrenceId("uid:1767225600:1");
  EXPECT_EQ(s.task_id, "uid");
  EXPECT_EQ(s.token, "");
  EXPECT_EQ(s.base, "uid:1767225600");
  // Not an id cronlane writes (a result from elsewhere): the whole of it is the task.
  auto bare = ParseOccurrenceId("uid");
  EXPECT_EQ(bare.task_id, "uid");
  EXPECT_EQ(bare.base, "uid");
  auto empty_rest = ParseOccurrenceId("uid:");
  EXPECT_EQ(empty_rest.task_id, "uid");
  EXPECT_EQ(empty_rest.base, "uid:");
  EXPECT_TRUE(ValidRunToken("20261201T120000Z-a1b2c3"));
  EXPECT_TRUE(ValidRunToken("1"));
  for (const char* bad : {"", "-x", "a:b", "a b", "a/b", "ä"}) EXPECT_FALSE(ValidRunToken(bad)) << bad;
  EXPECT_FALSE(ValidRunToken(std::string(64, 'a')));
}

// Backfills (slice 8): every occurrence of the range once, across restarts, behind
// live occurrences, at their rate.
class BackfillTest : public ::testing::Test {
 protected:
  BackfillTest() { task.created = T("2026-01-01T00:00:00Z"); }
  // The backfill occurrences committed so far, in commit order.
  std::vector<std::string> BackfillIds() const {
    std::vector<std::string> out;
    for (const auto& id : sink.Ids()) {
      if (id.find(":bf-") != std::string::npos) out.push_back(id);
    }
    return out;
  }
  FakeClock clock{std::chrono::system_clock::time_point(T("2026-01-01T00:00:00Z"))};
  FakeSink sink;
  Recorder rec;
  TaskDefinition task = Task("b", "0 * * * * *");
  // Twelve minutes before the task existed; `to` past its creation is clipped to it.
  BackfillDefinition bf{"bf1", "uid-b", "team/b-fill", T("2025-12-31T23:48:00Z"), T("2026-01-01T01:00:00Z"), 5, false};
};

TEST_F(BackfillTest, EveryOccurrenceOnceAcrossARestartFromItsRecord) {
  {
    Dispatcher d(clock, sink, &rec);
    ASSERT_TRUE(d.Start().ok());
    EXPECT_EQ(d.UpsertBackfill(bf).status().code(), StatusCode::kNotFound) << "its task is not scheduled yet";
    ASSERT_TRUE(d.Upsert(task).ok());
    auto state = d.UpsertBackfill(bf);
    ASSERT_TRUE(state.ok()) << state.status().ToString();
    EXPECT_EQ(state->total, 12) << "from 23:48 up to the task's creation, not to `to`";
    ASSERT_TRUE(d.FireOnce().ok());
    EXPECT_EQ(BackfillIds().size(), 5U) << "the rate's burst";
    EXPECT_EQ(sink.records["uid-b/backfill/bf1"], "1767225120 5 12") << "cursor 23:52, 5 of 12";
    sink.fail_next = 1;
    clock.Advance(1s);
    EXPECT_FALSE(d.FireOnce().ok());
    EXPECT_EQ(BackfillIds().size(), 5U);
    clock.Advance(1s);
    ASSERT_TRUE(d.FireOnce().ok());
    EXPECT_EQ(BackfillIds().size(), 10U) << "the failed batch's instants, once";
  }
  // A new leader from the committed record: the last two, never the first ten again.
  Dispatcher d(clock, sink, &rec);
  ASSERT_TRUE(d.Start().ok());
  ASSERT_TRUE(d.Upsert(task).ok());
  auto state = d.UpsertBackfill(bf);
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->fired, 10);
  clock.Advance(1s);
  ASSERT_TRUE(d.FireOnce().ok());
  const auto ids = BackfillIds();
  ASSERT_EQ(ids.size(), 12U);
  EXPECT_EQ(std::set<std::string>(ids.begin(), ids.end()).size(), 12U) << "each once";
  EXPECT_EQ(ids.front(), "uid-b:bf-bf1:1767224880");
  EXPECT_EQ(ids.back(), "uid-b:bf-bf1:1767225540");
  const OutMessage& first = sink.committed.front();
  EXPECT_EQ(HeaderOf(first, "ce_trigger"), "backfill");
  EXPECT_EQ(HeaderOf(first, "ce_backfill"), "team/b-fill");
  EXPECT_EQ(HeaderOf(first, "ce_time"), "2025-12-31T23:48:00Z");
  EXPECT_TRUE(d.UpsertBackfill(bf)->done());
  EXPECT_EQ(rec.backfills.back(), "team/b-fill 12/12");
  EXPECT_EQ(sink.checkpoints.count("uid-b"), 0U) << "the live schedule's checkpoint is not touched";
  EXPECT_EQ(d.Stats().backfilled, 2U);
  ASSERT_TRUE(d.FireOnce().ok());
  EXPECT_EQ(BackfillIds().size(), 12U) << "done";
  // The ids parse back to their task and backfill.
  auto parsed = ParseOccurrenceId("uid-b:bf-bf1:1767224880:3");
  EXPECT_EQ(parsed.task_id, "uid-b");
  EXPECT_EQ(parsed.backfill, "bf1");
  EXPECT_EQ(parsed.base, "uid-b:bf-bf1:1767224880");
}

TEST_F(BackfillTest, LiveOccurrencesGoFirstInEveryBatch) {
  DispatcherOptions o;
  o.max_batch_occurrences = 3;
  Dispatcher d(clock, sink, &rec, o);
  ASSERT_TRUE(d.Start().ok());
  ASSERT_TRUE(d.Upsert(task).ok());
  bf.per_second = 100;
  ASSERT_TRUE(d.UpsertBackfill(bf).ok());
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(d.Upsert(Task("live" + std::to_string(i), "* * * * * *")).ok());
  clock.Advance(1s);
  ASSERT_EQ(d.CollectDue(std::chrono::floor<std::chrono::seconds>(clock.Now())), 5U);
  ASSERT_TRUE(d.FireOnce().ok());
  EXPECT_EQ(sink.Ids().size(), 3U);
  EXPECT_TRUE(BackfillIds().empty()) << "live occurrences wait: no backfill";
  ASSERT_TRUE(d.FireOnce().ok());
  EXPECT_EQ(sink.Ids().size(), 6U);
  EXPECT_EQ(BackfillIds().size(), 1U) << "the room the last two live ones left";
}

TEST_F(BackfillTest, RateAndNewestFirst) {
  Dispatcher d(clock, sink, &rec);
  ASSERT_TRUE(d.Start().ok());
  ASSERT_TRUE(d.Upsert(task).ok());
  bf.per_second = 2;
  bf.newest_first = true;
  ASSERT_TRUE(d.UpsertBackfill(bf).ok());
  ASSERT_TRUE(d.FireOnce().ok());
  ASSERT_TRUE(d.FireOnce().ok());
  EXPECT_THAT(BackfillIds(), ElementsAre("uid-b:bf-bf1:1767225540", "uid-b:bf-bf1:1767225480")) << "2 a second";
  clock.Advance(1s);
  ASSERT_TRUE(d.FireOnce().ok());
  EXPECT_THAT(BackfillIds(), ElementsAre("uid-b:bf-bf1:1767225540", "uid-b:bf-bf1:1767225480",
                                         "uid-b:bf-bf1:1767225420", "uid-b:bf-bf1:1767225360"));
}

TEST_F(BackfillTest, ForgettingTheTaskOrTheBackfillTombstonesItsRecord) {
  {
    Dispatcher d(clock, sink, &rec);
    ASSERT_TRUE(d.Start().ok());
    ASSERT_TRUE(d.Upsert(task).ok());
    ASSERT_TRUE(d.UpsertBackfill(bf).ok());
    BackfillDefinition other = bf;
    other.id = "bf2";
    ASSERT_TRUE(d.UpsertBackfill(other).ok());
    ASSERT_TRUE(d.FireOnce().ok());
    ASSERT_EQ(sink.records.size(), 2U);
    d.ForgetBackfill("bf2");
    ASSERT_TRUE(d.FireOnce().ok());
    EXPECT_EQ(sink.records.count("uid-b/backfill/bf2"), 0U);
    EXPECT_EQ(sink.records.count("uid-b/backfill/bf1"), 1U);
  }
  // A new leader: bf1's record was restored but never claimed; forgetting the task
  // tombstones it too.
  Dispatcher d(clock, sink, &rec);
  ASSERT_TRUE(d.Start().ok());
  EXPECT_THAT(d.UnclaimedCheckpoints(), ElementsAre("uid-b")) << "the operator forgets it if the task is gone";
  d.Forget("uid-b");
  ASSERT_TRUE(d.FireOnce().ok());
  EXPECT_TRUE(sink.records.empty());
  EXPECT_THAT(sink.tombstones, ::testing::Contains("uid-b/backfill/bf1"));
}

TEST_F(BackfillTest, BeforeStartItIsRefusedSoItsProgressComesFromTheRecord) {
  {
    Dispatcher d(clock, sink, &rec);
    ASSERT_TRUE(d.Start().ok());
    ASSERT_TRUE(d.Upsert(task).ok());
    ASSERT_TRUE(d.UpsertBackfill(bf).ok());
    ASSERT_TRUE(d.FireOnce().ok());  // 5 of 12
  }
  Dispatcher d(clock, sink, &rec);
  ASSERT_TRUE(d.Upsert(task).ok());  // a new term upserts tasks before Start
  EXPECT_EQ(d.UpsertBackfill(bf).status().code(), StatusCode::kUnavailable)
      << "before its record is restored, a state would say 0 fired";
  ASSERT_TRUE(d.Start().ok());
  auto state = d.UpsertBackfill(bf);
  ASSERT_TRUE(state.ok());
  EXPECT_EQ(state->fired, 5);
  EXPECT_EQ(state->total, 12);
}

TEST_F(BackfillTest, ARangeThatLosesItsInstantsCompletesAndSaysSo) {
  Dispatcher d(clock, sink, &rec);
  ASSERT_TRUE(d.Start().ok());
  ASSERT_TRUE(d.Upsert(task).ok());
  ASSERT_TRUE(d.UpsertBackfill(bf).ok());
  ASSERT_TRUE(d.FireOnce().ok());
  ASSERT_THAT(rec.backfills, ElementsAre("team/b-fill 5/12"));
  // The task's schedule changes: no more of its instants fall in the range.
  TaskDefinition yearly = task;
  yearly.schedule = "0 0 0 1 1 *";
  ASSERT_TRUE(d.Upsert(yearly).ok());
  clock.Advance(1s);
  ASSERT_TRUE(d.FireOnce().ok());
  EXPECT_THAT(rec.backfills, ElementsAre("team/b-fill 5/12", "team/b-fill 5/5"))
      << "done without a commit, and the observer hears it";
}

TEST_F(BackfillTest, AnUnclaimedRecordIsListedAndForgettingTheBackfillTombstonesIt) {
  {
    Dispatcher d(clock, sink, &rec);
    ASSERT_TRUE(d.Start().ok());
    ASSERT_TRUE(d.Upsert(task).ok());
    ASSERT_TRUE(d.UpsertBackfill(bf).ok());
    ASSERT_TRUE(d.FireOnce().ok());
    ASSERT_EQ(sink.records.count("uid-b/backfill/bf1"), 1U);
  }
  // A new leader whose operator never hands bf1 over (it is complete, or was deleted
  // while no leader ran): the record is listed until it is claimed or forgotten.
  Dispatcher d(clock, sink, &rec);
  ASSERT_TRUE(d.Start().ok());
  ASSERT_TRUE(d.Upsert(task).ok());
  EXPECT_THAT(d.UnclaimedBackfills(), ElementsAre("bf1"));
  d.ForgetBackfill("bf-unknown");
  EXPECT_THAT(d.UnclaimedBackfills(), ElementsAre("bf1")) << "another id leaves it";
  d.ForgetBackfill("bf1");
  EXPECT_TRUE(d.UnclaimedBackfills().empty());
  ASSERT_TRUE(d.FireOnce().ok());
  EXPECT_EQ(sink.records.count("uid-b/backfill/bf1"), 0U);
  EXPECT_THAT(sink.tombstones, ::testing::Contains("uid-b/backfill/bf1"));
}

TEST_F(BackfillTest, AMissingTopicHoldsItBackWithoutLosingInstants) {
  Dispatcher d(clock, sink, &rec);
  ASSERT_TRUE(d.Start().ok());
  ASSERT_TRUE(d.Upsert(task).ok());
  ASSERT_TRUE(d.UpsertBackfill(bf).ok());
  sink.missing = {"jobs"};
  ASSERT_TRUE(d.FireOnce().ok());
  EXPECT_TRUE(BackfillIds().empty());
  EXPECT_TRUE(sink.records.empty());
  sink.missing.clear();
  clock.Advance(1s);
  ASSERT_TRUE(d.FireOnce().ok());
  ASSERT_FALSE(BackfillIds().empty()) << "tried again";
  EXPECT_EQ(BackfillIds().front(), "uid-b:bf-bf1:1767224880") << "from the first instant";
}

TEST_F(BackfillTest, BadRangesAreRefused) {
  Dispatcher d(clock, sink, &rec);
  ASSERT_TRUE(d.Start().ok());
  ASSERT_TRUE(d.Upsert(task).ok());
  BackfillDefinition empty = bf;
  empty.to = empty.from;
  EXPECT_EQ(d.UpsertBackfill(empty).status().code(), StatusCode::kInvalidArgument);
  auto every_second = Task("s", "* * * * * *");
  every_second.created = T("2026-01-01T00:00:00Z");
  ASSERT_TRUE(d.Upsert(every_second).ok());
  BackfillDefinition big{"bf3", "uid-s", "team/big", T("2025-12-30T00:00:00Z"), T("2026-01-01T00:00:00Z"),
                         10,    false};  // two days of seconds
  auto r = d.UpsertBackfill(big);
  EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), ::testing::StartsWith("TooManyOccurrences: "));
}

class RunNowTest : public ::testing::Test {
 protected:
  FakeClock clock{std::chrono::system_clock::time_point(T("2026-01-01T00:00:00Z"))};
  FakeSink sink;
  Recorder rec;
  TaskDefinition yearly = Task("r", "0 0 0 1 1 *");
};

TEST_F(RunNowTest, FiresOnceWithItsOwnIdAndTriggerHeader) {
  Dispatcher d(clock, sink, &rec);
  ASSERT_TRUE(d.Start().ok());
  ASSERT_TRUE(d.Upsert(yearly).ok());
  EXPECT_EQ(d.RequestRun("uid-unknown", {"tok-1"}).code(), StatusCode::kNotFound);
  EXPECT_EQ(d.RequestRun("uid-r", {"bad token"}).code(), StatusCode::kInvalidArgument);
  ASSERT_TRUE(d.RequestRun("uid-r", {"tok-1"}).ok());
  ASSERT_TRUE(d.RequestRun("uid-r", {"tok-1"}).ok()) << "every reconcile repeats it";
  ASSERT_TRUE(d.FireOnce().ok());
  ASSERT_THAT(sink.Ids(), ElementsAre("uid-r:run-now:tok-1"));
  EXPECT_EQ(HeaderOf(sink.committed[0], "ce_trigger"), "manual");
  EXPECT_EQ(HeaderOf(sink.committed[0], "ce_time"), "2026-01-01T00:00:00Z") << "the moment it was handled";
  EXPECT_EQ(sink.records["uid-r/run-now"], "1767225600 Fired tok-1");
  EXPECT_EQ(sink.checkpoints.count("uid-r"), 0U) << "the schedule's checkpoint is not touched";
  EXPECT_THAT(rec.run_now, ElementsAre("r:tok-1@2026-01-01T00:00:00Z:Fired"));
  EXPECT_TRUE(rec.fired.empty()) << "not a scheduled occurrence";
  // The same token again (a relist, a resync): nothing.
  RunFor(clock, d, 3s);
  ASSERT_TRUE(d.RequestRun("uid-r", {"tok-1"}).ok());
  ASSERT_TRUE(d.FireOnce().ok());
  EXPECT_EQ(sink.Ids().size(), 1U);
  // A new token fires again.
  ASSERT_TRUE(d.RequestRun("uid-r", {"tok-2"}).ok());
  ASSERT_TRUE(d.FireOnce().ok());
  EXPECT_THAT(sink.Ids(), ElementsAre("uid-r:run-now:tok-1", "uid-r:run-now:tok-2"));
  EXPECT_EQ(sink.records["uid-r/run-now"], "1767225603 Fired tok-2");
  EXPECT_EQ(d.Stats().fired, 2U);
  // A scheduled message carries no trigger attribute.
  auto every = Task("e", "* * * * * *");
  ASSERT_TRUE(d.Upsert(every).ok());
  RunFor(clock, d, 1s);
  ASSERT_EQ(sink.committed.size(), 3U);
  EXPECT_EQ(HeaderOf(sink.committed[2], "ce_trigger"), "");
}

TEST_F(RunNowTest, ANewLeaderFromTheCommittedRecordsDoesNotFireItAgain) {
  {
    Dispatcher d(clock, sink, &rec);
    ASSERT_TRUE(d.Start().ok());
    ASSERT_TRUE(d.Upsert(yearly).ok());
    ASSERT_TRUE(d.RequestRun("uid-r", {"tok-1"}).ok());
    ASSERT_TRUE(d.FireOnce().ok());
  }
  ASSERT_EQ(sink.Ids().size(), 1U);
  // The next leader: tasks and their annotations arrive before Start().
  Dispatcher d2(clock, sink, &rec);
  ASSERT_TRUE(d2.Upsert(yearly).ok());
  ASSERT_TRUE(d2.RequestRun("uid-r", {"tok-1"}).ok());
  ASSERT_TRUE(d2.Start().ok());
  ASSERT_TRUE(d2.FireOnce().ok());
  EXPECT_EQ(sink.Ids().size(), 1U) << "tok-1 was handled by the previous leader";
  ASSERT_TRUE(d2.RequestRun("uid-r", {"tok-2"}).ok());
  ASSERT_TRUE(d2.FireOnce().ok());
  EXPECT_THAT(sink.Ids(), ElementsAre("uid-r:run-now:tok-1", "uid-r:run-now:tok-2"));
}

TEST_F(RunNowTest, AFailedCommitLeavesNoRecordSoItFiresOnceLater) {
  {
    Dispatcher d(clock, sink, &rec);
    ASSERT_TRUE(d.Start().ok());
    ASSERT_TRUE(d.Upsert(yearly).ok());
    ASSERT_TRUE(d.RequestRun("uid-r", {"tok-1"}).ok());
    sink.fail_next = 1;
    EXPECT_FALSE(d.FireOnce().ok());
    ASSERT_TRUE(d.FireOnce().ok()) << "retried";
    ASSERT_TRUE(d.FireOnce().ok());
  }
  EXPECT_THAT(sink.Ids(), ElementsAre("uid-r:run-now:tok-1"));
  // A leader that dies after an aborted commit: the next one fires the token.
  sink.records.clear();
  sink.committed.clear();
  {
    Dispatcher d(clock, sink, &rec);
    ASSERT_TRUE(d.Upsert(yearly).ok());
    ASSERT_TRUE(d.RequestRun("uid-r", {"tok-9"}).ok());
    ASSERT_TRUE(d.Start().ok());
    sink.fail_next = 1;
    EXPECT_FALSE(d.FireOnce().ok());
  }
  Dispatcher d2(clock, sink, &rec);
  ASSERT_TRUE(d2.Upsert(yearly).ok());
  ASSERT_TRUE(d2.RequestRun("uid-r", {"tok-9"}).ok());
  ASSERT_TRUE(d2.Start().ok());
  ASSERT_TRUE(d2.FireOnce().ok());
  EXPECT_THAT(sink.Ids(), ElementsAre("uid-r:run-now:tok-9"));
}

TEST_F(RunNowTest, FiresOnASuspendedTask) {
  Dispatcher d(clock, sink, &rec);
  ASSERT_TRUE(d.Start().ok());
  auto t = Task("s", "* * * * * *");
  t.suspend = true;
  ASSERT_TRUE(d.Upsert(t).ok());
  ASSERT_TRUE(d.RequestRun("uid-s", {"tok"}).ok());
  RunFor(clock, d, 3s);
  EXPECT_THAT(sink.Ids(), ElementsAre("uid-s:run-now:tok")) << "the schedule stays suspended";
  EXPECT_EQ(sink.checkpoints.count("uid-s"), 0U);
}

TEST_F(RunNowTest, ForbidSkipsWhileRunningUnlessForcedAndAManualRunBlocksTheSchedule) {
  Dispatcher d(clock, sink, &rec);
  ASSERT_TRUE(d.Start().ok());
  auto t = Task("f", "*/10 * * * * *");
  t.concurrency = ConcurrencyPolicy::kForbid;
  ASSERT_TRUE(d.Upsert(t).ok());
  RunFor(clock, d, 10s);  // :10 fires and runs
  ASSERT_THAT(sink.Ids(), ElementsAre("uid-f:1767225610"));
  ASSERT_TRUE(d.RequestRun("uid-f", {"tok-1"}).ok());
  ASSERT_TRUE(d.FireOnce().ok());
  EXPECT_EQ(sink.Ids().size(), 1U) << "Forbid: not fired while :10 runs";
  EXPECT_EQ(sink.records["uid-f/run-now"], "1767225610 Skipped tok-1") << "but handled: it never fires later";
  ASSERT_TRUE(d.RequestRun("uid-f", {"tok-2", true}).ok());
  ASSERT_TRUE(d.FireOnce().ok());
  EXPECT_THAT(sink.Ids(), ElementsAre("uid-f:1767225610", "uid-f:run-now:tok-2")) << "forced";
  EXPECT_THAT(rec.run_now, ElementsAre("f:tok-1@2026-01-01T00:00:10Z:Skipped", "f:tok-2@2026-01-01T00:00:10Z:Fired"));
  // :10 finishes, the forced run still runs: :20 is skipped.
  d.OnFinished("uid-f", T("2026-01-01T00:00:10Z"));
  RunFor(clock, d, 10s);
  EXPECT_EQ(sink.Ids().size(), 2U);
  EXPECT_THAT(rec.skipped, ElementsAre("f:ConcurrencyForbidden:1"));
  d.OnManualFinished("uid-f", "tok-1");  // not the one that runs
  RunFor(clock, d, 10s);
  EXPECT_EQ(sink.Ids().size(), 2U);
  d.OnManualFinished("uid-f", "tok-2");
  RunFor(clock, d, 10s);  // :40 fires
  EXPECT_THAT(sink.Ids(), ElementsAre("uid-f:1767225610", "uid-f:run-now:tok-2", "uid-f:1767225640"));
}

TEST_F(RunNowTest, HeldForAMissingTopicItIsNotSkippedByTheCatchUpPolicy) {
  DispatcherOptions o;
  o.missing_topic_retry = 5s;
  Dispatcher d(clock, sink, &rec, o);
  ASSERT_TRUE(d.Start().ok());
  auto t = yearly;
  t.catch_up = CatchUpPolicy::kNone;
  ASSERT_TRUE(d.Upsert(t).ok());
  sink.missing = {"jobs"};
  ASSERT_TRUE(d.RequestRun("uid-r", {"tok"}).ok());
  ASSERT_TRUE(d.FireOnce().ok());
  EXPECT_TRUE(sink.Ids().empty()) << "held";
  sink.missing.clear();
  RunFor(clock, d, 10s);
  EXPECT_THAT(sink.Ids(), ElementsAre("uid-r:run-now:tok")) << "late, but no catch-up policy applies to it";
  EXPECT_TRUE(rec.skipped.empty());
}

TEST_F(RunNowTest, ForgettingTheTaskTombstonesItsRecordAndUnclaimedRecordsAreReported) {
  {
    Dispatcher d(clock, sink, &rec);
    ASSERT_TRUE(d.Start().ok());
    ASSERT_TRUE(d.Upsert(yearly).ok());
    ASSERT_TRUE(d.RequestRun("uid-r", {"tok"}).ok());
    ASSERT_TRUE(d.FireOnce().ok());
  }
  ASSERT_EQ(sink.records.count("uid-r/run-now"), 1U);
  // Deleted while no leader ran: the next leader finds a record and no checkpoint.
  Dispatcher d(clock, sink, &rec);
  ASSERT_TRUE(d.Start().ok());
  EXPECT_THAT(d.UnclaimedCheckpoints(), ElementsAre("uid-r"));
  d.Forget("uid-r");
  ASSERT_TRUE(d.FireOnce().ok());
  EXPECT_TRUE(sink.records.empty());
  EXPECT_THAT(sink.tombstones, ::testing::UnorderedElementsAre("uid-r", "uid-r/run-now"));
  // A live task forgotten after a run: both go as well.
  ASSERT_TRUE(d.Upsert(Task("x", "0 0 0 1 1 *")).ok());
  ASSERT_TRUE(d.RequestRun("uid-x", {"tok"}).ok());
  ASSERT_TRUE(d.FireOnce().ok());
  ASSERT_EQ(sink.records.count("uid-x/run-now"), 1U);
  d.Forget("uid-x");
  ASSERT_TRUE(d.FireOnce().ok());
  EXPECT_TRUE(sink.records.empty());
}

TEST(ResultsFollower, BackfillResultsDoNotFinishAScheduledOccurrence) {
  FakeClock clock{std::chrono::system_clock::time_point(T("2026-01-01T00:00:00Z"))};
  std::vector<std::string> finished, results;
  ResultsFollower f(
      {}, clock, [&](const std::string& id, Instant, const std::string&) { finished.push_back(id); },
      [&](const std::string& id, const RunResult& r) { results.push_back(Describe(id, r)); });
  f.Handle(
      ResultRecord({"uid-b:bf-bf1:1767224880", "team/b", "2025-12-31T23:48:00Z", RunOutcome::kSucceeded, 1, 10, 0, 1}));
  EXPECT_TRUE(finished.empty()) << "an occurrence of the past finishes no live one";
  EXPECT_THAT(results, ElementsAre(::testing::HasSubstr("Succeeded Backfill 2025-12-31T23:48:00Z")));
}

TEST(ResultsFollower, AManualResultDoesNotFinishAScheduledOccurrence) {
  FakeClock clock{std::chrono::system_clock::time_point(T("2026-01-01T00:00:00Z"))};
  std::vector<std::string> finished;
  ResultsFollower f(
      {}, clock,
      [&](const std::string& id, Instant at, const std::string& token) {
        finished.push_back(id + "@" + FormatRfc3339(at) + (token.empty() ? "" : " run-now " + token));
      },
      nullptr);
  f.Handle(
      ResultRecord({"uid-m:run-now:tok:0", "team/m", "2026-01-01T00:05:00Z", RunOutcome::kSucceeded, 1, 10, 0, 2}));
  EXPECT_TRUE(finished.empty()) << "one of two shards";
  f.Handle(
      ResultRecord({"uid-m:run-now:tok:1", "team/m", "2026-01-01T00:05:00Z", RunOutcome::kSucceeded, 1, 10, 1, 2}));
  EXPECT_THAT(finished, ElementsAre("uid-m@2026-01-01T00:05:00Z run-now tok"));
  // Through the hub, and to a late subscriber too.
  ResultsHub hub({}, clock);
  hub.Handle(
      ResultRecord({"uid-m:run-now:tok", "team/m", "2026-01-01T00:05:00Z", RunOutcome::kSucceeded, 1, 10, 0, 1}));
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> got;
  auto source = hub.Subscribe([](const std::string&) { return true; },
                              [&](const std::string& id, Instant, const std::string& token) {
                                std::lock_guard lock(mu);
                                got.push_back(id + " " + token);
                                cv.notify_all();
                              },
                              nullptr);
  CancelToken cancel;
  std::thread t([&] { source->Run(cancel); });
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, 10s, [&] { return !got.empty(); }));
  }
  cancel.Cancel();
  t.join();
  EXPECT_THAT(got, ElementsAre("uid-m tok"));
}

TEST(FireTimes, ParseSpecTimeReadsOffsetsAndLocalTimesInTheZone) {
  EXPECT_EQ(*ParseSpecTime("2026-12-24T18:00:00Z", nullptr), T("2026-12-24T18:00:00Z"));
  EXPECT_EQ(*ParseSpecTime("2026-12-24T18:00:00+01:00", nullptr), T("2026-12-24T17:00:00Z"));
  EXPECT_EQ(*ParseSpecTime("2026-12-24T18:00:00", nullptr), T("2026-12-24T18:00:00Z")) << "no zone: UTC";
  const Zone* berlin = *LocateZone("Europe/Berlin");
  EXPECT_EQ(*ParseSpecTime("2026-12-24T18:00:00", berlin), T("2026-12-24T17:00:00Z")) << "CET";
  EXPECT_EQ(*ParseSpecTime("2026-07-01T12:00:00", berlin), T("2026-07-01T10:00:00Z")) << "CEST";
  EXPECT_EQ(*ParseSpecTime("2026-12-24T18:00:00Z", berlin), T("2026-12-24T18:00:00Z")) << "an offset wins";
  auto gap = ParseSpecTime("2027-03-28T02:30:00", berlin);
  ASSERT_FALSE(gap.ok());
  EXPECT_THAT(gap.status().message(), ::testing::HasSubstr("does not exist in Europe/Berlin"));
  EXPECT_EQ(*ParseSpecTime("2026-10-25T02:30:00", berlin), T("2026-10-25T00:30:00Z"))
      << "a repeated local time is its first occurrence (still CEST)";
  EXPECT_FALSE(ParseSpecTime("tomorrow", nullptr).ok());
}

TEST(FireTimes, RunAtFiresOnceAndOnlyOnce) {
  FireSpec w{T("2026-12-24T18:00:00Z"), std::nullopt, std::nullopt};
  Schedule unused;
  FireTimes f(unused, &w);
  EXPECT_EQ(f.Next(T("2026-01-01T00:00:00Z")), T("2026-12-24T18:00:00Z"));
  EXPECT_EQ(f.Next(T("2026-12-24T18:00:00Z")), std::nullopt);
  EXPECT_EQ(f.Prev(T("2026-12-24T18:00:00Z")), T("2026-12-24T18:00:00Z"));
  EXPECT_EQ(f.Prev(T("2026-12-24T17:59:59Z")), std::nullopt);
}

TEST(FireTimes, BoundedNextAndPrevAgreeWithBruteForce) {
  auto s = *Schedule::Parse("*/7 * * * *", "America/New_York");
  const Instant start = T("2026-11-01T05:03:00Z"), end = T("2026-11-01T07:31:00Z");  // across the fall-back
  FireSpec w{std::nullopt, start, end};
  FireTimes f(s, &w);
  std::vector<Instant> expect;  // the schedule's own times in [start, end)
  for (auto t = s.Next(start - 1s); t && *t < end; t = s.Next(*t)) expect.push_back(*t);
  ASSERT_GT(expect.size(), 10U);
  std::vector<Instant> got;
  for (auto t = f.Next(T("2026-10-01T00:00:00Z")); t; t = f.Next(*t)) got.push_back(*t);
  EXPECT_EQ(got, expect);
  for (Instant at = start - 600s; at < end + 600s; at += 97s) {
    std::optional<Instant> want;
    for (Instant e : expect) {
      if (e <= at) want = e;
    }
    EXPECT_EQ(f.Prev(at), want) << FormatRfc3339(at);
  }
  FireSpec only_start{std::nullopt, start, std::nullopt};
  EXPECT_EQ(FireTimes(s, &only_start).Next(T("2026-10-01T00:00:00Z")), expect.front());
  EXPECT_EQ(FireTimes(s, nullptr).Next(start), s.Next(start)) << "no window: the schedule";
}

// One-shot, bounded and several-schedule tasks: the same world as run now.
class FireTimesTest : public RunNowTest {};

TaskDefinition OneShot(const std::string& name, const std::string& run_at) {
  TaskDefinition t = Task(name, "");
  t.bounds = TimeBounds{run_at, "", ""};
  return t;
}

TEST_F(FireTimesTest, OneShotFiresOnceCompletesAndStaysCompleteAfterRestart) {
  {
    Dispatcher d(clock, sink, &rec);
    ASSERT_TRUE(d.Start().ok());
    auto t = OneShot("once", "2026-01-01T00:00:05Z");
    t.created = T("2025-12-31T23:00:00Z");
    auto state = d.Upsert(t);
    ASSERT_TRUE(state.ok() && !state->problem) << (state->problem ? state->problem->Message() : "");
    EXPECT_EQ(state->next_fire, T("2026-01-01T00:00:05Z"));
    EXPECT_FALSE(state->complete);
    RunFor(clock, d, 10s);
    EXPECT_THAT(sink.Ids(), ElementsAre("uid-once:1767225605"));
    EXPECT_THAT(rec.completed, ElementsAre("once@2026-01-01T00:00:05Z"));
    EXPECT_TRUE(d.Upsert(t)->complete);
    EXPECT_EQ(d.Upsert(t)->next_fire, std::nullopt);
  }
  // The next leader restores the checkpoint: nothing fires again, and it is complete.
  rec.completed.clear();
  Dispatcher d2(clock, sink, &rec);
  auto t = OneShot("once", "2026-01-01T00:00:05Z");
  t.created = T("2025-12-31T23:00:00Z");
  ASSERT_TRUE(d2.Upsert(t).ok());
  ASSERT_TRUE(d2.Start().ok());
  RunFor(clock, d2, 10s);
  EXPECT_EQ(sink.Ids().size(), 1U);
  EXPECT_THAT(rec.completed, ElementsAre("once@2026-01-01T00:00:05Z"));
}

TEST_F(FireTimesTest, APastRunAtFiresUnderLatestAndNotUnderNone) {
  Dispatcher d(clock, sink, &rec);
  ASSERT_TRUE(d.Start().ok());
  auto latest = OneShot("latest", "2025-12-31T23:30:00Z");
  latest.created = T("2025-12-31T23:00:00Z");
  auto none = OneShot("none", "2025-12-31T23:30:00Z");
  none.created = T("2025-12-31T23:00:00Z");
  none.catch_up = CatchUpPolicy::kNone;
  auto future = OneShot("created-after", "2025-12-31T23:30:00Z");
  future.created = T("2026-01-01T00:00:00Z");  // created after its runAt: still a missed one
  ASSERT_TRUE(d.Upsert(latest).ok());
  ASSERT_TRUE(d.Upsert(none).ok());
  ASSERT_TRUE(d.Upsert(future).ok());
  RunFor(clock, d, 2s);
  EXPECT_THAT(sink.Ids(), ::testing::UnorderedElementsAre("uid-latest:1767223800", "uid-created-after:1767223800"));
  EXPECT_THAT(rec.skipped, ElementsAre("none:MissedSchedule:1"));
  EXPECT_THAT(rec.completed, ::testing::UnorderedElementsAre("none never fired", "latest@2025-12-31T23:30:00Z",
                                                             "created-after@2025-12-31T23:30:00Z"));
}

TEST_F(FireTimesTest, ABoundedScheduleFiresOnlyInsideItsWindowThenCompletes) {
  Dispatcher d(clock, sink, &rec);
  ASSERT_TRUE(d.Start().ok());
  auto t = Task("b", "* * * * * *");
  t.bounds = TimeBounds{"", "2026-01-01T00:00:03Z", "2026-01-01T00:00:06Z"};
  ASSERT_TRUE(d.Upsert(t).ok());
  RunFor(clock, d, 10s);
  EXPECT_THAT(sink.Ids(), ElementsAre("uid-b:1767225603", "uid-b:1767225604", "uid-b:1767225605"));
  EXPECT_THAT(rec.completed, ElementsAre("b@2026-01-01T00:00:05Z"));
  // A window that already closed: complete at once, nothing fires.
  auto late = Task("late", "* * * * * *");
  late.bounds = TimeBounds{"", "", "2026-01-01T00:00:01Z"};
  auto state = d.Upsert(late);
  EXPECT_TRUE(state->complete);
  // A bad window is refused.
  auto bad = Task("bad", "* * * * * *");
  bad.bounds = TimeBounds{"", "2026-01-01T00:00:06Z", "2026-01-01T00:00:03Z"};
  auto refused = d.Upsert(bad);
  ASSERT_TRUE(refused->problem);
  EXPECT_EQ(refused->problem->field, "spec.endTime");
  auto both = Task("both", "* * * * * *");
  both.bounds = TimeBounds{"2026-01-01T00:00:06Z", "", ""};
  EXPECT_EQ(d.Upsert(both)->problem->field, "spec.runAt");
}
TaskDefinition Union(const std::string& name, std::vector<ScheduleEntry> entries) {
  TaskDefinition t = Task(name, "");
  t.schedules = std::move(entries);
  return t;
}

TEST(FireTimes, UnionAgreesWithBruteForceAndTheFirstMatchingEntryDecidesJitter) {
  auto t = Union("u", {{"*/2 * * * * *", -1}, {"*/3 * * * * *", 7}});
  t.jitter_seconds = 1;
  std::optional<Schedule> first;
  FireSpec spec;
  ASSERT_TRUE(TaskProblems(t, &first, &spec).empty());
  FireTimes f(*first, &spec);
  const Instant from = T("2026-01-01T00:00:00Z");
  std::vector<Instant> want, got;
  for (int i = 1; i <= 60; ++i) {
    if (i % 2 == 0 || i % 3 == 0) want.push_back(from + std::chrono::seconds{i});
  }
  for (auto n = f.Next(from); n && *n <= from + 60s; n = f.Next(*n)) got.push_back(*n);
  EXPECT_EQ(got, want) << "the union, each instant once";
  EXPECT_EQ(f.Prev(from + 59s), from + 58s);
  EXPECT_EQ(f.Prev(from + 57s), from + 57s);
  EXPECT_EQ(f.JitterSeconds(from + 3s, 1), 7) << "only the second entry: its own jitter";
  EXPECT_EQ(f.JitterSeconds(from + 6s, 1), 1) << "both: the first entry's, which is the task's";
  EXPECT_EQ(f.JitterSeconds(from + 2s, 1), 1);
  // Problems name the entry.
  auto bad = Union("b", {{"*/2 * * * * *", -1}, {"61 * * * * *", -1}, {"*/2 * * * * *", -1}});
  auto problems = TaskProblems(bad);
  ASSERT_EQ(problems.size(), 2U);
  EXPECT_EQ(problems[0].field, "spec.schedules[1].schedule");
  EXPECT_EQ(problems[1].field, "spec.schedules[2].schedule");
  EXPECT_THAT(problems[1].detail, ::testing::HasSubstr("repeats spec.schedules[0]"));
  auto both = Union("c", {{"*/2 * * * * *", -1}});
  both.schedule = "* * * * *";
  EXPECT_EQ(TaskProblems(both).at(0).field, "spec.schedules");
}

TEST_F(FireTimesTest, TwoSchedulesFireTheirUnionOnceAndCatchUpWalksTheUnion) {
  {
    Dispatcher d(clock, sink, &rec);
    ASSERT_TRUE(d.Start().ok());
    auto t = Union("u", {{"*/2 * * * * *", -1}, {"*/3 * * * * *", -1}});
    t.catch_up = CatchUpPolicy::kAll;
    ASSERT_TRUE(d.Upsert(t).ok());
    RunFor(clock, d, 12s);
  }
  std::vector<std::string> want;
  for (int i : {2, 3, 4, 6, 8, 9, 10, 12}) want.push_back("uid-u:" + std::to_string(1767225600 + i));
  EXPECT_EQ(sink.Ids(), want) << "6 and 12 match both entries and fire once";
  EXPECT_EQ(sink.checkpoints["uid-u"], 1767225612);
  // Down for 6 seconds, then a new leader catches up on the union (All).
  clock.Advance(6s);
  Dispatcher d2(clock, sink, &rec);
  auto t = Union("u", {{"*/2 * * * * *", -1}, {"*/3 * * * * *", -1}});
  t.catch_up = CatchUpPolicy::kAll;
  ASSERT_TRUE(d2.Upsert(t).ok());
  ASSERT_TRUE(d2.Start().ok());
  d2.CollectDue(std::chrono::floor<std::chrono::seconds>(clock.Now()));
  ASSERT_TRUE(d2.FireOnce().ok());
  for (int i : {14, 15, 16, 18}) want.push_back("uid-u:" + std::to_string(1767225600 + i));
  EXPECT_EQ(sink.Ids(), want);
}

}  // namespace
}  // namespace cronlane::dispatcher
