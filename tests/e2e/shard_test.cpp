// End to end, several active replicas (--shards): against the real apiserver and
// Kafka, operators started as processes split the shards by their Leases, move
// them when replicas join, crash (kill -9), leave (SIGTERM) and pause (SIGSTOP),
// and a read_committed consumer checks that every occurrence of every task was
// fired exactly once over the whole run.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <map>
#include <set>
#include <sstream>

#include "common/hash.h"
#include "tests/support/operator_fixture.h"
#include "tests/support/process.h"
#include "tests/support/test_env.h"
#include "tests/support/topic_reader.h"

namespace cronlane::testing {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

constexpr int kShards = 8;
constexpr int kLeaseSeconds = 6;

class ShardTest : public OperatorFixture {
 protected:
  ShardTest() : OperatorFixture("shard") {}
  Process& StartShardedOperator(std::vector<std::string> extra = {}) {
    const int port = FreePort();
    std::vector<std::string> args = {"--shards=" + std::to_string(kShards),
                                     "--leader-elect",
                                     "--leader-election-namespace=" + ns_,
                                     "--leader-elect-lease-duration=" + std::to_string(kLeaseSeconds),
                                     "--leader-elect-renew-deadline=4",
                                     "--leader-elect-retry-period=1",
                                     "--metrics-bind-address=127.0.0.1:" + std::to_string(port)};
    args.insert(args.end(), extra.begin(), extra.end());
    Process& p = StartOperator(args);
    metrics_ports_[p.pid()] = port;
    return p;
  }
  // Each task's shard, from its UID (as the operator computes it: range layout).
  std::map<std::string, int> TaskShards() {
    auto out =
        Kubectl("get st -n " + ns_ + " -o jsonpath='{range .items[*]}{.metadata.name}={.metadata.uid}{\"\\n\"}{end}'")
            .output;
    std::map<std::string, int> shards;
    std::istringstream lines(out);
    for (std::string line; std::getline(lines, line);) {
      auto eq = line.find('=');
      if (eq != std::string::npos)
        shards[line.substr(0, eq)] = ShardOf(line.substr(eq + 1), kShards, ShardLayout::kRange);
    }
    return shards;
  }
  // The shards each running operator holds, by the pid in the Leases' holder
  // identity (every running operator has an entry, maybe empty).
  std::map<pid_t, std::set<int>> ShardsHeld() {
    auto out = Kubectl("get leases -n " + ns_ +
                       " -l cronlane.dev/lease-role=shard -o jsonpath='{range .items[*]}{.metadata.name}={.spec."
                       "holderIdentity}{\"\\n\"}{end}'")
                   .output;
    std::map<pid_t, std::set<int>> held;
    for (auto& op : ops_) {
      if (op->Running()) held[op->pid()];
    }
    std::istringstream lines(out);
    for (std::string line; std::getline(lines, line);) {
      auto eq = line.find('=');
      auto dash = line.rfind("-shard-", eq);
      if (eq == std::string::npos || dash == std::string::npos) continue;
      const int shard = std::stoi(line.substr(dash + 7, eq - dash - 7));
      for (auto& [pid, shards] : held) {
        if (line.find("_" + std::to_string(pid) + "_", eq) != std::string::npos) shards.insert(shard);
      }
    }
    return held;
  }
  // Whether every running operator caches exactly the tasks of the shards it
  // holds (its cronlane_tasks_cached against the Leases); `why` says what differs.
  bool CachesHoldOnlyTheirShards(const std::map<std::string, int>& task_shards, std::string& why) {
    why.clear();
    for (const auto& [pid, shards] : ShardsHeld()) {
      if (metrics_ports_.count(pid) == 0) continue;
      size_t want = 0;
      for (const auto& [name, shard] : task_shards) want += shards.count(shard);
      auto cached = MetricValue(HttpGet(metrics_ports_[pid], "/metrics"), "cronlane_tasks_cached");
      if (!cached || static_cast<size_t>(*cached) != want) {
        why += "pid " + std::to_string(pid) + " holds " + std::to_string(shards.size()) + " shard(s) with " +
               std::to_string(want) + " task(s) but caches " +
               (cached ? std::to_string(static_cast<size_t>(*cached)) : "?") + "; ";
      }
    }
    return why.empty();
  }
  std::map<pid_t, int> metrics_ports_;
  // Shards held per running operator, and how many shards no running operator holds.
  std::pair<std::map<pid_t, int>, int> Holdings() {
    std::map<pid_t, int> held;
    int by_running = 0;
    for (const auto& [pid, shards] : ShardsHeld()) {
      held[pid] = static_cast<int>(shards.size());
      by_running += held[pid];
    }
    return {held, kShards - by_running};
  }
  std::vector<int> SortedCounts() {
    auto [held, unheld] = Holdings();
    if (unheld != 0) return {};
    std::vector<int> out;
    for (auto& [pid, n] : held) out.push_back(n);
    std::sort(out.rbegin(), out.rend());
    return out;
  }
  // Waits until the running operators hold every shard as `want`; returns how long it took.
  std::chrono::milliseconds WaitForCounts(const std::vector<int>& want, std::chrono::seconds timeout) {
    auto start = std::chrono::steady_clock::now();
    bool ok = WaitUntil([&] { return SortedCounts() == want; }, timeout);
    auto took = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
    std::vector<int> got = SortedCounts();
    std::string g;
    for (int n : got) g += std::to_string(n) + " ";
    EXPECT_TRUE(ok) << "shards held as [" << g << "] after " << timeout.count() << " s";
    return took;
  }
};

TEST_F(ShardTest, ShardsSpreadAndMoveOnJoinCrashLeaveAndPauseFiringEveryOccurrenceOnce) {
  const std::string topic = ns_ + ".sharded";
  TopicReader reader(topic);
  const int kTasks = 200;
  ASSERT_THAT(Apply(EverySecondTasks(kTasks, topic)), HasSubstr("t199 created"));

  // Three replicas split the eight shards 3/3/2.
  const int console_port = FreePort();
  Process& a = StartShardedOperator({"--console-bind-address=127.0.0.1:" + std::to_string(console_port)});
  Process& b = StartShardedOperator();
  Process& c = StartShardedOperator();
  WaitForCounts({3, 3, 2}, 60s);
  ASSERT_TRUE(reader.ReadUntil(static_cast<size_t>(kTasks) * 5, 60s)) << "every shard fires";
  // Each replica caches only its shards' tasks (the apiserver filters by
  // shardSelector), and they are every task between them.
  const std::map<std::string, int> task_shards = TaskShards();
  ASSERT_EQ(task_shards.size(), static_cast<size_t>(kTasks));
  std::string why;
  EXPECT_TRUE(WaitUntil([&] { return CachesHoldOnlyTheirShards(task_shards, why); }, 30s)) << why;
  // The console still shows every task, whichever replica fires it.
  const std::string overview = HttpGet(console_port, "/api/v1/overview");
  const size_t total_at = overview.find("\"tasksTotal\":");
  ASSERT_NE(total_at, std::string::npos) << overview.substr(0, 300);
  EXPECT_EQ(std::atoi(overview.c_str() + total_at + 13), kTasks) << "the console of a replica holding 3 of 8 shards";

  // Each task's status says its shard, as `cronlane shard` computes it.
  for (std::string name : {"t0", "t1", "t2"}) {
    std::string uid = Kubectl("get st " + name + " -n " + ns_ + " -o jsonpath='{.metadata.uid}'").output;
    EXPECT_TRUE(WaitUntil(
        [&] {
          return Kubectl("get st " + name + " -n " + ns_ + " -o jsonpath='{.status.shard}'").output ==
                 std::to_string(ShardOf(uid, kShards, ShardLayout::kRange));  // auto, a new topic
        },
        30s))
        << name;
  }

  // A fourth joins: 2/2/2/2.
  Process& d = StartShardedOperator();
  auto join = WaitForCounts({2, 2, 2, 2}, 60s);
  // The shards given up left their old holders' caches.
  EXPECT_TRUE(WaitUntil([&] { return CachesHoldOnlyTheirShards(task_shards, why); }, 30s)) << why;
  reader.ReadFor(2s);

  // kill -9 one: its shards are taken once their Leases expire.
  b.Signal(SIGKILL);
  b.Wait(5s);
  auto crash = WaitForCounts({3, 3, 2}, 60s);
  EXPECT_GE(crash, std::chrono::seconds(kLeaseSeconds - 2)) << "taken before the Leases could expire";
  reader.ReadFor(2s);

  // SIGTERM one: it releases its shards, which move without waiting for expiry.
  c.Signal(SIGTERM);
  auto leave_start = std::chrono::steady_clock::now();
  EXPECT_EQ(c.Wait(30s), std::optional<int>(0));
  WaitForCounts({4, 4}, 60s);
  auto leave = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - leave_start);
  // It released them (the time above is reported, not asserted: this machine is
  // shared): every shard's Lease names a running replica, and c's log says it
  // released its shards rather than leaving them to expire.
  EXPECT_THAT(c.Log(), HasSubstr("shard(s) on shutdown"));
  reader.ReadFor(2s);

  // SIGSTOP one (a long pause, a frozen VM): the other takes its shards; woken up,
  // the paused replica fires nothing for them (its producers are fenced) and
  // takes its share back.
  a.Signal(SIGSTOP);
  WaitForCounts({8, 0}, 60s);
  size_t before = reader.messages().size();
  ASSERT_TRUE(reader.ReadUntil(before + static_cast<size_t>(kTasks) * 3, 30s)) << "d fires every shard";
  a.Signal(SIGCONT);
  WaitForCounts({4, 4}, 60s);
  EXPECT_TRUE(a.Running()) << "a replica that lost shards keeps running";
  EXPECT_TRUE(WaitUntil([&] { return CachesHoldOnlyTheirShards(task_shards, why); }, 30s)) << why;
  reader.ReadFor(3s);

  for (Process* p : {&a, &d}) p->Signal(SIGTERM);
  for (Process* p : {&a, &d}) EXPECT_EQ(p->Wait(30s), std::optional<int>(0));
  reader.ReadFor(3s);

  auto [total, missing, dups] = Audit(reader.messages());
  int64_t max_lag_ms = 0;
  for (const auto& m : reader.messages()) {
    max_lag_ms = std::max(max_lag_ms, m.timestamp_ms - ScheduledUnix(m) * 1000);
  }
  std::cout << "shards: " << kTasks << " tasks over " << kShards << " shards; join " << join.count() << " ms, kill -9 "
            << crash.count() << " ms, SIGTERM " << leave.count() << " ms to settle; " << total << " occurrences, "
            << missing << " missing, " << dups << " duplicated; max fire lag " << max_lag_ms << " ms\n";
  EXPECT_EQ(missing, 0U);
  EXPECT_EQ(dups, 0U);
  EXPECT_GT(total, static_cast<size_t>(kTasks) * 20);
  // Hand-overs delay fires by about a lease duration (expiry) plus a retry period
  // and the restore; the slack is for this shared machine.
  EXPECT_LT(max_lag_ms, (kLeaseSeconds + 10) * 1000);
}

// Changing the number of shards the documented way: stop the replica, copy the
// checkpoints into a topic laid out for the new count (cronlane-operator
// reshard-checkpoints), start replicas with the new --shards and topic. Every
// occurrence, including those due while nothing ran (catchUpPolicy All), fires
// exactly once; without the copy each task would restart from its next occurrence.
TEST_F(ShardTest, ChangingTheShardCountWithTheCheckpointCopyLosesAndRepeatsNothing) {
  const std::string topic = ns_ + ".resharded";
  TopicReader reader(topic);
  const int kTasks = 50;
  ASSERT_THAT(Apply(EverySecondTasks(kTasks, topic)), HasSubstr("t49 created"));

  Process& one = StartOperator();  // --shards 1: ns.checkpoints, 3 partitions
  ASSERT_TRUE(reader.ReadUntil(static_cast<size_t>(kTasks) * 4, 60s)) << "the single replica fires";
  one.Signal(SIGTERM);
  ASSERT_EQ(one.Wait(30s), std::optional<int>(0));

  const std::string new_topic = ns_ + ".checkpoints4";
  std::vector<std::string> argv = OperatorCommand(
      ns_, {"--checkpoint-topic=" + new_topic, "--shards=4", "--from-checkpoint-topic=" + ns_ + ".checkpoints"});
  argv.insert(argv.begin() + 1, "reshard-checkpoints");
  std::string log = (std::filesystem::temp_directory_path() / (UniqueName("reshard") + ".log")).string();
  logs_.push_back(log);
  Process copy(argv, log);
  ASSERT_EQ(copy.Wait(60s), std::optional<int>(0)) << copy.Log();
  EXPECT_THAT(copy.Log(), HasSubstr("copied " + std::to_string(kTasks) + " checkpoint(s)"));
  EXPECT_THAT(copy.Log(), HasSubstr("(4 shard(s), range layout), read back"));

  std::vector<std::string> sharded = {"--shards=4",
                                      "--checkpoint-topic=" + new_topic,
                                      "--leader-elect",
                                      "--leader-election-namespace=" + ns_,
                                      "--leader-elect-lease-duration=" + std::to_string(kLeaseSeconds),
                                      "--leader-elect-renew-deadline=4",
                                      "--leader-elect-retry-period=1"};
  // The copy is in the range layout: a replica told otherwise does not start.
  std::vector<std::string> modulo = sharded;
  modulo.push_back("--shard-layout=modulo");
  Process& wrong = StartOperator(modulo);
  ASSERT_EQ(wrong.Wait(60s), std::optional<int>(2)) << wrong.Log();
  EXPECT_THAT(wrong.Log(), HasSubstr("written with --shard-layout range"));

  const int metrics_port = FreePort();
  std::vector<std::string> with_metrics = sharded;
  with_metrics.push_back("--metrics-bind-address=127.0.0.1:" + std::to_string(metrics_port));
  Process& a = StartOperator(with_metrics);
  Process& b = StartOperator(sharded);
  EXPECT_TRUE(WaitUntil(
      [&] {
        return HttpGet(metrics_port, "/metrics").find("cronlane_shard_layout{layout=\"range\"} 1") != std::string::npos;
      },
      30s))
      << "the layout the copy was written in, as a metric";
  EXPECT_THAT(a.Log(), HasSubstr("4 shards, range layout (--shard-layout auto)"));
  const size_t before = reader.messages().size();
  ASSERT_TRUE(reader.ReadUntil(before + static_cast<size_t>(kTasks) * 6, 60s)) << "the four shards fire";
  for (Process* p : {&a, &b}) p->Signal(SIGTERM);
  for (Process* p : {&a, &b}) EXPECT_EQ(p->Wait(30s), std::optional<int>(0));
  reader.ReadFor(3s);

  auto [total, missing, dups] = Audit(reader.messages());
  std::cout << "reshard 1 -> 4: " << total << " occurrences, " << missing << " missing, " << dups << " duplicated\n";
  EXPECT_EQ(missing, 0U) << "occurrences due while no replica ran were not caught up";
  EXPECT_EQ(dups, 0U);
}

}  // namespace
}  // namespace cronlane::testing
