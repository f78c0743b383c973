// End to end: kubectl apply a ScheduledTask, the operator fires it into the real
// Kafka, a read_committed consumer checks every occurrence arrives exactly once with
// the right headers, key and payload; suspend, schedule updates, deletes; kill -9
// of the operator at random moments, and a leader paused (SIGSTOP) past its lease
// and resumed, lose and duplicate nothing.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <random>
#include <set>
#include <thread>
#include <tuple>

#include "common/kafka.h"
#include "dispatcher/cron.h"
#include "tests/support/operator_fixture.h"
#include "tests/support/process.h"
#include "tests/support/tcp_proxy.h"
#include "tests/support/test_env.h"
#include "tests/support/topic_reader.h"

namespace cronlane::testing {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

class FireTest : public OperatorFixture {
 protected:
  FireTest() : OperatorFixture("fire") {}
  // Ten tasks due every second (catchUpPolicy All) on `topic`, then two operators
  // with short leases (4 s, retry 1 s) started 1 s apart, read for 6 s. Returns the
  // leader and the standby, by the Lease's holder; nullptrs when nothing fired.
  // `first_extra`: more flags for the operator started first (the one that leads).
  std::pair<Process*, Process*> TwoOperatorsFiring(const std::string& topic, TopicReader& reader,
                                                   const std::vector<std::string>& first_extra = {}) {
    Apply(EverySecondTasks(10, topic));
    std::vector<std::string> le = {"--leader-elect", "--leader-election-namespace=" + ns_,
                                   "--leader-elect-lease-duration=4", "--leader-elect-renew-deadline=3",
                                   "--leader-elect-retry-period=1"};
    std::vector<std::string> first = le;
    first.insert(first.end(), first_extra.begin(), first_extra.end());
    Process& a = StartOperator(first);
    EXPECT_TRUE(WaitUntil([&] { return !LeaseHolder().empty(); }, 30s)) << "the first operator leads";
    Process& b = StartOperator(le);
    if (!reader.ReadUntil(21, 30s)) {
      ADD_FAILURE() << "fewer than 21 occurrences fired before the failover";
      return {nullptr, nullptr};
    }
    Process* leader = LeaseHolder().find("_" + std::to_string(a.pid()) + "_") != std::string::npos ? &a : &b;
    return {leader, leader == &a ? &b : &a};
  }
  // The leader Lease's holder, or "" (none yet, or kubectl failed).
  std::string LeaseHolder() {
    return KubectlGet("get lease cronlane-operator -n " + ns_ + " -o jsonpath='{.spec.holderIdentity}'");
  }
  // Whether `op` holds the leader Lease within 30 s.
  bool WaitForLeader(const Process& op) {
    const std::string id = "_" + std::to_string(op.pid()) + "_";
    return WaitUntil([&] { return LeaseHolder().find(id) != std::string::npos; }, 30s);
  }
};

TEST_F(FireTest, EveryOccurrenceOnceWithHeadersKeyAndPayload) {
  std::string topic = ns_ + ".jobs";
  TopicReader reader(topic);
  StartOperator();
  auto task = [&](const std::string& schedule, bool suspend) {
    return "apiVersion: cronlane.dev/v1alpha1\nkind: ScheduledTask\nmetadata: {name: tick}\nspec:\n  schedule: \"" +
           schedule + "\"\n  suspend: " + (suspend ? "true" : "false") + "\n  target:\n    topic: " + topic +
           "\n    key: tick-key\n    headers: {team: platform}\n  payload: {hello: world, count: 42}\n";
  };
  Apply(task("* * * * * *", false));
  std::string uid = Kubectl("get st tick -n " + ns_ + " -o jsonpath='{.metadata.uid}'").output;
  reader.ReadFor(6s);
  auto msgs = reader.messages();
  ASSERT_GE(msgs.size(), 3U) << "an every-second task fires";
  std::set<std::string> ids;
  std::vector<int64_t> times;
  for (const auto& m : msgs) {
    ids.insert(std::string(m.HeaderValue("ce_id").value_or("")));
    times.push_back(ScheduledUnix(m));
    EXPECT_EQ(m.key.value_or(""), "tick-key");
    EXPECT_EQ(m.value, R"({"count":42,"hello":"world"})");
    EXPECT_EQ(m.HeaderValue("ce_specversion").value_or(""), "1.0");
    EXPECT_EQ(m.HeaderValue("ce_type").value_or(""), "dev.cronlane.task.fired");
    EXPECT_EQ(m.HeaderValue("ce_source").value_or(""),
              "/apis/cronlane.dev/v1alpha1/namespaces/" + ns_ + "/scheduledtasks/tick");
    EXPECT_EQ(m.HeaderValue("team").value_or(""), "platform");
    EXPECT_EQ(m.HeaderValue("content-type").value_or(""), "application/json");
    EXPECT_EQ(std::string(m.HeaderValue("ce_id").value_or("")), uid + ":" + std::to_string(ScheduledUnix(m)));
  }
  EXPECT_EQ(ids.size(), msgs.size()) << "no duplicates";
  std::sort(times.begin(), times.end());
  for (size_t i = 1; i < times.size(); ++i) EXPECT_EQ(times[i], times[i - 1] + 1) << "no gaps";
  EXPECT_TRUE(WaitUntil(
      [&] { return !KubectlGet("get st tick -n " + ns_ + " -o jsonpath='{.status.lastScheduleTime}'").empty(); }, 5s));

  // Suspend: no more occurrences after it takes effect.
  Apply(task("* * * * * *", true));
  reader.ReadFor(2s);
  size_t after_suspend = reader.messages().size();
  reader.ReadFor(3s);
  EXPECT_EQ(reader.messages().size(), after_suspend) << "suspended tasks do not fire";

  // Resume on a new schedule: every 2 seconds, even seconds only.
  Apply(task("*/2 * * * * *", false));
  reader.ReadFor(2s);
  size_t mark = reader.messages().size();
  reader.ReadFor(5s);
  ASSERT_GT(reader.messages().size(), mark);
  for (size_t i = mark; i < reader.messages().size(); ++i) EXPECT_EQ(ScheduledUnix(reader.messages()[i]) % 2, 0);

  // Delete: it stops.
  ASSERT_EQ(Kubectl("delete st tick -n " + ns_).exit_code, 0);
  reader.ReadFor(2s);
  size_t after_delete = reader.messages().size();
  reader.ReadFor(3s);
  EXPECT_EQ(reader.messages().size(), after_delete) << "deleted tasks do not fire";
}

TEST_F(FireTest, Kill9TheOperatorRepeatedlyNothingLostNothingDuplicated) {
  std::string topic = ns_ + ".crash";
  TopicReader reader(topic);
  const int kTasks = 20;
  ASSERT_THAT(Apply(EverySecondTasks(kTasks, topic)), HasSubstr("t19 created"));
  std::mt19937 rng(std::random_device{}());
  const int kKills = 10;
  for (int k = 0; k < kKills; ++k) {
    Process& op = StartOperator();
    std::this_thread::sleep_for(std::chrono::milliseconds(std::uniform_int_distribution<int>(1500, 5000)(rng)));
    op.Signal(SIGKILL);
    op.Wait(5s);
    reader.ReadFor(100ms);
  }
  // A last clean run, then stop fetching new occurrences.
  Process& last = StartOperator();
  reader.ReadFor(5s);
  last.Signal(SIGTERM);
  last.Wait(10s);
  reader.ReadFor(3s);

  std::set<std::string> subjects;
  for (const auto& m : reader.messages()) subjects.insert(std::string(m.HeaderValue("ce_subject").value_or("")));
  ASSERT_EQ(subjects.size(), static_cast<size_t>(kTasks)) << "every task fired";
  auto [total, missing, dups] = Audit(reader.messages());
  std::cout << "crash test: " << kKills << " kill -9, " << kTasks << " tasks, " << total << " occurrences, " << missing
            << " missing, " << dups << " duplicated\n";
  EXPECT_EQ(missing, 0U);
  EXPECT_EQ(dups, 0U);
  EXPECT_GT(total, static_cast<size_t>(kTasks * 20));
}

TEST_F(FireTest, FailoverToTheStandbyAfterKill9) {
  std::string topic = ns_ + ".failover";
  TopicReader reader(topic);
  auto [leader_ptr, standby_ptr] = TwoOperatorsFiring(topic, reader);
  ASSERT_NE(leader_ptr, nullptr);
  Process& leader = *leader_ptr;
  Process& standby = *standby_ptr;
  leader.Signal(SIGKILL);
  auto killed_at = std::chrono::system_clock::now();
  size_t before = reader.messages().size();
  // The standby must take over, fence the dead leader's producer and catch up.
  reader.ReadFor(12s);
  ASSERT_GT(reader.messages().size(), before) << "the standby fires after the failover";
  int64_t first_after_ms = -1;
  for (size_t i = before; i < reader.messages().size(); ++i) {
    int64_t ts = reader.messages()[i].timestamp_ms;
    int64_t killed_ms = std::chrono::duration_cast<std::chrono::milliseconds>(killed_at.time_since_epoch()).count();
    if (ts > killed_ms && (first_after_ms < 0 || ts - killed_ms < first_after_ms)) first_after_ms = ts - killed_ms;
  }
  standby.Signal(SIGTERM);
  standby.Wait(10s);
  reader.ReadFor(2s);
  auto [total, missing, dups] = Audit(reader.messages());
  std::cout << "failover: first message from the new leader " << first_after_ms << " ms after kill -9; " << total
            << " occurrences, " << missing << " missing, " << dups << " duplicated\n";
  EXPECT_EQ(missing, 0U);
  EXPECT_EQ(dups, 0U);
}

TEST_F(FireTest, ALeaderPausedPastItsLeaseFiresNothingTwiceAndStopsWhenResumed) {
  // SIGSTOP stands for a long GC-like pause, a frozen VM or a stalled node: the
  // paused leader cannot renew, the standby takes over, and when the old leader
  // wakes up its producer is fenced and its lease is gone.
  std::string topic = ns_ + ".paused";
  TopicReader reader(topic);
  auto [leader_ptr, standby_ptr] = TwoOperatorsFiring(topic, reader);
  ASSERT_NE(leader_ptr, nullptr);
  Process& leader = *leader_ptr;
  Process& standby = *standby_ptr;
  leader.Signal(SIGSTOP);
  size_t before = reader.messages().size();
  ASSERT_TRUE(WaitForLeader(standby)) << "the standby takes the lease of the paused leader";
  ASSERT_TRUE(reader.ReadUntil(before + 21, 30s)) << "the standby fires while the leader is paused";
  leader.Signal(SIGCONT);
  // Woken up, the old leader finds its lease taken (and its producer fenced) and
  // exits 1 instead of firing what came due while it slept.
  auto code = leader.Wait(20s);
  ASSERT_TRUE(code.has_value()) << "the resumed ex-leader keeps running";
  EXPECT_EQ(*code, 1);
  reader.ReadFor(3s);
  standby.Signal(SIGTERM);
  standby.Wait(10s);
  reader.ReadFor(2s);
  auto [total, missing, dups] = Audit(reader.messages());
  std::cout << "pause: " << total << " occurrences, " << missing << " missing, " << dups << " duplicated\n";
  EXPECT_EQ(missing, 0U);
  EXPECT_EQ(dups, 0U);
}

TEST_F(FireTest, ALeaderCutOffFromTheApiserverStopsBeforeTheStandbyFires) {
  // The leader reaches the apiserver through a proxy the test cuts (packets
  // dropped: its requests hang), while Kafka and everyone else still reach their
  // servers. It cannot renew; it must stop firing within the renew deadline, before
  // its Lease can expire and the standby takes over, and exit 1.
  const std::string api = EnvVar("KUBE_APISERVER_URL");
  const auto [api_host, api_port] = ApiserverAddress();
  TcpProxy proxy(api_host, api_port);
  const std::string kubeconfig = (std::filesystem::temp_directory_path() / (ns_ + ".kubeconfig")).string();
  auto written = RunShell("sed 's#" + api + "#https://127.0.0.1:" + std::to_string(proxy.port()) + "#' " +
                          ShellQuote(EnvVar("KUBECONFIG")) + " > " + ShellQuote(kubeconfig));
  ASSERT_EQ(written.exit_code, 0) << written.output;
  std::string topic = ns_ + ".cutoff";
  TopicReader reader(topic);
  auto [leader_ptr, standby_ptr] = TwoOperatorsFiring(topic, reader, {"--kubeconfig=" + kubeconfig});
  ASSERT_NE(leader_ptr, nullptr);
  Process& leader = *leader_ptr;
  Process& standby = *standby_ptr;
  ASSERT_EQ(leader.pid(), ops_.front()->pid()) << "the operator behind the proxy leads";
  ASSERT_GT(proxy.accepted(), 0);

  proxy.Partition();
  const auto cut_at = std::chrono::steady_clock::now();
  auto code = leader.Wait(20s);
  const auto stopped_after = std::chrono::steady_clock::now() - cut_at;
  ASSERT_TRUE(code.has_value()) << "the cut-off leader keeps running";
  EXPECT_EQ(*code, 1);
  EXPECT_THAT(leader.Log(), HasSubstr("lost the lease"));
  // It stopped on its own (renew deadline 3 s, each renewal timing out after 1 s;
  // the status write it was waiting on abandoned 1 s later, when the standby may
  // take the Lease), not because the standby's producer fenced it.
  EXPECT_THAT(leader.Log(), ::testing::Not(HasSubstr("fenced by a newer producer")));
  ASSERT_TRUE(WaitForLeader(standby)) << "the standby takes the lease";
  size_t before = reader.messages().size();
  ASSERT_TRUE(reader.ReadUntil(before + 21, 30s)) << "the standby fires";
  standby.Signal(SIGTERM);
  standby.Wait(10s);
  reader.ReadFor(2s);
  auto [total, missing, dups] = Audit(reader.messages());
  std::cout << "apiserver cut off from the leader: it exited "
            << std::chrono::duration_cast<std::chrono::milliseconds>(stopped_after).count() << " ms after the cut; "
            << total << " occurrences, " << missing << " missing, " << dups << " duplicated\n";
  EXPECT_EQ(missing, 0U);
  EXPECT_EQ(dups, 0U);
}

TEST_F(FireTest, AnApiserverRestartDoesNotStopFiringAndTheCacheAndStatusCatchUp) {
  // Firing needs Kafka, not the apiserver: while it restarts, every occurrence still
  // fires on time; afterwards the watches resume (a task created after the restart
  // fires) and status catches up. Lease timings leave the restart room (renew
  // deadline 60 s): the apiserver stops accepting connections as soon as it is
  // told to stop, but its process may take a while to exit while requests drain.
  std::string topic = ns_ + ".restart";
  TopicReader reader(topic);
  Apply(EverySecondTasks(5, topic));
  Process& op =
      StartOperator({"--leader-elect", "--leader-election-namespace=" + ns_, "--leader-elect-lease-duration=90",
                     "--leader-elect-renew-deadline=60", "--leader-elect-retry-period=2"});
  ASSERT_TRUE(reader.ReadUntil(25, 30s)) << "fires before the restart";

  auto unix_now = [] {
    return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch())
        .count();
  };
  const int64_t stopped = unix_now();
  ServerCtl("kube-apiserver", "stop");
  std::cout << "the apiserver took " << unix_now() - stopped << " s to stop\n";
  reader.ReadFor(5s);
  ServerCtl("kube-apiserver", "start");
  const int64_t started = unix_now();
  size_t on_time_in_outage = 0;
  for (const auto& m : reader.messages()) {
    const int64_t t = ScheduledUnix(m);
    if (t > stopped && t < started && m.timestamp_ms - t * 1000 < 2000) ++on_time_in_outage;
  }
  EXPECT_GE(on_time_in_outage, 5U * 4U) << "occurrences due while the apiserver was down fire on time";

  // The watch is back: a task created now fires.
  Apply(
      "apiVersion: cronlane.dev/v1alpha1\nkind: ScheduledTask\nmetadata: {name: after}\nspec:\n"
      "  schedule: \"* * * * * *\"\n  target: {topic: " +
      topic + "}\n");
  EXPECT_TRUE(WaitUntil(
      [&] {
        reader.ReadFor(1s);
        for (const auto& m : reader.messages()) {
          if (m.HeaderValue("ce_subject") == ns_ + "/after") return true;
        }
        return false;
      },
      30s))
      << "a task created after the restart fires";
  // Status catches up: t0's firedCount reaches what had fired by the restart.
  size_t t0_by_restart = 0;
  for (const auto& m : reader.messages()) {
    if (m.HeaderValue("ce_subject") == ns_ + "/t0" && ScheduledUnix(m) < started) ++t0_by_restart;
  }
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto out = Kubectl("get st t0 -n " + ns_ + " -o jsonpath='{.status.firedCount}'").output;
        return !out.empty() && std::stoul(out) >= t0_by_restart;
      },
      30s))
      << "status.firedCount of t0 catches up to " << t0_by_restart;
  EXPECT_TRUE(op.Running()) << "the restart did not stop the operator";
  op.Signal(SIGTERM);
  EXPECT_EQ(op.Wait(20s).value_or(-1), 0);
  reader.ReadFor(2s);
  auto [total, missing, dups] = Audit(reader.messages());
  std::cout << "apiserver restart (" << started - stopped << " s down): " << on_time_in_outage
            << " occurrences fired on time while it was down; " << total << " occurrences, " << missing << " missing, "
            << dups << " duplicated\n";
  EXPECT_EQ(missing, 0U);
  EXPECT_EQ(dups, 0U);
}

TEST_F(FireTest, CatchUpPoliciesAfterTheOperatorWasDown) {
  std::string topic = ns_ + ".catchup";
  TopicReader reader(topic);
  std::string yaml;
  for (std::string policy : {"All", "Latest", "None"}) {
    std::string name = "policy-" + policy;
    for (auto& c : name) c = static_cast<char>(std::tolower(c));
    yaml += "---\napiVersion: cronlane.dev/v1alpha1\nkind: ScheduledTask\nmetadata: {name: " + name +
            "}\nspec:\n  schedule: \"*/5 * * * * *\"\n  catchUpPolicy: " + policy + "\n  target: {topic: " + topic +
            "}\n";
  }
  Apply(yaml);
  Process& first = StartOperator();
  reader.ReadFor(11s);  // at least two occurrences each, so each has a checkpoint
  first.Signal(SIGTERM);
  ASSERT_EQ(first.Wait(10s).value_or(-1), 0);
  std::this_thread::sleep_for(14s);  // at least two occurrences of each task are missed
  // Restart 3 s after an occurrence, so the most recent missed one is late (the
  // late threshold is 2 s) and the policies differ on it.
  while (std::chrono::system_clock::now().time_since_epoch() % 5s < 3s ||
         std::chrono::system_clock::now().time_since_epoch() % 5s > 3200ms) {
    std::this_thread::sleep_for(20ms);
  }
  const int64_t restart =
      std::chrono::floor<std::chrono::seconds>(std::chrono::system_clock::now()).time_since_epoch().count();
  StartOperator();
  reader.ReadFor(6s);

  std::map<std::string, std::vector<int64_t>> times;
  for (const auto& m : reader.messages())
    times[std::string(m.HeaderValue("ce_subject").value_or(""))].push_back(ScheduledUnix(m));
  std::map<std::string, int> in_gap;  // fired occurrences scheduled while the operator was down
  for (auto& [task, ts] : times) {
    std::sort(ts.begin(), ts.end());
    int64_t checkpoint = 0;  // the last occurrence fired before the stop
    for (int64_t t : ts) {
      if (t < restart - 14) checkpoint = t;
    }
    for (int64_t t : ts) in_gap[task] += (t > checkpoint && t <= restart) ? 1 : 0;
  }
  std::cout << "catch-up: All " << in_gap[ns_ + "/policy-all"] << ", Latest " << in_gap[ns_ + "/policy-latest"]
            << ", None " << in_gap[ns_ + "/policy-none"] << " missed occurrences fired\n";
  EXPECT_GE(in_gap[ns_ + "/policy-all"], 3) << "All fires every missed occurrence";
  EXPECT_EQ(in_gap[ns_ + "/policy-latest"], 1) << "Latest fires only the most recent missed occurrence";
  EXPECT_EQ(in_gap[ns_ + "/policy-none"], 0) << "None fires none of them";
  auto latest = times[ns_ + "/policy-latest"];
  auto it = std::find_if(latest.begin(), latest.end(), [&](int64_t t) { return t > restart - 5 && t <= restart; });
  EXPECT_NE(it, latest.end()) << "the one Latest fires is the most recent";
  // All three keep firing on time afterwards, and the skipped ones are reported.
  for (const auto& [task, ts] : times) EXPECT_GT(ts.back(), restart) << task;
  EXPECT_TRUE(WaitUntil(
      [&] {
        auto ev = Kubectl("get events -n " + ns_ +
                          " --field-selector reason=MissedSchedule -o jsonpath='{.items[*].involvedObject.name}'");
        return ev.output.find("policy-latest") != std::string::npos &&
               ev.output.find("policy-none") != std::string::npos;
      },
      10s));
  EXPECT_TRUE(WaitUntil(
      [&] {
        // A number, not a string comparison ("10" < "2").
        std::string missed = Kubectl("get st policy-none -n " + ns_ + " -o jsonpath='{.status.missedCount}'").output;
        return std::strtoll(missed.c_str(), nullptr, 10) >= 2;
      },
      10s));
}

TEST_F(FireTest, BrokerOutageOf30SecondsLosesNothing) {
  std::string topic = ns_ + ".outage";
  TopicReader reader(topic);
  std::string yaml;
  for (int i = 0; i < 5; ++i) {
    yaml += "---\napiVersion: cronlane.dev/v1alpha1\nkind: ScheduledTask\nmetadata: {name: o" + std::to_string(i) +
            "}\nspec:\n  schedule: \"* * * * * *\"\n  catchUpPolicy: All\n  target: {topic: " + topic + "}\n";
  }
  Apply(yaml);
  Process& op = StartOperator();
  reader.ReadFor(5s);
  ASSERT_GT(reader.messages().size(), 10U);
  KafkaCtl("stop");
  auto stopped_at = std::chrono::system_clock::now();
  std::this_thread::sleep_for(30s);
  KafkaCtl("start");
  reader.ReadFor(30s);
  EXPECT_TRUE(op.Running()) << "a broker outage does not stop the operator";
  op.Signal(SIGTERM);
  op.Wait(20s);
  reader.ReadFor(2s);
  auto [total, missing, dups] = Audit(reader.messages());
  int64_t stopped = std::chrono::duration_cast<std::chrono::seconds>(stopped_at.time_since_epoch()).count();
  size_t late = 0, in_outage = 0;
  for (const auto& m : reader.messages()) {
    int64_t t = ScheduledUnix(m);
    if (t > stopped && t < stopped + 30) ++in_outage;
    if (m.timestamp_ms - t * 1000 > 10000) ++late;
  }
  std::cout << "broker outage: " << total << " occurrences, " << in_outage << " scheduled during the 30 s outage ("
            << late << " delivered more than 10 s late), " << missing << " missing, " << dups << " duplicated\n";
  EXPECT_EQ(missing, 0U);
  EXPECT_EQ(dups, 0U);
  EXPECT_GE(in_outage, 5U * 25U) << "occurrences inside the outage arrive, late";
  EXPECT_GT(late, 0U);
}

}  // namespace
}  // namespace cronlane::testing
