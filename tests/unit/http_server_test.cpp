// Unit tests of common/http_server.h on loopback: GET handlers get the decoded
// query, and an HTTPS server presents the certificate its files hold when each
// connection starts, so a renewed certificate (cert-manager rewriting the mounted
// Secret) is served without a restart. Certificates come from the openssl CLI.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "common/http_server.h"
#include "tests/support/process.h"
#include "tests/support/test_env.h"

namespace cronlane {
namespace {

using testing::FreePort;
using ::testing::HasSubstr;
using testing::RunShell;
using testing::ShellQuote;

TEST(HttpServerTest, GetHandlersReadTheDecodedQuery) {
  const int port = FreePort();
  HttpServer server("127.0.0.1:" + std::to_string(port));
  server.HandleQuery("/q", [](const HttpQuery& q) {
    std::string out;
    for (const auto& [k, v] : q) out += k + "=" + v + ";";
    return HttpReply{200, out};
  });
  server.Handle("/plain", [] { return HttpReply{200, "plain"}; });
  ASSERT_TRUE(server.Start().ok());
  EXPECT_EQ(testing::HttpGet(port, "/q?namespace=a%2Fb&x=1"), "namespace=a/b;x=1;");
  EXPECT_EQ(testing::HttpGet(port, "/q"), "");  // 200 with an empty body
  EXPECT_EQ(testing::HttpGet(port, "/plain?ignored=1"), "plain");
  EXPECT_EQ(
      RunShell("curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:" + std::to_string(port) + "/nope").output,
      "404");
}

TEST(HttpServerTest, AnswersOnlyTheAllowedHostNames) {
  const int port = FreePort();
  HttpServer server("127.0.0.1:" + std::to_string(port));
  server.Handle("/", [] { return HttpReply{200, "page"}; });
  server.AllowHosts({"localhost", "127.0.0.1", "[::1]"});
  ASSERT_TRUE(server.Start().ok());
  auto code = [&](const std::string& host) {
    return RunShell("curl -s -o /dev/null -w '%{http_code}' -H " + ShellQuote("Host: " + host) +
                    " http://127.0.0.1:" + std::to_string(port) + "/")
        .output;
  };
  EXPECT_EQ(testing::HttpGet(port, "/"), "page");  // Host: 127.0.0.1:PORT
  EXPECT_EQ(code("localhost:8082"), "200");
  EXPECT_EQ(code("[::1]:8082"), "200");
  EXPECT_EQ(code("localhost"), "200");
  // What a rebinding site's page sends: its own name.
  EXPECT_EQ(code("attacker.example:8082"), "403");
  EXPECT_EQ(code("localhost.attacker.example"), "403");
}

class HttpsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / testing::UniqueName("https");
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  // A self-signed certificate for 127.0.0.1 with subject CN=`cn`, into tls.crt/tls.key.
  void MakeCertificate(const std::string& cn) {
    auto r = RunShell("openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=" + cn +
                      " -addext subjectAltName=IP:127.0.0.1 -keyout " + ShellQuote((dir_ / "new.key").string()) +
                      " -out " + ShellQuote((dir_ / "new.crt").string()) + " 2>&1");
    ASSERT_EQ(r.exit_code, 0) << r.output;
    // Renamed into place, as the kubelet swaps a Secret volume's files.
    std::filesystem::rename(dir_ / "new.key", dir_ / "tls.key");
    std::filesystem::rename(dir_ / "new.crt", dir_ / "tls.crt");
  }
  // The subject of the certificate a new connection to `port` is shown.
  static std::string ServedSubject(int port) {
    return RunShell("openssl s_client -connect 127.0.0.1:" + std::to_string(port) +
                    " </dev/null 2>/dev/null | openssl x509 -noout -subject")
        .output;
  }
  TlsFiles Files() const { return TlsFiles{(dir_ / "tls.crt").string(), (dir_ / "tls.key").string()}; }

  std::filesystem::path dir_;
};

TEST_F(HttpsTest, EachConnectionGetsTheCertificateTheFilesHoldNow) {
  MakeCertificate("first");
  const int port = FreePort();
  HttpServer server("127.0.0.1:" + std::to_string(port), Files());
  server.Handle("/healthz", [] { return HttpReply{200, "ok"}; });
  ASSERT_TRUE(server.Start().ok());
  EXPECT_THAT(ServedSubject(port), HasSubstr("CN = first"));
  EXPECT_EQ(RunShell("curl -sk https://127.0.0.1:" + std::to_string(port) + "/healthz").output, "ok");

  MakeCertificate("renewed");
  EXPECT_THAT(ServedSubject(port), HasSubstr("CN = renewed"));

  // A key that does not load (half written) leaves the last good pair in use; the
  // server neither stops nor serves nothing.
  std::filesystem::resize_file(dir_ / "tls.key", 100);
  EXPECT_THAT(ServedSubject(port), HasSubstr("CN = renewed"));
  MakeCertificate("third");
  EXPECT_THAT(ServedSubject(port), HasSubstr("CN = third"));
  EXPECT_EQ(RunShell("curl -s --cacert " + ShellQuote((dir_ / "tls.crt").string()) +
                     " https://127.0.0.1:" + std::to_string(port) + "/healthz")
                .output,
            "ok");
}

TEST_F(HttpsTest, FilesThatCannotBeReadOrDoNotParseAreAnErrorAtStart) {
  HttpServer missing("127.0.0.1:" + std::to_string(FreePort()), Files());
  Status s = missing.Start();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("tls.crt"));

  MakeCertificate("x");
  std::filesystem::resize_file(dir_ / "tls.key", 100);
  HttpServer broken("127.0.0.1:" + std::to_string(FreePort()), Files());
  s = broken.Start();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  // Read, but refused by OpenSSL (the message names the pair and the reason).
  EXPECT_THAT(s.message(), ::testing::StartsWith("TLS certificate "));
  EXPECT_THAT(s.message(), ::testing::Not(HasSubstr("cannot read")));
}

}  // namespace
}  // namespace cronlane
