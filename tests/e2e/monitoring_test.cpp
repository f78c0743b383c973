// The alerts of manifests/monitoring in a real Prometheus (Debian's prometheus
// server) scraping a running operator and worker: it reads their histograms, and
// when Kafka stops, CronlaneCommitsFailing fires, then resolves once Kafka is back.
// The rules are the PrometheusRule's own, with every `for:` shortened to 5 s so the
// test takes seconds, not minutes (promtool_test.sh checks the real durations).
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <string>

#include "operator/kube/client.h"
#include "tests/support/operator_fixture.h"
#include "tests/support/process.h"
#include "tests/support/test_env.h"
#include "tests/support/topic_reader.h"
#include "tests/support/webdriver.h"

namespace cronlane::testing {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;

class MonitoringTest : public OperatorFixture {
 protected:
  MonitoringTest() : OperatorFixture("mon") {}

  void SetUp() override {
    OperatorFixture::SetUp();
    dir_ = std::filesystem::temp_directory_path() / ns_;
    std::filesystem::create_directories(dir_);
  }
  // Prometheus scraping `targets` (job -> port) every second, with the rules.
  void StartPrometheus(const std::map<std::string, int>& targets) {
    auto cut = RunShell("awk 'found { sub(/^  /, \"\"); print } /^spec:/ { found = 1 }' " +
                        std::string(CRONLANE_SOURCE_DIR) + "/manifests/monitoring/prometheusrule.yaml" +
                        " | sed -E 's/^( *)for: .*/\\1for: 5s/' > " + (dir_ / "rules.yaml").string());
    ASSERT_EQ(cut.exit_code, 0) << cut.output;
    std::ofstream config(dir_ / "prometheus.yml");
    config << "global: {scrape_interval: 1s, evaluation_interval: 1s}\nrule_files: [rules.yaml]\nscrape_configs:\n";
    for (const auto& [job, port] : targets) {
      config << "  - job_name: " << job << "\n    static_configs: [{targets: ['127.0.0.1:" << port << "']}]\n";
    }
    config.close();
    port_ = FreePort();
    prometheus_ = std::make_unique<Process>(
        std::vector<std::string>{"/usr/bin/prometheus", "--config.file=" + (dir_ / "prometheus.yml").string(),
                                 "--storage.tsdb.path=" + (dir_ / "data").string(),
                                 "--web.listen-address=127.0.0.1:" + std::to_string(port_)},
        (dir_ / "prometheus.log").string());
    ASSERT_TRUE(WaitUntil([&] { return !HttpGet(port_, "/-/ready").empty(); }, 30s)) << prometheus_->Log();
  }
  // The result of an instant query.
  Json Query(const std::string& q) {
    std::string body = HttpGet(port_, "/api/v1/query?query=" + kube::UrlEscape(q));
    Json j = Json::parse(body, nullptr, false);
    if (j.is_discarded() || j.value("status", "") != "success") return Json::array();
    return j["data"]["result"];
  }
  // The state of an alert ("pending", "firing"), "" when inactive.
  std::string AlertState(const std::string& name) {
    Json j = Json::parse(HttpGet(port_, "/api/v1/alerts"), nullptr, false);
    if (j.is_discarded()) return "";
    for (const auto& a : j["data"]["alerts"]) {
      if (a["labels"].value("alertname", "") == name) return a.value("state", "");
    }
    return "";
  }

  std::filesystem::path dir_;
  int port_ = 0;
  std::unique_ptr<Process> prometheus_;
};

TEST_F(MonitoringTest, PrometheusScrapesTheHistogramsAndTheCommitAlertFiresAndResolves) {
  const std::string topic = ns_ + ".tasks";
  CreateTestTopic(topic, 2);
  const int op_port = FreePort(), worker_port = FreePort();
  Process& op = StartOperator({"--metrics-bind-address=127.0.0.1:" + std::to_string(op_port)});
  Process worker({std::string(CRONLANE_BIN_DIR) + "/cronlane-worker", "--kafka-bootstrap=" + EnvVar("KAFKA_BOOTSTRAP"),
                  "--topic=" + topic, "--group=" + ns_, "--exec=true",
                  "--metrics-bind-address=127.0.0.1:" + std::to_string(worker_port), "--health-probe-bind-address=0",
                  "--log-format=text"},
                 (dir_ / "worker.log").string());
  ASSERT_THAT(Apply(EverySecondTasks(2, topic)), ::testing::HasSubstr("created"));
  // A pool for the dashboard's WorkerPool panels (a Deployment at 0: no Pods needed).
  ASSERT_THAT(Apply("apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: workers}\nspec:\n  replicas: 0\n"
                    "  selector: {matchLabels: {app: workers}}\n  template:\n    metadata: {labels: {app: workers}}\n"
                    "    spec:\n      containers: [{name: w, image: cronlane/cronlane:0.1.0}]\n---\n"
                    "apiVersion: cronlane.dev/v1alpha1\nkind: WorkerPool\nmetadata: {name: pool}\nspec:\n"
                    "  scaleTargetRef: {name: workers}\n  topic: " +
                    topic + "\n  consumerGroup: other-group\n  maxReplicas: 1\n  pollIntervalSeconds: 1\n"),
              ::testing::HasSubstr("workerpool.cronlane.dev/pool created"));
  StartPrometheus({{"cronlane-operator", op_port}, {"cronlane-worker", worker_port}});
  ASSERT_FALSE(HasFatalFailure());

  // Both histograms reach Prometheus, and the leader is seen.
  auto has = [&](const std::string& q) { return !Query(q).empty(); };
  ASSERT_TRUE(WaitUntil([&] { return has("cronlane_fire_lag_seconds_count>0"); }, 60s))
      << HttpGet(port_, "/api/v1/targets") << "\n"
      << HttpGet(port_, "/api/v1/query?query=cronlane_fire_lag_seconds_count") << "\n"
      << op.Log();
  ASSERT_TRUE(WaitUntil([&] { return has("cronlane_worker_task_duration_seconds_count>0"); }, 60s)) << worker.Log();
  EXPECT_TRUE(has("cronlane_leader==1"));
  EXPECT_TRUE(has("cronlane_reconcile_duration_seconds_count>0"));
  // Fires by namespace: one series, the test's namespace.
  Json by_ns = Query("cronlane_namespace_occurrences_fired_total>0");
  ASSERT_EQ(by_ns.size(), 1U) << by_ns.dump();
  EXPECT_EQ(by_ns[0]["metric"].value("namespace", ""), ns_);
  // A rate needs two scrapes in its window; the first rule evaluation may precede
  // the first scrape (NoLeader pending on `absent`) and clears at the next.
  EXPECT_TRUE(
      WaitUntil([&] { return has("histogram_quantile(0.99,rate(cronlane_fire_lag_seconds_bucket[1m]))"); }, 20s));
  EXPECT_TRUE(WaitUntil([&] { return AlertState("CronlaneNoLeader").empty(); }, 20s))
      << AlertState("CronlaneNoLeader") << " " << Query("cronlane_leader").dump();
  EXPECT_EQ(AlertState("CronlaneCommitsFailing"), "");

  // Every query of the Grafana dashboard returns series.
  std::ifstream dashboard_file(std::string(CRONLANE_SOURCE_DIR) + "/manifests/monitoring/dashboard.json");
  Json dashboard = Json::parse(dashboard_file);
  int queries = 0;
  for (const auto& panel : dashboard["panels"]) {
    for (const auto& target : panel["targets"]) {
      const std::string expr = target["expr"];
      ++queries;
      EXPECT_TRUE(WaitUntil([&] { return has(expr); }, 30s)) << panel["title"] << ": " << expr;
    }
  }
  EXPECT_GE(queries, 10);

  KafkaCtl("stop");
  EXPECT_TRUE(WaitUntil([&] { return AlertState("CronlaneCommitsFailing") == "firing"; }, 120s))
      << AlertState("CronlaneCommitsFailing") << "\n"
      << op.Log();
  KafkaCtl("start");
  EXPECT_TRUE(WaitUntil([&] { return AlertState("CronlaneCommitsFailing").empty(); }, 120s))
      << AlertState("CronlaneCommitsFailing") << "\n"
      << op.Log();
  // The dashboard drawn from this Prometheus over the test, Kafka's outage included
  // (tests/monitoring/render_dashboard.js stands in for Grafana, which Debian does
  // not package): every panel draws a series, and the picture is saved beside the
  // test's files.
  {
    WebDriver browser((dir_ / "chromedriver.log").string(), 1400, 1750);
    ASSERT_TRUE(browser.ok()) << browser.error();
    browser.Navigate("http://127.0.0.1:" + std::to_string(port_) + "/api/v1/status/buildinfo");  // its origin
    std::ifstream script_file(std::string(CRONLANE_SOURCE_DIR) + "/tests/monitoring/render_dashboard.js");
    const std::string script((std::istreambuf_iterator<char>(script_file)), {});
    Json drawn = browser.ExecuteAsync(script, Json::array({dashboard, 1}));
    for (const auto& panel : dashboard["panels"]) {
      const std::string title = panel["title"];
      EXPECT_TRUE(drawn.contains(title) && drawn[title].is_number() && drawn[title].get<int>() >= 1)
          << title << ": " << drawn.dump();
    }
    const std::string shot = (dir_ / "dashboard.png").string();
    EXPECT_TRUE(browser.SaveScreenshot(shot));
    std::cerr << "dashboard: " << shot << "\n";
  }

  EXPECT_TRUE(op.Running()) << op.Log();
}

}  // namespace
}  // namespace cronlane::testing
