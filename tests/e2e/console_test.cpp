// The console (operator/console.h) in headless Chromium against the local
// environment: an operator with --console-bind-address, a worker reporting results,
// tasks and a WorkerPool applied with kubectl. The page shows the tasks that exist
// (a refused one with its reason, as text), runs with their outcomes and the pool,
// and updates itself as tasks fire, without a reload; the namespace filter reaches
// the API. A screenshot is saved beside the test's logs.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <string>

#include "tests/support/operator_fixture.h"
#include "tests/support/process.h"
#include "tests/support/test_env.h"
#include "tests/support/topic_reader.h"
#include "tests/support/webdriver.h"

namespace cronlane::testing {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;
using ::testing::HasSubstr;

class ConsoleTest : public OperatorFixture {
 protected:
  ConsoleTest() : OperatorFixture("console") {}
};

TEST_F(ConsoleTest, ThePageShowsTasksRunsAndPoolsAndUpdatesAsTasksFire) {
  const std::string topic = ns_ + ".tasks", results = ns_ + ".results";
  CreateTestTopic(topic, 2);
  CreateTestTopic(results, 1);
  const std::filesystem::path dir = std::filesystem::temp_directory_path() / ns_;
  std::filesystem::create_directories(dir);
  const int port = FreePort();
  Process& op =
      StartOperator({"--console-bind-address=127.0.0.1:" + std::to_string(port), "--results-topic=" + results});
  Process worker({std::string(CRONLANE_BIN_DIR) + "/cronlane-worker", "--kafka-bootstrap=" + EnvVar("KAFKA_BOOTSTRAP"),
                  "--topic=" + topic, "--group=" + ns_, "--exec=true", "--results-topic=" + results,
                  "--metrics-bind-address=0", "--health-probe-bind-address=0", "--log-format=text"},
                 (dir / "worker.log").string());
  // `never` is admitted by the apiserver (no webhook here) and refused by the
  // operator; its schedule is markup that must reach the page as text.
  ASSERT_THAT(Apply("apiVersion: cronlane.dev/v1alpha1\nkind: ScheduledTask\nmetadata: {name: every2s}\nspec:\n"
                    "  schedule: \"*/2 * * * * *\"\n  target: {topic: " +
                    topic +
                    "}\n---\napiVersion: cronlane.dev/v1alpha1\nkind: ScheduledTask\nmetadata: {name: never}\nspec:\n"
                    "  schedule: \"<img src=x onerror=window.injected=1>\"\n  target: {topic: " +
                    topic +
                    "}\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata: {name: workers}\nspec:\n  replicas: 0\n"
                    "  selector: {matchLabels: {app: workers}}\n  template:\n    metadata: {labels: {app: workers}}\n"
                    "    spec:\n      containers: [{name: w, image: cronlane/cronlane:0.1.0}]\n---\n"
                    "apiVersion: cronlane.dev/v1alpha1\nkind: WorkerPool\nmetadata: {name: pool}\nspec:\n"
                    "  scaleTargetRef: {name: workers}\n  topic: " +
                    topic + "\n  consumerGroup: other-group\n  maxReplicas: 1\n  pollIntervalSeconds: 1\n"),
              HasSubstr("workerpool.cronlane.dev/pool created"));
  ASSERT_TRUE(WaitUntil([&] { return !HttpGet(port, "/").empty(); }, 60s)) << op.Log();

  WebDriver browser((dir / "chromedriver.log").string());
  ASSERT_TRUE(browser.ok()) << browser.error();
  browser.Navigate("http://127.0.0.1:" + std::to_string(port) + "/");
  const std::string every = ns_ + "/every2s", never = ns_ + "/never";
  auto row = [&](const std::string& key, const std::string& what) {
    return browser.Execute("const r = document.querySelector('.task-row[data-key=\"" + key + "\"]');" + " return r ? " +
                           what + " : null;");
  };

  // The tasks that exist, each with what it will do or why it will not.
  ASSERT_TRUE(WaitUntil([&] { return row(every, "r.dataset.state") == "ok"; }, 60s))
      << browser.Execute("return document.body.innerText") << "\n"
      << op.Log();
  EXPECT_GE(row(every, "Number(r.dataset.fires)").get<int>(), 100);  // cut at 120 of 1,800
  EXPECT_TRUE(row(every, "r.querySelector('rect.band') !== null").get<bool>());
  ASSERT_TRUE(WaitUntil([&] { return row(never, "r.dataset.state") == "bad"; }, 60s))
      << browser.Execute("return document.body.innerText");
  EXPECT_THAT(row(never, "r.textContent").get<std::string>(), HasSubstr("spec.schedule"));
  EXPECT_THAT(browser.Execute("return document.body.innerText").get<std::string>(),
              HasSubstr("<img src=x onerror=window.injected=1>"));
  EXPECT_TRUE(browser.Execute("return window.injected === undefined && document.querySelector('main img') === null")
                  .get<bool>());

  // Runs the worker reported, and the pool.
  ASSERT_TRUE(WaitUntil(
      [&] {
        return browser.Execute("return document.querySelectorAll('tr.run[data-key=\"" + every + "\"]').length") > 0;
      },
      60s))
      << browser.Execute("return document.body.innerText") << "\n"
      << worker.Log();
  EXPECT_THAT(browser.Execute("return document.querySelector('tr.run .badge').textContent").get<std::string>(),
              HasSubstr("Succeeded"));
  EXPECT_TRUE(WaitUntil(
      [&] {
        return browser.Execute("return document.querySelector('tr.pool[data-key=\"" + ns_ + "/pool\"]') !== null") ==
               true;
      },
      30s));

  // The page updates itself: the count of fires grows while nothing reloads it.
  browser.Execute("window.sameDocument = true");
  const int fired = row(every, "Number(r.dataset.fired)").get<int>();
  const int updates = std::stoi(browser.Execute("return document.body.dataset.updates").get<std::string>());
  EXPECT_TRUE(WaitUntil([&] { return row(every, "Number(r.dataset.fired)").get<int>() >= fired + 3; }, 60s))
      << fired << " -> " << row(every, "Number(r.dataset.fired)");
  EXPECT_GT(std::stoi(browser.Execute("return document.body.dataset.updates").get<std::string>()), updates);
  EXPECT_EQ(browser.Execute("return window.sameDocument"), true);

  // The namespace filter goes through the API's query.
  Json other = Json::parse(HttpGet(port, "/api/v1/overview?namespace=no-such-namespace"));
  EXPECT_EQ(other["tasksTotal"], 0);
  EXPECT_EQ(other["namespaces"], Json({ns_}));
  browser.Execute("const s = document.getElementById('ns'); s.value = '" + ns_ +
                  "'; s.dispatchEvent(new Event('change'));");
  // Filtered to one namespace, the rows name tasks without it.
  EXPECT_TRUE(WaitUntil(
      [&] {
        return browser.Execute("const n = document.querySelector('.label[data-key=\"" + every +
                               "\"] .name'); return n ? n.textContent : null;") == "every2s";
      },
      30s));

  const std::string shot = (dir / "console.png").string();
  ASSERT_TRUE(browser.SaveScreenshot(shot));
  EXPECT_GT(std::filesystem::file_size(shot), 20'000U);
  std::string magic(8, '\0');
  std::ifstream(shot, std::ios::binary).read(magic.data(), 8);
  EXPECT_EQ(magic, std::string("\x89PNG\r\n\x1a\n", 8));
  std::cerr << "screenshot: " << shot << "\n";
  EXPECT_TRUE(op.Running()) << op.Log();
}

}  // namespace
}  // namespace cronlane::testing
