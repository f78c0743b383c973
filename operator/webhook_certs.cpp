#include "operator/webhook_certs.h"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <spdlog/fmt/ranges.h>
#include <spdlog/spdlog.h>

#include <cstring>
#include <ctime>

#include "common/text.h"

namespace cronlane::op {

namespace {

template <class T, void (*F)(T*)>
struct Free {
  void operator()(T* p) const { F(p); }
};
using Key = std::unique_ptr<EVP_PKEY, Free<EVP_PKEY, EVP_PKEY_free>>;
using Cert = std::unique_ptr<X509, Free<X509, X509_free>>;
using Bio = std::unique_ptr<BIO, Free<BIO, BIO_free_all>>;
using Ext = std::unique_ptr<X509_EXTENSION, Free<X509_EXTENSION, X509_EXTENSION_free>>;

std::string OpenSslError(const std::string& what) {
  char buf[256] = {0};
  ERR_error_string_n(ERR_get_error(), buf, sizeof buf);
  return what + ": " + buf;
}

Key NewKey() {
  return Key(EVP_EC_gen("P-256"));
}

std::string Pem(X509* cert) {
  Bio bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_X509(bio.get(), cert);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

std::string Pem(EVP_PKEY* key) {
  Bio bio(BIO_new(BIO_s_mem()));
  PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0, nullptr, nullptr);
  char* data = nullptr;
  const long n = BIO_get_mem_data(bio.get(), &data);
  return std::string(data, static_cast<size_t>(n));
}

Cert ReadCert(const std::string& pem) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return Cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
}

Key ReadKey(const std::string& pem) {
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  return Key(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr));
}

// Whether `ca` is a CA certificate with its own private key.
bool CanSign(const CertKey& ca) {
  ERR_clear_error();
  Cert cert = ReadCert(ca.cert);
  Key key = ReadKey(ca.key);
  return cert && key && X509_check_private_key(cert.get(), key.get()) == 1 && X509_check_ca(cert.get()) > 0;
}

bool IsIp(const std::string& host) {
  return host.find_first_not_of("0123456789.") == std::string::npos || host.find(':') != std::string::npos;  // IPv6
}

// A certificate for `subject_key`, from an hour before `now` for `days`, named
// `cn`, with the extensions given as OpenSSL config values; signed by
// `issuer_key` (and issuer `issuer`, or itself when null).
Result<Cert> Sign(EVP_PKEY* subject_key, const std::string& cn, X509* issuer, EVP_PKEY* issuer_key, Instant now,
                  int days, const std::vector<std::pair<int, std::string>>& extensions) {
  ERR_clear_error();
  Cert cert(X509_new());
  if (!cert) return Internal(OpenSslError("X509_new"));
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof serial) != 1) return Internal(OpenSslError("RAND_bytes"));
  serial[0] &= 0x7f;  // positive
  BIGNUM* bn = BN_bin2bn(serial, sizeof serial, nullptr);
  const bool serial_set = bn != nullptr && BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get())) != nullptr;
  BN_free(bn);
  if (!serial_set) return Internal(OpenSslError("serial number"));
  time_t t = std::chrono::system_clock::to_time_t(now);
  X509_time_adj_ex(X509_getm_notBefore(cert.get()), 0, -3600, &t);
  X509_time_adj_ex(X509_getm_notAfter(cert.get()), days, 0, &t);
  if (X509_set_pubkey(cert.get(), subject_key) != 1) return Internal(OpenSslError("X509_set_pubkey"));
  X509_NAME* name = X509_get_subject_name(cert.get());
  // A common name is at most 64 characters; the names that matter are in the SAN.
  const std::string short_cn = cn.substr(0, 64);
  if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, reinterpret_cast<const unsigned char*>(short_cn.c_str()), -1,
                                 -1, 0) != 1) {
    return InvalidArgument(OpenSslError("common name " + short_cn));
  }
  X509_set_issuer_name(cert.get(), issuer != nullptr ? X509_get_subject_name(issuer) : name);
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer != nullptr ? issuer : cert.get(), cert.get(), nullptr, nullptr, 0);
  for (const auto& [nid, value] : extensions) {
    Ext ext(X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str()));
    if (!ext || X509_add_ext(cert.get(), ext.get(), -1) != 1) {
      return InvalidArgument(OpenSslError("extension " + value));
    }
  }
  if (X509_sign(cert.get(), issuer_key, EVP_sha256()) == 0) return Internal(OpenSslError("X509_sign"));
  return cert;
}

}  // namespace

Result<CertKey> MakeCa(const std::string& common_name, Instant now, int days) {
  Key key = NewKey();
  if (!key) return Internal(OpenSslError("EC key"));
  auto cert = Sign(key.get(), common_name, nullptr, key.get(), now, days,
                   {{NID_basic_constraints, "critical,CA:TRUE"},
                    {NID_key_usage, "critical,keyCertSign,cRLSign"},
                    {NID_subject_key_identifier, "hash"}});
  if (!cert.ok()) return cert.status();
  return CertKey{Pem(cert->get()), Pem(key.get())};
}

Result<CertKey> MakeServingCert(const CertKey& ca, const std::vector<std::string>& hosts, Instant now, int days) {
  if (hosts.empty()) return InvalidArgument("a serving certificate needs at least one host");
  Cert ca_cert = ReadCert(ca.cert);
  Key ca_key = ReadKey(ca.key);
  if (!ca_cert || !ca_key) return InvalidArgument("the CA's certificate or key does not parse");
  Key key = NewKey();
  if (!key) return Internal(OpenSslError("EC key"));
  std::string san;
  for (const auto& h : hosts) san += (san.empty() ? "" : ",") + std::string(IsIp(h) ? "IP:" : "DNS:") + h;
  auto cert = Sign(key.get(), hosts.front(), ca_cert.get(), ca_key.get(), now, days,
                   {{NID_basic_constraints, "critical,CA:FALSE"},
                    {NID_key_usage, "critical,digitalSignature,keyEncipherment"},
                    {NID_ext_key_usage, "serverAuth"},
                    {NID_subject_alt_name, san},
                    {NID_authority_key_identifier, "keyid:always"}});
  if (!cert.ok()) return cert.status();
  return CertKey{Pem(cert->get()), Pem(key.get())};
}

Result<Instant> CertificateEnd(const std::string& cert_pem) {
  Cert cert = ReadCert(cert_pem);
  if (!cert) return InvalidArgument("the certificate does not parse");
  std::tm tm{};
  if (ASN1_TIME_to_tm(X509_get0_notAfter(cert.get()), &tm) != 1) return InvalidArgument("no notAfter");
  return std::chrono::time_point_cast<std::chrono::seconds>(std::chrono::system_clock::from_time_t(timegm(&tm)));
}

bool ServesHosts(const CertKey& pair, const std::string& ca_pem, const std::vector<std::string>& hosts) {
  Cert cert = ReadCert(pair.cert);
  Key key = ReadKey(pair.key);
  Cert ca = ReadCert(ca_pem);
  if (!cert || !key || !ca) return false;
  if (X509_check_private_key(cert.get(), key.get()) != 1) return false;
  EVP_PKEY* ca_public = X509_get0_pubkey(ca.get());
  if (ca_public == nullptr || X509_verify(cert.get(), ca_public) != 1) return false;
  for (const auto& h : hosts) {
    const int ok = IsIp(h) ? X509_check_ip_asc(cert.get(), h.c_str(), 0)
                           : X509_check_host(cert.get(), h.data(), h.size(), 0, nullptr);
    if (ok != 1) return false;
  }
  return true;
}

WebhookCertificates::WebhookCertificates(kube::KubeClient& client, Clock& clock, WebhookCertOptions options)
    : client_(client), clock_(clock), options_(std::move(options)) {}

CertKey WebhookCertificates::Current() const {
  MutexLock lock(mu_);
  return current_;
}

TlsSource WebhookCertificates::Source() const {
  return TlsSource{[this]() -> Result<TlsPem> {
                     CertKey c = Current();
                     if (c.cert.empty()) return Unavailable("no serving certificate yet");
                     return c;
                   },
                   "Secret " + options_.ns + "/" + options_.secret};
}

Result<WebhookCertificates::Held> WebhookCertificates::ReadOrCreate() {
  const std::string path = "/api/v1/namespaces/" + options_.ns + "/secrets/" + options_.secret;
  const Instant now = std::chrono::time_point_cast<std::chrono::seconds>(clock_.Now());
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto secret = client_.Get(path);
    if (!secret.ok() && secret.status().code() != StatusCode::kNotFound) return secret.status();
    kube::Json data = secret.ok() ? secret->value("data", kube::Json::object()) : kube::Json::object();
    auto field = [&](const char* name) -> std::string {
      if (!data.contains(name) || !data[name].is_string()) return "";
      return Base64Decode(data[name].get<std::string>()).value_or("");
    };
    CertKey ca{field("ca.crt"), field("ca.key")};
    CertKey serving{field("tls.crt"), field("tls.key")};
    // The CA is kept while it can sign for long enough; the serving pair while it is
    // the CA's, names the hosts and is not near its end.
    auto ca_end = CertificateEnd(ca.cert);
    const bool ca_ok = ca_end.ok() && *ca_end - options_.renew_before > now && CanSign(ca);
    auto end = CertificateEnd(serving.cert);
    const bool serving_ok =
        ca_ok && end.ok() && *end - options_.renew_before > now && ServesHosts(serving, ca.cert, options_.hosts);
    if (serving_ok) return Held{std::move(serving), std::move(ca.cert)};

    std::string why = !secret.ok() ? "none exists" : !ca_ok ? "its CA cannot sign" : "its certificate is due";
    if (!ca_ok) {
      auto made = MakeCa("cronlane-webhook-ca", now, options_.ca_days);
      if (!made.ok()) return made.status();
      ca = *made;
    }
    auto made = MakeServingCert(ca, options_.hosts, now, options_.cert_days);
    if (!made.ok()) return made.status();
    kube::Json body = {{"apiVersion", "v1"},
                       {"kind", "Secret"},
                       {"type", "kubernetes.io/tls"},
                       {"metadata",
                        {{"name", options_.secret},
                         {"namespace", options_.ns},
                         {"labels", {{"app.kubernetes.io/managed-by", "cronlane-operator"}}}}},
                       {"data",
                        {{"ca.crt", Base64Encode(ca.cert)},
                         {"ca.key", Base64Encode(ca.key)},
                         {"tls.crt", Base64Encode(made->cert)},
                         {"tls.key", Base64Encode(made->key)}}}};
    Result<kube::Json> written = secret.ok() ? [&] {
      body["metadata"]["resourceVersion"] = (*secret)["metadata"].value("resourceVersion", "");
      return client_.Replace(path, body);
    }()
                                             : client_.Create("/api/v1/namespaces/" + options_.ns + "/secrets", body);
    if (written.ok()) {
      spdlog::info("webhook: wrote a serving certificate for {} to Secret {}/{} ({}{})",
                   fmt::join(options_.hosts, ", "), options_.ns, options_.secret, why, ca_ok ? "" : ", with a new CA");
      return Held{std::move(*made), std::move(ca.cert)};
    }
    // Another replica wrote it first: read theirs.
    if (written.status().code() != StatusCode::kAlreadyExists && written.status().code() != StatusCode::kAborted) {
      return written.status();
    }
  }
  return Aborted("Secret " + options_.ns + "/" + options_.secret + " kept changing under us");
}

Status WebhookCertificates::Ensure() {
  auto held = ReadOrCreate();
  if (!held.ok()) return held.status();
  const std::string ca = held->ca;
  {
    MutexLock lock(mu_);
    current_ = std::move(held->serving);
  }
  // Checked every period, not only when the CA changes: a configuration that was
  // re-created, or reset by a sync, gets the CA back within a period (a GET when
  // nothing differs).
  if (!options_.configuration.empty()) {
    if (Status s = PatchCaBundle(ca); !s.ok()) {
      spdlog::warn("webhook: cannot write the caBundle of ValidatingWebhookConfiguration {} (retried every {} s): {}",
                   options_.configuration, options_.period.count(), s.message());
    }
  }
  return Status::Ok();
}

Status WebhookCertificates::PatchCaBundle(const std::string& ca_pem) {
  const std::string path =
      "/apis/admissionregistration.k8s.io/v1/validatingwebhookconfigurations/" + options_.configuration;
  auto config = client_.Get(path);
  if (!config.ok()) return config.status();
  const std::string bundle = Base64Encode(ca_pem);
  kube::Json ops = kube::Json::array();
  const kube::Json& hooks = config->value("webhooks", kube::Json::array());
  for (size_t i = 0; i < hooks.size(); ++i) {
    if (hooks[i].value("clientConfig", kube::Json::object()).value("caBundle", "") == bundle) continue;
    // Guarded by a test of the webhook's name, so a concurrent reorder fails the patch instead of misplacing it.
    ops.push_back({{"op", "test"}, {"path", "/webhooks/" + std::to_string(i) + "/name"}, {"value", hooks[i]["name"]}});
    ops.push_back(
        {{"op", "add"}, {"path", "/webhooks/" + std::to_string(i) + "/clientConfig/caBundle"}, {"value", bundle}});
  }
  if (ops.empty()) return Status::Ok();
  auto patched = client_.Patch(path, ops, kube::PatchType::kJson);
  if (!patched.ok()) return patched.status();
  spdlog::info("webhook: wrote the CA into ValidatingWebhookConfiguration {}", options_.configuration);
  return Status::Ok();
}

Status WebhookCertificates::Run(CancelToken& cancel) {
  while (!cancel.WaitFor(options_.period)) {
    if (Status s = Ensure(); !s.ok()) spdlog::warn("webhook: serving certificate: {} (retried)", s.message());
  }
  return Status::Ok();
}

}  // namespace cronlane::op
