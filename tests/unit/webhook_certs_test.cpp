// Unit tests of the webhook's own certificates (operator/webhook_certs.h): a CA
// and a serving certificate made with OpenSSL, checked by our functions and by the
// openssl CLI; and the base64 of Secret data (common/text.h).
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "common/text.h"
#include "operator/webhook_certs.h"
#include "tests/support/process.h"
#include "tests/support/test_env.h"

namespace cronlane::op {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;

const Instant kNow = Instant(std::chrono::seconds(1'767'225'600));  // 2026-01-01T00:00:00Z

TEST(WebhookCertsTest, TheServingCertificateNamesItsHostsAndIsSignedByTheCa) {
  auto ca = MakeCa("test-ca", kNow, 3650);
  ASSERT_TRUE(ca.ok()) << ca.status().message();
  const std::vector<std::string> hosts = {"cronlane-webhook.cronlane-system.svc", "127.0.0.1"};
  auto cert = MakeServingCert(*ca, hosts, kNow, 365);
  ASSERT_TRUE(cert.ok()) << cert.status().message();
  EXPECT_TRUE(ServesHosts(*cert, ca->cert, hosts));
  EXPECT_TRUE(ServesHosts(*cert, ca->cert, {"127.0.0.1"}));
  EXPECT_FALSE(ServesHosts(*cert, ca->cert, {"other.cronlane-system.svc"}));
  EXPECT_FALSE(ServesHosts(*cert, ca->cert, {"10.0.0.1"}));
  auto other_ca = MakeCa("other", kNow, 3650);
  ASSERT_TRUE(other_ca.ok());
  EXPECT_FALSE(ServesHosts(*cert, other_ca->cert, hosts));
  EXPECT_FALSE(ServesHosts(CertKey{cert->cert, ca->key}, ca->cert, hosts));  // a key that is not the cert's
  EXPECT_FALSE(ServesHosts(CertKey{"garbage", cert->key}, ca->cert, hosts));

  auto end = CertificateEnd(cert->cert);
  ASSERT_TRUE(end.ok());
  EXPECT_EQ(*end, kNow + 365 * 24h);
  EXPECT_EQ(*CertificateEnd(ca->cert), kNow + 3650 * 24h);
  EXPECT_FALSE(CertificateEnd("not a certificate").ok());
  EXPECT_FALSE(MakeServingCert(*ca, {}, kNow, 365).ok());
  EXPECT_FALSE(MakeServingCert(CertKey{"x", "y"}, hosts, kNow, 365).ok());

  // openssl itself agrees: the chain verifies for the purpose of a TLS server.
  const auto dir = std::filesystem::temp_directory_path() / testing::UniqueName("certs");
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "ca.crt") << ca->cert;
  std::ofstream(dir / "tls.crt") << cert->cert;
  auto verify = testing::RunShell("openssl verify -attime 1767312000 -purpose sslserver -CAfile " +
                                  (dir / "ca.crt").string() + " " + (dir / "tls.crt").string() + " 2>&1");
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
  EXPECT_THAT(verify.output, HasSubstr(": OK"));
  auto text = testing::RunShell("openssl x509 -noout -text -in " + (dir / "tls.crt").string());
  EXPECT_THAT(text.output, HasSubstr("DNS:cronlane-webhook.cronlane-system.svc, IP Address:127.0.0.1"));
  EXPECT_THAT(text.output, HasSubstr("TLS Web Server Authentication"));
  std::filesystem::remove_all(dir);
}

TEST(WebhookCertsTest, Base64RoundTripsSecretData) {
  EXPECT_EQ(Base64Encode(""), "");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  EXPECT_EQ(Base64Encode("foo"), "Zm9v");
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64Decode("Zm9vYmE="), "fooba");
  EXPECT_EQ(Base64Decode("Zm9v\nYmFy"), "foobar");
  EXPECT_EQ(Base64Decode("Zm9v!"), std::nullopt);
  std::string all;
  for (int i = 0; i < 256; ++i) all += static_cast<char>(i);
  EXPECT_EQ(Base64Decode(Base64Encode(all)), all);
}

}  // namespace
}  // namespace cronlane::op
