#pragma once
// Headless Chromium driven over W3C WebDriver: Debian's chromium and
// chromium-driver (hack/deps.sh), the driver started as a process of the test on a
// loopback port, its HTTP API called with curl. Header-only.
//
//   WebDriver browser(log_path);
//   browser.Navigate("http://127.0.0.1:8082/");
//   Json rows = browser.Execute("return document.querySelectorAll('tr').length");
//   browser.SaveScreenshot("/tmp/page.png");

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include <chrono>
#include <fstream>
#include <memory>
#include <string>

#include "tests/support/process.h"
#include "tests/support/test_env.h"

namespace cronlane::testing {

class WebDriver {
 public:
  using Json = nlohmann::json;

  // Starts chromedriver and a headless Chromium session (`width` x `height` window).
  // On failure, ok() is false and error() says why.
  explicit WebDriver(const std::string& log_path, int width = 1400, int height = 1000) {
    port_ = FreePort();
    driver_ = std::make_unique<Process>(
        std::vector<std::string>{"/usr/bin/chromedriver", "--port=" + std::to_string(port_), "--allowed-ips=127.0.0.1"},
        log_path);
    if (!WaitUntil([&] { return !HttpGet(port_, "/status").empty(); }, std::chrono::seconds(30))) {
      error_ = "chromedriver did not answer: " + driver_->Log();
      return;
    }
    Json caps = {{"capabilities",
                  {{"alwaysMatch",
                    {{"browserName", "chrome"},
                     {"goog:chromeOptions",
                      {{"binary", "/usr/bin/chromium"},
                       {"args",
                        {"--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         "--hide-scrollbars", "--no-first-run", "--disable-extensions",
                         "--window-size=" + std::to_string(width) + "," + std::to_string(height)}}}}}}}}};
    Json reply = Call("POST", "/session", caps);
    if (reply.contains("value") && reply["value"].is_object()) session_ = reply["value"].value("sessionId", "");
    if (session_.empty()) error_ = "no session: " + reply.dump();
  }
  ~WebDriver() {
    if (!session_.empty()) Call("DELETE", "/session/" + session_, nullptr);
  }
  WebDriver(const WebDriver&) = delete;
  WebDriver& operator=(const WebDriver&) = delete;

  bool ok() const { return !session_.empty(); }
  const std::string& error() const { return error_; }

  // Loads `url` and waits for the document to load.
  void Navigate(const std::string& url) { Call("POST", Path("/url"), {{"url", url}}); }
  // Runs `script` (a function body; `return` gives the result) in the page.
  Json Execute(const std::string& script) {
    Json reply = Call("POST", Path("/execute/sync"), {{"script", script}, {"args", Json::array()}});
    return reply.contains("value") ? reply["value"] : Json();
  }
  // Runs `script` as an async script: it gets `args` and, last, a callback whose
  // argument is the result (WebDriver's 30 s script timeout applies).
  Json ExecuteAsync(const std::string& script, const Json& args) {
    Json reply = Call("POST", Path("/execute/async"), {{"script", script}, {"args", args}});
    return reply.contains("value") ? reply["value"] : Json();
  }
  // Writes a PNG of the viewport to `path`; false when none came.
  bool SaveScreenshot(const std::string& path) {
    Json reply = Call("GET", Path("/screenshot"), nullptr);
    if (!reply.contains("value") || !reply["value"].is_string()) return false;
    std::ofstream(path + ".b64") << reply["value"].get<std::string>();
    return RunShell("base64 -d " + ShellQuote(path + ".b64") + " > " + ShellQuote(path) + " && rm " +
                    ShellQuote(path + ".b64"))
               .exit_code == 0;
  }

 private:
  std::string Path(const std::string& tail) const { return "/session/" + session_ + tail; }
  Json Call(const std::string& method, const std::string& path, const Json& body) {
    std::string cmd =
        "curl -gs --max-time 60 -X " + method + " " + ShellQuote("http://127.0.0.1:" + std::to_string(port_) + path);
    if (!body.is_null()) cmd += " -H 'Content-Type: application/json' --data-binary " + ShellQuote(body.dump());
    auto r = RunShell(cmd);
    Json j = Json::parse(r.output, nullptr, false);
    return j.is_discarded() ? Json{{"error", r.output}} : j;
  }

  int port_ = 0;
  std::unique_ptr<Process> driver_;
  std::string session_;
  std::string error_;
};

}  // namespace cronlane::testing
